//! Recorded login failures. Repeats of an open (IdP, subject, kind) fold
//! into one row with a counter.

use crate::resolve::{FailureKind, FailureStatus};
use rand::Rng;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

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

/// A stored failure, as pages and exports read it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub id: i64,
    pub reference: String,
    pub support_code: String,
    pub kind: FailureKind,
    pub status: FailureStatus,
    pub idp_entity_id: Option<String>,
    pub school_code: Option<String>,
    pub subject: Option<String>,
    pub detail: String,
    pub asserted_json: String,
    pub asserted_verified: bool,
    pub asserted_last_name: Option<String>,
    pub asserted_first_name: Option<String>,
    pub asserted_birth_date: Option<String>,
    pub asserted_role: Option<String>,
    pub asserted_class_name: Option<String>,
    pub raw_response: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub count: i64,
    pub report_json: Option<String>,
    pub resolved_account_id: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
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
    let window = super::time_text(now - chrono::Duration::seconds(budget.window_seconds));
    let hour = super::time_text(now - chrono::Duration::hours(1));
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
    .bind(super::time_text(now))
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
    let now = super::now_text();
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
            Err(e) if super::is_unique_violation(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(sqlx::Error::Protocol(
        "could not draw a unique support code".into(),
    ))
}

const COLUMNS: &str =
    "id, reference, support_code, kind, status, idp_entity_id, school_code, subject, detail,
    asserted_json, asserted_verified, asserted_last_name, asserted_first_name, asserted_birth_date,
    asserted_role, asserted_class_name, raw_response, first_seen, last_seen, count, report_json,
    resolved_account_id, resolved_by, resolved_at";

fn from_row(r: &sqlx::sqlite::SqliteRow) -> Failure {
    let kind: String = r.get("kind");
    Failure {
        id: r.get("id"),
        reference: r.get("reference"),
        support_code: r.get("support_code"),
        kind: kind.parse().unwrap_or(FailureKind::MalformedRequest),
        status: FailureStatus::parse(r.get("status")).unwrap_or(FailureStatus::Open),
        idp_entity_id: r.get("idp_entity_id"),
        school_code: r.get("school_code"),
        subject: r.get("subject"),
        detail: r.get("detail"),
        asserted_json: r.get("asserted_json"),
        asserted_verified: r.get::<i64, _>("asserted_verified") != 0,
        asserted_last_name: r.get("asserted_last_name"),
        asserted_first_name: r.get("asserted_first_name"),
        asserted_birth_date: r.get("asserted_birth_date"),
        asserted_role: r.get("asserted_role"),
        asserted_class_name: r.get("asserted_class_name"),
        raw_response: r.get("raw_response"),
        first_seen: r.get("first_seen"),
        last_seen: r.get("last_seen"),
        count: r.get("count"),
        report_json: r.get("report_json"),
        resolved_account_id: r.get("resolved_account_id"),
        resolved_by: r.get("resolved_by"),
        resolved_at: r.get("resolved_at"),
    }
}

pub async fn by_reference(
    conn: &mut SqliteConnection,
    reference: &str,
) -> Result<Option<Failure>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM failures WHERE reference = ?"
    ))
    .bind(reference)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(from_row))
}

