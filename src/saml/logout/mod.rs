//! Single logout (SAML profiles §4.4): an IdP's LogoutRequest and its
//! LogoutResponse to ours, read and verified from the HTTP-Redirect and
//! HTTP-POST bindings, and our signed LogoutRequest and LogoutResponse for
//! the HTTP-Redirect binding.
//!
//! A logout message ends sessions, so it is read as strictly as a login:
//! - bounded before anything is decoded: the query, the POST body, and the
//!   inflated message ([`MAX_QUERY_BYTES`], [`MAX_BODY_BYTES`],
//!   [`MAX_MESSAGE_BYTES`]); a field given twice is refused;
//! - the XML goes through the strict reading every SAML message gets (UTF-8
//!   only, no DTD, no comments or processing instructions, bounded shape),
//!   and is read once, from one tree;
//! - it must be signed by the Issuer, a configured IdP, with its metadata
//!   keys: HTTP-Redirect by the query signature over the raw octets
//!   `SAMLRequest=…&RelayState=…&SigAlg=…` as they appear in the URL
//!   (bindings §3.4.4.1), HTTP-POST by one enveloped XML signature on the
//!   root ([`super::dsig::verify_enveloped`]); RSA or ECDSA with SHA-256 or
//!   stronger, SHA-1 refused; unsigned is refused;
//! - `Destination`, when present, must be our SingleLogoutService; the
//!   `IssueInstant` within the clock skew and at most five minutes old; a
//!   request's `NotOnOrAfter` not passed. Replay (the request's ID) and
//!   `InResponseTo` (a response's) are checked by the caller in SQLite.
//!
//! What cannot be verified is refused without an answer to the IdP: a
//! signed answer to a stranger's message would be ours to regret.

use super::dsig::{verify_enveloped, TrustedKeys};
use super::metadata::escape;
use super::verify::MAX_ASSERTION_AGE_SECONDS;
use super::xml::{child, is, DS_NS, SAMLP_NS, SAML_NS};
use super::Verifier;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use roxmltree::Node;
use std::io::{Read, Write};

/// The longest query string read on `GET /saml/slo`. A deflated, signed
/// LogoutRequest takes well under 4 KiB.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// The largest `POST /saml/slo` body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest message, once inflated or decoded: DEFLATE expands up to a
/// thousandfold, so inflating stops here.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The longest RelayState taken (the binding says 80 bytes; some IdPs send
/// more), echoed back to the IdP with our answer.
pub const MAX_RELAY_STATE_BYTES: usize = 1024;
/// The most SessionIndex elements one LogoutRequest may name.
pub const MAX_SESSION_INDEXES: usize = 64;

/// The one algorithm we sign with.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
const STATUS_UNSUPPORTED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported";
const REASON_USER: &str = "urn:oasis:names:tc:SAML:2.0:logout:user";

/// Why a logout message is refused. None of them is answered to the IdP;
/// the reason goes to the log (it names no person), never to the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over a size bound.
    TooLarge(String),
    /// Not a logout message we can read, or not one we can verify: unknown
    /// issuer, unsigned, a bad signature or a weak algorithm.
    Unverifiable(String),
    /// Verified, but not for us now: another Destination, outside its time
    /// window, replayed, or answering no request of ours.
    Stale(String),
}

impl Refusal {
    /// The reason, for the log.
    pub fn reason(&self) -> &str {
        match self {
            Refusal::TooLarge(r) | Refusal::Unverifiable(r) | Refusal::Stale(r) => r,
        }
    }
}

fn unverifiable(why: impl Into<String>) -> Refusal {
    Refusal::Unverifiable(why.into())
}

/// The query signature of an HTTP-Redirect message.
#[derive(Debug, Clone)]
struct QuerySignature {
    /// The octets the signature covers, exactly as they came in the URL.
    signed: String,
    sig_alg: Option<String>,
    signature: Option<Vec<u8>>,
}

/// A logout message as it arrived, decoded but not yet verified.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `SAMLRequest` (true) or `SAMLResponse`.
    pub is_request: bool,
    pub xml: String,
    pub relay_state: Option<String>,
    /// Some for HTTP-Redirect, None for HTTP-POST.
    redirect: Option<QuerySignature>,
}

mod bindings;
mod build;

