//! The ACS end to end: real signed responses minted with a fresh key pair,
//! posted to the running app; every failure kind checked for its kind, HTTP
//! status, meta tags and stored row, and every way to succeed.

use crate::common::*;
use chrono::Duration;
use jointure::saml::mint::{MintingIdp, ResponseSpec};

#[tokio::test]
async fn existing_mapping_logs_in() {
    let app = TestApp::spawn().await;
    app.map("sub-lucas", "A-1").await;
    let xml = app.mint(&app.ent("sub-lucas", "whatever", "x", "01/01/2000", UAI));
    app.expect_login(&xml, "A-1").await;
}

#[tokio::test]
async fn passed_account_id_logs_in_and_creates_an_attribute_mapping() {
    let app = TestApp::spawn().await;
    let spec = app
        .ent("sub-ines", "Haddad", "Inès", "", UAI)
        .attr("serviceAccountId", "A-5");
    app.expect_login(&app.mint(&spec), "A-5").await;
    assert_eq!(
        app.mapping("sub-ines").await,
        Some(("A-5".into(), "attribute".into()))
    );
}

#[tokio::test]
async fn passed_account_id_of_another_school_is_not_taken() {
    let app = TestApp::spawn().await;
    let spec = app
        .ent("sub-x", "Nobody", "X", "", UAI)
        .attr("serviceAccountId", "B-1");
    let f = app
        .expect_failure(&app.mint(&spec), "identity_mismatch", 403)
        .await;
    assert!(f.detail.contains("another school"), "{}", f.detail);
    assert_eq!(app.mapping("sub-x").await, None);
}

#[tokio::test]
async fn automatic_matching_folds_case_accents_spaces_and_hyphens() {
    let app = TestApp::spawn().await;
    let xml = app.mint(&app.ent("sub-elodie", "DUPONT MARTIN", "ELODIE", "12/04/2011", UAI));
    app.expect_login(&xml, "A-1").await;
    assert_eq!(
        app.mapping("sub-elodie").await,
        Some(("A-1".into(), "auto".into()))
    );
    // The next login goes through the mapping, whatever the names say now.
    let xml = app.mint(&app.ent("sub-elodie", "Renamed", "E", "", UAI));
    app.expect_login(&xml, "A-1").await;
}

#[tokio::test]
async fn homonyms_are_ambiguous_never_a_guess() {
    let app = TestApp::spawn().await;
    let f = app
        .expect_failure(
            &app.mint(&app.ent("sub-camille", "Martin", "Camille", "2011-01-20", UAI)),
            "ambiguous_identity",
            403,
        )
        .await;
    assert_eq!(f.subject.as_deref(), Some("sub-camille"));
    assert_eq!(app.mapping("sub-camille").await, None);
}

#[tokio::test]
async fn the_same_successful_response_twice_is_a_replay() {
    let app = TestApp::spawn().await;
    app.map("sub-1", "A-1").await;
    let xml = app.mint(&app.ent("sub-1", "a", "b", "", UAI));
    app.expect_login(&xml, "A-1").await;
    app.expect_failure(&xml, "replayed", 403).await;
}

#[tokio::test]
async fn missing_saml_response_bad_base64_and_non_xml_are_malformed() {
    let app = TestApp::spawn().await;
    let res = app.post_form("RelayState=%2Fx".into()).await;
    let f = app.check_failure(res, "malformed_request", 400).await;
    assert!(f.detail.contains("no SAMLResponse"), "{}", f.detail);
    let res = app
        .post_form("SAMLResponse=%25%25%25not-base64".into())
        .await;
    app.check_failure(res, "malformed_request", 400).await;
    app.expect_failure("this is not XML", "malformed_request", 400)
        .await;
}

#[tokio::test]
async fn line_wrapped_base64_is_accepted() {
    let app = TestApp::spawn().await;
    app.map("sub-wrap", "A-1").await;
    let b64 = jointure::saml::mint::to_base64(&app.mint(&app.ent("sub-wrap", "a", "b", "", UAI)));
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &wrapped.join("\r\n"))
        .finish();
    let res = app.post_form(body).await;
    assert_eq!(res.status().as_u16(), 303);
}

