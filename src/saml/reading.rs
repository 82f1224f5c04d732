//! The strict reading of a SAML response's tree: the message shape, the
//! structural rules (one Assertion, unique IDs, signatures where they may
//! be), a decrypted assertion's context, and the facts of an Assertion
//! (IDs, times, audiences, confirmations, session).

use super::claims::{claims_of, Claims};
use super::xml::{
    check_message_shape, check_message_text, child, is, parse_strict, refuse_comments_and_pis,
    DS_NS, SAMLP_NS, SAML_NS,
};
use chrono::{DateTime, Utc};
use roxmltree::Node;
use std::collections::HashSet;

/// What the one reading of an Assertion says besides its claims
/// ([`claims_of`]): IDs, times and audiences, parsed; read only once the
/// signature is verified.
pub(super) struct AssertionFacts {
    pub(super) id: String,
    pub(super) issue_instant: DateTime<Utc>,
    pub(super) issuer: Option<String>,
    pub(super) confirmations: Vec<Confirmation>,
    pub(super) not_before: Option<DateTime<Utc>>,
    pub(super) not_on_or_after: Option<DateTime<Utc>>,
    /// Each AudienceRestriction's Audiences; None without Conditions.
    pub(super) audiences: Vec<Vec<String>>,
    pub(super) session: Session,
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

pub(super) struct Confirmation {
    pub(super) method: Option<String>,
    /// None without SubjectConfirmationData.
    pub(super) data: Option<ConfirmationData>,
}

pub(super) struct ConfirmationData {
    pub(super) recipient: Option<String>,
    pub(super) not_before: Option<DateTime<Utc>>,
    pub(super) not_on_or_after: Option<DateTime<Utc>>,
    pub(super) in_response_to: Option<String>,
}

/// The IdP's Status, for the admins' detail.
#[derive(Debug, Clone)]
pub(super) struct Status {
    pub(super) code: String,
    pub(super) sub_code: Option<String>,
    pub(super) message: Option<String>,
}

impl Status {
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Shape {
    pub(super) issuer: Option<String>,
    pub(super) status: Option<Status>,
    pub(super) destination: Option<String>,
    pub(super) in_response_to: Option<String>,
    pub(super) unverified: Option<Box<Claims>>,
}

/// The one child `name` of `n`, if any; two are refused.
pub(super) fn single<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Result<Option<Node<'a, 'i>>, String> {
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

pub(super) fn signature_of<'a, 'i>(n: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    child(n, DS_NS, "Signature")
}

pub(super) fn text_of(n: Option<Node>) -> Option<String> {
    n.and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

pub(super) fn check_version(n: Node) -> Result<(), String> {
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
pub(super) fn read_message(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    check_message_text(xml)?;
    let doc = parse_strict(xml).map_err(|e| format!("not acceptable XML: {e}"))?;
    refuse_comments_and_pis(&doc)?;
    check_message_shape(&doc)?;
    Ok(doc)
}

pub(super) fn read_shape(root: Node) -> Shape {
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
pub(super) fn unique_ids(doc: &roxmltree::Document) -> Result<(), String> {
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
pub(super) fn signatures_only_on(
    doc: &roxmltree::Document,
    allowed: &[Node],
) -> Result<(), String> {
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
pub(super) fn outer_structure<'a, 'i>(
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
pub(super) fn inner_structure<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> Result<Node<'a, 'i>, String> {
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
pub(super) fn wrap_in_context(at: Node, plain: &str) -> Result<String, String> {
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
pub(super) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
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

pub(super) fn instant(n: Node, attr: &str) -> Result<Option<DateTime<Utc>>, String> {
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
pub(super) fn read_assertion(a: Node) -> Result<AssertionFacts, String> {
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
