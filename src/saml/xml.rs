//! Strict XML reading: no DTD (so no entities, no XXE), no comments, no
//! processing instructions, bounded node count.

pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// Parses with DTDs refused. Comments are allowed here (metadata files carry
/// them); SAML messages go through [`refuse_comments_and_pis`] as well.
pub fn parse_strict(text: &str) -> Result<roxmltree::Document<'_>, String> {
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err("a DOCTYPE or entity declaration is present".into());
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 200_000,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| e.to_string())
}

/// Comments and processing instructions carry no meaning in a SAML message;
/// comments inside signed text are the vehicle of the CVE-2017-11427 family
/// (`jdoe@school.test<!-- -->.evil.test`), where the signature covers the
/// text without the comment but a reader stops at it. They are refused.
pub fn refuse_comments_and_pis(doc: &roxmltree::Document) -> Result<(), String> {
    for n in doc.descendants() {
        if n.is_comment() {
            return Err("an XML comment is present".into());
        }
        if n.is_pi() {
            return Err("an XML processing instruction is present".into());
        }
    }
    Ok(())
}
