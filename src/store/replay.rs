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

/// Keeps an AuthnRequest ID we sent, until it expires.
pub async fn add_pending(
    conn: &mut SqliteConnection,
    id: &str,
    idp: &str,
    relay_state: Option<&str>,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO pending_requests (id, idp_entity_id, relay_state, expires_at) VALUES (?, ?, ?, ?)")
        .bind(id)
        .bind(idp)
        .bind(relay_state)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes (and so consumes) a pending request that has not expired: its IdP
/// and RelayState.
pub async fn take_pending(
    conn: &mut SqliteConnection,
    id: &str,
    now: i64,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(
        "DELETE FROM pending_requests WHERE id = ? AND expires_at > ? RETURNING idp_entity_id, relay_state",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| (r.get("idp_entity_id"), r.get("relay_state"))))
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
