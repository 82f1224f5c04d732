//! The short way of a returning user: a verified login whose identity is
//! already mapped to an active account of a school the IdP may speak for
//! (most logins of a school day). Everything it needs is read on a reader,
//! beside other logins; the writer's login queue then runs one list of
//! statements (`store::login`) that consumes the request, remembers the
//! assertion, re-checks the mapping, the account, the school and its
//! trust, and opens the session, with the other logins queued meanwhile in
//! one transaction and one commit (`Writer::write_returning`). Any other
//! login, and any re-check that fails, goes the full way (`steps`), which
//! decides and records alone: this path never refuses, it only accepts
//! what the full way would. An error of the database here is the login's
//! error (503 when it is unavailable), as it would be on the full way.

use super::claims::{subject_of, MAX_SUBJECT_BYTES};
use super::steps::{answered_by, trusted_by_config, trusted_schools};
use super::{idp_session_of, resolved, Context, Known, Opened, Outcome, SessionWish};
use crate::saml::Verified;
use crate::service::Service;
use crate::store::{login, replay};

/// The login, done, when it is a returning user's; `None` for the full way.
pub(super) async fn returning(
    svc: &Service,
    idp: &crate::saml::Idp,
    v: &Verified,
    ctx: &Context,
    wish: Option<&SessionWish>,
) -> Result<Option<(Outcome, Option<Opened>)>, sqlx::Error> {
    if v.in_response_to.len() > 1 {
        return Ok(None);
    }
    let mut conn = svc.pool.acquire().await?;
    let (pending, relay_state) = match v.in_response_to.iter().next() {
        None if idp.config.allow_idp_initiated => (None, ctx.relay_state.clone()),
        None => return Ok(None),
        Some(id) => {
            let now = chrono::Utc::now().timestamp();
            match replay::peek_pending(&mut conn, id, now).await? {
                Some(p) => match answered_by(&p, v, ctx) {
                    Ok(relay_state) => (Some((id.as_str(), p)), relay_state),
                    Err(_) => return Ok(None),
                },
                None => return Ok(None),
            }
        }
    };
    let subject = match subject_of(&v.claims, &idp.config.subject) {
        Ok(s) if s.len() <= MAX_SUBJECT_BYTES => s,
        _ => return Ok(None),
    };
    let known = Known {
        school_code: None,
        subject: Some(subject.clone()),
    };
    let Ok((_, schools)) = trusted_schools(&mut conn, idp, v, known).await? else {
        return Ok(None);
    };
    let Some(account) = login::mapped_account(&mut conn, &v.issuer, &subject).await? else {
        return Ok(None);
    };
    let Some(school) = schools.iter().find(|c| c.is(&account.school_code)) else {
        return Ok(None);
    };
    if !account.active {
        return Ok(None);
    }
    drop(conn);
    let write = login::ReturningLogin {
        pending: pending.map(|(id, p)| (id.to_string(), p)),
        issuer: v.issuer.clone(),
        assertion_id: v.assertion_id.clone(),
        replay_until: v.replay_until.timestamp(),
        subject,
        account_id: account.account_id.clone(),
        school_code: account.school_code.clone(),
        trust_listed: !trusted_by_config(idp, school),
        replaces: wish.and_then(|w| w.replaces.clone()),
        session: wish.map(|w| {
            (
                idp_session_of(v),
                w.max_seconds,
                v.session.not_on_or_after.map(|t| t.timestamp()),
            )
        }),
    };
    let Some(written) = svc.writer.write_returning(write).await? else {
        return Ok(None);
    };
    svc.short_logins
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let opened = written.map(|(token, ttl)| Opened::Session { token, ttl });
    Ok(Some((resolved(v, account.account_id, relay_state), opened)))
}
