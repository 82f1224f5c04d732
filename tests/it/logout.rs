//! Single logout: the logout button (`POST /logout`) and our signed
//! LogoutRequest, the IdP's LogoutRequest and LogoutResponse on
//! `/saml/slo` in both bindings, everything a stranger may send there
//! refused with a 4xx, and sessions that never outlive the IdP's.

use crate::common::{self, csrf_from, header, TestApp, UAI};
use base64::Engine;
use jointure::saml::mint::{
    to_base64, LogoutAlg, LogoutRequestSpec, LogoutResponseSpec, ResponseSpec,
};
use std::io::Read;

const IDP_SLO: &str = "https://idp.test/saml/slo";
const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// Our SingleLogoutService, as the IdP knows it.
fn our_slo() -> String {
    format!("{}/saml/slo", common::SP)
}

/// An app whose IdP publishes an HTTP-Redirect SingleLogoutService.
async fn spawn_with_slo() -> TestApp {
    TestApp::spawn_with(|c| {
        let idp = common::fixture_idp("https://idp.test/saml", 0);
        let path = c.idps[0].metadata.clone().expect("a metadata file");
        std::fs::write(
            path,
            idp.metadata_xml_with_slo("https://idp.test/sso", IDP_SLO),
        )
        .expect("metadata");
    })
    .await
}

/// A valid login of Élodie (account A-1, mapped) as `subject`.
fn elodie(app: &TestApp, subject: &str) -> ResponseSpec {
    app.ent(subject, "Dupont-Martin", "Élodie", "2011-04-12", UAI)
}

/// Logs `c` in with `spec`; returns the Set-Cookie header.
async fn login(app: &TestApp, c: &reqwest::Client, spec: &ResponseSpec) -> String {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &to_base64(&app.mint(spec)))
        .finish();
    let res = c
        .post(format!("{}/saml/acs", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("acs");
    assert_eq!(res.status().as_u16(), 303, "login");
    header(&res, "set-cookie")
}

async fn me_status(app: &TestApp, c: &reqwest::Client) -> u16 {
    c.get(format!("{}/me", app.base))
        .send()
        .await
        .expect("me")
        .status()
        .as_u16()
}

async fn user_sessions(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE kind = 'user'")
        .fetch_one(&app.svc.pool)
        .await
        .expect("count")
}

fn location(res: &reqwest::Response) -> String {
    header(res, "location")
}

/// Reads a redirect to the IdP as the IdP would: checks the query
/// signature over the raw octets with the SP certificate, inflates the
/// message. Returns the XML and the decoded RelayState.
fn read_redirect(app: &TestApp, url: &str, param: &str) -> (String, Option<String>) {
    let url = url::Url::parse(url).expect("url");
    let query = url.query().expect("query");
    let raw = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let decode = |v: &str| {
        url::form_urlencoded::parse(format!("x={v}").as_bytes())
            .next()
            .expect("value")
            .1
            .into_owned()
    };
    let message = raw(param).expect("the message");
    let relay = raw("RelayState");
    let sig_alg = raw("SigAlg").expect("SigAlg");
    assert_eq!(
        decode(&sig_alg),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    );
    let mut signed = format!("{param}={message}");
    if let Some(r) = &relay {
        signed.push_str(&format!("&RelayState={r}"));
    }
    signed.push_str(&format!("&SigAlg={sig_alg}"));
    let signature = base64::engine::general_purpose::STANDARD
        .decode(decode(&raw("Signature").expect("Signature")))
        .expect("base64 signature");
    let key = app.svc.sp_keys.cert.public_key().expect("SP key");
    let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key)
        .expect("verifier");
    v.update(signed.as_bytes()).expect("update");
    assert!(
        v.verify(&signature).expect("verify"),
        "the signature verifies with the SP certificate"
    );
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(decode(&message))
        .expect("base64 message");
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_string(&mut xml)
        .expect("inflates");
    (xml, relay.map(|r| decode(&r)))
}

