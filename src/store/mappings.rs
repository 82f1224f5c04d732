//! Identity mappings: (IdP entity ID, subject) → account.

use sqlx::{Row, SqliteConnection};

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
    match r {
        Ok(_) => Ok(true),
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
