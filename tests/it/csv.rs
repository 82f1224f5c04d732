//! CSV round trips, bad input, rollover, failures resolved by imports,
//! formula neutralisation, and the import and export pages.

use crate::common::*;
use jointure::csv_io::export::{ExportKind, Exporter};
use jointure::csv_io::{import, ImportKind, ImportReport, Options};
use jointure::store::failures::Filter;
use jointure::store::Scope;

async fn run(app: &TestApp, kind: ImportKind, text: &[u8], opts: Options) -> ImportReport {
    import(
        &app.svc.pool,
        &app.svc.known_idps(),
        kind,
        "f.csv",
        text,
        &opts,
    )
    .await
    .expect("import runs")
}

fn opts() -> Options {
    Options::new("test")
}

/// Everything an import could touch, as one comparable string.
async fn snapshot(app: &TestApp) -> String {
    let q = "SELECT (SELECT group_concat(code || '|' || name, ';') FROM (SELECT * FROM schools ORDER BY code))
          || '#' || (SELECT group_concat(account_id || '|' || school_code || '|' || last_name || '|' || first_name || '|' || ifnull(birth_date, '') || '|' || role || '|' || ifnull(class_name, '') || '|' || ifnull(email, '') || '|' || active, ';') FROM (SELECT * FROM accounts ORDER BY account_id))
          || '#' || ifnull((SELECT group_concat(idp_entity_id || '|' || subject || '|' || account_id, ';') FROM (SELECT * FROM mappings ORDER BY id)), '')
          || '#' || (SELECT group_concat(reference || '|' || status, ';') FROM (SELECT * FROM failures ORDER BY id))";
    sqlx::query_scalar::<_, Option<String>>(q)
        .fetch_one(&app.svc.pool)
        .await
        .expect("snapshot")
        .unwrap_or_default()
}

async fn export_all(app: &TestApp, kind: ExportKind, excel: bool) -> Vec<u8> {
    let mut e = Exporter::new(
        app.svc.pool.clone(),
        kind,
        Scope::All,
        Filter::default(),
        excel,
    );
    let mut out = Vec::new();
    while let Some(chunk) = e.next_chunk().await.expect("export") {
        out.extend(chunk);
    }
    out
}

const TRICKY: &str =
    "account_id,school_code,last_name,first_name,birth_date,role,class_name,email\n\
    T-1,0751234J,\"N'Diaye; \"\"le grand\"\"\",Éloïse,2011-02-03,élève,\"4e\nB\",t1@example.test\n\
    T-2,0751234J,=SUM(A1),-Dash,,teacher,,\n\
    T-3,12AB,Müller-Lüdenscheidt,@Ana,03/04/2012,leerling,groep 8,\n";

