//! The `jointure` binary: config files, imports, ingest, admin add, and the
//! one-line refusals at start.

use crate::common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn jointure(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jointure"))
        .args(args)
        .env("JOINTURE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jointure");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A config file for the test app's database, keys and IdP, with paths
/// relative to the file's folder.
fn write_config(dir: &Path) -> String {
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

/// Makes a response spec for a subject.
type MakeSpec<'a> = Box<dyn Fn(&str) -> jointure::saml::mint::ResponseSpec + 'a>;

#[tokio::test]
async fn ingest_classifies_exactly_as_the_acs_does() {
    let app = TestApp::spawn().await;
    let config = write_config(app.dir.path());
    let cases: Vec<(&str, MakeSpec)> = vec![
        (
            "resolved",
            Box::new(|s: &str| {
                app.ent(s, "Haddad", "Inès", "", UAI)
                    .attr("serviceAccountId", "A-5")
            }),
        ),
        ("identity_mismatch", Box::new(|s: &str| app.nobody(s))),
        (
            "ambiguous_identity",
            Box::new(|s: &str| app.ent(s, "Martin", "Camille", "20/01/2011", UAI)),
        ),
        (
            "unknown_school",
            Box::new(|s: &str| app.ent(s, "a", "b", "", UAI_B)),
        ),
        (
            "expired",
            Box::new(|s: &str| app.nobody(s).shifted(chrono::Duration::hours(-2))),
        ),
        (
            "invalid_signature",
            Box::new(|s: &str| {
                let mut sp = app.nobody(s);
                sp.signing.assertion = false;
                sp
            }),
        ),
    ];
    for (i, (expected, make)) in cases.iter().enumerate() {
        // Through the ACS.
        let acs_res = app.post_xml(&app.mint(&make(&format!("acs-{i}")))).await;
        let acs_kind = if acs_res.status().as_u16() == 303 {
            "resolved".to_string()
        } else {
            meta(
                &acs_res.text().await.expect("page"),
                "jointure-failure-kind",
            )
            .expect("kind")
        };
        // Through ingest, one file as XML and one as base64.
        let xml_file = app.dir.path().join(format!("r{i}.xml"));
        std::fs::write(&xml_file, app.mint(&make(&format!("ingest-{i}")))).expect("file");
        let b64_file = app.dir.path().join(format!("r{i}.b64"));
        std::fs::write(
            &b64_file,
            jointure::saml::mint::to_base64(&app.mint(&make(&format!("ingest64-{i}")))),
        )
        .expect("file");
        let out = jointure(
            &[
                "ingest",
                "--config",
                &config,
                xml_file.to_str().expect("path"),
                b64_file.to_str().expect("path"),
            ],
            None,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let kinds: Vec<&str> = stdout
            .lines()
            .map(|l| l.split('\t').nth(1).expect("kind column"))
            .collect();
        assert_eq!(acs_kind, *expected, "ACS");
        assert_eq!(kinds, [*expected, *expected], "ingest: {stdout}");
    }
    // Ingesting the same file again is a replay, as at the ACS.
    let out = jointure(
        &[
            "ingest",
            "--config",
            &config,
            app.dir.path().join("r0.xml").to_str().expect("p"),
        ],
        None,
    );
    assert!(
        text(&out.stdout).contains("\treplayed\t"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_windows_1252_semicolon_file_with_french_dates_imports() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("j.db");
    let db_url = format!("sqlite://{}", db.display());
    let env_args = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_jointure"))
            .args(args)
            .env("JOINTURE_DATABASE_URL", &db_url)
            .env("JOINTURE_LOG", "warn")
            .output()
            .expect("run")
    };
    std::fs::write(
        dir.path().join("schools.csv"),
        "school_code,name\n0751234J,Coll\u{e8}ge A\n",
    )
    .expect("w");
    let out = env_args(&[
        "import",
        "schools",
        dir.path().join("schools.csv").to_str().expect("p"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 created"),
        "{}",
        text(&out.stdout)
    );
    // Windows-1252: é = 0xE9, è = 0xE8; CRLF line ends; DD/MM/YYYY; French role.
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, b"account_id;school_code;last_name;first_name;birth_date;role;class_name\r\nW-1;0751234J;L\xe9vy;Chlo\xe9;05/03/2012;\xe9l\xe8ve;5\xe8me B\r\n").expect("w");
    let dry = env_args(&["import", "accounts", file.to_str().expect("p"), "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("1 would be created"),
        "{}",
        text(&dry.stdout)
    );
    let out = env_args(&["import", "accounts", file.to_str().expect("p")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let pool = jointure::store::open(&db).await.expect("db");
        let mut conn = pool.acquire().await.expect("conn");
        let a = jointure::store::accounts::get(&mut conn, "W-1")
            .await
            .expect("q")
            .expect("imported");
        assert_eq!(a.last_name, "Lévy");
        assert_eq!(a.first_name, "Chloé");
        assert_eq!(a.class_name.as_deref(), Some("5ème B"));
        assert_eq!(a.birth_date, chrono::NaiveDate::from_ymd_opt(2012, 3, 5));
        assert_eq!(a.role, jointure::resolve::Role::Student);
    });
    // Importing it again changes nothing.
    let out = env_args(&["import", "accounts", file.to_str().expect("p")]);
    assert!(
        text(&out.stdout).contains("0 created, 0 updated, 1 unchanged"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_bad_accounts_file_lists_every_bad_row_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db_url = format!("sqlite://{}", dir.path().join("j.db").display());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_jointure"))
            .args(args)
            .env("JOINTURE_DATABASE_URL", &db_url)
            .env("JOINTURE_LOG", "warn")
            .output()
            .expect("run")
    };
    std::fs::write(dir.path().join("s.csv"), "name;school_code\nA;0751234J\n").expect("w");
    assert!(run(&[
        "import",
        "schools",
        dir.path().join("s.csv").to_str().expect("p")
    ])
    .status
    .success());
    let file = dir.path().join("a.csv");
    std::fs::write(
        &file,
        "account_id,school_code,last_name,first_name,birth_date,role\n\
         ok-1,0751234J,Good,Row,2010-01-01,student\n\
         bad-1,0751234A,X,Y,2010-01-01,student\n\
         bad-2,0751234J,,Y,2010-13-01,student\n\
         bad-3,0751234J,X,Y,,wizard\n\
         ok-1,0751234J,Dup,Licate,2010-01-01,teacher\n",
    )
    .expect("w");
    let out = run(&["import", "accounts", file.to_str().expect("p")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let name = file.display().to_string();
    for expected in [
        format!("{name}:3: column school_code: \"0751234A\" is neither a BRIN nor a valid UAI"),
        format!("{name}:4: column last_name: is empty"),
        format!("{name}:4: column birth_date: \"2010-13-01\" is not a date"),
        format!("{name}:5: column role: \"wizard\" is not a known role"),
        format!("{name}:6: column account_id: ok-1 already appears on line 2"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("nothing was imported"));
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let pool = jointure::store::open(&dir.path().join("j.db"))
            .await
            .expect("db");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(n, 0, "the good row was not written either");
    });
}

#[test]
fn metadata_without_a_signing_certificate_stops_the_start_with_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("idp.xml"),
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"https://idp.test\"><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"/></md:EntityDescriptor>",
    )
    .expect("w");
    std::fs::write(dir.path().join("c.toml"), "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://j.db\"\n[[idp]]\nmetadata = \"idp.xml\"\n").expect("w");
    let out = jointure(
        &[
            "serve",
            "--config",
            dir.path().join("c.toml").to_str().expect("p"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("jointure:"))
        .expect("error line");
    assert!(
        line.contains("idp.xml") && line.contains("no signing certificate"),
        "{err}"
    );
}

#[test]
fn an_unknown_config_key_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let c = dir.path().join("c.toml");
    std::fs::write(&c, "colour = \"blue\"\n").expect("w");
    let out = jointure(&["migrate", "--config", c.to_str().expect("p")], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("c.toml") && err.contains("colour"), "{err}");
}

#[test]
fn admin_add_reads_the_password_from_stdin_and_stores_an_argon2id_hash() {
    let dir = tempfile::tempdir().expect("dir");
    let c = dir.path().join("c.toml");
    std::fs::write(&c, "database_url = \"sqlite://j.db\"\n").expect("w");
    let cfg = c.to_str().expect("p");
    let out = jointure(
        &[
            "admin",
            "add",
            "--config",
            cfg,
            "--email",
            "a@school.test",
            "--role",
            "school_admin",
            "--school",
            "0751234j",
        ],
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let short = jointure(
        &[
            "admin",
            "add",
            "--config",
            cfg,
            "--email",
            "b@school.test",
            "--role",
            "superadmin",
        ],
        Some("short\n"),
    );
    assert_eq!(short.status.code(), Some(1));
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let pool = jointure::store::open(&dir.path().join("j.db"))
            .await
            .expect("db");
        let (hash, role): (String, String) =
            sqlx::query_as("SELECT password_hash, role FROM admins WHERE email = 'a@school.test'")
                .fetch_one(&pool)
                .await
                .expect("row");
        assert!(hash.starts_with("$argon2id$"));
        assert!(jointure::store::admins::verify_password(
            "a long enough password",
            &hash
        ));
        assert_eq!(role, "school_admin");
        let school: String = sqlx::query_scalar("SELECT school_code FROM admin_schools")
            .fetch_one(&pool)
            .await
            .expect("school");
        assert_eq!(school, "0751234J");
    });
}

#[test]
fn token_add_prints_the_token_alone_and_revoke_ends_it() {
    let dir = tempfile::tempdir().expect("dir");
    let c = dir.path().join("c.toml");
    std::fs::write(&c, "database_url = \"sqlite://j.db\"\n").expect("w");
    let cfg = c.to_str().expect("p");
    let out = jointure(
        &[
            "token",
            "add",
            "--config",
            cfg,
            "--name",
            "pronote",
            "--role",
            "school_admin",
            "--school",
            "0751234J",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.trim().starts_with("jnt_"));
    let again = jointure(
        &[
            "token",
            "add",
            "--config",
            cfg,
            "--name",
            "pronote",
            "--role",
            "superadmin",
        ],
        None,
    );
    assert_eq!(again.status.code(), Some(1), "names are unique");
    let revoke = jointure(
        &["token", "revoke", "--config", cfg, "--name", "pronote"],
        None,
    );
    assert!(revoke.status.success());
    let twice = jointure(
        &["token", "revoke", "--config", cfg, "--name", "pronote"],
        None,
    );
    assert_eq!(twice.status.code(), Some(1));
}

#[tokio::test]
async fn serve_answers_health_checks_with_a_request_id_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let app = TestApp::spawn().await;
    let config = write_config(app.dir.path());
    let log = app.dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_jointure"))
        .args(["--config", &config, "serve"])
        .env("JOINTURE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let port: Option<u16> = line
        .split("port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok());
    let Some(port) = port else {
        // Say why: what the server wrote on stderr before it stopped.
        let _ = child.kill();
        let why = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("no port in {line:?}; stderr: {why}");
    };
    let base = format!("http://127.0.0.1:{port}");
    let res = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status().as_u16(), 200);
    let id = res.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert_eq!(id.len(), 16, "{id}");
    let res = client()
        .get(format!("{base}/readyz"))
        .header("x-request-id", "support-42")
        .send()
        .await
        .expect("readyz");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["x-request-id"],
        "support-42",
        "a plain ID is kept"
    );
    let res = client()
        .get(format!("{base}/healthz"))
        .header("x-request-id", "<script>")
        .send()
        .await
        .expect("healthz");
    assert_ne!(
        res.headers()["x-request-id"],
        "<script>",
        "anything else is replaced"
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit after SIGTERM: {status}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!("the server did not stop within 10 s of SIGTERM");
}
