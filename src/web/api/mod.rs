//! The JSON API (SPEC §6), for services that terminate SAML themselves and
//! for the admins' own tools. `Authorization: Bearer TOKEN`, scoped like the
//! admins (a token's schools); errors are `{"error": {"code", "message"}}`.
//!
//! Here the routes, the assertions, identities and mappings; in `failures`
//! the failures; in `extract` the error shape and the extractors.

mod extract;
mod failures;

pub use extract::{ApiError, ApiPath, ApiQuery};

use extract::read_json;
use failures::{dismiss_failure, get_failure, list_failures, resolve_failure};

use super::AppState;
use crate::flow::{self, Context, Outcome};
use crate::store::desk;
use crate::store::tokens::ApiClient;
use crate::store::{self, accounts, mappings};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

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

fn actor(c: &ApiClient) -> String {
    format!("api:{}", c.name)
}

fn failure_url(st: &AppState, reference: &str) -> String {
    format!("{}/failures/{reference}", st.svc.config.public_url)
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../../static/openapi.json"),
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
            if store::failures::by_reference_in(&mut conn, &scope, &reference)
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
    let mut tx = st.svc.begin_write().await?;
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
    let mut tx = st.svc.begin_write().await?;
    match desk::delete_mapping(&mut tx, &c.scope(), id, &actor(&c)).await? {
        Ok(()) => {
            tx.commit().await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(r) => Err(r.into()),
    }
}
