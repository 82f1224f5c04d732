//! In a real browser (Debian's Chromium, driven through chromedriver over
//! WebDriver): the whole story (the demo IdP posts a homonym's login, the
//! failure page and its form, the admin desk resolves it, and the next login
//! lands on `/me`), and every user page in each language at phone, desktop
//! and 320 px width: no sideways scrolling, an axe-core scan with no serious
//! or critical violation, Enter sending the form, and screenshots kept under
//! `target/screenshots/`.

use crate::common::free_port;
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
        // chromedriver takes a port number, not a bound socket.
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

    /// Runs a script in the page (WebDriver "execute script") and returns
    /// its value.
    async fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Runs an asynchronous script: its last argument is the callback.
    async fn execute_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// A Chrome DevTools command, through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    /// Emulates a viewport of `width`×`height` CSS pixels; `mobile` also
    /// honours the page's viewport meta tag as a phone does.
    async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// Saves a screenshot of the whole page as `name`.png.
    async fn screenshot(&self, dir: &std::path::Path, name: &str) {
        use base64::Engine;
        let v = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["data"].as_str().expect("screenshot data"))
            .expect("png");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Presses Enter in the field `css`.
    async fn press_enter(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": "\u{E007}"})),
        )
        .await;
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

/// `serve --demo` on a port of its own (the demo IdP posts to the
/// configured public URL): its base URL, the admin's password, its folder.
async fn spawn_demo(
    smtp_port: Option<u16>,
) -> (
    String,
    String,
    tempfile::TempDir,
    std::sync::Arc<jointure::Service>,
) {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut c = Config::defaults();
    c.smtp_url = smtp_port.map(|p| format!("smtp://127.0.0.1:{p}"));
    c.public_url = format!("http://127.0.0.1:{port}");
    c.listen = format!("127.0.0.1:{port}");
    c.database_path = dir.path().join("demo.db");
    c.sp_key = dir.path().join("sp.key");
    c.sp_cert = dir.path().join("sp.crt");
    crate::common::install_sp_keys(&c);
    let app = Application::build(c, true).await.expect("demo app");
    let password = app.demo_admin_password().expect("password").to_string();
    let base = format!("http://127.0.0.1:{port}");
    let svc = app.service();
    tokio::spawn(app.run());
    (base, password, dir, svc)
}

#[tokio::test]
async fn the_whole_story_in_a_real_browser() {
    // A real SMTP server, to see the "it was fixed" e-mail arrive.
    let smtp = crate::mail::smtpd_available().then(free_port);
    let (base, password, _dir, svc) = spawn_demo(smtp).await;

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
    let rows = b.count("fieldset.child").await;
    b.click("button[name=add_child]").await;
    assert_eq!(
        b.count("fieldset.child").await,
        rows + 1,
        "a row added without a round trip"
    );
    assert_eq!(
        b.count(&format!("#child-{}-last_name", rows + 1)).await,
        1,
        "its fields numbered"
    );
    b.click("fieldset.child:last-of-type button[name=remove_child]")
        .await;
    assert_eq!(b.count("fieldset.child").await, rows);
    b.click("#role option[value=student]").await;
    b.type_into("#class_name", "4C").await;
    b.type_into("#email", "camille@example.test").await;
    b.type_into("#message", "Je suis en 4C.").await;
    b.click("#send").await;
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
    // The e-mail the form asked for arrives (sent now rather than at the
    // background task's next round).
    if let Some(port) = smtp {
        let sink = crate::mail::SmtpSink::start(port).await;
        let now = chrono::Utc::now().timestamp();
        assert_eq!(jointure::mail::deliver_due(&svc, now).await.expect("db"), 1);
        let mail = sink.received();
        assert!(mail.contains("camille@example.test"), "{mail}");
        assert!(mail.contains(&reference), "the link to the page: {mail}");
    }

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

/// axe-core as `scripts/setup` installs it (npm, under `target/axe`).
fn axe_source() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/axe/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) => {
            assert!(
                std::env::var("JOINTURE_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "axe-core is required here: run scripts/setup (it installs {})",
                path.display()
            );
            eprintln!(
                "accessibility scan skipped: {} is missing (scripts/setup installs axe-core from npm)",
                path.display()
            );
            None
        }
    }
}

/// The sizes every user page is checked at: (name, width, height, mobile).
const SIZES: [(&str, u32, u32, bool); 3] = [
    ("phone", 390, 844, true),
    ("desktop", 1280, 900, false),
    ("narrow", 320, 640, true),
];

/// Checks the loaded page at every size: no sideways scroll, no serious or
/// critical axe violation; takes a screenshot of each. Returns the
/// problems found, to report them all at once.
async fn check_page(b: &Browser, axe: &str, shots: &std::path::Path, name: &str) -> Vec<String> {
    check_page_at(b, axe, shots, name, &SIZES).await
}

