//! Interoperability with a real IdP: SimpleSAMLphp 1.19 from Debian
//! (`simplesamlphp php-cli php-xml`), started by
//! `tests/interop/simplesamlphp/start` with `php -S` on a free loopback port,
//! with the SP's real metadata. Its responses are posted to a running
//! jointure and every outcome checked in the database. Skipped with a
//! message when the packages are missing, unless
//! `JOINTURE_REQUIRE_INTEROP=1` (CI), where that is a failure.

use crate::common::*;
use jointure::config::IdpConfig;
use std::path::{Path, PathBuf};
use std::process::Command;

const HARNESS: &str = "tests/interop/simplesamlphp";

/// A running SimpleSAMLphp IdP.
struct Ssp {
    dir: tempfile::TempDir,
    base: String,
    metadata: PathBuf,
}

impl Drop for Ssp {
    fn drop(&mut self) {
        let _ = Command::new(format!("{HARNESS}/stop"))
            .arg(self.dir.path().join("idp"))
            .status();
    }
}

fn available() -> bool {
    let installed = Path::new("/usr/share/simplesamlphp/www/_include.php").exists()
        && Command::new("php")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var("JOINTURE_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "JOINTURE_REQUIRE_INTEROP=1 but SimpleSAMLphp is not installed (scripts/setup installs simplesamlphp php-cli php-xml)"
        );
        eprintln!("skipped: SimpleSAMLphp is not installed (apt-get install simplesamlphp php-cli php-xml, or run scripts/setup)");
    }
    installed
}

/// The IdP's entity ID, fixed so that a restart on another port is the
/// same IdP to jointure.
const SSP_ENTITY_ID: &str = "https://ssp.test/idp";

/// Starts the IdP for `sp_metadata` with `options` (PHP array entries
/// merged over the SP's remote entry).
fn start_ssp(dir: tempfile::TempDir, sp_metadata: &str, options: &str) -> Ssp {
    let (base, metadata) = run_start(dir.path(), sp_metadata, options);
    Ssp {
        dir,
        base,
        metadata,
    }
}

impl Ssp {
    /// Restarts with other options; the key and the entity ID stay.
    fn restart(&mut self, sp_metadata: &str, options: &str) {
        (self.base, self.metadata) = run_start(self.dir.path(), sp_metadata, options);
    }
}

fn run_start(dir: &Path, sp_metadata: &str, options: &str) -> (String, PathBuf) {
    let sp = dir.join("sp-metadata.xml");
    std::fs::write(&sp, sp_metadata).expect("sp metadata");
    let opts = dir.join("options.php");
    std::fs::write(&opts, format!("<?php\nreturn [{options}];\n")).expect("options");
    let out = Command::new(format!("{HARNESS}/start"))
        .env("SSP_IDP_ENTITY_ID", SSP_ENTITY_ID)
        .arg(dir.join("idp"))
        .arg("auto")
        .arg(&sp)
        .arg(&opts)
        .output()
        .expect("start SimpleSAMLphp");
    assert!(
        out.status.success(),
        "SimpleSAMLphp did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let value = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} in {stdout}"))
            .to_string()
    };
    (value("IDP_BASE"), PathBuf::from(value("IDP_METADATA")))
}

/// A jointure whose only IdP is a SimpleSAMLphp started with `options`.
async fn pair(options: &str, tweak: impl FnOnce(&mut IdpConfig)) -> (TestApp, Ssp) {
    // The SP's metadata is fixed by its fixture keys and public URL.
    let probe = TestApp::spawn().await;
    let sp_metadata = probe
        .get("/saml/metadata")
        .await
        .text()
        .await
        .expect("metadata");
    let ssp = start_ssp(tempfile::tempdir().expect("tempdir"), &sp_metadata, options);
    let metadata = ssp.metadata.clone();
    let app = TestApp::spawn_with(move |c| {
        let mut idp = IdpConfig::with_metadata(metadata);
        tweak(&mut idp);
        c.idps = vec![idp];
    })
    .await;
    // Léa Martin, the harness's `pupil`.
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    app.add_account(&mut conn, ("P-1", UAI, "Martin", "Léa", "2011-03-14", true))
        .await;
    (app, ssp)
}

/// What the IdP would post after `user` logs in.
struct Posted {
    response: String,
    relay_state: Option<String>,
    xml: String,
}

