//! Undo (from a failure's history or the audit log) and "re-check now"
//! (one failure, or every open re-checkable failure in the admin's scope).
//! Each runs in one write transaction: all of it lands, or nothing.

use super::failures::{detail_page, load, DetailQuery};
use super::lists::{audit_page, SearchQuery};
use super::{AdminForm, NoFields};
use crate::flow::recheck::{recheck, recheck_all, Rechecked, RECHECKABLE};
use crate::store::desk::{self, Refused};
use crate::web::error::{refusal_status, refusal_text, AppError};
use crate::web::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

fn see_other(to: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// The undo form: from a failure's page it names the failure, so the
/// answer (done or refused) is that page again.
#[derive(Debug, Default, Deserialize)]
pub struct UndoForm {
    #[serde(default)]
    reference: String,
}

pub async fn undo(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    AdminForm { session: s, form }: AdminForm<UndoForm>,
) -> Result<Response, AppError> {
    let mut tx = st.svc.begin_write().await?;
    let outcome = desk::undo(&mut tx, &s.scope(), id, &s.admin.email).await?;
    let from_failure = Some(form.reference.trim()).filter(|r| !r.is_empty());
    match outcome {
        Ok(undone) => {
            tx.commit().await?;
            let on_failure = undone.action.starts_with("failure.");
            Ok(match (from_failure, undone.target) {
                (Some(r), Some(t)) if on_failure && r == t => {
                    see_other(format!("/admin/failures/{t}?done=undone"))
                }
                _ => see_other("/admin/audit?done=undone".into()),
            })
        }
        Err(Refused::NotFound) => Err(AppError::NotFound),
        Err(refused) => {
            tx.rollback().await?;
            let (status, error) = (refusal_status(&refused), refusal_text(&refused, s.t));
            match from_failure {
                Some(r) => {
                    let f = load(&st, &s, r).await?;
                    detail_page(&st, &s, &f, status, &DetailQuery::default(), Some(error)).await
                }
                None => audit_page(&st, &s, &SearchQuery::default(), status, Some(error)).await,
            }
        }
    }
}

/// Re-checks one failure and goes back to its page saying what came of it.
pub async fn recheck_one(
    State(st): State<AppState>,
    Path(reference): Path<String>,
    AdminForm { session: s, .. }: AdminForm<NoFields>,
) -> Result<Response, AppError> {
    let scope = s.scope();
    let mut tx = st.svc.begin_write().await?;
    let Some(t) = desk::recheck_target(&mut tx, &scope, &RECHECKABLE, &reference).await? else {
        tx.rollback().await?;
        // Out of scope is 404 as everywhere; in scope but not re-checkable
        // is said on the page.
        let f = load(&st, &s, &reference).await?;
        let refused = Refused::NotRecheckable;
        let (status, error) = (refusal_status(&refused), refusal_text(&refused, s.t));
        return detail_page(&st, &s, &f, status, &DetailQuery::default(), Some(error)).await;
    };
    let outcome = recheck(&mut tx, &st.svc.verifier, &scope, &t, &s.admin.email).await?;
    tx.commit().await?;
    let done = match outcome {
        Rechecked::Resolved { .. } => "recheck_resolved",
        Rechecked::KindChanged { .. } => "recheck_changed",
        Rechecked::Unchanged => "recheck_unchanged",
    };
    Ok(see_other(format!(
        "/admin/failures/{reference}?done={done}"
    )))
}

/// Re-checks every open re-checkable failure in the admin's scope, then
/// shows the audit log (where each change is) with the counts.
pub async fn recheck_every(
    State(st): State<AppState>,
    AdminForm { session: s, .. }: AdminForm<NoFields>,
) -> Result<Response, AppError> {
    let tally = recheck_all(&st.svc.writer, &st.svc.verifier, &s.scope(), &s.admin.email).await?;
    Ok(see_other(format!(
        "/admin/audit?done=recheck_all&checked={}&resolved={}&changed={}",
        tally.checked, tally.resolved, tally.changed
    )))
}
