//! The whole story in a real browser (Debian's Chromium, driven through
//! chromedriver over WebDriver): the demo IdP posts a homonym's login, the
//! failure page and its form, the admin desk resolves it, and the next login
//! lands on `/me`.

use jointure::config::Config;
use jointure::Application;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// A program on `PATH`, by the first of `names` found.
fn on_path(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver takes a port number, not a bound socket: the one place a
/// port is picked and then bound by another process.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Browser {
    /// None, with a message, when Chromium or chromedriver is not
    /// installed (scripts/setup installs both); CI sets
    /// `JOINTURE_REQUIRE_BROWSER=1` so that there it can never be skipped.
    async fn start() -> Option<Browser> {
        let (Some(chromedriver), Some(chromium)) = (
            on_path(&["chromedriver"]),
            on_path(&["chromium", "chromium-browser", "google-chrome"]),
        ) else {
            assert!(
                std::env::var("JOINTURE_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "Chromium and chromedriver are required here: run scripts/setup"
            );
            eprintln!("browser test skipped: Chromium or chromedriver is not on PATH (scripts/setup installs Debian's chromium and chromium-driver)");
            return None;
        };
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/setup installs Debian's chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "prefs": {"intl.accept_languages": "fr-FR,fr"},
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--lang=fr-FR",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let v = b.call("POST", "/session", Some(caps)).await;
        b.session = v["sessionId"].as_str().expect("session id").to_string();
        Some(b)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or(json!({})).to_string()),
        };
        let text = req
            .send()
            .await
            .expect("webdriver")
            .text()
            .await
            .expect("body");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert!(
            v["value"]["error"].is_null(),
            "webdriver {method} {path}: {text}"
        );
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    async fn find(&self, css: &str) -> String {
        // Pages load after navigation and form posts; give them a moment.
        for _ in 0..50 {
            let url = format!("{}/session/{}/element", self.base, self.session);
            let text = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(json!({"using": "css selector", "value": css}).to_string())
                .send()
                .await
                .expect("find")
                .text()
                .await
                .expect("body");
            let v: Value = serde_json::from_str(&text).expect("json");
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} on {}", self.source().await);
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call("POST", &format!("/element/{id}/click"), None)
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call("POST", &format!("/element/{id}/clear"), None)
            .await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.call("GET", "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn count(&self, css: &str) -> usize {
        self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
    }

    /// Waits until the page source contains `needle`.
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..100 {
            let s = self.source().await;
            if s.contains(needle) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("page never showed {needle:?}: {}", self.source().await);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn the_whole_story_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut c = Config::defaults();
    c.public_url = format!("http://127.0.0.1:{port}");
    c.listen = format!("127.0.0.1:{port}");
    c.database_path = dir.path().join("demo.db");
    c.sp_key = dir.path().join("sp.key");
    c.sp_cert = dir.path().join("sp.crt");
    crate::common::install_sp_keys(&c);
    let app = Application::build(c, true).await.expect("demo app");
    let password = app.demo_admin_password().expect("password").to_string();
    let base = format!("http://127.0.0.1:{port}");
    tokio::spawn(app.run());

    let Some(b) = Browser::start().await else {
        return;
    };
    // The demo IdP: Camille Martin, two pupils of that name and birth date.
    b.goto(&format!("{base}/demo/idp")).await;
    b.click("#demo-homonym").await;
    let page = b.wait_for("jointure-failure-kind").await;
    assert!(page.contains("content=\"ambiguous_identity\""), "{page}");
    assert!(
        page.contains("Plusieurs comptes correspondent"),
        "French page"
    );
    let reference = crate::common::meta(&page, "jointure-reference").expect("reference");

    // The form: children are for parents; add a row in place (JavaScript),
    // remove it, then send as the pupil.
    assert_eq!(
        b.count("fieldset.children[hidden]").await,
        1,
        "hidden for a pupil"
    );
    b.click("#role option[value=parent]").await;
    assert_eq!(
        b.count("fieldset.children[hidden]").await,
        0,
        "shown for a parent"
    );
    let rows = b.count(".child").await;
    b.click("button[name=add_child]").await;
    assert_eq!(
        b.count(".child").await,
        rows + 1,
        "a row added without a round trip"
    );
    b.click(".child:last-of-type button[name=remove_child]")
        .await;
    assert_eq!(b.count(".child").await, rows);
    b.click("#role option[value=student]").await;
    b.type_into("#class_name", "4C").await;
    b.type_into("#email", "camille@example.test").await;
    b.type_into("#message", "Je suis en 4C.").await;
    b.click("form.report button[type=submit]:not([name])").await;
    b.wait_for("Votre demande est envoyée").await;

    // The admin desk.
    b.goto(&format!("{base}/admin/login")).await;
    b.type_into("#email", jointure::demo::ADMIN_EMAIL).await;
    b.type_into("#password", &password).await;
    b.click("#sign-in").await;
    b.wait_for("Tableau de bord").await;
    b.goto(&format!(
        "{base}/admin/failures?status=open&kind=ambiguous_identity"
    ))
    .await;
    b.click("a.support").await;
    let detail = b.wait_for("Comptes candidats").await;
    assert!(
        detail.contains("Je suis en 4C."),
        "what the user declared is shown"
    );
    assert!(
        detail.contains("D-1004") && detail.contains("D-1005"),
        "both homonyms are candidates"
    );
    b.click("button.resolve").await;
    b.wait_for("id=\"notice\"").await;

    // The user's page says resolved; the next login goes through.
    b.goto(&format!("{base}/failures/{reference}")).await;
    let page = b.wait_for("jointure-failure-status").await;
    assert!(page.contains("content=\"resolved\""), "{page}");
    b.goto(&format!("{base}/demo/idp")).await;
    b.click("#demo-homonym").await;
    let me = b.wait_for("Vous êtes connecté").await;
    assert!(me.contains("Camille"));
    b.call("DELETE", "", None).await;
}
