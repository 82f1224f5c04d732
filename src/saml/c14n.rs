//! Canonical XML 1.0 and Exclusive XML Canonicalization 1.0, both without
//! comments, over the one roxmltree tree that every other check reads.
//!
//! The input has been parsed strictly ([`super::xml`]): no DTD, so no
//! entities or default attributes; no comments and no processing
//! instructions. roxmltree has already normalised line ends and attribute
//! values and merged CDATA into text, as an XPath data model does. What it
//! does not keep is the prefix a name was written with (two prefixes may
//! bind one URI), so prefixes are read from the element's and attribute's
//! own bytes in the input: the same bytes the tree was built from.
//!
//! Only what a signed SAML message needs is implemented: a subtree (an
//! element and its descendants), optionally minus one descendant element
//! (the enveloped Signature).

use roxmltree::{Node, NodeId};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Which canonicalization, and for the exclusive one the InclusiveNamespaces
/// `PrefixList` (`#default` names the default namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Inclusive,
    Exclusive { inclusive_prefixes: Vec<String> },
}

impl Method {
    fn includes(&self, prefix: Option<&str>) -> bool {
        match self {
            Method::Inclusive => true,
            Method::Exclusive { inclusive_prefixes } => inclusive_prefixes
                .iter()
                .any(|p| Some(p.as_str()) == prefix || (p == "#default" && prefix.is_none())),
        }
    }
}

/// The canonical form of `apex` and its descendants, leaving out the
/// element `omit` and everything in it.
pub fn canonicalize(apex: Node, omit: Option<NodeId>, method: &Method) -> Vec<u8> {
    let mut out = Vec::with_capacity(apex.range().len() + 256);
    let mut rendered = Vec::new();
    element(&mut out, apex, omit, method, &mut rendered, true);
    out
}

/// The prefix an element's name was written with.
fn element_prefix<'i>(n: Node<'_, 'i>) -> Option<&'i str> {
    let text = n.document().input_text();
    let after = text.get(n.range().start + 1..)?;
    let end = after
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(after.len());
    after[..end].split_once(':').map(|(p, _)| p)
}

/// The prefix an attribute's name was written with.
fn attribute_prefix<'i>(text: &'i str, a: &roxmltree::Attribute<'_, 'i>) -> Option<&'i str> {
    text.get(a.range_qname())?.split_once(':').map(|(p, _)| p)
}

/// The URI a prefix was last rendered with by an output ancestor.
fn rendered_uri<'a>(
    rendered: &[(Option<&'a str>, &'a str)],
    prefix: Option<&str>,
) -> Option<&'a str> {
    rendered
        .iter()
        .rev()
        .find(|(p, _)| *p == prefix)
        .map(|(_, u)| *u)
}

// Long on purpose: one element of Canonical XML as the specification
// writes it (namespaces, attributes in order, children), kept whole to be
// checked against it.
fn element<'a, 'i: 'a>(
    out: &mut Vec<u8>,
    n: Node<'a, 'i>,
    omit: Option<NodeId>,
    method: &Method,
    rendered: &mut Vec<(Option<&'a str>, &'a str)>,
    apex: bool,
) {
    let text = n.document().input_text();
    let prefix = element_prefix(n);
    let attr_prefixes: Vec<Option<&str>> =
        n.attributes().map(|a| attribute_prefix(text, &a)).collect();

    // Namespace declarations this element renders.
    let mut decls: Vec<(Option<&'a str>, &'a str)> = Vec::new();
    for ns in n.namespaces() {
        let (p, uri) = (ns.name(), ns.uri());
        let wanted = match method {
            Method::Inclusive => true,
            Method::Exclusive { .. } => {
                p == prefix || (p.is_some() && attr_prefixes.contains(&p)) || method.includes(p)
            }
        };
        if !wanted {
            continue;
        }
        let before = rendered_uri(rendered, p);
        let render = match p {
            // The default namespace starts out empty: `xmlns=""` is written
            // only to undo a non-empty one rendered above.
            None => before.unwrap_or("") != uri,
            Some(_) => before != Some(uri),
        };
        if render {
            decls.push((p, uri));
        }
    }
    decls.sort_by(|a, b| a.0.cmp(&b.0));

    // Attributes, in (namespace URI, local name) order; on the apex of a
    // Canonical XML 1.0 subset, the xml:* attributes it inherits.
    let mut attrs: Vec<(&str, &str, Option<&str>, &str)> = n
        .attributes()
        .zip(&attr_prefixes)
        .map(|(a, p)| (a.namespace().unwrap_or(""), a.name(), *p, a.value()))
        .collect();
    if apex && *method == Method::Inclusive {
        for anc in n.ancestors().skip(1).filter(|a| a.is_element()) {
            for a in anc.attributes().filter(|a| a.namespace() == Some(XML_NS)) {
                if !attrs.iter().any(|x| x.0 == XML_NS && x.1 == a.name()) {
                    attrs.push((XML_NS, a.name(), Some("xml"), a.value()));
                }
            }
        }
    }
    attrs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    out.push(b'<');
    write_qname(out, prefix, n.tag_name().name());
    for (p, uri) in &decls {
        match p {
            None => out.extend_from_slice(b" xmlns=\""),
            Some(p) => {
                out.extend_from_slice(b" xmlns:");
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(b"=\"");
            }
        }
        escape_attribute(out, uri);
        out.push(b'"');
    }
    for (_, name, p, value) in &attrs {
        out.push(b' ');
        write_qname(out, *p, name);
        out.extend_from_slice(b"=\"");
        escape_attribute(out, value);
        out.push(b'"');
    }
    out.push(b'>');

    let mark = rendered.len();
    rendered.extend(decls);
    for c in n.children() {
        if c.is_element() {
            if Some(c.id()) != omit {
                element(out, c, omit, method, rendered, false);
            }
        } else if let Some(t) = c.text().filter(|_| c.is_text()) {
            escape_text(out, t);
        }
    }
    rendered.truncate(mark);

    out.extend_from_slice(b"</");
    write_qname(out, prefix, n.tag_name().name());
    out.push(b'>');
}

