//! The replay cache of accepted assertion IDs, and the AuthnRequests we sent.

use sqlx::{Row, SqliteConnection};

/// Remembers an assertion ID until `expires_at`; `false` if it was already
/// there (a replay). The primary key makes this atomic.
pub async fn remember_assertion(
    conn: &mut SqliteConnection,
    idp: &str,
    assertion_id: &str,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO seen_assertions (idp_entity_id, assertion_id, expires_at) VALUES (?, ?, ?)",
    )
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

/// Keeps an AuthnRequest ID we sent, until it expires.
pub async fn add_pending(
    conn: &mut SqliteConnection,
    id: &str,
    p: &Pending,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO pending_requests (id, idp_entity_id, relay_state, browser_hash, expires_at) VALUES (?, ?, ?, ?, ?)")
        .bind(id)
        .bind(&p.idp_entity_id)
        .bind(&p.relay_state)
        .bind(&p.browser_hash)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes (and so consumes) a pending request that has not expired.
pub async fn take_pending(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
) -> Result<Option<Pending>, sqlx::Error> {
    let row = sqlx::query(
        "DELETE FROM pending_requests WHERE id = ? AND expires_at > ? RETURNING idp_entity_id, relay_state, browser_hash",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Pending {
        idp_entity_id: r.get("idp_entity_id"),
        relay_state: r.get("relay_state"),
        browser_hash: r.get("browser_hash"),
    }))
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
