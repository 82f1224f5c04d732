//! Everything an assertion must pass before anybody is logged in, in the
//! order of SPEC §2, decided on one reading of the document.
//!
//! The response is parsed once, strictly, into one roxmltree tree; the
//! signatures are verified on that tree ([`super::dsig`], with our own
//! canonicalization and openssl), and every claim, ID, time and
//! `InResponseTo` is read from the same tree. No second parser ever sees
//! the bytes, so nothing can be signed in one reading and claimed in
//! another (README, "One reading"). An encrypted assertion is decrypted
//! with the SP key and its plaintext read the same way. The rules:
//! - the document is parsed strictly first: UTF-8 only, no DTD, no entities,
//!   no comments, no processing instructions, bounded nesting and sizes; the
//!   root must be a protocol Response;
//! - exactly one Assertion (or EncryptedAssertion), a direct child of the
//!   Response; every Signature is a direct child of the Response or of that
//!   Assertion and references its parent's ID; IDs are unique; only SHA-256
//!   and stronger, and only the c14n and enveloped-signature transforms. So a
//!   wrapped document (XSW) is refused rather than half-read;
//! - the keys are the IdP's metadata keys, decoded once; a KeyInfo in the
//!   document is never used;
//! - an AudienceRestriction naming us is required, as is an Issuer;
//! - the time window is checked here, with the configured skew, on the
//!   assertion's IssueInstant, Conditions and SubjectConfirmationData;
//! - InResponseTo and replay are checked by the caller against SQLite, with
//!   what [`Verified`] reports.

use super::claims::{attr_of, claims_of, conflicting_identity_attribute, name_id_of, Claims};
use super::dsig::{verify_enveloped, TrustedKeys};
use super::metadata::IdpMetadata;
use super::reading::{
    check_version, inner_structure, outer_structure, read_assertion, read_message, read_shape,
    signature_of, single, wrap_in_context, AssertionFacts, Session, Shape,
};
use super::xml::{child, is, DS_NS, SAMLP_NS, SAML_NS};
use super::xmlenc::decrypt_element;
use crate::config::IdpConfig;
use crate::resolve::FailureKind;
use chrono::{DateTime, Duration, Utc};
use openssl::pkey::{PKey, Private};
use roxmltree::Node;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// How long after its IssueInstant an assertion is still taken (on top of the
/// clock skew). IdPs post within seconds; five minutes covers slow browsers.
pub const MAX_ASSERTION_AGE_SECONDS: i64 = 300;
/// EncryptedAttributes opened per Assertion (each may cost RSA operations).
const MAX_ENCRYPTED_ATTRIBUTES: usize = 64;

/// An assertion that passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct Verified {
    pub issuer: String,
    pub assertion_id: String,
    /// Until when the assertion could be replayed: the replay cache keeps its
    /// ID until then.
    pub replay_until: DateTime<Utc>,
    /// The distinct InResponseTo values (Response and SubjectConfirmationData).
    pub in_response_to: BTreeSet<String>,
    pub claims: Claims,
    pub session: Session,
}

/// Why a response was refused, with what could be read of it (unverified).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub kind: FailureKind,
    /// A technical reason for admins; never shown to the user.
    pub detail: String,
    pub issuer: Option<String>,
    /// The claims as written in the document, when the refusal came after the
    /// issuer was known. Not verified: shown to admins as such.
    pub unverified: Option<Box<Claims>>,
}

impl Rejection {
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Rejection {
            kind,
            detail: detail.into(),
            issuer: None,
            unverified: None,
        }
    }
}

/// A configured IdP: its metadata, its settings and its keys, decoded once.
pub struct Idp {
    pub meta: IdpMetadata,
    pub config: IdpConfig,
    keys: TrustedKeys,
}

/// Each IdP with its keys decoded once; an entity twice is refused.
fn idp_map(idps: Vec<(IdpMetadata, IdpConfig)>) -> Result<HashMap<String, Arc<Idp>>, String> {
    let mut map = HashMap::new();
    for (meta, config) in idps {
        let keys = TrustedKeys::from_certificates(&meta.signing_certs)
            .map_err(|e| format!("entity {:?}: {e}", meta.entity_id))?;
        let id = meta.entity_id.clone();
        if map
            .insert(id.clone(), Arc::new(Idp { meta, config, keys }))
            .is_some()
        {
            return Err(format!("entity {id:?} is configured twice"));
        }
    }
    Ok(map)
}