fn write_qname(out: &mut Vec<u8>, prefix: Option<&str>, local: &str) {
    if let Some(p) = prefix {
        out.extend_from_slice(p.as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(local.as_bytes());
}

fn escape_text(out: &mut Vec<u8>, t: &str) {
    for b in t.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

fn escape_attribute(out: &mut Vec<u8>, t: &str) {
    for b in t.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\t' => out.extend_from_slice(b"&#x9;"),
            b'\n' => out.extend_from_slice(b"&#xA;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exc(xml: &str, prefixes: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).expect("xml");
        let m = Method::Exclusive {
            inclusive_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        };
        String::from_utf8(canonicalize(doc.root_element(), None, &m)).expect("utf8")
    }

    fn inc_of(xml: &str, local: &str) -> String {
        let doc = roxmltree::Document::parse(xml).expect("xml");
        let n = doc
            .descendants()
            .find(|n| n.tag_name().name() == local)
            .expect("element");
        String::from_utf8(canonicalize(n, None, &Method::Inclusive)).expect("utf8")
    }

    fn exc_of(xml: &str, local: &str) -> String {
        let doc = roxmltree::Document::parse(xml).expect("xml");
        let n = doc
            .descendants()
            .find(|n| n.tag_name().name() == local)
            .expect("element");
        let m = Method::Exclusive {
            inclusive_prefixes: vec![],
        };
        String::from_utf8(canonicalize(n, None, &m)).expect("utf8")
    }

    // Canonical XML 1.0, section 3.2 (whitespace in document content) and
    // 3.3 (start and end tags), as far as they apply without a DTD.
    #[test]
    fn w3c_c14n_start_and_end_tags() {
        let input = "<doc>\n   <e1   />\n   <e2   ></e2>\n   <e3   name = \"elem3\"   id=\"elem3\"   />\n   <e4   name=\"elem4\"   id=\"elem4\"   ></e4>\n   <e5 a:attr=\"out\" b:attr=\"sorted\" attr2=\"all\" attr=\"I'm\"\n      xmlns:b=\"http://www.ietf.org\"\n      xmlns:a=\"http://www.w3.org\"\n      xmlns=\"http://example.org\"/>\n   <e6 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n            <e9 xmlns=\"\" xmlns:a=\"http://www.ietf.org\"/>\n         </e8>\n      </e7>\n   </e6>\n</doc>";
        let expected = "<doc>\n   <e1></e1>\n   <e2></e2>\n   <e3 id=\"elem3\" name=\"elem3\"></e3>\n   <e4 id=\"elem4\" name=\"elem4\"></e4>\n   <e5 xmlns=\"http://example.org\" xmlns:a=\"http://www.w3.org\" xmlns:b=\"http://www.ietf.org\" attr=\"I'm\" attr2=\"all\" b:attr=\"sorted\" a:attr=\"out\"></e5>\n   <e6 xmlns:a=\"http://www.w3.org\">\n      <e7 xmlns=\"http://www.ietf.org\">\n         <e8 xmlns=\"\">\n            <e9 xmlns:a=\"http://www.ietf.org\"></e9>\n         </e8>\n      </e7>\n   </e6>\n</doc>";
        let doc = roxmltree::Document::parse(input).expect("xml");
        let got = canonicalize(doc.root_element(), None, &Method::Inclusive);
        assert_eq!(String::from_utf8(got).expect("utf8"), expected);
    }

    // Canonical XML 1.0, section 3.4 (character modifications and
    // character references), without the DTD-declared attributes.
    #[test]
    fn w3c_c14n_character_modifications() {
        let input = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n</doc>";
        let expected = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n</doc>";
        let doc = roxmltree::Document::parse(input).expect("xml");
        let got = canonicalize(doc.root_element(), None, &Method::Inclusive);
        assert_eq!(String::from_utf8(got).expect("utf8"), expected);
    }

    // Canonical XML 1.0, section 3.7 (document subsets): the apex of a
    // subset renders every namespace in scope and inherits xml:* attributes.
    #[test]
    fn inclusive_subset_apex_renders_context() {
        let input = "<doc xmlns=\"http://www.ietf.org\" xmlns:w3c=\"http://www.w3.org\" xml:lang=\"fr\"><e1><e2 xmlns=\"\"><e3 id=\"E3\"/></e2></e1></doc>";
        assert_eq!(
            inc_of(input, "e1"),
            "<e1 xmlns=\"http://www.ietf.org\" xmlns:w3c=\"http://www.w3.org\" xml:lang=\"fr\"><e2 xmlns=\"\"><e3 id=\"E3\"></e3></e2></e1>"
        );
    }

    // Exclusive XML Canonicalization 1.0, section 2.2's example: only the
    // namespaces an element visibly uses are rendered.
    #[test]
    fn w3c_exc_c14n_renders_only_utilized_namespaces() {
        let input = "<n0:local xmlns:n0=\"foo:bar\" xmlns:n3=\"ftp://example.org\"><n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\"><n3:stuff xmlns:n3=\"ftp://example.org\"/></n1:elem2></n0:local>";
        assert_eq!(
            exc_of(input, "elem2"),
            "<n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\"><n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff></n1:elem2>"
        );
        let input2 = "<n2:pdu xmlns:n1=\"http://example.com\" xmlns:n2=\"http://foo.example\" xml:lang=\"fr\" xml:space=\"retain\"><n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\"><n3:stuff xmlns:n3=\"ftp://example.org\"/></n1:elem2></n2:pdu>";
        assert_eq!(exc_of(input, "elem2"), exc_of(input2, "elem2"));
        // Canonical XML 1.0 renders the context, so the two differ there.
        assert_ne!(inc_of(input, "elem2"), inc_of(input2, "elem2"));
    }

    #[test]
    fn exclusive_prefix_list_renders_listed_namespaces() {
        let input = "<a:r xmlns:a=\"urn:a\" xmlns:xs=\"urn:xs\" xmlns=\"urn:d\"><a:v>x</a:v></a:r>";
        assert_eq!(exc(input, &[]), "<a:r xmlns:a=\"urn:a\"><a:v>x</a:v></a:r>");
        assert_eq!(
            exc(input, &["xs", "#default"]),
            "<a:r xmlns=\"urn:d\" xmlns:a=\"urn:a\" xmlns:xs=\"urn:xs\"><a:v>x</a:v></a:r>"
        );
    }

    #[test]
    fn prefixes_are_read_as_written_when_two_bind_one_uri() {
        let input =
            "<p:r xmlns:p=\"urn:x\" xmlns:q=\"urn:x\"><q:c q:a=\"1\"/><c xmlns=\"urn:x\"/></p:r>";
        assert_eq!(
            exc(input, &[]),
            "<p:r xmlns:p=\"urn:x\"><q:c xmlns:q=\"urn:x\" q:a=\"1\"></q:c><c xmlns=\"urn:x\"></c></p:r>"
        );
    }

    #[test]
    fn the_omitted_element_is_left_out_with_its_content() {
        let input = "<r xmlns=\"urn:r\" ID=\"x\"><a/><s:Signature xmlns:s=\"urn:s\"><s:v/></s:Signature><b>t</b></r>";
        let doc = roxmltree::Document::parse(input).expect("xml");
        let sig = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Signature")
            .expect("sig");
        let m = Method::Exclusive {
            inclusive_prefixes: vec![],
        };
        let got = canonicalize(doc.root_element(), Some(sig.id()), &m);
        assert_eq!(
            String::from_utf8(got).expect("utf8"),
            "<r xmlns=\"urn:r\" ID=\"x\"><a></a><b>t</b></r>"
        );
    }

    #[test]
    fn unprefixed_element_undoes_a_rendered_default_namespace() {
        let input = "<r xmlns=\"urn:r\"><c xmlns=\"\"><d/></c></r>";
        assert_eq!(
            exc(input, &[]),
            "<r xmlns=\"urn:r\"><c xmlns=\"\"><d></d></c></r>"
        );
        // Nothing rendered above: no `xmlns=""` at the apex.
        assert_eq!(exc_of(input, "c"), "<c><d></d></c>");
    }
}
