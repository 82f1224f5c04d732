//! The attacks an SP must survive (docs/field-notes.md): signature wrapping XSW1–8,
//! stripping, tampering, a foreign key riding in KeyInfo, comment
//! injection, SHA-1. None logs anyone in; each is recorded with its kind.
//! And the two legitimate shapes: a signed Response around an unsigned
//! Assertion, an unsigned Response around a signed Assertion.

use crate::common::*;
use jointure::saml::mint::{random_id, ResponseSpec};
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
    let forger = fixture_idp(&a.app.idp.entity_id, 1);
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
                // Each is refused: 303 to its (folded) failure page.
                assert_eq!(res.status().as_u16(), 303);
                let location = res.headers().get("location").and_then(|v| v.to_str().ok());
                assert!(
                    location.is_some_and(|l| l.starts_with("/failures/")),
                    "{location:?}"
                );
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

// ---------------------------------------------------------------------
// One reading: encrypted assertions, documents signed in every shape
// libxmlsec1 (the library behind xmlsec1) produces, and a differential run
// against it.

fn sp_public_key(app: &TestApp) -> openssl::pkey::PKey<openssl::pkey::Public> {
    let pem = std::fs::read(app.dir.path().join("sp.crt")).expect("sp cert");
    openssl::x509::X509::from_pem(&pem)
        .and_then(|c| c.public_key())
        .expect("sp key")
}

/// A response whose assertion is encrypted to the SP (AES-GCM or AES-CBC).
fn encrypted_response(app: &TestApp, spec: &ResponseSpec, gcm: bool) -> String {
    let assertion = app.idp.assertion_xml(spec).expect("assertion");
    let enc = jointure::saml::xmlenc::encrypt_assertion(&assertion, &sp_public_key(app), gcm)
        .expect("encrypt");
    app.idp.response_around(spec, &enc).expect("response")
}

