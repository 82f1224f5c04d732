//! One login, start to end: verify the response, check InResponseTo and the
//! replay cache, read school code and subject, resolve the identity, and
//! record the failure when any step refuses. The ACS, `jointure ingest` and
//! the API all come through here, so they classify alike.

use crate::resolve::school_code::listed;
use crate::resolve::{
    decide_match, parse_date, parse_school_code, prefix_within, AssertedPerson, FailureKind,
    MatchOutcome, Role, SchoolCode,
};
use crate::saml::{Claims, Rejection, Verified};
use crate::service::Service;
use crate::store::{self, accounts, failures, mappings, replay, schools};
use sqlx::SqliteConnection;

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

/// Processes a raw `SAMLResponse` form value (base64).
pub async fn process_encoded(
    svc: &Service,
    encoded: &str,
    ctx: &Context,
) -> Result<Outcome, sqlx::Error> {
    match crate::saml::decode_saml_response(encoded) {
        Ok(xml) => process_xml(svc, xml, ctx).await,
        Err(why) => {
            let rej = Rejection::new(FailureKind::MalformedRequest, why);
            record_rejection(svc, rej, Some(encoded.to_string()), ctx).await
        }
    }
}

/// Processes a decoded response document.
pub async fn process_xml(
    svc: &Service,
    xml: String,
    ctx: &Context,
) -> Result<Outcome, sqlx::Error> {
    let verifier = svc.verifier.clone();
    let (xml, verified) = tokio::task::spawn_blocking(move || {
        let r = verifier.verify(&xml, chrono::Utc::now());
        (xml, r)
    })
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("verification task failed: {e}")))?;
    match verified {
        Err(rej) => record_rejection(svc, rej, Some(xml), ctx).await,
        Ok(v) => resolve_verified(svc, v, xml, ctx).await,
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
    let mut tx = store::begin_write(&svc.pool).await?;
    let (reference, support_code) = failures::record(&mut tx, &f).await?;
    tx.commit().await?;
    tracing::info!(kind = %rej.kind, %support_code, "login refused");
    Ok(Outcome::Failed {
        kind: rej.kind,
        reference,
        support_code,
    })
}

/// The subject the IdP's `subject` setting names: the NameID (unless it is
/// transient: a new value at every login names nobody, and mapping it would
/// lock the person out from the next login on), or the first value of an
/// attribute by name, FriendlyName or alias. `Err` says why there is none,
/// for the admin.
fn subject_of(claims: &Claims, subject: &str) -> Result<String, String> {
    let value = if subject.eq_ignore_ascii_case("nameid") {
        if claims.name_id_is_transient() {
            return Err("this IdP sends transient NameIDs (a new value at every login, naming no person): ask the IdP operator for persistent NameIDs, or set this IdP's subject to an attribute (subject-id, pairwise-id, eduPersonTargetedID or the IdP's own ID attribute)".into());
        }
        claims.name_id.as_deref()
    } else {
        claims.first(&[subject])
    };
    value
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            if subject.eq_ignore_ascii_case("nameid") {
                claims.name_id_error.clone().unwrap_or_else(|| {
                    "no NameID in the assertion (subject = \"nameid\")".to_string()
                })
            } else {
                format!("no value for the subject attribute {subject:?}")
            }
        })
}

fn person_of(claims: &Claims, attrs: &crate::config::AttributeNames) -> AssertedPerson {
    AssertedPerson {
        last_name: claims.first(&attrs.last_name).map(str::to_string),
        first_name: claims.first(&attrs.first_name).map(str::to_string),
        birth_date: claims.first(&attrs.birth_date).and_then(parse_date),
        role: claims
            .all_values(&attrs.role)
            .into_iter()
            .find_map(Role::parse),
        class_name: claims.first(&attrs.class_name).map(str::to_string),
    }
}

/// What is kept of the claims of a failure: a stranger's forged post is
/// stored too, so each part is bounded (README, "Bounded storage").
pub const MAX_STORED_ATTRIBUTES: usize = 64;
pub const MAX_STORED_VALUES: usize = 16;
pub const MAX_STORED_NAME_BYTES: usize = 256;
pub const MAX_STORED_VALUE_BYTES: usize = 1024;
pub const MAX_STORED_CLAIM_BYTES: usize = 16 * 1024;
/// The longest subject taken (the failure's `subject` column holds as much).
pub const MAX_SUBJECT_BYTES: usize = 1024;

