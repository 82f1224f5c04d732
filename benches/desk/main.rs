//! The admin desk at scale (issue 11, item 7), run with
//! `cargo bench --bench desk` (release build). It builds its own database
//! (direct inserts, big transactions): by default 1,000,000 failures over 20
//! schools and 500,000 accounts (25,000 per school), then times the desk's
//! reads and prints p50/p95 beside the targets. Nothing here asserts
//! a time. Sizes: `JOINTURE_BENCH_FAILURES`, `JOINTURE_BENCH_SCHOOLS`,
//! `JOINTURE_BENCH_ACCOUNTS` (per school), `JOINTURE_BENCH_ITERS`;
//! `JOINTURE_BENCH_DB=path` keeps the database there and reuses it when it
//! exists (the build is the slow part); `JOINTURE_BENCH_LISTS=0` skips the
//! list pages, `JOINTURE_BENCH_ONLY=word` keeps only the lists named with it.

use jointure::resolve::ranking::{rank, CandidateAccount, Claimed, Probe};
use jointure::resolve::FailureStatus;
use jointure::store::failures::{self, Cursor, Filter, Sort};
use jointure::store::{accounts, audit, Scope};
use sqlx::SqliteConnection;
use std::time::Instant;

mod build;
use build::{build, mix, school_code, IDPS};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Times `f` `iters` times; prints p50, p95 and max beside the target.
async fn time<F>(conn: &mut SqliteConnection, name: &str, target_ms: f64, iters: usize, mut f: F)
where
    F: AsyncFnMut(&mut SqliteConnection, usize),
{
    let mut t: Vec<f64> = Vec::with_capacity(iters);
    let began = Instant::now();
    for i in 0..iters {
        let start = Instant::now();
        f(conn, i).await;
        t.push(start.elapsed().as_secs_f64() * 1e3);
        // A slow read gets fewer runs (said in the row), not minutes each.
        if i >= 4 && began.elapsed().as_secs() >= budget_secs() {
            break;
        }
    }
    t.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| t[((t.len() as f64 * p) as usize).min(t.len() - 1)];
    let p95 = at(0.95);
    let mark = if p95 <= target_ms { "ok" } else { "OVER" };
    let runs = if t.len() < iters {
        format!(" ({} runs)", t.len())
    } else {
        String::new()
    };
    println!(
        "| {name}{runs} | {:.2} | {p95:.2} | {:.2} | ≤ {target_ms} | {mark} |",
        at(0.5),
        t[t.len() - 1]
    );
}

/// Seconds one measure may take before it stops at five runs or more
/// (`JOINTURE_BENCH_BUDGET`, default 5).
fn budget_secs() -> u64 {
    env("JOINTURE_BENCH_BUDGET", 5) as u64
}

