//! "Re-check now": runs a failed login's school and account steps again on
//! the claims it stored, for failures whose outcome depends on local data
//! (a school registered, accounts imported, a mapping made since). Only
//! claims whose signature was verified are re-run, and only the steps
//! after verification that read our data: the request, replay and time
//! checks belonged to the original response and are not repeated. The same
//! step functions as the login decide, so the rules cannot drift apart.

use super::account::{find_account, Login};
use super::steps::trusted_schools;
use super::{Known, Step, MAX_SUBJECT_BYTES};
use crate::resolve::FailureKind;
use crate::saml::{Claims, Verified, Verifier};
use crate::store::desk::{self, NewKind, RecheckTarget};
use crate::store::{self, mappings, Scope};
use sqlx::SqliteConnection;

/// The kinds a re-check may change: those decided by our data, not by the
/// response itself.
pub const RECHECKABLE: [FailureKind; 5] = [
    FailureKind::UnknownSchool,
    FailureKind::UntrustedSchool,
    FailureKind::IdentityMismatch,
    FailureKind::AmbiguousIdentity,
    FailureKind::AccountDisabled,
];

/// What a re-check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rechecked {
    /// The login would now succeed: the identity's open failures are
    /// resolved to this account (and the identity mapped as the login
    /// would have).
    Resolved { account_id: String, failures: u64 },
    /// It would fail otherwise now: the failure says so.
    KindChanged { from: FailureKind, to: FailureKind },
    /// Same outcome as before: left as it was.
    Unchanged,
}

/// Re-checks one failure in the caller's write transaction (audited when
/// it changes anything).
pub async fn recheck(
    conn: &mut SqliteConnection,
    verifier: &Verifier,
    scope: &Scope,
    t: &RecheckTarget,
    actor: &str,
) -> Result<Rechecked, sqlx::Error> {
    let Some(idp) = verifier.idp(&t.idp_entity_id) else {
        // The IdP is no longer configured: nothing to run again.
        return Ok(Rechecked::Unchanged);
    };
    let Ok(claims) = serde_json::from_str::<Claims>(&t.asserted_json) else {
        return Ok(Rechecked::Unchanged);
    };
    if t.subject.len() > MAX_SUBJECT_BYTES {
        return Ok(Rechecked::Unchanged);
    }
    // The stored claims stand for the verified assertion; the fields of
    // the original response's envelope are not read by these steps.
    let v = Verified {
        issuer: t.idp_entity_id.clone(),
        assertion_id: String::new(),
        replay_until: chrono::Utc::now(),
        in_response_to: Default::default(),
        claims,
        session: Default::default(),
    };
    let mapped_before = mappings::find(conn, &t.idp_entity_id, &t.subject)
        .await?
        .is_some();
    match attempt(conn, &idp, &v, &t.subject).await? {
        Ok(account_id) => {
            let mapping_made = !mapped_before;
            let failures =
                desk::recheck_resolved(conn, scope, t, &account_id, mapping_made, actor).await?;
            Ok(Rechecked::Resolved {
                account_id,
                failures,
            })
        }
        Err(refusal) if refusal.kind != t.kind => {
            let new = NewKind {
                kind: refusal.kind,
                detail: &refusal.detail,
                school_code: refusal.school_code.as_deref(),
                candidate_ids: refusal.candidates.as_deref(),
            };
            Ok(if desk::recheck_kind(conn, t, &new, actor).await? {
                Rechecked::KindChanged {
                    from: t.kind,
                    to: refusal.kind,
                }
            } else {
                Rechecked::Unchanged
            })
        }
        Err(_) => Ok(Rechecked::Unchanged),
    }
}

/// The login's steps from the school on, as `steps::steps` runs them.
async fn attempt(
    conn: &mut SqliteConnection,
    idp: &crate::saml::Idp,
    v: &Verified,
    subject: &str,
) -> Step<String> {
    let known = Known {
        school_code: None,
        subject: Some(subject.to_string()),
    };
    let (known, schools) = step!(trusted_schools(conn, idp, v, known));
    let login = Login {
        idp,
        v,
        known: &known,
        subject,
        schools: &schools,
    };
    find_account(conn, &login).await
}

/// What a bulk re-check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub checked: u64,
    pub resolved: u64,
    pub changed: u64,
}

/// Re-checks every re-checkable failure in scope, a batch per write
/// transaction (a long run never holds the write lock for long; each batch
/// lands whole).
pub async fn recheck_all(
    writer: &store::Writer,
    verifier: &Verifier,
    scope: &Scope,
    actor: &str,
) -> Result<Tally, sqlx::Error> {
    const BATCH: i64 = 100;
    let mut tally = Tally::default();
    let mut after = 0;
    loop {
        let mut tx = writer.begin().await?;
        let page = desk::recheckable(&mut tx, scope, &RECHECKABLE, after, BATCH).await?;
        for (id, reference) in &page {
            after = *id;
            // Read again: an earlier one of the batch may have resolved it.
            let Some(t) = desk::recheck_target(&mut tx, scope, &RECHECKABLE, reference).await?
            else {
                continue;
            };
            tally.checked += 1;
            match recheck(&mut tx, verifier, scope, &t, actor).await? {
                Rechecked::Resolved { failures, .. } => tally.resolved += failures,
                Rechecked::KindChanged { .. } => tally.changed += 1,
                Rechecked::Unchanged => {}
            }
        }
        tx.commit().await?;
        if (page.len() as i64) < BATCH {
            return Ok(tally);
        }
    }
}
