//! IdP metadata, read strictly, and the SP metadata we publish.
//!
//! Metadata is read here, with a DTD-refusing parser, and an IdP is only
//! accepted with an entity ID, an IDPSSODescriptor and at least one signing
//! certificate that parses as X.509: an IdP without keys must never reach a
//! verifier that would then have nothing to check.

use super::keys::SpKeys;
use super::xml::{parse_strict, DS_NS, MD_NS};
use base64::Engine;
use std::path::Path;

/// What we keep of one IdP's metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Base64 DER of each signing certificate.
    pub signing_certs: Vec<String>,
    /// The HTTP-Redirect SingleSignOnService location, for SP-initiated login.
    pub sso_redirect: Option<String>,
    /// The HTTP-Redirect SingleLogoutService, for single logout.
    pub slo_redirect: Option<SloService>,
    /// A display name (mdui or Organization), when the metadata has one.
    pub display_name: Option<String>,
}

/// An IdP's SingleLogoutService endpoint (one binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SloService {
    /// Where LogoutRequests go.
    pub location: String,
    /// Where LogoutResponses go: `ResponseLocation`, else `Location`.
    pub response_location: String,
}

pub const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// Reads a metadata file: an EntityDescriptor (must be an IdP), or an
/// EntitiesDescriptor (every IdP in it; SP entries are skipped). Any IdP that
/// lacks what we need refuses the whole file, naming the entity.
pub fn load_file(path: &Path) -> Result<Vec<IdpMetadata>, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    parse_metadata(&text).map_err(|e| format!("{name}: {e}"))
}

/// Parses metadata text; see [`load_file`].
pub fn parse_metadata(text: &str) -> Result<Vec<IdpMetadata>, String> {
    let doc = parse_strict(text).map_err(|e| format!("not usable XML metadata: {e}"))?;
    let (idps, _) = read_document(&doc, false)?;
    Ok(idps)
}

