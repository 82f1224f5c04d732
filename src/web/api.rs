//! The JSON API (SPEC §6), for services that terminate SAML themselves and
//! for the admins' own tools. `Authorization: Bearer TOKEN`, scoped like the
//! admins (a token's schools); errors are `{"error": {"code", "message"}}`.

use super::AppState;
use crate::flow::{self, Context, Outcome};
use crate::resolve::FailureStatus;
use crate::store::desk::{self, Refused};
use crate::store::failures::{self, Cursor, Failure, Filter};
use crate::store::tokens::ApiClient;
use crate::store::{self, accounts, mappings};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/assertions", post(assertions))
        .route("/api/v1/resolve", get(resolve_identity))
        .route("/api/v1/failures", get(list_failures))
        .route("/api/v1/failures/{reference}", get(get_failure))
        .route(
            "/api/v1/failures/{reference}/resolve",
            post(resolve_failure),
        )
        .route(
            "/api/v1/failures/{reference}/dismiss",
            post(dismiss_failure),
        )
        .route("/api/v1/mappings", get(list_mappings).post(create_mapping))
        .route("/api/v1/mappings/{id}", delete(delete_mapping))
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed here",
            )
        });
    // Unknown paths under /api/v1 answer in JSON too.
    let fallback = Router::new().route(
        "/api/v1/{*rest}",
        axum::routing::any(|| async { ApiError::not_found() }),
    );
    api.merge(fallback)
}

/// `Query` whose rejection is an API error.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, st)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad(e.body_text()))
    }
}

/// `Path` whose rejection is an API error.
pub struct ApiPath<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, st)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|_| ApiError::not_found())
    }
}

/// An API error: a status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource in your scope",
        )
    }
    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "api request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        let code = match r {
            Refused::NotFound => return ApiError::not_found(),
            Refused::AlreadyHandled { .. } => "already_handled",
            Refused::MappedToOther(_) => "already_mapped",
            Refused::AlreadyOpenTwin => "conflict",
            Refused::AccountNotAllowed => "account_not_allowed",
            Refused::AccountInactive => "account_inactive",
            Refused::NothingToMap => "not_resolvable",
            Refused::Invalid(_) => "invalid",
        };
        let status = crate::web::error::refusal_status(&r);
        ApiError::new(status, code, r.describe())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl FromRequestParts<AppState> for ApiClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorised = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorised("an Authorization: Bearer token is required"))?;
        let mut conn = st.svc.pool.acquire().await?;
        store::tokens::client(&mut conn, token)
            .await?
            .ok_or_else(|| unauthorised("unknown or revoked token"))
    }
}

/// Reads a JSON body under a size limit, with errors in the API's shape.
async fn read_json<T: serde::de::DeserializeOwned>(
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes: Bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over {limit} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

fn actor(c: &ApiClient) -> String {
    format!("api:{}", c.name)
}

fn failure_url(st: &AppState, reference: &str) -> String {
    format!("{}/failures/{reference}", st.svc.config.public_url)
}

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

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../static/openapi.json"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct AssertionBody {
    saml_response: String,
    relay_state: Option<String>,
}