/// Sends a signed LogoutRequest for `subject` by the redirect binding.
async fn idp_logout_redirect(
    app: &TestApp,
    c: &reqwest::Client,
    spec: &LogoutRequestSpec,
    relay: Option<&str>,
) -> reqwest::Response {
    let xml = app.idp.logout_request_xml(spec, None).expect("mint");
    let q = app
        .idp
        .redirect_query("SAMLRequest", &xml, relay, Some(LogoutAlg::RsaSha256))
        .expect("query");
    c.get(format!("{}/saml/slo?{q}", app.base))
        .send()
        .await
        .expect("slo")
}

async fn post_slo(app: &TestApp, c: &reqwest::Client, field: &str, xml: &str) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(field, &to_base64(xml))
        .finish();
    c.post(format!("{}/saml/slo", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("slo post")
}

/// Checks our LogoutResponse to the IdP's request `id`.
fn check_logout_response(app: &TestApp, res: &reqwest::Response, id: &str, status: &str) {
    assert_eq!(res.status().as_u16(), 303);
    let to = location(res);
    assert!(to.starts_with(&format!("{IDP_SLO}?")), "{to}");
    let (xml, _) = read_redirect(app, &to, "SAMLResponse");
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let root = doc.root_element();
    assert!(root.has_tag_name((SAMLP, "LogoutResponse")), "{xml}");
    assert_eq!(root.attribute("InResponseTo"), Some(id));
    assert_eq!(root.attribute("Destination"), Some(IDP_SLO));
    let code = doc
        .descendants()
        .find(|n| n.has_tag_name((SAMLP, "StatusCode")))
        .and_then(|n| n.attribute("Value"));
    assert_eq!(code, Some(status), "{xml}");
}

#[tokio::test]
async fn the_logout_button_sends_a_signed_logout_request_naming_the_session_and_its_answer_is_taken_once(
) {
    let app = spawn_with_slo().await;
    app.map("elodie-ent", "A-1").await;
    let spec = elodie(&app, "elodie-ent");
    login(&app, &app.client, &spec).await;
    let html = app.get("/me").await.text().await.expect("me");
    assert!(
        html.contains("action=\"/logout\""),
        "a logout button: {html}"
    );
    let csrf = csrf_from(&html);

    let res = app
        .post_with(&app.client, "/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let cookie = header(&res, "set-cookie");
    assert!(cookie.contains("Max-Age=0"), "the cookie expires: {cookie}");
    let to = location(&res);
    assert!(to.starts_with(&format!("{IDP_SLO}?SAMLRequest=")), "{to}");
    let (xml, relay) = read_redirect(&app, &to, "SAMLRequest");
    assert_eq!(relay, None);
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let root = doc.root_element();
    assert!(root.has_tag_name((SAMLP, "LogoutRequest")), "{xml}");
    assert_eq!(root.attribute("Destination"), Some(IDP_SLO));
    assert_eq!(root.attribute("Version"), Some("2.0"));
    let text_of = |ns: &str, name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name((ns, name)))
            .and_then(|n| n.text())
            .map(str::to_string)
    };
    assert_eq!(
        text_of(SAML, "Issuer").as_deref(),
        Some(common::sp_entity_id().as_str())
    );
    assert_eq!(text_of(SAML, "NameID").as_deref(), Some("elodie-ent"));
    let name_id = doc
        .descendants()
        .find(|n| n.has_tag_name((SAML, "NameID")))
        .expect("NameID");
    assert_eq!(name_id.attribute("Format"), Some(PERSISTENT));
    assert_eq!(
        text_of(SAMLP, "SessionIndex").as_deref(),
        Some(spec.assertion_id.as_str())
    );
    // The local session is gone already.
    assert_eq!(me_status(&app, &app.client).await, 401);
    assert_eq!(user_sessions(&app).await, 0);

    // The IdP answers; once.
    let id = root.attribute("ID").expect("ID");
    let answer = app
        .idp
        .logout_response_xml(
            &LogoutResponseSpec::new(&app.idp.entity_id, &our_slo(), id),
            None,
        )
        .expect("mint");
    let q = app
        .idp
        .redirect_query("SAMLResponse", &answer, None, Some(LogoutAlg::RsaSha256))
        .expect("query");
    let res = app.get(&format!("/saml/slo?{q}")).await;
    assert_eq!(res.status().as_u16(), 200);
    let page = res.text().await.expect("page");
    assert!(page.contains("Vous êtes déconnecté"), "{page}");
    assert!(!page.contains("peut-être encore connecté"), "{page}");
    let again = app.get(&format!("/saml/slo?{q}")).await;
    assert_eq!(again.status().as_u16(), 403, "a replayed LogoutResponse");
}

