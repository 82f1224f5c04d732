//! Recording a refusal: a new row, or a repeat folded into an open one;
//! every field a sender controls bounded, and unverified floods kept to a
//! budget.

use crate::resolve::FailureKind;
use crate::store::{is_unique_violation, now_text, time_text};
use rand::Rng;
use sqlx::{Row, SqliteConnection};

/// A failure about to be recorded.
#[derive(Debug, Clone, Default)]
pub struct NewFailure {
    pub kind: Option<FailureKind>,
    pub idp_entity_id: Option<String>,
    pub school_code: Option<String>,
    pub subject: Option<String>,
    pub detail: String,
    /// The claims as JSON (`{"name_id":…, "attributes":[…]}`).
    pub asserted_json: String,
    /// Whether those claims passed signature verification.
    pub asserted_verified: bool,
    pub asserted_last_name: Option<String>,
    pub asserted_first_name: Option<String>,
    pub asserted_birth_date: Option<String>,
    pub asserted_role: Option<String>,
    pub asserted_class_name: Option<String>,
    /// Account IDs automatic matching found (homonyms).
    pub candidate_ids: Option<String>,
    pub raw_response: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub relay_state: Option<String>,
}

/// The largest raw response kept with a failure; the rest is cut (the body
/// limit already bounds it, this bounds what minors' data we keep).
pub const RAW_RESPONSE_LIMIT: usize = 64 * 1024;
/// The same for a response whose signature was not verified: anyone can
/// send those; a real IdP's misconfigured response (about 10 KiB with its
/// certificate) still fits.
pub const UNVERIFIED_RAW_RESPONSE_LIMIT: usize = 16 * 1024;

/// A reference: 256 random bits, URL-safe. It is a capability: whoever holds
/// it sees the failure page.
fn new_reference() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A support code such as `JNT-7K3F9Q`: short, read over the phone, so no
/// I, L, O or U (Crockford's alphabet).
fn new_support_code() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::thread_rng();
    let code: String = (0..6)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("JNT-{code}")
}

fn truncate(s: Option<String>, max: usize) -> Option<String> {
    s.map(|mut s| {
        let keep = crate::resolve::prefix_within(&s, max).len();
        s.truncate(keep);
        s
    })
}

/// How refused, unverified responses (anyone can send them) are kept from
/// growing the database: they fold into an open row of the same sender
/// instead of adding rows.
#[derive(Debug, Clone, Copy)]
pub struct UnverifiedBudget {
    /// Same kind, IdP and client address within this window: one row.
    pub window_seconds: i64,
    /// New rows one address may add per window; past it, its posts fold
    /// into its latest row.
    pub per_address: i64,
    /// New rows all senders together may add per hour; past it, posts fold
    /// into the latest row of their kind.
    pub per_hour: i64,
}

/// The budget in force.
pub const UNVERIFIED_BUDGET: UnverifiedBudget = UnverifiedBudget {
    window_seconds: 600,
    per_address: 20,
    per_hour: 1000,
};

/// Folds an unverified failure into an existing row when the budget says
/// so; returns that row's reference and support code.
async fn fold_unverified(
    conn: &mut SqliteConnection,
    f: &NewFailure,
    kind: FailureKind,
    budget: &UnverifiedBudget,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let now = chrono::Utc::now();
    let window = time_text(now - chrono::Duration::seconds(budget.window_seconds));
    let hour = time_text(now - chrono::Duration::hours(1));
    let unverified = "status = 'open' AND subject IS NULL AND asserted_verified = 0";
    // 1. The same sender, kind and IdP within the window.
    let mut target: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM failures WHERE {unverified} AND client_ip IS ? AND kind = ? AND idp_entity_id IS ? AND last_seen >= ? ORDER BY id DESC LIMIT 1"
    ))
    .bind(&f.client_ip)
    .bind(kind.as_str())
    .bind(&f.idp_entity_id)
    .bind(&window)
    .fetch_optional(&mut *conn)
    .await?;
    // 2. This address has used its budget of new rows.
    if target.is_none() {
        let used: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM failures WHERE subject IS NULL AND asserted_verified = 0 AND client_ip IS ? AND first_seen >= ?",
        )
        .bind(&f.client_ip)
        .bind(&window)
        .fetch_one(&mut *conn)
        .await?;
        if used >= budget.per_address {
            target = sqlx::query_scalar(&format!(
                "SELECT id FROM failures WHERE {unverified} AND client_ip IS ? ORDER BY id DESC LIMIT 1"
            ))
            .bind(&f.client_ip)
            .fetch_optional(&mut *conn)
            .await?;
        }
    }
    // 3. Everybody together has used the hour's budget.
    if target.is_none() {
        let used: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM failures WHERE subject IS NULL AND asserted_verified = 0 AND first_seen >= ?",
        )
        .bind(&hour)
        .fetch_one(&mut *conn)
        .await?;
        if used >= budget.per_hour {
            target = sqlx::query_scalar(&format!(
                "SELECT id FROM failures WHERE {unverified} ORDER BY kind = ? DESC, id DESC LIMIT 1"
            ))
            .bind(kind.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        }
    }
    let Some(id) = target else {
        return Ok(None);
    };
    // Only the counter, the time and (for the same kind) the short reason
    // move: a flood rewrites no large field.
    let row = sqlx::query(
        "UPDATE failures SET count = count + 1, last_seen = ?, detail = CASE WHEN kind = ? THEN ? ELSE detail END
         WHERE id = ? RETURNING reference, support_code",
    )
    .bind(time_text(now))
    .bind(kind.as_str())
    .bind(truncate(Some(f.detail.clone()), 2048))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some((row.get("reference"), row.get("support_code"))))
}

