//! The API's error shape and its extractors: query, path and bearer token
//! whose rejections answer in that shape, and a JSON body under a limit.

use crate::store;
use crate::store::desk::Refused;
use crate::store::tokens::ApiClient;
use crate::web::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub(super) fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource in your scope",
        )
    }
    pub(super) fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_unavailable(&e) {
            // Logged once per change of cause, not per request.
            crate::store::note_unavailable(&e);
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database cannot take this request now; try again in a minute",
            );
        }
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
            Refused::NotUndoable => "not_undoable",
            Refused::AlreadyUndone => "already_undone",
            Refused::ChangedSince => "changed_since",
            Refused::NotRecheckable => "not_recheckable",
        };
        let status = crate::web::error::refusal_status(&r);
        // The API speaks English; the desk renders the same keys in the
        // admin's language.
        let message =
            crate::web::error::refusal_text(&r, crate::i18n::Tr::new(crate::i18n::Lang::En));
        ApiError::new(status, code, message)
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
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[tokio::test]
    async fn a_database_that_cannot_write_now_is_503_for_clients_too() {
        let res = ApiError::from(crate::store::read_only_error().await).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let res = ApiError::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
