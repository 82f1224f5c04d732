//! Local accounts of the service.

use super::schools::Upsert;
use crate::resolve::ranking::Probe;
use crate::resolve::{fold_name, IdentityKey, Role};
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub account_id: String,
    pub school_code: String,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub role: Role,
    pub class_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
}

fn from_row(r: &sqlx::sqlite::SqliteRow) -> Account {
    let birth: Option<String> = r.get("birth_date");
    let role: String = r.get("role");
    Account {
        account_id: r.get("account_id"),
        school_code: r.get("school_code"),
        last_name: r.get("last_name"),
        first_name: r.get("first_name"),
        birth_date: birth.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
        role: Role::parse(&role).unwrap_or(Role::Student),
        class_name: r.get("class_name"),
        email: r.get("email"),
        active: r.get::<i64, _>("active") != 0,
    }
}

const COLUMNS: &str =
    "account_id, school_code, last_name, first_name, birth_date, role, class_name, email, active";

pub async fn get(
    conn: &mut SqliteConnection,
    account_id: &str,
) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE account_id = ?"
    ))
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

/// Creates or updates an account (an import reactivates it); says which.
pub async fn upsert(conn: &mut SqliteConnection, a: &Account) -> Result<Upsert, sqlx::Error> {
    let existing = get(conn, &a.account_id).await?;
    if existing.as_ref() == Some(a) {
        return Ok(Upsert::Unchanged);
    }
    let now = super::now_text();
    sqlx::query(
        "INSERT INTO accounts (account_id, school_code, last_name, first_name, birth_date, role, class_name, email, folded_last, folded_first, active, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(account_id) DO UPDATE SET school_code = excluded.school_code, last_name = excluded.last_name,
           first_name = excluded.first_name, birth_date = excluded.birth_date, role = excluded.role,
           class_name = excluded.class_name, email = excluded.email, folded_last = excluded.folded_last,
           folded_first = excluded.folded_first, active = excluded.active, updated_at = excluded.updated_at",
    )
    .bind(&a.account_id)
    .bind(&a.school_code)
    .bind(&a.last_name)
    .bind(&a.first_name)
    .bind(a.birth_date.map(|d| d.format("%Y-%m-%d").to_string()))
    .bind(a.role.as_str())
    .bind(&a.class_name)
    .bind(&a.email)
    .bind(fold_name(&a.last_name))
    .bind(fold_name(&a.first_name))
    .bind(a.active as i64)
    .bind(&now)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok(if existing.is_some() {
        Upsert::Updated
    } else {
        Upsert::Created
    })
}

/// Accounts of the given schools whose folded names and birth date equal
/// the key, active or not (the caller tells the difference).
pub async fn identity_matches(
    conn: &mut SqliteConnection,
    schools: &[String],
    key: &IdentityKey,
) -> Result<Vec<Account>, sqlx::Error> {
    let mut out = Vec::new();
    for school in schools {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE school_code = ? AND folded_last = ? AND folded_first = ? AND birth_date = ? ORDER BY account_id"
        ))
        .bind(school)
        .bind(&key.folded_last)
        .bind(&key.folded_first)
        .bind(key.birth_date.format("%Y-%m-%d").to_string())
        .fetch_all(&mut *conn)
        .await?;
        out.extend(rows.iter().map(from_row));
    }
    Ok(out)
}

/// Accounts in scope matching `text` (ID, names, class, e-mail), optionally
/// of one school, by account ID after the `after_id` cursor.
pub async fn list(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    school: Option<&str>,
    text: Option<&str>,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM accounts WHERE 1=1"));
    scope.push_condition(&mut q, "school_code");
    if let Some(s) = school {
        q.push(" AND school_code = ").push_bind(s);
    }
    if let Some(t) = text {
        let p = super::like_pattern(t);
        q.push(" AND (");
        let mut any = q.separated(" OR ");
        for col in [
            "account_id",
            "last_name",
            "first_name",
            "class_name",
            "email",
        ] {
            any.push(format_args!("{col} LIKE "))
                .push_bind_unseparated(p.clone())
                .push_unseparated(" ESCAPE '\\'");
        }
        any.push("folded_last LIKE ")
            .push_bind_unseparated(super::like_pattern(&fold_name(t)))
            .push_unseparated(" ESCAPE '\\'");
        q.push(")");
    }
    if let Some(a) = after_id {
        q.push(" AND account_id > ").push_bind(a);
    }
    q.push(" ORDER BY account_id LIMIT ").push_bind(limit);
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(from_row).collect())
}

