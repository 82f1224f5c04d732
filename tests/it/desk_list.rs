//! The desk's failure list: "needs you" first, each order paged forwards and
//! back, the totals, the form-sent and unverified filters, bulk dismiss
//! (scoped, audited, CSRF) and no raw response on the page.

use crate::common::*;

/// A failure as seeded: what the orders read.
#[derive(Clone)]
struct Seed {
    school: Option<&'static str>,
    status: &'static str,
    count: i64,
    first_seen: String,
    last_seen: String,
    report: bool,
    verified: bool,
}

impl Seed {
    fn open(school: &'static str, count: i64, day: u32) -> Seed {
        Seed {
            school: Some(school),
            status: "open",
            count,
            first_seen: at(day, 7),
            last_seen: at(day, 8),
            report: false,
            verified: true,
        }
    }
}

/// A time `day` days and `hour` hours after a week ago (recent: the hourly
/// purge of old personal data must not touch the seeded reports).
fn at(day: u32, hour: u32) -> String {
    let week_ago = chrono::Utc::now() - chrono::Duration::days(7);
    let t = week_ago + chrono::Duration::days(day.into()) + chrono::Duration::hours(hour.into());
    jointure::store::time_text(t)
        .get(..13)
        .map(|h| format!("{h}:00:00Z"))
        .unwrap_or_default()
}

/// A seeded row: its id and reference, and the seed.
struct Row {
    id: i64,
    reference: String,
    seed: Seed,
}

const RAW: &str = "<samlp:Response>RAW-RESPONSE-TEXT-42</samlp:Response>";

async fn seed(app: &TestApp, seeds: &[Seed]) -> Vec<Row> {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let mut rows = Vec::new();
    for (i, s) in seeds.iter().enumerate() {
        let n = app.count_failures().await + i as i64;
        let reference = format!("ref-list-{n:04}-{i}");
        let id = sqlx::query(
            "INSERT INTO failures (reference, support_code, kind, status, idp_entity_id, school_code,
               subject, detail, asserted_verified, asserted_last_name, raw_response, first_seen,
               last_seen, count, report_json)
             VALUES (?, ?, 'identity_mismatch', ?, 'https://idp.test/saml', ?, ?, 'seeded', ?,
               'Seedname', ?, ?, ?, ?, ?)",
        )
        .bind(&reference)
        .bind(format!("L{n:04}-{i:04}"))
        .bind(s.status)
        .bind(s.school)
        .bind(format!("sub-list-{n}-{i}"))
        .bind(s.verified as i64)
        .bind(RAW)
        .bind(&s.first_seen)
        .bind(&s.last_seen)
        .bind(s.count)
        .bind(s.report.then_some(r#"{"last_name":"Dupont"}"#))
        .execute(&mut *conn)
        .await
        .expect("insert")
        .last_insert_rowid();
        rows.push(Row {
            id,
            reference,
            seed: s.clone(),
        });
    }
    rows
}

/// 33 failures over two schools and none, with ties in count and time.
fn mixed() -> Vec<Seed> {
    (0..33u32)
        .map(|i| {
            let mut s = Seed::open(
                [UAI, BRIN, UAI][i as usize % 3],
                1 + i64::from(i % 4),
                1 + i % 6,
            );
            s.first_seen = at(1 + (i * 7) % 5, 6);
            if i % 5 == 0 {
                s.report = true;
            }
            if i % 7 == 0 {
                s.status = "resolved";
            }
            if i % 11 == 0 {
                s.school = None;
            }
            s
        })
        .collect()
}

/// The references in the order the seeded rows should show under `sort`.
fn expected(rows: &[Row], sort: &str) -> Vec<String> {
    let mut v: Vec<&Row> = rows.iter().collect();
    let needs = |r: &Row| (r.seed.status == "open" && r.seed.report) as i64;
    let school = |r: &Row| r.seed.school.unwrap_or("").to_string();
    match sort {
        "needs_you" => v.sort_by_key(|r| {
            std::cmp::Reverse((needs(r), r.seed.count, r.seed.last_seen.clone(), r.id))
        }),
        "last_seen" => v.sort_by_key(|r| std::cmp::Reverse((r.seed.last_seen.clone(), r.id))),
        "first_seen" => v.sort_by_key(|r| (r.seed.first_seen.clone(), r.id)),
        "count" => {
            v.sort_by_key(|r| std::cmp::Reverse((r.seed.count, r.seed.last_seen.clone(), r.id)))
        }
        _ => v.sort_by_key(|r| (school(r), r.seed.last_seen.clone(), r.id)),
    }
    v.into_iter().map(|r| r.reference.clone()).collect()
}

async fn page(c: &reqwest::Client, app: &TestApp, query: &str) -> String {
    let res = c
        .get(format!("{}/admin/failures?{query}", app.base))
        .send()
        .await
        .expect("list");
    assert_eq!(res.status().as_u16(), 200, "{query}");
    res.text().await.expect("html")
}

/// The references of the rows on a list page, in order.
fn references(html: &str) -> Vec<String> {
    html.split("<tr data-reference=\"")
        .skip(1)
        .map(|s| s[..s.find('"').expect("end")].to_string())
        .collect()
}

/// The query of the link with this id, if the page has it.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind("href=\"/admin/failures?")? + "href=\"/admin/failures?".len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

fn data(html: &str, name: &str) -> i64 {
    let key = format!("data-{name}=\"");
    let start = html.find(&key).expect(name) + key.len();
    html[start..start + html[start..].find('"').expect("end")]
        .parse()
        .expect("a number")
}

async fn root(app: &TestApp) -> (reqwest::Client, String) {
    app.add_admin("root@x.test", "superadmin", &[]).await;
    app.admin_client("root@x.test").await
}

#[tokio::test]
async fn the_default_order_puts_the_failure_whose_user_sent_the_form_first() {
    let app = TestApp::spawn().await;
    let mut seeds = vec![Seed::open(UAI, 9, 6), Seed::open(UAI, 1, 1)];
    seeds[1].report = true;
    // A resolved failure with a report does not need anybody.
    let mut done = Seed::open(UAI, 20, 5);
    done.report = true;
    done.status = "resolved";
    seeds.push(done);
    let rows = seed(&app, &seeds).await;
    let (c, _) = root(&app).await;
    let html = page(&c, &app, "").await;
    assert_eq!(
        references(&html),
        vec![
            rows[1].reference.clone(),
            rows[2].reference.clone(),
            rows[0].reference.clone()
        ]
    );
    assert!(html.contains("class=\"form-sent\""));
}

/// Pages through every order forwards then back as `c`, who sees `rows`.
async fn pages_every_order(app: &TestApp, c: &reqwest::Client, rows: &[Row], pages: usize) {
    for sort in ["needs_you", "last_seen", "first_seen", "count", "school"] {
        let mut forwards: Vec<Vec<String>> = Vec::new();
        let mut html = page(c, app, &format!("sort={sort}&per=7")).await;
        assert!(
            link(&html, "prev-page").is_none(),
            "{sort}: no page before the first"
        );
        loop {
            forwards.push(references(&html));
            match link(&html, "next-page") {
                Some(q) => html = page(c, app, &q).await,
                None => break,
            }
        }
        let all: Vec<String> = forwards.concat();
        assert_eq!(
            all,
            expected(rows, sort),
            "{sort}: the order, every row once"
        );
        assert_eq!(forwards.len(), pages, "{sort}: pages of 7");
        let mut backwards = vec![references(&html)];
        while let Some(q) = link(&html, "prev-page") {
            html = page(c, app, &q).await;
            backwards.push(references(&html));
        }
        backwards.reverse();
        assert_eq!(backwards, forwards, "{sort}: back over the same pages");
    }
}

#[tokio::test]
async fn every_order_pages_forwards_then_back_over_the_same_rows_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let rows = seed(&app, &mixed()).await;
    let (c, _) = root(&app).await;
    pages_every_order(&app, &c, &rows, 5).await;
}