/// Stores (or replaces) the user's report on an open failure; false when the
/// failure is no longer open.
pub async fn save_report(
    conn: &mut SqliteConnection,
    reference: &str,
    report_json: &str,
    lang: &str,
) -> Result<bool, sqlx::Error> {
    // The language the form was sent in: the e-mail that says it is
    // resolved speaks it.
    let r = sqlx::query(
        "UPDATE failures SET report_json = ?, report_lang = ?, reported_at = ? WHERE reference = ? AND status = 'open'",
    )
    .bind(report_json)
    .bind(lang)
    .bind(super::now_text())
    .bind(reference)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forgets the personal data of failures not seen for `days` days: the raw
/// response, client details, what the IdP asserted (claims and names) and
/// what the user declared in the form (contact details included), and the
/// e-mails queued for them. These are minors' data, kept only as long as
/// needed; the row itself (kind, school, times, resolution) stays for the
/// statistics.
pub async fn purge_personal_data(
    conn: &mut SqliteConnection,
    days: i64,
) -> Result<u64, sqlx::Error> {
    let cutoff = super::time_text(chrono::Utc::now() - chrono::Duration::days(days));
    let r = sqlx::query(
        "UPDATE failures SET raw_response = NULL, client_ip = NULL, user_agent = NULL,
           asserted_json = '{}', asserted_last_name = NULL, asserted_first_name = NULL,
           asserted_birth_date = NULL, asserted_role = NULL, asserted_class_name = NULL,
           report_json = NULL, relay_state = NULL
         WHERE last_seen < ? AND (raw_response IS NOT NULL OR client_ip IS NOT NULL OR user_agent IS NOT NULL
           OR asserted_json <> '{}' OR asserted_last_name IS NOT NULL OR asserted_first_name IS NOT NULL
           OR asserted_birth_date IS NOT NULL OR report_json IS NOT NULL)",
    )
    .bind(&cutoff)
    .execute(&mut *conn)
    .await?;
    super::mail::purge(conn, &cutoff).await?;
    Ok(r.rows_affected())
}

/// The admin list's filters; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<FailureStatus>,
    pub kind: Option<String>,
    pub school: Option<String>,
    pub idp: Option<String>,
    /// Searched in support code, reference, subject, asserted names, report.
    pub text: Option<String>,
    /// `YYYY-MM-DD`, inclusive, on last seen.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, inclusive, on last seen.
    pub to: Option<String>,
}

/// A keyset cursor: the (last_seen, id) of the last row shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub last_seen: String,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}~{}", self.last_seen, self.id)
    }
    pub fn decode(s: &str) -> Option<Cursor> {
        let (t, id) = s.split_once('~')?;
        Some(Cursor {
            last_seen: t.to_string(),
            id: id.parse().ok()?,
        })
    }
}

/// Failures in scope matching the filter, newest first, after the cursor.
/// Returns at most `limit` rows and the cursor of the next page.
pub async fn list(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    f: &Filter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<Failure>, Option<Cursor>), sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM failures WHERE 1=1"));
    scope.push_condition(&mut q, "school_code");
    let equal = [
        ("status", f.status.map(|s| s.as_str())),
        ("kind", f.kind.as_deref()),
        ("school_code", f.school.as_deref()),
        ("idp_entity_id", f.idp.as_deref()),
    ];
    for (col, v) in equal {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            q.push(format_args!(" AND {col} = ")).push_bind(v);
        }
    }
    if let Some(t) = f.text.as_ref().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let p = super::like_pattern(t);
        q.push(" AND (");
        let mut any = q.separated(" OR ");
        any.push("support_code LIKE ")
            .push_bind_unseparated(p.clone())
            .push_unseparated(" ESCAPE '\\'");
        any.push("reference = ").push_bind_unseparated(t);
        for col in [
            "subject",
            "asserted_last_name",
            "asserted_first_name",
            "report_json",
        ] {
            any.push(format_args!("{col} LIKE "))
                .push_bind_unseparated(p.clone())
                .push_unseparated(" ESCAPE '\\'");
        }
        q.push(")");
    }
    if let Some(d) = f.from.as_ref().filter(|d| !d.is_empty()) {
        q.push(" AND last_seen >= ")
            .push_bind(format!("{d}T00:00:00Z"));
    }
    if let Some(d) = f.to.as_ref().filter(|d| !d.is_empty()) {
        q.push(" AND last_seen <= ")
            .push_bind(format!("{d}T23:59:59Z"));
    }
    if let Some(c) = after {
        q.push(" AND (last_seen < ")
            .push_bind(&c.last_seen)
            .push(" OR (last_seen = ")
            .push_bind(&c.last_seen)
            .push(" AND id < ")
            .push_bind(c.id)
            .push("))");
    }
    q.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
        .push_bind(limit + 1);
    let rows = q.build().fetch_all(&mut *conn).await?;
    let mut items: Vec<Failure> = rows.iter().map(from_row).collect();
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|f| Cursor {
            last_seen: f.last_seen.clone(),
            id: f.id,
        })
    } else {
        None
    };
    Ok((items, next))
}

