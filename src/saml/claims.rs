//! What an assertion claims: its NameID and attributes, read from the tree
//! its signature is verified on, and the rule that an identity attribute
//! says one thing.

use super::xml::{child, is, SAML_NS};
use crate::config::IdpConfig;
use roxmltree::Node;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

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

/// An identity attribute (subject, names, birth date) sent by two
/// `Attribute` elements with different values: which one is meant is not
/// ours to guess. Several values of the school code stay allowed.
pub(super) fn conflicting_identity_attribute(claims: &Claims, cfg: &IdpConfig) -> Option<String> {
    let a = &cfg.attributes;
    let subject: Vec<String> = if cfg.subject.eq_ignore_ascii_case("nameid") {
        Vec::new()
    } else {
        vec![cfg.subject.clone()]
    };
    let account: Vec<String> = cfg.account_id_attribute.iter().cloned().collect();
    // (what, names, whether two values of one attribute are refused too:
    // an identifier names one person; a person may have two last names)
    let lists: [(&str, &[String], bool); 5] = [
        ("subject", &subject, true),
        ("account ID", &account, true),
        ("last name", &a.last_name, false),
        ("first name", &a.first_name, false),
        ("birth date", &a.birth_date, false),
    ];
    for (what, names, identifier) in lists {
        let sent: Vec<&Attr> = claims.named(names).collect();
        if sent.len() < 2 && !identifier {
            continue;
        }
        let values: BTreeSet<&str> = claims.all_values(names).into_iter().collect();
        if values.len() > 1 {
            let names: Vec<&str> = sent.iter().map(|at| at.name.as_str()).collect();
            return Some(format!(
                "the {what} is sent with {} different values (in {})",
                values.len(),
                names.join(", ")
            ));
        }
    }
    None
}

/// The text of an AttributeValue: its text; for a NameID inside it (as
/// eduPersonTargetedID is sent) its value with its qualifiers, written
/// `NameQualifier!SPNameQualifier!value` as Shibboleth does, since the value
/// alone is unique only for that pair; for any other XML, the text inside.
pub(super) fn value_text(v: Node) -> String {
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
pub(super) fn name_id_of(n: Node) -> (Option<String>, Option<String>) {
    let value = Some(n.text().unwrap_or("").trim().to_string()).filter(|t| !t.is_empty());
    (value, n.attribute("Format").map(str::to_string))
}

/// An Attribute element: its Name (or FriendlyName), FriendlyName and values.
pub(super) fn attr_of(a: Node) -> Option<Attr> {
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
pub(super) fn claims_of(assertion: Node) -> Claims {
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