#[tokio::test]
async fn an_admin_of_several_schools_pages_their_failures_merged_in_every_order() {
    let app = TestApp::spawn().await;
    let rows = seed(&app, &mixed()).await;
    app.add_admin("two@x.test", "school_admin", &[UAI, BRIN])
        .await;
    let (c, _) = app.admin_client("two@x.test").await;
    let theirs: Vec<Row> = rows
        .into_iter()
        .filter(|r| r.seed.school.is_some())
        .collect();
    assert_eq!(theirs.len(), 30);
    // Every status: each school's index walked, the pages merged.
    pages_every_order(&app, &c, &theirs, 5).await;
}

#[tokio::test]
async fn the_total_counts_every_row_matching_the_filters_not_the_page() {
    let app = TestApp::spawn().await;
    let rows = seed(&app, &mixed()).await;
    let (c, _) = root(&app).await;
    assert_eq!(data(&page(&c, &app, "per=5").await, "total"), 33);
    let open_in_a = rows
        .iter()
        .filter(|r| r.seed.status == "open" && r.seed.school == Some(UAI))
        .count() as i64;
    let html = page(&c, &app, &format!("status=open&school={UAI}&per=5")).await;
    assert_eq!(data(&html, "total"), open_in_a);
    assert!(open_in_a > 5 && references(&html).len() == 5);
}

