//! The detail page's actions (issue 11, items 3 and 5): the account search
//! links in one click, a clearly-ahead candidate is offered in one click,
//! every resolve, dismiss, link and unlink can be undone (audited, refused
//! once no longer possible, scoped), and "re-check now" resolves a failure
//! whose school or account arrived since, alone or in bulk within scope.

use crate::common::*;
use jointure::csv_io::{import, ImportKind, Options};

/// GETs an admin page and returns its status and HTML.
async fn page(app: &TestApp, c: &reqwest::Client, path: &str) -> (u16, String) {
    let res = c
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("get");
    (res.status().as_u16(), res.text().await.expect("html"))
}

/// The ID of the latest audit entry of `action` about `target`.
async fn entry(app: &TestApp, action: &str, target: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT id FROM audit_log WHERE action = ? AND target = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(action)
    .bind(target)
    .fetch_one(&app.svc.pool)
    .await
    .expect("audit entry")
}

/// The undo entry that names `undone`, if any.
async fn undo_of(app: &TestApp, undone: i64) -> Option<String> {
    sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'undo' AND undoes = ?")
        .bind(undone)
        .fetch_optional(&app.svc.pool)
        .await
        .expect("query")
}

/// A failure's status, resolved account and dismissal reason.
async fn state(app: &TestApp, reference: &str) -> (String, Option<String>, Option<String>) {
    sqlx::query_as(
        "SELECT status, resolved_account_id, dismiss_reason FROM failures WHERE reference = ?",
    )
    .bind(reference)
    .fetch_one(&app.svc.pool)
    .await
    .expect("failure")
}

/// The full mapping row of a subject, as one comparable tuple.
async fn mapping_row(app: &TestApp, subject: &str) -> Option<(i64, String, String, String)> {
    sqlx::query_as(
        "SELECT id, account_id, source, created_at FROM mappings WHERE idp_entity_id = ? AND subject = ?",
    )
    .bind(&app.idp.entity_id)
    .bind(subject)
    .fetch_optional(&app.svc.pool)
    .await
    .expect("query")
}

async fn undo(app: &TestApp, c: &reqwest::Client, csrf: &str, id: i64) -> reqwest::Response {
    app.post_with(
        c,
        &format!("/admin/audit/{id}/undo"),
        &[("csrf_token", csrf)],
    )
    .await
}

const ALREADY_UNDONE: &str = "déjà été annulée";
const CHANGED_SINCE: &str = "a changé depuis";

