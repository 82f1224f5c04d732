//! One login, start to end: verify the response, check InResponseTo and the
//! replay cache, read school code and subject, resolve the identity, and
//! record the failure when any step refuses. The ACS, `jointure ingest` and
//! the API all come through here, so they classify alike.
//!
//! Here the entry points and the recording of refusals; in `claims` what is
//! read and kept of the claims; in `steps` the verified login's steps up to
//! its school and subject; in `account` the account it resolves to; in
//! `returning` the short way of an identity already mapped.

use crate::resolve::{parse_school_code, FailureKind};
use crate::saml::{Rejection, Verified};
use crate::service::Service;
use crate::store::{self, failures};
use claims::describe_claims;

/// A step's answer: go on with a value, or the login is refused.
type Step<T> = Result<Result<T, Refusal>, sqlx::Error>;

/// Goes on with a step's value, or returns its refusal.
macro_rules! step {
    ($e:expr) => {
        match $e.await? {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        }
    };
}

mod account;
mod claims;
pub mod recheck;
mod returning;
mod steps;

pub use claims::{
    MAX_STORED_ATTRIBUTES, MAX_STORED_CLAIM_BYTES, MAX_STORED_NAME_BYTES, MAX_STORED_VALUES,
    MAX_STORED_VALUE_BYTES, MAX_SUBJECT_BYTES,
};

/// Where a response came from, for the record.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub relay_state: Option<String>,
    /// The login cookie of the posting browser (SP-initiated logins over
    /// https are bound to it).
    pub browser_token: Option<String>,
}

/// How a login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Resolved {
        account_id: String,
        /// The RelayState to honour (ours from the pending request, else the
        /// posted one); the caller keeps it same-origin.
        relay_state: Option<String>,
        /// The IdP that logged the person in, and the NameID (value and
        /// Format) and IdP session of the verified assertion: what single
        /// logout needs to name the person to that IdP.
        idp_entity_id: String,
        name_id: Option<String>,
        name_id_format: Option<String>,
        session: crate::saml::Session,
    },
    Failed {
        kind: FailureKind,
        reference: String,
        support_code: String,
    },
}

/// What the ACS asks of a login besides its outcome: a user session opened
/// in the same transaction as the replay record and the mapping, so a login
/// is one commit, and a crash loses neither half of it.
#[derive(Debug, Clone, Default)]
pub struct SessionWish {
    /// The browser's previous session token, ended by this login.
    pub replaces: Option<String>,
    /// The session's longest life; the IdP's SessionNotOnOrAfter may
    /// shorten it.
    pub max_seconds: i64,
}

/// The session a resolved login opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Session {
        token: String,
        ttl: i64,
    },
    /// The IdP session had already ended (SessionNotOnOrAfter): no session.
    IdpSessionEnded,
}

/// A refusal found after verification, with what we know by then.
struct Refusal {
    kind: FailureKind,
    detail: String,
    school_code: Option<String>,
    subject: Option<String>,
    candidates: Option<String>,
}

fn refuse(kind: FailureKind, detail: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        detail: detail.into(),
        school_code: None,
        subject: None,
        candidates: None,
    }
}

/// What is known of the login when a later step refuses it.
struct Known {
    school_code: Option<String>,
    subject: Option<String>,
}

impl Known {
    fn refuse(&self, kind: FailureKind, detail: impl Into<String>) -> Refusal {
        Refusal {
            school_code: self.school_code.clone(),
            subject: self.subject.clone(),
            ..refuse(kind, detail)
        }
    }
}

/// Processes a raw `SAMLResponse` form value (base64).
pub async fn process_encoded(
    svc: &Service,
    encoded: &str,
    ctx: &Context,
) -> Result<Outcome, sqlx::Error> {
    Ok(login_encoded(svc, encoded, ctx, None).await?.0)
}