/// How the Assertion came: under a verified Response signature or not,
/// and whether it was decrypted.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    response_signed: bool,
    decrypted: bool,
}

/// Verifies responses for every configured IdP.
pub struct Verifier {
    pub sp_entity_id: String,
    pub acs_url: String,
    skew: Duration,
    /// The SP's decryption keys: the current one first, then during a
    /// rollover the previous one.
    sp_keys: Vec<PKey<Private>>,
    /// Every IdP by entity ID; replaced whole when a federation's
    /// metadata is refreshed (a verification in flight keeps its IdP).
    idps: std::sync::RwLock<Arc<HashMap<String, Arc<Idp>>>>,
}

impl Verifier {
    /// Decodes every IdP's metadata keys once.
    pub fn new(
        sp_entity_id: String,
        acs_url: String,
        skew_seconds: i64,
        sp_keys: &[PKey<Private>],
        idps: Vec<(IdpMetadata, IdpConfig)>,
    ) -> Result<Verifier, String> {
        Ok(Verifier {
            sp_entity_id,
            acs_url,
            skew: Duration::seconds(skew_seconds),
            sp_keys: sp_keys.to_vec(),
            idps: std::sync::RwLock::new(Arc::new(idp_map(idps)?)),
        })
    }

    /// Trusts exactly these IdPs from now on (a refreshed federation: new
    /// keys, IdPs come and go). All or nothing: on an error nothing changes.
    pub fn replace_idps(&self, idps: Vec<(IdpMetadata, IdpConfig)>) -> Result<(), String> {
        let map = Arc::new(idp_map(idps)?);
        match self.idps.write() {
            Ok(mut g) => *g = map,
            Err(poisoned) => *poisoned.into_inner() = map,
        }
        Ok(())
    }

