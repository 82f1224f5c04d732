//! The returning user's short way (`flow::returning`, `store::login`): an
//! identity already mapped logs in with one trip to the writer; anything
//! else, and anything the short way would not accept, goes the full way and
//! ends exactly as it did before.

use crate::common::*;
use std::sync::atomic::Ordering;

fn short(app: &TestApp) -> u64 {
    app.svc.short_logins.load(Ordering::Relaxed)
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&app.svc.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_first_login_goes_the_full_way_and_the_next_ones_the_short_way() {
    let app = TestApp::spawn().await;
    // First login: careful matching maps the identity (the full way).
    let first = app.mint(&app.ent("sub-ret", "Dupont-Martin", "Élodie", "12/04/2011", UAI));
    app.expect_login(&first, "A-1").await;
    assert_eq!(short(&app), 0);
    assert_eq!(
        app.mapping("sub-ret").await.map(|m| m.1).as_deref(),
        Some("auto")
    );
    // The same identity again: mapped, the short way; each login remembered
    // and each with its own session.
    for n in 1..=2 {
        let again = app.mint(&app.ent("sub-ret", "Dupont-Martin", "Élodie", "12/04/2011", UAI));
        app.expect_login(&again, "A-1").await;
        assert_eq!(short(&app), n);
    }
    assert_eq!(count(&app, "seen_assertions").await, 3);
    assert_eq!(count(&app, "failures").await, 0);
}

#[tokio::test]
async fn a_replayed_response_of_a_mapped_identity_is_refused_the_full_way() {
    let app = TestApp::spawn().await;
    app.map("sub-replay", "A-1").await;
    let xml = app.mint(&app.ent("sub-replay", "a", "b", "", UAI));
    app.expect_login(&xml, "A-1").await;
    assert_eq!(short(&app), 1);
    let sessions = count(&app, "sessions").await;
    app.expect_failure(&xml, "replayed", 403).await;
    assert_eq!(short(&app), 1, "the replay did not take the short way");
    assert_eq!(count(&app, "sessions").await, sessions, "no session for it");
}

#[tokio::test]
async fn a_mapping_the_short_way_would_not_accept_ends_as_the_full_way_says() {
    let app = TestApp::spawn().await;
    // Deactivated account, an account of a school the assertion does
    // not name (B-1), a school the IdP is not trusted for.
    app.map("sub-off", "A-4").await;
    app.map("sub-other", "B-1").await;
    let off = app.mint(&app.ent("sub-off", "a", "b", "", UAI));
    app.expect_failure(&off, "account_disabled", 403).await;
    let other = app.mint(&app.ent("sub-other", "a", "b", "", UAI));
    app.expect_failure(&other, "identity_mismatch", 403).await;
    assert_eq!(short(&app), 0);
}

#[tokio::test]
async fn trust_by_the_schools_own_list_is_read_and_re_checked_the_short_way() {
    // The IdP's `[[idp]] schools` names the other school only: this one
    // must list the IdP itself.
    let app = TestApp::spawn_with(|c| {
        c.idps[0].schools = Some(jointure::config::TrustedSchools::Only(vec![
            jointure::resolve::parse_school_code(BRIN).expect("brin"),
        ]))
    })
    .await;
    let list = async |ids: &str| {
        sqlx::query("UPDATE schools SET idp_entity_ids = ? WHERE code = ?")
            .bind(ids)
            .bind(UAI)
            .execute(&app.svc.pool)
            .await
            .expect("list");
    };
    list(&format!("https://other.test/idp {}", app.idp.entity_id)).await;
    app.map("sub-t", "A-1").await;
    app.expect_login(&app.mint(&app.ent("sub-t", "a", "b", "", UAI)), "A-1")
        .await;
    assert_eq!(short(&app), 1);
    list("https://other.test/idp").await;
    let f = app
        .expect_failure(
            &app.mint(&app.ent("sub-t", "a", "b", "", UAI)),
            "untrusted_school",
            403,
        )
        .await;
    assert!(f.detail.contains("not trusted"), "{}", f.detail);
    assert_eq!(short(&app), 1);
}
