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

use super::dsig::{verify_enveloped, TrustedKeys};
use super::metadata::IdpMetadata;
use super::xml::{
    check_message_shape, check_message_text, child, is, parse_strict, refuse_comments_and_pis,
    DS_NS, SAMLP_NS, SAML_NS,
};
use super::xmlenc::decrypt_element;
use crate::config::IdpConfig;
use crate::resolve::FailureKind;
use chrono::{DateTime, Duration, Utc};
use openssl::pkey::{PKey, Private};
use roxmltree::Node;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// How long after its IssueInstant an assertion is still taken (on top of the
/// clock skew). IdPs post within seconds; five minutes covers slow browsers.
pub const MAX_ASSERTION_AGE_SECONDS: i64 = 300;
/// EncryptedAttributes opened per Assertion (each may cost RSA operations).
const MAX_ENCRYPTED_ATTRIBUTES: usize = 64;

/// One attribute as sent: its name, friendly name and values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub friendly_name: Option<String>,
    pub values: Vec<String>,
}

/// What an assertion says: its NameID (with its Format) and attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub name_id: Option<String>,
    /// The NameID's `Format`, when given (a transient one names nobody).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name_id_format: Option<String>,
    /// Why there is no NameID although the IdP sent one (an EncryptedID
    /// that does not open with our keys).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name_id_error: Option<String>,
    pub attributes: Vec<Attr>,
}

/// The NameID format of a one-time identifier.
pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

impl Claims {
    /// Whether the NameID is transient: a new value at every login.
    pub fn name_id_is_transient(&self) -> bool {
        self.name_id_format.as_deref() == Some(TRANSIENT)
    }
}

impl Attr {
    /// Whether the attribute is `name`, by `Name` or `FriendlyName`, or by
    /// an alias of it (its `urn:oid` or `urn:mace` name, its friendly name).
    pub fn is_named(&self, name: &str) -> bool {
        use crate::resolve::attributes::same_attribute;
        same_attribute(&self.name, name)
            || self
                .friendly_name
                .as_deref()
                .is_some_and(|f| same_attribute(f, name))
    }
}

impl Claims {
    /// Every attribute named by one of `names`, in document order.
    pub fn named<'a, 'n, S: AsRef<str>>(
        &'a self,
        names: &'n [S],
    ) -> impl Iterator<Item = &'a Attr> + use<'a, 'n, S> {
        self.attributes
            .iter()
            .filter(move |a| names.iter().any(|n| a.is_named(n.as_ref())))
    }

    /// The values of the first of `names` that the assertion carries, by
    /// `Name` or `FriendlyName`.
    pub fn values<S: AsRef<str>>(&self, names: &[S]) -> Option<&[String]> {
        names.iter().find_map(|n| {
            let n = n.as_ref();
            self.attributes
                .iter()
                .find(|a| a.is_named(n))
                .map(|a| a.values.as_slice())
        })
    }

    /// Every value of every attribute named by one of `names` (several
    /// elements may carry a multi-valued attribute such as the school code).
    pub fn all_values<S: AsRef<str>>(&self, names: &[S]) -> Vec<&str> {
        self.named(names)
            .flat_map(|a| a.values.iter().map(|v| v.trim()))
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The first non-empty value of the first of `names` present.
    pub fn first<S: AsRef<str>>(&self, names: &[S]) -> Option<&str> {
        self.values(names)?
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
    }
}

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

/// What the one reading of an Assertion says besides its claims
/// ([`claims_of`]): IDs, times and audiences, parsed; read only once the
/// signature is verified.
struct AssertionFacts {
    id: String,
    issue_instant: DateTime<Utc>,
    issuer: Option<String>,
    confirmations: Vec<Confirmation>,
    not_before: Option<DateTime<Utc>>,
    not_on_or_after: Option<DateTime<Utc>>,
    /// Each AudienceRestriction's Audiences; None without Conditions.
    audiences: Vec<Vec<String>>,
    session: Session,
}