#[tokio::test]
async fn a_body_over_the_size_limit_gets_the_failure_page_not_a_bare_413() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 4096).await;
    let body = format!("SAMLResponse={}", "A".repeat(8000));
    let res = app.post_form(body).await;
    let f = app.check_failure(res, "malformed_request", 400).await;
    assert!(f.detail.contains("size limit"), "{}", f.detail);
}

#[tokio::test]
async fn doctype_and_entities_are_malformed() {
    let app = TestApp::spawn().await;
    let xml = app.mint(&app.nobody("sub-dt"));
    let bomb = format!(
        "<!DOCTYPE r [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>{}",
        xml.replacen(">Jean<", ">&b;<", 1)
    );
    app.expect_failure(&bomb, "malformed_request", 400).await;
    let xxe = format!(
        "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        xml.replacen(">Jean<", ">&x;<", 1)
    );
    app.expect_failure(&xxe, "malformed_request", 400).await;
}

#[tokio::test]
async fn unknown_issuer_is_recorded_with_the_entity_id() {
    let app = TestApp::spawn().await;
    let stranger = fixture_idp("https://stranger.test/idp", 1);
    let mut spec = app.nobody("sub-s");
    spec.issuer = stranger.entity_id.clone();
    let f = app
        .expect_failure(
            &stranger.response(&spec).expect("mint"),
            "unknown_issuer",
            403,
        )
        .await;
    assert_eq!(
        f.idp_entity_id.as_deref(),
        Some("https://stranger.test/idp")
    );
}

#[tokio::test]
async fn an_unsigned_response_is_an_invalid_signature() {
    let app = TestApp::spawn().await;
    let mut spec = app.nobody("sub-u");
    spec.signing.assertion = false;
    spec.signing.response = false;
    let f = app
        .expect_failure(&app.mint(&spec), "invalid_signature", 403)
        .await;
    assert!(f.detail.contains("neither"), "{}", f.detail);
    assert!(!f.asserted_verified);
}