/// How an IdP already reaches an account of the ranking pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    /// Through a subject other than the failure's.
    pub elsewhere: bool,
    /// Through the failure's own subject (a reopened failure).
    pub here: bool,
}

/// The plausible candidates of one school for some claims (see
/// [`Probe`]), with whether the IdP already reaches each through another
/// subject than `subject`, or through `subject` itself (whose mapping is no
/// reason against); the accounts `subject` is mapped to are always in.
/// Every branch is a range or an equality on an index of the school's
/// accounts (migration 0011), so the cost follows the number of plausible
/// accounts, not the size of the school. Without a subject every mapping
/// of the IdP is another's.
pub async fn plausible_pool(
    conn: &mut SqliteConnection,
    school: &str,
    idp: Option<&str>,
    subject: Option<&str>,
    probes: &[Probe],
) -> Result<Vec<(Account, Reached)>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {COLUMNS},
           EXISTS (SELECT 1 FROM mappings m WHERE m.account_id = accounts.account_id AND m.idp_entity_id = "
    ));
    q.push_bind(idp.unwrap_or(""))
        .push(" AND m.subject IS NOT ")
        .push_bind(subject)
        .push(") AS mapped_elsewhere, EXISTS (SELECT 1 FROM mappings m WHERE m.account_id = accounts.account_id AND m.idp_entity_id = ")
        .push_bind(idp.unwrap_or(""))
        .push(" AND m.subject IS ")
        .push_bind(subject)
        .push(") AS mapped_here FROM accounts WHERE rowid IN (");
    // The identity's own accounts, whatever their names.
    q.push("SELECT a.rowid FROM mappings m JOIN accounts a ON a.account_id = m.account_id WHERE m.idp_entity_id = ")
        .push_bind(idp.unwrap_or(""))
        .push(" AND m.subject = ")
        .push_bind(subject.unwrap_or(""))
        .push(" AND a.school_code = ")
        .push_bind(school);
    for p in probes {
        let branch = |q: &mut QueryBuilder<'_, Sqlite>| {
            q.push(" UNION ALL SELECT rowid FROM accounts WHERE school_code = ")
                .push_bind(school.to_string());
        };
        let range = |q: &mut QueryBuilder<'_, Sqlite>, col: &str, folded: &str| {
            let (low, high) = Probe::range(folded);
            q.push(format_args!(" AND {col} >= "))
                .push_bind(low)
                .push(format_args!(" AND {col} < "))
                .push_bind(high);
        };
        if !p.last.is_empty() && !p.first.is_empty() {
            // Same names and swapped names: a range on the folded last name
            // of accounts_identity, the first name checked in the index.
            for (last, first) in [(&p.last, &p.first), (&p.first, &p.last)] {
                branch(&mut q);
                range(&mut q, "folded_last", last);
                range(&mut q, "folded_first", first);
            }
        } else if !p.last.is_empty() {
            branch(&mut q);
            q.push(" AND folded_last = ").push_bind(p.last.clone());
        }
        if let Some(d) = p.birth_date {
            branch(&mut q);
            q.push(" AND birth_date = ")
                .push_bind(d.format("%Y-%m-%d").to_string());
        }
    }
    q.push(")");
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let reached = Reached {
                elsewhere: r.get::<i64, _>("mapped_elsewhere") != 0,
                here: r.get::<i64, _>("mapped_here") != 0,
            };
            (from_row(r), reached)
        })
        .collect())
}

/// The version of [`fold_name`] the stored folded names must be made with.
/// Bump it whenever `fold_name` changes what it returns: at the next start
/// every account is refolded (`refold_if_stale`), so identity matching and
/// the candidate prefilter never compare old folds with new ones. The test
/// `fold_version_pins_fold_name` fails when the folding changes alone.
pub const FOLD_VERSION: i64 = 1;

/// Accounts refolded per write transaction: short enough that logins
/// recorded meanwhile do not wait long for the write lock.
const REFOLD_BATCH: i64 = 2_000;