#[tokio::test]
async fn account_search_finds_the_account_and_links_it_in_one_click() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app.fail(&app.nobody("sub-search")).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let base = format!("/admin/failures/{reference}");
    // Folded, word by word, with class and birth date in either form.
    let (status, html) = page(
        &app,
        &c,
        &format!("{base}?name=dupont+elodie&class=4b&birth=12%2F04%2F2011"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("class=\"found\" data-account=\"A-1\""),
        "{html}"
    );
    assert_eq!(html.matches("class=\"found\"").count(), 1);
    // The failure's school only: B-1 is in another school.
    let (_, html) = page(&app, &c, &format!("{base}?account=B-1")).await;
    assert!(html.contains("id=\"search-none\""), "B-1 is not offered");
    // A typed % is a %, not "anything".
    let (_, html) = page(&app, &c, &format!("{base}?account=%25")).await;
    assert!(html.contains("id=\"search-none\""));
    let (_, html) = page(&app, &c, &format!("{base}?birth=31%2F02%2F2011")).await;
    assert!(html.contains("id=\"search-bad-date\""));

    // The result's own button: a CSRF-carrying POST of that account.
    let (_, html) = page(&app, &c, &format!("{base}?account=A-1")).await;
    let row = &html[html
        .find("class=\"found\" data-account=\"A-1\"")
        .expect("row")..];
    assert!(row.contains(&format!("action=\"/admin/failures/{reference}/resolve\"")));
    assert!(row.contains("name=\"account_id\" value=\"A-1\""));
    let res = app
        .post_with(
            &c,
            &format!("{base}/resolve"),
            &[("csrf_token", &csrf), ("account_id", "A-1")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(state(&app, &reference).await.0, "resolved");
    app.expect_login(&app.mint(&app.nobody("sub-search")), "A-1")
        .await;
}

#[tokio::test]
async fn a_clearly_ahead_candidate_is_linked_in_one_click_and_twins_are_not_offered() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    // A misspelt last name: close, but not enough alone.
    let reference = app
        .fail(&app.ent("sub-typo", "Dupond-Martin", "Élodie", "12/04/2011", UAI))
        .await;
    let base = format!("/admin/failures/{reference}");
    let (_, html) = page(&app, &c, &base).await;
    assert!(
        !html.contains("id=\"lead\""),
        "a near name alone is no lead"
    );
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let report = serde_json::json!({
        "last_name": "Dupont-Martin", "first_name": "Élodie", "birth_date": "2011-04-12",
        "role": "student", "class_name": "4B", "email": "", "phone": "", "message": "",
        "children": [],
    });
    jointure::store::failures::save_report(&mut conn, &reference, &report.to_string(), "fr")
        .await
        .expect("report");
    drop(conn);
    let (_, html) = page(&app, &c, &base).await;
    let lead = &html[html.find("id=\"lead\"").expect("a lead is offered")..];
    let lead = &lead[..lead.find("</div>").expect("end")];
    assert!(lead.contains("name=\"account_id\" value=\"A-1\""), "{lead}");
    assert!(lead.contains("Élodie Dupont-Martin (A-1)"), "{lead}");
    let res = app
        .post_with(
            &c,
            &format!("{base}/resolve"),
            &[("csrf_token", &csrf), ("account_id", "A-1")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(state(&app, &reference).await.1.as_deref(), Some("A-1"));

    // Camille Martin has a twin namesake: nobody is ahead.
    let twins = app
        .fail(&app.ent("sub-twin", "Martin", "Camille", "20/01/2011", UAI))
        .await;
    let (_, html) = page(&app, &c, &format!("/admin/failures/{twins}")).await;
    assert!(
        html.contains("data-account=\"A-2\""),
        "the twins are candidates"
    );
    assert!(
        !html.contains("id=\"lead\""),
        "but neither is clearly ahead"
    );
}

#[tokio::test]
async fn undoing_a_resolve_reopens_what_it_resolved_and_deletes_the_mapping_it_made() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let reference = app.fail(&app.nobody("sub-undo")).await;
    let before = state(&app, &reference).await;
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{reference}/resolve"),
            &[("csrf_token", &csrf), ("account_id", "A-5")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(mapping_row(&app, "sub-undo").await.is_some());
    let id = entry(&app, "failure.resolve", &reference).await;
    // From the failure's history: the button is there, and names the page.
    let (_, html) = page(&app, &c, &format!("/admin/failures/{reference}")).await;
    assert!(html.contains(&format!("action=\"/admin/audit/{id}/undo\"")));
    let res = app
        .post_with(
            &c,
            &format!("/admin/audit/{id}/undo"),
            &[("csrf_token", &csrf), ("reference", &reference)],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        header(&res, "location"),
        format!("/admin/failures/{reference}?done=undone")
    );
    let (_, html) = page(&app, &c, &header(&res, "location")).await;
    assert!(
        html.contains("id=\"notice\""),
        "the page says it was undone"
    );
    assert_eq!(
        state(&app, &reference).await,
        before,
        "open again, as it was"
    );
    assert_eq!(
        mapping_row(&app, "sub-undo").await,
        None,
        "the mapping is gone"
    );
    assert_eq!(undo_of(&app, id).await.as_deref(), Some("root@x.test"));
    // The login fails again, as before the resolve.
    assert_eq!(
        app.post_xml(&app.mint(&app.nobody("sub-undo")))
            .await
            .status()
            .as_u16(),
        403
    );
    // Twice is refused, saying why; nothing changes.
    let res = undo(&app, &c, &csrf, id).await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.text().await.expect("html").contains(ALREADY_UNDONE));
}

#[tokio::test]
async fn a_resolve_acted_on_again_can_no_longer_be_undone() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let reference = app.fail(&app.nobody("sub-again")).await;
    let resolve = format!("/admin/failures/{reference}/resolve");
    let p = [("csrf_token", csrf.as_str()), ("account_id", "A-5")];
    assert_eq!(app.post_with(&c, &resolve, &p).await.status().as_u16(), 303);
    let first = entry(&app, "failure.resolve", &reference).await;
    let reopen = format!("/admin/failures/{reference}/reopen");
    let p2 = [("csrf_token", csrf.as_str())];
    assert_eq!(app.post_with(&c, &reopen, &p2).await.status().as_u16(), 303);
    // Resolved anew (the mapping stayed): the first resolve is history.
    assert_eq!(app.post_with(&c, &resolve, &p).await.status().as_u16(), 303);
    let res = undo(&app, &c, &csrf, first).await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.text().await.expect("html").contains(CHANGED_SINCE));
    assert_eq!(state(&app, &reference).await.0, "resolved", "untouched");
    assert!(mapping_row(&app, "sub-again").await.is_some(), "untouched");
    assert_eq!(undo_of(&app, first).await, None, "no undo recorded");
}