#[tokio::test]
async fn wrong_audience_destination_or_recipient_is_refused() {
    let app = TestApp::spawn().await;
    let mut spec = app.nobody("sub-a1");
    spec.audience = Some("https://other.test/saml/metadata".into());
    app.expect_failure(&app.mint(&spec), "wrong_audience", 403)
        .await;
    let mut spec = app.nobody("sub-a2");
    spec.audience = None;
    let f = app
        .expect_failure(&app.mint(&spec), "wrong_audience", 403)
        .await;
    assert!(f.detail.contains("no AudienceRestriction"), "{}", f.detail);
    let mut spec = app.nobody("sub-a3");
    spec.recipient = "https://other.test/saml/acs".into();
    app.expect_failure(&app.mint(&spec), "wrong_audience", 403)
        .await;
    let mut spec = app.nobody("sub-a4");
    spec.destination = Some("https://other.test/saml/acs".into());
    app.expect_failure(&app.mint(&spec), "wrong_audience", 403)
        .await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_assertions_are_expired() {
    let app = TestApp::spawn().await;
    let old = app.nobody("sub-e1").shifted(-Duration::hours(1));
    app.expect_failure(&app.mint(&old), "expired", 403).await;
    let future = app.nobody("sub-e2").shifted(Duration::hours(1));
    app.expect_failure(&app.mint(&future), "expired", 403).await;
}

#[tokio::test]
async fn clock_skew_within_the_configured_window_is_tolerated() {
    let app = TestApp::spawn().await;
    app.map("sub-skew", "A-1").await;
    // NotBefore two minutes ahead: within the default 180 s skew.
    let mut spec = app.ent("sub-skew", "a", "b", "", UAI);
    spec.not_before = chrono::Utc::now() + Duration::seconds(120);
    app.expect_login(&app.mint(&spec), "A-1").await;
}

#[tokio::test]
async fn in_response_to_of_no_request_of_ours_is_a_replay() {
    let app = TestApp::spawn().await;
    let mut spec = app.nobody("sub-irt");
    spec.in_response_to = Some("_never-sent".into());
    let f = app.expect_failure(&app.mint(&spec), "replayed", 403).await;
    assert!(f.detail.contains("no pending request"), "{}", f.detail);
}

#[tokio::test]
async fn idp_error_status_logs_nobody_in() {
    let app = TestApp::spawn().await;
    let mut spec = app.nobody("sub-err");
    spec.status = Some("urn:oasis:names:tc:SAML:2.0:status:Responder".into());
    let f = app.expect_failure(&app.mint(&spec), "idp_error", 502).await;
    assert!(f.detail.contains("Responder"), "{}", f.detail);
    // Signed or not: a signed error response with an assertion inside still
    // logs nobody in.
    app.map("sub-err2", "A-1").await;
    let mut spec = app.ent("sub-err2", "a", "b", "", UAI);
    spec.signing.response = true;
    let assertion = app.idp.assertion_xml(&spec).expect("assertion");
    spec.status = Some("urn:oasis:names:tc:SAML:2.0:status:Requester".into());
    let xml = app
        .idp
        .response_around(&spec, &assertion)
        .expect("response");
    app.expect_failure(&xml, "idp_error", 502).await;
}

#[tokio::test]
async fn missing_school_code_is_the_entree_missing_brin_case() {
    let app = TestApp::spawn().await;
    let spec = jointure::saml::mint::ResponseSpec::new(
        &app.idp.entity_id,
        &sp_entity_id(),
        &acs_url(),
        "sub-nl",
    )
    .attr("uid", "sub-nl")
    .attr("givenName", "Sanne")
    .attr("eduPersonAffiliation", "student");
    let f = app
        .expect_failure(&app.mint(&spec), "missing_school_code", 422)
        .await;
    assert_eq!(f.subject.as_deref(), Some("sub-nl"));
    assert!(f.asserted_verified);
    assert_eq!(f.asserted_first_name.as_deref(), Some("Sanne"));
}

#[tokio::test]
async fn invalid_and_unknown_school_codes_are_told_apart() {
    let app = TestApp::spawn().await;
    let f = app
        .expect_failure(
            &app.mint(&app.ent("sub-1", "a", "b", "", "0751234A")),
            "invalid_school_code",
            422,
        )
        .await;
    assert_eq!(f.school_code, None);
    let f = app
        .expect_failure(
            &app.mint(&app.ent("sub-2", "a", "b", "", UAI_B)),
            "unknown_school",
            403,
        )
        .await;
    assert_eq!(f.school_code.as_deref(), Some(UAI_B));
    // A BRIN sent in the ENT attribute is read by its shape.
    app.map("sub-3", "B-1").await;
    app.expect_login(&app.mint(&app.ent("sub-3", "a", "b", "", "12ab")), "B-1")
        .await;
}

#[tokio::test]
async fn an_empty_name_id_is_a_missing_subject() {
    let app = TestApp::spawn().await;
    app.expect_failure(
        &app.mint(&app.ent("", "Dupont-Martin", "Élodie", "12/04/2011", UAI)),
        "missing_subject",
        422,
    )
    .await;
}

#[tokio::test]
async fn a_missing_or_empty_subject_attribute_is_a_missing_subject() {
    let app = TestApp::spawn_with(|c| c.idps[0].subject = "ENTPersonJointure".into()).await;
    let f = app
        .expect_failure(
            &app.mint(&app.ent(
                "nameid-ignored",
                "Dupont-Martin",
                "Élodie",
                "12/04/2011",
                UAI,
            )),
            "missing_subject",
            422,
        )
        .await;
    assert!(f.detail.contains("ENTPersonJointure"), "{}", f.detail);
    let spec = app
        .ent("x", "Dupont-Martin", "Élodie", "12/04/2011", UAI)
        .attr("ENTPersonJointure", "  ");
    app.expect_failure(&app.mint(&spec), "missing_subject", 422)
        .await;
    // With the attribute present, it is the subject.
    let spec = app
        .ent("x", "Dupont-Martin", "Élodie", "12/04/2011", UAI)
        .attr("ENTPersonJointure", "AB12345");
    app.expect_login(&app.mint(&spec), "A-1").await;
    assert_eq!(
        app.mapping("AB12345").await,
        Some(("A-1".into(), "auto".into()))
    );
}

#[tokio::test]
async fn identity_mismatch_shows_the_failure_form() {
    let app = TestApp::spawn().await;
    // Post, redirect, get: the ACS answers 303 to the failure page, which
    // answers with the kind's status while the failure is open.
    let posted = app.post_xml_raw(&app.mint(&app.nobody("sub-jean"))).await;
    assert_eq!(posted.status().as_u16(), 303);
    let location = posted.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with("/failures/"), "{location}");
    let res = app.get(&location).await;
    assert_eq!(res.status().as_u16(), 403);
    let html = res.text().await.expect("body");
    assert_eq!(
        meta(&html, "jointure-failure-kind").as_deref(),
        Some("identity_mismatch")
    );
    assert!(html.contains("action=\"/failures/"), "the form is there");
    assert!(html.contains("name=\"csrf_token\""));
    let reference = meta(&html, "jointure-reference").expect("ref");
    let f = app.failure(&reference).await.expect("row");
    assert_eq!(f.asserted_last_name.as_deref(), Some("Inconnu"));
    assert_eq!(f.asserted_birth_date.as_deref(), Some("2011-01-01"));
    assert_eq!(f.idp_entity_id.as_deref(), Some(app.idp.entity_id.as_str()));
    assert_eq!(f.school_code.as_deref(), Some(UAI));
    assert!(f
        .raw_response
        .as_deref()
        .is_some_and(|r| r.contains("Inconnu")));
    // Reloading shows the same page and records nothing new.
    let rows = app.count_failures().await;
    let again = app.get(&format!("/failures/{reference}")).await;
    assert_eq!(again.status().as_u16(), 403);
    let again = again.text().await.expect("page");
    assert!(again.contains(&f.support_code));
    assert_eq!(
        meta(&again, "jointure-reference").as_deref(),
        Some(reference.as_str())
    );
    assert_eq!(app.count_failures().await, rows);
}