/// One list page as the desk reads it: the page and the totals above it
/// (the one place to adapt when `failures::list` changes).
async fn list_page(
    conn: &mut SqliteConnection,
    scope: &Scope,
    f: &Filter,
    sort: Sort,
    after: Option<&Cursor>,
) -> (usize, Option<Cursor>) {
    let page = failures::PageRequest {
        sort,
        cursor: after.cloned(),
        limit: 50,
    };
    let p = failures::list(conn, scope, f, &page).await.expect("list");
    std::hint::black_box(failures::totals(conn, scope, f).await.expect("totals"));
    (p.items.len(), p.next)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n = env("JOINTURE_BENCH_FAILURES", 1_000_000);
    let schools = env("JOINTURE_BENCH_SCHOOLS", 20);
    let per_school = env("JOINTURE_BENCH_ACCOUNTS", 25_000);
    let iters = env("JOINTURE_BENCH_ITERS", 200);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = std::env::var("JOINTURE_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("desk.db"));
    let existed = path.exists();
    let pool = jointure::store::open(&path).await.expect("open");
    let mut conn = pool.acquire().await.expect("conn");
    if !existed {
        build(&mut conn, schools, per_school, n).await;
    }
    // No ANALYZE: the server never runs one, so the plans measured are
    // the ones it gets.
    println!(
        "\n{n} failures, {schools} schools × {per_school} accounts, {iters} iterations each\n"
    );
    println!("| measure | p50 ms | p95 ms | max ms | target ms | |\n|---|---|---|---|---|---|");
    // `JOINTURE_BENCH_LISTS=0` skips the list pages (the longest part).
    if env("JOINTURE_BENCH_LISTS", 1) != 0 {
        lists(&mut conn, iters).await;
    }
    detail(&mut conn, iters).await;
    let all = Scope::All;
    let one = Scope::Schools(vec![school_code(3)]);
    let since = (chrono::Utc::now() - chrono::Duration::days(29))
        .format("%Y-%m-%d")
        .to_string();
    for (name, scope) in [
        ("dashboard (superadmin)", &all),
        ("dashboard (one school)", &one),
    ] {
        time(&mut conn, name, 50.0, iters, async |c, _| {
            std::hint::black_box(failures::stats(c, scope, &since).await.expect("stats"));
        })
        .await;
    }
}

async fn lists(conn: &mut SqliteConnection, iters: usize) {
    let open = Some(FailureStatus::Open);
    let week = (chrono::Utc::now() - chrono::Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    let f = |status, kind: Option<&str>, school: Option<String>| Filter {
        status,
        kind: kind.map(str::to_string),
        school,
        ..Filter::default()
    };
    let three = Scope::Schools((10..13).map(school_code).collect());
    let text = |t: &str| Filter {
        text: Some(t.into()),
        ..Filter::default()
    };
    let needs = Sort::NeedsYou;
    let mut combos: Vec<(String, Scope, Filter, Sort)> = Sort::ALL
        .into_iter()
        .map(|sort| {
            (
                format!("three-school admin, status=open, sort={}", sort.as_str()),
                three.clone(),
                f(open, None, None),
                sort,
            )
        })
        .collect();
    combos.extend(Sort::ALL.into_iter().map(|sort| {
        (
            format!("three-school admin, every status, sort={}", sort.as_str()),
            three.clone(),
            Filter {
                verified_only: true,
                ..Filter::default()
            },
            sort,
        )
    }));
    combos.extend(Sort::ALL.into_iter().skip(1).map(|sort| {
        (
            format!("no filter, sort={}", sort.as_str()),
            Scope::All,
            Filter::default(),
            sort,
        )
    }));
    let named: Vec<(&str, Scope, Filter)> = vec![
        (
            "text: first and last name",
            Scope::All,
            text("dupont chloé"),
        ),
        ("text: a last name", Scope::All, text("Lefèvre")),
        (
            "text: a last name, one-school admin",
            Scope::Schools(vec![school_code(7)]),
            text("lefevre"),
        ),
        ("text: a NameID", Scope::All, text("s123456")),
        ("no filter", Scope::All, Filter::default()),
        ("status=open", Scope::All, f(open, None, None)),
        (
            "status=resolved",
            Scope::All,
            f(Some(FailureStatus::Resolved), None, None),
        ),
        ("kind", Scope::All, f(None, Some("identity_mismatch"), None)),
        (
            "status=open+kind",
            Scope::All,
            f(open, Some("identity_mismatch"), None),
        ),
        (
            "status=open+school",
            Scope::All,
            f(open, None, Some(school_code(5))),
        ),
        ("school", Scope::All, f(None, None, Some(school_code(5)))),
        (
            "scoped admin, status=open",
            Scope::Schools(vec![school_code(7)]),
            f(open, None, None),
        ),
        (
            "status=open+kind+school",
            Scope::All,
            f(open, Some("expired"), Some(school_code(2))),
        ),
        (
            "idp",
            Scope::All,
            Filter {
                idp: Some(IDPS[1].into()),
                ..Filter::default()
            },
        ),
        (
            "last 7 days",
            Scope::All,
            Filter {
                from: Some(week),
                ..Filter::default()
            },
        ),
        (
            "text (support code)",
            Scope::All,
            Filter {
                text: Some("JNT-00ABC".into()),
                ..Filter::default()
            },
        ),
    ];
    combos.extend(
        named
            .into_iter()
            .map(|(name, scope, filter)| (name.to_string(), scope, filter, needs)),
    );
    // `JOINTURE_BENCH_ONLY=text`: only the lists whose name holds it.
    let only = std::env::var("JOINTURE_BENCH_ONLY").unwrap_or_default();
    combos.retain(|(name, ..)| name.contains(&only));
    for (name, scope, filter, sort) in &combos {
        let sort = *sort;
        time(
            conn,
            &format!("list page 1: {name}"),
            30.0,
            iters,
            async |c, _| {
                std::hint::black_box(list_page(c, scope, filter, sort, None).await);
            },
        )
        .await;
        // The cursor of page 200, walked once (not timed).
        let (mut cursor, walk) = (None, Instant::now());
        for page in 1..200 {
            if walk.elapsed().as_secs() > 6 * budget_secs() {
                println!("| list page 200: {name} | walk stopped at page {page} (too slow) | | | ≤ 30 | OVER |");
                cursor = None;
                break;
            }
            match list_page(conn, scope, filter, sort, cursor.as_ref())
                .await
                .1
            {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        if let Some(at) = cursor {
            time(
                conn,
                &format!("list page 200: {name}"),
                30.0,
                iters,
                async |c, _| {
                    std::hint::black_box(list_page(c, scope, filter, sort, Some(&at)).await);
                },
            )
            .await;
        }
    }
}

/// Sample open identity_mismatch failures: reference, IdP, subject,
/// school, asserted and declared names.
async fn samples(conn: &mut SqliteConnection, k: usize) -> Vec<failures::Failure> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM failures WHERE status = 'open' AND kind = 'identity_mismatch' AND school_code IS NOT NULL")
        .fetch_all(&mut *conn)
        .await
        .expect("ids");
    let mut out = Vec::new();
    for i in 0..k.min(ids.len()) {
        let id = ids[(mix(i as u64) % ids.len() as u64) as usize];
        let reference: String = sqlx::query_scalar("SELECT reference FROM failures WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .expect("ref");
        out.push(
            failures::by_reference(conn, &reference)
                .await
                .expect("read")
                .expect("there"),
        );
    }
    out
}

/// The candidates of a failure as the detail page computes them: the
/// asserted and the declared identity, prefiltered in SQL, then ranked.
async fn candidates(conn: &mut SqliteConnection, f: &failures::Failure) -> usize {
    let parse = |d: Option<&str>| d.and_then(jointure::resolve::parse_date);
    let mut claims = vec![Claimed {
        last_name: f.asserted_last_name.clone(),
        first_name: f.asserted_first_name.clone(),
        birth_date: parse(f.asserted_birth_date.as_deref()),
        ..Claimed::default()
    }];
    if let Some(r) = f
        .report_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
    {
        let get = |k: &str| r[k].as_str().map(str::to_string);
        claims.push(Claimed {
            last_name: get("last_name"),
            first_name: get("first_name"),
            birth_date: parse(r["birth_date"].as_str()),
            ..Claimed::default()
        });
    }
    let school = f.school_code.as_deref().expect("school");
    let pool = accounts::plausible_pool(
        conn,
        school,
        f.idp_entity_id.as_deref(),
        f.subject.as_deref(),
        &Probe::of(&claims),
    )
    .await
    .expect("pool");
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
    rank(&claims, accounts, 10).len()
}

async fn detail(conn: &mut SqliteConnection, iters: usize) {
    let sample = samples(conn, iters).await;
    let all = Scope::All;
    let pick = |i: usize| &sample[i % sample.len()];
    time(conn, "detail: by_reference_in", 2.0, iters, async |c, i| {
        let r = &pick(i).reference;
        std::hint::black_box(
            failures::by_reference_in(c, &Scope::All, r)
                .await
                .expect("read"),
        );
    })
    .await;
    time(
        conn,
        "detail: of_identity (history)",
        2.0,
        iters,
        async |c, i| {
            let f = pick(i);
            let (idp, sub) = (
                f.idp_entity_id.as_deref().expect("idp"),
                f.subject.as_deref().expect("subject"),
            );
            std::hint::black_box(
                failures::of_identity(c, &Scope::All, idp, sub)
                    .await
                    .expect("history"),
            );
        },
    )
    .await;
    let mut read = 0;
    for f in sample.iter().take(50) {
        let claims = [Claimed {
            last_name: f.asserted_last_name.clone(),
            first_name: f.asserted_first_name.clone(),
            ..Claimed::default()
        }];
        read += accounts::plausible_pool(
            conn,
            f.school_code.as_deref().expect("school"),
            None,
            None,
            &Probe::of(&claims),
        )
        .await
        .expect("pool")
        .len();
    }
    println!(
        "| (accounts read by the prefilter, mean over 50 failures: {}) | | | | | |",
        read / sample.len().clamp(1, 50)
    );
    time(
        conn,
        "candidates (prefilter + rank)",
        5.0,
        iters,
        async |c, i| {
            std::hint::black_box(candidates(c, pick(i)).await);
        },
    )
    .await;
    time(
        conn,
        "detail with candidates (all reads)",
        10.0,
        iters,
        async |c, i| {
            let (f, scope) = (pick(i), &all);
            {
                let f = failures::by_reference_in(c, scope, &f.reference)
                    .await
                    .expect("read")
                    .expect("there");
                std::hint::black_box(candidates(c, &f).await);
                let (idp, sub) = (
                    f.idp_entity_id.as_deref().expect("idp"),
                    f.subject.as_deref().expect("subject"),
                );
                std::hint::black_box(
                    failures::of_identity(c, scope, idp, sub)
                        .await
                        .expect("history"),
                );
                std::hint::black_box(
                    audit::list(c, scope, Some(&f.reference), None, 50)
                        .await
                        .expect("audit"),
                );
            }
        },
    )
    .await;
}
