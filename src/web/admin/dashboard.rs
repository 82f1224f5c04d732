//! The dashboard: open failures by kind, by school, per day.

use super::{AdminSession, Chrome};
use crate::store::failures;
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Dashboard<'a> {
    chrome: Chrome<'a>,
    by_kind: Vec<(String, i64)>,
    by_school: Vec<(Option<String>, i64)>,
    per_day: Vec<(String, i64, i64)>,
}

pub async fn dashboard(State(st): State<AppState>, s: AdminSession) -> Result<Response, AppError> {
    let since = (chrono::Utc::now() - chrono::Duration::days(29))
        .format("%Y-%m-%d")
        .to_string();
    let mut conn = st.svc.pool.acquire().await?;
    let stats = failures::stats(&mut conn, &s.scope(), &since).await?;
    let max = stats
        .per_day
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(1)
        .max(1);
    // Each day with the largest count, drawn as a <meter> (no inline style:
    // the CSP forbids it).
    let per_day = stats
        .per_day
        .into_iter()
        .map(|(d, n)| (d, n, max))
        .collect();
    Ok(render(
        StatusCode::OK,
        &Dashboard {
            chrome: Chrome::of(&s, "dashboard"),
            by_kind: stats.by_kind,
            by_school: stats.by_school,
            per_day,
        },
    ))
}
