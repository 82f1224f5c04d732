//! The dashboard (issue 11, item 6) and the desk's reads at scale (item 7):
//! scoped figures that link to lists of the same count, one accessible SVG
//! chart per kind, the oldest open failure, the candidate prefilter, the
//! folded names kept right, and the query plans that make it fast.

use crate::common::*;
use jointure::resolve::ranking::{rank, CandidateAccount, Claimed, Probe};
use jointure::store::{accounts, failures};

/// A page's HTML as `c` sees it.
async fn page(app: &TestApp, c: &reqwest::Client, path: &str) -> String {
    let res = c
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 200, "{path}");
    res.text().await.expect("html")
}

/// The href of the first link whose text is `n` after `marker`.
fn link_of(html: &str, marker: &str, n: i64) -> String {
    let from = html.find(marker).unwrap_or_else(|| panic!("{marker}"));
    let part = &html[from..];
    let end = part
        .find(&format!("\">{n}</a>"))
        .unwrap_or_else(|| panic!("{marker}: no link for {n} in {part}"));
    let start = part[..end].rfind("href=\"").expect("href") + "href=\"".len();
    part[start..end].replace("&#38;", "&").replace("&amp;", "&")
}

/// The number of failures a list page shows.
fn rows(list: &str) -> i64 {
    list.matches("class=\"support\"").count() as i64
}

async fn save_report(app: &TestApp, reference: &str) {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let json = serde_json::json!({
        "last_name": "Inconnu", "first_name": "Jean", "birth_date": "2011-01-01", "role": "student",
        "class_name": "", "email": "", "phone": "", "message": "",
    });
    assert!(
        failures::save_report(&mut conn, reference, &json.to_string(), "fr")
            .await
            .expect("save")
    );
}

#[tokio::test]
async fn a_school_admins_dashboard_counts_only_its_schools_and_each_figure_leads_to_a_list_of_that_count(
) {
    let app = TestApp::spawn().await;
    app.add_admin("a@x.test", "school_admin", &[UAI]).await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(app.fail(&app.nobody(&format!("mine-{i}"))).await);
    }
    save_report(&app, &mine[0]).await;
    for i in 0..2 {
        // Another school's failures (not registered: unknown_school).
        app.fail(&app.ent(&format!("other-{i}"), "a", "b", "01/01/2011", UAI_B))
            .await;
    }
    let (c, _) = app.admin_client("a@x.test").await;
    let html = page(&app, &c, "/admin").await;
    assert!(!html.contains(UAI_B), "another school is not shown");
    assert!(!html.contains("unknown_school"), "nor its kinds");
    let by_kind = link_of(&html, "id=\"by-kind\"", 3);
    assert!(by_kind.contains("kind=identity_mismatch") && by_kind.contains("status=open"));
    let by_school = link_of(&html, "id=\"by-school\"", 3);
    assert!(by_school.contains(&format!("school={UAI}")));
    for href in [&by_kind, &by_school] {
        assert_eq!(rows(&page(&app, &c, href).await), 3, "{href}");
    }
    let reported = &html[html.find("id=\"reported\"").expect("reported")..];
    assert!(
        reported.contains("status=open&#38;form=sent\"><span class=\"big\">1</span>"),
        "{reported}"
    );

    let (root, _) = app.admin_client("root@x.test").await;
    let all = page(&app, &root, "/admin").await;
    let other = link_of(&all, "id=\"by-school\"", 2);
    assert!(other.contains(&format!("school={UAI_B}")));
    assert_eq!(rows(&page(&app, &root, &other).await), 2);
}

#[tokio::test]
async fn each_kind_of_the_last_30_days_has_an_svg_chart_whose_text_says_its_numbers() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    for i in 0..2 {
        app.fail(&app.nobody(&format!("chart-{i}"))).await;
    }
    app.fail(&app.ent("chart-x", "a", "b", "01/01/2011", UAI_B))
        .await;
    let (c, _) = app.admin_client("root@x.test").await;
    let html = page(&app, &c, "/admin").await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for (kind, n) in [("identity_mismatch", 2), ("unknown_school", 1)] {
        let start = html
            .find(&format!("<figure class=\"chart\" data-kind=\"{kind}\">"))
            .unwrap_or_else(|| panic!("a chart for {kind}"));
        let chart = &html[start..start + html[start..].find("</figure>").expect("end")];
        assert!(chart.contains(&format!(
            "<svg role=\"img\" aria-labelledby=\"chart-{kind}-title chart-{kind}-desc\""
        )));
        assert!(chart.contains(&format!("<title id=\"chart-{kind}-title\">")));
        let desc =
            &chart[chart.find("<desc").expect("desc")..chart.find("</desc>").expect("/desc")];
        assert!(desc.contains(&format!("{today}: {n}")), "{desc}");
        assert_eq!(chart.matches("<rect class=\"bar\"").count(), 1, "{chart}");
        assert!(!chart.contains("style="), "the CSP allows no inline style");
        // The day's figure links to that day's list.
        let day = link_of(chart, "<table class=\"days\">", n);
        assert!(day.contains(&format!("kind={kind}")) && day.contains(&format!("from={today}")));
        assert_eq!(rows(&page(&app, &c, &day).await), n);
    }
}

