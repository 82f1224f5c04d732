//! What changes a recorded failure: the user's report, its resolution, and
//! the retention purge of its personal data.

use crate::store::{mail, now_text, time_text, Scope};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// Stores (or replaces) the user's report on an open failure; false when the
/// failure is no longer open.
pub async fn save_report(
    conn: &mut SqliteConnection,
    reference: &str,
    report_json: &str,
    lang: &str,
) -> Result<bool, sqlx::Error> {
    // The language the form was sent in: the e-mail that says it is
    // resolved speaks it.
    let r = sqlx::query(
        "UPDATE failures SET report_json = ?, report_lang = ?, reported_at = ? WHERE reference = ? AND status = 'open'",
    )
    .bind(report_json)
    .bind(lang)
    .bind(now_text())
    .bind(reference)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forgets the personal data of failures not seen for `days` days: the raw
/// response, client details, the identity's subject at the IdP, what the
/// IdP asserted (claims and names), the accounts matching found, what the
/// user declared in the form (contact details included), and the e-mails
/// queued for them. These are minors' data, kept only as long as
/// needed; the row itself (kind, school, times, resolution) stays for the
/// statistics.
pub async fn purge_personal_data(
    conn: &mut SqliteConnection,
    days: i64,
) -> Result<u64, sqlx::Error> {
    let cutoff = time_text(chrono::Utc::now() - chrono::Duration::days(days));
    let r = sqlx::query(
        "UPDATE failures SET raw_response = NULL, client_ip = NULL, user_agent = NULL,
           asserted_json = '{}', asserted_last_name = NULL, asserted_first_name = NULL,
           asserted_birth_date = NULL, asserted_role = NULL, asserted_class_name = NULL,
           report_json = NULL, relay_state = NULL, subject = NULL, candidate_ids = NULL
         WHERE last_seen < ? AND (raw_response IS NOT NULL OR client_ip IS NOT NULL OR user_agent IS NOT NULL
           OR asserted_json <> '{}' OR asserted_last_name IS NOT NULL OR asserted_first_name IS NOT NULL
           OR asserted_birth_date IS NOT NULL OR asserted_role IS NOT NULL
           OR asserted_class_name IS NOT NULL OR report_json IS NOT NULL OR relay_state IS NOT NULL
           OR subject IS NOT NULL OR candidate_ids IS NOT NULL)",
    )
    .bind(&cutoff)
    .execute(&mut *conn)
    .await?;
    mail::purge(conn, &cutoff).await?;
    Ok(r.rows_affected())
}

/// Who resolved an identity's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedBy {
    Admin,
    Import,
}

/// Resolves the scope's open failures of one identity (IdP, subject) to
/// `account_id`; returns how many.
pub async fn resolve_identity(
    conn: &mut SqliteConnection,
    scope: &Scope,
    identity: (&str, &str),
    account_id: &str,
    actor: &str,
    by: ResolvedBy,
) -> sqlx::Result<u64> {
    let (idp_entity_id, subject) = identity;
    // Whoever sent the form with an e-mail is told, once, in the same
    // transaction: a resolution and its e-mail land together.
    mail::queue_for_identity(conn, scope, identity).await?;
    let now = now_text();
    let source = match by {
        ResolvedBy::Admin => "admin",
        ResolvedBy::Import => "import",
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE failures SET status = 'resolved', resolved_account_id = ",
    );
    q.push_bind(account_id)
        .push(", resolved_by = ")
        .push_bind(actor)
        .push(", resolved_at = ")
        .push_bind(now)
        .push(", resolution_source = ")
        .push_bind(source)
        .push(" WHERE idp_entity_id = ")
        .push_bind(idp_entity_id)
        .push(" AND subject = ")
        .push_bind(subject)
        .push(" AND status = 'open'");
    scope.push_condition(&mut q, "school_code");
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}
