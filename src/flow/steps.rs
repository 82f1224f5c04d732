//! The verified login's steps, in order: the request it answers, replay, the
//! school and the IdP's trust for it, the subject; then the account
//! (`account`).

use super::account::{find_account, Login};
use super::claims::{subject_of, MAX_SUBJECT_BYTES};
use super::{refuse, Context, Known, Step};
use crate::resolve::school_code::listed;
use crate::resolve::{parse_school_code, FailureKind, SchoolCode};
use crate::saml::Verified;
use crate::store::{self, replay, schools};
use sqlx::SqliteConnection;

/// The login's steps after verification, in order: the request it answers,
/// replay, the school and the IdP's trust for it, the subject, then the
/// account by mapping, by the passed account ID, or by careful matching.
pub(super) async fn steps(
    conn: &mut SqliteConnection,
    idp: &crate::saml::Idp,
    v: &Verified,
    ctx: &Context,
) -> Step<(String, Option<String>)> {
    let relay_state = step!(solicited(conn, idp, v, ctx));
    // Replay: the assertion ID is kept until the assertion expires.
    if !replay::remember_assertion(conn, &v.issuer, &v.assertion_id, v.replay_until.timestamp())
        .await?
    {
        return Ok(Err(refuse(
            FailureKind::Replayed,
            format!("assertion {} was already used", v.assertion_id),
        )));
    }
    let subject = subject_of(&v.claims, &idp.config.subject);
    let known = Known {
        school_code: None,
        subject: subject.as_ref().ok().cloned(),
    };
    let (known, schools) = step!(trusted_schools(conn, idp, v, known));
    let subject = match subject {
        Ok(s) if s.len() > MAX_SUBJECT_BYTES => {
            // One longer than a failure can store could never be mapped.
            return Ok(Err(known.refuse(
                FailureKind::MissingSubject,
                format!(
                    "the subject is {} bytes long; at most {MAX_SUBJECT_BYTES} are taken",
                    s.len()
                ),
            )));
        }
        Ok(s) => s,
        Err(why) => return Ok(Err(known.refuse(FailureKind::MissingSubject, why))),
    };
    let login = Login {
        idp,
        v,
        known: &known,
        subject: &subject,
        schools: &schools,
    };
    let account = step!(find_account(conn, &login));
    Ok(Ok((account, relay_state)))
}

/// InResponseTo: when present it must name a pending request of ours to
/// this IdP, from this browser (consumed now); when absent, IdP-initiated
/// login must be on. Returns the RelayState to honour.
async fn solicited(
    conn: &mut SqliteConnection,
    idp: &crate::saml::Idp,
    v: &Verified,
    ctx: &Context,
) -> Step<Option<String>> {
    let replayed = |detail: &str| Ok(Err(refuse(FailureKind::Replayed, detail)));
    if v.in_response_to.len() > 1 {
        return replayed("the Response and the Assertion name different requests in InResponseTo");
    }
    let Some(id) = v.in_response_to.iter().next() else {
        if !idp.config.allow_idp_initiated {
            return replayed("unsolicited response, and IdP-initiated login is off for this IdP");
        }
        return Ok(Ok(ctx.relay_state.clone()));
    };
    let now = chrono::Utc::now().timestamp();
    let Some(p) = replay::take_pending(conn, id, now).await? else {
        return replayed(
            "InResponseTo names no pending request of ours (unknown, used or expired)",
        );
    };
    match answered_by(&p, v, ctx) {
        Ok(relay_state) => Ok(Ok(relay_state)),
        Err(why) => replayed(why),
    }
}

/// Whether our pending request `p` is answered by this response from this
/// browser: the RelayState to honour, or why not.
pub(super) fn answered_by(
    p: &replay::Pending,
    v: &Verified,
    ctx: &Context,
) -> Result<Option<String>, &'static str> {
    let browser = ctx
        .browser_token
        .as_deref()
        .map(store::sessions::hash_token);
    if p.browser_hash.is_some() && browser != p.browser_hash {
        return Err("the answer to our request came from another browser than the one that started the login (no or another login cookie)");
    }
    if p.idp_entity_id != v.issuer {
        return Err("InResponseTo names a request sent to another IdP");
    }
    Ok(p.relay_state.clone().or_else(|| ctx.relay_state.clone()))
}

/// Whether the IdP's configuration (`[[idp]] schools`) trusts it for a
/// school; otherwise the school must list the IdP itself.
pub(super) fn trusted_by_config(idp: &crate::saml::Idp, code: &SchoolCode) -> bool {
    idp.config
        .schools
        .as_ref()
        .is_some_and(|t| t.includes_code(code.as_str()))
}

/// The asserted schools this IdP may speak for. School code: the
/// configured attributes, BRIN or UAI by shape; several values (a teacher
/// in two schools) are all considered. Of the registered ones, only those
/// the IdP is trusted for (`[[idp]] schools`, or the school's
/// `idp_entity_ids`) take part in what follows.
pub(super) async fn trusted_schools(
    conn: &mut SqliteConnection,
    idp: &crate::saml::Idp,
    v: &Verified,
    mut known: Known,
) -> Step<(Known, Vec<SchoolCode>)> {
    let values: Vec<&str> = v.claims.all_values(&idp.config.attributes.school_code);
    if values.is_empty() {
        return Ok(Err(known.refuse(
            FailureKind::MissingSchoolCode,
            "no school code attribute in the assertion",
        )));
    }
    let valid: Vec<SchoolCode> = values.iter().filter_map(|s| parse_school_code(s)).collect();
    if valid.is_empty() {
        let shown: Vec<String> = values.iter().map(|s| format!("{s:?}")).collect();
        return Ok(Err(known.refuse(
            FailureKind::InvalidSchoolCode,
            format!("{} is neither a BRIN nor a valid UAI", shown.join(", ")),
        )));
    }
    let mut registered: Vec<SchoolCode> = Vec::new();
    for code in &valid {
        if schools::get(conn, code.as_str()).await?.is_some() && !registered.contains(code) {
            registered.push(code.clone());
        }
    }
    known.school_code = registered.first().or(valid.first()).map(|c| c.to_string());
    if registered.is_empty() {
        return Ok(Err(known.refuse(
            FailureKind::UnknownSchool,
            format!("school {} is not registered", listed(&valid)),
        )));
    }
    let mut trusted = Vec::new();
    for code in &registered {
        if trusted_by_config(idp, code)
            || schools::lists_idp(conn, code.as_str(), &v.issuer).await?
        {
            trusted.push(code.clone());
        }
    }
    if trusted.is_empty() {
        return Ok(Err(known.refuse(
            FailureKind::UntrustedSchool,
            format!(
                "this IdP is not trusted for school {}: add it to the [[idp]] `schools` of {}, or add the IdP to the school's idp_entity_ids, if this IdP really serves it",
                listed(&registered),
                v.issuer
            ),
        )));
    }
    known.school_code = trusted.first().map(|c| c.to_string());
    Ok(Ok((known, trusted)))
}