#[tokio::test]
async fn a_deactivated_account_is_account_disabled() {
    let app = TestApp::spawn().await;
    app.map("sub-noah", "A-4").await;
    app.expect_failure(
        &app.mint(&app.ent("sub-noah", "Petit", "Noah", "30/06/2009", UAI)),
        "account_disabled",
        403,
    )
    .await;
    // Automatic matching to a deactivated account says so too.
    app.expect_failure(
        &app.mint(&app.ent("sub-noah2", "Petit", "Noah", "30/06/2009", UAI)),
        "account_disabled",
        403,
    )
    .await;
}

#[tokio::test]
async fn repeated_failures_fold_into_one_row() {
    let app = TestApp::spawn().await;
    let first = app
        .expect_failure(&app.mint(&app.nobody("sub-fold")), "identity_mismatch", 403)
        .await;
    let second = app
        .expect_failure(&app.mint(&app.nobody("sub-fold")), "identity_mismatch", 403)
        .await;
    assert_eq!(first.reference, second.reference);
    assert_eq!(second.count, 2);
    assert_eq!(app.count_failures().await, 1);
}

#[tokio::test]
async fn unknown_failure_references_are_not_found() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/failures/nope").await.status().as_u16(), 404);
    assert_eq!(
        app.get("/failures/%3Cscript%3E").await.status().as_u16(),
        404
    );
}

#[tokio::test]
async fn several_idps_from_one_entities_descriptor_are_all_trusted() {
    let ent = fixture_idp("https://ent.test/idp", 1);
    let entree = fixture_idp("https://entree.test/idp", 2);
    let app = TestApp::spawn_with(|c| {
        let agg = format!(
            "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}{}</md:EntitiesDescriptor>",
            ent.metadata_xml("https://ent.test/sso"),
            entree.metadata_xml("https://entree.test/sso")
        );
        let path = c.sp_key.parent().expect("dir").join("federation.xml");
        std::fs::write(&path, agg).expect("write");
        let mut fed = jointure::config::IdpConfig::with_metadata(path);
        fed.schools = Some(jointure::config::TrustedSchools::All);
        c.idps.push(fed);
        c.idps[0].schools = Some(jointure::config::TrustedSchools::All);
    })
    .await;
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    for (idp, subject, account) in [(&ent, "e-1", "A-1"), (&entree, "n-1", "B-1")] {
        jointure::store::mappings::insert(
            &mut conn,
            &idp.entity_id,
            subject,
            account,
            jointure::store::mappings::Source::Admin,
            None,
        )
        .await
        .expect("map");
    }
    drop(conn);
    let spec = ResponseSpec::new(&ent.entity_id, &sp_entity_id(), &acs_url(), "e-1")
        .attr("ENTStructureUAI", UAI);
    app.expect_login(&ent.response(&spec).expect("mint"), "A-1")
        .await;
    let spec = ResponseSpec::new(&entree.entity_id, &sp_entity_id(), &acs_url(), "n-1")
        .attr("nlEduPersonHomeOrganizationId", BRIN);
    app.expect_login(&entree.response(&spec).expect("mint"), "B-1")
        .await;
    // One IdP's key does not sign for the other.
    let mut spec = ResponseSpec::new(&ent.entity_id, &sp_entity_id(), &acs_url(), "e-1")
        .attr("ENTStructureUAI", UAI);
    spec.issuer = entree.entity_id.clone();
    app.expect_failure(
        &ent.response(&spec).expect("mint"),
        "invalid_signature",
        403,
    )
    .await;
}