/// Records a failure, or folds it into the open one of the same (IdP,
/// subject, kind); returns its reference and support code. An unverified
/// one (no subject) folds by sender under [`UNVERIFIED_BUDGET`]. A folded
/// failure keeps its school, so it never moves from one school's desk to
/// another's.
// Long on purpose: the budget, the fold and the insert of one refusal are
// one transaction's statements, in the order they must run.
pub async fn record(
    conn: &mut SqliteConnection,
    f: &NewFailure,
) -> Result<(String, String), sqlx::Error> {
    let kind = f.kind.unwrap_or(FailureKind::MalformedRequest);
    if f.subject.is_none() && !f.asserted_verified {
        if let Some(folded) = fold_unverified(conn, f, kind, &UNVERIFIED_BUDGET).await? {
            return Ok(folded);
        }
    }
    let now = now_text();
    // A request we could not even read keeps only its beginning: it names
    // nobody, and anyone can send them.
    let raw_limit = if kind == FailureKind::MalformedRequest {
        4096
    } else if !f.asserted_verified {
        UNVERIFIED_RAW_RESPONSE_LIMIT
    } else {
        RAW_RESPONSE_LIMIT
    };
    let raw = truncate(f.raw_response.clone(), raw_limit);
    let ua = truncate(f.user_agent.clone(), 512);
    let relay = truncate(f.relay_state.clone(), 1024);
    // Every other field a sender controls is bounded as well.
    let idp = truncate(f.idp_entity_id.clone(), 1024);
    let school = truncate(f.school_code.clone(), 64);
    let subject = truncate(f.subject.clone(), 1024);
    let detail = truncate(Some(f.detail.clone()), 2048).unwrap_or_default();
    let short = |v: &Option<String>| truncate(v.clone(), 256);
    let candidates = truncate(f.candidate_ids.clone(), 4096);
    // A support-code collision (1 in 10^9 per pair) is retried.
    for _ in 0..5 {
        let r = sqlx::query(
            "INSERT INTO failures (reference, support_code, kind, idp_entity_id, school_code, subject, detail,
               asserted_json, asserted_verified, asserted_last_name, asserted_first_name, asserted_birth_date,
               asserted_role, asserted_class_name, candidate_ids, raw_response, client_ip, user_agent, relay_state,
               first_seen, last_seen)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (idp_entity_id, subject, kind)
               WHERE status = 'open' AND idp_entity_id IS NOT NULL AND subject IS NOT NULL
             DO UPDATE SET count = count + 1, last_seen = excluded.last_seen,
               school_code = COALESCE(failures.school_code, excluded.school_code), detail = excluded.detail,
               asserted_json = excluded.asserted_json, asserted_verified = excluded.asserted_verified,
               asserted_last_name = excluded.asserted_last_name, asserted_first_name = excluded.asserted_first_name,
               asserted_birth_date = excluded.asserted_birth_date, asserted_role = excluded.asserted_role,
               asserted_class_name = excluded.asserted_class_name, candidate_ids = excluded.candidate_ids,
               raw_response = excluded.raw_response, client_ip = excluded.client_ip,
               user_agent = excluded.user_agent, relay_state = excluded.relay_state
             RETURNING reference, support_code",
        )
        .bind(new_reference())
        .bind(new_support_code())
        .bind(kind.as_str())
        .bind(&idp)
        .bind(&school)
        .bind(&subject)
        .bind(&detail)
        .bind(&f.asserted_json)
        .bind(f.asserted_verified as i64)
        .bind(short(&f.asserted_last_name))
        .bind(short(&f.asserted_first_name))
        .bind(short(&f.asserted_birth_date))
        .bind(short(&f.asserted_role))
        .bind(short(&f.asserted_class_name))
        .bind(&candidates)
        .bind(&raw)
        .bind(&f.client_ip)
        .bind(&ua)
        .bind(&relay)
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *conn)
        .await;
        match r {
            Ok(row) => return Ok((row.get("reference"), row.get("support_code"))),
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(sqlx::Error::Protocol(
        "could not draw a unique support code".into(),
    ))
}
