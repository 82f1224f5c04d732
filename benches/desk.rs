//! The admin desk at scale (issue 11, item 7), run with
//! `cargo bench --bench desk` (release build). It builds its own database
//! (direct inserts, big transactions): by default 1,000,000 failures over 20
//! schools and 500,000 accounts (25,000 per school), then times the desk's
//! reads and prints p50/p95 beside the targets. Nothing here asserts
//! a time. Sizes: `JOINTURE_BENCH_FAILURES`, `JOINTURE_BENCH_SCHOOLS`,
//! `JOINTURE_BENCH_ACCOUNTS` (per school), `JOINTURE_BENCH_ITERS`;
//! `JOINTURE_BENCH_DB=path` keeps the database there and reuses it when it
//! exists (the build is the slow part); `JOINTURE_BENCH_LISTS=0` skips the
//! list pages.

use jointure::resolve::fold_name;
use jointure::resolve::ranking::{rank, CandidateAccount, Claimed, Probe};
use jointure::resolve::FailureStatus;
use jointure::store::failures::{self, Cursor, Filter};
use jointure::store::{accounts, audit, Scope};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

const LASTS: [&str; 48] = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "García",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefèbvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martínez",
    "N'Diaye",
    "Haddad",
    "Nguyen",
    "Benoît",
    "Chevalier",
    "Müller",
    "de Vries",
    "Jansen",
    "van Dijk",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "Brahimi",
    "Gérard",
    "Rousseau",
    "Blanc",
    "Guérin",
];
const FIRSTS: [&str; 40] = [
    "Élodie",
    "Camille",
    "Lucas",
    "Léa",
    "Hugo",
    "Chloé",
    "Théo",
    "Manon",
    "Noah",
    "Inès",
    "Louis",
    "Jade",
    "Gabriel",
    "Zoé",
    "Raphaël",
    "Anaïs",
    "Arthur",
    "Lina",
    "Jules",
    "Maëlle",
    "Adam",
    "Célia",
    "Nathan",
    "Océane",
    "Ethan",
    "Sanne",
    "Daan",
    "Emma",
    "Sem",
    "Julia",
    "Karim",
    "Yasmine",
    "Mathéo",
    "Clémence",
    "Noé",
    "Héloïse",
    "Timéo",
    "Loïc",
    "Anaëlle",
    "Björn",
];
/// Kinds by share (of 20), and whether the sender was verified.
const KINDS: [(&str, bool); 20] = [
    ("identity_mismatch", true),
    ("expired", true),
    ("invalid_signature", false),
    ("identity_mismatch", true),
    ("malformed_request", false),
    ("unknown_school", true),
    ("identity_mismatch", true),
    ("replayed", true),
    ("expired", true),
    ("identity_mismatch", true),
    ("unknown_issuer", false),
    ("wrong_audience", true),
    ("identity_mismatch", true),
    ("ambiguous_identity", true),
    ("missing_school_code", true),
    ("account_disabled", true),
    ("identity_mismatch", true),
    ("idp_error", true),
    ("invalid_signature", false),
    ("untrusted_school", true),
];
const IDPS: [&str; 4] = [
    "https://ent.example/idp",
    "https://educonnect.example/idp",
    "https://entree.example/idp",
    "https://other-ent.example/idp",
];

/// A deterministic mix of `i` (splitmix64), for spread without a RNG.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn school_code(s: usize) -> String {
    let n = 750_000 + s as u64;
    let letters = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    format!("{n:07}{}", letters[(n % 23) as usize] as char)
}

/// The account `j` of school `s`: last name, first name, birth date.
fn person(s: usize, j: usize) -> (String, String, String) {
    let h = mix((s * 1_000_003 + j) as u64);
    let mut last = LASTS[(h % 48) as usize].to_string();
    if h.is_multiple_of(10) {
        last = format!("{last}-{}", LASTS[((h >> 8) % 48) as usize]);
    }
    let first = FIRSTS[((h >> 16) % 40) as usize].to_string();
    let birth = chrono::NaiveDate::from_ymd_opt(2006, 1, 1).expect("date")
        + chrono::Duration::days(((h >> 24) % 2900) as i64);
    (last, first, birth.format("%Y-%m-%d").to_string())
}

async fn build(conn: &mut SqliteConnection, schools: usize, per_school: usize, n: usize) {
    let start = Instant::now();
    let now = jointure::store::now_text();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("tx");
    for s in 0..schools {
        sqlx::query("INSERT INTO schools (code, name, created_at, updated_at) VALUES (?, ?, ?, ?)")
            .bind(school_code(s))
            .bind(format!("Collège {s}"))
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .expect("school");
    }
    let ids: Vec<(usize, usize)> = (0..schools)
        .flat_map(|s| (0..per_school).map(move |j| (s, j)))
        .collect();
    for chunk in ids.chunks(2_000) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO accounts (account_id, school_code, last_name, first_name, birth_date, role, class_name, folded_last, folded_first, active, created_at, updated_at) ");
        q.push_values(chunk, |mut b, &(s, j)| {
            let (last, first, birth) = person(s, j);
            b.push_bind(format!("A{s}-{j}"))
                .push_bind(school_code(s))
                .push_bind(last.clone())
                .push_bind(first.clone())
                .push_bind(birth)
                .push_bind(if j % 10 == 0 { "parent" } else { "student" })
                .push_bind(format!("{}{}", 6 - j % 4, (b'A' + (j % 5) as u8) as char))
                .push_bind(fold_name(&last))
                .push_bind(fold_name(&first))
                .push_bind((j % 50 != 0) as i64)
                .push_bind(now.clone())
                .push_bind(now.clone());
        });
        q.build().execute(&mut *tx).await.expect("accounts");
    }
    // Half the accounts are reached by an IdP already.
    for chunk in ids.chunks(4_000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at) ",
        );
        q.push_values(
            chunk.iter().filter(|(_, j)| j % 2 == 0),
            |mut b, &(s, j)| {
                b.push_bind(IDPS[s % 4])
                    .push_bind(format!("m{s}-{j}"))
                    .push_bind(format!("A{s}-{j}"))
                    .push_bind("auto")
                    .push_bind(now.clone());
            },
        );
        q.build().execute(&mut *tx).await.expect("mappings");
    }
    tx.commit().await.expect("commit");
    println!(
        "built {} accounts in {:.1} s",
        ids.len(),
        start.elapsed().as_secs_f64()
    );
    insert_failures(conn, schools, per_school, n).await;
    println!(
        "built {n} failures in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    sqlx::query("ANALYZE")
        .execute(&mut *conn)
        .await
        .expect("analyze");
}