#[tokio::test]
async fn old_failures_lose_every_personal_field_after_retention() {
    let app = TestApp::spawn().await;
    let old = app.fail(&app.nobody("sub-old")).await;
    let recent = app.fail(&app.nobody("sub-recent")).await;
    sqlx::query("UPDATE failures SET last_seen = '2000-01-01T00:00:00Z' WHERE reference = ?")
        .bind(&old)
        .execute(&app.svc.pool)
        .await
        .expect("age");
    // What the user declared on the form, and a matching's candidates.
    sqlx::query(
        "UPDATE failures SET report_json = '{\"last_name\":\"Martin\",\"email\":\"m@x.test\"}',
           candidate_ids = 'A-1,A-2', relay_state = '/somewhere' WHERE reference = ?",
    )
    .bind(&old)
    .execute(&app.svc.pool)
    .await
    .expect("report");
    app.svc.housekeeping().await.expect("housekeeping");
    // Every personal field, column by column; only kind, school, status,
    // counts and dates stay.
    for column in [
        "raw_response",
        "client_ip",
        "user_agent",
        "subject",
        "asserted_last_name",
        "asserted_first_name",
        "asserted_birth_date",
        "asserted_role",
        "asserted_class_name",
        "report_json",
        "candidate_ids",
        "relay_state",
    ] {
        let v: Option<String> = sqlx::query_scalar(&format!(
            "SELECT {column} FROM failures WHERE reference = ?"
        ))
        .bind(&old)
        .fetch_one(&app.svc.pool)
        .await
        .expect("row");
        assert_eq!(v, None, "{column} is erased");
    }
    let claims: String =
        sqlx::query_scalar("SELECT asserted_json FROM failures WHERE reference = ?")
            .bind(&old)
            .fetch_one(&app.svc.pool)
            .await
            .expect("row");
    assert_eq!(claims, "{}");
    assert!(app
        .failure(&recent)
        .await
        .expect("recent")
        .raw_response
        .is_some());
    // The failure itself, its kind and status stay for the desk.
    assert_eq!(
        app.failure(&old).await.expect("old").kind.as_str(),
        "identity_mismatch"
    );
}

/// Two IdPs, each trusted for its own school: one logs in only its pupils.
async fn two_ent_app() -> (TestApp, MintingIdp) {
    let other = fixture_idp("https://other-ent.test/idp", 1);
    let app = TestApp::spawn_with(|c| {
        let path = c.sp_key.parent().expect("dir").join("other.xml");
        std::fs::write(&path, other.metadata_xml("https://other-ent.test/sso")).expect("write");
        let mut cfg = jointure::config::IdpConfig::with_metadata(path);
        cfg.schools = Some(jointure::config::TrustedSchools::Only(vec![
            jointure::resolve::parse_school_code(BRIN).expect("brin"),
        ]));
        c.idps.push(cfg);
        c.idps[0].schools = Some(jointure::config::TrustedSchools::Only(vec![
            jointure::resolve::parse_school_code(UAI).expect("uai"),
        ]));
    })
    .await;
    (app, other)
}

