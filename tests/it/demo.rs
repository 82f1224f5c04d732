//! `serve --demo`: every scenario of the demo IdP page reaches the outcome
//! it announces, through the same ACS a browser posts to.

use crate::common::{client, meta};
use jointure::config::Config;
use jointure::Application;

async fn spawn_demo() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = Config::defaults();
    c.listen = "127.0.0.1:0".into();
    c.database_path = dir.path().join("demo.db");
    c.sp_key = dir.path().join("sp.key");
    c.sp_cert = dir.path().join("sp.crt");
    crate::common::install_sp_keys(&c);
    let app = Application::build(c, true).await.expect("demo app");
    assert!(app.demo_admin_password().is_some_and(|p| p.len() >= 16));
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    (base, dir)
}

/// The hidden SAMLResponse of the auto-post page.
fn saml_response(html: &str) -> String {
    let needle = "name=\"SAMLResponse\" value=\"";
    let start = html.find(needle).expect("SAMLResponse field") + needle.len();
    let end = html[start..].find('"').expect("end") + start;
    html[start..end]
        .replace("&#43;", "+")
        .replace("&#x2b;", "+")
        .replace("&#61;", "=")
        .replace("&#x3d;", "=")
        .replace("&#47;", "/")
        .replace("&#x2f;", "/")
}

#[tokio::test]
async fn every_demo_scenario_reaches_its_announced_outcome() {
    let (base, _dir) = spawn_demo().await;
    let page = client()
        .get(format!("{base}/demo/idp"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    for s in jointure::demo::SCENARIOS {
        assert!(
            html.contains(&format!("id=\"demo-{}\"", s.id)),
            "button for {}",
            s.id
        );
        let c = client();
        let auto = c
            .post(format!("{base}/demo/idp/send"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("scenario={}", s.id))
            .send()
            .await
            .expect("send");
        assert_eq!(auto.status().as_u16(), 200, "{}", s.id);
        let form = auto.text().await.expect("auto-post page");
        assert!(
            form.contains("action=\"http://127.0.0.1:8080/saml/acs\""),
            "posts to the configured ACS"
        );
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &saml_response(&form))
            .finish();
        let res = c
            .post(format!("{base}/saml/acs"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("acs");
        if s.expect == "success" {
            assert_eq!(
                res.status().as_u16(),
                303,
                "{}: {}",
                s.id,
                res.text().await.unwrap_or_default()
            );
        } else {
            // Post, redirect, get: the failure page is its own GET.
            assert_eq!(res.status().as_u16(), 303, "{}", s.id);
            let location = res.headers()["location"]
                .to_str()
                .expect("location")
                .to_string();
            assert!(location.starts_with("/failures/"), "{}: {location}", s.id);
            let res = c
                .get(format!("{base}{location}"))
                .send()
                .await
                .expect("failure page");
            let status = res.status().as_u16();
            let page = res.text().await.expect("failure page");
            assert_eq!(
                meta(&page, "jointure-failure-kind").as_deref(),
                Some(s.expect),
                "{}",
                s.id
            );
            let kind: jointure::resolve::FailureKind = s.expect.parse().expect("kind");
            assert_eq!(
                status,
                jointure::web::error::failure_status(kind).as_u16(),
                "{}",
                s.id
            );
        }
    }
}

#[tokio::test]
async fn every_failure_kind_has_a_demo_scenario() {
    for kind in jointure::resolve::FailureKind::ALL {
        assert!(
            jointure::demo::SCENARIOS
                .iter()
                .any(|s| s.expect == kind.as_str()),
            "no demo scenario for {kind}"
        );
    }
}

#[tokio::test]
async fn the_demo_idp_does_not_exist_without_demo() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = Config::defaults();
    c.listen = "127.0.0.1:0".into();
    c.database_path = dir.path().join("j.db");
    c.sp_key = dir.path().join("sp.key");
    c.sp_cert = dir.path().join("sp.crt");
    crate::common::install_sp_keys(&c);
    let app = Application::build(c, false).await.expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    let res = client()
        .get(format!("{base}/demo/idp"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 404);
    let res = client()
        .post(format!("{base}/demo/idp/send"))
        .body("scenario=match")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 404);
}