#[tokio::test]
async fn undoing_a_dismissal_reopens_it_unless_it_was_dismissed_again() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let reference = app.fail(&app.nobody("sub-dismiss")).await;
    let before = state(&app, &reference).await;
    let dismiss = format!("/admin/failures/{reference}/dismiss");
    let p = [("csrf_token", csrf.as_str()), ("reason", "duplicate")];
    assert_eq!(app.post_with(&c, &dismiss, &p).await.status().as_u16(), 303);
    let id = entry(&app, "failure.dismiss", &reference).await;
    // From the audit log: back to the log.
    let (_, html) = page(&app, &c, "/admin/audit").await;
    assert!(html.contains(&format!("action=\"/admin/audit/{id}/undo\"")));
    let res = undo(&app, &c, &csrf, id).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(header(&res, "location"), "/admin/audit?done=undone");
    assert_eq!(state(&app, &reference).await, before);
    assert!(undo_of(&app, id).await.is_some());
    let (_, html) = page(&app, &c, "/admin/audit").await;
    assert!(
        !html.contains(&format!("action=\"/admin/audit/{id}/undo\"")),
        "no second undo offered"
    );

    // Dismissed, reopened, dismissed again: the first can no longer be undone.
    assert_eq!(app.post_with(&c, &dismiss, &p).await.status().as_u16(), 303);
    let second = entry(&app, "failure.dismiss", &reference).await;
    let reopen = format!("/admin/failures/{reference}/reopen");
    let p2 = [("csrf_token", csrf.as_str())];
    assert_eq!(app.post_with(&c, &reopen, &p2).await.status().as_u16(), 303);
    assert_eq!(app.post_with(&c, &dismiss, &p).await.status().as_u16(), 303);
    let res = undo(&app, &c, &csrf, second).await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.text().await.expect("html").contains(CHANGED_SINCE));
    assert_eq!(state(&app, &reference).await.0, "dismissed");
}

#[tokio::test]
async fn undoing_a_link_deletes_it_and_undoing_an_unlink_puts_the_same_row_back() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let link = |subject: &'static str| {
        let app = &app;
        let (c, csrf) = (&c, csrf.clone());
        async move {
            let p = [
                ("csrf_token", csrf.as_str()),
                ("idp_entity_id", app.idp.entity_id.as_str()),
                ("subject", subject),
                ("account_id", "A-5"),
            ];
            app.post_with(c, "/admin/mappings", &p)
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(link("sub-link").await, 303);
    let target = format!("{} sub-link", app.idp.entity_id);
    let created = entry(&app, "mapping.create", &target).await;
    assert_eq!(undo(&app, &c, &csrf, created).await.status().as_u16(), 303);
    assert_eq!(mapping_row(&app, "sub-link").await, None);

    // Unlinked, then put back exactly: same row ID, source and time.
    app.map("sub-unlink", "A-5").await;
    let row = mapping_row(&app, "sub-unlink").await.expect("mapped");
    let p = [("csrf_token", csrf.as_str())];
    let res = app
        .post_with(&c, &format!("/admin/mappings/{}/delete", row.0), &p)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(mapping_row(&app, "sub-unlink").await, None);
    let target = format!("{} sub-unlink", app.idp.entity_id);
    let deleted = entry(&app, "mapping.delete", &target).await;
    assert_eq!(undo(&app, &c, &csrf, deleted).await.status().as_u16(), 303);
    assert_eq!(mapping_row(&app, "sub-unlink").await, Some(row));
    app.expect_login(&app.mint(&app.nobody("sub-unlink")), "A-5")
        .await;

    // A link unlinked since can no longer be undone.
    assert_eq!(link("sub-gone").await, 303);
    let target = format!("{} sub-gone", app.idp.entity_id);
    let created = entry(&app, "mapping.create", &target).await;
    let id = mapping_row(&app, "sub-gone").await.expect("row").0;
    let res = app
        .post_with(&c, &format!("/admin/mappings/{id}/delete"), &p)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let res = undo(&app, &c, &csrf, created).await;
    assert_eq!(res.status().as_u16(), 409);
    assert!(res.text().await.expect("html").contains(CHANGED_SINCE));
}

#[tokio::test]
async fn an_undo_outside_the_admins_schools_is_not_found_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    app.add_admin("b@x.test", "school_admin", &[BRIN]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let reference = app.fail(&app.nobody("sub-scope")).await;
    let dismiss = format!("/admin/failures/{reference}/dismiss");
    let p = [("csrf_token", csrf.as_str()), ("reason", "noise")];
    assert_eq!(app.post_with(&c, &dismiss, &p).await.status().as_u16(), 303);
    let id = entry(&app, "failure.dismiss", &reference).await;
    let (cb, csrf_b) = app.admin_client("b@x.test").await;
    assert_eq!(undo(&app, &cb, &csrf_b, id).await.status().as_u16(), 404);
    assert_eq!(state(&app, &reference).await.0, "dismissed");
    assert_eq!(undo_of(&app, id).await, None);
    // And without the session's CSRF token, nobody undoes anything.
    assert_eq!(undo(&app, &c, "forged", id).await.status().as_u16(), 403);
}

