//! Server-side sessions. The cookie holds a random token; only its SHA-256
//! is stored, so a copy of the database opens no session. A user session
//! remembers the IdP session it came from (single logout), and the
//! LogoutRequests we sent wait here for their answer.

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

/// The IdP session a user session came from: what single logout needs to
/// name the person to the IdP (the NameID exactly as sent, and the
/// SessionIndex) and to find the sessions an IdP's LogoutRequest ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdpSession {
    pub idp_entity_id: String,
    /// None when the assertion had no NameID (the subject was an
    /// attribute): such a session ends locally only.
    pub name_id: Option<String>,
    pub name_id_format: Option<String>,
    pub name_qualifier: Option<String>,
    pub sp_name_qualifier: Option<String>,
    pub session_index: Option<String>,
}

/// Creates a user session for `account_id`, valid `ttl_seconds`, with the
/// IdP session it came from, created `now` (Unix time); returns the token.
pub async fn create_user(
    conn: &mut SqliteConnection,
    account_id: &str,
    idp: &IdpSession,
    ttl_seconds: i64,
    now: i64,
) -> Result<String, sqlx::Error> {
    let (token, q) = bind_user(sqlx::query(INSERT_USER), account_id, idp, ttl_seconds, now);
    q.execute(&mut *conn).await?;
    Ok(token)
}

/// How long a user session may live, `now` (Unix time): at most
/// `max_seconds`, and never past the IdP session's end (`not_on_or_after`);
/// `None` when that end has come.
pub fn life(max_seconds: i64, not_on_or_after: Option<i64>, now: i64) -> Option<i64> {
    match not_on_or_after {
        Some(end) if end <= now => None,
        Some(end) => Some(max_seconds.min(end - now)),
        None => Some(max_seconds),
    }
}

/// Opens a user session: its values are bound by `bind_user`.
macro_rules! insert_user {
    () => {
        "INSERT INTO sessions (token_hash, kind, principal, csrf_token, created_at, last_seen, expires_at,
   idp_entity_id, name_id, name_id_format, name_qualifier, sp_name_qualifier, session_index)"
    };
}
pub(super) const INSERT_USER: &str = concat!(
    insert_user!(),
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);
/// `INSERT_USER` as a `SELECT` of the same values, for a caller that adds
/// a `WHERE` (`store::login`).
pub(super) const INSERT_USER_SELECT: &str = concat!(
    insert_user!(),
    " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
);
/// How many values `bind_user` binds.
pub(super) const USER_VALUES: usize = 13;

/// Binds a new user session's values for `INSERT_USER` onto `q`: a fresh
/// token (returned; only its hash is stored) and CSRF token, created
/// `now` (Unix time).
pub(super) fn bind_user<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    account_id: &'q str,
    idp: &'q IdpSession,
    ttl_seconds: i64,
    now: i64,
) -> (
    String,
    sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
) {
    let token = random_token();
    let q = q
        .bind(hash_token(&token))
        .bind(SessionKind::User.as_str())
        .bind(account_id)
        .bind(random_token())
        .bind(now)
        .bind(now)
        .bind(now + ttl_seconds)
        .bind(&idp.idp_entity_id)
        .bind(&idp.name_id)
        .bind(&idp.name_id_format)
        .bind(&idp.name_qualifier)
        .bind(&idp.sp_name_qualifier)
        .bind(&idp.session_index);
    (token, q)
}

/// The IdP session of a live user session, if it has one.
pub async fn idp_session(
    conn: &mut SqliteConnection,
    token: &str,
) -> Result<Option<IdpSession>, sqlx::Error> {
    let now = chrono::Utc::now().timestamp();
    let row = sqlx::query(
        "SELECT idp_entity_id, name_id, name_id_format, name_qualifier, sp_name_qualifier, session_index
           FROM sessions WHERE token_hash = ? AND kind = 'user' AND expires_at > ? AND idp_entity_id IS NOT NULL",
    )
    .bind(hash_token(token))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| IdpSession {
        idp_entity_id: r.get("idp_entity_id"),
        name_id: r.get("name_id"),
        name_id_format: r.get("name_id_format"),
        name_qualifier: r.get("name_qualifier"),
        sp_name_qualifier: r.get("sp_name_qualifier"),
        session_index: r.get("session_index"),
    }))
}

/// Ends every user session of the person `name_id` at `idp` (an IdP's
/// LogoutRequest); with `session_indexes`, only the sessions of those IdP
/// sessions. Returns how many ended. The NameID is matched on its value:
/// an IdP that leaves out the Format or a qualifier it sent at login still
/// logs the person out (ending too much is the safe side of logout).
pub async fn end_idp_sessions(
    conn: &mut SqliteConnection,
    idp: &str,
    name_id: &str,
    session_indexes: &[String],
) -> Result<u64, sqlx::Error> {
    let mut q =
        sqlx::QueryBuilder::new("DELETE FROM sessions WHERE kind = 'user' AND idp_entity_id = ");
    q.push_bind(idp).push(" AND name_id = ").push_bind(name_id);
    if !session_indexes.is_empty() {
        q.push(" AND session_index IN (");
        let mut list = q.separated(", ");
        for i in session_indexes {
            list.push_bind(i);
        }
        q.push(")");
    }
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}

/// Keeps the ID of a LogoutRequest we sent to `idp`, until `expires_at`.
/// Expired ones are dropped on the way (the housekeeping purge does not
/// know this table). Rows are bounded by sessions: each one is written
/// while a session is deleted.
pub async fn add_pending_logout(
    conn: &mut SqliteConnection,
    id: &str,
    idp: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM pending_logouts WHERE expires_at <= ?")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO pending_logouts (id, idp_entity_id, expires_at) VALUES (?, ?, ?)")
        .bind(id)
        .bind(idp)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes (and so consumes) an unexpired LogoutRequest we sent to `idp`;
/// `false` when there is none (unknown, answered already, or expired).
pub async fn take_pending_logout(
    conn: &mut SqliteConnection,
    id: &str,
    idp: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM pending_logouts WHERE id = ? AND idp_entity_id = ? AND expires_at > ?",
    )
    .bind(id)
    .bind(idp)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
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

/// Ends a session, by the hash of its token.
pub(super) const DELETE: &str = "DELETE FROM sessions WHERE token_hash = ?";

/// Deletes a session (logout, or a new login in the same browser).
pub async fn delete(conn: &mut SqliteConnection, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query(DELETE)
        .bind(hash_token(token))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