#[tokio::test]
async fn unverified_attempts_are_hidden_by_default_counted_and_shown_on_request() {
    let app = TestApp::spawn().await;
    let mut noise = Seed::open(UAI, 40, 3);
    noise.verified = false;
    let rows = seed(&app, &[Seed::open(UAI, 1, 2), noise]).await;
    let (c, _) = root(&app).await;
    let html = page(&c, &app, "").await;
    assert_eq!(references(&html), vec![rows[0].reference.clone()]);
    assert_eq!((data(&html, "total"), data(&html, "hidden")), (1, 1));
    let shown = page(&c, &app, &link(&html, "show-unverified").expect("a link")).await;
    assert_eq!(
        references(&shown),
        vec![rows[1].reference.clone(), rows[0].reference.clone()]
    );
    assert_eq!((data(&shown, "total"), data(&shown, "hidden")), (2, 0));
}

#[tokio::test]
async fn the_form_sent_filter_keeps_only_failures_whose_user_sent_the_form() {
    let app = TestApp::spawn().await;
    let rows = seed(&app, &mixed()).await;
    let (c, _) = root(&app).await;
    let html = page(&c, &app, "sent=1&sort=last_seen").await;
    let with_report: Vec<String> = expected(&rows, "last_seen")
        .into_iter()
        .filter(|r| rows.iter().any(|x| &x.reference == r && x.seed.report))
        .collect();
    assert!(!with_report.is_empty());
    assert_eq!(references(&html), with_report);
    assert_eq!(data(&html, "total"), with_report.len() as i64);
}

async fn status_of(app: &TestApp, reference: &str) -> String {
    app.failure(reference)
        .await
        .expect("failure")
        .status
        .as_str()
        .to_string()
}

async fn dismiss_audits(app: &TestApp) -> i64 {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'failure.dismiss'")
        .fetch_one(&mut *conn)
        .await
        .expect("audit")
}