#[tokio::test]
async fn an_idp_logs_in_only_the_schools_it_is_trusted_for() {
    let (app, other) = two_ent_app().await;
    // The other ENT asserts a pupil of the first IdP's school, with the
    // right name and birth date: refused, nothing mapped.
    let spec = ent_of(&other, "o-1", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    let f = app
        .expect_failure(
            &other.response(&spec).expect("mint"),
            "untrusted_school",
            403,
        )
        .await;
    assert_eq!(f.school_code.as_deref(), Some(UAI));
    assert!(f.detail.contains("not trusted"), "{}", f.detail);
    let mapped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mappings")
        .fetch_one(&app.svc.pool)
        .await
        .expect("count");
    assert_eq!(mapped, 0);
    // The same person through their own school's IdP logs in.
    app.expect_login(
        &app.mint(&app.ent("e-1", "Dupont-Martin", "Élodie", "12/04/2011", UAI)),
        "A-1",
    )
    .await;
    // And the other ENT logs in its own school's pupil.
    let spec = ent_of(&other, "o-2", "de Vries", "Sanne", "14/02/2013", BRIN);
    app.expect_login(&other.response(&spec).expect("mint"), "B-1")
        .await;
}

#[tokio::test]
async fn a_teacher_in_two_schools_resolves_only_in_the_trusted_one() {
    let (app, other) = two_ent_app().await;
    // The other ENT names both schools: only its own (BRIN) takes part, so
    // an account of the first school is never reached through it.
    let spec =
        ent_of(&other, "t-1", "Haddad", "Inès", "07/02/1985", UAI).attr("ENTStructureUAI", BRIN);
    let f = app
        .expect_failure(
            &other.response(&spec).expect("mint"),
            "identity_mismatch",
            403,
        )
        .await;
    assert_eq!(f.school_code.as_deref(), Some(BRIN));
    // Through the first school's IdP the same teacher matches A-5.
    let spec = app
        .ent("t-1", "Haddad", "Inès", "07/02/1985", UAI)
        .attr("ENTStructureUAI", BRIN);
    app.expect_login(&app.mint(&spec), "A-5").await;
}

#[tokio::test]
async fn a_school_can_trust_an_idp_through_its_own_list() {
    let (app, other) = two_ent_app().await;
    sqlx::query("UPDATE schools SET idp_entity_ids = ? WHERE code = ?")
        .bind(format!("https://unrelated.test {}", other.entity_id))
        .bind(UAI)
        .execute(&app.svc.pool)
        .await
        .expect("update");
    let spec = ent_of(&other, "o-1", "Dupont-Martin", "Élodie", "12/04/2011", UAI);
    app.expect_login(&other.response(&spec).expect("mint"), "A-1")
        .await;
}

#[tokio::test]
async fn with_several_idps_one_trusted_for_no_school_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let idp = fixture_idp("https://idp.test/saml", 0);
    let other = fixture_idp("https://other-ent.test/idp", 1);
    let mut c = config_for(dir.path(), &idp);
    let path = dir.path().join("other.xml");
    std::fs::write(&path, other.metadata_xml("https://other-ent.test/sso")).expect("write");
    c.idps
        .push(jointure::config::IdpConfig::with_metadata(path));
    c.idps[0].schools = Some(jointure::config::TrustedSchools::All);
    let err = jointure::Application::build(c, false)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("https://other-ent.test/idp") && err.contains("trusted for no school"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bearer_confirmation_without_data_is_a_wrong_audience_not_expired() {
    let app = TestApp::spawn().await;
    let spec = app.nobody("no-scd");
    let xml = app
        .idp
        .assertion_xml(&{
            let mut s = spec.clone();
            s.signing.assertion = false;
            s
        })
        .expect("assertion");
    let start = xml.find("<saml:SubjectConfirmationData").expect("scd");
    let end = xml[start..].find("/>").expect("end") + start + 2;
    let stripped = format!("{}{}", &xml[..start], &xml[end..]);
    let mut outer = spec.clone();
    outer.signing.response = true;
    let signed = app
        .idp
        .response_around(&outer, &stripped)
        .expect("response");
    app.expect_failure(&signed, "wrong_audience", 403).await;
}

#[tokio::test]
async fn an_identity_attribute_sent_twice_with_different_values_is_refused() {
    let app = TestApp::spawn().await;
    let spec = app
        .ent("twice", "Dupont-Martin", "Élodie", "12/04/2011", UAI)
        .attr("urn:oid:2.5.4.4", "Martin");
    let f = app
        .expect_failure(&app.mint(&spec), "malformed_request", 400)
        .await;
    assert!(f.detail.contains("last name"), "{}", f.detail);
    assert!(app.mapping("twice").await.is_none());
    // The same value under two names is fine, and several school codes too.
    let spec = app
        .ent("twice-ok", "Dupont-Martin", "Élodie", "12/04/2011", UAI)
        .attr("urn:oid:2.5.4.4", "Dupont-Martin")
        .attr("ENTStructureUAI", BRIN);
    app.expect_login(&app.mint(&spec), "A-1").await;
}
