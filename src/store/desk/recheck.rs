//! What "re-check now" reads and writes: the open failures of verified
//! claims it may run again, and the two outcomes it records (resolved as
//! the login would now be, or a changed kind), each audited.

use super::undo::resolve_with_trail;
use crate::resolve::FailureKind;
use crate::store::failures::ResolvedBy;
use crate::store::{audit, is_unique_violation, Scope};
use serde_json::json;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// An open failure whose stored, verified claims can be run again.
#[derive(Debug, Clone)]
pub struct RecheckTarget {
    pub id: i64,
    pub reference: String,
    pub kind: FailureKind,
    pub idp_entity_id: String,
    pub subject: String,
    pub school_code: Option<String>,
    /// The claims as the login stored them (`{"name_id":…, "attributes":[…]}`).
    pub asserted_json: String,
}

fn push_recheckable<'q>(q: &mut QueryBuilder<'q, Sqlite>, scope: &'q Scope, kinds: &[FailureKind]) {
    // Only claims whose signature was verified: re-running an unverified
    // assertion would map whatever a forger wrote.
    q.push(" AND status = 'open' AND asserted_verified = 1 AND idp_entity_id IS NOT NULL AND subject IS NOT NULL AND kind IN (");
    let mut list = q.separated(", ");
    for k in kinds {
        list.push_bind(k.as_str());
    }
    q.push(")");
    scope.push_condition(q, "school_code");
}

/// The failure `reference` when in scope and re-checkable.
pub async fn recheck_target(
    conn: &mut SqliteConnection,
    scope: &Scope,
    kinds: &[FailureKind],
    reference: &str,
) -> Result<Option<RecheckTarget>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT id, reference, kind, idp_entity_id, subject, school_code, asserted_json FROM failures WHERE reference = ",
    );
    q.push_bind(reference);
    push_recheckable(&mut q, scope, kinds);
    let Some(r) = q.build().fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let kind: String = r.get("kind");
    Ok(kind.parse().ok().map(|kind| RecheckTarget {
        id: r.get("id"),
        reference: r.get("reference"),
        kind,
        idp_entity_id: r.get("idp_entity_id"),
        subject: r.get("subject"),
        school_code: r.get("school_code"),
        asserted_json: r.get("asserted_json"),
    }))
}

/// The references of re-checkable failures in scope after row `after_id`,
/// by ID (the bulk re-check's keyset page), with the last row ID.
pub async fn recheckable(
    conn: &mut SqliteConnection,
    scope: &Scope,
    kinds: &[FailureKind],
    after_id: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT id, reference FROM failures WHERE id > ");
    q.push_bind(after_id);
    push_recheckable(&mut q, scope, kinds);
    q.push(" ORDER BY id LIMIT ").push_bind(limit);
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("id"), r.get("reference")))
        .collect())
}

/// Records that the login would now succeed: the identity's open failures
/// in scope resolved to `account_id` (the mapping, if the steps made one,
/// is named for undo). Returns how many failures were resolved.
pub async fn recheck_resolved(
    conn: &mut SqliteConnection,
    scope: &Scope,
    t: &RecheckTarget,
    account_id: &str,
    mapping_made: bool,
    actor: &str,
) -> Result<u64, sqlx::Error> {
    let identity = (t.idp_entity_id.as_str(), t.subject.as_str());
    let (resolved, trail) = resolve_with_trail(
        conn,
        scope,
        identity,
        account_id,
        actor,
        mapping_made,
        ResolvedBy::Admin,
    )
    .await?;
    audit::record(
        conn,
        actor,
        "failure.recheck",
        Some(&t.reference),
        t.school_code.as_deref(),
        Some(json!({"status": "open", "kind": t.kind.as_str()})),
        Some(trail),
    )
    .await?;
    Ok(resolved)
}

/// What a re-run login refused with, as the failure will now say.
pub struct NewKind<'a> {
    pub kind: FailureKind,
    pub detail: &'a str,
    pub school_code: Option<&'a str>,
    pub candidate_ids: Option<&'a str>,
}

/// Records the kind the login would now fail with; false (nothing
/// written) when the failure is no longer open, or another open failure of
/// the identity already has that kind.
pub async fn recheck_kind(
    conn: &mut SqliteConnection,
    t: &RecheckTarget,
    new: &NewKind<'_>,
    actor: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE failures SET kind = ?, detail = ?, school_code = ?, candidate_ids = ? WHERE id = ? AND status = 'open'",
    )
    .bind(new.kind.as_str())
    .bind(new.detail)
    .bind(new.school_code)
    .bind(new.candidate_ids)
    .bind(t.id)
    .execute(&mut *conn)
    .await;
    match r {
        Ok(r) if r.rows_affected() == 1 => {}
        Ok(_) => return Ok(false),
        Err(e) if is_unique_violation(&e) => return Ok(false),
        Err(e) => return Err(e),
    }
    audit::record(
        conn,
        actor,
        "failure.recheck",
        Some(&t.reference),
        new.school_code.or(t.school_code.as_deref()),
        Some(json!({"status": "open", "kind": t.kind.as_str()})),
        Some(json!({"status": "open", "kind": new.kind.as_str()})),
    )
    .await?;
    Ok(true)
}