/// One year of failures, evenly spread, IDs growing with time; the last 30
/// days mostly open, older ones mostly resolved or dismissed.
async fn insert_failures(conn: &mut SqliteConnection, schools: usize, per_school: usize, n: usize) {
    let end = chrono::Utc::now();
    let year = 365 * 86_400i64;
    let raw = format!("<samlp:Response>{}</samlp:Response>", "x".repeat(1_500));
    let mut open_kinds: Vec<&str> = Vec::new();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("tx");
    for start in (0..n).step_by(400) {
        let rows: Vec<usize> = (start..(start + 400).min(n)).collect();
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO failures (reference, support_code, kind, status, idp_entity_id, school_code, subject, detail, asserted_verified, asserted_last_name, asserted_first_name, asserted_birth_date, raw_response, first_seen, last_seen, count, report_json, reported_at, resolved_account_id, resolved_by, resolved_at, dismiss_reason) ");
        q.push_values(rows, |mut b, i| {
            let h = mix(i as u64);
            let (kind, verified) = KINDS[(i / 3 + (i % 3) * 7) % 20];
            let first = end - chrono::Duration::seconds(year * (n - i) as i64 / n as i64);
            let last = first + chrono::Duration::seconds((h % 4) as i64 * 3_600);
            let recent = (end - first).num_days() < 30;
            // Three failures per identity (its history); one open row per
            // (identity, kind), as the fold guarantees.
            if i % 3 == 0 {
                open_kinds.clear();
            }
            let wants_open = if recent { !h.is_multiple_of(4) } else { h.is_multiple_of(10) };
            let open = wants_open && !(verified && open_kinds.contains(&kind));
            if open && verified {
                open_kinds.push(kind);
            }
            let status = if open { "open" } else if h.is_multiple_of(3) { "dismissed" } else { "resolved" };
            let school = (verified && kind != "missing_school_code").then(|| (i / 3) % schools);
            let (s, j) = (school.unwrap_or(0), (h >> 20) as usize % per_school);
            let (mut al, af, ab) = person(s, j);
            if h.is_multiple_of(5) {
                al.push('e'); // a typo: not an exact match
            }
            let reported = kind == "identity_mismatch" && h.is_multiple_of(3);
            b.push_bind(format!("r{:016x}{:08x}", h, i))
                .push_bind(format!("JNT-{i:07X}"))
                .push_bind(kind)
                .push_bind(status)
                .push_bind((kind != "malformed_request" && kind != "unknown_issuer").then(|| IDPS[(i / 3) % 4]))
                .push_bind(school.map(school_code))
                .push_bind(verified.then(|| format!("s{}", i / 3)))
                .push_bind("bench")
                .push_bind(verified as i64)
                .push_bind(verified.then(|| al.clone()))
                .push_bind(verified.then(|| af.clone()))
                .push_bind(verified.then(|| ab.clone()))
                .push_bind(h.is_multiple_of(7).then(|| raw.clone()))
                .push_bind(jointure::store::time_text(first))
                .push_bind(jointure::store::time_text(last))
                .push_bind(1 + (h % 4) as i64)
                .push_bind(reported.then(|| serde_json::json!({"last_name": al.trim_end_matches('e'), "first_name": af, "birth_date": ab, "role": "student", "class_name": "", "email": "", "phone": "", "message": "Je n'arrive pas à me connecter."}).to_string()))
                .push_bind(reported.then(|| jointure::store::time_text(last)))
                .push_bind((status == "resolved").then(|| format!("A{s}-{j}")))
                .push_bind((status == "resolved").then_some("admin@bench"))
                .push_bind((status == "resolved").then(|| jointure::store::time_text(last)))
                .push_bind((status == "dismissed").then_some("bench"));
        });
        q.build().execute(&mut *tx).await.expect("failures");
        if start % 100_000 == 0 && start > 0 {
            tx.commit().await.expect("commit");
            tx = sqlx::Connection::begin(&mut *conn).await.expect("tx");
        }
    }
    tx.commit().await.expect("commit");
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

/// One list page: the one place to adapt when `failures::list` changes.
async fn list_page(
    conn: &mut SqliteConnection,
    scope: &Scope,
    f: &Filter,
    after: Option<&Cursor>,
) -> (usize, Option<Cursor>) {
    let (items, next) = failures::list(conn, scope, f, after, 50)
        .await
        .expect("list");
    (items.len(), next)
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
    let combos: Vec<(&str, Scope, Filter)> = vec![
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
    for (name, scope, filter) in &combos {
        time(
            conn,
            &format!("list page 1: {name}"),
            30.0,
            iters,
            async |c, _| {
                std::hint::black_box(list_page(c, scope, filter, None).await);
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
            match list_page(conn, scope, filter, cursor.as_ref()).await.1 {
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
                    std::hint::black_box(list_page(c, scope, filter, Some(&at)).await);
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