#[tokio::test]
async fn the_oldest_open_failure_is_named_and_linked() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let old = app.fail(&app.nobody("old")).await;
    app.fail(&app.nobody("new")).await;
    sqlx::query("UPDATE failures SET first_seen = '2026-01-02T03:04:05Z' WHERE reference = ?")
        .bind(&old)
        .execute(&app.svc.pool)
        .await
        .expect("age it");
    let (c, _) = app.admin_client("root@x.test").await;
    let html = page(&app, &c, "/admin").await;
    let oldest = &html[html.find("id=\"oldest\"").expect("oldest")..];
    let oldest = &oldest[..oldest.find("</p>").expect("end")];
    assert!(
        oldest.contains(&format!("href=\"/admin/failures/{old}\"")),
        "{oldest}"
    );
    assert!(oldest.contains("2026-01-02"), "{oldest}");
}

/// Adds `n` accounts with names unlike the test's people to the school.
async fn crowd(app: &TestApp, n: usize) {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let (lasts, firsts) = (
        ["Lefèvre", "Bonnet", "Girard", "Rousseau"],
        ["Théo", "Manon", "Hugo", "Léa"],
    );
    for i in 0..n {
        let birth = format!("2012-{:02}-{:02}", i % 12 + 1, i % 27 + 1);
        let id = format!("C-{i}");
        app.add_account(
            &mut conn,
            (&id, UAI, lasts[i % 4], firsts[i / 4 % 4], &birth, true),
        )
        .await;
    }
}

/// The accounts the prefilter reads for one claim, and the ranked IDs.
async fn prefiltered(app: &TestApp, claim: Claimed) -> (usize, Vec<String>) {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let claims = [claim];
    let pool = accounts::plausible_pool(
        &mut conn,
        UAI,
        Some(&app.idp.entity_id),
        Some("who"),
        &Probe::of(&claims),
    )
    .await
    .expect("pool");
    let read = pool.len();
    let accounts = pool
        .into_iter()
        .map(|(a, r)| CandidateAccount {
            account_id: a.account_id,
            last_name: a.last_name,
            first_name: a.first_name,
            birth_date: a.birth_date,
            class_name: a.class_name,
            active: a.active,
            mapped_elsewhere: r.elsewhere,
            mapped_here: r.here,
        })
        .collect();
    let ids = rank(&claims, accounts, 10)
        .into_iter()
        .map(|r| r.account.account_id)
        .collect();
    (read, ids)
}

fn claim(last: &str, first: &str, birth: &str) -> Claimed {
    Claimed {
        last_name: Some(last.into()),
        first_name: Some(first.into()),
        birth_date: birth.parse().ok(),
        ..Claimed::default()
    }
}

#[tokio::test]
async fn the_candidate_prefilter_reads_few_accounts_and_still_finds_the_person() {
    let app = TestApp::spawn().await;
    crowd(&app, 400).await;
    for (what, c) in [
        (
            "exact name, other birth date",
            claim("Dupont-Martin", "Élodie", "2010-01-01"),
        ),
        (
            "swapped names",
            claim("Elodie", "Dupont Martin", "2011-04-12"),
        ),
        ("accents and case", claim("DUPONT MARTIN", "ELODIE", "")),
        (
            "typo early in the name, same birth date",
            claim("Fupont-Martin", "Alodie", "2011-04-12"),
        ),
        (
            "typo late in the last name",
            claim("Dupont-Martim", "Élodie", ""),
        ),
    ] {
        let (read, ids) = prefiltered(&app, c).await;
        assert_eq!(
            ids.first().map(String::as_str),
            Some("A-1"),
            "{what}: {ids:?}"
        );
        assert!(read < 50, "{what}: {read} of 405 accounts read");
    }
}

#[tokio::test]
async fn the_accounts_mapped_to_the_identity_are_candidates_whatever_their_names() {
    let app = TestApp::spawn().await;
    app.map("who", "A-5").await;
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let claims = [claim("Zyx", "Qwv", "1999-09-09")];
    let pool = accounts::plausible_pool(
        &mut conn,
        UAI,
        Some(&app.idp.entity_id),
        Some("who"),
        &Probe::of(&claims),
    )
    .await
    .expect("pool");
    let ids: Vec<_> = pool
        .iter()
        .map(|(a, r)| (a.account_id.as_str(), r.here))
        .collect();
    assert_eq!(ids, [("A-5", true)]);
}

