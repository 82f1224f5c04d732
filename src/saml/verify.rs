//! The hardening wrapper around samael: everything an assertion must pass
//! before anybody is logged in, in the order of SPEC §2.
//!
//! samael (on libxmlsec1) verifies signatures against the metadata
//! certificates and reads claims only from the signed part. What it leaves
//! open is closed here (NOTES.md):
//! - the document is parsed strictly first: no DTD, no entities, no comments,
//!   no processing instructions, the root must be a protocol Response;
//! - exactly one Assertion (or EncryptedAssertion), a direct child of the
//!   Response; every Signature is a direct child of the Response or of that
//!   Assertion and references its parent's ID; IDs are unique; only SHA-256
//!   and stronger, and only the c14n and enveloped-signature transforms. So a
//!   wrapped document (XSW) is refused, where samael would silently verify the
//!   signed part and drop the rest;
//! - an AudienceRestriction naming us is required (samael checks it only when
//!   present), as is an Issuer;
//! - the time window is checked here, with the configured skew, on the
//!   assertion's IssueInstant, Conditions and SubjectConfirmationData;
//! - InResponseTo and replay are checked by the caller against SQLite, with
//!   what [`Verified`] reports.

use super::metadata::IdpMetadata;
use super::xml::{
    check_message_shape, check_message_text, parse_strict, refuse_comments_and_pis, DS_NS,
    SAMLP_NS, SAML_NS,
};
use crate::config::IdpConfig;
use crate::resolve::FailureKind;
use chrono::{DateTime, Duration, Utc};
use samael::crypto::AllowedSignatureAlgorithm;
use samael::service_provider::{Error as SamlError, ServiceProvider, ServiceProviderBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// How long after its IssueInstant an assertion is still taken (on top of the
/// clock skew). IdPs post within seconds; five minutes covers slow browsers.
pub const MAX_ASSERTION_AGE_SECONDS: i64 = 300;

const SIGNATURE_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const DIGEST_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
const C14N_METHODS: &[&str] = &[
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
];
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// One attribute as sent: its name, friendly name and values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub friendly_name: Option<String>,
    pub values: Vec<String>,
}

/// What an assertion says: its NameID and attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub name_id: Option<String>,
    pub attributes: Vec<Attr>,
}

impl Attr {
    /// Whether the attribute is `name`, by `Name` or `FriendlyName`.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.friendly_name.as_deref() == Some(name)
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
    pub unverified: Option<Claims>,
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

/// A configured IdP: its metadata, its settings and a samael SP bound to it.
pub struct Idp {
    pub meta: IdpMetadata,
    pub config: IdpConfig,
    sp: ServiceProvider,
}

/// Verifies responses for every configured IdP.
pub struct Verifier {
    pub sp_entity_id: String,
    pub acs_url: String,
    skew: Duration,
    idps: HashMap<String, Arc<Idp>>,
}

impl Verifier {
    /// Builds one samael SP per IdP. samael's own time checks are relaxed
    /// (they use the wall clock and check in another order); ours replace
    /// them with the configured skew.
    pub fn new(
        sp_entity_id: String,
        acs_url: String,
        skew_seconds: i64,
        sp_key: &openssl::pkey::PKey<openssl::pkey::Private>,
        sp_cert_der: Vec<u8>,
        idps: Vec<(IdpMetadata, IdpConfig)>,
    ) -> Result<Verifier, String> {
        let mut map = HashMap::new();
        for (meta, config) in idps {
            let ed = meta.to_samael()?;
            let sp = ServiceProviderBuilder::default()
                .entity_id(sp_entity_id.clone())
                .acs_url(acs_url.clone())
                .idp_metadata(ed)
                .key(sp_key.clone())
                .certificate(samael::crypto::CertificateDer::from(sp_cert_der.clone()))
                // InResponseTo is checked by us against SQLite (NOTES gap 6).
                .allow_idp_initiated(true)
                .allowed_signature_algorithms(vec![
                    AllowedSignatureAlgorithm::RsaSha256,
                    AllowedSignatureAlgorithm::RsaSha384,
                    AllowedSignatureAlgorithm::RsaSha512,
                    AllowedSignatureAlgorithm::EcdsaSha256,
                    AllowedSignatureAlgorithm::EcdsaSha384,
                    AllowedSignatureAlgorithm::EcdsaSha512,
                ])
                .max_clock_skew(Duration::days(3650))
                .max_issue_delay(Duration::days(3650))
                .build()
                .map_err(|e| format!("entity {:?}: {e}", meta.entity_id))?;
            let id = meta.entity_id.clone();
            if map
                .insert(id.clone(), Arc::new(Idp { meta, config, sp }))
                .is_some()
            {
                return Err(format!("entity {id:?} is configured twice"));
            }
        }
        Ok(Verifier {
            sp_entity_id,
            acs_url,
            skew: Duration::seconds(skew_seconds),
            idps: map,
        })
    }

