//! Subjects that identify a person: transient NameIDs are never subjects,
//! the subject setting finds an attribute by name, FriendlyName or alias,
//! and attribute values that are XML are read, never fatal.

use crate::common::*;

const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
const OID_FREDUCTID: &str = "urn:oid:1.3.6.1.4.1.20326.10.999.1.57";

/// A response for Élodie Dupont-Martin (account A-1), who matches by name.
fn elodie(app: &TestApp, name_id: &str) -> jointure::saml::mint::ResponseSpec {
    app.ent(name_id, "Dupont-Martin", "Élodie", "12/04/2011", UAI)
}

#[tokio::test]
async fn a_transient_name_id_is_never_a_subject_nor_mapped() {
    let app = TestApp::spawn().await;
    for one_time in ["_tr-1a7c", "_tr-99b2"] {
        let mut spec = elodie(&app, one_time);
        spec.name_id_format = TRANSIENT.into();
        let f = app
            .expect_failure(&app.mint(&spec), "missing_subject", 422)
            .await;
        // The admin is told why and what to ask for.
        assert!(f.detail.contains("transient"), "{}", f.detail);
        assert!(f.detail.contains("persistent"), "{}", f.detail);
        assert_eq!(f.subject, None, "a one-time value is no identity");
        assert!(f.asserted_verified);
        // The format is recorded with the claims.
        assert!(f.asserted_json.contains(TRANSIENT), "{}", f.asserted_json);
        assert_eq!(app.mapping(one_time).await, None, "never auto-mapped");
    }
    // With a persistent NameID the same person logs in and is mapped.
    app.expect_login(&app.mint(&elodie(&app, "persistent-elodie")), "A-1")
        .await;
    assert_eq!(
        app.mapping("persistent-elodie").await,
        Some(("A-1".into(), "auto".into()))
    );
}

#[tokio::test]
async fn with_an_attribute_subject_a_transient_name_id_does_not_matter() {
    let app = TestApp::spawn_with(|c| c.idps[0].subject = "FrEduCtId".into()).await;
    let mut spec = elodie(&app, "_tr-5f").attr(OID_FREDUCTID, "educonnect-4411");
    spec.name_id_format = TRANSIENT.into();
    // The attribute comes by its urn:oid name only, without FriendlyName.
    app.expect_login(&app.mint(&spec), "A-1").await;
    assert_eq!(
        app.mapping("educonnect-4411").await,
        Some(("A-1".into(), "auto".into()))
    );
    assert_eq!(app.mapping("_tr-5f").await, None);
}

#[tokio::test]
async fn standard_subject_attributes_are_found_by_any_of_their_names() {
    for (setting, sent) in [
        ("subject-id", "urn:oasis:names:tc:SAML:attribute:subject-id"),
        (
            "urn:oasis:names:tc:SAML:attribute:pairwise-id",
            "pairwise-id",
        ),
        ("uid", "urn:oid:0.9.2342.19200300.100.1.1"),
    ] {
        let app = TestApp::spawn_with(|c| c.idps[0].subject = setting.into()).await;
        let value = format!("{setting}-value@school.example");
        let spec = elodie(&app, "ignored").attr(sent, &value);
        app.expect_login(&app.mint(&spec), "A-1").await;
        assert_eq!(
            app.mapping(&value).await.map(|m| m.0),
            Some("A-1".into()),
            "subject {setting} sent as {sent}"
        );
    }
}

#[tokio::test]
async fn an_edu_person_targeted_id_sent_as_a_name_id_is_its_value_with_qualifiers() {
    let app = TestApp::spawn_with(|c| c.idps[0].subject = "eduPersonTargetedID".into()).await;
    let mut spec = elodie(&app, "_tr-0");
    spec.name_id_format = TRANSIENT.into();
    spec.xml_attributes.push(format!(
        "<saml:Attribute Name=\"urn:oid:1.3.6.1.4.1.5923.1.1.1.10\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\"><saml:AttributeValue><saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\" NameQualifier=\"{}\" SPNameQualifier=\"{}\">a8f3c2e1</saml:NameID></saml:AttributeValue></saml:Attribute>",
        app.idp.entity_id,
        sp_entity_id()
    ));
    app.expect_login(&app.mint(&spec), "A-1").await;
    let subject = format!("{}!{}!a8f3c2e1", app.idp.entity_id, sp_entity_id());
    assert_eq!(app.mapping(&subject).await.map(|m| m.0), Some("A-1".into()));
}

#[tokio::test]
async fn an_attribute_value_that_is_other_xml_is_kept_as_text_and_never_fails_the_login() {
    let app = TestApp::spawn().await;
    let mut spec = elodie(&app, "xml-values");
    spec.xml_attributes.push(
        "<saml:Attribute Name=\"urn:example:address\"><saml:AttributeValue><x:Address xmlns:x=\"urn:example\"><x:Street>1 rue des Écoles</x:Street><x:City>Paris</x:City></x:Address></saml:AttributeValue></saml:Attribute>".into(),
    );
    app.expect_login(&app.mint(&spec), "A-1").await;
    // And on a failure, the admin sees the text.
    let mut spec = app.nobody("xml-values-2");
    spec.xml_attributes.push(
        "<saml:Attribute Name=\"urn:example:address\"><saml:AttributeValue><x:Address xmlns:x=\"urn:example\"><x:City>Lyon</x:City></x:Address></saml:AttributeValue></saml:Attribute>".into(),
    );
    let f = app
        .expect_failure(&app.mint(&spec), "identity_mismatch", 403)
        .await;
    assert!(f.asserted_json.contains("Lyon"), "{}", f.asserted_json);
}
