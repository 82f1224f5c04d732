//! A stranger's flood of forged posts to the ACS: the database grows by a
//! bounded number of rows and bytes (the unverified budget of
//! `store::failures::record`), the WAL stays bounded, every stored text
//! field is capped, and a real login in the middle of it succeeds.

use crate::common::*;
use jointure::store::failures::{UNVERIFIED_BUDGET, UNVERIFIED_RAW_RESPONSE_LIMIT};

/// Forged posts sent; enough to show the folding, few enough for CI
/// (about 25 s in a debug build).
const POSTS: usize = 1000;
/// Posts in flight at once.
const PARALLEL: usize = 8;

/// The database's logical size (pages in the file and in the WAL).
async fn db_bytes(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")
        .fetch_one(&app.svc.pool)
        .await
        .expect("size")
}

fn wal_bytes(app: &TestApp) -> u64 {
    std::fs::metadata(app.dir.path().join("jointure.db-wal")).map_or(0, |m| m.len())
}

/// Forged post number `i`: an unsigned response with huge attributes,
/// from a few made-up IdPs and the real one, or no SAML at all.
fn forged(app: &TestApp, i: usize) -> String {
    let issuer = match i % 4 {
        0 => app.idp.entity_id.clone(),
        n => format!("https://forged-{n}.test/saml"),
    };
    let big = "N".repeat(24_000);
    let mut spec = jointure::saml::mint::ResponseSpec::new(
        &issuer,
        &sp_entity_id(),
        &acs_url(),
        &format!("victim-{i}"),
    )
    .attr("sn", &big)
    .attr("givenName", &big)
    .attr("ENTStructureUAI", UAI);
    spec.signing.assertion = false;
    spec.signing.response = false;
    if i % 10 == 9 {
        return format!("RelayState={}&other={big}", "r".repeat(5000));
    }
    let xml = app.idp.response(&spec).expect("mint");
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &jointure::saml::mint::to_base64(&xml))
        .append_pair("RelayState", &"r".repeat(5000))
        .finish()
}

#[tokio::test]
async fn a_flood_of_forged_posts_grows_the_database_by_a_bounded_amount_and_logins_go_on() {
    let app = TestApp::spawn().await;
    app.map("sub-real", "A-1").await;
    let (rows_before, bytes_before) = (app.count_failures().await, db_bytes(&app).await);
    let bodies: Vec<String> = (0..8).map(|i| forged(&app, i)).collect();
    assert!(bodies.iter().all(|b| b.len() > 40_000), "big bodies");
    let mut peak_wal = 0;
    for round in 0..POSTS / PARALLEL {
        let posts = (0..PARALLEL).map(|k| {
            let body = bodies[(round * PARALLEL + k) % bodies.len()].clone();
            app.post_form(body)
        });
        for res in futures_util::future::join_all(posts).await {
            let status = res.status().as_u16();
            assert!(status == 303 || (400..500).contains(&status), "{status}");
        }
        if round == POSTS / PARALLEL / 2 {
            // A real signed login in the middle of the flood.
            app.expect_login(
                &app.mint(&app.ent("sub-real", "X", "Y", "01/01/2011", UAI)),
                "A-1",
            )
            .await;
        }
        peak_wal = peak_wal.max(wal_bytes(&app));
    }
    let new_rows = app.count_failures().await - rows_before;
    // One address: at most its budget of new rows; the rest fold.
    assert!(
        (1..=UNVERIFIED_BUDGET.per_address).contains(&new_rows),
        "{new_rows} new rows for {POSTS} posts"
    );
    let folded: i64 = sqlx::query_scalar("SELECT SUM(count) FROM failures")
        .fetch_one(&app.svc.pool)
        .await
        .expect("sum");
    assert!(folded >= POSTS as i64, "every post counted: {folded}");
    // Per row: the capped fields (raw 16 KiB, claims 16 KiB as JSON, names,
    // reasons, agent, relay) and their indexes, well under 128 KiB.
    let grown = db_bytes(&app).await - bytes_before;
    eprintln!("{POSTS} posts: {new_rows} new rows, {grown} bytes, WAL peak {peak_wal} bytes");
    assert!(
        grown <= new_rows * 128 * 1024 + 512 * 1024,
        "{grown} bytes for {new_rows} rows"
    );
    // Without a journal size limit SQLite checkpoints at 1000 pages (4 MiB)
    // but keeps the file; a checkpoint starved by readers lets it grow.
    // 64 MiB is generous: before the caps, this flood wrote gigabytes.
    assert!(peak_wal <= 64 << 20, "WAL grew to {peak_wal} bytes");
    capped_fields(&app).await;
}

/// No stored text field a sender controls is over its cap (bytes).
async fn capped_fields(app: &TestApp) {
    let caps: [(&str, usize); 10] = [
        ("raw_response", UNVERIFIED_RAW_RESPONSE_LIMIT),
        ("asserted_json", 64 * 1024),
        ("asserted_last_name", 256),
        ("asserted_first_name", 256),
        ("idp_entity_id", 1024),
        ("subject", 1024),
        ("detail", 2048),
        ("user_agent", 512),
        ("relay_state", 1024),
        ("school_code", 64),
    ];
    for (col, cap) in caps {
        let longest: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MAX(length(CAST({col} AS BLOB))) FROM failures"
        ))
        .fetch_one(&app.svc.pool)
        .await
        .expect("max");
        let longest = longest.unwrap_or(0) as usize;
        assert!(longest <= cap, "{col}: {longest} bytes stored, cap {cap}");
    }
}