    pub fn idp(&self, entity_id: &str) -> Option<&Arc<Idp>> {
        self.idps.get(entity_id)
    }

    pub fn idps(&self) -> impl Iterator<Item = &Arc<Idp>> {
        self.idps.values()
    }

    /// Runs every check on a decoded response. Blocking (libxmlsec1): call it
    /// from `spawn_blocking`.
    pub fn verify(&self, xml: &str, now: DateTime<Utc>) -> Result<Verified, Rejection> {
        let shape = read_shape(xml)?;
        let issuer = shape.issuer.clone().ok_or_else(|| {
            Rejection::new(FailureKind::UnknownIssuer, "the response has no Issuer")
        })?;
        let with_issuer = |kind, detail: String| Rejection {
            kind,
            detail,
            issuer: Some(issuer.clone()),
            unverified: shape.unverified.clone(),
        };
        let Some(idp) = self.idps.get(&issuer) else {
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
        if let Some(why) = &shape.signature_problem {
            return Err(with_issuer(FailureKind::InvalidSignature, why.clone()));
        }
        // samael's error type is !Send; it is turned into ours right here.
        let assertion = idp.sp.parse_xml_response(xml, None).map_err(|e| {
            // samael verifies the signature before it deserialises, so a
            // parse error comes from a signed document; an empty NameID is
            // one (it cannot deserialise it), and is a missing subject.
            let parse_error = matches!(
                e,
                SamlError::FailedToParseSamlResponse(_) | SamlError::FailedToParseSamlAssertion(_)
            );
            let empty_name_id = shape
                .unverified
                .as_ref()
                .is_some_and(|c| c.name_id.as_deref().is_none_or(str::is_empty));
            if parse_error && empty_name_id && idp.config.subject.eq_ignore_ascii_case("nameid") {
                with_issuer(FailureKind::MissingSubject, "the NameID is empty".into())
            } else {
                with_issuer(kind_of_samael_error(&e), format!("samael: {e}"))
            }
        })?;
        let claims = claims_of(&assertion);
        let fail = |kind, detail: String| Rejection {
            kind,
            detail,
            issuer: Some(issuer.clone()),
            unverified: Some(claims.clone()),
        };

        // The issuer samael checked against the metadata is the one we chose.
        if assertion.issuer.value.as_deref() != Some(issuer.as_str()) {
            return Err(fail(
                FailureKind::InvalidSignature,
                "the signed Assertion names another Issuer".into(),
            ));
        }

        // Audience: required, and every restriction must name us.
        let restrictions = assertion
            .conditions
            .as_ref()
            .and_then(|c| c.audience_restrictions.as_ref())
            .filter(|r| !r.is_empty());
        match restrictions {
            None => {
                return Err(fail(
                    FailureKind::WrongAudience,
                    "the Assertion has no AudienceRestriction".into(),
                ))
            }
            Some(rs) => {
                if !rs
                    .iter()
                    .all(|r| r.audience.iter().any(|a| a.trim() == self.sp_entity_id))
                {
                    return Err(fail(
                        FailureKind::WrongAudience,
                        format!(
                            "the AudienceRestriction does not name {}",
                            self.sp_entity_id
                        ),
                    ));
                }
            }
        }
        // Destination: samael checks it on signed Responses or when present;
        // an unsigned Response's Destination is only routing (NOTES gap 7).
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
        let mut latest = assertion.issue_instant + Duration::seconds(MAX_ASSERTION_AGE_SECONDS);
        if assertion.issue_instant - skew > now {
            return Err(fail(
                FailureKind::Expired,
                "the Assertion was issued in the future".into(),
            ));
        }
        if assertion.issue_instant + Duration::seconds(MAX_ASSERTION_AGE_SECONDS) + skew <= now {
            return Err(fail(
                FailureKind::Expired,
                format!(
                    "the Assertion was issued at {} and is too old",
                    assertion.issue_instant
                ),
            ));
        }
        if let Some(c) = &assertion.conditions {
            if let Some(nb) = c.not_before {
                if now < nb - skew {
                    return Err(fail(FailureKind::Expired, format!("not valid before {nb}")));
                }
            }
            if let Some(noa) = c.not_on_or_after {
                if now >= noa + skew {
                    return Err(fail(FailureKind::Expired, format!("expired at {noa}")));
                }
                latest = latest.max(noa);
            }
        }
        let mut in_response_to = BTreeSet::new();
        // The Response's InResponseTo counts only when the Response is
        // signed; otherwise only the signed SubjectConfirmationData's does.
        if let Some(irt) = shape
            .in_response_to
            .as_ref()
            .filter(|_| shape.response_signed)
        {
            in_response_to.insert(irt.clone());
        }
        let mut bearer_ok = false;
        for conf in assertion
            .subject
            .iter()
            .flat_map(|s| s.subject_confirmations.iter().flatten())
            .filter(|c| c.method.as_deref() == Some(BEARER))
        {
            let Some(data) = &conf.subject_confirmation_data else {
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
        if assertion.version != "2.0" {
            return Err(fail(
                FailureKind::MalformedRequest,
                format!(
                    "the Assertion has Version {:?}; only SAML 2.0 is read",
                    assertion.version
                ),
            ));
        }
        if let Some(why) = conflicting_identity_attribute(&claims, &idp.config) {
            return Err(fail(FailureKind::MalformedRequest, why));
        }
        Ok(Verified {
            issuer,
            assertion_id: assertion.id.clone(),
            replay_until: latest + skew,
            in_response_to,
            claims,
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

/// Maps each samael error to the failure kind it means. Kinds that our own
/// prechecks catch first (issuer, status) still map sensibly.
fn kind_of_samael_error(e: &SamlError) -> FailureKind {
    use SamlError::*;
    match e {
        FailedToValidateSignature
        | AssertionIssuerMismatch { .. }
        | ResponseIssuerMismatch { .. }
        | FailedToParseCert { .. }
        | EncryptedAssertionsNotYetSupported
        | MissingEncryptedKeyInfo
        | MissingEncryptedValueInfo
        | EncryptedAssertionKeyMethodUnsupported { .. }
        | EncryptedAssertionValueMethodUnsupported { .. }
        | EncryptedAssertionInvalid
        | FailedToDecryptAssertion
        | UnsupportedKey
        | MissingPrivateKeySP
        | CryptoProviderError(_) => FailureKind::InvalidSignature,
        DestinationValidationError { .. }
        | AssertionRecipientMismatch { .. }
        | AssertionConditionAudienceRestrictionFailed { .. }
        // No bearer confirmation, or one without SubjectConfirmationData:
        // no Recipient names us, so it was not sent to us.
        | AssertionBearerSubjectConfirmationMissing
        | AssertionSubjectConfirmationMissing => FailureKind::WrongAudience,
        AssertionExpired { .. }
        | AssertionSubjectConfirmationExpired { .. }
        | AssertionSubjectConfirmationExpiredBefore { .. }
        | AssertionConditionExpired { .. }
        | AssertionConditionExpiredBefore { .. }
        | ResponseExpired { .. } => FailureKind::Expired,
        AssertionInResponseToInvalid { .. } | ResponseInResponseToInvalid { .. } => {
            FailureKind::Replayed
        }
        ResponseBadStatusCode { .. } => FailureKind::IdpError,
        _ => FailureKind::MalformedRequest,
    }
}

fn claims_of(a: &samael::schema::Assertion) -> Claims {
    Claims {
        name_id: a
            .subject
            .as_ref()
            .and_then(|s| s.name_id.as_ref())
            .map(|n| n.value.trim().to_string()),
        attributes: a
            .attribute_statements
            .iter()
            .flatten()
            .flat_map(|s| s.attributes.iter())
            .filter_map(|at| {
                Some(Attr {
                    name: at.name.clone().or_else(|| at.friendly_name.clone())?,
                    friendly_name: at.friendly_name.clone(),
                    values: at.values.iter().filter_map(|v| v.value.clone()).collect(),
                })
            })
            .collect(),
    }
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

/// What the strict read of the document found before any signature check.
struct Shape {
    issuer: Option<String>,
    status: Option<Status>,
    destination: Option<String>,
    in_response_to: Option<String>,
    /// Whether the Response itself carries a Signature (verified by samael
    /// before anything is taken from it).
    response_signed: bool,
    /// Set when the document's structure is one we refuse to verify.
    signature_problem: Option<String>,
    unverified: Option<Claims>,
}

fn is(n: &roxmltree::Node, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| is(c, ns, name))
}

fn read_shape(xml: &str) -> Result<Shape, Rejection> {
    let malformed = |d: String| Rejection::new(FailureKind::MalformedRequest, d);
    check_message_text(xml).map_err(malformed)?;
    let doc = parse_strict(xml).map_err(|e| malformed(format!("not acceptable XML: {e}")))?;
    refuse_comments_and_pis(&doc).map_err(malformed)?;
    check_message_shape(&doc).map_err(malformed)?;
    let root = doc.root_element();
    if !is(&root, SAMLP_NS, "Response") {
        return Err(malformed(format!(
            "the root element is <{}>, not a SAML protocol Response",
            root.tag_name().name()
        )));
    }
    // SAML 2.0 only: a Version="1.1" Response or Assertion is refused.
    for n in std::iter::once(root).chain(root.children().filter(|c| is(c, SAML_NS, "Assertion"))) {
        if n.attribute("Version") != Some("2.0") {
            return Err(malformed(format!(
                "the {} has Version {:?}; only SAML 2.0 is read",
                n.tag_name().name(),
                n.attribute("Version").unwrap_or("")
            )));
        }
    }
    let assertions: Vec<_> = doc
        .descendants()
        .filter(|n| is(n, SAML_NS, "Assertion") || is(n, SAML_NS, "EncryptedAssertion"))
        .collect();
    let text_of = |n: Option<roxmltree::Node>| {
        n.and_then(|n| n.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let first_assertion = assertions.first().copied();
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
    let unverified = first_assertion
        .filter(|a| is(a, SAML_NS, "Assertion"))
        .map(unverified_claims);
    Ok(Shape {
        issuer,
        status,
        destination: root.attribute("Destination").map(str::to_string),
        in_response_to: root.attribute("InResponseTo").map(str::to_string),
        response_signed: root.children().any(|c| is(&c, DS_NS, "Signature")),
        signature_problem: signature_structure(&doc, root, &assertions).err(),
        unverified,
    })
}

/// The structural rules of signed SAML responses; any break is a refusal.
fn signature_structure(
    doc: &roxmltree::Document,
    root: roxmltree::Node,
    assertions: &[roxmltree::Node],
) -> Result<(), String> {
    let [assertion] = assertions else {
        return Err(format!(
            "{} assertions in the document; exactly one is accepted",
            assertions.len()
        ));
    };
    if assertion.parent() != Some(root) {
        return Err("the Assertion is not a direct child of the Response".into());
    }
    let mut ids = HashSet::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        if let Some(id) = n.attribute("ID") {
            if !ids.insert(id) {
                return Err(format!("the ID {id:?} appears twice"));
            }
        }
    }
    let signatures: Vec<_> = doc
        .descendants()
        .filter(|n| is(n, DS_NS, "Signature"))
        .collect();
    if signatures.is_empty() {
        return Err("neither the Response nor the Assertion is signed".into());
    }
    let mut signed_parents = HashSet::new();
    for sig in &signatures {
        let parent = sig.parent().ok_or("a Signature has no parent")?;
        if parent != root && parent != *assertion {
            return Err("a Signature sits outside the Response and its Assertion".into());
        }
        if !signed_parents.insert(parent.id()) {
            return Err("an element carries two Signatures".into());
        }
        check_signature(sig, parent)?;
    }
    if is(assertion, SAML_NS, "EncryptedAssertion") && !signed_parents.contains(&root.id()) {
        return Err("an encrypted Assertion is only accepted in a signed Response".into());
    }
    Ok(())
}

fn alg<'a>(n: Option<roxmltree::Node<'a, '_>>) -> &'a str {
    n.and_then(|n| n.attribute("Algorithm")).unwrap_or("")
}

fn check_signature(sig: &roxmltree::Node, parent: roxmltree::Node) -> Result<(), String> {
    let signed_info = child(*sig, DS_NS, "SignedInfo").ok_or("a Signature has no SignedInfo")?;
    let c14n = alg(child(signed_info, DS_NS, "CanonicalizationMethod"));
    if !C14N_METHODS.contains(&c14n) {
        return Err(format!("canonicalization {c14n:?} is not accepted"));
    }
    let method = alg(child(signed_info, DS_NS, "SignatureMethod"));
    if !SIGNATURE_METHODS.contains(&method) {
        return Err(format!(
            "signature algorithm {method:?} is not accepted (SHA-256 or stronger only)"
        ));
    }
    let refs: Vec<_> = signed_info
        .children()
        .filter(|n| is(n, DS_NS, "Reference"))
        .collect();
    let [reference] = refs.as_slice() else {
        return Err(format!(
            "a Signature has {} References; exactly one is accepted",
            refs.len()
        ));
    };
    let parent_id = parent
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or("a signed element has no ID")?;
    let uri = reference.attribute("URI").unwrap_or("");
    if uri.strip_prefix('#') != Some(parent_id) {
        return Err(format!(
            "a Signature references {uri:?}, not its own element #{parent_id}"
        ));
    }
    let digest = alg(child(*reference, DS_NS, "DigestMethod"));
    if !DIGEST_METHODS.contains(&digest) {
        return Err(format!(
            "digest algorithm {digest:?} is not accepted (SHA-256 or stronger only)"
        ));
    }
    if let Some(transforms) = child(*reference, DS_NS, "Transforms") {
        for t in transforms.children().filter(|n| is(n, DS_NS, "Transform")) {
            let a = t.attribute("Algorithm").unwrap_or("");
            if a != ENVELOPED && !C14N_METHODS.contains(&a) {
                return Err(format!("transform {a:?} is not accepted"));
            }
        }
    }
    Ok(())
}

/// NameID and attributes as written, for the record of a refused response.
fn unverified_claims(assertion: roxmltree::Node) -> Claims {
    let name_id = child(assertion, SAML_NS, "Subject")
        .and_then(|s| child(s, SAML_NS, "NameID"))
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string());
    let attributes = assertion
        .children()
        .filter(|n| is(n, SAML_NS, "AttributeStatement"))
        .flat_map(|s| s.children().filter(|n| is(n, SAML_NS, "Attribute")))
        .filter_map(|a| {
            Some(Attr {
                name: a
                    .attribute("Name")
                    .or(a.attribute("FriendlyName"))?
                    .to_string(),
                friendly_name: a.attribute("FriendlyName").map(str::to_string),
                values: a
                    .children()
                    .filter(|v| is(v, SAML_NS, "AttributeValue"))
                    .map(|v| v.text().unwrap_or("").to_string())
                    .collect(),
            })
        })
        .collect();
    Claims {
        name_id,
        attributes,
    }
}
