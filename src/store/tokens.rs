//! API tokens: printed once, stored as SHA-256, revocable, scoped to school
//! codes like admins.

use super::sessions::hash_token;
use super::Scope;
use crate::resolve::AdminRole;
use sqlx::{Row, SqliteConnection};

/// A client of the JSON API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub name: String,
    pub role: AdminRole,
    pub schools: Vec<String>,
}

impl ApiClient {
    pub fn scope(&self) -> Scope {
        Scope::of(self.role, &self.schools)
    }
}

/// Creates a token named `name`; returns the token (shown once). The token
/// and its schools are written in one transaction.
pub async fn create(
    conn: &mut SqliteConnection,
    name: &str,
    role: AdminRole,
    schools: &[String],
) -> Result<Result<String, String>, sqlx::Error> {
    use sqlx::Connection;
    let token = format!("jnt_{}", super::sessions::random_token());
    let mut tx = conn.begin().await?;
    let r = sqlx::query(
        "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(hash_token(&token))
    .bind(super::now_text())
    .execute(&mut *tx)
    .await;
    let id = match r {
        Ok(r) => r.last_insert_rowid(),
        Err(e) if super::is_unique_violation(&e) => {
            return Ok(Err(format!("a token named {name:?} exists already")))
        }
        Err(e) => return Err(e),
    };
    let mut unique: Vec<&String> = schools.iter().collect();
    unique.sort();
    unique.dedup();
    for s in unique {
        sqlx::query("INSERT INTO api_token_schools (token_id, school_code) VALUES (?, ?)")
            .bind(id)
            .bind(s)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Ok(token))
}

/// Revokes the token named `name`; false when there is none (or it was
/// revoked already).
pub async fn revoke(conn: &mut SqliteConnection, name: &str) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
            .bind(super::now_text())
            .bind(name)
            .execute(&mut *conn)
            .await?;
    Ok(r.rows_affected() == 1)
}

/// The client behind a token, unless it is unknown or revoked.
pub async fn client(
    conn: &mut SqliteConnection,
    token: &str,
) -> Result<Option<ApiClient>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT id, name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
    )
    .bind(hash_token(token))
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let schools = sqlx::query_scalar(
        "SELECT school_code FROM api_token_schools WHERE token_id = ? ORDER BY school_code",
    )
    .bind(row.get::<i64, _>("id"))
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(ApiClient {
        name: row.get("name"),
        role: AdminRole::parse(row.get("role")).unwrap_or(AdminRole::SchoolAdmin),
        schools,
    }))
}
