//! Large accounts imports, built beside the live table in short
//! transactions and swapped in (store::imports::swap): the same result as
//! the one-transaction upsert, nothing visible before the swap, a change
//! made meanwhile by someone else cancels the swap (and is kept), and a
//! build stopped midway leaves the accounts as they were.

use crate::common::*;
use jointure::csv_io::{import, ImportKind, ImportReport, Options};
use std::time::Duration;

/// Every account's values and whether it was touched by the last import
/// (its `updated_at` compared with `since`), in account ID order.
async fn accounts_state(app: &TestApp, since: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT account_id || '|' || school_code || '|' || last_name || '|' || first_name || '|' || ifnull(birth_date, '') || '|' || role || '|' || ifnull(class_name, '') || '|' || ifnull(email, '') || '|' || folded_last || '|' || folded_first || '|' || active || '|' || (updated_at >= ?) || '|' || (created_at >= ?)
         FROM accounts ORDER BY account_id",
    )
    .bind(since)
    .bind(since)
    .fetch_all(&app.svc.pool)
    .await
    .expect("accounts")
}

async fn run(app: &TestApp, text: &str, opts: Options) -> ImportReport {
    import(
        &app.svc.pool,
        &app.svc.known_idps(),
        ImportKind::Accounts,
        "big.csv",
        text.as_bytes(),
        &opts,
    )
    .await
    .expect("import runs")
}

fn swapped(replace: Option<&str>) -> Options {
    Options {
        swap_from_rows: 1,
        replace_school: replace.map(String::from),
        ..Options::new("test")
    }
}

fn direct(replace: Option<&str>) -> Options {
    Options {
        swap_from_rows: u64::MAX,
        ..swapped(replace)
    }
}

const HEADER: &str =
    "account_id,school_code,last_name,first_name,birth_date,role,class_name,email\n";

/// `n` pupils of UAI, `class` their class; `skip` rows left out.
fn file(n: usize, class: &str, skip: impl Fn(usize) -> bool) -> String {
    let mut f = String::from(HEADER);
    for i in (0..n).filter(|i| !skip(*i)) {
        f.push_str(&format!(
            "P-{i:06},{UAI},Nom{i},Prénom{},2011-{:02}-{:02},student,{class},\n",
            i % 97,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    f
}

/// The accounts indexes' names (a swapped-in table's carry its build's
/// token).
async fn index_names(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'accounts' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&app.svc.pool)
    .await
    .expect("indexes")
}

/// Applied the direct way: a swap would have left its token in the index
/// names.
async fn assert_not_swapped(app: &TestApp) {
    let names = index_names(app).await;
    assert!(
        names.iter().all(|n| !n.contains("__")),
        "not swapped: {names:?}"
    );
}

/// Rows in the build's table (0 when there is none).
async fn build_rows(app: &TestApp) -> i64 {
    let table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'accounts_next%'",
    )
    .fetch_optional(&app.svc.pool)
    .await
    .expect("schema");
    match table {
        Some(t) => scalar(app, &format!("SELECT COUNT(*) FROM \"{t}\"")).await,
        None => 0,
    }
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.svc.pool)
        .await
        .expect(sql)
}

/// The import of `text`, running in its own task.
fn spawn_import(
    app: &TestApp,
    text: &str,
    opts: &Options,
) -> tokio::task::JoinHandle<Result<ImportReport, sqlx::Error>> {
    let (svc, text, opts) = (app.svc.clone(), text.to_string(), opts.clone());
    tokio::spawn(async move {
        import(
            &svc.pool,
            &svc.known_idps(),
            ImportKind::Accounts,
            "big.csv",
            text.as_bytes(),
            &opts,
        )
        .await
    })
}

