//! The desk's candidates and comparison (issue 11, items 3 and 4): a
//! parent's report finds the child it names, the identity's own mapping is
//! no reason against an account, differences between what the IdP sent and
//! what the user declared are marked field by field (names folded), and the
//! raw response is folded away in a `<details>`.

use crate::common::*;
use jointure::store::failures;

/// Saves a report on an open failure, as the form would.
async fn report(app: &TestApp, reference: &str, json: serde_json::Value) {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    assert!(
        failures::save_report(&mut conn, reference, &json.to_string(), "fr")
            .await
            .expect("save"),
        "the failure is open"
    );
}

/// The failure's detail page as a logged-in admin sees it.
async fn detail(app: &TestApp, admin: &reqwest::Client, reference: &str) -> String {
    let res = admin
        .get(format!("{}/admin/failures/{reference}", app.base))
        .send()
        .await
        .expect("detail");
    assert_eq!(res.status().as_u16(), 200);
    res.text().await.expect("html")
}

const ROW: &str = "class=\"candidate\" data-account=\"";

/// The account IDs of the candidates, best first.
fn candidates(html: &str) -> Vec<&str> {
    html.match_indices(ROW)
        .map(|(i, _)| {
            let start = i + ROW.len();
            &html[start..start + html[start..].find('"').expect("end")]
        })
        .collect()
}

/// The candidate row of `account`, if listed.
fn row<'a>(html: &'a str, account: &str) -> Option<&'a str> {
    let start = html.find(&format!("{ROW}{account}\""))?;
    let end = html[start..].find("</tr>").expect("row end") + start;
    Some(&html[start..end])
}

/// The score shown in a candidate row.
fn score(row: &str) -> i32 {
    let start = row.find("<td class=\"num\">").expect("score") + "<td class=\"num\">".len();
    row[start..start + row[start..].find('<').expect("end")]
        .trim()
        .parse()
        .expect("a number")
}

const CHILD_NAMED: &str = "enfant nommé dans le signalement";
const MAPPED_ELSEWHERE: &str = "déjà relié à une autre identité";
const MAPPED_HERE: &str = "déjà relié à cette même identité";

#[tokio::test]
async fn a_parents_report_finds_the_child_it_names_and_says_so() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    // A parent without an account of their own (a namesake, Haddad Inès, is
    // in the school: the child must still come first).
    let reference = app
        .fail(&app.ent("sub-parent", "Haddad", "Karim", "03/03/1984", UAI))
        .await;
    let f = app.failure(&reference).await.expect("stored");
    assert!(f.kind.is_resolvable(), "{}", f.kind.as_str());
    let (admin, _) = app.admin_client("root@x.test").await;
    let before = detail(&app, &admin, &reference).await;
    assert_ne!(candidates(&before).first(), Some(&"A-1"), "not found yet");

    report(
        &app,
        &reference,
        serde_json::json!({
            "last_name": "Haddad", "first_name": "Karim", "birth_date": "1984-03-03",
            "role": "parent", "class_name": "", "email": "", "phone": "", "message": "",
            "children": [
                {"last_name": "Dupont-Martin", "first_name": "Élodie",
                 "birth_date": "2011-04-12", "class_name": "4B"},
            ],
        }),
    )
    .await;
    let html = detail(&app, &admin, &reference).await;
    let listed = candidates(&html);
    assert_eq!(
        listed.first(),
        Some(&"A-1"),
        "the child is the top candidate"
    );
    let child = row(&html, "A-1").expect("the child's row");
    assert!(child.contains(CHILD_NAMED), "{child}");
    // Clearly ahead: offered in one click.
    let lead = &html[html.find("id=\"lead\"").expect("a one-click link")..];
    assert!(lead.contains("name=\"account_id\" value=\"A-1\""));
    for other in listed.iter().skip(1) {
        let r = row(&html, other).expect("row");
        assert!(!r.contains(CHILD_NAMED), "{other} is no child named: {r}");
        assert!(score(r) < score(child), "{other} ranks below the child");
    }
}

#[tokio::test]
async fn children_of_a_report_that_is_not_a_parents_are_not_searched() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app
        .fail(&app.ent("sub-pupil", "Haddad", "Karim", "03/03/1984", UAI))
        .await;
    report(
        &app,
        &reference,
        serde_json::json!({
            "last_name": "Haddad", "first_name": "Karim", "birth_date": "1984-03-03",
            "role": "teacher", "class_name": "", "email": "", "phone": "", "message": "",
            "children": [
                {"last_name": "Dupont-Martin", "first_name": "Élodie",
                 "birth_date": "2011-04-12", "class_name": "4B"},
            ],
        }),
    )
    .await;
    let (admin, _) = app.admin_client("root@x.test").await;
    let html = detail(&app, &admin, &reference).await;
    assert!(!html.contains(CHILD_NAMED));
    assert!(row(&html, "A-1").is_none(), "{:?}", candidates(&html));
}

