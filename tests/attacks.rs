//! The attacks an SP must survive (NOTES.md): signature wrapping XSW1–8,
//! stripping, tampering, a foreign key riding in KeyInfo, comment
//! injection, SHA-1. None logs anyone in; each is recorded with its kind.
//! And the two legitimate shapes: a signed Response around an unsigned
//! Assertion, an unsigned Response around a signed Assertion.

mod common;

use common::*;
use jointure::saml::mint::{random_id, MintingIdp, ResponseSpec};

/// The attacker holds a genuinely signed assertion for their own identity
/// and wants to be the victim, whose identity is mapped to A-1.
struct Attack {
    app: TestApp,
    /// The attacker's own signed assertion.
    signed: String,
    /// An unsigned assertion claiming the victim.
    evil: String,
    spec: ResponseSpec,
}

async fn setup() -> Attack {
    let app = TestApp::spawn().await;
    app.map("victim", "A-1").await;
    let spec = app.ent("attacker", "Nobody", "Eve", "01/01/2000", UAI);
    let signed = app.idp.assertion_xml(&spec).expect("signed assertion");
    let mut evil_spec = app.ent("victim", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    evil_spec.signing.assertion = false;
    evil_spec.assertion_id = random_id();
    let evil = app.idp.assertion_xml(&evil_spec).expect("evil assertion");
    Attack {
        app,
        signed,
        evil,
        spec,
    }
}

impl Attack {
    /// An unsigned Response around `inner`.
    fn response(&self, inner: &str) -> String {
        let mut s = self.spec.clone();
        s.signing.response = false;
        self.app.idp.response_around(&s, inner).expect("response")
    }

    async fn refused(
        &self,
        xml: &str,
        kind: &str,
        status: u16,
    ) -> jointure::store::failures::Failure {
        let f = self.app.expect_failure(xml, kind, status).await;
        let me = self.app.get("/me").await;
        assert_eq!(
            me.status().as_u16(),
            401,
            "nobody may be logged in after a refused {kind}"
        );
        assert_eq!(self.app.mapping("attacker").await, None);
        f
    }
}

#[tokio::test]
async fn xsw_evil_assertion_before_the_signed_one_is_refused() {
    let a = setup().await;
    let xml = a.response(&format!("{}{}", a.evil, a.signed));
    let f = a.refused(&xml, "invalid_signature", 403).await;
    assert!(f.detail.contains("2 assertions"), "{}", f.detail);
}

#[tokio::test]
async fn xsw_evil_assertion_after_the_signed_one_is_refused() {
    let a = setup().await;
    a.refused(
        &a.response(&format!("{}{}", a.signed, a.evil)),
        "invalid_signature",
        403,
    )
    .await;
}

#[tokio::test]
async fn xsw_evil_assertion_inside_the_signature_object_is_refused() {
    let a = setup().await;
    let inner = a.signed.replacen(
        "</ds:Signature>",
        &format!("<ds:Object>{}</ds:Object></ds:Signature>", a.evil),
        1,
    );
    assert_ne!(inner, a.signed);
    a.refused(&a.response(&inner), "invalid_signature", 403)
        .await;
}

#[tokio::test]
async fn xsw_evil_assertion_around_the_signed_one_is_refused() {
    let a = setup().await;
    let around = a.evil.replacen(
        "<saml:AuthnStatement",
        &format!(
            "<saml:Advice>{}</saml:Advice><saml:AuthnStatement",
            a.signed
        ),
        1,
    );
    assert_ne!(around, a.evil);
    a.refused(&a.response(&around), "invalid_signature", 403)
        .await;
}

#[tokio::test]
async fn xsw_signed_assertion_hidden_in_extensions_is_refused() {
    let a = setup().await;
    // The only Assertion sits under Extensions, not directly in the Response.
    let xml = a.response(&format!(
        "<samlp:Extensions>{}</samlp:Extensions>",
        a.signed
    ));
    let f = a.refused(&xml, "invalid_signature", 403).await;
    assert!(f.detail.contains("direct child"), "{}", f.detail);
}

#[tokio::test]
async fn xsw_evil_response_wrapping_the_signed_response_is_refused() {
    let a = setup().await;
    let mut signed_spec = a.spec.clone();
    signed_spec.signing.response = true;
    signed_spec.signing.assertion = false;
    let signed_response = a.app.idp.response(&signed_spec).expect("signed response");
    // Evil outer Response: the victim's unsigned assertion, the genuine
    // signed Response tucked into Extensions.
    let mut outer = a.spec.clone();
    outer.response_id = random_id();
    outer.signing.response = false;
    let xml = a
        .app
        .idp
        .response_around(
            &outer,
            &format!(
                "<samlp:Extensions>{signed_response}</samlp:Extensions>{}",
                a.evil
            ),
        )
        .expect("outer");
    a.refused(&xml, "invalid_signature", 403).await;
}

#[tokio::test]
async fn duplicated_ids_are_refused() {
    let a = setup().await;
    let id = a.spec.assertion_id.clone();
    let mut evil_spec = a.app.ent("victim", "x", "y", "", UAI);
    evil_spec.signing.assertion = false;
    evil_spec.assertion_id = id;
    let evil = a.app.idp.assertion_xml(&evil_spec).expect("evil");
    a.refused(
        &a.response(&format!("{}{evil}", a.signed)),
        "invalid_signature",
        403,
    )
    .await;
}

#[tokio::test]
async fn a_stripped_signature_is_refused() {
    let a = setup().await;
    let start = a.signed.find("<ds:Signature").expect("sig start");
    let end = a.signed.find("</ds:Signature>").expect("sig end") + "</ds:Signature>".len();
    let stripped = format!("{}{}", &a.signed[..start], &a.signed[end..]);
    let f = a
        .refused(&a.response(&stripped), "invalid_signature", 403)
        .await;
    assert!(f.detail.contains("neither"), "{}", f.detail);
}

#[tokio::test]
async fn a_name_id_changed_after_signing_is_refused() {
    let a = setup().await;
    let tampered = a.signed.replacen(">attacker<", ">victim<", 1);
    assert_ne!(tampered, a.signed);
    a.refused(&a.response(&tampered), "invalid_signature", 403)
        .await;
}

#[tokio::test]
async fn an_attribute_changed_after_signing_is_refused() {
    let a = setup().await;
    let tampered = a.signed.replacen(">Nobody<", ">Dupont-Martin<", 1);
    assert_ne!(tampered, a.signed);
    a.refused(&a.response(&tampered), "invalid_signature", 403)
        .await;
}

#[tokio::test]
async fn a_foreign_key_with_its_certificate_in_key_info_is_refused() {
    let a = setup().await;
    let forger = MintingIdp::generate(&a.app.idp.entity_id).expect("forger");
    let spec = a
        .app
        .ent("victim", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let forged = forger.assertion_xml(&spec).expect("forged");
    let with_key_info = forged.replacen(
        "</ds:SignatureValue>",
        &format!("</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>", forger.cert_base64()),
        1,
    );
    assert_ne!(with_key_info, forged);
    a.refused(&a.response(&with_key_info), "invalid_signature", 403)
        .await;
}

#[tokio::test]
async fn a_comment_injected_in_the_name_id_is_refused() {
    let a = setup().await;
    // The attacker registered "victim.evil.test"; canonicalisation drops the
    // comment, so the signature still holds over "victim<!---->.evil.test",
    // and a reader stopping at the comment would see "victim".
    let spec = a.app.ent("victim.evil.test", "Nobody", "Eve", "", UAI);
    let signed = a.app.idp.assertion_xml(&spec).expect("signed");
    let injected = signed.replacen(">victim.evil.test<", ">victim<!---->.evil.test<", 1);
    assert_ne!(injected, signed);
    let f = a
        .refused(&a.response(&injected), "malformed_request", 400)
        .await;
    assert!(f.detail.contains("comment"), "{}", f.detail);
}

#[tokio::test]
async fn sha1_signatures_are_refused() {
    let a = setup().await;
    let mut spec = a
        .app
        .ent("victim", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    spec.signing.sha1 = true;
    let xml = a.app.mint(&spec);
    assert!(xml.contains("rsa-sha1"), "minted with SHA-1");
    let f = a.refused(&xml, "invalid_signature", 403).await;
    assert!(f.detail.contains("SHA-256"), "{}", f.detail);
}

#[tokio::test]
async fn a_signed_response_with_an_unsigned_assertion_is_valid() {
    let app = TestApp::spawn().await;
    app.map("sub-r", "A-1").await;
    let mut spec = app.ent("sub-r", "a", "b", "", UAI);
    spec.signing = jointure::saml::mint::Signing {
        response: true,
        assertion: false,
        sha1: false,
    };
    app.expect_login(&app.mint(&spec), "A-1").await;
}

#[tokio::test]
async fn an_unsigned_response_with_a_signed_assertion_is_valid() {
    let app = TestApp::spawn().await;
    app.map("sub-a", "A-1").await;
    let mut spec = app.ent("sub-a", "a", "b", "", UAI);
    spec.signing = jointure::saml::mint::Signing {
        response: false,
        assertion: true,
        sha1: false,
    };
    app.expect_login(&app.mint(&spec), "A-1").await;
}

#[tokio::test]
async fn both_signed_is_valid() {
    let app = TestApp::spawn().await;
    app.map("sub-b", "A-1").await;
    let mut spec = app.ent("sub-b", "a", "b", "", UAI);
    spec.signing = jointure::saml::mint::Signing {
        response: true,
        assertion: true,
        sha1: false,
    };
    app.expect_login(&app.mint(&spec), "A-1").await;
}

#[tokio::test]
async fn an_unsigned_assertion_in_an_unsigned_response_with_a_signed_sibling_response_id_is_refused(
) {
    // A Signature on the Assertion that references the Response's ID.
    let a = setup().await;
    let rid = a.spec.response_id.clone();
    let moved = a.signed.replacen(
        &format!("URI=\"#{}\"", a.spec.assertion_id),
        &format!("URI=\"#{rid}\""),
        1,
    );
    assert_ne!(moved, a.signed);
    let f = a
        .refused(&a.response(&moved), "invalid_signature", 403)
        .await;
    assert!(f.detail.contains("references"), "{}", f.detail);
}
