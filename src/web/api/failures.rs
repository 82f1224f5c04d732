//! The failures in the API: listed, read, resolved and dismissed.

use super::{actor, failure_url, read_json, ApiError, ApiPath, ApiQuery};
use crate::resolve::FailureStatus;
use crate::store::desk;
use crate::store::failures::{self, Cursor, Failure, Filter, PageRequest, Sort};
use crate::store::tokens::ApiClient;
use crate::web::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A failure as the API shows it.
#[derive(Serialize)]
struct FailureJson {
    reference: String,
    support_code: String,
    kind: &'static str,
    status: FailureStatus,
    idp_entity_id: Option<String>,
    school_code: Option<String>,
    subject: Option<String>,
    count: i64,
    first_seen: String,
    last_seen: String,
    asserted: Value,
    declared: Option<Value>,
    resolved_account_id: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<String>,
    failure_url: String,
}

fn failure_json(st: &AppState, f: Failure) -> FailureJson {
    FailureJson {
        failure_url: failure_url(st, &f.reference),
        asserted: json!({
            "verified": f.asserted_verified,
            "last_name": f.asserted_last_name, "first_name": f.asserted_first_name,
            "birth_date": f.asserted_birth_date, "role": f.asserted_role, "class_name": f.asserted_class_name,
        }),
        declared: f
            .report_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
        reference: f.reference,
        support_code: f.support_code,
        kind: f.kind.as_str(),
        status: f.status,
        idp_entity_id: f.idp_entity_id,
        school_code: f.school_code,
        subject: f.subject,
        count: f.count,
        first_seen: f.first_seen,
        last_seen: f.last_seen,
        resolved_account_id: f.resolved_account_id,
        resolved_by: f.resolved_by,
        resolved_at: f.resolved_at,
    }
}

#[derive(Deserialize)]
pub(super) struct FailuresQuery {
    status: Option<String>,
    kind: Option<String>,
    school: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub(super) async fn list_failures(
    State(st): State<AppState>,
    c: ApiClient,
    ApiQuery(q): ApiQuery<FailuresQuery>,
) -> Result<Response, ApiError> {
    let status =
        match q.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(FailureStatus::parse(s).ok_or_else(|| {
                ApiError::bad(format!("status {s:?}: open, resolved or dismissed"))
            })?),
        };
    if let Some(k) = q
        .kind
        .as_deref()
        .filter(|k| k.parse::<crate::resolve::FailureKind>().is_err())
    {
        return Err(ApiError::bad(format!("kind {k:?} is not a failure kind")));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("limit: 1 to 500"));
    }
    let cursor = match q.cursor.as_deref() {
        Some(c) => Some(
            Cursor::decode(c)
                .filter(|c| c.sort() == Sort::LastSeen)
                .ok_or_else(|| ApiError::bad("cursor: not one this API gave"))?,
        ),
        None => None,
    };
    let filter = Filter {
        status,
        kind: q.kind,
        school: q.school,
        ..Default::default()
    };
    let mut conn = st.svc.pool.acquire().await?;
    // The API keeps its newest-first order (SPEC §6).
    let page = PageRequest {
        sort: Sort::LastSeen,
        cursor,
        limit,
    };
    let page = failures::list(&mut conn, &c.scope(), &filter, &page).await?;
    let items: Vec<FailureJson> = page
        .items
        .into_iter()
        .map(|f| failure_json(&st, f))
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": page.next.map(|c| c.encode())})).into_response())
}

async fn load(st: &AppState, c: &ApiClient, reference: &str) -> Result<Failure, ApiError> {
    let mut conn = st.svc.pool.acquire().await?;
    failures::by_reference_in(&mut conn, &c.scope(), reference)
        .await?
        .ok_or_else(ApiError::not_found)
}

pub(super) async fn get_failure(
    State(st): State<AppState>,
    c: ApiClient,
    ApiPath(reference): ApiPath<String>,
) -> Result<Response, ApiError> {
    let f = load(&st, &c, &reference).await?;
    Ok(Json(failure_json(&st, f)).into_response())
}

#[derive(Deserialize)]
struct ResolveBody {
    account_id: String,
}

#[derive(Deserialize)]
struct DismissBody {
    reason: String,
}

pub(super) async fn resolve_failure(
    State(st): State<AppState>,
    c: ApiClient,
    ApiPath(reference): ApiPath<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let b: ResolveBody = read_json(body, 16 * 1024).await?;
    let mut tx = st.svc.begin_write().await?;
    match desk::resolve(&mut tx, &c.scope(), &reference, &b.account_id, &actor(&c)).await? {
        Ok(_) => tx.commit().await?,
        Err(r) => return Err(r.into()),
    }
    get_failure(State(st), c, ApiPath(reference)).await
}

pub(super) async fn dismiss_failure(
    State(st): State<AppState>,
    c: ApiClient,
    ApiPath(reference): ApiPath<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let b: DismissBody = read_json(body, 16 * 1024).await?;
    let mut tx = st.svc.begin_write().await?;
    match desk::dismiss(&mut tx, &c.scope(), &reference, &b.reason, &actor(&c)).await? {
        Ok(()) => tx.commit().await?,
        Err(r) => return Err(r.into()),
    }
    get_failure(State(st), c, ApiPath(reference)).await
}