/// Processes a raw `SAMLResponse` form value (base64) and, when the login
/// resolves, opens the session `wish` asks for in the same transaction.
pub async fn login_encoded(
    svc: &Service,
    encoded: &str,
    ctx: &Context,
    wish: Option<&SessionWish>,
) -> Result<(Outcome, Option<Opened>), sqlx::Error> {
    match crate::saml::decode_saml_response(encoded) {
        Ok(xml) => login_xml(svc, xml, ctx, wish).await,
        Err(why) => {
            let rej = Rejection::new(FailureKind::MalformedRequest, why);
            let outcome = record_rejection(svc, rej, Some(encoded.to_string()), ctx).await?;
            Ok((outcome, None))
        }
    }
}

/// Processes a decoded response document.
pub async fn process_xml(
    svc: &Service,
    xml: String,
    ctx: &Context,
) -> Result<Outcome, sqlx::Error> {
    Ok(login_xml(svc, xml, ctx, None).await?.0)
}

/// Verifies (on a blocking thread, at most one per core), then records.
async fn login_xml(
    svc: &Service,
    xml: String,
    ctx: &Context,
    wish: Option<&SessionWish>,
) -> Result<(Outcome, Option<Opened>), sqlx::Error> {
    let verifier = svc.verifier.clone();
    let permit = svc
        .verify_permits
        .acquire()
        .await
        .map_err(|_| sqlx::Error::PoolClosed)?;
    let (xml, verified) = tokio::task::spawn_blocking(move || {
        let r = verifier.verify(&xml, chrono::Utc::now());
        (xml, r)
    })
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("verification task failed: {e}")))?;
    drop(permit);
    match verified {
        Err(rej) => Ok((record_rejection(svc, rej, Some(xml), ctx).await?, None)),
        Ok(v) => resolve_verified(svc, v, xml, ctx, wish).await,
    }
}

/// Records a refusal that came before (or at) signature verification.
pub async fn record_rejection(
    svc: &Service,
    rej: Rejection,
    raw: Option<String>,
    ctx: &Context,
) -> Result<Outcome, sqlx::Error> {
    let idp_cfg = rej.issuer.as_deref().and_then(|i| svc.verifier.idp(i));
    let mut f = failures::NewFailure {
        kind: Some(rej.kind),
        // An unknown issuer is recorded too: it is what the admin needs to
        // see ("unknown Entity ID").
        idp_entity_id: rej.issuer.clone(),
        detail: rej.detail.clone(),
        raw_response: raw,
        client_ip: ctx.client_ip.clone(),
        user_agent: ctx.user_agent.clone(),
        relay_state: ctx.relay_state.clone(),
        ..Default::default()
    };
    if let Some(claims) = &rej.unverified {
        let attrs = idp_cfg
            .map(|i| i.config.attributes.clone())
            .unwrap_or_default();
        describe_claims(&mut f, claims, &attrs, false);
        f.school_code = claims
            .all_values(&attrs.school_code)
            .into_iter()
            .find_map(parse_school_code)
            .map(|c| c.as_str().to_string());
        // `f.subject` is deliberately left empty: an unverified subject is
        // whatever a forger wrote, and as a column it would fold the forgery
        // into the real person's failure (and hand its reference out). It
        // stays visible in the asserted claims.
    }
    // In a write transaction: the budget check and the row land together,
    // and a failed commit is an error, never a reference to nothing.
    let mut tx = svc.begin_write().await?;
    let (reference, support_code) = failures::record(&mut tx, &f).await?;
    tx.commit().await?;
    store::note_written();
    tracing::info!(kind = %rej.kind, %support_code, "login refused");
    Ok(Outcome::Failed {
        kind: rej.kind,
        reference,
        support_code,
    })
}