/// The IdPs of a parsed metadata document. Entities are read by the
/// document's structure only: the root EntityDescriptor, or the
/// EntityDescriptor children of the root EntitiesDescriptor and of the
/// EntitiesDescriptors nested in it. An EntityDescriptor anywhere else (in
/// a Signature's KeyInfo, in an extension), which a signature may not cover
/// the way it seems to, refuses the document. `lenient` (a federation's
/// aggregate): an IdP that lacks what we need is skipped and named in the
/// second list, instead of refusing the whole document.
pub fn read_document(
    doc: &roxmltree::Document,
    lenient: bool,
) -> Result<(Vec<IdpMetadata>, Vec<String>), String> {
    let root = doc.root_element();
    let mut entities = Vec::new();
    if root.has_tag_name((MD_NS, "EntityDescriptor")) {
        entities.push(root);
    } else if root.has_tag_name((MD_NS, "EntitiesDescriptor")) {
        let mut groups = vec![root];
        while let Some(g) = groups.pop() {
            for c in g.children() {
                if c.has_tag_name((MD_NS, "EntityDescriptor")) {
                    entities.push(c);
                } else if c.has_tag_name((MD_NS, "EntitiesDescriptor")) {
                    groups.push(c);
                }
            }
        }
    } else {
        return Err(format!(
            "root element is <{}>, expected md:EntityDescriptor or md:EntitiesDescriptor",
            root.tag_name().name()
        ));
    }
    let everywhere = doc
        .descendants()
        .filter(|n| n.has_tag_name((MD_NS, "EntityDescriptor")))
        .count();
    if everywhere != entities.len() {
        return Err(format!(
            "{} EntityDescriptor(s) outside the document's structure (inside a signature or an extension)",
            everywhere - entities.len()
        ));
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for entity in entities {
        match read_entity(entity) {
            Ok(Some(idp)) => out.push(idp),
            Ok(None) if root == entity => {
                let id = root.attribute("entityID").unwrap_or("?");
                return Err(format!("entity {id:?} has no IDPSSODescriptor"));
            }
            Ok(None) => {}
            Err(e) if lenient => skipped.push(e),
            Err(e) => return Err(e),
        }
    }
    if out.is_empty() {
        return Err("the EntitiesDescriptor holds no usable IdP (no IDPSSODescriptor)".into());
    }
    let mut seen = std::collections::HashSet::new();
    for idp in &out {
        if !seen.insert(idp.entity_id.as_str()) {
            return Err(format!("entity {:?} appears twice", idp.entity_id));
        }
    }
    Ok((out, skipped))
}

// Long on purpose: every rule an IdP entity must meet, each with the
// message that names it.
fn read_entity(entity: roxmltree::Node) -> Result<Option<IdpMetadata>, String> {
    let Some(idp) = entity
        .children()
        .find(|n| n.has_tag_name((MD_NS, "IDPSSODescriptor")))
    else {
        return Ok(None);
    };
    let entity_id = entity
        .attribute("entityID")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("an EntityDescriptor with an IDPSSODescriptor has no entityID")?
        .to_string();
    // Schools list trusted IdPs separated by spaces.
    if entity_id.chars().any(char::is_whitespace) {
        return Err(format!("the entityID {entity_id:?} contains white space"));
    }
    let mut signing_certs = Vec::new();
    for kd in idp
        .children()
        .filter(|n| n.has_tag_name((MD_NS, "KeyDescriptor")))
    {
        // No `use` means both signing and encryption.
        if !matches!(kd.attribute("use"), None | Some("signing") | Some("")) {
            continue;
        }
        for cert in kd
            .descendants()
            .filter(|n| n.has_tag_name((DS_NS, "X509Certificate")))
        {
            let b64: String = cert
                .text()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .map_err(|_| {
                    format!("entity {entity_id:?}: a signing certificate is not base64")
                })?;
            openssl::x509::X509::from_der(&der)
                .map_err(|_| format!("entity {entity_id:?}: a signing certificate is not X.509"))?;
            signing_certs.push(b64);
        }
    }
    if signing_certs.is_empty() {
        return Err(format!(
            "entity {entity_id:?} has no signing certificate (KeyDescriptor use=\"signing\" with an X509Certificate)"
        ));
    }
    let sso_redirect = idp
        .children()
        .filter(|n| n.has_tag_name((MD_NS, "SingleSignOnService")))
        .find(|n| n.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|n| n.attribute("Location"))
        .map(str::to_string);
    // Only an absolute http(s) URL is taken: a browser is sent there.
    let web_url = |u: &str| {
        url::Url::parse(u.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .map(|_| u.trim().to_string())
    };
    // A SingleLogoutService we cannot use (no http(s) Location) is left
    // out with a warning rather than refusing the IdP: logout then ends
    // the local session only, and logins keep working.
    let slo_redirect = idp
        .children()
        .filter(|n| n.has_tag_name((MD_NS, "SingleLogoutService")))
        .find(|n| n.attribute("Binding") == Some(REDIRECT_BINDING))
        .and_then(|n| {
            let location = n.attribute("Location").and_then(web_url);
            let response_location = match n.attribute("ResponseLocation") {
                None => location.clone(),
                Some(r) => web_url(r),
            };
            match (location, response_location) {
                (Some(location), Some(response_location)) => Some(SloService {
                    location,
                    response_location,
                }),
                _ => {
                    tracing::warn!(entity = %entity_id, "a SingleLogoutService without an http(s) Location or ResponseLocation is ignored");
                    None
                }
            }
        });
    let display_name = entity
        .descendants()
        .find(|n| {
            n.tag_name().name() == "DisplayName" || n.tag_name().name() == "OrganizationDisplayName"
        })
        .and_then(|n| n.text())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(Some(IdpMetadata {
        entity_id,
        signing_certs,
        sso_redirect,
        slo_redirect,
        display_name,
    }))
}

/// Escapes text for an XML attribute or element.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Our SingleLogoutService, next to the ACS: `{public_url}/saml/slo` for
/// the ACS `{public_url}/saml/acs`.
pub fn slo_url_beside(acs_url: &str) -> String {
    match acs_url.strip_suffix("/acs") {
        Some(base) => format!("{base}/slo"),
        None => format!("{}/slo", acs_url.trim_end_matches('/')),
    }
}

/// The SP metadata we publish. Built here rather than by samael, whose
/// metadata marks both key descriptors `use="signing"` and expires in 48 h.
/// The SingleLogoutService (both bindings) sits beside the ACS
/// ([`slo_url_beside`]); the schema wants it before the NameIDFormats.
/// `previous`: during an encryption key rollover, the old pair, published
/// for encryption after the current one (IdPs that cached it go on working).
pub fn sp_metadata_xml(
    entity_id: &str,
    acs_url: &str,
    keys: &SpKeys,
    previous: Option<&SpKeys>,
) -> Result<String, String> {
    let slo = escape(&slo_url_beside(acs_url));
    let info = |k: &SpKeys| -> Result<String, String> {
        let cert = k.cert_base64().map_err(|e| e.to_string())?;
        Ok(format!(
            "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        ))
    };
    let key_info = info(keys)?;
    let previous_key = match previous {
        None => String::new(),
        Some(p) => format!(
            "\n    <md:KeyDescriptor use=\"encryption\">{}</md:KeyDescriptor>",
            info(p)?
        ),
    };
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="{MD_NS}" xmlns:ds="{DS_NS}" entityID="{eid}">
  <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">{key_info}</md:KeyDescriptor>
    <md:KeyDescriptor use="encryption">{key_info}
      <md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>
      <md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
      <md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>
    </md:KeyDescriptor>{previous_key}
    <md:SingleLogoutService Binding="{REDIRECT_BINDING}" Location="{slo}"/>
    <md:SingleLogoutService Binding="{POST_BINDING}" Location="{slo}"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        eid = escape(entity_id),
        acs = escape(acs_url),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_b64() -> String {
        super::super::keys::generate("idp.test", 2048)
            .expect("keys")
            .cert_base64()
            .expect("b64")
    }

    fn entity(id: &str, body: &str) -> String {
        format!("<md:EntityDescriptor xmlns:md=\"{MD_NS}\" xmlns:ds=\"{DS_NS}\" entityID=\"{id}\">{body}</md:EntityDescriptor>")
    }

    fn idp_body(cert: &str) -> String {
        format!("<md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"><md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding=\"{REDIRECT_BINDING}\" Location=\"https://idp.test/sso\"/></md:IDPSSODescriptor>")
    }

    #[test]
    fn a_complete_idp_entity_is_read() {
        let idps = parse_metadata(&entity("https://idp.test", &idp_body(&cert_b64()))).expect("ok");
        assert_eq!(idps.len(), 1);
        assert_eq!(idps[0].entity_id, "https://idp.test");
        assert_eq!(
            idps[0].sso_redirect.as_deref(),
            Some("https://idp.test/sso")
        );
    }

    #[test]
    fn a_single_logout_service_is_read_with_its_response_location() {
        let cert = cert_b64();
        let slo = format!("<md:SingleLogoutService Binding=\"{POST_BINDING}\" Location=\"https://idp.test/post\"/><md:SingleLogoutService Binding=\"{REDIRECT_BINDING}\" Location=\"https://idp.test/slo\" ResponseLocation=\"https://idp.test/slo/answer\"/>");
        let body = idp_body(&cert).replace(
            "<md:SingleSignOnService",
            &format!("{slo}<md:SingleSignOnService"),
        );
        let idps = parse_metadata(&entity("https://idp.test", &body)).expect("ok");
        assert_eq!(
            idps[0].slo_redirect,
            Some(SloService {
                location: "https://idp.test/slo".into(),
                response_location: "https://idp.test/slo/answer".into(),
            })
        );
        let none = parse_metadata(&entity("https://idp.test", &idp_body(&cert))).expect("ok");
        assert_eq!(none[0].slo_redirect, None);
        // One we could not send a browser to is left out, the IdP kept.
        let bad = body.replace("https://idp.test/slo\"", "javascript:alert(1)\"");
        let idps = parse_metadata(&entity("https://idp.test", &bad)).expect("kept");
        assert_eq!(idps[0].slo_redirect, None);
    }

    #[test]
    fn our_metadata_lists_the_slo_endpoint_before_the_name_id_formats() {
        let keys = super::super::keys::generate("sp.test", 2048).expect("keys");
        let xml = sp_metadata_xml(
            "https://sp.test/saml/metadata",
            "https://sp.test/saml/acs",
            &keys,
            None,
        )
        .expect("xml");
        let doc = roxmltree::Document::parse(&xml).expect("parses");
        let names: Vec<&str> = doc
            .descendants()
            .find(|n| n.has_tag_name((MD_NS, "SPSSODescriptor")))
            .expect("sp")
            .children()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name())
            .collect();
        assert_eq!(
            names,
            [
                "KeyDescriptor",
                "KeyDescriptor",
                "SingleLogoutService",
                "SingleLogoutService",
                "NameIDFormat",
                "NameIDFormat",
                "AssertionConsumerService"
            ]
        );
        assert!(xml.contains("Location=\"https://sp.test/saml/slo\""));
    }

    #[test]
    fn metadata_without_signing_certificate_is_refused() {
        let body = "<md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>";
        let e = parse_metadata(&entity("https://idp.test", body)).expect_err("refused");
        assert!(e.contains("no signing certificate"), "{e}");
    }

    #[test]
    fn metadata_without_entity_id_or_idp_descriptor_is_refused() {
        let no_id = format!("<md:EntityDescriptor xmlns:md=\"{MD_NS}\" xmlns:ds=\"{DS_NS}\">{}</md:EntityDescriptor>", idp_body(&cert_b64()));
        assert!(parse_metadata(&no_id)
            .expect_err("refused")
            .contains("no entityID"));
        let sp_only = entity("https://sp.test", "<md:SPSSODescriptor/>");
        assert!(parse_metadata(&sp_only)
            .expect_err("refused")
            .contains("no IDPSSODescriptor"));
        let wrong_root = "<html/>";
        assert!(parse_metadata(wrong_root)
            .expect_err("refused")
            .contains("root element"));
    }

    #[test]
    fn an_aggregate_yields_every_idp_in_it() {
        let cert = cert_b64();
        let agg = format!(
            "<md:EntitiesDescriptor xmlns:md=\"{MD_NS}\" xmlns:ds=\"{DS_NS}\">{}{}{}</md:EntitiesDescriptor>",
            entity("https://a.test", &idp_body(&cert)),
            entity("https://sp.test", "<md:SPSSODescriptor/>"),
            entity("https://b.test", &idp_body(&cert)),
        );
        let ids: Vec<_> = parse_metadata(&agg)
            .expect("ok")
            .into_iter()
            .map(|i| i.entity_id)
            .collect();
        assert_eq!(ids, ["https://a.test", "https://b.test"]);
    }

    #[test]
    fn metadata_with_a_doctype_is_refused() {
        let e = parse_metadata("<!DOCTYPE x [<!ENTITY a \"b\">]><x/>").expect_err("refused");
        assert!(e.contains("not usable XML"), "{e}");
    }
}