#[tokio::test]
async fn export_then_import_changes_nothing_in_both_variants() {
    let app = TestApp::spawn().await;
    let r = run(&app, ImportKind::Accounts, TRICKY.as_bytes(), opts()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.created, 3);
    // One deactivated account rides along (A-4 is inactive).
    for excel in [false, true] {
        let before = snapshot(&app).await;
        let file = export_all(&app, ExportKind::Accounts, excel).await;
        assert_eq!(
            file.starts_with("\u{feff}".as_bytes()),
            excel,
            "BOM only in the Excel variant"
        );
        let r = run(&app, ImportKind::Accounts, &file, opts()).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(
            (r.created, r.updated, r.deactivated),
            (0, 0, 0),
            "excel={excel}"
        );
        assert_eq!(r.unchanged, r.rows);
        assert_eq!(snapshot(&app).await, before, "excel={excel}");
    }
    let a = jointure::store::accounts::get(&mut app.svc.pool.acquire().await.expect("c"), "T-1")
        .await
        .expect("q")
        .expect("T-1");
    assert_eq!(a.last_name, "N'Diaye; \"le grand\"");
    assert_eq!(a.class_name.as_deref(), Some("4e\nB"));
    // Mappings too.
    app.map("sub-rt", "T-2").await;
    let before = snapshot(&app).await;
    let file = export_all(&app, ExportKind::Mappings, false).await;
    let r = run(&app, ImportKind::Mappings, &file, opts()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.created, r.updated), (0, 0));
    assert_eq!(
        r.ignored_columns,
        ["school_code", "source", "created_at", "created_by"]
    );
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn every_export_neutralises_formulas() {
    let app = TestApp::spawn().await;
    run(&app, ImportKind::Accounts, TRICKY.as_bytes(), opts()).await;
    app.map("@subject", "T-2").await;
    app.fail(&app.ent(
        "sub-f",
        "=HYPERLINK(\"http://evil.test\")",
        "+Plus",
        "01/01/2011",
        UAI,
    ))
    .await;
    let accounts =
        String::from_utf8(export_all(&app, ExportKind::Accounts, false).await).expect("utf8");
    assert!(accounts.contains(",'=SUM(A1),'-Dash,"), "{accounts}");
    assert!(accounts.contains(",'@Ana,"));
    let mappings =
        String::from_utf8(export_all(&app, ExportKind::Mappings, false).await).expect("utf8");
    assert!(mappings.contains(",'@subject,"), "{mappings}");
    let failures =
        String::from_utf8(export_all(&app, ExportKind::Failures, true).await).expect("utf8");
    assert!(
        failures.contains(";\"'=HYPERLINK(\"\"http://evil.test\"\")\";'+Plus;"),
        "{failures}"
    );
    for file in [&accounts, &mappings, &failures] {
        for line in file.lines().skip(1) {
            for cell in line.split([',', ';']) {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@']),
                    "unneutralised {cell:?} in {line}"
                );
            }
        }
    }
}

#[tokio::test]
async fn failures_export_follows_the_filters_and_names_the_spec_columns() {
    let app = TestApp::spawn().await;
    app.fail(&app.nobody("sub-e1")).await;
    app.fail(&app.ent("sub-e2", "a", "b", "", UAI_B)).await;
    let mut e = Exporter::new(
        app.svc.pool.clone(),
        ExportKind::Failures,
        Scope::All,
        Filter {
            kind: Some("unknown_school".into()),
            ..Default::default()
        },
        false,
    );
    let mut out = Vec::new();
    while let Some(c) = e.next_chunk().await.expect("export") {
        out.extend(c);
    }
    let text = String::from_utf8(out).expect("utf8");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("reference,support_code,first_seen,last_seen,count,kind,status,idp_entity_id,school_code,subject,asserted_last_name,asserted_first_name,asserted_birth_date,declared_last_name,declared_first_name,declared_birth_date,role,class_name,email,resolved_account_id,resolved_by,resolved_at"));
    let rows: Vec<_> = lines.collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains(",unknown_school,open,"));
}