/// What single logout needs of a login: the IdP's session (SessionIndex)
/// and the NameID exactly as sent, to name the person in a LogoutRequest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub session_index: Option<String>,
    /// The AuthnStatement's SessionNotOnOrAfter: our session ends then.
    pub not_on_or_after: Option<DateTime<Utc>>,
    pub name_qualifier: Option<String>,
    pub sp_name_qualifier: Option<String>,
}

struct Confirmation {
    method: Option<String>,
    /// None without SubjectConfirmationData.
    data: Option<ConfirmationData>,
}

struct ConfirmationData {
    recipient: Option<String>,
    not_before: Option<DateTime<Utc>>,
    not_on_or_after: Option<DateTime<Utc>>,
    in_response_to: Option<String>,
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
            return self.check_assertion(&issuer, &idp, &shape, assertion, response_signed, now);
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
        self.check_assertion(&issuer, &idp, &shape, decrypted, response_signed, now)
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
    fn check_assertion(
        &self,
        issuer: &str,
        idp: &Idp,
        shape: &Shape,
        assertion: Node,
        response_signed: bool,
        now: DateTime<Utc>,
    ) -> Result<Verified, Rejection> {
        let unverified = claims_of(assertion);
        let fail = |kind, detail: String| Rejection {
            kind,
            detail,
            issuer: Some(issuer.to_string()),
            unverified: Some(Box::new(unverified.clone())),
        };
        match signature_of(assertion) {
            Some(sig) => verify_enveloped(sig, assertion, &idp.keys)
                .map_err(|d| fail(FailureKind::InvalidSignature, d))?,
            None if response_signed => {}
            None => {
                return Err(fail(
                    FailureKind::InvalidSignature,
                    "neither the Response nor the Assertion is signed".into(),
                ))
            }
        }
        // From here on the Assertion (and the claims read above) is the
        // IdP's word.
        check_version(assertion).map_err(|d| fail(FailureKind::MalformedRequest, d))?;
        let mut a =
            read_assertion(assertion).map_err(|d| fail(FailureKind::MalformedRequest, d))?;
        let claims = self
            .open_encrypted(assertion, unverified.clone(), &mut a.session)
            .map_err(|d| fail(FailureKind::MalformedRequest, d))?;
        let fail = |kind, detail: String| Rejection {
            kind,
            detail,
            issuer: Some(issuer.to_string()),
            unverified: Some(Box::new(claims.clone())),
        };

        // The issuer whose key verified it is the one the Assertion names.
        if a.issuer.as_deref() != Some(issuer) {
            return Err(fail(
                FailureKind::InvalidSignature,
                "the signed Assertion names another Issuer".into(),
            ));
        }

        // Audience: required, and every restriction must name us.
        if a.audiences.is_empty() {
            return Err(fail(
                FailureKind::WrongAudience,
                "the Assertion has no AudienceRestriction".into(),
            ));
        }
        if !a
            .audiences
            .iter()
            .all(|r| r.iter().any(|au| au.trim() == self.sp_entity_id))
        {
            return Err(fail(
                FailureKind::WrongAudience,
                format!(
                    "the AudienceRestriction does not name {}",
                    self.sp_entity_id
                ),
            ));
        }
        // Destination: when present it must be our ACS (on an unsigned
        // Response it is only routing, but a wrong one is still refused).
        if let Some(dest) = &shape.destination {
            if dest != &self.acs_url {
                return Err(fail(
                    FailureKind::WrongAudience,
                    format!("the Destination {dest:?} is not our ACS"),
                ));
            }
        }

        // Time window.
        let skew = self.skew;
        let age = Duration::seconds(MAX_ASSERTION_AGE_SECONDS);
        let mut latest = a.issue_instant + age;
        if a.issue_instant - skew > now {
            return Err(fail(
                FailureKind::Expired,
                "the Assertion was issued in the future".into(),
            ));
        }
        if a.issue_instant + age + skew <= now {
            return Err(fail(
                FailureKind::Expired,
                format!(
                    "the Assertion was issued at {} and is too old",
                    a.issue_instant
                ),
            ));
        }
        if let Some(nb) = a.not_before {
            if now < nb - skew {
                return Err(fail(FailureKind::Expired, format!("not valid before {nb}")));
            }
        }
        if let Some(noa) = a.not_on_or_after {
            if now >= noa + skew {
                return Err(fail(FailureKind::Expired, format!("expired at {noa}")));
            }
            latest = latest.max(noa);
        }
        let mut in_response_to = BTreeSet::new();
        // The Response's InResponseTo counts only when the Response is
        // signed; otherwise only the signed SubjectConfirmationData's does.
        if let Some(irt) = shape.in_response_to.as_ref().filter(|_| response_signed) {
            in_response_to.insert(irt.clone());
        }
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
            if let Some(nb) = data.not_before {
                if now < nb - skew {
                    return Err(fail(
                        FailureKind::Expired,
                        format!("confirmation not valid before {nb}"),
                    ));
                }
            }
            match data.not_on_or_after {
                Some(noa) if now < noa + skew => latest = latest.max(noa),
                Some(noa) => {
                    return Err(fail(
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
            return Err(fail(
                FailureKind::WrongAudience,
                "no bearer SubjectConfirmation with our ACS as Recipient and a NotOnOrAfter".into(),
            ));
        }
        if let Some(why) = conflicting_identity_attribute(&claims, &idp.config) {
            return Err(fail(FailureKind::MalformedRequest, why));
        }
        Ok(Verified {
            issuer: issuer.to_string(),
            assertion_id: a.id,
            replay_until: latest + skew,
            in_response_to,
            claims,
            session: a.session,
        })
    }
}

/// An identity attribute (subject, names, birth date) sent by two
/// `Attribute` elements with different values: which one is meant is not
/// ours to guess. Several values of the school code stay allowed.
fn conflicting_identity_attribute(claims: &Claims, cfg: &IdpConfig) -> Option<String> {
    let a = &cfg.attributes;
    let subject = [cfg.subject.clone()];
    let lists: [(&str, &[String]); 4] = [
        (
            "subject",
            if cfg.subject.eq_ignore_ascii_case("nameid") {
                &[]
            } else {
                &subject
            },
        ),
        ("last name", &a.last_name),
        ("first name", &a.first_name),
        ("birth date", &a.birth_date),
    ];
    for (what, names) in lists {
        let sent: Vec<&Attr> = claims.named(names).collect();
        if sent.len() < 2 {
            continue;
        }
        let values: BTreeSet<&str> = claims.all_values(names).into_iter().collect();
        if values.len() > 1 {
            let names: Vec<&str> = sent.iter().map(|at| at.name.as_str()).collect();
            return Some(format!(
                "the {what} is sent by {} attributes ({}) with different values",
                sent.len(),
                names.join(", ")
            ));
        }
    }
    None
}

/// The IdP's Status, for the admins' detail.
#[derive(Debug, Clone)]
struct Status {
    code: String,
    sub_code: Option<String>,
    message: Option<String>,
}

impl Status {
    fn describe(&self) -> String {
        let mut s = format!("IdP status {}", self.code);
        if let Some(c) = &self.sub_code {
            s.push_str(&format!(" / {c}"));
        }
        if let Some(m) = &self.message {
            s.push_str(&format!(": {m}"));
        }
        s
    }
}

/// What the Response says around its Assertion; unsigned until the
/// Response's signature is verified.
struct Shape {
    issuer: Option<String>,
    status: Option<Status>,
    destination: Option<String>,
    in_response_to: Option<String>,
    unverified: Option<Box<Claims>>,
}

/// The one child `name` of `n`, if any; two are refused.
fn single<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Result<Option<Node<'a, 'i>>, String> {
    let mut it = n.children().filter(|c| is(c, ns, name));
    let first = it.next();
    if it.next().is_some() {
        return Err(format!(
            "the {} has two {name} elements",
            n.tag_name().name()
        ));
    }
    Ok(first)
}

fn signature_of<'a, 'i>(n: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    child(n, DS_NS, "Signature")
}

fn text_of(n: Option<Node>) -> Option<String> {
    n.and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn check_version(n: Node) -> Result<(), String> {
    if n.attribute("Version") != Some("2.0") {
        return Err(format!(
            "the {} has Version {:?}; only SAML 2.0 is read",
            n.tag_name().name(),
            n.attribute("Version").unwrap_or("")
        ));
    }
    Ok(())
}

/// The strict reading every SAML message goes through.
fn read_message(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    check_message_text(xml)?;
    let doc = parse_strict(xml).map_err(|e| format!("not acceptable XML: {e}"))?;
    refuse_comments_and_pis(&doc)?;
    check_message_shape(&doc)?;
    Ok(doc)
}

fn read_shape(root: Node) -> Shape {
    let first_assertion = root
        .descendants()
        .find(|n| is(n, SAML_NS, "Assertion") || is(n, SAML_NS, "EncryptedAssertion"));
    let issuer = text_of(child(root, SAML_NS, "Issuer"))
        .or_else(|| first_assertion.and_then(|a| text_of(child(a, SAML_NS, "Issuer"))));
    let status = child(root, SAMLP_NS, "Status").and_then(|s| {
        let code = child(s, SAMLP_NS, "StatusCode")?;
        Some(Status {
            code: code.attribute("Value")?.trim().to_string(),
            sub_code: child(code, SAMLP_NS, "StatusCode")
                .and_then(|c| c.attribute("Value"))
                .map(str::to_string),
            message: text_of(child(s, SAMLP_NS, "StatusMessage")),
        })
    });
    Shape {
        issuer,
        status,
        destination: root.attribute("Destination").map(str::to_string),
        in_response_to: root.attribute("InResponseTo").map(str::to_string),
        unverified: first_assertion
            .filter(|a| is(a, SAML_NS, "Assertion"))
            .map(|a| Box::new(claims_of(a))),
    }
}

/// IDs are unique in the document: a Reference names one element.
fn unique_ids(doc: &roxmltree::Document) -> Result<(), String> {
    let mut ids = HashSet::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        if let Some(id) = n.attribute("ID") {
            if !ids.insert(id) {
                return Err(format!("the ID {id:?} appears twice"));
            }
        }
    }
    Ok(())
}

/// Every Signature is a direct child of one of `allowed`, and no element
/// carries two.
fn signatures_only_on(doc: &roxmltree::Document, allowed: &[Node]) -> Result<(), String> {
    let mut signed = HashSet::new();
    for sig in doc.descendants().filter(|n| is(n, DS_NS, "Signature")) {
        let parent = sig.parent().ok_or("a Signature has no parent")?;
        if !allowed.contains(&parent) {
            return Err("a Signature sits outside the Response and its Assertion".into());
        }
        if !signed.insert(parent.id()) {
            return Err("an element carries two Signatures".into());
        }
    }
    Ok(())
}

/// The structural rules of a signed SAML response: exactly one Assertion
/// (plain or encrypted), a direct child of the Response; unique IDs;
/// signatures only on the two. Returns the Assertion.
fn outer_structure<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    root: Node<'a, 'i>,
) -> Result<Node<'a, 'i>, String> {
    let assertions: Vec<_> = doc
        .descendants()
        .filter(|n| is(n, SAML_NS, "Assertion") || is(n, SAML_NS, "EncryptedAssertion"))
        .collect();
    let [assertion] = assertions.as_slice() else {
        return Err(format!(
            "{} assertions in the document; exactly one is accepted",
            assertions.len()
        ));
    };
    if assertion.parent() != Some(root) {
        return Err("the Assertion is not a direct child of the Response".into());
    }
    unique_ids(doc)?;
    signatures_only_on(doc, &[root, *assertion])?;
    Ok(*assertion)
}

/// The rules of a decrypted assertion's document: the wrapper holds one
/// element, an Assertion, which is the only one in it and the only element
/// a Signature may sit on.
fn inner_structure<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Result<Node<'a, 'i>, String> {
    let wrapper = doc.root_element();
    let mut elements = wrapper.children().filter(|c| c.is_element());
    let (Some(assertion), None) = (elements.next(), elements.next()) else {
        return Err("it is not one element".into());
    };
    if wrapper
        .children()
        .any(|c| c.is_text() && c.text().is_some_and(|t| !t.trim().is_empty()))
    {
        return Err("text around the Assertion".into());
    }
    if !is(&assertion, SAML_NS, "Assertion") {
        return Err(format!(
            "<{}> is not an Assertion",
            assertion.tag_name().name()
        ));
    }
    if doc
        .descendants()
        .filter(|n| is(n, SAML_NS, "Assertion") || is(n, SAML_NS, "EncryptedAssertion"))
        .count()
        != 1
    {
        return Err("it holds another assertion".into());
    }
    unique_ids(doc)?;
    signatures_only_on(doc, &[assertion])?;
    Ok(assertion)
}

/// The decrypted text inside an element declaring the namespaces in scope
/// where the EncryptedAssertion stood, so that its prefixes mean what they
/// meant there (XML Encryption, "decrypt and replace").
fn wrap_in_context(at: Node, plain: &str) -> Result<String, String> {
    let body = if plain.starts_with("<?xml") {
        check_message_text(plain).map_err(|e| format!("the decrypted assertion: {e}"))?;
        plain
            .split_once("?>")
            .map(|(_, rest)| rest)
            .unwrap_or_default()
    } else {
        plain
    };
    let mut s = String::with_capacity(body.len() + 256);
    s.push_str("<w");
    for ns in at.namespaces() {
        match ns.name() {
            Some(p) => s.push_str(&format!(" xmlns:{p}=\"")),
            None => s.push_str(" xmlns=\""),
        }
        s.push_str(&super::metadata::escape(ns.uri()));
        s.push('"');
    }
    s.push('>');
    s.push_str(body);
    s.push_str("</w>");
    Ok(s)
}

/// An xs:dateTime as SAML sends it: UTC, with or without a `Z` and
/// fractional seconds.
fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn instant(n: Node, attr: &str) -> Result<Option<DateTime<Utc>>, String> {
    match n.attribute(attr) {
        None => Ok(None),
        Some(v) => parse_instant(v).map(Some).ok_or_else(|| {
            format!(
                "the {} {attr} {:?} is not a date and time",
                n.tag_name().name(),
                crate::resolve::prefix_within(v, 40)
            )
        }),
    }
}

/// Everything the checks need from a (verified) Assertion, with the
/// elements SAML allows once refused when repeated.
fn read_assertion(a: Node) -> Result<AssertionFacts, String> {
    let id = a
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or("the Assertion has no ID")?
        .to_string();
    let issue_instant = instant(a, "IssueInstant")?.ok_or("the Assertion has no IssueInstant")?;
    let issuer = text_of(single(a, SAML_NS, "Issuer")?);
    let mut confirmations = Vec::new();
    let mut session = Session::default();
    if let Some(subject) = single(a, SAML_NS, "Subject")? {
        if let Some(n) = single(subject, SAML_NS, "NameID")? {
            session.name_qualifier = n.attribute("NameQualifier").map(str::to_string);
            session.sp_name_qualifier = n.attribute("SPNameQualifier").map(str::to_string);
        }
        for c in subject
            .children()
            .filter(|c| is(c, SAML_NS, "SubjectConfirmation"))
        {
            let data = match single(c, SAML_NS, "SubjectConfirmationData")? {
                None => None,
                Some(d) => Some(ConfirmationData {
                    recipient: d.attribute("Recipient").map(str::to_string),
                    not_before: instant(d, "NotBefore")?,
                    not_on_or_after: instant(d, "NotOnOrAfter")?,
                    in_response_to: d.attribute("InResponseTo").map(str::to_string),
                }),
            };
            confirmations.push(Confirmation {
                method: c.attribute("Method").map(str::to_string),
                data,
            });
        }
    }
    let (mut not_before, mut not_on_or_after, mut audiences) = (None, None, Vec::new());
    if let Some(c) = single(a, SAML_NS, "Conditions")? {
        not_before = instant(c, "NotBefore")?;
        not_on_or_after = instant(c, "NotOnOrAfter")?;
        for r in c
            .children()
            .filter(|r| is(r, SAML_NS, "AudienceRestriction"))
        {
            audiences.push(
                r.children()
                    .filter(|x| is(x, SAML_NS, "Audience"))
                    .map(|x| x.text().unwrap_or("").to_string())
                    .collect(),
            );
        }
    }
    // One AuthnStatement is what IdPs send; two would name two sessions,
    // and which one ends ours is not ours to guess: refused.
    if let Some(st) = single(a, SAML_NS, "AuthnStatement")? {
        session.session_index = st.attribute("SessionIndex").map(str::to_string);
        session.not_on_or_after = instant(st, "SessionNotOnOrAfter")?;
    }
    Ok(AssertionFacts {
        session,
        id,
        issue_instant,
        issuer,
        confirmations,
        not_before,
        not_on_or_after,
        audiences,
    })
}

/// The text of an AttributeValue: its text; for a NameID inside it (as
/// eduPersonTargetedID is sent) its value with its qualifiers, written
/// `NameQualifier!SPNameQualifier!value` as Shibboleth does, since the value
/// alone is unique only for that pair; for any other XML, the text inside.
fn value_text(v: Node) -> String {
    let elements: Vec<Node> = v.children().filter(|c| c.is_element()).collect();
    if let [n] = elements.as_slice() {
        if is(n, SAML_NS, "NameID") {
            let value = n.text().unwrap_or("").trim();
            return match (n.attribute("NameQualifier"), n.attribute("SPNameQualifier")) {
                (None, None) => value.to_string(),
                (q, sp) => format!("{}!{}!{value}", q.unwrap_or(""), sp.unwrap_or("")),
            };
        }
    }
    if !elements.is_empty() {
        v.descendants()
            .filter(|d| d.is_text())
            .filter_map(|d| d.text())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        v.text().unwrap_or("").to_string()
    }
}

/// A NameID's value (trimmed, none when empty) and Format.
fn name_id_of(n: Node) -> (Option<String>, Option<String>) {
    let value = Some(n.text().unwrap_or("").trim().to_string()).filter(|t| !t.is_empty());
    (value, n.attribute("Format").map(str::to_string))
}

/// An Attribute element: its Name (or FriendlyName), FriendlyName and values.
fn attr_of(a: Node) -> Option<Attr> {
    Some(Attr {
        name: a
            .attribute("Name")
            .or(a.attribute("FriendlyName"))?
            .to_string(),
        friendly_name: a.attribute("FriendlyName").map(str::to_string),
        values: a
            .children()
            .filter(|v| is(v, SAML_NS, "AttributeValue"))
            .map(value_text)
            .collect(),
    })
}

/// The NameID and attributes of an Assertion, read from its tree: for the
/// record of a refused response before verification, and as the verified
/// claims after it (encrypted parts are opened only then).
fn claims_of(assertion: Node) -> Claims {
    let (name_id, name_id_format) = child(assertion, SAML_NS, "Subject")
        .and_then(|s| child(s, SAML_NS, "NameID"))
        .map(name_id_of)
        .unwrap_or_default();
    let attributes = assertion
        .children()
        .filter(|n| is(n, SAML_NS, "AttributeStatement"))
        .flat_map(|s| s.children().filter(|n| is(n, SAML_NS, "Attribute")))
        .filter_map(attr_of)
        .collect();
    Claims {
        name_id,
        name_id_format,
        name_id_error: None,
        attributes,
    }
}
