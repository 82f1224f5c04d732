//! The dashboard: open failures by kind and by school, how many carry a
//! sent form, the oldest open one, and per kind a chart of the failures
//! first seen each day over 30 days. Every figure links to the list
//! filtered to what it counts.

use super::{AdminSession, Chrome};
use crate::store::failures::{self, Oldest};
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;

/// Days in a chart, today included.
const DAYS: i64 = 30;
/// The chart's geometry, in SVG user units: one bar per day.
const BAR_STEP: i64 = 10;
const BAR_HEIGHT: i64 = 60;

/// One day's bar of a chart.
pub struct Bar {
    pub day: String,
    pub n: i64,
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub href: String,
}

/// One kind's chart over the last [`DAYS`] days.
pub struct KindChart {
    /// Used in element IDs (a kind code is `[a-z_]+`).
    pub kind: String,
    pub title: String,
    pub total: i64,
    pub max: i64,
    pub href: String,
    /// The numbers said in words, for whoever does not see the chart.
    pub desc: String,
    pub bars: Vec<Bar>,
}

/// A figure with the list link that shows what it counts.
pub struct Figure {
    pub code: String,
    pub label: String,
    pub n: i64,
    pub href: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Dashboard<'a> {
    chrome: Chrome<'a>,
    by_kind: Vec<Figure>,
    by_school: Vec<Figure>,
    reported: Figure,
    /// The oldest open failure, its kind's title and its day.
    oldest: Option<(Oldest, String, String)>,
    charts: Vec<KindChart>,
    first_day: String,
    last_day: String,
    width: i64,
    baseline: i64,
}

/// `/admin/failures?…` with these filters (the list's query names).
fn list_href(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    format!("/admin/failures?{}", s.finish())
}

pub async fn dashboard(State(st): State<AppState>, s: AdminSession) -> Result<Response, AppError> {
    let today = chrono::Utc::now().date_naive();
    let days: Vec<NaiveDate> = (0..DAYS)
        .rev()
        .map(|back| today - chrono::Duration::days(back))
        .collect();
    let first_day = days[0].format("%Y-%m-%d").to_string();
    let last_day = today.format("%Y-%m-%d").to_string();
    let mut conn = st.svc.pool.acquire().await?;
    let stats = failures::stats(&mut conn, &s.scope(), &first_day).await?;
    drop(conn);
    let by_kind = stats
        .by_kind
        .into_iter()
        .map(|(kind, n)| Figure {
            label: s.t.kind(&kind, "title"),
            href: Some(list_href(&[("status", "open"), ("kind", &kind)])),
            code: kind,
            n,
        })
        .collect();
    let by_school = stats
        .by_school
        .into_iter()
        .map(|(school, n)| match school {
            Some(code) => Figure {
                label: code.clone(),
                href: Some(list_href(&[("status", "open"), ("school", &code)])),
                code,
                n,
            },
            // The list has no filter for "no school": a plain number.
            None => Figure {
                code: String::new(),
                label: s.t.get("admin.no_school").to_string(),
                n,
                href: None,
            },
        })
        .collect();
    let reported = Figure {
        code: "form_sent".into(),
        label: s.t.get("admin.dash.reported").to_string(),
        n: stats.reported,
        href: Some(list_href(&[("status", "open"), ("form", "sent")])),
    };
    let oldest = stats.oldest.map(|o| {
        let title = s.t.kind(&o.kind, "title");
        let day = crate::resolve::prefix_within(&o.first_seen, 10).to_string();
        (o, title, day)
    });
    let charts = charts(&s, &days, stats.per_day);
    Ok(render(
        StatusCode::OK,
        &Dashboard {
            chrome: Chrome::of(&s, "dashboard"),
            by_kind,
            by_school,
            reported,
            oldest,
            charts,
            first_day,
            last_day,
            width: DAYS * BAR_STEP,
            baseline: BAR_HEIGHT + 2,
        },
    ))
}

/// One chart per kind seen in the period, the busiest first; each kind's
/// bars scaled to its own busiest day (said in the chart), so a rare kind
/// stays readable next to a frequent one.
fn charts(
    s: &AdminSession,
    days: &[NaiveDate],
    per_day: Vec<(String, String, i64)>,
) -> Vec<KindChart> {
    let mut by_kind = std::collections::BTreeMap::<String, Vec<(String, i64)>>::new();
    for (day, kind, n) in per_day {
        by_kind.entry(kind).or_default().push((day, n));
    }
    let first = days
        .first()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let last = days
        .last()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let mut charts: Vec<KindChart> = by_kind
        .into_iter()
        .map(|(kind, counts)| {
            let count_of = |day: &str| counts.iter().find(|(d, _)| d == day).map_or(0, |(_, n)| *n);
            let total = counts.iter().map(|(_, n)| n).sum();
            let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
            let bars: Vec<Bar> = days
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let day = d.format("%Y-%m-%d").to_string();
                    let n = count_of(&day);
                    // At least one unit high when there is anything, so a
                    // small day never looks like an empty one.
                    let height = if n == 0 {
                        0
                    } else {
                        (n * BAR_HEIGHT / max).max(1)
                    };
                    Bar {
                        href: list_href(&[("kind", &kind), ("from", &day), ("to", &day)]),
                        x: i as i64 * BAR_STEP + 1,
                        y: BAR_HEIGHT + 2 - height,
                        height,
                        day,
                        n,
                    }
                })
                .collect();
            let desc = bars
                .iter()
                .filter(|b| b.n > 0)
                .map(|b| format!("{}: {}", b.day, b.n))
                .collect::<Vec<_>>()
                .join(", ");
            KindChart {
                title: s.t.kind(&kind, "title"),
                href: list_href(&[("kind", &kind), ("from", &first), ("to", &last)]),
                desc: format!("{} {desc}.", s.t.get("admin.dash.per_day_desc")),
                kind,
                total,
                max,
                bars,
            }
        })
        .collect();
    charts.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.kind.cmp(&b.kind)));
    charts
}
