//! The replay cache of accepted assertion IDs, and the AuthnRequests we sent.

use sqlx::{Row, SqliteConnection};

/// Remembers an assertion ID (IdP, ID, expiry); the primary key refuses
/// one already there (a replay).
macro_rules! remember_into {
    () => {
        "INSERT INTO seen_assertions (idp_entity_id, assertion_id, expires_at)"
    };
}
/// Remembers an assertion ID (its values follow: `REMEMBER`'s, or a
/// `SELECT` with a `WHERE`).
pub(super) const REMEMBER_INTO: &str = remember_into!();
pub(super) const REMEMBER: &str = concat!(remember_into!(), " VALUES (?, ?, ?)");

/// Remembers an assertion ID until `expires_at`; `false` if it was already
/// there (a replay). The primary key makes this atomic.
pub async fn remember_assertion(
    conn: &mut SqliteConnection,
    idp: &str,
    assertion_id: &str,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(REMEMBER)
        .bind(idp)
        .bind(assertion_id)
        .bind(expires_at)
        .execute(&mut *conn)
        .await;
    super::inserted(r)
}

/// An AuthnRequest we sent and may be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub idp_entity_id: String,
    pub relay_state: Option<String>,
    /// The hash of the login cookie of the browser that started it.
    pub browser_hash: Option<String>,
}

/// How many unexpired requests one client address keeps (its oldest give
/// way), and all addresses together (past it, no new login starts).
pub const PENDING_PER_ADDRESS: i64 = 30;
pub const PENDING_IN_ALL: i64 = 100_000;

/// Keeps an AuthnRequest ID we sent, until it expires, within the bounds
/// above; `false` when the table is full.
pub async fn add_pending(
    conn: &mut SqliteConnection,
    id: &str,
    p: &Pending,
    client_ip: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_requests WHERE expires_at > ?")
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    if all >= PENDING_IN_ALL {
        return Ok(false);
    }
    sqlx::query(
        "DELETE FROM pending_requests WHERE id IN (SELECT id FROM pending_requests WHERE client_ip IS ? AND expires_at > ?
           ORDER BY expires_at DESC LIMIT -1 OFFSET ?)",
    )
    .bind(client_ip)
    .bind(now)
    .bind(PENDING_PER_ADDRESS - 1)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO pending_requests (id, idp_entity_id, relay_state, browser_hash, client_ip, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(id)
        .bind(&p.idp_entity_id)
        .bind(&p.relay_state)
        .bind(&p.browser_hash)
        .bind(client_ip)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Consumes a pending request (ID, now) that has not expired, returning it.
const TAKE_PENDING: &str = "DELETE FROM pending_requests WHERE id = ? AND expires_at > ?
  RETURNING idp_entity_id, relay_state, browser_hash";

fn pending_of(r: &sqlx::sqlite::SqliteRow) -> Pending {
    Pending {
        idp_entity_id: r.get("idp_entity_id"),
        relay_state: r.get("relay_state"),
        browser_hash: r.get("browser_hash"),
    }
}

/// Takes (and so consumes) a pending request that has not expired.
pub async fn take_pending(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
) -> Result<Option<Pending>, sqlx::Error> {
    let row = sqlx::query(TAKE_PENDING)
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(pending_of))
}

/// A pending request that has not expired, read and left in place (a
/// returning user's login reads it first; `store::login` consumes it).
pub async fn peek_pending(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
) -> Result<Option<Pending>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT idp_entity_id, relay_state, browser_hash FROM pending_requests WHERE id = ? AND expires_at > ?",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(pending_of))
}

/// Drops expired replay-cache entries, pending requests and sessions.
pub async fn purge_expired(conn: &mut SqliteConnection, now: i64) -> Result<(), sqlx::Error> {
    for table in ["seen_assertions", "pending_requests", "sessions"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= ?"))
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