/// [`check_page`] at the given sizes.
async fn check_page_at(
    b: &Browser,
    axe: &str,
    shots: &std::path::Path,
    name: &str,
    sizes: &[(&str, u32, u32, bool)],
) -> Vec<String> {
    let mut problems = Vec::new();
    let injected = b
        .execute(&format!("{axe}\n;return typeof window.axe;"))
        .await;
    assert_eq!(injected, json!("object"), "axe-core injected");
    for &(size, width, height, mobile) in sizes {
        b.viewport(width, height, mobile).await;
        let m = b
            .execute(
                "var w = window.innerWidth; var wide = [];
                 document.querySelectorAll('body *').forEach(function (e) {
                   var r = e.getBoundingClientRect();
                   if (r.right > w + 0.5 && wide.length < 5) wide.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '') + ' ' + Math.round(r.right));
                 });
                 return [document.documentElement.scrollWidth, w, wide];",
            )
            .await;
        let (scroll, inner) = (m[0].as_u64().unwrap_or(0), m[1].as_u64().unwrap_or(0));
        if inner != u64::from(width) {
            // A phone widens its layout viewport to fit a page too wide.
            problems.push(format!(
                "{name} at {size}: laid out {inner} px wide on a {width} px screen; too wide: {}",
                m[2]
            ));
        } else if scroll > inner {
            problems.push(format!(
                "{name} at {size}: {scroll} px wide on a {inner} px screen; too wide: {}",
                m[2]
            ));
        }
        b.screenshot(shots, &format!("{name}-{size}")).await;
        let found = b
            .execute_async(
                "var done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(function (r) {
                   done(r.violations.filter(function (v) {
                     return v.impact === 'serious' || v.impact === 'critical';
                   }).map(function (v) {
                     return v.impact + ' ' + v.id + ': ' + v.help + ' — ' + v.nodes.slice(0, 3).map(function (n) { return n.target.join(' '); }).join(' | ');
                   }));
                 }, function (e) { done(['axe failed: ' + e]); });",
            )
            .await;
        for v in found.as_array().into_iter().flatten() {
            problems.push(format!(
                "{name} at {size}: {}",
                v.as_str().unwrap_or_default()
            ));
        }
    }
    problems
}