#[tokio::test]
async fn a_logout_response_with_an_error_status_says_the_portal_may_still_be_logged_in() {
    let app = spawn_with_slo().await;
    app.map("elodie-ent", "A-1").await;
    login(&app, &app.client, &elodie(&app, "elodie-ent")).await;
    let csrf = csrf_from(&app.get("/me").await.text().await.expect("me"));
    let res = app
        .post_with(&app.client, "/logout", &[("csrf_token", &csrf)])
        .await;
    let (xml, _) = read_redirect(&app, &location(&res), "SAMLRequest");
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let id = doc.root_element().attribute("ID").expect("ID");
    let mut spec = LogoutResponseSpec::new(&app.idp.entity_id, &our_slo(), id);
    spec.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".into();
    // By the POST binding this time, signed inside.
    let answer = app
        .idp
        .logout_response_xml(&spec, Some(LogoutAlg::RsaSha256))
        .expect("mint");
    let res = post_slo(&app, &app.client, "SAMLResponse", &answer).await;
    assert_eq!(res.status().as_u16(), 200);
    let page = res.text().await.expect("page");
    assert!(page.contains("peut-être encore connecté"), "{page}");
    assert_eq!(me_status(&app, &app.client).await, 401);
    // An unsolicited LogoutResponse answers nothing of ours.
    let stray = LogoutResponseSpec::new(&app.idp.entity_id, &our_slo(), "_not-ours");
    let stray = app
        .idp
        .logout_response_xml(&stray, Some(LogoutAlg::RsaSha256))
        .expect("mint");
    let res = post_slo(&app, &app.client, "SAMLResponse", &stray).await;
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn an_idp_logout_request_by_redirect_ends_every_session_of_that_person_and_is_answered_signed(
) {
    let app = spawn_with_slo().await;
    app.map("elodie-ent", "A-1").await;
    app.map("camille-ent", "A-5").await;
    let (first, second, other) = (common::client(), common::client(), common::client());
    login(&app, &first, &elodie(&app, "elodie-ent")).await;
    login(&app, &second, &elodie(&app, "elodie-ent")).await;
    login(
        &app,
        &other,
        &app.ent("camille-ent", "Haddad", "Inès", "1985-02-07", UAI),
    )
    .await;
    for c in [&first, &second, &other] {
        assert_eq!(me_status(&app, c).await, 200);
    }
    let spec = LogoutRequestSpec::new(&app.idp.entity_id, &our_slo(), "elodie-ent");
    // The IdP's front channel: a browser that is neither of the two.
    let res = idp_logout_redirect(&app, &common::client(), &spec, Some("relay-42")).await;
    check_logout_response(
        &app,
        &res,
        &spec.id,
        "urn:oasis:names:tc:SAML:2.0:status:Success",
    );
    let (_, relay) = read_redirect(&app, &location(&res), "SAMLResponse");
    assert_eq!(relay.as_deref(), Some("relay-42"), "RelayState echoed");
    assert_eq!(me_status(&app, &first).await, 401);
    assert_eq!(me_status(&app, &second).await, 401);
    assert_eq!(me_status(&app, &other).await, 200, "another person stays");
}

#[tokio::test]
async fn an_idp_logout_request_by_post_ends_every_session_of_that_person() {
    let app = spawn_with_slo().await;
    app.map("elodie-ent", "A-1").await;
    let (first, second) = (common::client(), common::client());
    login(&app, &first, &elodie(&app, "elodie-ent")).await;
    login(&app, &second, &elodie(&app, "elodie-ent")).await;
    let spec = LogoutRequestSpec::new(&app.idp.entity_id, &our_slo(), "elodie-ent");
    let xml = app
        .idp
        .logout_request_xml(&spec, Some(LogoutAlg::RsaSha256))
        .expect("mint");
    let res = post_slo(&app, &common::client(), "SAMLRequest", &xml).await;
    check_logout_response(
        &app,
        &res,
        &spec.id,
        "urn:oasis:names:tc:SAML:2.0:status:Success",
    );
    assert_eq!(me_status(&app, &first).await, 401);
    assert_eq!(me_status(&app, &second).await, 401);
    assert_eq!(user_sessions(&app).await, 0);
}

#[tokio::test]
async fn a_logout_request_naming_session_indexes_ends_only_those_sessions() {
    let app = spawn_with_slo().await;
    app.map("elodie-ent", "A-1").await;
    let (first, second) = (common::client(), common::client());
    let one = elodie(&app, "elodie-ent");
    login(&app, &first, &one).await;
    login(&app, &second, &elodie(&app, "elodie-ent")).await;
    let mut spec = LogoutRequestSpec::new(&app.idp.entity_id, &our_slo(), "elodie-ent");
    spec.session_indexes = vec![one.assertion_id.clone()];
    let res = idp_logout_redirect(&app, &common::client(), &spec, None).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(me_status(&app, &first).await, 401);
    assert_eq!(me_status(&app, &second).await, 200);
}

#[tokio::test]
async fn a_logout_request_with_an_encrypted_id_is_answered_unsupported_and_ends_nothing() {
    let app = spawn_with_slo().await;
    app.map("elodie-ent", "A-1").await;
    login(&app, &app.client, &elodie(&app, "elodie-ent")).await;
    let mut spec = LogoutRequestSpec::new(&app.idp.entity_id, &our_slo(), "elodie-ent");
    spec.encrypted_id = true;
    let res = idp_logout_redirect(&app, &common::client(), &spec, None).await;
    check_logout_response(
        &app,
        &res,
        &spec.id,
        "urn:oasis:names:tc:SAML:2.0:status:Responder",
    );
    assert_eq!(me_status(&app, &app.client).await, 200);
}

#[tokio::test]
async fn bad_logout_messages_are_refused_with_a_4xx_and_end_no_session() {
    let app = spawn_with_slo().await;
    app.map("elodie-ent", "A-1").await;
    let idp = &app.idp;
    let entity = idp.entity_id.clone();
    let valid = || LogoutRequestSpec::new(&entity, &our_slo(), "elodie-ent");
    let xml_of = |s: &LogoutRequestSpec| idp.logout_request_xml(s, None).expect("mint");
    let signed_query = |s: &LogoutRequestSpec| {
        idp.redirect_query("SAMLRequest", &xml_of(s), None, Some(LogoutAlg::RsaSha256))
            .expect("query")
    };

    // A replay: the first one, for nobody logged in yet, goes through.
    let replayed = signed_query(&valid());
    let res = app.get(&format!("/saml/slo?{replayed}")).await;
    assert_eq!(res.status().as_u16(), 303, "the first one is answered");

    login(&app, &app.client, &elodie(&app, "elodie-ent")).await;

    let stranger = common::fixture_idp(&entity, 1);
    let mut queries: Vec<(&str, String)> = vec![
        ("replayed", replayed),
        (
            "unsigned",
            idp.redirect_query("SAMLRequest", &xml_of(&valid()), None, None)
                .expect("q"),
        ),
        (
            "signed by another key",
            stranger
                .redirect_query(
                    "SAMLRequest",
                    &xml_of(&valid()),
                    None,
                    Some(LogoutAlg::RsaSha256),
                )
                .expect("q"),
        ),
        (
            "SHA-1",
            idp.redirect_query(
                "SAMLRequest",
                &xml_of(&valid()),
                None,
                Some(LogoutAlg::RsaSha1),
            )
            .expect("q"),
        ),
        ("garbage", "SAMLRequest=%21%21%21not-base64".into()),
        (
            "not deflated",
            format!("SAMLRequest={}", to_base64("<samlp:LogoutRequest/>")),
        ),
        ("nothing", String::new()),
        ("an unknown parameter only", "foo=bar".into()),
        ("oversized", format!("SAMLRequest={}", "A".repeat(20_000))),
        (
            "a deflate bomb",
            format!(
                "SAMLRequest={}",
                jointure::saml::logout::encode_redirect_message(&" ".repeat(1 << 20)).expect("enc")
            ),
        ),
        (
            "not a LogoutRequest",
            idp.redirect_query(
                "SAMLRequest",
                &app.mint(&elodie(&app, "elodie-ent")),
                None,
                Some(LogoutAlg::RsaSha256),
            )
            .expect("q"),
        ),
    ];
    // Signed, but wrong in what it says.
    let mut expired = valid();
    expired.issue_instant -= chrono::Duration::minutes(10);
    expired.not_on_or_after = None;
    queries.push(("issued 10 minutes ago", signed_query(&expired)));
    let mut future = valid();
    future.issue_instant += chrono::Duration::minutes(10);
    queries.push(("issued in the future", signed_query(&future)));
    let mut passed = valid();
    passed.not_on_or_after = Some(chrono::Utc::now() - chrono::Duration::minutes(5));
    queries.push(("NotOnOrAfter passed", signed_query(&passed)));
    let mut elsewhere = valid();
    elsewhere.destination = Some("https://other-sp.test/saml/slo".into());
    queries.push(("another Destination", signed_query(&elsewhere)));
    let mut unknown = valid();
    unknown.issuer = "https://evil.test/idp".into();
    queries.push(("unknown issuer", signed_query(&unknown)));
    // A valid signed query with the RelayState changed after signing.
    let tampered = idp
        .redirect_query(
            "SAMLRequest",
            &xml_of(&valid()),
            Some("a"),
            Some(LogoutAlg::RsaSha256),
        )
        .expect("q")
        .replace("RelayState=a", "RelayState=b");
    queries.push(("tampered RelayState", tampered));
    // The same parameter twice.
    let twice = signed_query(&valid());
    queries.push(("SAMLRequest twice", format!("{twice}&{twice}")));

    for (what, q) in &queries {
        let res = app.get(&format!("/saml/slo?{q}")).await;
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "{what}: {status}");
        assert_eq!(me_status(&app, &app.client).await, 200, "{what}");
    }

    // The HTTP-POST binding.
    let mut posts: Vec<(&str, String)> = vec![
        ("unsigned", xml_of(&valid())),
        (
            "SHA-1",
            idp.logout_request_xml(&valid(), Some(LogoutAlg::RsaSha1))
                .expect("mint"),
        ),
        (
            "signed by another key",
            stranger
                .logout_request_xml(&valid(), Some(LogoutAlg::RsaSha256))
                .expect("mint"),
        ),
        (
            "tampered after signing",
            idp.logout_request_xml(&valid(), Some(LogoutAlg::RsaSha256))
                .expect("mint")
                .replace(">elodie-ent<", ">camille-ent<"),
        ),
        (
            "with a comment",
            idp.logout_request_xml(&valid(), Some(LogoutAlg::RsaSha256))
                .expect("mint")
                .replace(">elodie-ent<", ">elodie-ent<!-- x --><"),
        ),
        (
            "with a DOCTYPE",
            format!(
                "<!DOCTYPE x [<!ENTITY a \"b\">]>{}",
                idp.logout_request_xml(&valid(), Some(LogoutAlg::RsaSha256))
                    .expect("mint")
            ),
        ),
        ("not XML", "hello".into()),
    ];
    let mut old = valid();
    old.issue_instant -= chrono::Duration::minutes(10);
    old.not_on_or_after = None;
    posts.push((
        "issued 10 minutes ago",
        idp.logout_request_xml(&old, Some(LogoutAlg::RsaSha256))
            .expect("mint"),
    ));
    for (what, xml) in &posts {
        let res = post_slo(&app, &app.client, "SAMLRequest", xml).await;
        let status = res.status().as_u16();
        assert!((400..500).contains(&status), "POST {what}: {status}");
        assert_eq!(me_status(&app, &app.client).await, 200, "POST {what}");
    }
    let huge = format!("SAMLRequest={}", "A".repeat(100_000));
    let res = app
        .client
        .post(format!("{}/saml/slo", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 413);
    let res = app
        .client
        .post(format!("{}/saml/slo", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("RelayState=x")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(me_status(&app, &app.client).await, 200);
    assert_eq!(user_sessions(&app).await, 1);
}

#[tokio::test]
async fn logout_without_the_csrf_token_is_refused_and_the_session_kept() {
    let app = TestApp::spawn().await;
    app.map("elodie-ent", "A-1").await;
    login(&app, &app.client, &elodie(&app, "elodie-ent")).await;
    let csrf = csrf_from(&app.get("/me").await.text().await.expect("me"));
    for pairs in [
        vec![],
        vec![("csrf_token", "wrong")],
        vec![("csrf_token", csrf.as_str()), ("csrf_token", csrf.as_str())],
    ] {
        let res = app.post_with(&app.client, "/logout", &pairs).await;
        assert_eq!(res.status().as_u16(), 403, "{pairs:?}");
        assert_eq!(me_status(&app, &app.client).await, 200, "{pairs:?}");
    }
    // With it, and an IdP without SingleLogoutService: a local logout.
    let res = app
        .post_with(&app.client, "/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/logged-out");
    assert_eq!(me_status(&app, &app.client).await, 401);
    let page = app.get("/logged-out").await;
    assert_eq!(page.status().as_u16(), 200);
    assert!(page
        .text()
        .await
        .expect("page")
        .contains("Vous êtes déconnecté"));
}

#[tokio::test]
async fn me_without_a_session_does_not_say_you_are_logged_in() {
    let app = TestApp::spawn().await;
    let res = app.get("/me").await;
    assert_eq!(res.status().as_u16(), 401);
    let html = res.text().await.expect("page");
    assert!(!html.contains("Vous êtes connecté"), "{html}");
    assert!(html.contains("pas connecté"), "{html}");
}

#[tokio::test]
async fn the_session_never_outlives_the_idps_session_not_on_or_after() {
    let app = TestApp::spawn().await;
    app.map("elodie-ent", "A-1").await;
    let mut spec = elodie(&app, "elodie-ent");
    let end = chrono::Utc::now() + chrono::Duration::seconds(120);
    spec.session_not_on_or_after = Some(end);
    let cookie = login(&app, &app.client, &spec).await;
    let max_age: i64 = cookie
        .split(';')
        .find_map(|p| p.trim().strip_prefix("Max-Age="))
        .and_then(|v| v.parse().ok())
        .expect("Max-Age");
    assert!(max_age > 0 && max_age <= 120, "{cookie}");
    let expires: i64 = sqlx::query_scalar("SELECT expires_at FROM sessions WHERE kind = 'user'")
        .fetch_one(&app.svc.pool)
        .await
        .expect("session");
    assert!(
        expires <= end.timestamp(),
        "{expires} > {}",
        end.timestamp()
    );
    assert_eq!(me_status(&app, &app.client).await, 200);

    // Already past: no session at all.
    let c = common::client();
    let mut spec = elodie(&app, "elodie-ent");
    spec.session_not_on_or_after = Some(chrono::Utc::now() - chrono::Duration::seconds(30));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &to_base64(&app.mint(&spec)))
        .finish();
    let res = c
        .post(format!("{}/saml/acs", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("acs");
    assert_eq!(res.status().as_u16(), 403);
    assert!(res.headers().get("set-cookie").is_none());
    assert_eq!(me_status(&app, &c).await, 401);
    assert_eq!(user_sessions(&app).await, 1);
}

#[tokio::test]
async fn the_sp_metadata_lists_the_single_logout_service_in_both_bindings() {
    let app = TestApp::spawn().await;
    let xml = app
        .get("/saml/metadata")
        .await
        .text()
        .await
        .expect("metadata");
    let slo = our_slo();
    for binding in ["HTTP-Redirect", "HTTP-POST"] {
        assert!(
            xml.contains(&format!(
                "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:{binding}\" Location=\"{slo}\"/>"
            )),
            "{xml}"
        );
    }
    let slo_at = xml.find("SingleLogoutService").expect("slo");
    assert!(slo_at < xml.find("NameIDFormat").expect("formats"));
    assert!(slo_at < xml.find("AssertionConsumerService").expect("acs"));
}
