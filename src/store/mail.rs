//! The queue of e-mails that tell users their failure was resolved.

use sqlx::{Row, SqliteConnection};

/// A queued e-mail, ready to render and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub to_address: String,
    /// `fr`, `nl` or `en`: the language of the failure page.
    pub lang: String,
    pub first_name: Option<String>,
    /// The failure page the e-mail links to.
    pub reference: String,
    pub attempts: i64,
}

/// Queues one e-mail per distinct address among the scope's open failures
/// of an identity that are about to be resolved (call it before resolving,
/// in the same transaction). Returns how many were queued.
pub async fn queue_for_identity(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    identity: (&str, &str),
) -> sqlx::Result<u64> {
    let (idp, subject) = identity;
    let now = chrono::Utc::now();
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO mail_queue (failure_id, to_address, lang, first_name, created_at, next_attempt_at)
         SELECT MIN(id), json_extract(report_json, '$.email'), COALESCE(MIN(report_lang), 'fr'),
                MIN(json_extract(report_json, '$.first_name')), ",
    );
    q.push_bind(super::time_text(now))
        .push(", ")
        .push_bind(now.timestamp())
        .push(
            " FROM failures WHERE status = 'open' AND report_json IS NOT NULL
              AND COALESCE(json_extract(report_json, '$.email'), '') <> '' AND idp_entity_id = ",
        )
        .push_bind(idp)
        .push(" AND subject = ")
        .push_bind(subject);
    scope.push_condition(&mut q, "school_code");
    q.push(" GROUP BY json_extract(report_json, '$.email')");
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}

/// Unsent e-mails whose time has come, oldest first.
pub async fn due(conn: &mut SqliteConnection, now: i64, limit: i64) -> sqlx::Result<Vec<Queued>> {
    let rows = sqlx::query(
        "SELECT q.id, q.to_address, q.lang, q.first_name, q.attempts, f.reference
         FROM mail_queue q JOIN failures f ON f.id = q.failure_id
         WHERE q.sent_at IS NULL AND q.next_attempt_at <= ? ORDER BY q.id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Queued {
            id: r.get("id"),
            to_address: r.get("to_address"),
            lang: r.get("lang"),
            first_name: r.get("first_name"),
            reference: r.get("reference"),
            attempts: r.get("attempts"),
        })
        .collect())
}

pub async fn mark_sent(conn: &mut SqliteConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE mail_queue SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?")
        .bind(super::now_text())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a failed attempt; the next one is due at `next_attempt_at`
/// (`None`: given up, never tried again).
pub async fn mark_failed(
    conn: &mut SqliteConnection,
    id: i64,
    error: &str,
    next_attempt_at: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE mail_queue SET attempts = attempts + 1, last_error = ?, next_attempt_at = COALESCE(?, 9223372036854775807) WHERE id = ?",
    )
    .bind(crate::resolve::prefix_within(error, 512))
    .bind(next_attempt_at)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What the desk shows of a failure's e-mails: (sent, waiting, last error).
pub async fn status_of(
    conn: &mut SqliteConnection,
    failure_id: i64,
) -> sqlx::Result<(i64, i64, Option<String>)> {
    let r = sqlx::query(
        "SELECT COUNT(sent_at) AS sent, COUNT(*) - COUNT(sent_at) AS waiting, MAX(last_error) AS error
         FROM mail_queue WHERE failure_id = ?",
    )
    .bind(failure_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((r.get("sent"), r.get("waiting"), r.get("error")))
}

/// Forgets e-mails (addresses) older than `cutoff` (stored time text).
pub async fn purge(conn: &mut SqliteConnection, cutoff: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM mail_queue WHERE created_at < ?")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}