#[tokio::test]
async fn the_child_of_a_parents_report_is_found_through_the_prefilter_among_many_accounts() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    crowd(&app, 400).await;
    let reference = app
        .fail(&app.ent("sub-parent", "Haddad", "Karim", "03/03/1984", UAI))
        .await;
    let json = serde_json::json!({
        "last_name": "Haddad", "first_name": "Karim", "birth_date": "1984-03-03", "role": "parent",
        "class_name": "", "email": "", "phone": "", "message": "",
        "children": [{"last_name": "DUPONT MARTIN", "first_name": "elodie", "birth_date": "2011-04-12", "class_name": "4B"}]
    });
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    assert!(
        failures::save_report(&mut conn, &reference, &json.to_string(), "fr")
            .await
            .expect("save")
    );
    drop(conn);
    let (c, _) = app.admin_client("root@x.test").await;
    let html = page(&app, &c, &format!("/admin/failures/{reference}")).await;
    let first = html
        .find("class=\"candidate\" data-account=\"")
        .expect("a candidate");
    assert!(html[first..].starts_with("class=\"candidate\" data-account=\"A-1\""));
}

#[tokio::test]
async fn folded_names_are_stored_for_accounts_imported_by_csv() {
    let app = TestApp::spawn().await;
    let csv = "account_id,school_code,last_name,first_name,birth_date,role\nN-1,0751234J,N'Diaye-Lefèvre,Zoë,2012-03-09,élève\n";
    jointure::csv_io::import(
        &app.svc.pool,
        &app.svc.known_idps(),
        jointure::csv_io::ImportKind::Accounts,
        "a.csv",
        csv.as_bytes(),
        &jointure::csv_io::Options::new("test"),
    )
    .await
    .expect("import");
    let folded: (String, String) =
        sqlx::query_as("SELECT folded_last, folded_first FROM accounts WHERE account_id = 'N-1'")
            .fetch_one(&app.svc.pool)
            .await
            .expect("row");
    assert_eq!(folded, ("ndiayelefevre".into(), "zoe".into()));
}

#[tokio::test]
async fn folded_names_of_an_older_folding_are_redone_at_start() {
    let app = TestApp::spawn().await;
    // As a database whose folds predate the current folding would be.
    sqlx::query("UPDATE accounts SET folded_last = 'stale', folded_first = ''")
        .execute(&app.svc.pool)
        .await
        .expect("stale folds");
    sqlx::query("UPDATE name_fold SET version = 0")
        .execute(&app.svc.pool)
        .await
        .expect("old version");
    let config = config_for(app.dir.path(), &app.idp);
    let again = jointure::Application::build(config, false)
        .await
        .expect("restarts");
    let svc = again.service();
    let pool = &svc.pool;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT account_id, folded_last, folded_first FROM accounts ORDER BY account_id",
    )
    .fetch_all(pool)
    .await
    .expect("rows");
    assert!(
        rows.contains(&("A-1".into(), "dupontmartin".into(), "elodie".into())),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|(_, l, f)| l != "stale" && !f.is_empty()),
        "{rows:?}"
    );
    let version: i64 = sqlx::query_scalar("SELECT version FROM name_fold")
        .fetch_one(pool)
        .await
        .expect("version");
    assert_eq!(version, accounts::FOLD_VERSION);
}

/// `EXPLAIN QUERY PLAN` of `sql`, one step a line.
async fn plan(app: &TestApp, sql: &str) -> String {
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(&app.svc.pool)
        .await
        .expect("plan");
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn the_history_dashboard_and_prefilter_queries_use_indexes() {
    let app = TestApp::spawn().await;
    for (sql, index) in [
        (
            "SELECT id FROM failures WHERE idp_entity_id = 'i' AND subject = 's' AND school_code IN ('x') ORDER BY last_seen DESC, id DESC LIMIT 50",
            "failures_by_identity",
        ),
        (
            "SELECT reference FROM failures WHERE status = 'open' ORDER BY first_seen, id LIMIT 1",
            "failures_open_first_seen",
        ),
        (
            "SELECT reference FROM failures WHERE status = 'open' AND school_code = 'x' ORDER BY first_seen, id LIMIT 1",
            "failures_open_school_first_seen",
        ),
        (
            "SELECT day, kind, SUM(n) FROM failure_days WHERE n > 0 AND day >= '2026-01-01' AND school_code IN ('x') GROUP BY day, kind",
            "PRIMARY KEY (day>?)",
        ),
        (
            "SELECT rowid FROM accounts WHERE school_code = 'x' AND folded_last >= 'dup' AND folded_last < 'dupz' AND folded_first >= 'elo' AND folded_first < 'eloz'",
            "accounts_identity",
        ),
        (
            "SELECT rowid FROM accounts WHERE school_code = 'x' AND birth_date = '2011-04-12'",
            "accounts_birth_date",
        ),
    ] {
        let p = plan(&app, sql).await;
        assert!(p.contains(index), "{sql}\n{p}");
        assert!(!p.contains("SCAN failures") && !p.contains("SCAN accounts"), "{sql}\n{p}");
    }
}