    fn map(&self) -> Arc<HashMap<String, Arc<Idp>>> {
        match self.idps.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn idp(&self, entity_id: &str) -> Option<Arc<Idp>> {
        self.map().get(entity_id).cloned()
    }

    /// Every IdP trusted now.
    pub fn idps(&self) -> Vec<Arc<Idp>> {
        self.map().values().cloned().collect()
    }

    /// Runs every check on a decoded response. CPU-bound (parse, digest,
    /// RSA): call it from `spawn_blocking`.
    // Long on purpose: the checks of SPEC §2 one after another, in the order
    // that decides the kind, readable top to bottom.
    pub fn verify(&self, xml: &str, now: DateTime<Utc>) -> Result<Verified, Rejection> {
        let malformed = |d: String| Rejection::new(FailureKind::MalformedRequest, d);
        let doc = read_message(xml).map_err(malformed)?;
        let root = doc.root_element();
        if !is(&root, SAMLP_NS, "Response") {
            return Err(malformed(format!(
                "the root element is <{}>, not a SAML protocol Response",
                root.tag_name().name()
            )));
        }
        // SAML 2.0 only: a Version="1.1" Response or Assertion is refused.
        for n in
            std::iter::once(root).chain(root.children().filter(|c| is(c, SAML_NS, "Assertion")))
        {
            check_version(n).map_err(malformed)?;
        }
        let shape = read_shape(root);
        let issuer = shape.issuer.clone().ok_or_else(|| {
            Rejection::new(FailureKind::UnknownIssuer, "the response has no Issuer")
        })?;
        let with_issuer = |kind, detail: String| Rejection {
            kind,
            detail,
            issuer: Some(issuer.clone()),
            unverified: shape.unverified.clone(),
        };
        let Some(idp) = self.idp(&issuer) else {
            return Err(with_issuer(
                FailureKind::UnknownIssuer,
                "the Issuer is not a configured IdP".into(),
            ));
        };
        match &shape.status {
            None => {
                return Err(with_issuer(
                    FailureKind::MalformedRequest,
                    "the Response has no StatusCode".into(),
                ))
            }
            Some(s) if s.code != STATUS_SUCCESS => {
                return Err(with_issuer(FailureKind::IdpError, s.describe()))
            }
            Some(_) => {}
        }
        let invalid = |d: String| with_issuer(FailureKind::InvalidSignature, d);
        let assertion = outer_structure(&doc, root).map_err(invalid)?;
        let response_signed = match signature_of(root) {
            Some(sig) => {
                verify_enveloped(sig, root, &idp.keys).map_err(invalid)?;
                true
            }
            None => false,
        };
        if is(&assertion, SAML_NS, "Assertion") {
            let how = Arrival {
                response_signed,
                decrypted: false,
            };
            return self.check_assertion(&issuer, &idp, &shape, assertion, how, now);
        }
        // An EncryptedAssertion: its plaintext is read in the namespace
        // context of the element it replaces, and by the same strict rules.
        // In an unsigned Response the ciphertext is the sender's to alter:
        // every failure up to the inner signature is then one answer, so
        // that how a forged ciphertext failed is not told back (no padding
        // or parsing oracle; see xmlenc).
        let before_signature = |d: String| {
            let kind = if response_signed {
                FailureKind::MalformedRequest
            } else {
                FailureKind::InvalidSignature
            };
            with_issuer(kind, d)
        };
        let plain = decrypt_element(assertion, &self.sp_keys)
            .map_err(|e| invalid(format!("encrypted assertion: {e}")))?;
        let wrapped = wrap_in_context(assertion, &plain).map_err(before_signature)?;
        let inner = read_message(&wrapped)
            .map_err(|e| before_signature(format!("the decrypted assertion: {e}")))?;
        let decrypted = inner_structure(&inner)
            .map_err(|e| before_signature(format!("the decrypted assertion: {e}")))?;
        self.check_assertion(
            &issuer,
            &idp,
            &shape,
            decrypted,
            Arrival {
                response_signed,
                decrypted: true,
            },
            now,
        )
    }

    /// Audience: required, and every restriction must name us; the
    /// Destination, when present, must be our ACS (on an unsigned Response
    /// it is only routing, but a wrong one is still refused).
    fn addressed_to_us(
        &self,
        a: &AssertionFacts,
        shape: &Shape,
    ) -> Result<(), (FailureKind, String)> {
        let wrong = |d: String| Err((FailureKind::WrongAudience, d));
        if a.audiences.is_empty() {
            return wrong("the Assertion has no AudienceRestriction".into());
        }
        if !a
            .audiences
            .iter()
            .all(|r| r.iter().any(|au| au.trim() == self.sp_entity_id))
        {
            return wrong(format!(
                "the AudienceRestriction does not name {}",
                self.sp_entity_id
            ));
        }
        match &shape.destination {
            Some(dest) if dest != &self.acs_url => {
                wrong(format!("the Destination {dest:?} is not our ACS"))
            }
            _ => Ok(()),
        }
    }

    /// The Assertion's own time window (IssueInstant at most
    /// [`MAX_ASSERTION_AGE_SECONDS`] old, Conditions), with the skew;
    /// returns until when it could be replayed so far.
    fn time_window(
        &self,
        a: &AssertionFacts,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, (FailureKind, String)> {
        let expired = |d: String| Err((FailureKind::Expired, d));
        let skew = self.skew;
        let age = Duration::seconds(MAX_ASSERTION_AGE_SECONDS);
        let mut latest = a.issue_instant + age;
        if a.issue_instant - skew > now {
            return expired("the Assertion was issued in the future".into());
        }
        if a.issue_instant + age + skew <= now {
            return expired(format!(
                "the Assertion was issued at {} and is too old",
                a.issue_instant
            ));
        }
        if let Some(nb) = a.not_before.filter(|nb| now < *nb - skew) {
            return expired(format!("not valid before {nb}"));
        }
        if let Some(noa) = a.not_on_or_after {
            if now >= noa + skew {
                return expired(format!("expired at {noa}"));
            }
            latest = latest.max(noa);
        }
        Ok(latest)
    }

    /// A bearer SubjectConfirmation with our ACS as Recipient and a time
    /// window that holds is required; its InResponseTo values are added,
    /// and the replay horizon `latest` extended.
    fn bearer(
        &self,
        a: &AssertionFacts,
        now: DateTime<Utc>,
        mut latest: DateTime<Utc>,
        in_response_to: &mut BTreeSet<String>,
    ) -> Result<DateTime<Utc>, (FailureKind, String)> {
        let skew = self.skew;
        let mut bearer_ok = false;
        for conf in a
            .confirmations
            .iter()
            .filter(|c| c.method.as_deref() == Some(BEARER))
        {
            let Some(data) = &conf.data else {
                continue;
            };
            if data.recipient.as_deref() != Some(self.acs_url.as_str()) {
                continue;
            }
            if let Some(nb) = data.not_before.filter(|nb| now < *nb - skew) {
                return Err((
                    FailureKind::Expired,
                    format!("confirmation not valid before {nb}"),
                ));
            }
            match data.not_on_or_after {
                Some(noa) if now < noa + skew => latest = latest.max(noa),
                Some(noa) => {
                    return Err((
                        FailureKind::Expired,
                        format!("confirmation expired at {noa}"),
                    ))
                }
                None => continue,
            }
            if let Some(irt) = &data.in_response_to {
                in_response_to.insert(irt.clone());
            }
            bearer_ok = true;
        }
        if !bearer_ok {
            return Err((
                FailureKind::WrongAudience,
                "no bearer SubjectConfirmation with our ACS as Recipient and a NotOnOrAfter".into(),
            ));
        }
        Ok(latest)
    }

    /// Decrypts an EncryptedID or EncryptedAttribute of a verified
    /// Assertion (its signature covers the ciphertext) and reads the one
    /// `local` element inside by the same strict rules.
    fn read_encrypted<T>(
        &self,
        encrypted: Node,
        local: &str,
        read: impl FnOnce(Node) -> T,
    ) -> Result<T, String> {
        let plain = decrypt_element(encrypted, &self.sp_keys)?;
        let wrapped = wrap_in_context(encrypted, &plain)?;
        let doc = read_message(&wrapped)?;
        let mut elements = doc.root_element().children().filter(|c| c.is_element());
        match (elements.next(), elements.next()) {
            (Some(e), None) if is(&e, SAML_NS, local) => {
                if e.descendants()
                    .any(|d| d.is_element() && d.tag_name().namespace() == Some(DS_NS))
                {
                    return Err(format!("a signature inside the encrypted {local}"));
                }
                Ok(read(e))
            }
            _ => Err(format!("the plaintext is not one {local}")),
        }
    }

    /// The claims with the encrypted parts of a verified Assertion opened:
    /// an EncryptedID becomes the NameID (or, when it does not open, the
    /// reason why it is missing), each EncryptedAttribute an attribute.
    fn open_encrypted(
        &self,
        assertion: Node,
        mut claims: Claims,
        session: &mut Session,
    ) -> Result<Claims, String> {
        let subject = child(assertion, SAML_NS, "Subject");
        if let Some(eid) = subject
            .map(|s| single(s, SAML_NS, "EncryptedID"))
            .transpose()?
            .flatten()
        {
            if subject.and_then(|s| child(s, SAML_NS, "NameID")).is_some() {
                return Err("the Subject has both a NameID and an EncryptedID".into());
            }
            match self.read_encrypted(eid, "NameID", |n| {
                (
                    name_id_of(n),
                    n.attribute("NameQualifier").map(str::to_string),
                    n.attribute("SPNameQualifier").map(str::to_string),
                )
            }) {
                Ok(((value, format), q, sp_q)) => {
                    claims.name_id = value;
                    claims.name_id_format = format;
                    session.name_qualifier = q;
                    session.sp_name_qualifier = sp_q;
                }
                Err(e) => {
                    claims.name_id_error =
                        Some(format!("the NameID is encrypted (EncryptedID) and {e}"))
                }
            }
        }
        let encrypted_attributes: Vec<Node> = assertion
            .children()
            .filter(|n| is(n, SAML_NS, "AttributeStatement"))
            .flat_map(|s| {
                s.children()
                    .filter(|n| is(n, SAML_NS, "EncryptedAttribute"))
            })
            .collect();
        if encrypted_attributes.len() > MAX_ENCRYPTED_ATTRIBUTES {
            return Err(format!(
                "more than {MAX_ENCRYPTED_ATTRIBUTES} EncryptedAttributes"
            ));
        }
        for ea in encrypted_attributes {
            match self.read_encrypted(ea, "Attribute", attr_of) {
                Ok(Some(attr)) => claims.attributes.push(attr),
                Ok(None) => {
                    return Err("an EncryptedAttribute holds an Attribute without a Name".into())
                }
                Err(e) => return Err(format!("an EncryptedAttribute: {e}")),
            }
        }
        Ok(claims)
    }

    /// The checks on the Assertion itself, read from the tree its signature
    /// (or the Response's) was verified on.
    // Long on purpose: the Assertion's checks in SPEC order (signature,
    // issuer, audience, times, bearer, then the encrypted parts).
    fn check_assertion(
        &self,
        issuer: &str,
        idp: &Idp,
        shape: &Shape,
        assertion: Node,
        how: Arrival,
        now: DateTime<Utc>,
    ) -> Result<Verified, Rejection> {
        let Arrival {
            response_signed,
            decrypted,
        } = how;
        let unverified = claims_of(assertion);
        // What a decrypted assertion of an unsigned Response claims is not
        // recorded before its own signature is verified: the failure page
        // shows the sender the school it names, and an attacker reposting a
        // captured ciphertext in an unsigned Response would learn it (and
        // how far the decryption went).
        let sender_may_see = !decrypted || response_signed;
        let unsigned_fail = |kind, detail: String| Rejection {
            kind,
            detail,
            issuer: Some(issuer.to_string()),
            unverified: sender_may_see.then(|| Box::new(unverified.clone())),
        };
        match signature_of(assertion) {
            Some(sig) => verify_enveloped(sig, assertion, &idp.keys)
                .map_err(|d| unsigned_fail(FailureKind::InvalidSignature, d))?,
            None if response_signed => {}
            None => {
                return Err(unsigned_fail(
                    FailureKind::InvalidSignature,
                    "neither the Response nor the Assertion is signed".into(),
                ))
            }
        }
        let fail = |kind, detail: String| Rejection {
            kind,
            detail,
            issuer: Some(issuer.to_string()),
            unverified: Some(Box::new(unverified.clone())),
        };
        // From here on the Assertion (and the claims read above) is the
        // IdP's word.
        check_version(assertion).map_err(|d| fail(FailureKind::MalformedRequest, d))?;
        let mut a =
            read_assertion(assertion).map_err(|d| fail(FailureKind::MalformedRequest, d))?;

        // The issuer whose key verified it is the one the Assertion names.
        if a.issuer.as_deref() != Some(issuer) {
            return Err(fail(
                FailureKind::InvalidSignature,
                "the signed Assertion names another Issuer".into(),
            ));
        }
        self.addressed_to_us(&a, shape)
            .map_err(|(k, d)| fail(k, d))?;
        let latest = self.time_window(&a, now).map_err(|(k, d)| fail(k, d))?;
        // The Response's InResponseTo counts only when the Response is
        // signed; otherwise only the signed SubjectConfirmationData's does.
        let mut in_response_to = BTreeSet::new();
        if let Some(irt) = shape.in_response_to.as_ref().filter(|_| response_signed) {
            in_response_to.insert(irt.clone());
        }
        let latest = self
            .bearer(&a, now, latest, &mut in_response_to)
            .map_err(|(k, d)| fail(k, d))?;
        // Encrypted parts (EncryptedID, EncryptedAttribute) are opened last,
        // once every other check passed: each costs RSA operations, which a
        // reposted expired or misdirected assertion must not buy.
        let claims = self
            .open_encrypted(assertion, unverified.clone(), &mut a.session)
            .map_err(|d| fail(FailureKind::MalformedRequest, d))?;
        if let Some(why) = conflicting_identity_attribute(&claims, &idp.config) {
            return Err(fail(FailureKind::MalformedRequest, why));
        }
        Ok(Verified {
            issuer: issuer.to_string(),
            assertion_id: a.id,
            replay_until: latest + self.skew,
            in_response_to,
            claims,
            session: a.session,
        })
    }
}