/// Everything after verification, in one write transaction with one
/// commit: the replay record, the mapping or failure, and the session land
/// together or not at all.
async fn resolve_verified(
    svc: &Service,
    v: Verified,
    xml: String,
    ctx: &Context,
    wish: Option<&SessionWish>,
) -> Result<(Outcome, Option<Opened>), sqlx::Error> {
    let Some(idp) = svc.verifier.idp(&v.issuer) else {
        // verify() only returns Verified for a configured IdP.
        let rej = Rejection::new(FailureKind::UnknownIssuer, "issuer vanished");
        return Ok((record_rejection(svc, rej, Some(xml), ctx).await?, None));
    };
    if let Some(done) = returning::returning(svc, &idp, &v, ctx, wish).await? {
        return Ok(done);
    }
    let mut tx = svc.begin_write().await?;
    let attempt = steps::steps(&mut tx, &idp, &v, ctx).await?;
    let (outcome, opened) = match attempt {
        Ok((account_id, relay_state)) => {
            let opened = match wish {
                Some(w) => Some(open_session(&mut tx, w, &account_id, &v).await?),
                None => None,
            };
            (resolved(&v, account_id, relay_state), opened)
        }
        Err(refusal) => {
            let mut f = failures::NewFailure {
                kind: Some(refusal.kind),
                idp_entity_id: Some(v.issuer.clone()),
                school_code: refusal.school_code,
                subject: refusal.subject,
                detail: refusal.detail,
                candidate_ids: refusal.candidates,
                raw_response: Some(xml),
                client_ip: ctx.client_ip.clone(),
                user_agent: ctx.user_agent.clone(),
                relay_state: ctx.relay_state.clone(),
                ..Default::default()
            };
            describe_claims(&mut f, &v.claims, &idp.config.attributes, true);
            let (reference, support_code) = failures::record(&mut tx, &f).await?;
            tracing::info!(kind = %refusal.kind, %support_code, "login refused");
            let outcome = Outcome::Failed {
                kind: refusal.kind,
                reference,
                support_code,
            };
            (outcome, None)
        }
    };
    tx.commit().await?;
    store::note_written();
    Ok((outcome, opened))
}

/// The outcome of a login resolved to `account_id`.
fn resolved(v: &Verified, account_id: String, relay_state: Option<String>) -> Outcome {
    Outcome::Resolved {
        account_id,
        relay_state,
        idp_entity_id: v.issuer.clone(),
        name_id: v.claims.name_id.clone(),
        name_id_format: v.claims.name_id_format.clone(),
        session: v.session.clone(),
    }
}

/// How long a login's session may live from `now`: the wished longest
/// life, cut to the IdP's SessionNotOnOrAfter; `None` when the IdP session
/// has ended.
fn session_ttl(wish: &SessionWish, v: &Verified, now: i64) -> Option<i64> {
    store::sessions::life(
        wish.max_seconds,
        v.session.not_on_or_after.map(|t| t.timestamp()),
        now,
    )
}

/// The IdP session a user session keeps, for single logout.
fn idp_session_of(v: &Verified) -> store::sessions::IdpSession {
    store::sessions::IdpSession {
        idp_entity_id: v.issuer.clone(),
        name_id: v.claims.name_id.clone(),
        name_id_format: v.claims.name_id_format.clone(),
        name_qualifier: v.session.name_qualifier.clone(),
        sp_name_qualifier: v.session.sp_name_qualifier.clone(),
        session_index: v.session.session_index.clone(),
    }
}

/// Opens the user session of a resolved login, inside its transaction.
/// The session never outlives the IdP's SessionNotOnOrAfter; a new session
/// ID at every login (the browser's previous one, another person's on a
/// shared computer, ends here).
async fn open_session(
    conn: &mut sqlx::SqliteConnection,
    wish: &SessionWish,
    account_id: &str,
    v: &Verified,
) -> Result<Opened, sqlx::Error> {
    // One clock reading for the life and the session's times.
    let now = chrono::Utc::now().timestamp();
    let Some(ttl) = session_ttl(wish, v, now) else {
        return Ok(Opened::IdpSessionEnded);
    };
    if let Some(old) = &wish.replaces {
        store::sessions::delete(conn, old).await?;
    }
    let token =
        store::sessions::create_user(conn, account_id, &idp_session_of(v), ttl, now).await?;
    Ok(Opened::Session { token, ttl })
}