/// Waits until the build has copied some rows into the next table.
async fn building(app: &TestApp) {
    for _ in 0..2000 {
        if build_rows(app).await > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the build never started");
}

#[tokio::test]
async fn a_swapped_import_leaves_what_the_one_transaction_upsert_leaves() {
    let (a, b) = (TestApp::spawn().await, TestApp::spawn().await);
    // A newcomer whose failure the import resolves (the rollover test's
    // case, at scale), so the swap's transaction carries the resolution.
    let mut refs = Vec::new();
    for app in [&a, &b] {
        refs.push(
            app.fail(&app.ent("sub-new", "Nom12", "Prénom12", "13/01/2011", UAI))
                .await,
        );
    }
    let first = file(12_000, "6A", |i| i == 12);
    // Timestamps are to the second: the fixtures' accounts (made when each
    // app started) are older than `since` in both.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = jointure::store::now_text();
    let (ra, rb) = (
        run(&a, &first, swapped(None)).await,
        run(&b, &first, direct(None)).await,
    );
    assert!(ra.errors.is_empty(), "{}", ra.summary());
    let swapped_names = index_names(&a).await;
    assert!(
        swapped_names.len() == 3 && swapped_names.iter().all(|n| n.contains("__")),
        "swapped in: the indexes carry the build's token: {swapped_names:?}"
    );
    assert_eq!(
        (ra.created, ra.updated, ra.unchanged),
        (rb.created, rb.updated, rb.unchanged)
    );
    assert_eq!(
        accounts_state(&a, &since).await,
        accounts_state(&b, &since).await
    );
    a.map("sub-p7", "P-000007").await;

    // September: the school's file replaces the last one. Classes change
    // for a third, a few pupils left (deactivated), one arrives (the
    // newcomer of the failure), the rest is unchanged.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut next = file(12_000, "6A", |i| i % 500 == 0 || i == 12);
    next = next
        .lines()
        .enumerate()
        .map(|(n, l)| {
            if n > 0 && n % 3 == 0 {
                format!("{}\n", l.replace(",6A,", ",5B,"))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    next.push_str(&format!(
        "P-000012,{UAI},Nom12,Prénom12,2011-01-13,student,5B,\n"
    ));
    let since = jointure::store::now_text();
    let (ra, rb) = (
        run(&a, &next, swapped(Some(UAI))).await,
        run(&b, &next, direct(Some(UAI))).await,
    );
    assert!(ra.errors.is_empty(), "{}", ra.summary());
    assert!(ra.deactivated > 0 && ra.updated > 0 && ra.created == 1);
    assert_eq!(
        (
            ra.created,
            ra.updated,
            ra.unchanged,
            ra.deactivated,
            ra.failures_resolved
        ),
        (
            rb.created,
            rb.updated,
            rb.unchanged,
            rb.deactivated,
            rb.failures_resolved
        )
    );
    assert_eq!(ra.failures_resolved, 1, "{}", ra.summary());
    assert_eq!(
        accounts_state(&a, &since).await,
        accounts_state(&b, &since).await
    );
    assert_eq!(
        a.failure(&refs[0]).await.expect("row").status.as_str(),
        "resolved"
    );

    // The swapped-in table is the real thing: its indexes (under their
    // alternate names), the generation triggers, the mappings' foreign key
    // pointing at it, and an intact file.
    assert_eq!(
        scalar(
            &a,
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'accounts'"
        )
        .await,
        scalar(
            &b,
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'accounts'"
        )
        .await
    );
    assert_eq!(
        scalar(
            &a,
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'accounts'"
        )
        .await,
        3
    );
    assert_eq!(
        scalar(
            &a,
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'accounts_next%'"
        )
        .await,
        0
    );
    let before = scalar(&a, "SELECT n FROM generations WHERE name = 'accounts'").await;
    sqlx::query("UPDATE accounts SET email = 'x@school.test' WHERE account_id = 'A-1'")
        .execute(&a.svc.pool)
        .await
        .expect("update");
    assert!(scalar(&a, "SELECT n FROM generations WHERE name = 'accounts'").await > before);
    let orphan = sqlx::query(
        "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at) VALUES ('x', 'y', 'NO-SUCH', 'admin', '2026-01-01')",
    )
    .execute(&a.svc.pool)
    .await;
    assert!(
        orphan.is_err(),
        "foreign keys are back on, on the new table"
    );
    let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&a.svc.pool)
        .await
        .expect("check");
    assert_eq!(check, vec!["ok".to_string()]);
    assert_eq!(
        scalar(&a, "SELECT COUNT(*) FROM pragma_foreign_key_check").await,
        0
    );
    // And logins resolve against it.
    a.expect_login(
        &a.mint(&a.ent("sub-p7", "x", "y", "20/01/2011", UAI)),
        "P-000007",
    )
    .await;
    let rebuilt = index_names(&a).await;
    assert!(
        rebuilt != swapped_names && rebuilt.iter().all(|n| n.contains("__")),
        "a second swap: the next build's token: {rebuilt:?}"
    );

    // The same file again: nothing to write, nothing rebuilt.
    let again = run(&a, &next, swapped(Some(UAI))).await;
    assert!(again.errors.is_empty(), "{}", again.summary());
    assert_eq!((again.unchanged, again.deactivated), (again.rows, 0));

    // A large file that changes a few rows: only those are written, in one
    // transaction (no rebuild: the index names stay), with the same result
    // as the direct upsert.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let few = next
        .replace("P-000100,0751234J,Nom100,", "P-000100,0751234J,Nouveau100,")
        .replace("Nom201,Prénom7,", "Nom201,Prénom8,");
    let few = format!("{few}P-900000,{UAI},Arrivée,Léo,2011-05-05,student,5B,\n");
    let since = jointure::store::now_text();
    let limited = |replace| Options {
        swap_from_rows: 5_000,
        ..swapped(replace)
    };
    let (ra, rb) = (
        run(&a, &few, limited(Some(UAI))).await,
        run(&b, &few, direct(Some(UAI))).await,
    );
    assert_eq!(
        (ra.created, ra.updated, ra.deactivated),
        (1, 2, 0),
        "{}",
        ra.summary()
    );
    assert_eq!(
        (ra.created, ra.updated, ra.unchanged, ra.deactivated),
        (rb.created, rb.updated, rb.unchanged, rb.deactivated)
    );
    let (sa, sb) = (
        accounts_state(&a, &since).await,
        accounts_state(&b, &since).await,
    );
    // The one difference: b's A-1 kept its e-mail, a's was changed above.
    let without_a1 = |s: Vec<String>| -> Vec<String> {
        s.into_iter().filter(|l| !l.starts_with("A-1|")).collect()
    };
    assert_eq!(without_a1(sa), without_a1(sb));
    assert_eq!(index_names(&a).await, rebuilt, "not rebuilt");
}

#[tokio::test]
async fn a_change_made_during_the_build_cancels_the_swap_and_is_kept() {
    let app = TestApp::spawn().await;
    let opts = Options {
        writer: Some(app.svc.writer.clone()),
        ..swapped(None)
    };
    let text = file(30_000, "6A", |_| false);
    let task = spawn_import(&app, &text, &opts);
    building(&app).await;
    // The writer's turn: the build waits for it between its transactions.
    // Another writer changes an account the file does not name.
    {
        let mut turn = app.svc.writer.pool().acquire().await.expect("turn");
        sqlx::query(
            "UPDATE accounts SET class_name = 'changed meanwhile' WHERE account_id = 'A-1'",
        )
        .execute(&mut *turn)
        .await
        .expect("update");
    }
    let r = task.await.expect("task").expect("import");
    assert!(r.errors.is_empty(), "{}", r.summary());
    assert_eq!(r.created, 30_000);
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM accounts WHERE account_id LIKE 'P-%'"
        )
        .await,
        30_000
    );
    let kept: String =
        sqlx::query_scalar("SELECT class_name FROM accounts WHERE account_id = 'A-1'")
            .fetch_one(&app.svc.pool)
            .await
            .expect("A-1");
    assert_eq!(
        kept, "changed meanwhile",
        "the other writer's change is not lost"
    );
    assert_not_swapped(&app).await;
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'accounts_next%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_build_stopped_midway_changes_nothing_and_start_up_drops_its_table() {
    let app = TestApp::spawn().await;
    let before = accounts_state(&app, "9999").await;
    let opts = Options {
        writer: Some(app.svc.writer.clone()),
        ..swapped(None)
    };
    let text = file(30_000, "6A", |_| false);
    let task = spawn_import(&app, &text, &opts);
    building(&app).await;
    // Stopped while it waits for its next turn (what a crash between two
    // build transactions leaves).
    let turn = app.svc.writer.pool().acquire().await.expect("turn");
    task.abort();
    assert!(task.await.is_err(), "stopped");
    drop(turn);
    assert_eq!(
        accounts_state(&app, "9999").await,
        before,
        "nothing visible"
    );
    assert!(build_rows(&app).await > 0);
    // Another import runs beside the stray table (its own name), then a
    // start-up drops the stray one.
    let r = run(&app, &file(25_000, "6A", |_| false), swapped(None)).await;
    assert_eq!(r.created, 25_000, "{}", r.summary());
    assert!(build_rows(&app).await > 0, "the stray table is still there");
    let again =
        jointure::store::Db::open(&app.dir.path().join("jointure.db"), Duration::from_secs(2))
            .await
            .expect("start-up");
    drop(again);
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'accounts_next%'"
        )
        .await,
        0
    );
    let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&app.svc.pool)
        .await
        .expect("check");
    assert_eq!(check, vec!["ok".to_string()]);
}

#[tokio::test]
async fn an_accounts_schema_the_build_does_not_copy_is_applied_the_direct_way() {
    let app = TestApp::spawn().await;
    // A view naming accounts would break the rename after the drop.
    sqlx::query("CREATE VIEW pupils AS SELECT account_id FROM accounts WHERE role = 'student'")
        .execute(&app.svc.pool)
        .await
        .expect("view");
    let r = run(&app, &file(3_000, "6A", |_| false), swapped(None)).await;
    assert!(r.errors.is_empty(), "{}", r.summary());
    assert_eq!(r.created, 3_000);
    assert_not_swapped(&app).await;
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM pupils WHERE account_id LIKE 'P-%'"
        )
        .await,
        3_000,
        "the view reads the imported accounts"
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'accounts_next%'"
        )
        .await,
        0
    );
}