/// A SAMLResponse handed over by a service: processed exactly as at the ACS.
/// A processed assertion answers 200 whatever its outcome.
async fn assertions(
    State(st): State<AppState>,
    c: ApiClient,
    body: Body,
) -> Result<Response, ApiError> {
    let b: AssertionBody = read_json(body, st.svc.config.max_body_bytes).await?;
    let ctx = Context {
        client_ip: None,
        user_agent: Some(actor(&c)),
        relay_state: b.relay_state,
        browser_token: None,
    };
    // Processed exactly as at the ACS (a genuine assertion logs in or fails
    // the same way whoever hands it over); what the answer reveals is
    // limited to the token's schools: outside them, no account, reference or
    // URL (a reference is a capability to the failure page).
    let scope = c.scope();
    let outcome = flow::process_encoded(&st.svc, &b.saml_response, &ctx).await?;
    let mut conn = st.svc.pool.acquire().await?;
    let body = match outcome {
        Outcome::Resolved { account_id, .. } => {
            let school = accounts::get(&mut conn, &account_id)
                .await?
                .map(|a| a.school_code);
            if scope.allows(school.as_deref()) {
                json!({"outcome": "resolved", "account_id": account_id})
            } else {
                json!({"outcome": "resolved", "account_id": null, "in_scope": false})
            }
        }
        Outcome::Failed {
            kind,
            reference,
            support_code,
        } => {
            if failures::by_reference_in(&mut conn, &scope, &reference)
                .await?
                .is_some()
            {
                json!({
                    "outcome": "failed", "kind": kind.as_str(), "reference": reference,
                    "support_code": support_code, "failure_url": failure_url(&st, &reference),
                })
            } else {
                json!({"outcome": "failed", "kind": kind.as_str(), "reference": null, "support_code": null, "failure_url": null, "in_scope": false})
            }
        }
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
struct ResolveQuery {
    idp: String,
    subject: String,
}

async fn resolve_identity(
    State(st): State<AppState>,
    c: ApiClient,
    ApiQuery(q): ApiQuery<ResolveQuery>,
) -> Result<Response, ApiError> {
    let mut conn = st.svc.pool.acquire().await?;
    let account = match mappings::find(&mut conn, &q.idp, &q.subject).await? {
        Some(a) => accounts::get(&mut conn, &a).await?,
        None => None,
    };
    match account.filter(|a| c.scope().allows(Some(&a.school_code))) {
        Some(a) => {
            Ok(Json(json!({"account_id": a.account_id, "active": a.active})).into_response())
        }
        None => Err(ApiError::not_found()),
    }
}

#[derive(Deserialize)]
struct FailuresQuery {
    status: Option<String>,
    kind: Option<String>,
    school: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list_failures(
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
        Some(c) => {
            Some(Cursor::decode(c).ok_or_else(|| ApiError::bad("cursor: not one this API gave"))?)
        }
        None => None,
    };
    let filter = Filter {
        status,
        kind: q.kind,
        school: q.school,
        ..Default::default()
    };
    let mut conn = st.svc.pool.acquire().await?;
    let (items, next) =
        failures::list(&mut conn, &c.scope(), &filter, cursor.as_ref(), limit).await?;
    let items: Vec<FailureJson> = items.into_iter().map(|f| failure_json(&st, f)).collect();
    Ok(Json(json!({"items": items, "next_cursor": next.map(|c| c.encode())})).into_response())
}

async fn load(st: &AppState, c: &ApiClient, reference: &str) -> Result<Failure, ApiError> {
    let mut conn = st.svc.pool.acquire().await?;
    failures::by_reference_in(&mut conn, &c.scope(), reference)
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn get_failure(
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

async fn resolve_failure(
    State(st): State<AppState>,
    c: ApiClient,
    ApiPath(reference): ApiPath<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let b: ResolveBody = read_json(body, 16 * 1024).await?;
    let mut tx = store::begin_write(&st.svc.pool).await?;
    match desk::resolve(&mut tx, &c.scope(), &reference, &b.account_id, &actor(&c)).await? {
        Ok(_) => tx.commit().await?,
        Err(r) => return Err(r.into()),
    }
    get_failure(State(st), c, ApiPath(reference)).await
}

async fn dismiss_failure(
    State(st): State<AppState>,
    c: ApiClient,
    ApiPath(reference): ApiPath<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let b: DismissBody = read_json(body, 16 * 1024).await?;
    let mut tx = store::begin_write(&st.svc.pool).await?;
    match desk::dismiss(&mut tx, &c.scope(), &reference, &b.reason, &actor(&c)).await? {
        Ok(()) => tx.commit().await?,
        Err(r) => return Err(r.into()),
    }
    get_failure(State(st), c, ApiPath(reference)).await
}

#[derive(Deserialize)]
struct MappingsQuery {
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<i64>,
}

async fn list_mappings(
    State(st): State<AppState>,
    c: ApiClient,
    ApiQuery(q): ApiQuery<MappingsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("limit: 1 to 500"));
    }
    let mut conn = st.svc.pool.acquire().await?;
    let text = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let mut items = mappings::list(&mut conn, &c.scope(), text, q.cursor, limit + 1).await?;
    let next = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|m| m.id)
    });
    Ok(
        Json(json!({"items": items, "next_cursor": next.flatten().map(|id| id.to_string())}))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct MappingBody {
    idp_entity_id: String,
    subject: String,
    account_id: String,
}

async fn create_mapping(
    State(st): State<AppState>,
    c: ApiClient,
    body: Body,
) -> Result<Response, ApiError> {
    let b: MappingBody = read_json(body, 16 * 1024).await?;
    let scope = c.scope();
    let mut tx = store::begin_write(&st.svc.pool).await?;
    if let Err(r) = desk::create_mapping(
        &mut tx,
        &scope,
        &b.idp_entity_id,
        &b.subject,
        &b.account_id,
        &actor(&c),
    )
    .await?
    {
        return Err(r.into());
    }
    let id = mappings::id_of(&mut tx, b.idp_entity_id.trim(), b.subject.trim())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let created = mappings::get(&mut tx, &scope, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn delete_mapping(
    State(st): State<AppState>,
    c: ApiClient,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let mut tx = store::begin_write(&st.svc.pool).await?;
    match desk::delete_mapping(&mut tx, &c.scope(), id, &actor(&c)).await? {
        Ok(()) => {
            tx.commit().await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(r) => Err(r.into()),
    }
}
