//! Server-side sessions. The cookie holds a random token; only its SHA-256
//! is stored, so a copy of the database opens no session.

use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection};

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub kind: SessionKind,
    pub principal: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen: i64,
}

pub fn hash_token(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random URL-safe token of 256 bits.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whose session it is: a logged-in user (an account) or an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    User,
    Admin,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::User => "user",
            SessionKind::Admin => "admin",
        }
    }
}

/// Creates a session for `principal`, valid `ttl_seconds`; returns the token.
pub async fn create(
    conn: &mut SqliteConnection,
    kind: SessionKind,
    principal: &str,
    ttl_seconds: i64,
) -> Result<String, sqlx::Error> {
    let token = random_token();
    let now = chrono::Utc::now().timestamp();
    sqlx::query(
        "INSERT INTO sessions (token_hash, kind, principal, csrf_token, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(hash_token(&token))
    .bind(kind.as_str())
    .bind(principal)
    .bind(random_token())
    .bind(now)
    .bind(now)
    .bind(now + ttl_seconds)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// The session behind a token, if it exists, is of `kind` and has not expired.
pub async fn get(
    conn: &mut SqliteConnection,
    kind: SessionKind,
    token: &str,
) -> Result<Option<Session>, sqlx::Error> {
    let now = chrono::Utc::now().timestamp();
    let row = sqlx::query(
        "SELECT principal, csrf_token, created_at, last_seen FROM sessions WHERE token_hash = ? AND kind = ? AND expires_at > ?",
    )
    .bind(hash_token(token))
    .bind(kind.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Session {
        kind,
        principal: r.get("principal"),
        csrf_token: r.get("csrf_token"),
        created_at: r.get("created_at"),
        last_seen: r.get("last_seen"),
    }))
}

/// Marks a session as used now (for the idle timeout).
pub async fn touch(conn: &mut SqliteConnection, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen = ? WHERE token_hash = ?")
        .bind(chrono::Utc::now().timestamp())
        .bind(hash_token(token))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut SqliteConnection, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
        .bind(hash_token(token))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
