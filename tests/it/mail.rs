//! Telling users it was fixed: a resolution queues one e-mail per address
//! given in the form, sent through a real SMTP server process (Debian's
//! `python3-aiosmtpd`) started here, including the server being down at
//! first and the message arriving once it is up.

use crate::common::*;
use jointure::store::{self, failures};
use std::io::Read;
use std::process::{Command, Stdio};

const SMTPD_PYTHON: &str = "/usr/bin/python3";

pub fn smtpd_available() -> bool {
    let ok = Command::new(SMTPD_PYTHON)
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("JOINTURE_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "JOINTURE_REQUIRE_INTEROP=1 but python3-aiosmtpd is not installed (scripts/setup installs it)"
        );
        eprintln!("skipped: python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd, or run scripts/setup)");
    }
    ok
}

/// A real SMTP server (aiosmtpd's debugging handler: every message printed).
pub struct SmtpSink {
    child: std::process::Child,
}

impl SmtpSink {
    /// Starts it on `port` and waits until it listens.
    pub async fn start(port: u16) -> SmtpSink {
        let child = Command::new(SMTPD_PYTHON)
            .args(["-u", "-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd");
        // Owned at once, so that a failure below still ends the process.
        let sink = SmtpSink { child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd does not listen on {port}");
    }

    /// Stops it; everything it received, as printed.
    pub fn received(mut self) -> String {
        let _ = self.child.kill();
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A failure whose form carries `email`, sent in `lang`.
async fn reported_failure(app: &TestApp, subject: &str, email: &str, lang: &str) -> String {
    let reference = app.fail(&app.nobody(subject)).await;
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let report = serde_json::json!({
        "last_name": "Martin", "first_name": "Sanne", "birth_date": "1980-06-02",
        "role": "parent", "class_name": "", "email": email, "phone": "",
        "message": "", "children": [],
    });
    assert!(
        failures::save_report(&mut conn, &reference, &report.to_string(), lang)
            .await
            .expect("save")
    );
    reference
}

async fn resolve(app: &TestApp, reference: &str, account: &str) {
    let mut tx = app.svc.begin_write().await.expect("tx");
    store::desk::resolve(
        &mut tx,
        &store::Scope::All,
        reference,
        account,
        "root@x.test",
    )
    .await
    .expect("db")
    .expect("resolved");
    tx.commit().await.expect("commit");
}

async fn queue(app: &TestApp) -> Vec<(String, Option<String>, i64, Option<String>)> {
    sqlx::query_as("SELECT to_address, sent_at, attempts, last_error FROM mail_queue ORDER BY id")
        .fetch_all(&app.svc.pool)
        .await
        .expect("queue")
}

#[tokio::test]
async fn a_resolution_e_mails_the_user_once_even_when_the_mail_server_was_down() {
    if !smtpd_available() {
        return;
    }
    let port = free_port();
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))).await;
    let reference = reported_failure(&app, "sub-mail", "parent@example.test", "nl").await;
    resolve(&app, &reference, "A-5").await;
    let now = chrono::Utc::now().timestamp();

    // The server is down: nothing is lost, the attempt is recorded.
    assert_eq!(
        jointure::mail::deliver_due(&app.svc, now)
            .await
            .expect("db"),
        0
    );
    let q = queue(&app).await;
    assert_eq!(q.len(), 1, "one e-mail for one address");
    assert_eq!((q[0].1.is_none(), q[0].2), (true, 1), "{q:?}");
    assert!(q[0].3.is_some(), "the error is kept: {q:?}");
    // Not retried before its time.
    assert_eq!(
        jointure::mail::deliver_due(&app.svc, now + 1)
            .await
            .expect("db"),
        0
    );
    assert_eq!(queue(&app).await[0].2, 1);

    // The server comes up; the retry delivers.
    let smtpd = SmtpSink::start(port).await;
    let later = now + 3600;
    assert_eq!(
        jointure::mail::deliver_due(&app.svc, later)
            .await
            .expect("db"),
        1
    );
    assert_eq!(
        jointure::mail::deliver_due(&app.svc, later + 3600)
            .await
            .expect("db"),
        0,
        "sent once"
    );
    let out = smtpd.received();
    assert!(out.contains("parent@example.test"), "{out}");
    assert!(out.contains("U kunt weer inloggen"), "in Dutch: {out}");
    assert!(out.contains("Sanne"), "{out}");
    assert!(
        out.contains(&format!("https://sp.test/failures/{reference}")),
        "{out}"
    );
    assert!(!out.contains("Martin"), "no last name: {out}");
    let q = queue(&app).await;
    assert!(q[0].1.is_some(), "marked sent: {q:?}");
}

#[tokio::test]
async fn without_an_e_mail_or_without_smtp_nothing_is_sent_and_nothing_is_lost() {
    let app = TestApp::spawn().await;
    // No address in the form: nothing queued.
    let reference = reported_failure(&app, "sub-nomail", "", "fr").await;
    resolve(&app, &reference, "A-5").await;
    assert!(queue(&app).await.is_empty());
    // An address, but no smtp_url: queued, never sent, never lost.
    let reference = reported_failure(&app, "sub-nosmtp", "eleve@example.test", "fr").await;
    resolve(&app, &reference, "A-1").await;
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        jointure::mail::deliver_due(&app.svc, now + 99_999)
            .await
            .expect("db"),
        0
    );
    let q = queue(&app).await;
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].1.is_none(), q[0].2), (true, 0), "{q:?}");
    // The desk says so.
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, _) = app.admin_client("root@x.test").await;
    let page = c
        .get(format!("{}/admin/failures/{reference}", app.base))
        .send()
        .await
        .expect("detail")
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("id=\"mail-note\"") && page.contains("smtp_url"),
        "{page}"
    );
}

#[tokio::test]
async fn the_form_remembers_the_language_it_was_sent_in() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-lang")).await;
    // The user switched the page to Dutch; the form goes out from there.
    let page = app
        .get(&format!("/failures/{reference}?lang=nl"))
        .await
        .text()
        .await
        .expect("page");
    let csrf = csrf_from(&page);
    let res = app
        .post_with(
            &app.client,
            &format!("/failures/{reference}/report"),
            &[
                ("csrf_token", &csrf),
                ("last_name", "Jansen"),
                ("first_name", "Daan"),
                ("birth_date", "2011-03-14"),
                ("role", "student"),
                ("email", "daan@example.test"),
            ],
        )
        .await;
    assert_eq!(
        res.status().as_u16(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let lang: Option<String> =
        sqlx::query_scalar("SELECT report_lang FROM failures WHERE reference = ?")
            .bind(&reference)
            .fetch_one(&app.svc.pool)
            .await
            .expect("row");
    assert_eq!(lang.as_deref(), Some("nl"));
}
