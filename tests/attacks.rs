//! The attacks an SP must survive (NOTES.md): signature wrapping XSW1–8,
//! stripping, tampering, a foreign key riding in KeyInfo, comment
//! injection, SHA-1. None logs anyone in; each is recorded with its kind.
//! And the two legitimate shapes: a signed Response around an unsigned
//! Assertion, an unsigned Response around a signed Assertion.

mod common;

use common::*;
use jointure::saml::mint::{random_id, MintingIdp, ResponseSpec};
use std::sync::Arc;

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

/// The parser-differential cases: a document that two readers could read
/// differently is refused before either reads it.
#[tokio::test]
async fn any_declared_encoding_other_than_utf8_is_refused() {
    let a = setup().await;
    let body = a.response(&a.signed);
    let body = body
        .strip_prefix("<?xml version=\"1.0\"?>")
        .unwrap_or(&body);
    for enc in ["UTF-7", "utf-16", "ISO-8859-1", "windows-1252", "US-ASCII"] {
        let xml = format!("<?xml version=\"1.0\" encoding=\"{enc}\"?>{body}");
        let f = a.refused(&xml, "malformed_request", 400).await;
        assert!(f.detail.contains("encoding"), "{enc}: {}", f.detail);
    }
    // A UTF-8 declaration (any case) is read as usual.
    for enc in ["UTF-8", "utf-8"] {
        let mut spec = a.spec.clone();
        spec.assertion_id = random_id();
        let fresh = a.app.idp.assertion_xml(&spec).expect("assertion");
        let body = a.response(&fresh);
        let body = body
            .strip_prefix("<?xml version=\"1.0\"?>")
            .unwrap_or(&body);
        let xml = format!("<?xml version=\"1.0\" encoding='{enc}'?>{body}");
        a.app.expect_failure(&xml, "identity_mismatch", 403).await;
    }
}

#[tokio::test]
async fn a_byte_order_mark_is_refused() {
    let a = setup().await;
    let xml = format!("\u{feff}{}", a.response(&a.signed));
    a.refused(&xml, "malformed_request", 400).await;
    // UTF-16 bytes are not UTF-8 text: refused as such.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            a.response(&a.signed)
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes()),
        )
        .collect();
    use base64::Engine;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "SAMLResponse",
            &base64::engine::general_purpose::STANDARD.encode(utf16),
        )
        .finish();
    let res = a.app.post_form(body).await;
    a.app.check_failure(res, "malformed_request", 400).await;
}

#[tokio::test]
async fn nesting_is_capped_just_above_what_responses_need() {
    let a = setup().await;
    let nested = |k: usize| {
        format!(
            "<samlp:Extensions>{}{}</samlp:Extensions>{}",
            "<x>".repeat(k),
            "</x>".repeat(k),
            a.signed
        )
    };
    // Response (1) > Extensions (2) > 62 levels = 64: read as usual.
    a.app
        .expect_failure(&a.response(&nested(62)), "identity_mismatch", 403)
        .await;
    let f = a
        .refused(&a.response(&nested(63)), "malformed_request", 400)
        .await;
    assert!(f.detail.contains("deeper"), "{}", f.detail);
    // Far past libxml2's own limit: refused the same way, not half-read.
    a.refused(&a.response(&nested(400)), "malformed_request", 400)
        .await;
}