#[tokio::test]
async fn an_encrypted_assertion_in_a_signed_response_logs_in() {
    let app = TestApp::spawn().await;
    let mut spec = app.ent("enc-1", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    spec.signing = jointure::saml::mint::Signing {
        response: true,
        assertion: false,
        sha1: false,
    };
    app.expect_login(&encrypted_response(&app, &spec, true), "A-1")
        .await;
    // AES-CBC is accepted where the signature covers the ciphertext.
    let mut spec = app.ent("enc-2", "Martin", "Camille", "20/01/2011", UAI);
    spec.signing.response = true;
    spec.signing.assertion = false;
    spec.attributes
        .push(("serviceAccountId".into(), vec!["A-2".into()]));
    app.expect_login(&encrypted_response(&app, &spec, false), "A-2")
        .await;
}

#[tokio::test]
async fn a_signed_assertion_encrypted_in_an_unsigned_response_logs_in() {
    let app = TestApp::spawn().await;
    let spec = app.ent("enc-3", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    assert!(spec.signing.assertion && !spec.signing.response);
    app.expect_login(&encrypted_response(&app, &spec, true), "A-1")
        .await;
}

#[tokio::test]
async fn encryption_proves_nothing() {
    let app = TestApp::spawn().await;
    // Anyone can encrypt to our public key: an unsigned assertion inside
    // an unsigned Response is still unsigned, in either cipher.
    for gcm in [true, false] {
        let mut spec = app.ent("enc-4", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
        spec.signing.assertion = false;
        let f = app
            .expect_failure(
                &encrypted_response(&app, &spec, gcm),
                "invalid_signature",
                403,
            )
            .await;
        assert!(f.detail.contains("neither"), "{}", f.detail);
    }
    // A ciphertext changed in transit does not decrypt (GCM's tag).
    let spec = app.ent("enc-5", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let xml = encrypted_response(&app, &spec, true);
    let at = xml.rfind("</xenc:CipherValue>").expect("cipher value") - 8;
    let flipped = if &xml[at..at + 1] == "A" { "B" } else { "A" };
    let xml = format!("{}{flipped}{}", &xml[..at], &xml[at + 1..]);
    let f = app.expect_failure(&xml, "invalid_signature", 403).await;
    assert!(f.detail.contains("decrypt"), "{}", f.detail);
    assert_eq!(app.mapping("enc-4").await, None);
    assert_eq!(app.mapping("enc-5").await, None);
}

#[tokio::test]
async fn a_signed_assertion_in_aes_cbc_in_an_unsigned_response_logs_in() {
    // SimpleSAMLphp's shape: rsa-oaep-mgf1p, aes128-cbc, the assertion
    // signed inside, the Response not signed.
    let app = TestApp::spawn().await;
    let spec = app.ent("enc-cbc", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    assert!(spec.signing.assertion && !spec.signing.response);
    app.expect_login(&encrypted_response(&app, &spec, false), "A-1")
        .await;
}

/// The failure page with what differs between two failures (reference,
/// support code, the time) blanked: digits become 0.
fn page_shape(html: &str) -> String {
    let mut out = html.to_string();
    for name in ["jointure-reference", "jointure-support-code"] {
        if let Some(v) = meta(html, name) {
            out = out.replace(&v, "…");
        }
    }
    out.chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect()
}

#[tokio::test]
async fn an_altered_cbc_ciphertext_in_an_unsigned_response_fails_one_way() {
    // The padding oracle on XML Encryption: an attacker alters an AES-CBC
    // ciphertext and watches how it fails. Every alteration, and a valid
    // but unsigned plaintext, must get the same answer.
    let app = TestApp::spawn().await;
    let spec = app.ent("enc-oracle", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let good = encrypted_response(&app, &spec, false);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let start = good.rfind("<xenc:CipherValue>").expect("cv") + "<xenc:CipherValue>".len();
    let end = good.rfind("</xenc:CipherValue>").expect("cv end");
    let body = b64.decode(&good[start..end]).expect("base64");
    let with_body = |b: &[u8]| format!("{}{}{}", &good[..start], b64.encode(b), &good[end..]);
    let mut variants = Vec::new();
    // The last block's last byte: the padding length is now wrong (or not).
    for x in [0x01u8, 0x10, 0x80] {
        let mut b = body.clone();
        let n = b.len();
        b[n - 17] ^= x;
        variants.push(("padding", with_body(&b)));
    }
    // The IV: the first plaintext block (the `<saml:Assertion` tag) changes,
    // the padding stays right, the plaintext no longer parses.
    let mut b = body.clone();
    b[0] ^= 0x01;
    variants.push(("first block", with_body(&b)));
    // Not whole blocks.
    variants.push(("cut", with_body(&body[..body.len() - 5])));
    // A well-formed plaintext without a signature.
    let mut unsigned = spec.clone();
    unsigned.signing.assertion = false;
    variants.push(("unsigned", encrypted_response(&app, &unsigned, false)));
    let mut shapes = Vec::new();
    for (what, xml) in &variants {
        // Each as a first post: refused posts of one address fold into one
        // row, whose page would hide a difference.
        sqlx::query("DELETE FROM failures")
            .execute(&app.svc.pool)
            .await
            .expect("clear");
        let res = app.post_xml(xml).await;
        assert_eq!(res.status().as_u16(), 403, "{what}");
        let html = res.text().await.expect("page");
        assert_eq!(
            meta(&html, "jointure-failure-kind").as_deref(),
            Some("invalid_signature"),
            "{what}"
        );
        shapes.push((what, page_shape(&html)));
    }
    for (what, shape) in &shapes[1..] {
        assert_eq!(
            shape, &shapes[0].1,
            "{what} answers differently from padding"
        );
    }
    assert_eq!(app.mapping("enc-oracle").await, None);
}

fn encrypted_parts(
    app: &TestApp,
    name_id: bool,
    attributes: bool,
    gcm: bool,
) -> jointure::saml::mint::EncryptParts {
    jointure::saml::mint::EncryptParts {
        to: sp_public_key(app),
        gcm,
        name_id,
        attributes,
    }
}

#[tokio::test]
async fn an_encrypted_name_id_and_encrypted_attributes_are_read_once_verified() {
    let app = TestApp::spawn().await;
    for (gcm, subject) in [(true, "eid-gcm"), (false, "eid-cbc")] {
        let mut spec = app.ent(subject, "Dupont-Martin", "Élodie", "12/04/2011", UAI);
        spec.encrypt = Some(encrypted_parts(&app, true, true, gcm));
        if subject == "eid-cbc" {
            // A second identity for the same person would be refused as
            // already linked: Camille's unique twin is A-2 by account ID.
            spec = app.ent(subject, "Martin", "Camille", "20/01/2011", UAI);
            spec.attributes
                .push(("serviceAccountId".into(), vec!["A-2".into()]));
            spec.encrypt = Some(encrypted_parts(&app, true, true, gcm));
        }
        let xml = app.mint(&spec);
        assert!(xml.contains("EncryptedID") && xml.contains("EncryptedAttribute"));
        assert!(!xml.contains(subject), "the NameID is not in the clear");
        let account = if gcm { "A-1" } else { "A-2" };
        app.expect_login(&xml, account).await;
        assert_eq!(
            app.mapping(subject).await.map(|m| m.0),
            Some(account.into())
        );
    }
}

#[tokio::test]
async fn an_encrypted_name_id_for_another_key_says_why_the_subject_is_missing() {
    let app = TestApp::spawn().await;
    let other = jointure::saml::keys::generate("other-sp", 2048).expect("key");
    let mut spec = app.ent("eid-other", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    spec.encrypt = Some(jointure::saml::mint::EncryptParts {
        to: other.cert.public_key().expect("public"),
        gcm: true,
        name_id: true,
        attributes: false,
    });
    let f = app
        .expect_failure(&app.mint(&spec), "missing_subject", 422)
        .await;
    assert!(f.detail.contains("EncryptedID"), "{}", f.detail);
    assert!(f.detail.contains("our key"), "{}", f.detail);
    // An EncryptedAttribute that does not open fails the login, saying so.
    let mut spec = app.ent("ea-other", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    spec.encrypt = Some(jointure::saml::mint::EncryptParts {
        to: other.cert.public_key().expect("public"),
        gcm: true,
        name_id: false,
        attributes: true,
    });
    let f = app
        .expect_failure(&app.mint(&spec), "malformed_request", 400)
        .await;
    assert!(f.detail.contains("EncryptedAttribute"), "{}", f.detail);
}

/// A whole Response signed by libxmlsec1 from a template, in the shapes
/// IdPs write: namespaces declared on the Response only, a default
/// namespace on the Assertion, the ds prefix on the root, pretty-printed
/// white space, InclusiveNamespaces, inclusive c14n.
fn variant(app: &TestApp, subject: &str, account: &str, shape: usize) -> String {
    variant_signed_by(app, subject, account, shape, None)
}

/// [`variant`] with `signature` (a signer's placeholder) in place of the
/// libxmlsec1 template.
fn variant_signed_by(
    app: &TestApp,
    subject: &str,
    account: &str,
    shape: usize,
    placeholder: Option<&str>,
) -> String {
    use jointure::saml::xml::DS_NS;
    let spec = app.ent(subject, "x", "x", "01/01/2000", UAI);
    let now = chrono::Utc::now();
    let ts = |d: i64| {
        (now + chrono::Duration::seconds(d))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let (rid, aid) = (random_id(), random_id());
    let (c14n, prefix_list) = match shape % 3 {
        0 => ("http://www.w3.org/2001/10/xml-exc-c14n#", ""),
        1 => (
            "http://www.w3.org/2001/10/xml-exc-c14n#",
            "<ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"xs xsi\"/>",
        ),
        _ => ("http://www.w3.org/TR/2001/REC-xml-c14n-20010315", ""),
    };
    let nl = if shape % 2 == 1 { "\n    " } else { "" };
    let reference = if shape % 4 < 2 { &aid } else { &rid };
    let sig = format!(
        "<ds:Signature>{nl}<ds:SignedInfo>{nl}<ds:CanonicalizationMethod Algorithm=\"{c14n}\">{prefix_list}</ds:CanonicalizationMethod>{nl}<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>{nl}<ds:Reference URI=\"#{reference}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/><ds:Transform Algorithm=\"{c14n}\">{prefix_list}</ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue/></ds:Reference>{nl}</ds:SignedInfo>{nl}<ds:SignatureValue/>{nl}</ds:Signature>"
    );
    let sig = placeholder.map(str::to_string).unwrap_or(sig);
    let (assertion_sig, response_sig) = if reference == &aid {
        (sig.as_str(), "")
    } else {
        ("", sig.as_str())
    };
    // Shape 0, 4, 8: the Assertion in a default namespace of its own.
    let (a, open) = if shape.is_multiple_of(4) {
        (
            "",
            "<Assertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\"",
        )
    } else {
        ("saml:", "<saml:Assertion")
    };
    let sp = sp_entity_id();
    let acs = acs_url();
    let iss = &spec.issuer;
    format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" xmlns:ds=\"{DS_NS}\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ID=\"{rid}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{acs}\">{nl}<saml:Issuer>{iss}</saml:Issuer>{response_sig}{nl}<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>{nl}{open} ID=\"{aid}\" IssueInstant=\"{now}\" Version=\"2.0\">{nl}<{a}Issuer>{iss}</{a}Issuer>{assertion_sig}{nl}<{a}Subject><{a}NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\">{subject}</{a}NameID><{a}SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><{a}SubjectConfirmationData NotOnOrAfter=\"{noa}\" Recipient=\"{acs}\"/></{a}SubjectConfirmation></{a}Subject>{nl}<{a}Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{noa}\"><{a}AudienceRestriction><{a}Audience>{sp}</{a}Audience></{a}AudienceRestriction></{a}Conditions>{nl}<{a}AttributeStatement><{a}Attribute Name=\"serviceAccountId\"><{a}AttributeValue xsi:type=\"xs:string\">{account}</{a}AttributeValue></{a}Attribute><{a}Attribute Name=\"ENTStructureUAI\"><{a}AttributeValue xsi:type=\"xs:string\">{UAI}</{a}AttributeValue></{a}Attribute></{a}AttributeStatement>{nl}</{a}Assertion>{nl}</samlp:Response>",
        now = ts(0),
        nb = ts(-60),
        noa = ts(300),
    )
}

/// The Python interpreter of the venv `scripts/setup` makes for signxml.
fn signxml_python() -> std::path::PathBuf {
    let p = std::env::var_os("JOINTURE_SIGNXML_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python")
        });
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup, which installs signxml for this test",
        p.display()
    );
    p
}

#[tokio::test]
async fn responses_signed_by_signxml_log_in() {
    use std::io::Write;
    let app = TestApp::spawn().await;
    let (key, cert) = app.idp.pem_pair().expect("pem");
    let key_path = app.dir.path().join("idp-key.pem");
    let cert_path = app.dir.path().join("idp-cert.pem");
    std::fs::write(&key_path, key).expect("key");
    std::fs::write(&cert_path, cert).expect("cert");
    let placeholder = "<ds:Signature Id=\"placeholder\"/>";
    let cases: [(usize, &str, &[&str]); 6] = [
        (1, "http://www.w3.org/2001/10/xml-exc-c14n#", &[]),
        (0, "http://www.w3.org/2001/10/xml-exc-c14n#", &[]),
        (5, "http://www.w3.org/2001/10/xml-exc-c14n#", &["xs", "xsi"]),
        (2, "http://www.w3.org/2001/10/xml-exc-c14n#", &[]),
        (3, "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", &[]),
        (6, "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", &[]),
    ];
    for (shape, c14n, prefixes) in cases {
        let subject = format!("signxml-{shape}-{}", prefixes.len());
        let xml = variant_signed_by(&app, &subject, "A-5", shape, Some(placeholder));
        let doc = roxmltree::Document::parse(&xml).expect("template");
        let signed_id = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Signature")
            .and_then(|s| s.parent())
            .and_then(|p| p.attribute("ID"))
            .expect("signed element")
            .to_string();
        let mut child = std::process::Command::new(signxml_python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/interop/signxml_sign.py"
            ))
            .arg(&key_path)
            .arg(&cert_path)
            .arg(&signed_id)
            .arg(c14n)
            .args(prefixes)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("signxml runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(xml.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("signxml");
        assert!(out.status.success(), "signxml failed on shape {shape}");
        let signed = String::from_utf8(out.stdout).expect("utf8");
        assert!(
            !signed.contains("placeholder\"/>"),
            "signxml filled the placeholder"
        );
        if let Err(r) = app.svc.verifier.verify(&signed, chrono::Utc::now()) {
            panic!(
                "shape {shape} ({c14n} {prefixes:?}): {}\n{signed}",
                r.detail
            );
        }
        app.expect_login(&signed, "A-5").await;
    }
}

#[tokio::test]
async fn responses_signed_by_libxmlsec1_in_every_shape_log_in() {
    let app = TestApp::spawn().await;
    for shape in 0..12 {
        let subject = format!("shape-{shape}");
        let signed = app
            .idp
            .sign(&variant(&app, &subject, "A-5", shape))
            .expect("libxmlsec1 signs");
        app.expect_login(&signed, "A-5").await;
    }
}

/// Small changes to a signed document, some meaningless to XML (white
/// space in tags, quotes, character references, an empty-element tag,
/// an unused namespace), some that change what was signed.
fn mutate(xml: &str, seed: u64) -> String {
    let mut rng = seed;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut s = xml.to_string();
    for _ in 0..1 + next(3) {
        let len = s.len();
        let at = next(len);
        if !s.is_char_boundary(at) {
            continue;
        }
        match next(9) {
            // A byte of text or attribute value changed.
            0 => {
                let b = s.as_bytes()[at];
                if b.is_ascii_alphanumeric() {
                    let c = if b == b'a' { "b" } else { "a" };
                    s.replace_range(at..at + 1, c);
                }
            }
            // White space before a tag's end.
            1 => {
                if let Some(i) = s[at..].find('>') {
                    if s.as_bytes()[at + i - 1] != b'/' {
                        s.insert(at + i, ' ');
                    }
                }
            }
            // Double quotes become single ones on one attribute.
            2 => {
                if let Some(i) = s[at..].find("=\"") {
                    let start = at + i + 1;
                    if let Some(j) = s[start + 1..].find('"') {
                        let end = start + 1 + j;
                        if !s[start + 1..end].contains('\'') {
                            s.replace_range(end..end + 1, "'");
                            s.replace_range(start..start + 1, "'");
                        }
                    }
                }
            }
            // A letter of text written as a character reference.
            3 => {
                if let Some(i) = s[at..].find('>') {
                    let p = at + i + 1;
                    if let Some(&b) = s.as_bytes().get(p) {
                        if b.is_ascii_alphanumeric() {
                            s.replace_range(p..p + 1, &format!("&#x{b:X};"));
                        }
                    }
                }
            }
            // An unused namespace declared on an element.
            4 => {
                if let Some(i) = s[at..].find(" ID=") {
                    s.insert_str(at + i, " xmlns:unused=\"urn:x\"");
                }
            }
            // `<x></x>` and `<x/>`.
            5 => {
                if let Some(i) = s[at..].find("\"></ds:DigestMethod>") {
                    s.replace_range(at + i + 1..at + i + 20, "/>");
                } else if let Some(i) = s[at..].find("/>") {
                    let start = s[..at + i].rfind('<').unwrap_or(0);
                    let name: String = s[start + 1..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '/' && *c != '>')
                        .collect();
                    s.replace_range(at + i..at + i + 2, &format!("></{name}>"));
                }
            }
            // A comment inside signed text (c14n without comments drops it).
            6 => {
                if let Some(i) = s[at..].find("</saml:NameID>") {
                    s.insert_str(at + i, "<!--x-->");
                }
            }
            // The SAML namespace bound to a second prefix on an element.
            7 => {
                if let Some(i) = s[at..].find("<saml:Attribute ") {
                    s.insert_str(
                        at + i + 16,
                        "xmlns:s2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ",
                    );
                }
            }
            // Any byte dropped.
            _ => {
                if s.is_char_boundary(at + 1) {
                    s.remove(at);
                }
            }
        }
    }
    s
}

#[tokio::test]
async fn signature_decisions_never_differ_from_libxmlsec1_on_thousands_of_mutations() {
    use jointure::saml::dsig::{verify_enveloped, TrustedKeys};
    use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
    let app = TestApp::spawn().await;
    let cert_b64 = app.idp.cert_base64();
    let keys = TrustedKeys::from_certificates(std::slice::from_ref(&cert_b64)).expect("keys");
    let der = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&cert_b64)
            .expect("der")
    };
    let cert = CertificateDer::from(der);
    let mut originals = Vec::new();
    for shape in 0..12 {
        originals.push(
            app.idp
                .sign(&variant(&app, "diff", "A-5", shape))
                .expect("signed"),
        );
    }
    let (mut compared, mut accepted, mut refused) = (0, 0, 0);
    for i in 0..3000u64 {
        let xml = mutate(&originals[i as usize % originals.len()], i * 2654435761 + 1);
        let Ok(doc) = roxmltree::Document::parse(&xml) else {
            continue;
        };
        let Some(sig) = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Signature" && n.is_element())
        else {
            continue;
        };
        let Some(parent) = sig.parent_element() else {
            continue;
        };
        let ours = verify_enveloped(sig, parent, &keys).is_ok();
        let theirs = match Crypto::verify_signed_xml(xml.as_bytes(), &cert, Some("ID")) {
            Ok(()) => true,
            Err(samael::crypto::CryptoError::InvalidSignature) => false,
            // libxml2 could not read it: no decision to compare.
            Err(_) => continue,
        };
        assert_eq!(ours, theirs, "decisions differ on:\n{xml}");
        compared += 1;
        if ours {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("compared {compared}: {accepted} accepted by both, {refused} refused by both");
    assert!(compared > 2000, "{compared}");
    assert!(accepted > 300 && refused > 300, "{accepted} / {refused}");
}

// ---------------------------------------------------------------------
// Work a stranger can make us do before any signature is checked.

#[tokio::test]
async fn a_flood_of_namespace_declarations_is_refused_unread() {
    let app = TestApp::spawn().await;
    // Declarations spread over nested elements (each under the
    // attribute count), inherited by many children.
    let nest: String = (0..40)
        .map(|e| {
            let decls: String = (0..50).map(|i| format!(" xmlns:a{e}x{i}=\"u\"")).collect();
            format!("<n{decls}>")
        })
        .collect();
    let close = "</n>".repeat(40);
    let children = "<b xmlns:z=\"u\"/>".repeat(100);
    let xml = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{nest}{children}{close}</samlp:Response>"
    );
    // Refused by the count in the raw text, before roxmltree's parse
    // (quadratic in inherited declarations: minutes for this body).
    let f = app.expect_failure(&xml, "malformed_request", 400).await;
    assert!(f.detail.contains("namespace declarations"), "{}", f.detail);
}

#[tokio::test]
async fn thousands_of_attributes_on_one_element_are_refused_unread() {
    let app = TestApp::spawn().await;
    // roxmltree compares each attribute with every earlier one.
    let attrs: String = (0..20000).map(|i| format!(" a{i}=''")).collect();
    let xml =
        format!("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"{attrs}/>");
    let f = app.expect_failure(&xml, "malformed_request", 400).await;
    assert!(f.detail.contains("attributes"), "{}", f.detail);
}

#[tokio::test]
async fn a_prefix_declared_twice_on_one_element_is_refused() {
    let app = TestApp::spawn().await;
    let spec = app.ent("dup-ns", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let signed = app.mint(&spec);
    // The default namespace twice: roxmltree reads the first, a canonical
    // form would render the other.
    let xml = signed.replacen(
        "<samlp:Response ",
        "<samlp:Response xmlns=\"\" xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" ",
        1,
    );
    let f = app.expect_failure(&xml, "malformed_request", 400).await;
    assert!(f.detail.contains("declared twice"), "{}", f.detail);
}

#[tokio::test]
async fn signed_info_carries_nothing_beyond_what_the_standard_names() {
    let app = TestApp::spawn().await;
    let spec = app.ent("big-si", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let signed = app.mint(&spec);
    let digest_method = "<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>";
    assert!(signed.contains(digest_method), "minted shape");
    let padded = signed.replacen(
        digest_method,
        &format!(
            "<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\">{}</ds:DigestMethod>",
            "<b/>".repeat(500)
        ),
        1,
    );
    let f = app.expect_failure(&padded, "invalid_signature", 403).await;
    assert!(
        f.detail.contains("DigestMethod carries elements"),
        "{}",
        f.detail
    );
}

#[tokio::test]
async fn a_list_of_encrypted_keys_is_cut_short() {
    let app = TestApp::spawn().await;
    let spec = app.ent("ek-flood", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let xml = encrypted_response(&app, &spec, true);
    let at = xml.find("<xenc:EncryptedKey>").expect("key");
    let end = xml.find("</xenc:EncryptedKey>").expect("end") + "</xenc:EncryptedKey>".len();
    let key = &xml[at..end];
    let flooded = format!("{}{}{}", &xml[..at], key.repeat(50), &xml[at..]);
    let f = app.expect_failure(&flooded, "invalid_signature", 403).await;
    assert!(f.detail.contains("EncryptedKeys"), "{}", f.detail);
}