#[tokio::test]
async fn the_identitys_own_mapping_is_not_a_minus_only_anothers_is() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app
        .fail(&app.ent("sub-own", "Dupond-Martin", "Elodie", "12/04/2011", UAI))
        .await;
    let (admin, csrf) = app.admin_client("root@x.test").await;
    let fresh = detail(&app, &admin, &reference).await;
    let free = score(row(&fresh, "A-1").expect("A-1 proposed"));

    // Resolve to A-1 (the mapping is made), then reopen (it stays).
    for (action, pairs) in [
        (
            "resolve",
            vec![("csrf_token", csrf.as_str()), ("account_id", "A-1")],
        ),
        ("reopen", vec![("csrf_token", csrf.as_str())]),
    ] {
        let res = app
            .post_with(
                &admin,
                &format!("/admin/failures/{reference}/{action}"),
                &pairs,
            )
            .await;
        assert_eq!(res.status().as_u16(), 303, "{action}");
    }
    assert_eq!(
        app.mapping("sub-own").await.map(|m| m.0).as_deref(),
        Some("A-1")
    );
    let html = detail(&app, &admin, &reference).await;
    assert!(
        html.contains("<span id=\"status\" data-status=\"open\">"),
        "reopened"
    );
    assert_eq!(candidates(&html).first(), Some(&"A-1"));
    let own = row(&html, "A-1").expect("A-1 still proposed");
    assert!(!own.contains(MAPPED_ELSEWHERE), "{own}");
    assert!(own.contains(MAPPED_HERE), "{own}");
    assert_eq!(score(own), free, "no minus for its own mapping");

    // Another subject of the same IdP on A-1: now that is a minus.
    app.map("sub-twin", "A-1").await;
    let html = detail(&app, &admin, &reference).await;
    let taken = row(&html, "A-1").expect("A-1 still proposed");
    assert!(taken.contains(MAPPED_ELSEWHERE), "{taken}");
    assert_eq!(score(taken), free - 25);
}

#[tokio::test]
async fn differences_are_marked_field_by_field_with_names_folded() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app
        .fail(&app.ent("sub-diff", "Lefèvre", "Élodie", "12/04/2011", UAI))
        .await;
    report(
        &app,
        &reference,
        serde_json::json!({
            "last_name": "LEFEVRE", "first_name": "Camille", "birth_date": "2011-04-12",
            "role": "student", "class_name": "4B", "email": "", "phone": "", "message": "",
            "children": [],
        }),
    )
    .await;
    let (admin, _) = app.admin_client("root@x.test").await;
    let html = detail(&app, &admin, &reference).await;
    // Case and accents alone: both spellings shown, none marked.
    assert!(
        html.contains("<dd id=\"asserted-last-name\">Lefèvre</dd>"),
        "{html}"
    );
    assert!(html.contains("<dd id=\"declared-last-name\">LEFEVRE</dd>"));
    // Another first name: marked on both sides, in words too.
    assert!(html.contains("<dd id=\"asserted-first-name\" class=\"differs\">Élodie</dd>"));
    assert!(html.contains(
        "<dd id=\"declared-first-name\" class=\"differs\">Camille <span class=\"differs-mark\">diffère</span></dd>"
    ));
    // The same birth date, written otherwise by the IdP: not marked.
    assert!(html.contains("<dd id=\"declared-birth-date\">2011-04-12</dd>"));
    assert!(html.contains("<dd id=\"asserted-birth-date\">"));
    assert_eq!(
        html.matches("class=\"differs\"").count(),
        2,
        "only the first name"
    );
}

#[tokio::test]
async fn a_different_birth_date_is_marked() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app
        .fail(&app.ent("sub-born", "Lefèvre", "Élodie", "12/04/2011", UAI))
        .await;
    report(
        &app,
        &reference,
        serde_json::json!({
            "last_name": "Lefèvre", "first_name": "elodie", "birth_date": "2011-04-13",
            "role": "student", "class_name": "", "email": "", "phone": "", "message": "",
            "children": [],
        }),
    )
    .await;
    let (admin, _) = app.admin_client("root@x.test").await;
    let html = detail(&app, &admin, &reference).await;
    assert!(html.contains("<dd id=\"asserted-birth-date\" class=\"differs\">"));
    assert!(html.contains("<dd id=\"declared-birth-date\" class=\"differs\">2011-04-13 "));
    assert!(html.contains("<dd id=\"declared-first-name\">elodie</dd>"));
    assert_eq!(html.matches("class=\"differs\"").count(), 2);
}

#[tokio::test]
async fn the_raw_response_is_folded_away_and_reachable_by_keyboard() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app.fail(&app.nobody("sub-raw")).await;
    let (admin, _) = app.admin_client("root@x.test").await;
    let html = detail(&app, &admin, &reference).await;
    let open = html
        .find("<details class=\"raw\" id=\"raw\">")
        .expect("a closed <details>");
    let close = html[open..].find("</details>").expect("end") + open;
    let block = &html[open..close];
    assert!(block.contains("<summary>"), "{block}");
    let pre = block
        .find("<pre class=\"raw\" tabindex=\"0\"")
        .expect("a focusable <pre>");
    assert!(block[pre..].contains("Response"), "the response is inside");
    assert!(!html.contains("<details class=\"raw\" id=\"raw\" open"));
    assert_eq!(html.matches("<pre").count(), 1, "no other copy left open");
}