use bindings::verify_query_signature;
pub use bindings::{from_form, from_query};
pub use build::{
    encode_redirect_message, logout_request_xml, logout_response_xml, signed_redirect, url_encode,
    NameId,
};

/// A SAML status: a top-level code and an optional second-level one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub code: &'static str,
    pub sub_code: Option<&'static str>,
}

impl Status {
    pub const SUCCESS: Status = Status {
        code: STATUS_SUCCESS,
        sub_code: None,
    };
    /// The request is the requester's fault (no NameID, too many indexes).
    pub const REQUESTER: Status = Status {
        code: STATUS_REQUESTER,
        sub_code: None,
    };
    /// A request we do not support (an EncryptedID).
    pub const UNSUPPORTED: Status = Status {
        code: STATUS_RESPONDER,
        sub_code: Some(STATUS_UNSUPPORTED),
    };
}

/// What a verified LogoutRequest asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// End the sessions of this NameID (value), only those of these
    /// SessionIndexes when some are given.
    Logout {
        name_id: String,
        session_indexes: Vec<String>,
    },
    /// Nothing we can do: answer with this status (the reason is logged).
    Refuse { status: Status, reason: String },
}

/// An IdP's LogoutRequest whose signature, issuer, destination and time
/// passed; its ID still has to pass the replay cache.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    pub issuer: String,
    pub id: String,
    /// Echoed back with our answer, as the binding requires.
    pub relay_state: Option<String>,
    /// Until when the ID is kept in the replay cache: after that, the
    /// message is too old anyway.
    pub replay_until: DateTime<Utc>,
    pub ask: Ask,
}

/// An IdP's LogoutResponse whose signature, issuer, destination and time
/// passed; `InResponseTo` still has to name a pending request of ours.
#[derive(Debug, Clone)]
pub struct LogoutResponse {
    pub issuer: String,
    pub in_response_to: Option<String>,
    pub success: bool,
    /// The top-level status code, for the log.
    pub status: String,
}

/// A verified logout message.
#[derive(Debug, Clone)]
pub enum Message {
    Request(LogoutRequest),
    Response(LogoutResponse),
}

fn text_of(n: Node) -> String {
    n.text().unwrap_or("").trim().to_string()
}

/// The one child `name` of `n`, if any; two are refused (the reading of
/// responses, as a refusal).
fn single<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Result<Option<Node<'a, 'i>>, Refusal> {
    super::reading::single(n, ns, name).map_err(unverifiable)
}

/// An xs:dateTime attribute, as responses read it.
fn instant(n: Node, attr: &str) -> Result<Option<DateTime<Utc>>, Refusal> {
    super::reading::instant(n, attr).map_err(unverifiable)
}

/// IDs are unique in the document: the signature's Reference names one
/// element.
fn unique_ids(doc: &roxmltree::Document) -> Result<(), Refusal> {
    super::reading::unique_ids(doc).map_err(unverifiable)
}

