//! Strict XML reading: no DTD (so no entities, no XXE), no comments, no
//! processing instructions, bounded node count.

pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// Whether `n` is the element `{ns}local`.
pub fn is(n: &roxmltree::Node, ns: &str, local: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == local
}

/// The first child element `{ns}local` of `n`.
pub fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| is(c, ns, local))
}

/// Parses with DTDs refused. Comments are allowed here (metadata files carry
/// them); SAML messages go through [`refuse_comments_and_pis`] as well.
pub fn parse_strict(text: &str) -> Result<roxmltree::Document<'_>, String> {
    parse_strict_within(text, 200_000)
}

/// [`parse_strict`] with another bound on the number of nodes (a
/// federation's metadata holds thousands of entities).
pub fn parse_strict_within(text: &str, nodes: u32) -> Result<roxmltree::Document<'_>, String> {
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err("a DOCTYPE or entity declaration is present".into());
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: nodes,
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

/// The deepest element nesting a SAML message may have. Real responses nest
/// about 8 deep (an encrypted one about 12); libxml2 stops reading at 256
/// and keeps what it read, which a deeper document exploits.
pub const MAX_DEPTH: usize = 64;
/// The most attributes one element may carry, and the longest value.
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_ATTRIBUTE_BYTES: usize = 8 * 1024;
/// The longest element, attribute or prefix name, and namespace URI.
pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_NAMESPACE_BYTES: usize = 1024;
/// The most namespace declarations a message may carry, and the most in
/// scope on one element. Real responses declare a few dozen at most;
/// roxmltree's cost, and canonicalization's, grow with the square of what
/// is inherited, so a stranger's thousands are refused unread. (Shibboleth
/// and Keycloak declare two per attribute value: 500 leaves room for about
/// 240 values; the worst parse under the cap takes about 25 ms.)
pub const MAX_NAMESPACE_DECLARATIONS: usize = 500;
pub const MAX_NAMESPACES_IN_SCOPE: usize = 64;
/// The most `=` signs between two `<` (see [`check_message_text`]).
const MAX_EQUALS_PER_TAG: usize = 256;
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// An element's name as an error message shows it.
fn cut_name(name: &str) -> &str {
    crate::resolve::prefix_within(name, 40)
}

/// What a SAML message must be before any parser reads it: UTF-8 with no
/// byte order mark and no other declared encoding. libxml2 honours a
/// declared encoding (e.g. `UTF-7`) where roxmltree reads UTF-8, so two
/// readers would see two documents; only one reading is accepted.
pub fn check_message_text(text: &str) -> Result<(), String> {
    if text.starts_with('\u{feff}') {
        return Err("a byte order mark is present; send UTF-8 without it".into());
    }
    let trimmed = text.trim_start_matches([' ', '\t', '\r', '\n']);
    if trimmed.len() != text.len() && trimmed.starts_with("<?xml") {
        return Err("white space before the XML declaration".into());
    }
    // roxmltree compares each attribute of an element with every earlier
    // one: quadratic before the attribute cap below could apply. Every
    // attribute needs a literal `=` and no value holds a literal `<`, so
    // an element's attributes all lie in one `<`-delimited run.
    if text
        .split('<')
        .any(|run| run.bytes().filter(|&b| b == b'=').count() > MAX_EQUALS_PER_TAG)
    {
        return Err(format!(
            "an element with more than {MAX_EQUALS_PER_TAG} attributes or `=` signs"
        ));
    }
    // Counted in the raw text (an over-count at worst), before parsing.
    if text.matches("xmlns").count() > MAX_NAMESPACE_DECLARATIONS {
        return Err(format!(
            "more than {MAX_NAMESPACE_DECLARATIONS} namespace declarations"
        ));
    }
    if let Some(rest) = text.strip_prefix("<?xml") {
        let decl = &rest[..rest.find("?>").ok_or("an unterminated XML declaration")?];
        if let Some(at) = decl.find("encoding") {
            let after = decl[at + "encoding".len()..].trim_start();
            let value = after
                .strip_prefix('=')
                .map(|v| v.trim_start())
                .and_then(|v| {
                    let q = v.chars().next()?;
                    if q != '"' && q != '\'' {
                        return None;
                    }
                    let v = &v[1..];
                    Some(&v[..v.find(q)?])
                })
                .ok_or("an unreadable encoding in the XML declaration")?;
            if !value.eq_ignore_ascii_case("UTF-8") {
                return Err(format!(
                    "the declared encoding {value:?} is refused; only UTF-8 is read"
                ));
            }
        }
    }
    Ok(())
}