/// The claims within the storage bounds above, and at most
/// [`MAX_STORED_CLAIM_BYTES`] of names and values in all: what does not fit
/// is left out (the raw response, itself capped, shows the rest).
fn bounded(claims: &Claims) -> Claims {
    let budget = std::cell::Cell::new(MAX_STORED_CLAIM_BYTES);
    let take = |s: &str, max: usize| {
        let v = prefix_within(s, max.min(budget.get())).to_string();
        budget.set(budget.get() - v.len());
        v
    };
    let name_id = claims
        .name_id
        .as_deref()
        .map(|n| take(n, MAX_STORED_VALUE_BYTES));
    let name_id_format = claims
        .name_id_format
        .as_deref()
        .map(|f| take(f, MAX_STORED_NAME_BYTES));
    let mut attributes = Vec::new();
    for a in claims.attributes.iter().take(MAX_STORED_ATTRIBUTES) {
        if budget.get() < MAX_STORED_NAME_BYTES {
            break;
        }
        let name = take(&a.name, MAX_STORED_NAME_BYTES);
        let friendly_name = a
            .friendly_name
            .as_deref()
            .map(|n| take(n, MAX_STORED_NAME_BYTES));
        let values = a
            .values
            .iter()
            .take(MAX_STORED_VALUES)
            .map(|v| take(v, MAX_STORED_VALUE_BYTES))
            .collect();
        attributes.push(crate::saml::Attr {
            name,
            friendly_name,
            values,
        });
    }
    Claims {
        name_id,
        name_id_format,
        name_id_error: claims
            .name_id_error
            .as_deref()
            .map(|e| take(e, MAX_STORED_VALUE_BYTES)),
        attributes,
    }
}

fn describe_claims(
    f: &mut failures::NewFailure,
    claims: &Claims,
    attrs: &crate::config::AttributeNames,
    verified: bool,
) {
    let claims = &bounded(claims);
    let p = person_of(claims, attrs);
    f.asserted_json = serde_json::to_string(claims).unwrap_or_else(|_| "{}".into());
    f.asserted_verified = verified;
    f.asserted_last_name = p.last_name;
    f.asserted_first_name = p.first_name;
    // The date as sent when it does not parse, so the admin sees it.
    f.asserted_birth_date = p
        .birth_date
        .map(|d| d.format("%Y-%m-%d").to_string())
        .or_else(|| claims.first(&attrs.birth_date).map(str::to_string));
    f.asserted_role = p.role.map(|r| r.as_str().to_string());
    f.asserted_class_name = p.class_name;
}

