//! Import jobs: durable across restarts (a SIGKILL mid-import included),
//! previews that never take the write lock, bounded errors and memory, the
//! jobs limit and the expiry of unconfirmed jobs.

use crate::common::*;
use jointure::csv_io::{self, ImportKind, Options};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};

const HEADER: &str = "account_id,school_code,last_name,first_name,birth_date,role\n";

/// An accounts file of `n` new accounts of the first school.
fn accounts_file(n: usize) -> String {
    let mut s = String::with_capacity(n * 48 + 64);
    s.push_str(HEADER);
    for i in 0..n {
        s.push_str(&format!(
            "N-{i},{UAI},Nom{i},Prenom{i},2010-01-02,student\n"
        ));
    }
    s
}

/// A multipart/form-data body, built by hand.
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----jointure-jobs-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"accounts.csv\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
    body.extend(file);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads an accounts file; the response (a redirect to the job, or a page).
async fn upload(base: &str, c: &reqwest::Client, csrf: &str, file: &[u8]) -> reqwest::Response {
    let (ct, body) = multipart(&[("csrf_token", csrf), ("kind", "accounts")], file);
    c.post(format!("{base}/admin/import"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload")
}

/// Polls a job page until it shows `state`.
async fn wait_state(base: &str, c: &reqwest::Client, job: &str, state: &str) -> String {
    for _ in 0..1200 {
        let html = page(base, c, job).await;
        if html.contains(&format!("data-state=\"{state}\"")) {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job never reached {state}");
}

async fn page(base: &str, c: &reqwest::Client, path: &str) -> String {
    c.get(format!("{base}{path}"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html")
}

async fn account_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&app.svc.pool)
        .await
        .expect("count")
}

/// The upload of a job, beside the database.
fn upload_file(app: &TestApp, job: &str) -> std::path::PathBuf {
    let id = job.rsplit('/').next().expect("id");
    app.dir
        .path()
        .join("jointure.db.import-jobs")
        .join(format!("{id}.csv"))
}

#[tokio::test]
async fn a_preview_counts_while_another_connection_holds_the_write_lock() {
    use sqlx::Connection;
    let app = TestApp::spawn().await;
    let url = format!("sqlite://{}", app.dir.path().join("jointure.db").display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.expect("other");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("lock");
    let opts = Options {
        dry_run: true,
        ..Options::new("test")
    };
    let file = accounts_file(2000);
    let r = csv_io::import(
        &app.svc.pool,
        &app.svc.known_idps(),
        ImportKind::Accounts,
        "a.csv",
        file.as_bytes(),
        &opts,
    )
    .await
    .expect("a preview needs no write lock");
    assert_eq!((r.rows, r.created), (2000, 2000), "{}", r.summary());
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlock");
}

#[tokio::test]
async fn a_previewed_job_is_still_there_after_a_restart_and_can_be_confirmed() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    let (c, csrf) = app.admin_client("a@a.test").await;
    let res = upload(&app.base, &c, &csrf, accounts_file(3).as_bytes()).await;
    assert_eq!(res.status().as_u16(), 303);
    let job = header(&res, "location");
    wait_state(&app.base, &c, &job, "previewed").await;
    // A second server on the same database: a restart, as far as jobs go.
    let again = jointure::Application::build(config_for(app.dir.path(), &app.idp), false)
        .await
        .expect("restart");
    let base = format!("http://127.0.0.1:{}", again.port());
    tokio::spawn(again.run());
    let html = page(&base, &c, &job).await;
    assert!(html.contains("data-state=\"previewed\""), "{html}");
    assert!(html.contains("id=\"count-created\">3<"), "{html}");
    let res = app
        .post_with(&c, &format!("{job}/confirm"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let html = wait_state(&base, &c, &job, "applied").await;
    assert!(html.contains("id=\"count-created\">3<"), "{html}");
    assert_eq!(account_count(&app).await, 6 + 3);
    assert!(!upload_file(&app, &job).exists(), "the upload is deleted");
}

#[tokio::test]
async fn too_many_jobs_at_once_are_refused_with_a_message() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    let (c, csrf) = app.admin_client("a@a.test").await;
    let mut jobs = Vec::new();
    for _ in 0..jointure::web::admin::transfer::MAX_JOBS_PER_ADMIN {
        let res = upload(&app.base, &c, &csrf, accounts_file(2).as_bytes()).await;
        assert_eq!(res.status().as_u16(), 303);
        jobs.push(header(&res, "location"));
    }
    let res = upload(&app.base, &c, &csrf, accounts_file(2).as_bytes()).await;
    assert_eq!(res.status().as_u16(), 429);
    let html = res.text().await.expect("html");
    assert!(html.contains("id=\"error\""), "{html}");
    assert!(html.contains("Trop d"), "the translated message: {html}");
    // A confirmed import frees its place.
    wait_state(&app.base, &c, &jobs[0], "previewed").await;
    app.post_with(
        &c,
        &format!("{}/confirm", jobs[0]),
        &[("csrf_token", &csrf)],
    )
    .await;
    wait_state(&app.base, &c, &jobs[0], "applied").await;
    let res = upload(&app.base, &c, &csrf, accounts_file(2).as_bytes()).await;
    assert_eq!(res.status().as_u16(), 303);
}

#[tokio::test]
async fn an_unconfirmed_job_expires_and_its_upload_is_deleted() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    let (c, csrf) = app.admin_client("a@a.test").await;
    let res = upload(&app.base, &c, &csrf, accounts_file(2).as_bytes()).await;
    let job = header(&res, "location");
    wait_state(&app.base, &c, &job, "previewed").await;
    assert!(upload_file(&app, &job).exists(), "kept until confirmed");
    sqlx::query("UPDATE import_jobs SET created_at = '2000-01-01T00:00:00Z'")
        .execute(&app.svc.pool)
        .await
        .expect("age");
    let html = page(&app.base, &c, &job).await;
    assert!(html.contains("data-state=\"expired\""), "{html}");
    assert!(!upload_file(&app, &job).exists(), "the upload is gone");
    let res = app
        .post_with(&c, &format!("{job}/confirm"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(
        res.status().as_u16(),
        400,
        "an expired job cannot be confirmed"
    );
    assert_eq!(account_count(&app).await, 6);
}

#[tokio::test]
async fn only_the_first_errors_are_kept_each_with_its_bad_value_cut() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    let (c, csrf) = app.admin_client("a@a.test").await;
    let long = "x".repeat(20_000);
    let mut file = String::from(HEADER);
    for i in 0..200 {
        file.push_str(&format!("E-{i},{UAI},Nom,Prenom,2010-01-02,{long}\n"));
    }
    let res = upload(&app.base, &c, &csrf, file.as_bytes()).await;
    let job = header(&res, "location");
    let html = wait_state(&app.base, &c, &job, "previewed").await;
    let listed = html.matches("<tr><td class=\"num\">").count();
    assert_eq!(
        listed,
        csv_io::import::DEFAULT_MAX_ERRORS,
        "first errors only"
    );
    assert!(
        html.contains("id=\"more-errors-count\">100<"),
        "the rest counted"
    );
    assert!(html.contains('…'), "values cut");
    assert!(html.len() < 200_000, "a small page: {} bytes", html.len());
    assert!(!html.contains("id=\"confirm\""));
}

/// A config file for the server binary over the test app's database.
fn write_config(dir: &std::path::Path) -> String {
    let path = dir.join("jointure.toml");
    std::fs::write(
        &path,
        format!(
            "public_url = \"{SP}\"\nlisten = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://jointure.db\"\nsp_key = \"sp.key\"\nsp_cert = \"sp.crt\"\n\n[[idp]]\nmetadata = \"idp.xml\"\naccount_id_attribute = \"serviceAccountId\"\n"
        ),
    )
    .expect("config");
    path.display().to_string()
}

/// Starts the server binary; the child and its base URL.
fn serve(config: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jointure"))
        .args(["--config", config, "serve"])
        .env("JOINTURE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let port: u16 = line
        .split("port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, format!("http://127.0.0.1:{port}"))
}

/// A client logged in as `email` on `base`, and its CSRF token.
async fn admin_on(base: &str, email: &str) -> (reqwest::Client, String) {
    let c = client();
    let form = page(base, &c, "/admin/login").await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf_token", &csrf_from(&form))
        .append_pair("email", email)
        .append_pair("password", PASSWORD)
        .finish();
    let res = c
        .post(format!("{base}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("login");
    assert_eq!(res.status().as_u16(), 303);
    let csrf = csrf_from(&page(base, &c, "/admin").await);
    (c, csrf)
}

/// A value of `/proc/<pid>/status` in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field}"))
}

#[tokio::test]
async fn an_import_killed_mid_apply_is_shown_failed_and_nothing_changed() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let config = write_config(app.dir.path());
    let (mut child, base) = serve(&config);
    let (c, csrf) = admin_on(&base, "root@x.test").await;
    let res = upload(&base, &c, &csrf, accounts_file(150_000).as_bytes()).await;
    assert_eq!(res.status().as_u16(), 303);
    let job = header(&res, "location");
    wait_state(&base, &c, &job, "previewed").await;
    let res = c
        .post(format!("{base}{job}/confirm"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={csrf}"))
        .send()
        .await
        .expect("confirm");
    assert_eq!(res.status().as_u16(), 303);
    // Killed while the import reads its rows (well before its commit).
    for _ in 0..2000 {
        let html = page(&base, &c, &job).await;
        let done: u64 = html
            .split("id=\"rows-done\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if html.contains("data-state=\"running\"") && done > 1000 {
            break;
        }
        assert!(!html.contains("data-state=\"applied\""), "too fast to kill");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let (mut child, base) = serve(&config);
    let html = page(&base, &c, &job).await;
    assert!(html.contains("data-state=\"failed\""), "{html}");
    assert!(html.contains("id=\"job-ended\""), "{html}");
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&app.svc.pool)
        .await
        .expect("check");
    assert_eq!(ok, "ok");
    assert_eq!(account_count(&app).await, 6, "the old accounts, only");
    assert!(!upload_file(&app, &job).exists(), "the upload is gone");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn repeated_large_previews_keep_the_server_memory_bounded() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let config = write_config(app.dir.path());
    let (mut child, base) = serve(&config);
    let (c, csrf) = admin_on(&base, "root@x.test").await;
    // About 7 MB of good rows, then 40 MB of rows whose last name is too
    // long (each refused, the first kept with its value cut), and a bad
    // role: read to the end, never confirmable. Read whole, such a file
    // alone would take the server over the bound.
    let mut file = accounts_file(150_000);
    let long = "X".repeat(10_000);
    for i in 0..4_000 {
        file.push_str(&format!("L-{i},{UAI},{long},Y,2010-01-02,student\n"));
    }
    file.push_str(&format!("BAD,{UAI},X,Y,2010-01-02,nobody\n"));
    let size_kib = file.len() as u64 / 1024;
    let before = proc_kib(child.id(), "VmRSS:");
    for _ in 0..4 {
        let res = upload(&base, &c, &csrf, file.as_bytes()).await;
        assert_eq!(res.status().as_u16(), 303);
        let job = header(&res, "location");
        wait_state(&base, &c, &job, "previewed").await;
    }
    let peak = proc_kib(child.id(), "VmHWM:");
    let after = proc_kib(child.id(), "VmRSS:");
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "server RSS before {before} KiB, peak {peak} KiB, after {after} KiB, file {size_kib} KiB"
    );
    // The bound the README states: the process before, plus 40 MiB of
    // SQLite caches and buffers, whatever the file's size (it is read in
    // pieces) and the number of previews.
    assert!(size_kib > 44 * 1024, "a file bigger than the bound");
    let bound = before + 40 * 1024;
    assert!(
        peak < bound,
        "peak {peak} KiB over {bound} KiB (before {before}, file {size_kib})"
    );
    assert!(after < bound, "after {after} KiB over {bound} KiB");
}
