//! Builds the bench's database: schools, accounts with accented names from
//! small lists, mappings, and a year of failures, by direct multi-row
//! inserts in big transactions.

use jointure::resolve::fold_name;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::time::Instant;

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
pub const IDPS: [&str; 4] = [
    "https://ent.example/idp",
    "https://educonnect.example/idp",
    "https://entree.example/idp",
    "https://other-ent.example/idp",
];

/// A deterministic mix of `i` (splitmix64), for spread without a RNG.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn school_code(s: usize) -> String {
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

pub async fn build(conn: &mut SqliteConnection, schools: usize, per_school: usize, n: usize) {
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
