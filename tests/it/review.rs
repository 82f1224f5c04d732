//! Regression tests for what a security review of the desk, the flow and the
//! imports found: forged identities cannot be linked, actions stay in scope,
//! no account IDs leak across schools, unsigned wrappers decide nothing.

use crate::common::*;
use jointure::csv_io::{import, ImportKind, Options};
use jointure::store::Scope;

#[tokio::test]
async fn a_forged_unsigned_identity_cannot_be_linked_by_an_admin() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    // A pupil forges an unsigned response naming a teacher of school A.
    let mut spec = app.ent("pupil-subject", "Haddad", "Inès", "07/02/1985", UAI);
    spec.signing.assertion = false;
    let f = app
        .expect_failure(&app.mint(&spec), "invalid_signature", 403)
        .await;
    assert_eq!(
        f.school_code.as_deref(),
        Some(UAI),
        "routed to A's desk, marked unverified"
    );
    let (c, csrf) = app.admin_client("a@a.test").await;
    let page = c
        .get(format!("{}/admin/failures/{}", app.base, f.reference))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(page.contains("id=\"not-resolvable\""), "no link offered");
    assert!(
        !page.contains("class=\"candidate\""),
        "no candidates ranked on forged data"
    );
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{}/resolve", f.reference),
            &[("csrf_token", &csrf), ("account_id", "A-5")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 422);
    assert_eq!(app.mapping("pupil-subject").await, None);
}

#[tokio::test]
async fn resolving_in_one_school_leaves_the_other_schools_failures_alone() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    // A teacher of two schools fails at both with one subject: unknown in
    // A, two homonym accounts in B.
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    for id in ["B-7", "B-8"] {
        app.add_account(&mut conn, (id, BRIN, "Nobody", "T", "1980-01-01", true))
            .await;
    }
    drop(conn);
    let in_a = app
        .fail(&app.ent("teacher-2", "Nobody", "T", "01/01/1980", UAI))
        .await;
    let in_b = app
        .fail(&app.ent("teacher-2", "Nobody", "T", "01/01/1980", BRIN))
        .await;
    assert_ne!(in_a, in_b);
    let (c, csrf) = app.admin_client("a@a.test").await;
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{in_a}/resolve"),
            &[("csrf_token", &csrf), ("account_id", "A-5")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        app.failure(&in_a).await.expect("a").status.as_str(),
        "resolved"
    );
    assert_eq!(
        app.failure(&in_b).await.expect("b").status.as_str(),
        "open",
        "school B's failure is B's to resolve"
    );
}

