//! The service provider: strict IdP metadata, our SP metadata and keys,
//! SP-initiated login, and the verification of responses.

pub mod c14n;
pub mod claims;
pub mod dsig;
pub mod federation;
pub mod keys;
pub mod logout;
pub mod metadata;
pub mod mint;
mod reading;
pub mod verify;
pub mod xml;
pub mod xmlenc;

pub use claims::{Attr, Claims};
pub use reading::Session;
pub use verify::{Idp, Rejection, Verified, Verifier};

use base64::Engine;

/// Decodes a `SAMLResponse` form value: base64 with any white space removed
/// (IdPs line-wrap it), then UTF-8.
pub fn decode_saml_response(value: &str) -> Result<String, String> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err("the SAMLResponse is empty".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| "the SAMLResponse is not valid base64".to_string())?;
    String::from_utf8(bytes).map_err(|_| "the SAMLResponse is not UTF-8 text".to_string())
}

/// A strong request ID (128 random bits) for an AuthnRequest: samael's own
/// has 32 bits only (docs/field-notes.md, item 9).
pub fn new_request_id() -> String {
    mint::random_id()
}

/// Builds the signed HTTP-Redirect URL of an AuthnRequest to `idp`.
pub fn authn_redirect(
    sp: &Verifier,
    idp: &Idp,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    request_id: &str,
    relay_state: &str,
) -> Result<url::Url, String> {
    let sso = idp
        .meta
        .sso_redirect
        .as_deref()
        .ok_or("this IdP's metadata has no HTTP-Redirect SingleSignOnService")?;
    let req = samael::schema::AuthnRequest {
        id: request_id.to_string(),
        version: "2.0".into(),
        issue_instant: chrono::Utc::now(),
        destination: Some(sso.to_string()),
        issuer: Some(samael::schema::Issuer {
            format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:entity".into()),
            value: Some(sp.sp_entity_id.clone()),
            ..Default::default()
        }),
        assertion_consumer_service_url: Some(sp.acs_url.clone()),
        protocol_binding: Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST".into()),
        ..Default::default()
    };
    req.signed_redirect(relay_state, key)
        .map_err(|e| format!("signing the AuthnRequest: {e}"))?
        .ok_or_else(|| "no destination".to_string())
}