/// One bad file and the message expected for it.
async fn refused(app: &TestApp, kind: ImportKind, text: &[u8], expected: &[&str]) {
    let before = snapshot(app).await;
    let r = run(app, kind, text, opts()).await;
    let shown: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    for e in expected {
        assert!(
            shown.iter().any(|s| s.contains(e)),
            "expected {e:?} in {shown:?}"
        );
    }
    assert_eq!(
        snapshot(app).await,
        before,
        "nothing written for {expected:?}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_message_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let h = "account_id,school_code,last_name,first_name,birth_date,role\n";
    refused(
        &app,
        ImportKind::Accounts,
        b"account_id,school_code,first_name,role\nx,0751234J,a,student\n",
        &["f.csv:1: column last_name: required column is missing"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        b"",
        &["f.csv:1: the file is empty"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        b"   \n\n",
        &["the file is empty"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        h.as_bytes(),
        &["has a header but no rows"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        format!(
            "{h}N-1,0751234J,A,B,,student\nN-2,0751234J,C,D,,student\nN-1,0751234J,E,F,,student\n"
        )
        .as_bytes(),
        &["f.csv:4: column account_id: N-1 already appears on line 2"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        format!("{h}N-1,0751234J,A,B,30/02/2011,student\n").as_bytes(),
        &["f.csv:2: column birth_date: \"30/02/2011\" is not a date"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        format!("{h}N-1,0330001X,A,B,,student\nN-2,0751234A,A,B,,student\n").as_bytes(),
        &[
            "f.csv:2: column school_code: school 0330001X is not registered",
            "f.csv:3: column school_code: \"0751234A\" is neither a BRIN nor a valid UAI",
        ],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        format!("{h}N-1,0751234J,A,B,,wizard\n").as_bytes(),
        &["f.csv:2: column role: \"wizard\" is not a known role"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb2\x8a\x12\x00\x00\x00",
        &["f.csv:1: the file is not CSV text (it holds binary data)"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        format!("{h}N-1,0751234J,A,B,,student\nN-2,0751234J,\"Cut in the mid").as_bytes(),
        &["f.csv:3: a quoted field opened on line 3 is never closed"],
    )
    .await;
    refused(
        &app,
        ImportKind::Accounts,
        format!("{h}N-1,0751234J,A\n").as_bytes(),
        &["f.csv:2: 3 fields where the header has 6"],
    )
    .await;
    refused(&app, ImportKind::Mappings, b"idp_entity_id,subject,account_id\nhttps://nope.test,s,A-1\nhttps://idp.test/saml,s2,NOPE\n", &["f.csv:2: column idp_entity_id: \"https://nope.test\" is not a configured IdP", "f.csv:3: column account_id: NOPE does not exist"]).await;
    // A good row does not get written when another is bad.
    refused(
        &app,
        ImportKind::Accounts,
        format!("{h}OK-1,0751234J,Good,Row,,student\nBAD,0751234J,,Row,,student\n").as_bytes(),
        &["f.csv:3: column last_name: is empty"],
    )
    .await;
}

#[tokio::test]
async fn unknown_columns_are_listed_as_ignored() {
    let app = TestApp::spawn().await;
    let r = run(&app, ImportKind::Accounts, b"account_id;school_code;last_name;first_name;role;code_postal;Classe_Origine\nU-1;0751234J;A;B;student;75001;x\n", opts()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.ignored_columns, ["code_postal", "classe_origine"]);
    assert!(r
        .summary()
        .contains("ignored columns: code_postal, classe_origine"));
}

#[tokio::test]
async fn rollover_deactivates_the_missing_keeps_their_mappings_and_restores_them() {
    let app = TestApp::spawn().await;
    app.map("sub-camille", "A-2").await;
    // This year's file for UAI: A-2 left.
    let year = "account_id,school_code,last_name,first_name,birth_date,role\n\
                A-1,0751234J,Dupont-Martin,Élodie,2011-04-12,student\n\
                A-3,0751234J,Martin,Camille,2011-01-20,student\n\
                A-5,0751234J,Haddad,Inès,1985-02-07,teacher\n";
    let replace = Options {
        replace_school: Some(UAI.into()),
        ..opts()
    };
    let preview = run(
        &app,
        ImportKind::Accounts,
        year.as_bytes(),
        Options {
            dry_run: true,
            ..replace.clone()
        },
    )
    .await;
    assert_eq!(preview.deactivated, 1, "the dry run says so");
    let r = run(&app, ImportKind::Accounts, year.as_bytes(), replace.clone()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.deactivated, 1);
    assert!(
        !jointure::store::accounts::get(&mut app.svc.pool.acquire().await.expect("c"), "A-2")
            .await
            .expect("q")
            .expect("kept")
            .active
    );
    assert_eq!(
        app.mapping("sub-camille").await,
        Some(("A-2".into(), "admin".into())),
        "the mapping is kept"
    );
    let f = app
        .expect_failure(
            &app.mint(&app.ent("sub-camille", "Martin", "Camille", "20/01/2011", UAI)),
            "account_disabled",
            403,
        )
        .await;
    // She comes back: reactivated, and her open failure resolves.
    let back = format!("{year}A-2,0751234J,Martin,Camille,2011-01-20,student\n");
    let r = run(&app, ImportKind::Accounts, back.as_bytes(), replace).await;
    assert_eq!((r.updated, r.deactivated, r.failures_resolved), (1, 0, 1));
    assert_eq!(
        app.failure(&f.reference)
            .await
            .expect("row")
            .status
            .as_str(),
        "resolved"
    );
    app.expect_login(
        &app.mint(&app.ent("sub-camille", "Martin", "Camille", "20/01/2011", UAI)),
        "A-2",
    )
    .await;
    // Other schools are never touched by a replace.
    let other = run(
        &app,
        ImportKind::Accounts,
        "account_id,school_code,last_name,first_name,role\nZ-1,12AB,Z,Z,student\n".as_bytes(),
        Options {
            replace_school: Some(UAI.into()),
            ..opts()
        },
    )
    .await;
    assert!(other.errors[0]
        .to_string()
        .contains("school 12AB in a file that replaces school 0751234J"));
}

#[tokio::test]
async fn an_accounts_import_resolves_the_failure_of_a_newcomer_end_to_end() {
    let app = TestApp::spawn().await;
    let reference = app
        .fail(&app.ent("sub-new", "Nouveau", "Léa", "05/06/2012", UAI))
        .await;
    let r = run(&app, ImportKind::Accounts, "account_id,school_code,last_name,first_name,birth_date,role\nN-9,0751234J,NOUVEAU,Lea,2012-06-05,student\n".as_bytes(), opts()).await;
    assert_eq!((r.created, r.failures_resolved), (1, 1), "{}", r.summary());
    let f = app.failure(&reference).await.expect("row");
    assert_eq!(
        (f.status.as_str(), f.resolved_account_id.as_deref()),
        ("resolved", Some("N-9"))
    );
    assert_eq!(
        app.mapping("sub-new").await,
        Some(("N-9".into(), "import".into()))
    );
    let page = app
        .get(&format!("/failures/{reference}"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(
        meta(&page, "jointure-failure-status").as_deref(),
        Some("resolved")
    );
    app.expect_login(
        &app.mint(&app.ent("sub-new", "Nouveau", "Léa", "05/06/2012", UAI)),
        "N-9",
    )
    .await;
}

#[tokio::test]
async fn a_mappings_import_resolves_open_failures() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-map")).await;
    let file = format!(
        "idp_entity_id,subject,account_id\n{},sub-map,A-5\n",
        app.idp.entity_id
    );
    let dry = run(
        &app,
        ImportKind::Mappings,
        file.as_bytes(),
        Options {
            dry_run: true,
            ..opts()
        },
    )
    .await;
    assert_eq!((dry.created, dry.failures_resolved), (1, 1));
    assert_eq!(
        app.failure(&reference).await.expect("row").status.as_str(),
        "open",
        "a dry run writes nothing"
    );
    let r = run(&app, ImportKind::Mappings, file.as_bytes(), opts()).await;
    assert_eq!((r.created, r.failures_resolved), (1, 1));
    assert_eq!(
        app.failure(&reference).await.expect("row").status.as_str(),
        "resolved"
    );
}

#[tokio::test]
async fn a_school_admin_imports_only_rows_of_their_schools() {
    let app = TestApp::spawn().await;
    let scoped = Options {
        scope: Scope::Schools(vec![UAI.into()]),
        ..opts()
    };
    let r = run(&app, ImportKind::Accounts, "account_id,school_code,last_name,first_name,role\nS-1,12AB,A,B,student\nB-1,0751234J,Steal,Other,student\n".as_bytes(), scoped.clone()).await;
    let shown: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert!(
        shown[0].contains("school 12AB is not one of yours"),
        "{shown:?}"
    );
    assert!(
        shown[1].contains("B-1 belongs to another school"),
        "{shown:?}"
    );
    app.map("sub-b", "B-1").await;
    let file = format!(
        "idp_entity_id,subject,account_id\n{0},sub-b,A-1\n{0},x,B-1\n",
        app.idp.entity_id
    );
    let r = run(&app, ImportKind::Mappings, file.as_bytes(), scoped).await;
    let shown: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|s| s.contains("sub-b is linked to an account of another school")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("B-1 does not exist in your schools")),
        "{shown:?}"
    );
}

#[tokio::test]
async fn twenty_thousand_rows_import_in_one_transaction() {
    let app = TestApp::spawn().await;
    let mut file =
        String::from("account_id,school_code,last_name,first_name,birth_date,role,class_name\n");
    for i in 0..20_000 {
        file.push_str(&format!(
            "BIG-{i:06},0751234J,Nom{i},Prénom{i},2010-01-{:02},student,6A\n",
            i % 28 + 1
        ));
    }
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r = run(
        &app,
        ImportKind::Accounts,
        file.as_bytes(),
        Options {
            progress: Some(progress.clone()),
            ..opts()
        },
    )
    .await;
    assert!(r.errors.is_empty(), "{:?}", r.errors.first());
    assert_eq!((r.rows, r.created), (20_000, 20_000));
    assert_eq!(progress.load(std::sync::atomic::Ordering::Relaxed), 20_000);
    // The same file with one bad row at the end writes nothing at all.
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&app.svc.pool)
        .await
        .expect("n");
    let bad = file.replace("BIG-000000", "NEW-000000") + "X,0751234J,A,B,2010-99-99,student,6A\n";
    let r = run(&app, ImportKind::Accounts, bad.as_bytes(), opts()).await;
    assert_eq!(r.errors.len(), 1);
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
        .fetch_one(&app.svc.pool)
        .await
        .expect("n");
    assert_eq!(before, after);
}

/// A multipart/form-data body, built by hand.
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----jointure-test-boundary";
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

async fn wait_state(app: &TestApp, c: &reqwest::Client, job: &str, state: &str) -> String {
    for _ in 0..100 {
        let html = c
            .get(format!("{}{job}", app.base))
            .send()
            .await
            .expect("job")
            .text()
            .await
            .expect("html");
        if html.contains(&format!("data-state=\"{state}\"")) {
            return html;
        }
        assert!(!html.contains("data-state=\"failed\""), "{html}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job never reached {state}");
}

#[tokio::test]
async fn the_import_page_previews_then_imports_on_confirmation() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    let (c, csrf) = app.admin_client("a@a.test").await;
    let file = "account_id;school_code;last_name;first_name;birth_date;role;remarque\nW-1;0751234J;Web;Import;01/02/2010;élève;x\n";
    let (ct, body) = multipart(
        &[("csrf_token", &csrf), ("kind", "accounts")],
        file.as_bytes(),
    );
    let res = c
        .post(format!("{}/admin/import", app.base))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 303);
    let job = header(&res, "location");
    let preview = wait_state(&app, &c, &job, "previewed").await;
    assert!(preview.contains("id=\"count-created\">1<"), "{preview}");
    assert!(preview.contains("remarque"), "ignored column listed");
    assert!(
        jointure::store::accounts::get(&mut app.svc.pool.acquire().await.expect("c"), "W-1")
            .await
            .expect("q")
            .is_none(),
        "a preview writes nothing"
    );
    let res = app
        .post_with(&c, &format!("{job}/confirm"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    wait_state(&app, &c, &job, "applied").await;
    assert!(
        jointure::store::accounts::get(&mut app.svc.pool.acquire().await.expect("c"), "W-1")
            .await
            .expect("q")
            .is_some()
    );
    // Confirming twice does nothing more.
    assert_eq!(
        app.post_with(&c, &format!("{job}/confirm"), &[("csrf_token", &csrf)])
            .await
            .status()
            .as_u16(),
        400
    );

    // Bad rows: listed with line, column and reason; no confirm button.
    let (ct, body) = multipart(
        &[("csrf_token", &csrf), ("kind", "accounts")],
        b"account_id,school_code,last_name,first_name,role\nX-1,12AB,A,B,student\n",
    );
    let res = c
        .post(format!("{}/admin/import", app.base))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload");
    let job = header(&res, "location");
    let page = wait_state(&app, &c, &job, "previewed").await;
    // In the admin's language (French by default), not the CLI's English.
    assert!(
        page.contains("établissement 12AB n&#39;est pas l&#39;un des vôtres"),
        "{page}"
    );
    assert!(!page.contains("id=\"confirm\""));
    // Without the CSRF token the upload is refused.
    let (ct, body) = multipart(
        &[("csrf_token", "forged"), ("kind", "accounts")],
        file.as_bytes(),
    );
    let res = c
        .post(format!("{}/admin/import", app.base))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 403);
    // Another admin cannot see the job.
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (root, _) = app.admin_client("root@x.test").await;
    assert_eq!(
        root.get(format!("{}{job}", app.base))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused_with_a_message() {
    let app = TestApp::spawn_with(|c| c.max_upload_bytes = 2048).await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let big = format!(
        "account_id,school_code,last_name,first_name,role\n{}",
        "X,0751234J,A,B,student\n".repeat(200)
    );
    let (ct, body) = multipart(
        &[("csrf_token", &csrf), ("kind", "accounts")],
        big.as_bytes(),
    );
    let res = c
        .post(format!("{}/admin/import", app.base))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 413);
    assert!(res.text().await.expect("html").contains("id=\"error\""));
}

#[tokio::test]
async fn the_export_route_streams_scoped_csv_with_the_excel_variant() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    let (c, _) = app.admin_client("a@a.test").await;
    let res = c
        .get(format!("{}/admin/export/accounts.csv", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("attachment;")));
    let text = res.text().await.expect("csv");
    assert!(text.starts_with("account_id,school_code,last_name"));
    assert!(
        text.contains("A-1,") && !text.contains("B-1,"),
        "scoped: {text}"
    );
    let excel = c
        .get(format!("{}/admin/export/accounts.csv?excel=1", app.base))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert!(excel.starts_with("\u{feff}account_id;school_code;".as_bytes()));
    assert_eq!(
        c.get(format!("{}/admin/export/passwords.csv", app.base))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16(),
        404
    );
    let audit = c
        .get(format!("{}/admin/audit", app.base))
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("html");
    assert!(audit.contains("export.accounts"));
}

async fn school_idps(app: &TestApp, code: &str) -> String {
    sqlx::query_scalar("SELECT idp_entity_ids FROM schools WHERE code = ?")
        .bind(code)
        .fetch_one(&app.svc.pool)
        .await
        .expect("school")
}

#[tokio::test]
async fn schools_import_their_trusted_idps() {
    let app = TestApp::spawn().await;
    let idp = app.idp.entity_id.clone();
    // Listed twice and unordered: stored once.
    let text = format!("school_code;name;idp_entity_ids\n0751234J;Collège A;{idp}  {idp}\n");
    let r = run(&app, ImportKind::Schools, text.as_bytes(), opts()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.updated, r.unchanged), (1, 0));
    assert_eq!(school_idps(&app, UAI).await, idp);
    // The same file again changes nothing; a file without the column keeps
    // the list; an empty cell clears it.
    let r = run(&app, ImportKind::Schools, text.as_bytes(), opts()).await;
    assert_eq!((r.updated, r.unchanged), (0, 1));
    let r = run(
        &app,
        ImportKind::Schools,
        "school_code,name\n0751234J,Collège A\n".as_bytes(),
        opts(),
    )
    .await;
    assert_eq!((r.updated, r.unchanged), (0, 1));
    assert_eq!(school_idps(&app, UAI).await, idp);
    let r = run(
        &app,
        ImportKind::Schools,
        "school_code,name,idp_entity_ids\n0751234J,Collège A,\n".as_bytes(),
        opts(),
    )
    .await;
    assert_eq!(r.updated, 1);
    assert_eq!(school_idps(&app, UAI).await, "");
    // An IdP that is not configured names its line and column, and nothing
    // is written.
    refused(
        &app,
        ImportKind::Schools,
        b"school_code,name,idp_entity_ids\n0751234J,A,https://typo.test/idp\n",
        &["f.csv:2: column idp_entity_ids: \"https://typo.test/idp\" is not a configured IdP"],
    )
    .await;
    // A school admin cannot widen who may log in their pupils.
    let mut scoped = opts();
    scoped.scope = Scope::Schools(vec![UAI.into()]);
    let r = run(&app, ImportKind::Schools, text.as_bytes(), scoped).await;
    let shown: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().any(|e| e.contains("only a superadmin")),
        "{shown:?}"
    );
    assert_eq!(school_idps(&app, UAI).await, "");
}

/// The error lines of a refused import, as the CLI prints them.
async fn shown_errors(app: &TestApp, text: &[u8]) -> Vec<String> {
    let before = snapshot(app).await;
    let r = run(app, ImportKind::Accounts, text, opts()).await;
    assert_eq!(snapshot(app).await, before, "nothing written");
    r.errors.iter().map(ToString::to_string).collect()
}

const HEADER: &str = "account_id,school_code,last_name,first_name,birth_date,role\n";

#[tokio::test]
async fn a_utf8_file_with_one_bad_byte_is_refused_at_its_line_and_column_not_guessed() {
    let app = TestApp::spawn().await;
    let mut file =
        format!("{HEADER}E-1,0751234J,Éloïse,Zoé,,student\nE-2,0751234J,Mü").into_bytes();
    file.extend(b"\xFCller,Ana,,student\n");
    let shown = shown_errors(&app, &file).await;
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0]
            .starts_with("f.csv:3: the file is UTF-8 but has a byte that is not at character 16"),
        "{shown:?}"
    );
    // A file with no UTF-8 at all is still Windows-1252.
    let file = b"account_id;school_code;last_name;first_name;role\nW-1;0751234J;M\xFCller;\xC9lodie;\xE9l\xE8ve\n";
    let r = run(&app, ImportKind::Accounts, file, opts()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let a = jointure::store::accounts::get(&mut conn, "W-1")
        .await
        .expect("q")
        .expect("W-1");
    assert_eq!(
        (a.last_name.as_str(), a.first_name.as_str()),
        ("Müller", "Élodie")
    );
}

#[tokio::test]
async fn excel_unicode_text_in_utf16_with_bom_imports_in_both_byte_orders() {
    let app = TestApp::spawn().await;
    let text = "account_id\tschool_code\tlast_name\tfirst_name\trole\r\nU-1\t0751234J\tN'Diaye\tÉloïse\télève\r\n";
    for (id, bytes) in [
        (
            "U-1",
            [0xFF, 0xFE]
                .into_iter()
                .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
                .collect::<Vec<u8>>(),
        ),
        (
            "U-2",
            [0xFE, 0xFF]
                .into_iter()
                .chain(
                    text.replace("U-1", "U-2")
                        .encode_utf16()
                        .flat_map(u16::to_be_bytes),
                )
                .collect(),
        ),
    ] {
        let r = run(&app, ImportKind::Accounts, &bytes, opts()).await;
        assert!(r.errors.is_empty(), "{id}: {:?}", r.errors);
        assert_eq!(r.created, 1, "{id}");
        let mut conn = app.svc.pool.acquire().await.expect("conn");
        let a = jointure::store::accounts::get(&mut conn, id)
            .await
            .expect("q")
            .expect("imported");
        assert_eq!(
            (a.last_name.as_str(), a.first_name.as_str()),
            ("N'Diaye", "Éloïse")
        );
    }
}

#[tokio::test]
async fn a_nul_far_into_the_file_is_refused_with_its_line() {
    let app = TestApp::spawn().await;
    let mut file = HEADER.to_string();
    for i in 0..2000 {
        file.push_str(&format!("N-{i},0751234J,Nom,Prénom,,student\n"));
    }
    file.push_str("N-x,0751234J,No\0m,P,,student\n");
    let shown = shown_errors(&app, file.as_bytes()).await;
    assert_eq!(
        shown,
        ["f.csv:2002: a NUL character at character 16 of this line: the file is not plain text"]
    );
}

#[tokio::test]
async fn line_numbers_are_the_same_for_cr_lf_and_crlf_files() {
    let app = TestApp::spawn().await;
    let lines = [
        HEADER.trim_end(),
        "L-1,0751234J,A,B,,student",
        "L-2,0751234J,\"Multi",
        "line\",B,,student",
        "L-3,0751234J,C,D,,wizard",
    ];
    for end in ["\n", "\r\n", "\r"] {
        let file = lines.join(end) + end;
        let shown = shown_errors(&app, file.as_bytes()).await;
        assert_eq!(shown.len(), 1, "{end:?}: {shown:?}");
        assert!(
            shown[0].starts_with("f.csv:5: column role: \"wizard\""),
            "{end:?}: {shown:?}"
        );
    }
}

#[tokio::test]
async fn a_lone_quote_inside_a_field_is_a_value_and_an_unclosed_quoted_field_is_a_cut_file() {
    let app = TestApp::spawn().await;
    let file = format!("{HEADER}Q-1,0751234J,O\"Brien,Seán,,student\n");
    let r = run(&app, ImportKind::Accounts, file.as_bytes(), opts()).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let a = jointure::store::accounts::get(&mut conn, "Q-1")
        .await
        .expect("q")
        .expect("Q-1");
    assert_eq!(a.last_name, "O\"Brien");
    let file = format!("{HEADER}Q-2,0751234J,O\"Brien,A,,student\nQ-3,0751234J,\"Cut,B,,student\r\nQ-4,0751234J,C,D,,student\n");
    let shown = shown_errors(&app, file.as_bytes()).await;
    assert_eq!(
        shown,
        ["f.csv:3: a quoted field opened on line 3 is never closed (is the file cut short?)"]
    );
}

#[tokio::test]
async fn over_long_cells_are_refused_by_column_and_shown_truncated() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(50_000);
    let file = format!(
        "account_id,school_code,last_name,first_name,role,email,class_name\n\
        T-1,0751234J,{huge},B,student,,\n\
        T-2,0751234J,A,B,student,{}@example.test,{}\n",
        "a".repeat(250),
        "c".repeat(51)
    );
    let shown = shown_errors(&app, file.as_bytes()).await;
    let expected_last = format!(
        "f.csv:2: column last_name: \"{}…\" is too long: 50000 characters where at most 100 are allowed",
        "x".repeat(40)
    );
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert_eq!(shown[0], expected_last);
    assert!(shown[1].starts_with("f.csv:3: column"), "{shown:?}");
    let columns: Vec<_> = shown.iter().filter_map(|s| s.split(": ").nth(1)).collect();
    assert!(columns.contains(&"column email") && columns.contains(&"column class_name"));
    // Every error of a file of bad long values stays short.
    let file = format!("{HEADER}T-3,{huge},A,B,{huge},{huge}\n");
    let shown = shown_errors(&app, file.as_bytes()).await;
    assert!(
        !shown.is_empty() && shown.iter().all(|s| s.len() < 200),
        "{shown:?}"
    );
}

#[tokio::test]
async fn row_errors_are_described_in_each_language() {
    use jointure::i18n::{Lang, Tr};
    let app = TestApp::spawn().await;
    let file = format!("{HEADER}R-1,0751234J,A,B,31/02/2011,student\n");
    let r = run(&app, ImportKind::Accounts, file.as_bytes(), opts()).await;
    let e = r.errors.first().expect("an error");
    assert_eq!(e.column.as_deref(), Some("birth_date"));
    assert_eq!(
        e.describe(&Tr::new(Lang::Nl)),
        "\"31/02/2011\" is geen datum (JJJJ-MM-DD, DD/MM/JJJJ of DD-MM-JJJJ)"
    );
    assert_eq!(
        e.describe(&Tr::new(Lang::Fr)),
        "\"31/02/2011\" n'est pas une date (AAAA-MM-JJ, JJ/MM/AAAA ou JJ-MM-AAAA)"
    );
    assert!(e
        .to_string()
        .ends_with("\"31/02/2011\" is not a date (YYYY-MM-DD, DD/MM/YYYY or DD-MM-YYYY)"));
}