/// One failure in scope.
pub async fn by_reference_in(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    reference: &str,
) -> Result<Option<Failure>, sqlx::Error> {
    let mut q =
        QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM failures WHERE reference = "));
    q.push_bind(reference);
    scope.push_condition(&mut q, "school_code");
    Ok(q.build()
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(from_row))
}

/// Every failure of one identity in scope, newest first.
pub async fn of_identity(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    idp: &str,
    subject: &str,
) -> Result<Vec<Failure>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {COLUMNS} FROM failures WHERE idp_entity_id = "
    ));
    q.push_bind(idp).push(" AND subject = ").push_bind(subject);
    scope.push_condition(&mut q, "school_code");
    q.push(" ORDER BY last_seen DESC, id DESC LIMIT 50");
    Ok(q.build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// Dashboard numbers: open failures by kind and by school, and failures
/// first seen per day since `since` (`YYYY-MM-DD`).
pub struct Stats {
    pub by_kind: Vec<(String, i64)>,
    pub by_school: Vec<(Option<String>, i64)>,
    pub per_day: Vec<(String, i64)>,
}

pub async fn stats(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    since: &str,
) -> Result<Stats, sqlx::Error> {
    // The same query grouped by one column: a constant name, never a value.
    let grouped = |col: &str| {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {col} AS k, COUNT(*) AS n FROM failures WHERE status = 'open'"
        ));
        scope.push_condition(&mut q, "school_code");
        q.push(format_args!(" GROUP BY {col} ORDER BY n DESC, k"));
        q
    };
    let by_kind = grouped("kind")
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get("k"), r.get("n")))
        .collect();
    let by_school = grouped("school_code")
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get("k"), r.get("n")))
        .collect();
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT substr(first_seen, 1, 10) AS d, COUNT(*) AS n FROM failures WHERE first_seen >= ",
    );
    q.push_bind(format!("{since}T00:00:00Z"));
    scope.push_condition(&mut q, "school_code");
    q.push(" GROUP BY d ORDER BY d");
    let per_day = q
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get("d"), r.get("n")))
        .collect();
    Ok(Stats {
        by_kind,
        by_school,
        per_day,
    })
}

/// Who resolved an identity's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedBy {
    Admin,
    Import,
}

/// Resolves the scope's open failures of one identity (IdP, subject) to
/// `account_id`; returns how many.
pub async fn resolve_identity(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    identity: (&str, &str),
    account_id: &str,
    actor: &str,
    by: ResolvedBy,
) -> sqlx::Result<u64> {
    let (idp_entity_id, subject) = identity;
    // Whoever sent the form with an e-mail is told, once, in the same
    // transaction: a resolution and its e-mail land together.
    super::mail::queue_for_identity(conn, scope, identity).await?;
    let now = super::now_text();
    let source = match by {
        ResolvedBy::Admin => "admin",
        ResolvedBy::Import => "import",
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE failures SET status = 'resolved', resolved_account_id = ",
    );
    q.push_bind(account_id)
        .push(", resolved_by = ")
        .push_bind(actor)
        .push(", resolved_at = ")
        .push_bind(now)
        .push(", resolution_source = ")
        .push_bind(source)
        .push(" WHERE idp_entity_id = ")
        .push_bind(idp_entity_id)
        .push(" AND subject = ")
        .push_bind(subject)
        .push(" AND status = 'open'");
    scope.push_condition(&mut q, "school_code");
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}