#[tokio::test]
async fn a_mapping_refusal_does_not_name_another_schools_account() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    app.map("someone-in-b", "B-1").await;
    let (c, csrf) = app.admin_client("a@a.test").await;
    let res = app
        .post_with(
            &c,
            "/admin/mappings",
            &[
                ("csrf_token", &csrf),
                ("idp_entity_id", &app.idp.entity_id),
                ("subject", "someone-in-b"),
                ("account_id", "A-1"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 409);
    let html = res.text().await.expect("html");
    assert!(!html.contains("B-1"), "another school's account ID leaked");
    assert!(html.contains("hors de vos établissements"));
}

#[tokio::test]
async fn a_mapping_to_an_account_of_a_school_the_assertion_does_not_name_does_not_log_in() {
    let app = TestApp::spawn().await;
    app.map("moved", "B-1").await;
    let f = app
        .expect_failure(
            &app.mint(&app.ent("moved", "de Vries", "Sanne", "", UAI)),
            "identity_mismatch",
            403,
        )
        .await;
    assert!(f.detail.contains("does not name"), "{}", f.detail);
    app.expect_login(
        &app.mint(&app.ent("moved", "de Vries", "Sanne", "", BRIN)),
        "B-1",
    )
    .await;
}

#[tokio::test]
async fn an_unsigned_response_wrapper_cannot_make_a_response_solicited() {
    let app = TestApp::spawn_with(|c| c.idps[0].allow_idp_initiated = false).await;
    app.map("sub-w", "A-1").await;
    // A pending request exists (anyone can start one).
    let res = app
        .get(&format!(
            "/saml/login?idp={}",
            url::form_urlencoded::byte_serialize(app.idp.entity_id.as_bytes()).collect::<String>()
        ))
        .await;
    let location = header(&res, "location");
    let request = url::Url::parse(&location).expect("url");
    let b64 = request
        .query_pairs()
        .find(|(k, _)| k == "SAMLRequest")
        .expect("req")
        .1
        .into_owned();
    use base64::Engine;
    use std::io::Read;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("b64");
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_string(&mut xml)
        .expect("inflate");
    let id = roxmltree::Document::parse(&xml)
        .expect("xml")
        .root_element()
        .attribute("ID")
        .expect("id")
        .to_string();
    // An unsolicited signed assertion, with the request ID written only on
    // the unsigned Response.
    let spec = app.ent("sub-w", "a", "b", "", UAI);
    let assertion = app.idp.assertion_xml(&spec).expect("assertion");
    let mut wrapper = spec.clone();
    wrapper.in_response_to = Some(id.clone());
    wrapper.signing.response = false;
    let xml = app
        .idp
        .response_around(&wrapper, &assertion)
        .expect("response");
    let f = app.expect_failure(&xml, "replayed", 403).await;
    assert!(f.detail.contains("unsolicited"), "{}", f.detail);
    // Signed, the same InResponseTo is honoured.
    let mut signed = app.ent("sub-w", "a", "b", "", UAI);
    signed.signing.response = true;
    signed.signing.assertion = false;
    let inner = app.idp.assertion_xml(&signed).expect("assertion");
    signed.in_response_to = Some(id);
    let xml = app.idp.response_around(&signed, &inner).expect("response");
    app.expect_login(&xml, "A-1").await;
}

#[tokio::test]
async fn parallel_wrong_passwords_cannot_exceed_the_limit() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let clients: Vec<_> = (0..10).map(|_| client()).collect();
    let tries = clients
        .iter()
        .map(|c| app.login_as(c, "root@x.test", "wrong password"));
    let statuses: Vec<u16> = futures_util::future::join_all(tries)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_unreadable_request_keeps_only_the_beginning_of_its_body() {
    let app = TestApp::spawn().await;
    let res = app
        .post_form(format!("SAMLResponse={}", "%25".repeat(60_000)))
        .await;
    let f = app.check_failure(res, "malformed_request", 400).await;
    assert!(f.raw_response.expect("raw").len() <= 4096);
}

#[tokio::test]
async fn an_admin_with_no_school_imports_nothing() {
    let app = TestApp::spawn().await;
    let nothing = Options {
        scope: Scope::Schools(Vec::new()),
        ..Options::new("t")
    };
    let file = format!(
        "idp_entity_id,subject,account_id\n{},x,A-1\n",
        app.idp.entity_id
    );
    let r = import(
        &app.svc.pool,
        &app.svc.known_idps(),
        ImportKind::Mappings,
        "m.csv",
        file.as_bytes(),
        &nothing,
    )
    .await
    .expect("import");
    assert!(!r.errors.is_empty(), "refused");
    assert_eq!(app.mapping("x").await, None);
}

#[tokio::test]
async fn exporting_another_schools_data_is_not_found_and_not_audited_there() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    let (c, _) = app.admin_client("a@a.test").await;
    let res = c
        .get(format!(
            "{}/admin/export/accounts.csv?school={BRIN}",
            app.base
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 404);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'export.%'")
        .fetch_one(&app.svc.pool)
        .await
        .expect("n");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_forged_response_never_folds_into_a_real_persons_failure() {
    let app = TestApp::spawn().await;
    // The real person's verified failure.
    let real = app.fail(&app.nobody("victim-sub")).await;
    // Forgeries naming the same subject, twice: recorded, never folded into
    // the real one, never given its reference.
    for _ in 0..2 {
        let mut forged = app.nobody("victim-sub");
        forged.signing.assertion = false;
        let f = app
            .expect_failure(&app.mint(&forged), "invalid_signature", 403)
            .await;
        assert_ne!(f.reference, real);
        assert_eq!(f.subject, None, "an unverified subject is not a column");
    }
    assert_eq!(app.failure(&real).await.expect("real").count, 1);
}