#[tokio::test]
async fn bulk_dismiss_closes_the_chosen_failures_with_one_reason_each_audited() {
    let app = TestApp::spawn().await;
    let rows = seed(
        &app,
        &[
            Seed::open(UAI, 1, 1),
            Seed::open(UAI, 1, 2),
            Seed::open(UAI, 1, 3),
        ],
    )
    .await;
    app.add_admin("admin@a.test", "school_admin", &[UAI]).await;
    let (c, csrf) = app.admin_client("admin@a.test").await;
    let list = page(&c, &app, "").await;
    for r in &rows {
        assert!(list.contains(&format!("name=\"ref\" value=\"{}\"", r.reference)));
    }
    let res = app
        .post_with(
            &c,
            "/admin/failures/dismiss",
            &[
                ("csrf_token", &csrf),
                ("ref", &rows[0].reference),
                ("ref", &rows[2].reference),
                ("reason", "Tests de la rentrée"),
                ("back", "status=open"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let to = header(&res, "location");
    assert!(to.starts_with("/admin/failures?status=open&") && to.contains("dismissed=2"));
    assert_eq!(status_of(&app, &rows[0].reference).await, "dismissed");
    assert_eq!(status_of(&app, &rows[1].reference).await, "open");
    assert_eq!(status_of(&app, &rows[2].reference).await, "dismissed");
    assert_eq!(dismiss_audits(&app).await, 2);
    let after = page(&c, &app, &to["/admin/failures?".len()..]).await;
    assert!(after.contains("id=\"notice\""));
    assert_eq!(references(&after), vec![rows[1].reference.clone()]);
}

#[tokio::test]
async fn bulk_dismiss_without_the_session_csrf_token_changes_nothing() {
    let app = TestApp::spawn().await;
    let rows = seed(&app, &[Seed::open(UAI, 1, 1)]).await;
    let (c, _) = root(&app).await;
    let res = app
        .post_with(
            &c,
            "/admin/failures/dismiss",
            &[
                ("csrf_token", "forged"),
                ("ref", &rows[0].reference),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(status_of(&app, &rows[0].reference).await, "open");
    assert_eq!(dismiss_audits(&app).await, 0);
}

#[tokio::test]
async fn a_school_admin_forging_another_schools_reference_dismisses_nothing() {
    let app = TestApp::spawn().await;
    let rows = seed(&app, &[Seed::open(UAI, 1, 1), Seed::open(BRIN, 1, 2)]).await;
    app.add_admin("admin@a.test", "school_admin", &[UAI]).await;
    let (c, csrf) = app.admin_client("admin@a.test").await;
    assert!(!page(&c, &app, "").await.contains(&rows[1].reference));
    for refs in [
        vec![&rows[1].reference],
        vec![&rows[0].reference, &rows[1].reference],
    ] {
        let mut pairs = vec![("csrf_token", csrf.as_str()), ("reason", "forged")];
        pairs.extend(refs.iter().map(|r| ("ref", r.as_str())));
        let res = app.post_with(&c, "/admin/failures/dismiss", &pairs).await;
        assert_eq!(res.status().as_u16(), 404, "as if it did not exist");
    }
    assert_eq!(
        status_of(&app, &rows[0].reference).await,
        "open",
        "not even its own"
    );
    assert_eq!(status_of(&app, &rows[1].reference).await, "open");
    assert_eq!(dismiss_audits(&app).await, 0);
}

#[tokio::test]
async fn bulk_dismiss_refuses_a_reason_given_twice_and_asks_for_a_missing_one() {
    let app = TestApp::spawn().await;
    let rows = seed(&app, &[Seed::open(UAI, 1, 1)]).await;
    let (c, csrf) = root(&app).await;
    let r = rows[0].reference.as_str();
    let path = "/admin/failures/dismiss";
    let twice = app
        .post_with(
            &c,
            path,
            &[
                ("csrf_token", &csrf),
                ("ref", r),
                ("reason", "a"),
                ("reason", "b"),
            ],
        )
        .await;
    assert_eq!(twice.status().as_u16(), 400);
    let none = app
        .post_with(&c, path, &[("csrf_token", &csrf), ("ref", r)])
        .await;
    assert_eq!(none.status().as_u16(), 303);
    assert!(header(&none, "location").contains("bulk_error=reason"));
    assert_eq!(status_of(&app, r).await, "open");
}

#[tokio::test]
async fn the_list_page_never_shows_the_raw_response() {
    let app = TestApp::spawn().await;
    seed(&app, &mixed()).await;
    let (c, _) = root(&app).await;
    for q in ["", "unverified=1&sort=count", "q=RAW-RESPONSE"] {
        let html = page(&c, &app, q).await;
        assert!(!html.contains("RAW-RESPONSE-TEXT-42"), "{q}");
    }
}

/// Sets a seeded failure's asserted names and form, as a login and the
/// failure form would.
async fn name_it(app: &TestApp, row: &Row, last: &str, first: &str, report: Option<&str>) {
    sqlx::query(
        "UPDATE failures SET asserted_last_name = ?, asserted_first_name = ?, report_json = ? WHERE id = ?",
    )
    .bind(last)
    .bind(first)
    .bind(report)
    .bind(row.id)
    .execute(&app.svc.pool)
    .await
    .expect("name");
}

#[tokio::test]
async fn the_text_search_finds_names_and_the_forms_words_folded_and_in_scope() {
    let app = TestApp::spawn().await;
    let rows = seed(
        &app,
        &[
            Seed::open(UAI, 1, 1),
            Seed::open(UAI, 1, 2),
            Seed::open(BRIN, 1, 3),
        ],
    )
    .await;
    let report = r#"{"last_name":"Nguyễn","first_name":"Thu","email":"thu.nguyen@mail.test","message":"mon fils est en 6e B","children":[{"last_name":"Lefèvre","first_name":"Noé","birth_date":"2013-04-02","class_name":"6B"}]}"#;
    name_it(&app, &rows[0], "Dupont-Martin", "Éloïse", None).await;
    name_it(&app, &rows[1], "Durand", "Paul", Some(report)).await;
    name_it(&app, &rows[2], "Dupont", "Éloi", None).await;
    let (c, _) = root(&app).await;
    let found = async |q: &str| references(&page(&c, &app, &format!("q={q}")).await);
    let r = |i: usize| rows[i].reference.clone();
    // Case and accents folded both ways; each word a prefix; all required.
    assert_eq!(found("ELOISE").await, vec![r(0)]);
    assert_eq!(found("martin%20%C3%A9lo%C3%AFse").await, vec![r(0)]);
    let mut both = found("dupont").await;
    both.sort();
    let mut want = vec![r(0), r(2)];
    want.sort();
    assert_eq!(both, want);
    assert_eq!(
        found("dupont%20eloi").await.len(),
        2,
        "eloi is a prefix of eloise"
    );
    assert_eq!(found("dupont%20paul").await, Vec::<String>::new());
    // From the form: declared names, a child's, the e-mail, the message.
    for q in ["nguyen", "lefevre%20noe", "thu.nguyen%40mail.test", "fils"] {
        assert_eq!(found(q).await, vec![r(1)], "{q}");
    }
    // A reference exactly; punctuation alone searches nothing.
    assert_eq!(found(&rows[2].reference).await, vec![r(2)]);
    assert_eq!(found("%22%2A%28").await, Vec::<String>::new());
    // A changed name is searched by its new words, not the old ones.
    name_it(&app, &rows[0], "Moreau", "Éloïse", None).await;
    assert_eq!(found("martin").await, Vec::<String>::new());
    assert_eq!(found("moreau").await, vec![r(0)]);
    // A school admin finds only their schools' failures.
    app.add_admin("admin@a.test", "school_admin", &[UAI]).await;
    let (a, _) = app.admin_client("admin@a.test").await;
    assert_eq!(references(&page(&a, &app, "q=eloi").await), vec![r(0)]);
}