/// Everything after verification, in one write transaction: the replay
/// record and the mapping or failure land together or not at all.
async fn resolve_verified(
    svc: &Service,
    v: Verified,
    xml: String,
    ctx: &Context,
) -> Result<Outcome, sqlx::Error> {
    let Some(idp) = svc.verifier.idp(&v.issuer) else {
        // verify() only returns Verified for a configured IdP.
        let rej = Rejection::new(FailureKind::UnknownIssuer, "issuer vanished");
        return record_rejection(svc, rej, Some(xml), ctx).await;
    };
    let mut tx = store::begin_write(&svc.pool).await?;
    let attempt = steps(&mut tx, &idp, &v, ctx).await?;
    let outcome = match attempt {
        Ok((account_id, relay_state)) => Outcome::Resolved {
            account_id,
            relay_state,
            idp_entity_id: v.issuer.clone(),
            name_id: v.claims.name_id.clone(),
            name_id_format: v.claims.name_id_format.clone(),
            session: v.session.clone(),
        },
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
            Outcome::Failed {
                kind: refusal.kind,
                reference,
                support_code,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

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

/// The login's steps after verification, in order: the request it answers,
/// replay, the school and the IdP's trust for it, the subject, then the
/// account by mapping, by the passed account ID, or by careful matching.
async fn steps(
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
    let browser = ctx
        .browser_token
        .as_deref()
        .map(store::sessions::hash_token);
    if p.browser_hash.is_some() && browser != p.browser_hash {
        return replayed("the answer to our request came from another browser than the one that started the login (no or another login cookie)");
    }
    if p.idp_entity_id != v.issuer {
        return replayed("InResponseTo names a request sent to another IdP");
    }
    Ok(Ok(p.relay_state.or_else(|| ctx.relay_state.clone())))
}

/// The asserted schools this IdP may speak for. School code: the
/// configured attributes, BRIN or UAI by shape; several values (a teacher
/// in two schools) are all considered. Of the registered ones, only those
/// the IdP is trusted for (`[[idp]] schools`, or the school's
/// `idp_entity_ids`) take part in what follows.
async fn trusted_schools(
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
        let by_config = idp
            .config
            .schools
            .as_ref()
            .is_some_and(|t| t.includes_code(code.as_str()));
        if by_config || schools::lists_idp(conn, code.as_str(), &v.issuer).await? {
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

/// A verified login once its school and subject are known.
struct Login<'a> {
    idp: &'a crate::saml::Idp,
    v: &'a Verified,
    known: &'a Known,
    subject: &'a str,
    /// The asserted schools the IdP is trusted for.
    schools: &'a [SchoolCode],
}

/// The account: an existing mapping, else the account ID the IdP passes,
/// else careful automatic matching; the last two map the identity.
async fn find_account(conn: &mut SqliteConnection, login: &Login<'_>) -> Step<String> {
    let Login {
        v,
        known,
        subject,
        schools,
        ..
    } = *login;
    // 1. An existing mapping. The mapped account must belong to a school
    // the assertion names: a mapping made in one school's desk cannot
    // carry a login of another.
    if let Some(account_id) = mappings::find(conn, &v.issuer, subject).await? {
        return Ok(match accounts::get(conn, &account_id).await? {
            Some(a) if a.active && schools.iter().any(|c| c.is(&a.school_code)) => Ok(account_id),
            Some(a) if a.active => Err(known.refuse(
                FailureKind::IdentityMismatch,
                format!("mapped to account {account_id} of school {}, which the assertion does not name", a.school_code),
            )),
            _ => Err(known.refuse(
                FailureKind::AccountDisabled,
                format!("mapped to account {account_id}, which is deactivated"),
            )),
        });
    }
    let mut notes = Vec::new();
    if let Some(account) = step!(by_passed_id(conn, login, &mut notes)) {
        return Ok(Ok(account));
    }
    by_matching(conn, login, notes).await
}

/// Second way: the IdP passes our account ID; only an account of the asserted
/// school(s) is taken, so one school's IdP cannot reach another's pupils.
/// Why a passed ID was not taken goes into `notes`.
async fn by_passed_id(
    conn: &mut SqliteConnection,
    login: &Login<'_>,
    notes: &mut Vec<String>,
) -> Step<Option<String>> {
    let Login {
        idp,
        v,
        known,
        subject,
        schools,
    } = *login;
    let Some(attr) = &idp.config.account_id_attribute else {
        return Ok(Ok(None));
    };
    let Some(account_id) = v.claims.first(&[attr.as_str()]) else {
        return Ok(Ok(None));
    };
    match accounts::get(conn, account_id).await? {
        Some(a) if schools.iter().any(|c| c.is(&a.school_code)) => {
            if !a.active {
                return Ok(Err(known.refuse(
                    FailureKind::AccountDisabled,
                    format!("account {account_id} passed by the IdP is deactivated"),
                )));
            }
            mappings::insert(
                conn,
                &v.issuer,
                subject,
                &a.account_id,
                mappings::Source::Attribute,
                None,
            )
            .await?;
            return Ok(Ok(Some(a.account_id)));
        }
        Some(_) => notes.push(format!(
            "account {account_id} passed in {attr} belongs to another school"
        )),
        None => notes.push(format!(
            "account {account_id} passed in {attr} does not exist"
        )),
    }
    Ok(Ok(None))
}

/// Third way: careful automatic matching in the asserted school(s): exactly one
/// active account with the asserted last name, first name and birth date,
/// not yet linked to another identity of the IdP.
async fn by_matching(
    conn: &mut SqliteConnection,
    login: &Login<'_>,
    notes: Vec<String>,
) -> Step<String> {
    let Login {
        idp,
        v,
        known,
        subject,
        schools,
    } = *login;
    let mismatch = |mut notes: Vec<String>, note: String| {
        notes.push(note);
        Ok(Err(
            known.refuse(FailureKind::IdentityMismatch, notes.join("; "))
        ))
    };
    if !idp.config.match_identity {
        return mismatch(notes, "automatic matching is off for this IdP".into());
    }
    let person = person_of(&v.claims, &idp.config.attributes);
    let Some(key) = person.identity_key() else {
        return mismatch(
            notes,
            "the assertion lacks last name, first name or birth date, so no automatic match".into(),
        );
    };
    let codes: Vec<String> = schools.iter().map(SchoolCode::to_string).collect();
    let found = accounts::identity_matches(conn, &codes, &key).await?;
    let (active, inactive): (Vec<_>, Vec<_>) = found.into_iter().partition(|a| a.active);
    match decide_match(active.into_iter().map(|a| a.account_id).collect()) {
        MatchOutcome::Unique(account_id) => {
            let others = mappings::subjects_for(conn, &v.issuer, &account_id).await?;
            if !others.is_empty() {
                return mismatch(notes, format!("the only matching account {account_id} is already linked to another identity at this IdP"));
            }
            mappings::insert(
                conn,
                &v.issuer,
                subject,
                &account_id,
                mappings::Source::Auto,
                None,
            )
            .await?;
            Ok(Ok(account_id))
        }
        MatchOutcome::Several(ids) => Ok(Err(Refusal {
            candidates: Some(ids.join(",")),
            ..known.refuse(
                FailureKind::AmbiguousIdentity,
                format!("{} accounts match name and birth date", ids.len()),
            )
        })),
        MatchOutcome::None if !inactive.is_empty() => Ok(Err(known.refuse(
            FailureKind::AccountDisabled,
            format!(
                "the matching account {} is deactivated",
                inactive[0].account_id
            ),
        ))),
        MatchOutcome::None => mismatch(
            notes,
            "no account matches name and birth date in the school".into(),
        ),
    }
}