/// Verifies a logout message: its shape, issuer, signature, destination
/// and time. `slo_url` is our SingleLogoutService; `skew_seconds` the
/// configured clock skew. CPU-bound (parse, RSA): call it from
/// `spawn_blocking`.
// Long on purpose: a logout message's checks in order (shape, issuer,
// signature for its binding, destination, times), read top to bottom.
pub fn verify(
    inc: &Incoming,
    verifier: &Verifier,
    slo_url: &str,
    skew_seconds: i64,
    now: DateTime<Utc>,
) -> Result<Message, Refusal> {
    let doc = super::reading::read_message(&inc.xml).map_err(Refusal::Unverifiable)?;
    let root = doc.root_element();
    let want = if inc.is_request {
        "LogoutRequest"
    } else {
        "LogoutResponse"
    };
    if !is(&root, SAMLP_NS, want) {
        return Err(unverifiable(format!(
            "the root element is <{}>, not a samlp:{want}",
            crate::resolve::prefix_within(root.tag_name().name(), 40)
        )));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(unverifiable(format!("the {want} is not SAML Version 2.0")));
    }
    let issuer = single(root, SAML_NS, "Issuer")?
        .map(text_of)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| unverifiable(format!("the {want} has no Issuer")))?;
    let Some(idp) = verifier.idp(&issuer) else {
        return Err(unverifiable(format!(
            "the Issuer of the {want} is not a configured IdP"
        )));
    };
    let id = root
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| unverifiable(format!("the {want} has no ID")))?
        .to_string();
    unique_ids(&doc)?;
    let signatures: Vec<Node> = doc
        .descendants()
        .filter(|n| is(n, DS_NS, "Signature"))
        .collect();
    match &inc.redirect {
        Some(q) => {
            // The binding removes any XML signature before deflating; one
            // still there is not ours to judge.
            if !signatures.is_empty() {
                return Err(unverifiable(
                    "an XML Signature inside an HTTP-Redirect message",
                ));
            }
            verify_query_signature(q, &idp.meta.signing_certs)?;
        }
        None => {
            let sig = match signatures.as_slice() {
                [] => return Err(unverifiable(format!("the {want} is not signed"))),
                [sig] if sig.parent() == Some(root) => *sig,
                [_] => {
                    return Err(unverifiable(format!(
                        "the Signature is not a child of the {want}"
                    )))
                }
                _ => return Err(unverifiable("more than one Signature")),
            };
            let keys = TrustedKeys::from_certificates(&idp.meta.signing_certs)
                .map_err(Refusal::Unverifiable)?;
            verify_enveloped(sig, root, &keys).map_err(Refusal::Unverifiable)?;
        }
    }

    // Signed by the IdP from here on.
    if let Some(dest) = root.attribute("Destination") {
        if dest != slo_url {
            return Err(Refusal::Stale(format!(
                "the {want} is addressed to another Destination"
            )));
        }
    }
    let skew = Duration::seconds(skew_seconds);
    let age = Duration::seconds(MAX_ASSERTION_AGE_SECONDS);
    let issued = instant(root, "IssueInstant")?
        .ok_or_else(|| unverifiable(format!("the {want} has no IssueInstant")))?;
    if issued - skew > now {
        return Err(Refusal::Stale(format!(
            "the {want} was issued in the future"
        )));
    }
    if issued + age + skew <= now {
        return Err(Refusal::Stale(format!("the {want} is too old")));
    }
    if !inc.is_request {
        let status = child(root, SAMLP_NS, "Status")
            .and_then(|s| child(s, SAMLP_NS, "StatusCode"))
            .and_then(|c| c.attribute("Value"))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| unverifiable("the LogoutResponse has no StatusCode"))?;
        return Ok(Message::Response(LogoutResponse {
            issuer,
            in_response_to: root.attribute("InResponseTo").map(str::to_string),
            success: status == STATUS_SUCCESS,
            status: crate::resolve::prefix_within(&status, 200).to_string(),
        }));
    }
    if let Some(noa) = instant(root, "NotOnOrAfter")? {
        if now >= noa + skew {
            return Err(Refusal::Stale("the LogoutRequest has expired".into()));
        }
    }
    Ok(Message::Request(LogoutRequest {
        issuer,
        id,
        relay_state: inc.relay_state.clone(),
        replay_until: issued + age + skew,
        ask: ask_of(root)?,
    }))
}

/// Whom a LogoutRequest names, and which of their sessions.
fn ask_of(root: Node) -> Result<Ask, Refusal> {
    let refuse = |status, reason: &str| {
        Ok(Ask::Refuse {
            status,
            reason: reason.to_string(),
        })
    };
    let name_id = single(root, SAML_NS, "NameID")?;
    let encrypted = single(root, SAML_NS, "EncryptedID")?;
    let base = single(root, SAML_NS, "BaseID")?;
    let name_id = match (name_id, encrypted, base) {
        (Some(n), None, None) => text_of(n),
        (None, Some(_), None) => {
            return refuse(
                Status::UNSUPPORTED,
                "an EncryptedID in a LogoutRequest is not supported",
            )
        }
        (None, None, None) => return refuse(Status::REQUESTER, "the LogoutRequest names nobody"),
        _ => {
            return refuse(
                Status::REQUESTER,
                "the LogoutRequest names its subject by other than one NameID",
            )
        }
    };
    if name_id.is_empty() {
        return refuse(Status::REQUESTER, "the LogoutRequest's NameID is empty");
    }
    let session_indexes: Vec<String> = root
        .children()
        .filter(|c| is(c, SAMLP_NS, "SessionIndex"))
        .map(text_of)
        .collect();
    if session_indexes.len() > MAX_SESSION_INDEXES {
        return refuse(
            Status::REQUESTER,
            "the LogoutRequest names too many SessionIndexes",
        );
    }
    Ok(Ask::Logout {
        name_id,
        session_indexes,
    })
}

