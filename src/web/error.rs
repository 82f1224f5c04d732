//! One error type for handlers: it renders a page that says what to do, and
//! logs the cause of server errors (never shown to the user).

use crate::i18n::{Lang, Tr};
use crate::resolve::FailureKind;
use crate::store::desk::Refused;
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
        // The request's language when there is one (errors outside a
        // request, e.g. in tests, are French like every default page).
        let lang = crate::web::current_request().map_or(Lang::Fr, |r| r.lang);
        let t = Tr::new(lang);
        let (status, title, text) = match &self {
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                t.get("page.not_found"),
                t.get("page.not_found.text").to_string(),
            ),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, t.get("page.error"), m.clone()),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, t.get("page.error"), m.clone()),
            AppError::Database(e) if crate::store::is_unavailable(e) => {
                // Logged once per change of cause, not per request.
                crate::store::note_unavailable(e);
                let mut res = crate::web::message_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    t,
                    t.get("page.unavailable"),
                    t.get("page.unavailable.text"),
                );
                res.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("60"),
                );
                return res;
            }
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

/// The HTTP status the browser gets with a failure page (SPEC §2): HTTP is
/// this layer's business, not the domain's.
pub fn failure_status(kind: FailureKind) -> StatusCode {
    match kind {
        FailureKind::MalformedRequest => StatusCode::BAD_REQUEST,
        FailureKind::IdpError => StatusCode::BAD_GATEWAY,
        FailureKind::MissingSchoolCode
        | FailureKind::InvalidSchoolCode
        | FailureKind::MissingSubject => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::FORBIDDEN,
    }
}

/// The HTTP status of a refused desk action (pages and API alike).
pub fn refusal_status(r: &Refused) -> StatusCode {
    match r {
        Refused::NotFound => StatusCode::NOT_FOUND,
        Refused::AlreadyHandled { .. } | Refused::AlreadyOpenTwin | Refused::MappedToOther(_) => {
            StatusCode::CONFLICT
        }
        Refused::AccountNotAllowed => StatusCode::FORBIDDEN,
        Refused::AccountInactive
        | Refused::NothingToMap
        | Refused::Invalid(_)
        | Refused::NotUndoable
        | Refused::NotRecheckable => StatusCode::UNPROCESSABLE_ENTITY,
        Refused::AlreadyUndone | Refused::ChangedSince => StatusCode::CONFLICT,
    }
}

/// A refused desk action in the reader's language: the catalogue text of
/// [`Refused::key`] with what the refusal names filled in.
pub fn refusal_text(r: &Refused, t: Tr) -> String {
    let text = t.get(r.key());
    match r {
        Refused::AlreadyHandled { status, by, at } => text
            .replace("{status}", &t.code("admin.status", status.as_str()))
            .replace("{by}", by.as_deref().unwrap_or(t.get("refused.by_system")))
            .replace("{at}", at.as_deref().unwrap_or(t.get("refused.earlier"))),
        Refused::MappedToOther(Some(account)) => text.replace("{account}", account),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_that_cannot_write_now_is_try_again_later_not_a_service_error() {
        let e = crate::store::read_only_error().await;
        assert!(crate::store::is_unavailable(&e), "{e}");
        let res = AppError::from(e).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "60");
        // A mistake in a statement stays a service error.
        let res = AppError::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn every_refusal_reads_in_every_language_with_its_names_filled_in() {
        use crate::resolve::FailureStatus;
        let all = [
            Refused::NotFound,
            Refused::AlreadyHandled {
                status: FailureStatus::Dismissed,
                by: Some("ana@x.test".into()),
                at: None,
            },
            Refused::AccountNotAllowed,
            Refused::AccountInactive,
            Refused::NothingToMap,
            Refused::MappedToOther(Some("A-7".into())),
            Refused::MappedToOther(None),
            Refused::AlreadyOpenTwin,
            Refused::Invalid("refused.reason_required"),
            Refused::Invalid("refused.identity_required"),
            Refused::NotUndoable,
            Refused::AlreadyUndone,
            Refused::ChangedSince,
            Refused::NotRecheckable,
        ];
        for lang in [Lang::Fr, Lang::Nl, Lang::En] {
            for r in &all {
                let text = refusal_text(r, Tr::new(lang));
                assert!(
                    !text.contains('{') && !text.starts_with("refused."),
                    "{lang:?} {r:?}: {text}"
                );
            }
        }
        let t = Tr::new(Lang::Fr);
        let handled = refusal_text(&all[1], t);
        assert!(
            handled.contains("classé") && handled.contains("ana@x.test"),
            "{handled}"
        );
        assert!(refusal_text(&all[5], t).contains("A-7"));
    }

    #[test]
    fn statuses_follow_the_spec() {
        assert_eq!(failure_status(FailureKind::MalformedRequest), 400);
        assert_eq!(failure_status(FailureKind::IdpError), 502);
        assert_eq!(failure_status(FailureKind::MissingSubject), 422);
        assert_eq!(failure_status(FailureKind::UnknownSchool), 403);
        assert_eq!(failure_status(FailureKind::UntrustedSchool), 403);
        assert_eq!(failure_status(FailureKind::IdentityMismatch), 403);
    }
}
