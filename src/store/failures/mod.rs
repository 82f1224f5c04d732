//! Recorded login failures. Repeats of an open (IdP, subject, kind) fold
//! into one row with a counter.
//!
//! Here the stored row and its reads (one, a list page, an identity's,
//! the dashboard's numbers); in `record` how a refusal is recorded or
//! folded; in `update` what changes a recorded one.

mod dashboard;
mod list;
mod record;
mod update;

pub use dashboard::{oldest, stats, Oldest, Stats};
pub use list::{list, totals, Cursor, Filter, ListPage, PageRequest, Sort, Totals};

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