/// Refolds every account's stored folded names when they were made with
/// another version of the folding than [`FOLD_VERSION`] (a database that
/// predates it, or a new `fold_name`), then records the version; a no-op
/// (one read) otherwise. Batched by account ID, each batch one write
/// transaction, so an interrupted start resumes without harm. Returns how
/// many accounts changed.
pub async fn refold_if_stale(pool: &sqlx::SqlitePool) -> Result<u64, sqlx::Error> {
    let stored: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM name_fold")
        .fetch_one(pool)
        .await?;
    if stored == Some(FOLD_VERSION) {
        return Ok(0);
    }
    let mut changed = 0;
    let mut after = String::new();
    loop {
        let mut tx = super::begin_write(pool).await?;
        let rows = sqlx::query(
            "SELECT account_id, last_name, first_name, folded_last, folded_first FROM accounts
             WHERE account_id > ? ORDER BY account_id LIMIT ?",
        )
        .bind(&after)
        .bind(REFOLD_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.get("account_id");
        for r in &rows {
            let (fl, ff) = (
                fold_name(r.get("last_name")),
                fold_name(r.get("first_name")),
            );
            if fl != r.get::<String, _>("folded_last") || ff != r.get::<String, _>("folded_first") {
                sqlx::query(
                    "UPDATE accounts SET folded_last = ?, folded_first = ? WHERE account_id = ?",
                )
                .bind(fl)
                .bind(ff)
                .bind(r.get::<String, _>("account_id"))
                .execute(&mut *tx)
                .await?;
                changed += 1;
            }
        }
        tx.commit().await?;
    }
    let mut tx = super::begin_write(pool).await?;
    sqlx::query("DELETE FROM name_fold")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO name_fold (version) VALUES (?)")
        .bind(FOLD_VERSION)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins what `fold_name` returns for the names whose folding is most
    /// likely to be changed. If this fails, `fold_name` changed: bump
    /// [`FOLD_VERSION`] (so that stored folds are redone at start) and then
    /// update the expected values here.
    #[test]
    fn fold_version_pins_fold_name() {
        assert_eq!(
            FOLD_VERSION, 1,
            "update the expected folds with the version"
        );
        for (name, folded) in [
            ("Élodie", "elodie"),
            ("Dupont-Martin", "dupontmartin"),
            ("  N'Diaye ", "ndiaye"),
            ("Œlla Groß", "oellagross"),
            ("Łukasz Ørsted", "lukaszorsted"),
            ("Ærø", "aero"),
            ("Mc.Donald", "mcdonald"),
            ("Ğül Şahin", "gulsahin"),
            ("Zoë", "zoe"),
        ] {
            assert_eq!(fold_name(name), folded, "{name}");
        }
    }
}

/// What the desk's account search asks for; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct AccountSearch {
    /// Words of a name, each found in the folded last or first name.
    pub name: Option<String>,
    /// Part of an account ID.
    pub account_id: Option<String>,
    /// Part of a class.
    pub class_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
}

impl AccountSearch {
    /// Whether anything was asked.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.account_id.is_none()
            && self.class_name.is_none()
            && self.birth_date.is_none()
    }
}

/// Accounts in scope (and of `school` when given) matching the search, by
/// name, at most `limit`. Patterns are escaped: a `%` typed is a `%`.
pub async fn search(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    school: Option<&str>,
    s: &AccountSearch,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM accounts WHERE 1=1"));
    scope.push_condition(&mut q, "school_code");
    if let Some(code) = school {
        q.push(" AND school_code = ").push_bind(code.to_string());
    }
    // Names are compared folded, word by word, so "dupont elodie" finds
    // Élodie Dupont-Martin.
    let words: Vec<String> = s
        .name
        .as_deref()
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || c == '-' || c == '\'')
        .map(fold_name)
        .filter(|w| !w.is_empty())
        .collect();
    for w in words {
        let p = super::like_pattern(&w);
        q.push(" AND (folded_last LIKE ")
            .push_bind(p.clone())
            .push(" ESCAPE '\\' OR folded_first LIKE ")
            .push_bind(p)
            .push(" ESCAPE '\\')");
    }
    for (col, text) in [
        ("account_id", s.account_id.as_deref()),
        ("class_name", s.class_name.as_deref()),
    ] {
        if let Some(t) = text {
            q.push(format_args!(" AND {col} LIKE "))
                .push_bind(super::like_pattern(t))
                .push(" ESCAPE '\\'");
        }
    }
    if let Some(d) = s.birth_date {
        q.push(" AND birth_date = ")
            .push_bind(d.format("%Y-%m-%d").to_string());
    }
    q.push(" ORDER BY folded_last, folded_first, account_id LIMIT ")
        .push_bind(limit);
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(from_row).collect())
}