#[tokio::test]
async fn recheck_resolves_an_unknown_school_failure_after_the_school_is_imported() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let spec = app.ent("sub-new-school", "Janssen", "Eva", "01/02/2012", UAI_B);
    let reference = app.fail(&spec).await;
    let f = app.failure(&reference).await.expect("row");
    assert_eq!(f.kind.as_str(), "unknown_school");
    let recheck = format!("/admin/failures/{reference}/recheck");
    let p = [("csrf_token", csrf.as_str())];
    let res = app.post_with(&c, &recheck, &p).await;
    assert_eq!(
        header(&res, "location"),
        format!("/admin/failures/{reference}?done=recheck_unchanged")
    );

    // The school arrives through the import (as `jointure import schools`
    // and the desk's upload run it), trusting this IdP.
    let csv = format!(
        "school_code,name,idp_entity_ids\n{UAI_B},Collège B,{}\n",
        app.idp.entity_id
    );
    let r = import(
        &app.svc.pool,
        &app.svc.known_idps(),
        ImportKind::Schools,
        "schools.csv",
        csv.as_bytes(),
        &Options::new("root@x.test"),
    )
    .await
    .expect("import");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // Registered, but Eva has no account yet: now a mismatch.
    let res = app.post_with(&c, &recheck, &p).await;
    assert_eq!(
        header(&res, "location"),
        format!("/admin/failures/{reference}?done=recheck_changed")
    );
    let f = app.failure(&reference).await.expect("row");
    assert_eq!(
        (f.kind.as_str(), f.status.as_str()),
        ("identity_mismatch", "open")
    );
    // Her account appears (put here directly: an accounts import would
    // resolve the failure by itself, which is not what is tested).
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    app.add_account(
        &mut conn,
        ("C-1", UAI_B, "Janssen", "Eva", "2012-02-01", true),
    )
    .await;
    drop(conn);
    let res = app.post_with(&c, &recheck, &p).await;
    assert_eq!(
        header(&res, "location"),
        format!("/admin/failures/{reference}?done=recheck_resolved")
    );
    let f = app.failure(&reference).await.expect("row");
    assert_eq!(
        (f.status.as_str(), f.resolved_account_id.as_deref()),
        ("resolved", Some("C-1"))
    );
    assert_eq!(
        app.mapping("sub-new-school").await,
        Some(("C-1".into(), "auto".into())),
        "mapped as the login would have"
    );
    entry(&app, "failure.recheck", &reference).await;
    // Resolved now: no longer re-checkable, and told so.
    let res = app.post_with(&c, &recheck, &p).await;
    assert_eq!(res.status().as_u16(), 422);
    assert!(res
        .text()
        .await
        .expect("html")
        .contains("peut être revérifié"));
    // A fresh response (the first one's assertion ID is spent).
    let again = app.ent("sub-new-school", "Janssen", "Eva", "01/02/2012", UAI_B);
    app.expect_login(&app.mint(&again), "C-1").await;
}

#[tokio::test]
async fn a_bulk_recheck_only_touches_the_admins_schools() {
    let app = TestApp::spawn().await;
    app.add_admin("b@x.test", "school_admin", &[BRIN]).await;
    let in_a = app.fail(&app.nobody("sub-in-a")).await;
    let in_b = app
        .fail(&app.ent("sub-in-b", "Vries", "Sanne", "14/02/2013", BRIN))
        .await;
    assert_eq!(
        app.failure(&in_b).await.expect("row").kind.as_str(),
        "identity_mismatch"
    );
    // Both would now log in.
    app.map("sub-in-a", "A-5").await;
    app.map("sub-in-b", "B-1").await;
    let (c, csrf) = app.admin_client("b@x.test").await;
    let res = app
        .post_with(&c, "/admin/failures/recheck", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        header(&res, "location"),
        "/admin/audit?done=recheck_all&checked=1&resolved=1&changed=0"
    );
    assert_eq!(state(&app, &in_b).await.0, "resolved");
    assert_eq!(
        state(&app, &in_a).await.0,
        "open",
        "another school's failure"
    );
    // A school admin's re-check of another school's failure is 404.
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{in_a}/recheck"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(state(&app, &in_a).await.0, "open");
}
