//! The import engine's statements: a temporary table per import (it lives
//! with the connection), the checks that need the database, the set-based
//! changes, and the open failures an import may resolve.

pub mod swap;

use super::{now_text, Scope};
use crate::resolve::ImportKind;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// The temporary table's value columns, in the order rows are given.
pub fn columns(kind: ImportKind) -> &'static [&'static str] {
    match kind {
        ImportKind::Schools => &[
            "code",
            "name",
            "idp_entity_ids",
            "support_email",
            "support_phone",
            "support_url",
        ],
        ImportKind::Accounts => &[
            "account_id",
            "school_code",
            "last_name",
            "first_name",
            "birth_date",
            "role",
            "class_name",
            "email",
            "folded_last",
            "folded_first",
            "active",
        ],
        ImportKind::Mappings => &["idp_entity_id", "subject", "account_id"],
    }
}

/// One checked row: its line in the file and its values, in [`columns`] order.
pub type Staged = (u64, Vec<Option<String>>);

/// (Re)creates the empty temporary table for `kind`.
pub async fn create_table(conn: &mut SqliteConnection, kind: ImportKind) -> sqlx::Result<()> {
    drop_table(conn).await?;
    let cols: Vec<String> = columns(kind).iter().map(|c| format!("{c} TEXT")).collect();
    sqlx::query(&format!(
        "CREATE TEMP TABLE imp (line INTEGER NOT NULL, {})",
        cols.join(", ")
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn drop_table(conn: &mut SqliteConnection) -> sqlx::Result<()> {
    for table in ["temp.imp", "temp.imp_todo"] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Rows per INSERT: 400 × 12 parameters stays far under SQLite's limit.
pub const BATCH: usize = 400;

/// Adds checked rows (at most [`BATCH`]) to the temporary table.
pub async fn stage(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    rows: &[Staged],
) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO temp.imp (line, ");
    q.push(columns(kind).join(", ")).push(") ");
    q.push_values(rows, |mut b, (line, values)| {
        b.push_bind(*line as i64);
        for v in values {
            b.push_bind(v.as_deref());
        }
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

/// A staged row whose key appeared on an earlier line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub line: u64,
    pub column: &'static str,
    pub key: String,
    pub first: u64,
}

/// The staged rows whose key (account ID, school code, or IdP and subject)
/// an earlier line has: the first `limit` in line order, and how many in
/// all. Told by an index on the temporary table, so memory does not grow
/// with the file.
pub async fn duplicates(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    limit: usize,
) -> sqlx::Result<(Vec<Duplicate>, u64)> {
    let (cols, same, column, shown) = match kind {
        ImportKind::Accounts => (
            "account_id",
            "u.account_id = t.account_id",
            "account_id",
            "t.account_id",
        ),
        ImportKind::Schools => ("code", "u.code = t.code", "school_code", "t.code"),
        ImportKind::Mappings => (
            "idp_entity_id, subject",
            "u.idp_entity_id = t.idp_entity_id AND u.subject = t.subject",
            "subject",
            "t.idp_entity_id || ' ' || t.subject",
        ),
    };
    sqlx::query(&format!(
        "CREATE INDEX IF NOT EXISTS temp.imp_key ON imp ({cols}, line)"
    ))
    .execute(&mut *conn)
    .await?;
    let later =
        format!("FROM imp t WHERE EXISTS (SELECT 1 FROM imp u WHERE {same} AND u.line < t.line)");
    let all = count(conn, &format!("SELECT COUNT(*) {later}"), None).await?;
    let rows = sqlx::query(&format!(
        "SELECT t.line, {shown} AS k, (SELECT MIN(u.line) FROM imp u WHERE {same}) AS first {later} ORDER BY t.line LIMIT ?"
    ))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    let found = rows
        .iter()
        .map(|r| Duplicate {
            line: r.get::<i64, _>("line") as u64,
            column,
            key: r.get("k"),
            first: r.get::<i64, _>("first") as u64,
        })
        .collect();
    Ok((found, all))
}

/// A staged row the database refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// Checks that need the database: accounts that do not exist, and accounts
/// or identities of schools outside the importer's scope. In line order.
pub async fn problems(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    scope: &Scope,
) -> sqlx::Result<Vec<Problem>> {
    // (select, column, why, whether it is about the scope)
    let mut checks: Vec<(&str, &'static str, &'static str, bool)> = Vec::new();
    const ACCOUNT: &str = "SELECT t.line, t.account_id AS v FROM imp t JOIN accounts a ON a.account_id = t.account_id WHERE 1";
    if kind == ImportKind::Mappings {
        checks.push(("SELECT t.line, t.account_id AS v FROM imp t LEFT JOIN accounts a ON a.account_id = t.account_id WHERE a.account_id IS NULL", "account_id", "does not exist", false));
    }
    let outside = !matches!(scope, Scope::All);
    match kind {
        ImportKind::Accounts if outside => {
            checks.push((ACCOUNT, "account_id", "belongs to another school", true))
        }
        ImportKind::Mappings if outside => {
            checks.push((
                ACCOUNT,
                "account_id",
                "does not exist in your schools",
                true,
            ));
            checks.push(("SELECT t.line, t.subject AS v FROM imp t JOIN mappings m ON m.idp_entity_id = t.idp_entity_id AND m.subject = t.subject JOIN accounts a ON a.account_id = m.account_id WHERE 1", "subject", "is linked to an account of another school", true));
        }
        _ => {}
    }
    let mut found = Vec::new();
    for (select, column, why, scoped) in checks {
        let mut q = QueryBuilder::<Sqlite>::new(select);
        if scoped {
            push_outside(&mut q, scope);
        }
        q.push(" ORDER BY t.line");
        for r in q.build().fetch_all(&mut *conn).await? {
            found.push(Problem {
                line: r.get::<i64, _>("line") as u64,
                column,
                value: r.get("v"),
                why,
            });
        }
    }
    found.sort_by_key(|p| p.line);
    Ok(found)
}

/// ` AND a.school_code NOT IN (…)`: the account is outside the scope.
fn push_outside<'q>(q: &mut QueryBuilder<'q, Sqlite>, scope: &'q Scope) {
    match scope {
        Scope::All => {
            q.push(" AND 0");
        }
        Scope::Schools(codes) if codes.is_empty() => {}
        Scope::Schools(codes) => {
            q.push(" AND a.school_code NOT IN (");
            let mut list = q.separated(", ");
            for c in codes {
                list.push_bind(c.as_str());
            }
            q.push(")");
        }
    }
}

/// What applying the staged rows changed (or would change).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub unchanged: u64,
    pub deactivated: u64,
}

async fn count(conn: &mut SqliteConnection, sql: &str, bind: Option<&str>) -> sqlx::Result<u64> {
    let mut q = sqlx::query_scalar::<_, i64>(sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    Ok(q.fetch_one(&mut *conn).await? as u64)
}

/// Counts what applying the staged rows would change, with reads only (a
/// preview never takes the write lock). `replace_school` (accounts only):
/// that school's active accounts missing from the file would be
/// deactivated.
pub async fn counts(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    replace_school: Option<&str>,
) -> sqlx::Result<Counts> {
    let mut c = Counts::default();
    match kind {
        ImportKind::Schools => {
            c.created = count(conn, "SELECT COUNT(*) FROM imp t WHERE NOT EXISTS (SELECT 1 FROM schools s WHERE s.code = t.code)", None).await?;
            // The optional columns (the IdP list, the contact) are NULL
            // here when the file has no such column: the school keeps
            // what it has; an empty cell ('') clears it.
            c.unchanged = count(conn, "SELECT COUNT(*) FROM imp t JOIN schools s ON s.code = t.code WHERE s.name IS t.name AND (t.idp_entity_ids IS NULL OR s.idp_entity_ids IS t.idp_entity_ids)
             AND (t.support_email IS NULL OR s.support_email IS NULLIF(t.support_email, ''))
             AND (t.support_phone IS NULL OR s.support_phone IS NULLIF(t.support_phone, ''))
             AND (t.support_url IS NULL OR s.support_url IS NULLIF(t.support_url, ''))", None).await?;
        }
        ImportKind::Accounts => {
            c.created = count(conn, "SELECT COUNT(*) FROM imp t WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t.account_id)", None).await?;
            c.unchanged = count(
                conn,
                "SELECT COUNT(*) FROM imp t JOIN accounts a ON a.account_id = t.account_id
                 WHERE a.school_code IS t.school_code AND a.last_name IS t.last_name AND a.first_name IS t.first_name
                   AND a.birth_date IS t.birth_date AND a.role IS t.role AND a.class_name IS t.class_name
                   AND a.email IS t.email AND a.active = CAST(t.active AS INTEGER)",
                None,
            )
            .await?;
            if let Some(school) = replace_school {
                c.deactivated =
                    count(conn, &format!("SELECT COUNT(*) {MISSING}"), Some(school)).await?;
            }
        }
        ImportKind::Mappings => {
            c.created = count(conn, "SELECT COUNT(*) FROM imp t WHERE NOT EXISTS (SELECT 1 FROM mappings m WHERE m.idp_entity_id = t.idp_entity_id AND m.subject = t.subject)", None).await?;
            c.unchanged = count(conn, "SELECT COUNT(*) FROM imp t JOIN mappings m ON m.idp_entity_id = t.idp_entity_id AND m.subject = t.subject WHERE m.account_id = t.account_id", None).await?;
        }
    }
    Ok(c)
}

/// A replacing file's school: its active accounts missing from the file.
const MISSING: &str = "FROM accounts WHERE school_code = ? AND active = 1 AND account_id NOT IN (SELECT account_id FROM imp)";

/// Counts what will change, then changes it. `replace_school` (accounts
/// only): that school's active accounts missing from the file are
/// deactivated. `actor` is recorded on mappings.
pub async fn apply(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    replace_school: Option<&str>,
    actor: &str,
) -> sqlx::Result<Counts> {
    let now = now_text();
    if kind == ImportKind::Accounts {
        return apply_accounts(conn, replace_school, &now).await;
    }
    let counts = counts(conn, kind, replace_school).await?;
    match kind {
        ImportKind::Schools => apply_schools(conn, &now).await?,
        _ => apply_mappings(conn, actor, &now).await?,
    }
    Ok(counts)
}

/// Schools: the upsert and the optional columns.
async fn apply_schools(conn: &mut SqliteConnection, now: &str) -> sqlx::Result<()> {
    sqlx::query(
            "INSERT INTO schools (code, name, idp_entity_ids, support_email, support_phone, support_url, created_at, updated_at)
             SELECT code, name, COALESCE(idp_entity_ids, ''), NULLIF(support_email, ''), NULLIF(support_phone, ''), NULLIF(support_url, ''), ?1, ?1 FROM imp WHERE true
             ON CONFLICT(code) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at WHERE schools.name IS NOT excluded.name",
        )
        .bind(now)
        .execute(&mut *conn)
        .await?;
    for col in ["support_email", "support_phone", "support_url"] {
        sqlx::query(&format!(
                "UPDATE schools SET {col} = NULLIF(t.{col}, ''), updated_at = ?1 FROM imp t
                 WHERE t.code = schools.code AND t.{col} IS NOT NULL AND schools.{col} IS NOT NULLIF(t.{col}, '')"
            ))
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    // A file without the column (NULL here) leaves each list alone.
    sqlx::query(
            "UPDATE schools SET idp_entity_ids = t.idp_entity_ids, updated_at = ?1 FROM imp t
             WHERE t.code = schools.code AND t.idp_entity_ids IS NOT NULL AND schools.idp_entity_ids IS NOT t.idp_entity_ids",
        )
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Accounts: `--replace` deactivations, then the upsert. The counts come
/// from the statements themselves (rows changed, accounts before and
/// after), not from joins of their own over the file: the write lock is
/// held for the changes only.
async fn apply_accounts(
    conn: &mut SqliteConnection,
    replace_school: Option<&str>,
    now: &str,
) -> sqlx::Result<Counts> {
    upsert_accounts(conn, replace_school, now, Rows::All).await
}

/// Which staged rows an upsert takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    All,
    /// Those [`swap::mark_changes`] noted; the counts are the caller's.
    Marked,
}

/// Accounts, for a large file that changes few: the same statements over
/// the staged rows [`swap::mark_changes`] noted only, so the write lock is
/// held for those. The counts are the caller's (taken with the marks).
pub async fn apply_marked_accounts(
    conn: &mut SqliteConnection,
    replace_school: Option<&str>,
    now: &str,
) -> sqlx::Result<()> {
    upsert_accounts(conn, replace_school, now, Rows::Marked).await?;
    Ok(())
}

/// The deactivations and the upsert of the staged rows matching `rows`.
async fn upsert_accounts(
    conn: &mut SqliteConnection,
    replace_school: Option<&str>,
    now: &str,
    rows: Rows,
) -> sqlx::Result<Counts> {
    let mut counts = Counts::default();
    if let Some(school) = replace_school {
        counts.deactivated = sqlx::query(&format!("UPDATE accounts SET active = 0, updated_at = ? WHERE account_id IN (SELECT account_id {MISSING})"))
            .bind(now)
            .bind(school)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    let filter = match rows {
        Rows::All => "true",
        Rows::Marked => "account_id IN (SELECT account_id FROM temp.imp_todo)",
    };
    let counted = rows == Rows::All;
    let (staged, before) = if counted {
        (
            count(conn, "SELECT COUNT(*) FROM temp.imp", None).await?,
            count(conn, "SELECT COUNT(*) FROM accounts", None).await?,
        )
    } else {
        (0, 0)
    };
    let changed = sqlx::query(&format!(
            "INSERT INTO accounts (account_id, school_code, last_name, first_name, birth_date, role, class_name, email, folded_last, folded_first, active, created_at, updated_at)
             SELECT account_id, school_code, last_name, first_name, birth_date, role, class_name, email, folded_last, folded_first, CAST(active AS INTEGER), ?1, ?1 FROM imp WHERE {filter}
             ON CONFLICT(account_id) DO UPDATE SET school_code = excluded.school_code, last_name = excluded.last_name,
               first_name = excluded.first_name, birth_date = excluded.birth_date, role = excluded.role,
               class_name = excluded.class_name, email = excluded.email, folded_last = excluded.folded_last,
               folded_first = excluded.folded_first, active = excluded.active, updated_at = excluded.updated_at
             WHERE accounts.school_code IS NOT excluded.school_code OR accounts.last_name IS NOT excluded.last_name
               OR accounts.first_name IS NOT excluded.first_name OR accounts.birth_date IS NOT excluded.birth_date
               OR accounts.role IS NOT excluded.role OR accounts.class_name IS NOT excluded.class_name
               OR accounts.email IS NOT excluded.email OR accounts.active IS NOT excluded.active"
        ))
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if counted {
        counts.created = count(conn, "SELECT COUNT(*) FROM accounts", None).await? - before;
        counts.unchanged = staged - changed;
    }
    Ok(counts)
}

/// Mappings: the upsert (source `import`).
async fn apply_mappings(conn: &mut SqliteConnection, actor: &str, now: &str) -> sqlx::Result<()> {
    sqlx::query(
            "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at, created_by)
             SELECT idp_entity_id, subject, account_id, 'import', ?1, ?2 FROM imp WHERE true
             ON CONFLICT(idp_entity_id, subject) DO UPDATE SET account_id = excluded.account_id, source = 'import',
               created_at = excluded.created_at, created_by = excluded.created_by
             WHERE mappings.account_id IS NOT excluded.account_id",
        )
        .bind(now)
        .bind(actor)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An identity with open failures that an import may now resolve: what a
/// valid assertion said, never what a user typed in the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIdentity {
    pub idp_entity_id: String,
    pub subject: String,
    pub school_code: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub birth_date: Option<String>,
}

/// The identities of the scope's open, verified failures of the kinds an
/// import can fix (mismatch, ambiguity, disabled account).
pub async fn open_identities(
    conn: &mut SqliteConnection,
    scope: &Scope,
) -> sqlx::Result<Vec<OpenIdentity>> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT idp_entity_id, subject, school_code, asserted_last_name, asserted_first_name, asserted_birth_date FROM failures
         WHERE status = 'open' AND kind IN ('identity_mismatch', 'ambiguous_identity', 'account_disabled')
           AND asserted_verified = 1 AND idp_entity_id IS NOT NULL AND subject IS NOT NULL",
    );
    scope.push_condition(&mut q, "school_code");
    q.push(" GROUP BY idp_entity_id, subject");
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| OpenIdentity {
            idp_entity_id: r.get("idp_entity_id"),
            subject: r.get("subject"),
            school_code: r.get("school_code"),
            last_name: r.get("asserted_last_name"),
            first_name: r.get("asserted_first_name"),
            birth_date: r.get("asserted_birth_date"),
        })
        .collect())
}

/// A staged account as the import would leave it: its school, and whether
/// it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedAccount {
    pub school_code: String,
    pub active: bool,
}

/// The staged row of an account, if the file has one (accounts imports).
pub async fn staged_account(
    conn: &mut SqliteConnection,
    account_id: &str,
) -> sqlx::Result<Option<StagedAccount>> {
    let row = sqlx::query("SELECT school_code, active FROM imp WHERE account_id = ?")
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| StagedAccount {
        school_code: r.get("school_code"),
        active: r.get::<String, _>("active") == "1",
    }))
}

/// The account a staged mapping gives an identity (mappings imports).
pub async fn staged_mapping(
    conn: &mut SqliteConnection,
    idp: &str,
    subject: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT account_id FROM imp WHERE idp_entity_id = ? AND subject = ?")
        .bind(idp)
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await
}

/// The staged active accounts of a school with these folded names and
/// birth date (accounts imports).
pub async fn staged_identity_matches(
    conn: &mut SqliteConnection,
    school: &str,
    key: &crate::resolve::IdentityKey,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT account_id FROM imp WHERE school_code = ? AND folded_last = ? AND folded_first = ? AND birth_date = ? AND active = '1'",
    )
    .bind(school)
    .bind(&key.folded_last)
    .bind(&key.folded_first)
    .bind(key.birth_date.format("%Y-%m-%d").to_string())
    .fetch_all(&mut *conn)
    .await
}
