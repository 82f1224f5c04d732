//! Attribute names that mean the same thing: an IdP may send an attribute by
//! its friendly name, its `urn:oid` name or its old `urn:mace` name, with or
//! without a `FriendlyName`. A setting that names one of them finds any.

/// Groups of names for one attribute (field facts: docs/field-notes.md).
const GROUPS: &[&[&str]] = &[
    // Standard subject identifiers (SAML V2.0 Subject Identifier Attributes).
    &["subject-id", "urn:oasis:names:tc:SAML:attribute:subject-id"],
    &[
        "pairwise-id",
        "urn:oasis:names:tc:SAML:attribute:pairwise-id",
    ],
    // eduPerson.
    &[
        "eduPersonTargetedID",
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.10",
        "urn:mace:dir:attribute-def:eduPersonTargetedID",
    ],
    &[
        "eduPersonPrincipalName",
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
        "urn:mace:dir:attribute-def:eduPersonPrincipalName",
    ],
    &[
        "eduPersonAffiliation",
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
        "urn:mace:dir:attribute-def:eduPersonAffiliation",
    ],
    // X.500 / inetOrgPerson.
    &[
        "uid",
        "urn:oid:0.9.2342.19200300.100.1.1",
        "urn:mace:dir:attribute-def:uid",
    ],
    &[
        "mail",
        "urn:oid:0.9.2342.19200300.100.1.3",
        "urn:mace:dir:attribute-def:mail",
    ],
    &["sn", "urn:oid:2.5.4.4", "urn:mace:dir:attribute-def:sn"],
    &[
        "givenName",
        "urn:oid:2.5.4.42",
        "urn:mace:dir:attribute-def:givenName",
    ],
    // SCHAC.
    &[
        "schacDateOfBirth",
        "urn:oid:1.3.6.1.4.1.25178.1.2.3",
        "urn:schac:attribute-def:schacDateOfBirth",
    ],
    // Entree Federatie.
    &[
        "nlEduPersonHomeOrganizationId",
        "urn:oid:1.3.6.1.4.1.1076.20.100.10.10.2",
        "urn:mace:dir:attribute-def:nlEduPersonHomeOrganizationId",
    ],
    // EduConnect.
    &["FrEduCtId", "urn:oid:1.3.6.1.4.1.20326.10.999.1.57"],
    &[
        "FrEduCtPersonAffiliation",
        "urn:oid:1.3.6.1.4.1.20326.10.999.1.7",
    ],
    &["FrEduCtEleveUAI", "urn:oid:1.3.6.1.4.1.20326.10.999.1.72"],
    &[
        "FrEduCtDateNaissance",
        "urn:oid:1.3.6.1.4.1.20326.10.999.1.67",
    ],
];

/// Whether `sent` (an attribute's Name or FriendlyName) is `wanted` or one
/// of its aliases. Names are compared exactly: `urn:oid` names are
/// case-sensitive, and so are LDAP-style friendly names in SAML.
pub fn same_attribute(sent: &str, wanted: &str) -> bool {
    sent == wanted
        || GROUPS
            .iter()
            .any(|g| g.contains(&wanted) && g.contains(&sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_friendly_name_finds_the_oid_and_back() {
        assert!(same_attribute(
            "urn:oid:1.3.6.1.4.1.20326.10.999.1.57",
            "FrEduCtId"
        ));
        assert!(same_attribute(
            "FrEduCtId",
            "urn:oid:1.3.6.1.4.1.20326.10.999.1.57"
        ));
        assert!(same_attribute(
            "urn:mace:dir:attribute-def:eduPersonTargetedID",
            "urn:oid:1.3.6.1.4.1.5923.1.1.1.10"
        ));
        assert!(same_attribute("uid", "uid"));
        assert!(same_attribute("ENTPersonJointure", "ENTPersonJointure"));
    }

    #[test]
    fn different_attributes_stay_apart() {
        assert!(!same_attribute("sn", "givenName"));
        assert!(!same_attribute("urn:oid:2.5.4.4", "FrEduCtId"));
        assert!(!same_attribute("frEduCtId", "FrEduCtId"));
        assert!(!same_attribute("subject-id", "pairwise-id"));
    }
}