#[tokio::test]
async fn the_utf7_hidden_signature_cannot_make_an_unsolicited_response_count_as_signed() {
    // The attack of the report: IdP-initiated login off, a pending request,
    // an unsolicited signed assertion, and an unsigned Response naming the
    // request, with a fake Response Signature only one reader would see.
    let app = TestApp::spawn_with(|c| c.idps[0].allow_idp_initiated = false).await;
    let login = app
        .get(&format!(
            "/saml/login?idp={}",
            url::form_urlencoded::byte_serialize(app.idp.entity_id.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(login.status().as_u16(), 303);
    let pending: String = sqlx::query_scalar("SELECT id FROM pending_requests LIMIT 1")
        .fetch_one(&app.svc.pool)
        .await
        .expect("a pending request");
    app.map("victim", "A-1").await;
    let spec = app.ent("victim", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let signed = app.idp.assertion_xml(&spec).expect("assertion");
    let mut outer = spec.clone();
    outer.signing.response = false;
    outer.in_response_to = Some(pending);
    let body = app.idp.response_around(&outer, &signed).expect("response");
    let body = body
        .strip_prefix("<?xml version=\"1.0\"?>")
        .unwrap_or(&body);
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-7\"?>{body}");
    app.expect_failure(&xml, "malformed_request", 400).await;
    assert_eq!(app.get("/me").await.status().as_u16(), 401);
}

#[tokio::test]
async fn saml_versions_other_than_2_0_are_refused() {
    let a = setup().await;
    // The Response wrapper is unsigned: changing its Version breaks nothing.
    let xml = a
        .response(&a.signed)
        .replacen("Version=\"2.0\"", "Version=\"1.1\"", 1);
    let f = a.refused(&xml, "malformed_request", 400).await;
    assert!(f.detail.contains("Version"), "{}", f.detail);
    // A signed Assertion claiming 1.1.
    let unsigned = {
        let mut s = a.spec.clone();
        s.signing.assertion = false;
        a.app.idp.assertion_xml(&s).expect("assertion")
    }
    .replacen("Version=\"2.0\"", "Version=\"1.1\"", 1);
    let mut outer = a.spec.clone();
    outer.signing.response = true;
    let xml = a
        .app
        .idp
        .response_around(&outer, &unsigned)
        .expect("response");
    a.refused(&xml, "malformed_request", 400).await;
}

#[tokio::test]
async fn a_forged_post_stores_bounded_fields() {
    let app = TestApp::spawn().await;
    // An unsigned response with a 120 KB last name and 60 more attributes.
    let mut spec = app.ent("x", &"N".repeat(120_000), "Eve", "01/01/2000", UAI);
    for i in 0..60 {
        spec = spec.attr(&format!("junk{i}"), &"v".repeat(500));
    }
    spec.signing.assertion = false;
    spec.signing.response = false;
    let xml = app.mint(&spec);
    assert!(xml.len() > 150_000);
    let f = app.expect_failure(&xml, "invalid_signature", 403).await;
    assert!(f.asserted_last_name.as_deref().unwrap_or("").len() <= 256);
    assert!(
        f.asserted_json.len() <= 24 * 1024,
        "{}",
        f.asserted_json.len()
    );
    assert!(serde_json::from_str::<serde_json::Value>(&f.asserted_json).is_ok());
    assert!(f.raw_response.as_deref().unwrap_or("").len() <= 16 * 1024);
    let row_bytes: i64 = sqlx::query_scalar(
        "SELECT SUM(length(CAST(raw_response AS BLOB)) + length(CAST(asserted_json AS BLOB)) + length(CAST(detail AS BLOB))) FROM failures",
    )
    .fetch_one(&app.svc.pool)
    .await
    .expect("bytes");
    assert!(row_bytes < 40 * 1024, "{row_bytes}");
}

#[tokio::test]
async fn ten_thousand_forged_posts_add_a_bounded_number_of_rows_and_a_real_login_still_works() {
    let app = Arc::new(TestApp::spawn().await);
    app.map("real", "A-1").await;
    let forged = |i: usize| {
        let mut s = app.ent(&format!("forged-{i}"), "N", "Eve", "01/01/2000", UAI);
        s.signing.assertion = false;
        s.signing.response = false;
        s
    };
    // One forged document per kind of refusal a stranger can cause.
    let unsigned = app.mint(&forged(0));
    let mut stranger = forged(1);
    stranger.issuer = "https://stranger.test/idp".into();
    let stranger = app.mint(&stranger);
    let bodies: Arc<Vec<String>> = Arc::new(
        [
            unsigned.as_str(),
            stranger.as_str(),
            "<not-xml",
            "<samlp:Response/>",
        ]
        .iter()
        .map(|x| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("SAMLResponse", &jointure::saml::mint::to_base64(x))
                .finish()
        })
        .collect(),
    );
    let bytes = |app: Arc<TestApp>| async move {
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(SUM(length(CAST(raw_response AS BLOB)) + length(CAST(asserted_json AS BLOB)) + length(CAST(detail AS BLOB))), 0) FROM failures")
            .fetch_one(&app.svc.pool)
            .await
            .expect("bytes")
    };
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let (app, bodies) = (app.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..1250usize {
                let body = bodies[(w + i) % bodies.len()].clone();
                let res = app.post_form(body).await;
                assert!(res.status().is_client_error(), "{}", res.status());
            }
        }));
    }
    // A real login in the middle of the flood.
    app.expect_login(
        &app.mint(&app.ent("real", "Dupont-Martin", "Élodie", "12/04/2011", UAI)),
        "A-1",
    )
    .await;
    for t in tasks {
        t.await.expect("task");
    }
    let rows = app.count_failures().await;
    let total: i64 = sqlx::query_scalar("SELECT SUM(count) FROM failures")
        .fetch_one(&app.svc.pool)
        .await
        .expect("sum");
    assert_eq!(total, 10_000, "every post is counted");
    assert!(rows <= 20, "{rows} rows for 10,000 forged posts");
    assert!(bytes(app.clone()).await < 20 * 20 * 1024);
    // And a real login after it.
    app.expect_login(
        &app.mint(&app.ent("real", "Dupont-Martin", "Élodie", "12/04/2011", UAI)),
        "A-1",
    )
    .await;
}

