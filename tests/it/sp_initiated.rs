//! SP-initiated login over HTTP-Redirect, InResponseTo, RelayState, and the
//! SP metadata.

use crate::common::*;
use std::io::Read;

fn query_param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn inflate(b64: &str) -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_string(&mut xml)
        .expect("inflate");
    xml
}

/// Starts a login and returns the AuthnRequest's ID and the RelayState.
async fn start_login(app: &TestApp, relay: &str) -> (String, String) {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("idp", &app.idp.entity_id)
        .append_pair("relay", relay)
        .finish();
    let res = app.get(&format!("/saml/login?{q}")).await;
    assert_eq!(res.status().as_u16(), 303);
    let location = header(&res, "location");
    assert!(location.starts_with("https://idp.test/sso?"), "{location}");
    assert!(
        query_param(&location, "Signature").is_some(),
        "the request is signed"
    );
    assert_eq!(
        query_param(&location, "SigAlg").as_deref(),
        Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    );
    let xml = inflate(&query_param(&location, "SAMLRequest").expect("SAMLRequest"));
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "AuthnRequest");
    assert_eq!(
        root.attribute("AssertionConsumerServiceURL"),
        Some(acs_url().as_str())
    );
    let id = root.attribute("ID").expect("ID").to_string();
    // "_" + 32 hex digits: 128 random bits.
    assert_eq!(id.len(), 33, "{id}");
    (
        id,
        query_param(&location, "RelayState").expect("RelayState"),
    )
}

#[tokio::test]
async fn sp_initiated_login_answers_the_pending_request_and_honours_relay_state() {
    let app = TestApp::spawn().await;
    app.map("sub-sp", "A-1").await;
    let (id, relay) = start_login(&app, "/courses/42?tab=1").await;
    // The path does not travel: the IdP sees an opaque handle.
    assert!(!relay.contains("courses"));
    let mut spec = app.ent("sub-sp", "a", "b", "", UAI);
    spec.in_response_to = Some(id.clone());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "SAMLResponse",
            &jointure::saml::mint::to_base64(&app.mint(&spec)),
        )
        .append_pair("RelayState", &relay)
        .finish();
    let res = app.post_form(body).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/courses/42?tab=1")
    );
    let cookie = header(&res, "set-cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Secure"), "public_url is https: {cookie}");
    assert!(cookie.starts_with("__Host-jointure_session="), "{cookie}");

    // The request is consumed: a second response to it is a replay.
    let mut again = app.ent("sub-sp", "a", "b", "", UAI);
    again.in_response_to = Some(id);
    app.expect_failure(&app.mint(&again), "replayed", 403).await;
}

#[tokio::test]
async fn an_open_redirect_relay_state_is_not_followed() {
    let app = TestApp::spawn().await;
    app.map("sub-r", "A-1").await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "SAMLResponse",
            &jointure::saml::mint::to_base64(&app.mint(&app.ent("sub-r", "a", "b", "", UAI))),
        )
        .append_pair("RelayState", "https://evil.test/phish")
        .finish();
    let res = app.post_form(body).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/me")
    );
}

#[tokio::test]
async fn unsolicited_responses_are_refused_when_idp_initiated_login_is_off() {
    let app = TestApp::spawn_with(|c| c.idps[0].allow_idp_initiated = false).await;
    app.map("sub-u", "A-1").await;
    let f = app
        .expect_failure(
            &app.mint(&app.ent("sub-u", "a", "b", "", UAI)),
            "replayed",
            403,
        )
        .await;
    assert!(f.detail.contains("unsolicited"), "{}", f.detail);
    // SP-initiated still works.
    let (id, _) = start_login(&app, "/me").await;
    let mut spec = app.ent("sub-u", "a", "b", "", UAI);
    spec.in_response_to = Some(id);
    app.expect_login(&app.mint(&spec), "A-1").await;
}

#[tokio::test]
async fn login_with_an_unknown_idp_is_not_found() {
    let app = TestApp::spawn().await;
    let res = app.get("/saml/login?idp=https%3A%2F%2Fnope.test").await;
    assert_eq!(res.status().as_u16(), 404);
}

#[tokio::test]
async fn sp_metadata_names_the_entity_acs_and_both_keys() {
    let app = TestApp::spawn().await;
    let res = app.get("/saml/metadata").await;
    assert_eq!(res.status().as_u16(), 200);
    let xml = res.text().await.expect("xml");
    let doc = roxmltree::Document::parse(&xml).expect("metadata parses");
    let root = doc.root_element();
    assert_eq!(root.attribute("entityID"), Some(sp_entity_id().as_str()));
    let acs = doc
        .descendants()
        .find(|n| n.tag_name().name() == "AssertionConsumerService")
        .expect("ACS");
    assert_eq!(acs.attribute("Location"), Some(acs_url().as_str()));
    let uses: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "KeyDescriptor")
        .filter_map(|n| n.attribute("use"))
        .collect();
    assert_eq!(uses, ["signing", "encryption"]);
}

#[tokio::test]
async fn me_without_a_session_is_unauthorised() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/me").await.status().as_u16(), 401);
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let app = TestApp::spawn().await;
    let res = app.get("/me").await;
    let h = res.headers();
    assert_eq!(
        h.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    assert_eq!(
        h.get("referrer-policy").and_then(|v| v.to_str().ok()),
        Some("no-referrer")
    );
    assert!(h.get("content-security-policy").is_some());
}

#[tokio::test]
async fn an_answer_to_a_request_started_in_another_browser_is_refused() {
    // Login CSRF: the attacker starts a login in their browser, then makes
    // the victim's browser post the attacker's answer.
    let app = TestApp::spawn().await;
    app.map("attacker", "A-2").await;
    let (id, _) = start_login(&app, "/").await;
    let mut spec = app.ent("attacker", "a", "b", "", UAI);
    spec.in_response_to = Some(id);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "SAMLResponse",
            &jointure::saml::mint::to_base64(&app.mint(&spec)),
        )
        .finish();
    let victim = client();
    let res = victim
        .post(format!("{}/saml/acs", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("post");
    let f = app.check_failure(res, "replayed", 403).await;
    assert!(f.detail.contains("another browser"), "{}", f.detail);
    let me = victim
        .get(format!("{}/me", app.base))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status().as_u16(), 401, "the victim is not logged in");
}

#[tokio::test]
async fn the_login_cookie_is_cross_site_secure_and_short_lived() {
    let app = TestApp::spawn().await;
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("idp", &app.idp.entity_id)
        .finish();
    let res = app.get(&format!("/saml/login?{q}")).await;
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-jointure_login="))
        .expect("login cookie")
        .to_string();
    for part in [
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
}

#[tokio::test]
async fn one_address_keeps_a_bounded_number_of_pending_requests() {
    let app = TestApp::spawn().await;
    app.map("sub-many", "A-1").await;
    let mut last = String::new();
    for _ in 0..40 {
        last = start_login(&app, "/me").await.0;
    }
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_requests")
        .fetch_one(&app.svc.pool)
        .await
        .expect("count");
    assert_eq!(pending, jointure::store::replay::PENDING_PER_ADDRESS);
    // The newest request is still answerable.
    let mut spec = app.ent("sub-many", "a", "b", "", UAI);
    spec.in_response_to = Some(last);
    app.expect_login(&app.mint(&spec), "A-1").await;
}
