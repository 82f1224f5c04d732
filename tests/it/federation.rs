//! Federation metadata that looks after itself (`[[idp]] metadata_url`): a
//! local HTTP server plays the federation; its document is signed with the
//! federation's key (fixture 2); the IdP's signing key rolls over from
//! fixture 0 to fixture 1.

use crate::common::*;
use jointure::config::IdpConfig;
use jointure::saml::mint::{random_id, signature_template, MintingIdp};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const IDP: &str = "https://idp.test/saml";

/// What the federation's server answers: a status and a body.
type Served = Arc<Mutex<(u16, String)>>;

/// Serves `served` at `/metadata.xml` on a free loopback port.
async fn federation_server(served: Served) -> String {
    let app = axum::Router::new().route(
        "/metadata.xml",
        axum::routing::get(move || {
            let served = served.clone();
            async move {
                let (status, body) = served.lock().expect("lock").clone();
                (
                    axum::http::StatusCode::from_u16(status).expect("status"),
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/metadata.xml",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn federation() -> MintingIdp {
    fixture_idp("https://federation.test", 2)
}

fn federation_cert() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/idp-2.crt")
}

/// The federation's document listing `idps`, valid for `valid_hours`,
/// signed by the federation.
fn signed_document(idps: &[&MintingIdp], valid_hours: i64) -> String {
    let id = random_id();
    let until =
        (chrono::Utc::now() + chrono::Duration::hours(valid_hours)).format("%Y-%m-%dT%H:%M:%SZ");
    let entities: String = idps
        .iter()
        .map(|i| i.metadata_xml("https://idp.test/sso"))
        .collect();
    let xml = format!(
        "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" ID=\"{id}\" validUntil=\"{until}\" cacheDuration=\"PT1H\"><!-- the federation's aggregate -->{}{entities}</md:EntitiesDescriptor>",
        signature_template(&id, false)
    );
    federation().sign(&xml).expect("sign")
}

/// A jointure whose one `[[idp]]` is the federation at `url`, its
/// database (and the metadata cache beside it) in `dir`.
async fn spawn_following(url: &str, dir: &std::path::Path) -> Result<TestApp, String> {
    let (url, db) = (url.to_string(), dir.join("jointure.db"));
    TestApp::try_spawn_with(move |c| {
        let mut idp = IdpConfig::with_metadata("unused".into());
        idp.metadata = None;
        idp.metadata_url = Some(url);
        idp.metadata_signing_cert = Some(federation_cert());
        idp.schools = Some(jointure::config::TrustedSchools::All);
        c.idps = vec![idp];
        c.database_path = db;
    })
    .await
}

/// A valid response for Élodie signed by `idp`.
fn elodie_by(app: &TestApp, idp: &MintingIdp, subject: &str) -> String {
    let spec = ent_of(idp, subject, "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let _ = app;
    idp.response(&spec).expect("mint")
}

#[tokio::test]
async fn federation_metadata_is_verified_refreshed_and_a_key_rollover_is_taken() {
    let (old_key, new_key) = (fixture_idp(IDP, 0), fixture_idp(IDP, 1));
    let served: Served = Arc::new(Mutex::new((200, signed_document(&[&old_key], 48))));
    let url = federation_server(served.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_following(&url, dir.path()).await.expect("starts");
    app.expect_login(&elodie_by(&app, &old_key, "fed-1"), "A-1")
        .await;

    // The IdP rolls its key over; the federation publishes it.
    *served.lock().expect("lock") = (200, signed_document(&[&new_key], 48));
    let next = app.svc.refresh_feeds(Duration::MAX).await.expect("a feed");
    assert!(
        next <= Duration::from_secs(3600),
        "cacheDuration PT1H: {next:?}"
    );
    app.expect_login(&elodie_by(&app, &new_key, "fed-1"), "A-1")
        .await;
    app.expect_failure(
        &elodie_by(&app, &old_key, "fed-1"),
        "invalid_signature",
        403,
    )
    .await;

    // Documents that must not be taken: the copy in use stays.
    let good = signed_document(&[&old_key], 48);
    let tampered = good.replace("https://idp.test/sso", "https://evil.test/sso");
    assert_ne!(tampered, good);
    let unsigned = {
        let start = good.find("<ds:Signature").expect("signature");
        let end = good.find("</ds:Signature>").expect("end") + "</ds:Signature>".len();
        format!("{}{}", &good[..start], &good[end..])
    };
    for (status, body, what) in [
        (200, tampered, "tampered"),
        (200, unsigned, "unsigned"),
        (200, signed_document(&[&old_key], -1), "expired"),
        (200, "<not xml".to_string(), "garbage"),
        (503, String::new(), "down"),
    ] {
        *served.lock().expect("lock") = (status, body);
        app.svc.refresh_feeds(Duration::MAX).await;
        app.expect_login(&elodie_by(&app, &new_key, "fed-1"), "A-1")
            .await;
        let cached = std::fs::read_to_string(cache_file(dir.path())).expect("cache");
        assert!(
            cached.contains(&new_key.cert_base64()),
            "{what}: cache kept"
        );
    }
}

/// The one cached copy in `dir`.
fn cache_file(dir: &std::path::Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir.join("metadata-cache"))
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[tokio::test]
async fn a_start_with_the_federation_down_uses_the_last_good_copy() {
    let key = fixture_idp(IDP, 0);
    let served: Served = Arc::new(Mutex::new((200, signed_document(&[&key], 48))));
    let url = federation_server(served.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    drop(
        spawn_following(&url, dir.path())
            .await
            .expect("first start"),
    );
    *served.lock().expect("lock") = (503, String::new());
    let app = spawn_following(&url, dir.path())
        .await
        .expect("starts from the cache");
    app.expect_login(&elodie_by(&app, &key, "fed-cache"), "A-1")
        .await;
    // Without a cached copy, a federation that does not answer is a start
    // error that says so.
    let empty = tempfile::tempdir().expect("tempdir");
    let e = spawn_following(&url, empty.path())
        .await
        .err()
        .expect("refused");
    assert!(e.contains("503") && e.contains("cached copy"), "{e}");
}

#[tokio::test]
async fn metadata_check_prints_what_would_be_trusted() {
    let key = fixture_idp(IDP, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("federation.xml");
    std::fs::write(&good, signed_document(&[&key], 48)).expect("write");
    let bad = dir.path().join("tampered.xml");
    std::fs::write(
        &bad,
        signed_document(&[&key], 48).replace("https://idp.test/sso", "https://evil.test/sso"),
    )
    .expect("write");
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_jointure"))
            .args(["metadata", "check"])
            .arg(file)
            .arg("--signing-cert")
            .arg(federation_cert())
            .env(
                "JOINTURE_DATABASE_URL",
                format!("sqlite://{}/j.db", dir.path().display()),
            )
            .output()
            .expect("run")
    };
    let out = run(&good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("signature: verified"), "{stdout}");
    assert!(
        stdout.contains(IDP) && stdout.contains("https://idp.test/sso"),
        "{stdout}"
    );
    assert!(stdout.contains("SHA-256"), "{stdout}");
    let out = run(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature"));
}