#[tokio::test]
async fn long_names_and_xml_id_that_libxml2_reads_otherwise_are_refused() {
    let a = setup().await;
    // libxml2 stops at a name over 50,000 characters (and would not see a
    // Signature after it); roxmltree reads on. Both are refused here.
    for len in [257, 50_001] {
        let name = "q".repeat(len);
        let xml = a.response(&format!("{}<{name}></{name}>", a.signed));
        let f = a.refused(&xml, "malformed_request", 400).await;
        assert!(f.detail.contains("longer"), "{}", f.detail);
    }
    let long_prefix = format!(
        "{}<samlp:Extensions xmlns:{p}=\"urn:x\"><{p}:a/></samlp:Extensions>",
        a.signed,
        p = "p".repeat(300)
    );
    a.refused(&a.response(&long_prefix), "malformed_request", 400)
        .await;
    let xml_id = a.response(&format!(
        "<samlp:Extensions><x xml:id=\"{}\"/></samlp:Extensions>{}",
        a.spec.assertion_id, a.signed
    ));
    let f = a.refused(&xml_id, "malformed_request", 400).await;
    assert!(f.detail.contains("xml:id"), "{}", f.detail);
    // A 256-byte name is still read.
    let name = "q".repeat(256);
    let mut spec = a.spec.clone();
    spec.assertion_id = random_id();
    let fresh = a.app.idp.assertion_xml(&spec).expect("assertion");
    let xml = a.response(&format!(
        "<samlp:Extensions><{name}/></samlp:Extensions>{fresh}"
    ));
    a.app.expect_failure(&xml, "identity_mismatch", 403).await;
}

#[tokio::test]
async fn a_subject_too_long_to_store_is_never_taken() {
    let app = TestApp::spawn().await;
    let long = "s".repeat(1025);
    let f = app
        .expect_failure(&app.mint(&app.nobody(&long)), "missing_subject", 422)
        .await;
    assert!(f.detail.contains("1025 bytes"), "{}", f.detail);
    assert!(app.mapping(&long).await.is_none());
}