#[cfg(test)]
mod tests {
    use super::bindings::percent_decode;
    use super::*;

    #[test]
    fn percent_decoding_reads_escapes_and_plus() {
        assert_eq!(percent_decode("a%2Bb+c%3d"), b"a+b c=");
        assert_eq!(percent_decode("%"), b"%");
        assert_eq!(percent_decode("%zz1"), b"%zz1");
        assert_eq!(percent_decode("%+1"), b"% 1");
        assert_eq!(percent_decode("x%4"), b"x%4");
    }

    #[test]
    fn a_deflate_bomb_is_refused_as_too_large() {
        let big = " ".repeat(MAX_MESSAGE_BYTES * 4);
        let q = format!(
            "SAMLRequest={}",
            encode_redirect_message(&big).expect("enc")
        );
        assert!(q.len() < MAX_QUERY_BYTES);
        assert!(matches!(from_query(&q), Err(Refusal::TooLarge(_))));
    }

    #[test]
    fn a_redirect_message_round_trips_and_its_signed_octets_are_as_sent() {
        let key = super::super::keys::generate("sp.test", 2048).expect("keys");
        let url = signed_redirect(
            "https://idp.test/slo?tenant=a",
            "SAMLRequest",
            "<x/>",
            Some("r s"),
            &key.key,
        )
        .expect("url");
        let parsed = url::Url::parse(&url).expect("url");
        let query = parsed.query().expect("query");
        assert!(query.starts_with("tenant=a&SAMLRequest="), "{query}");
        let inc = from_query(query).expect("reads");
        assert!(inc.is_request);
        assert_eq!(inc.xml, "<x/>");
        assert_eq!(inc.relay_state.as_deref(), Some("r s"));
        let q = inc.redirect.expect("redirect");
        assert!(
            q.signed.starts_with("SAMLRequest=") && q.signed.contains("&RelayState=r+s&SigAlg=")
        );
        let cert = key.cert_base64().expect("cert");
        verify_query_signature(&q, &[cert]).expect("verifies");
    }

    #[test]
    fn ecdsa_query_signatures_verify_as_r_s_and_as_der_and_sha1_is_refused() {
        use openssl::ec::{EcGroup, EcKey};
        let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("curve");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let cert = crate::saml::keys::self_signed(&key, "ec idp", 1).expect("cert");
        let cert = base64::engine::general_purpose::STANDARD.encode(cert.to_der().expect("der"));
        let signed = format!(
            "SAMLRequest=abc&SigAlg={}",
            url_encode("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256")
        );
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key).expect("s");
        signer.update(signed.as_bytes()).expect("update");
        let der = signer.sign_to_vec().expect("sig");
        let parsed = openssl::ecdsa::EcdsaSig::from_der(&der).expect("der sig");
        let mut r_s = parsed.r().to_vec_padded(32).expect("r");
        r_s.extend(parsed.s().to_vec_padded(32).expect("s"));
        for value in [der, r_s] {
            let q = QuerySignature {
                signed: signed.clone(),
                sig_alg: Some("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256".into()),
                signature: Some(value),
            };
            verify_query_signature(&q, std::slice::from_ref(&cert)).expect("verifies");
            let tampered = QuerySignature {
                signed: signed.replace("abc", "abd"),
                ..q.clone()
            };
            assert!(verify_query_signature(&tampered, std::slice::from_ref(&cert)).is_err());
        }
        let sha1 = QuerySignature {
            signed,
            sig_alg: Some("http://www.w3.org/2000/09/xmldsig#rsa-sha1".into()),
            signature: Some(vec![0; 64]),
        };
        let e = verify_query_signature(&sha1, &[cert]).expect_err("refused");
        assert!(e.reason().contains("not accepted"), "{e:?}");
    }

    #[test]
    fn fields_given_twice_or_both_kinds_are_refused() {
        assert!(from_query("SAMLRequest=a&SAMLRequest=b").is_err());
        assert!(from_query("SAMLRequest=a&SAMLResponse=b").is_err());
        assert!(from_query("").is_err());
        assert!(from_form(b"SAMLRequest=a&SAMLRequest=b").is_err());
        assert!(from_form(b"RelayState=x").is_err());
    }
}
