//! One error type for handlers: it renders a page that says what to do, and
//! logs the cause of server errors (never shown to the user).

use crate::i18n::{Lang, Tr};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let t = Tr::new(Lang::Fr);
        let (status, title, text) = match &self {
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                t.get("page.not_found"),
                t.get("page.not_found.text").to_string(),
            ),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, t.get("page.error"), m.clone()),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, t.get("page.error"), m.clone()),
            _ => {
                tracing::error!(error = %self, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    t.get("page.error"),
                    t.get("page.error.text").to_string(),
                )
            }
        };
        crate::web::message_page(status, t, title, &text)
    }
}