#[tokio::test]
async fn every_user_page_fits_a_phone_and_passes_axe_in_every_language() {
    let (base, _password, _dir, _svc) = spawn_demo(None).await;
    let Some(b) = Browser::start().await else {
        return;
    };
    let Some(axe) = axe_source() else {
        b.call("DELETE", "", None).await;
        return;
    };
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("target/screenshots");
    b.call("POST", "/timeouts", Some(json!({"script": 120_000})))
        .await;

    // One failure of every kind, through the demo IdP's buttons.
    let mut failures = Vec::new();
    for s in jointure::demo::SCENARIOS
        .iter()
        .filter(|s| s.expect != "success")
    {
        b.goto(&format!("{base}/demo/idp")).await;
        b.click(&format!("#demo-{}", s.id)).await;
        let page = b.wait_for("jointure-failure-kind").await;
        assert_eq!(
            crate::common::meta(&page, "jointure-failure-kind").as_deref(),
            Some(s.expect),
            "{}",
            s.id
        );
        let reference = crate::common::meta(&page, "jointure-reference").expect("reference");
        failures.push((s.expect, reference));
    }
    assert_eq!(failures.len(), jointure::resolve::FailureKind::ALL.len());
    let mismatch = failures
        .iter()
        .find(|(k, _)| *k == "identity_mismatch")
        .map(|(_, r)| r.clone())
        .expect("a mismatch");

    let mut problems = Vec::new();
    for lang in ["fr", "nl", "en"] {
        for (kind, reference) in &failures {
            b.goto(&format!("{base}/failures/{reference}?lang={lang}"))
                .await;
            b.wait_for("jointure-failure-kind").await;
            assert_eq!(
                b.execute("return document.documentElement.lang").await,
                json!(lang)
            );
            problems.extend(check_page(&b, &axe, &shots, &format!("{lang}-{kind}")).await);
        }
        // Long values (a federation's entity ID, a long address) wrap at
        // 320 px; the support code stays on one line.
        b.goto(&format!("{base}/failures/{mismatch}?lang={lang}"))
            .await;
        b.find("#support-code").await;
        b.viewport(320, 640, true).await;
        let fits = b
            .execute(
                "document.querySelectorAll('.support dd').forEach(function (d) {
                   d.textContent = 'https://federation.example.org/idp/shibboleth/' + 'x'.repeat(120);
                 });
                 return [document.documentElement.scrollWidth <= window.innerWidth,
                         document.getElementById('support-code').getClientRects().length];",
            )
            .await;
        assert_eq!(
            fits,
            json!([true, 1]),
            "{lang}: long values wrap, the code does not"
        );
        b.goto(&format!("{base}/me?lang={lang}")).await;
        b.wait_for("</main>").await;
        problems.extend(check_page(&b, &axe, &shots, &format!("{lang}-me")).await);

        // The form with errors, sent with Enter from a field: a parent who
        // names no child and left the last name out.
        b.viewport(390, 844, true).await;
        b.goto(&format!("{base}/failures/{mismatch}?lang={lang}"))
            .await;
        b.find("#last_name").await;
        let rows = b.count("fieldset.child").await;
        b.type_into("#last_name", "").await;
        b.click("#role option[value=parent]").await;
        assert_eq!(b.count("fieldset.children[hidden]").await, 0, "shown live");
        b.press_enter("#first_name").await;
        b.wait_for("id=\"error-summary\"").await;
        assert_eq!(
            b.count("fieldset.child").await,
            rows,
            "Enter sent the form; it did not add or remove a child"
        );
        assert_eq!(
            b.execute("return document.activeElement && document.activeElement.id")
                .await,
            json!("error-summary"),
            "focus is on the error summary"
        );
        assert!(b.count("a[href='#last_name']").await == 1);
        assert!(b.count("a[href='#child-1-last_name']").await == 1);
        problems.extend(check_page(&b, &axe, &shots, &format!("{lang}-form-errors")).await);

        // Corrected and sent: the "sent" page.
        b.viewport(390, 844, true).await;
        b.type_into("#last_name", "Inconnu").await;
        b.click("#role option[value=student]").await;
        assert_eq!(
            b.count("fieldset.children[hidden]").await,
            1,
            "hidden again"
        );
        b.type_into("#email", "jean@example.test").await;
        b.click("#send").await;
        b.wait_for("id=\"follow-up\"").await;
        problems.extend(check_page(&b, &axe, &shots, &format!("{lang}-sent")).await);
    }
    b.call("DELETE", "", None).await;
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The desk's pages, as a school secretary meets them on a laptop or a
/// phone: login, dashboard, list, a failure's detail, the import page, the
/// audit log, in French and Dutch; no serious or critical axe violation and
/// no sideways scrolling of the page (wide tables scroll inside their own
/// region).
#[tokio::test]
async fn every_desk_page_passes_axe_on_a_laptop_and_a_phone() {
    let (base, password, _dir, _svc) = spawn_demo(None).await;
    let Some(b) = Browser::start().await else {
        return;
    };
    let Some(axe) = axe_source() else {
        b.call("DELETE", "", None).await;
        return;
    };
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("target/screenshots");
    b.call("POST", "/timeouts", Some(json!({"script": 120_000})))
        .await;
    // A failure with a sent form, for the detail page.
    b.goto(&format!("{base}/demo/idp")).await;
    b.click("#demo-homonym").await;
    let page = b.wait_for("jointure-failure-kind").await;
    let reference = crate::common::meta(&page, "jointure-reference").expect("reference");
    b.click("#role option[value=student]").await;
    b.type_into("#class_name", "4C").await;
    b.type_into("#email", "camille@example.test").await;
    b.click("#send").await;
    b.wait_for("status-sent").await;

    let desk_sizes = [SIZES[0], SIZES[1]];
    let mut problems = Vec::new();
    b.goto(&format!("{base}/admin/login?lang=fr")).await;
    b.find("#sign-in").await;
    problems.extend(check_page_at(&b, &axe, &shots, "desk-fr-login", &desk_sizes).await);
    b.viewport(1280, 900, false).await;
    b.type_into("#email", jointure::demo::ADMIN_EMAIL).await;
    b.type_into("#password", &password).await;
    b.click("#sign-in").await;
    b.wait_for("</main>").await;
    for lang in ["fr", "nl"] {
        for (name, path) in [
            ("dashboard", "/admin".to_string()),
            ("list", "/admin/failures".to_string()),
            ("detail", format!("/admin/failures/{reference}")),
            ("import", "/admin/import".to_string()),
            ("audit", "/admin/audit".to_string()),
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            b.goto(&format!("{base}{path}{sep}lang={lang}")).await;
            b.wait_for("</main>").await;
            assert_eq!(
                b.execute("return document.documentElement.lang").await,
                json!(lang),
                "{path}"
            );
            problems.extend(
                check_page_at(
                    &b,
                    &axe,
                    &shots,
                    &format!("desk-{lang}-{name}"),
                    &desk_sizes,
                )
                .await,
            );
        }
    }
    b.call("DELETE", "", None).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