/// The size rules of a parsed SAML message: nesting, attributes per
/// element, attribute length.
pub fn check_message_shape(doc: &roxmltree::Document) -> Result<(), String> {
    // Node IDs follow document order, so a parent's depth is known first.
    let mut depth = vec![0usize; doc.descendants().count() + 1];
    for n in doc.descendants() {
        let d = n
            .parent()
            .map(|p| depth[p.id().get() as usize] + 1)
            .unwrap_or(0);
        depth[n.id().get() as usize] = d;
        if n.is_element() {
            if d > MAX_DEPTH {
                return Err(format!("elements nest deeper than {MAX_DEPTH} levels"));
            }
            if n.attributes().len() > MAX_ATTRIBUTES {
                return Err(format!(
                    "an element <{}> carries more than {MAX_ATTRIBUTES} attributes",
                    cut_name(n.tag_name().name())
                ));
            }
            // libxml2 refuses names over 50,000 characters and, recovering,
            // stops reading there; roxmltree reads on. Names stay short.
            let long = |t: &str| t.len() > MAX_NAME_BYTES;
            let long_ns = |u: &str| u.len() > MAX_NAMESPACE_BYTES;
            if long(n.tag_name().name())
                || n.tag_name().namespace().is_some_and(long_ns)
                || n.namespaces()
                    .any(|ns| ns.name().is_some_and(long) || long_ns(ns.uri()))
                || n.attributes()
                    .any(|a| long(a.name()) || a.namespace().is_some_and(long_ns))
            {
                return Err(format!(
                    "a name or namespace in <{}> is longer than XML messages use",
                    cut_name(n.tag_name().name())
                ));
            }
            // One binding per prefix: roxmltree takes `xmlns="A" xmlns="B"`
            // (libxml2 refuses it) and resolves names with the first, which
            // canonicalization would not render. Ambiguous: refused.
            // A duplicate always makes the list longer than the parent's,
            // so only elements that declare something are sorted.
            let in_scope = n.namespaces().len();
            if in_scope > MAX_NAMESPACES_IN_SCOPE {
                return Err(format!(
                    "more than {MAX_NAMESPACES_IN_SCOPE} namespaces in scope on <{}>",
                    cut_name(n.tag_name().name())
                ));
            }
            if in_scope
                > n.parent_element()
                    .map(|p| p.namespaces().len())
                    .unwrap_or(0)
            {
                let mut prefixes: Vec<Option<&str>> = n.namespaces().map(|ns| ns.name()).collect();
                prefixes.sort_unstable();
                if prefixes.windows(2).any(|w| w[0] == w[1]) || prefixes.contains(&Some("xmlns")) {
                    return Err(format!(
                        "a namespace prefix is declared twice (or is `xmlns`) on <{}>",
                        cut_name(n.tag_name().name())
                    ));
                }
            }
            // libxml2 takes `xml:id` as an ID of its own; one ID attribute only.
            if n.attributes()
                .any(|a| a.namespace() == Some(XML_NS) && a.name() == "id")
            {
                return Err("an xml:id attribute is present".into());
            }
            if n.attributes()
                .any(|a| a.value().len() > MAX_ATTRIBUTE_BYTES)
            {
                return Err(format!(
                    "an attribute of <{}> is longer than {MAX_ATTRIBUTE_BYTES} bytes",
                    cut_name(n.tag_name().name())
                ));
            }
        }
    }
    Ok(())
}
