//! Recorded login failures. Repeats of an open (IdP, subject, kind) fold
//! into one row with a counter.
//!
//! Here the stored row and its reads (one, a list page, an identity's,
//! the dashboard's numbers); in `record` how a refusal is recorded or
//! folded; in `update` what changes a recorded one.

mod record;
mod update;

pub use record::{
    record, NewFailure, UnverifiedBudget, RAW_RESPONSE_LIMIT, UNVERIFIED_BUDGET,
    UNVERIFIED_RAW_RESPONSE_LIMIT,
};
pub use update::{purge_personal_data, resolve_identity, save_report, ResolvedBy};

use crate::resolve::{FailureKind, FailureStatus};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

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