fn login(ssp: &Ssp, user: &str, sp_initiated: Option<&str>) -> Posted {
    let mut cmd = Command::new(format!("{HARNESS}/login"));
    cmd.arg(&ssp.base).arg(sp_entity_id()).arg(user).arg(user);
    cmd.arg("--cookie-jar")
        .arg(ssp.dir.path().join(format!("{user}.cookies")));
    if let Some(url) = sp_initiated {
        cmd.arg("--sp-initiated").arg(url);
    }
    let out = cmd.output().expect("login");
    assert!(
        out.status.success(),
        "login failed: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["acs_url"].as_str(), Some(acs_url().as_str()));
    Posted {
        response: v["SAMLResponse"]
            .as_str()
            .expect("SAMLResponse")
            .to_string(),
        relay_state: v["RelayState"].as_str().map(str::to_string),
        xml: v["saml_response_xml"].as_str().unwrap_or("").to_string(),
    }
}

async fn post(app: &TestApp, p: &Posted) -> reqwest::Response {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("SAMLResponse", &p.response);
    if let Some(r) = &p.relay_state {
        form.append_pair("RelayState", r);
    }
    app.post_form(form.finish()).await
}

/// The subject mapped to `account` at the SimpleSAMLphp IdP.
async fn mapped_subject(app: &TestApp, account: &str) -> String {
    sqlx::query_scalar("SELECT subject FROM mappings WHERE idp_entity_id = ? AND account_id = ?")
        .bind(SSP_ENTITY_ID)
        .bind(account)
        .fetch_one(&app.svc.pool)
        .await
        .expect("mapped")
}

async fn expect_logged_in(app: &TestApp, p: &Posted, account: &str) {
    let res = post(app, p).await;
    assert_eq!(
        res.status().as_u16(),
        303,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let me = app.get("/me").await.text().await.expect("me");
    assert!(
        me.contains(&format!("<dd id=\"account-id\">{account}</dd>")),
        "{me}"
    );
}

#[tokio::test]
async fn idp_initiated_logins_in_every_signing_shape() {
    if !available() {
        return;
    }
    let sp_metadata;
    let (app, mut ssp) = pair("", |_| {}).await;
    {
        // SimpleSAMLphp's default: Response and Assertion signed, a
        // persistent NameID, attributes by plain name.
        let p = login(&ssp, "pupil", None);
        assert!(p.xml.contains("nameid-format:persistent"), "{}", p.xml);
        expect_logged_in(&app, &p, "P-1").await;
        // Mapped automatically (name and birth date), by its persistent NameID.
        let subject: (String,) =
            sqlx::query_as("SELECT subject FROM mappings WHERE account_id = 'P-1'")
                .fetch_one(&app.svc.pool)
                .await
                .expect("mapped");
        assert_eq!(subject.0.len(), 40, "{}", subject.0);
        // The same response again is a replay.
        let res = post(&app, &p).await;
        app.check_failure(res, "replayed", 403).await;
        sp_metadata = app.get("/saml/metadata").await.text().await.expect("md");
    }
    for options in [
        "'saml20.sign.response' => true, 'saml20.sign.assertion' => false",
        "'saml20.sign.response' => false, 'saml20.sign.assertion' => true",
        "'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512'",
    ] {
        ssp.restart(&sp_metadata, options);
        let p = login(&ssp, "pupil", None);
        expect_logged_in(&app, &p, "P-1").await;
    }
}

#[tokio::test]
async fn unsigned_and_sha1_signed_responses_are_refused() {
    if !available() {
        return;
    }
    for (options, detail) in [
        (
            "'saml20.sign.response' => false, 'saml20.sign.assertion' => false",
            "neither",
        ),
        (
            "'signature.algorithm' => 'http://www.w3.org/2000/09/xmldsig#rsa-sha1'",
            "sha1",
        ),
    ] {
        let (app, ssp) = pair(options, |_| {}).await;
        let p = login(&ssp, "pupil", None);
        let f = app
            .check_failure(post(&app, &p).await, "invalid_signature", 403)
            .await;
        assert!(f.detail.to_lowercase().contains(detail), "{}", f.detail);
        assert_eq!(app.mapping_count().await, 0);
    }
}

#[tokio::test]
async fn a_transient_name_id_is_a_missing_subject_with_a_hint() {
    if !available() {
        return;
    }
    let (app, ssp) = pair(
        "'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient'",
        |_| {},
    )
    .await;
    let p = login(&ssp, "pupil", None);
    assert!(p.xml.contains("nameid-format:transient"), "{}", p.xml);
    let f = app
        .check_failure(post(&app, &p).await, "missing_subject", 422)
        .await;
    assert!(f.detail.contains("transient"), "{}", f.detail);
    assert_eq!(f.subject, None);
    assert_eq!(
        app.mapping_count().await,
        0,
        "a one-time value is never mapped"
    );
}

#[tokio::test]
async fn oid_attribute_names_and_an_attribute_subject() {
    if !available() {
        return;
    }
    let (app, ssp) = pair(
        "'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri', 'authproc' => [90 => ['class' => 'core:AttributeMap', 'name2oid']], 'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient'",
        |idp| idp.subject = "uid".into(),
    )
    .await;
    let p = login(&ssp, "pupil", None);
    assert!(
        p.xml.contains("urn:oid:0.9.2342.19200300.100.1.1"),
        "{}",
        p.xml
    );
    assert!(!p.xml.contains("FriendlyName"), "{}", p.xml);
    expect_logged_in(&app, &p, "P-1").await;
    assert_eq!(mapped_subject(&app, "P-1").await, "pupil");
}

#[tokio::test]
async fn encrypted_assertions_and_name_ids_from_simplesamlphp() {
    if !available() {
        return;
    }
    for (options, what) in [
        // AES-128-CBC in an unsigned Response, the Assertion signed inside.
        (
            "'assertion.encryption' => true, 'saml20.sign.response' => false, 'saml20.sign.assertion' => true",
            "EncryptedAssertion",
        ),
        ("'assertion.encryption' => true", "EncryptedAssertion"),
        ("'nameid.encryption' => true", "EncryptedID"),
    ] {
        let (app, ssp) = pair(options, |_| {}).await;
        let p = login(&ssp, "pupil", None);
        assert!(p.xml.contains(what), "{what}: {}", p.xml);
        if what == "EncryptedAssertion" {
            assert!(!p.xml.contains("Léa"), "encrypted: {}", p.xml);
        }
        expect_logged_in(&app, &p, "P-1").await;
    }
}

#[tokio::test]
async fn sp_initiated_login_through_simplesamlphp() {
    if !available() {
        return;
    }
    let (app, ssp) = pair("", |_| {}).await;
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("idp", SSP_ENTITY_ID)
        .append_pair("relay", "/me?from=sp")
        .finish();
    let res = app.get(&format!("/saml/login?{q}")).await;
    assert_eq!(res.status().as_u16(), 303);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with(&ssp.base), "{location}");
    // SimpleSAMLphp checks our AuthnRequest's signature (our metadata says
    // AuthnRequestsSigned) and answers it.
    let p = login(&ssp, "pupil", Some(&location));
    assert!(p.xml.contains("InResponseTo"), "{}", p.xml);
    let res = post(&app, &p).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"].to_str().ok(), Some("/me?from=sp"));
}

/// Runs the harness's `logout` with `args`; its JSON answer.
fn ssp_logout(ssp: &Ssp, args: &[&str]) -> serde_json::Value {
    let out = Command::new(format!("{HARNESS}/logout"))
        .args(args)
        .arg("--cookie-jar")
        .arg(ssp.dir.path().join("pupil.cookies"))
        .output()
        .expect("logout");
    assert!(
        out.status.success(),
        "logout failed: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The path and query of one of our URLs (the IdP sends the browser to
/// https://sp.test/…; the test server is on loopback).
fn ours(url: &str) -> String {
    let u = url::Url::parse(url).expect("url");
    assert_eq!(u.host_str(), Some("sp.test"), "{url}");
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

async fn logged_in(app: &TestApp) -> bool {
    let me = app.get("/me").await;
    me.status().as_u16() == 200 && me.text().await.unwrap_or_default().contains("account-id")
}

#[tokio::test]
async fn sp_initiated_logout_with_simplesamlphp() {
    if !available() {
        return;
    }
    // The IdP checks our signature on logout messages.
    let (app, ssp) = pair("'validate.logout' => true", |_| {}).await;
    expect_logged_in(&app, &login(&ssp, "pupil", None), "P-1").await;
    let me = app.get("/me").await.text().await.expect("me");
    let csrf = csrf_from(&me);
    let res = app
        .post_with(&app.client, "/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let to_idp = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(
        to_idp.contains("SAMLRequest=") && to_idp.contains("Signature="),
        "{to_idp}"
    );
    assert!(!logged_in(&app).await, "the local session ended at once");
    // SimpleSAMLphp verifies our LogoutRequest, ends its session and answers.
    let answer = ssp_logout(&ssp, &["--follow", &to_idp]);
    let back = answer["url"].as_str().expect("LogoutResponse redirect");
    assert!(answer["SAMLResponse"].is_string(), "{answer}");
    let res = app.get(&ours(back)).await;
    assert_eq!(res.status().as_u16(), 200, "our LogoutResponse taken");
    // Taken once.
    let res = app.get(&ours(back)).await;
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[tokio::test]
async fn idp_initiated_logout_with_simplesamlphp() {
    if !available() {
        return;
    }
    let (app, ssp) = pair("'validate.logout' => true", |_| {}).await;
    expect_logged_in(&app, &login(&ssp, "pupil", None), "P-1").await;
    let request = ssp_logout(&ssp, &[&ssp.base, "--return-to", "https://portal.test/bye"]);
    let to_us = request["url"].as_str().expect("LogoutRequest redirect");
    assert!(request["SAMLRequest"].is_string(), "{request}");
    let res = app.get(&ours(to_us)).await;
    assert_eq!(
        res.status().as_u16(),
        303,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let answer = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(!logged_in(&app).await, "every session of the person ended");
    // SimpleSAMLphp verifies our signed LogoutResponse and finishes.
    let done = ssp_logout(&ssp, &["--follow", &answer]);
    assert_eq!(done["done"].as_bool(), Some(true), "{done}");
    assert_eq!(
        done["url"].as_str(),
        Some("https://portal.test/bye"),
        "{done}"
    );
}
