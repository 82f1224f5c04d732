//! Identity mappings: (IdP entity ID, subject) → account.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// Where a mapping came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Attribute,
    Auto,
    Admin,
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Attribute => "attribute",
            Source::Auto => "auto",
            Source::Admin => "admin",
            Source::Import => "import",
        }
    }
}

/// The account a mapped identity leads to.
pub async fn find(
    conn: &mut SqliteConnection,
    idp: &str,
    subject: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_id FROM mappings WHERE idp_entity_id = ? AND subject = ?")
        .bind(idp)
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await
}

/// The row ID of a mapping, by its identity.
pub async fn id_of(
    conn: &mut SqliteConnection,
    idp: &str,
    subject: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM mappings WHERE idp_entity_id = ? AND subject = ?")
        .bind(idp)
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await
}

/// The row ID and creation time of a mapping, by its identity: what an
/// audit entry keeps so that an undo deletes that very row.
pub async fn identity_row(
    conn: &mut SqliteConnection,
    idp: &str,
    subject: &str,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    let row =
        sqlx::query("SELECT id, created_at FROM mappings WHERE idp_entity_id = ? AND subject = ?")
            .bind(idp)
            .bind(subject)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| (r.get("id"), r.get("created_at"))))
}

/// Deletes the mapping row `id` if it still is what was made (same
/// identity, account and creation time) and its account is in scope; false
/// when it is gone or changed.
pub async fn delete_exact(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    id: i64,
    identity: (&str, &str),
    account_id: &str,
    created_at: &str,
) -> Result<bool, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM mappings WHERE id = ");
    q.push_bind(id)
        .push(" AND idp_entity_id = ")
        .push_bind(identity.0)
        .push(" AND subject = ")
        .push_bind(identity.1)
        .push(" AND account_id = ")
        .push_bind(account_id)
        .push(" AND created_at = ")
        .push_bind(created_at)
        .push(" AND account_id IN (SELECT account_id FROM accounts WHERE 1=1");
    scope.push_condition(&mut q, "school_code");
    q.push(")");
    Ok(q.build().execute(&mut *conn).await?.rows_affected() == 1)
}

/// A mapping row as it was, to put back by an undo of its deletion.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Restored {
    #[serde(rename = "mapping_id")]
    pub id: i64,
    pub idp_entity_id: String,
    pub subject: String,
    pub account_id: String,
    pub source: String,
    pub created_at: String,
    pub created_by: Option<String>,
}

/// Puts a deleted mapping back with its ID, source and creation; false when
/// the identity or the ID is taken since (UNIQUE and primary key decide).
pub async fn restore(conn: &mut SqliteConnection, m: &Restored) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO mappings (id, idp_entity_id, subject, account_id, source, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(m.id)
    .bind(&m.idp_entity_id)
    .bind(&m.subject)
    .bind(&m.account_id)
    .bind(&m.source)
    .bind(&m.created_at)
    .bind(&m.created_by)
    .execute(&mut *conn)
    .await;
    super::inserted(r)
}

/// The subjects through which an IdP already reaches an account.
pub async fn subjects_for(
    conn: &mut SqliteConnection,
    idp: &str,
    account_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT subject FROM mappings WHERE idp_entity_id = ? AND account_id = ?")
            .bind(idp)
            .bind(account_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.iter().map(|r| r.get("subject")).collect())
}

/// Inserts a mapping. The UNIQUE (IdP, subject) constraint guarantees one
/// mapping per identity; a concurrent insert of the same identity is told
/// apart by the error's kind and reported as `Ok(false)`.
pub async fn insert(
    conn: &mut SqliteConnection,
    idp: &str,
    subject: &str,
    account_id: &str,
    source: Source,
    created_by: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(idp)
    .bind(subject)
    .bind(account_id)
    .bind(source.as_str())
    .bind(super::now_text())
    .bind(created_by)
    .execute(&mut *conn)
    .await;
    super::inserted(r)
}

/// A mapping as the admin pages show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MappingRow {
    pub id: i64,
    pub idp_entity_id: String,
    pub subject: String,
    pub account_id: String,
    pub source: String,
    pub created_at: String,
    pub created_by: Option<String>,
    pub school_code: String,
    pub last_name: String,
    pub first_name: String,
}

const ROW_SQL: &str = "SELECT m.id, m.idp_entity_id, m.subject, m.account_id, m.source, m.created_at, m.created_by,
    a.school_code, a.last_name, a.first_name FROM mappings m JOIN accounts a ON a.account_id = m.account_id WHERE 1=1";

fn row(r: &sqlx::sqlite::SqliteRow) -> MappingRow {
    MappingRow {
        id: r.get("id"),
        idp_entity_id: r.get("idp_entity_id"),
        subject: r.get("subject"),
        account_id: r.get("account_id"),
        source: r.get("source"),
        created_at: r.get("created_at"),
        created_by: r.get("created_by"),
        school_code: r.get("school_code"),
        last_name: r.get("last_name"),
        first_name: r.get("first_name"),
    }
}

/// One mapping whose account is in scope.
pub async fn get(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    id: i64,
) -> Result<Option<MappingRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(ROW_SQL);
    q.push(" AND m.id = ").push_bind(id);
    scope.push_condition(&mut q, "a.school_code");
    Ok(q.build()
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(row))
}

/// Mappings in scope matching `text` (subject, account, names, IdP), newest
/// first, before the `before_id` cursor.
pub async fn list(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    text: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<MappingRow>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(ROW_SQL);
    scope.push_condition(&mut q, "a.school_code");
    if let Some(t) = text {
        let p = super::like_pattern(t);
        q.push(" AND (");
        let mut any = q.separated(" OR ");
        for col in [
            "m.subject",
            "m.account_id",
            "a.last_name",
            "a.first_name",
            "m.idp_entity_id",
        ] {
            any.push(format_args!("{col} LIKE "))
                .push_bind_unseparated(p.clone())
                .push_unseparated(" ESCAPE '\\'");
        }
        q.push(")");
    }
    if let Some(b) = before_id {
        q.push(" AND m.id < ").push_bind(b);
    }
    q.push(" ORDER BY m.id DESC LIMIT ").push_bind(limit);
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(row).collect())
}

/// One mapping as the CSV export writes it.
pub struct ExportedMapping {
    pub id: i64,
    pub idp_entity_id: String,
    pub subject: String,
    pub account_id: String,
    pub school_code: String,
    pub source: String,
    pub created_at: String,
    pub created_by: Option<String>,
}

/// The next `limit` mappings after row `after_id`, in the admin's scope
/// (and of one school when asked), by ID: the export's keyset page.
pub async fn export_page(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    school: Option<&str>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<ExportedMapping>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT m.id, m.idp_entity_id, m.subject, m.account_id, a.school_code, m.source, m.created_at, m.created_by
         FROM mappings m JOIN accounts a ON a.account_id = m.account_id WHERE m.id > ",
    );
    q.push_bind(after_id);
    scope.push_condition(&mut q, "a.school_code");
    if let Some(s) = school {
        q.push(" AND a.school_code = ").push_bind(s);
    }
    q.push(" ORDER BY m.id LIMIT ").push_bind(limit);
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|r| ExportedMapping {
            id: r.get("id"),
            idp_entity_id: r.get("idp_entity_id"),
            subject: r.get("subject"),
            account_id: r.get("account_id"),
            school_code: r.get("school_code"),
            source: r.get("source"),
            created_at: r.get("created_at"),
            created_by: r.get("created_by"),
        })
        .collect())
}
