//! The failures list: filters and the order kept in the URL, keyset pages
//! both ways, the totals, and dismissing several failures at once.

use super::{AdminForm, AdminSession, Chrome};
use crate::resolve::{parse_date, FailureKind, FailureStatus};
use crate::store::desk::{self, Refused};
use crate::store::failures::{self, Cursor, Failure, Filter, PageRequest, Sort};
use crate::store::schools;
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Rows on a page unless `per` asks for fewer.
pub const PAGE_SIZE: i64 = 50;
/// The most failures one bulk dismiss takes (a page holds at most 50).
const BULK_MAX: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub school: Option<String>,
    pub idp: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `1`: only failures whose user sent the form.
    pub sent: Option<String>,
    /// `1`: unverified attempts shown too.
    pub unverified: Option<String>,
    pub sort: Option<String>,
    /// Rows per page, 1 to 50.
    pub per: Option<String>,
    pub cursor: Option<String>,
    /// After a bulk dismiss: how many were dismissed, how many skipped.
    pub dismissed: Option<u32>,
    pub skipped: Option<u32>,
    /// After a refused bulk dismiss: `none` (nothing chosen) or `reason`.
    pub bulk_error: Option<String>,
}

impl ListQuery {
    /// The filters as a query string (the export keeps them).
    pub fn query_string(&self, cursor: Option<&str>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &self.status),
            ("kind", &self.kind),
            ("school", &self.school),
            ("idp", &self.idp),
            ("q", &self.q),
            ("from", &self.from),
            ("to", &self.to),
            ("sent", &self.sent),
            ("unverified", &self.unverified),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            s.append_pair("cursor", c);
        }
        s.finish()
    }

    /// The filters, the order and the page size, for links between pages.
    pub fn link(&self, cursor: Option<&str>) -> String {
        let mut s = self.query_string(cursor);
        let mut more = url::form_urlencoded::Serializer::new(String::new());
        if self.sort() != Sort::default() {
            more.append_pair("sort", self.sort().as_str());
        }
        if self.per() != PAGE_SIZE {
            more.append_pair("per", &self.per().to_string());
        }
        let more = more.finish();
        if !more.is_empty() {
            if !s.is_empty() {
                s.push('&');
            }
            s.push_str(&more);
        }
        s
    }

    pub fn filter(&self) -> Filter {
        let date = |d: &Option<String>| {
            d.clone()
                .filter(|d| parse_date(d).is_some() && d.len() == 10 && d.as_bytes()[4] == b'-')
        };
        Filter {
            status: self.status.as_deref().and_then(FailureStatus::parse),
            kind: self
                .kind
                .clone()
                .filter(|k| k.parse::<FailureKind>().is_ok()),
            school: self.school.clone(),
            idp: self.idp.clone(),
            text: self.q.clone(),
            from: date(&self.from),
            to: date(&self.to),
            form_sent: self.flag(&self.sent),
            verified_only: !self.flag(&self.unverified),
        }
    }

    fn flag(&self, v: &Option<String>) -> bool {
        v.as_deref() == Some("1")
    }

    pub fn sort(&self) -> Sort {
        self.sort
            .as_deref()
            .and_then(Sort::parse)
            .unwrap_or_default()
    }

    pub fn per(&self) -> i64 {
        self.per
            .as_deref()
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(PAGE_SIZE, |p| p.clamp(1, PAGE_SIZE))
    }

    pub fn is(&self, field: &str, value: &str) -> bool {
        let v = match field {
            "status" => &self.status,
            "kind" => &self.kind,
            "school" => &self.school,
            "sort" => return self.sort().as_str() == value,
            "sent" => &self.sent,
            "unverified" => &self.unverified,
            _ => &self.idp,
        };
        v.as_deref() == Some(value)
    }

    pub fn value(&self, field: &str) -> &str {
        match field {
            "q" => self.q.as_deref(),
            "from" => self.from.as_deref(),
            "to" => self.to.as_deref(),
            _ => None,
        }
        .unwrap_or("")
    }

    /// The link that shows the hidden unverified attempts too.
    pub fn with_unverified(&self) -> String {
        let mut s = self.query_string(None);
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str("unverified=1");
        s
    }
}

#[derive(Template)]
#[template(path = "admin/failures.html")]
struct ListPage<'a> {
    chrome: Chrome<'a>,
    q: &'a ListQuery,
    items: Vec<Failure>,
    total: i64,
    /// More failures match than were counted (`total` is a lower bound).
    capped: bool,
    /// Unverified attempts matching the filters that the list hides.
    hidden: i64,
    next: Option<String>,
    prev: Option<String>,
    /// Link to the first page, when this is not it.
    first: Option<String>,
    /// Where the bulk form comes back to: this page.
    back: String,
    notice: Option<String>,
    error: Option<&'static str>,
    sorts: Vec<&'static str>,
    kinds: Vec<&'static str>,
    school_codes: Vec<String>,
    idps: Vec<String>,
}

impl ListPage<'_> {
    /// "Failures found: n", or "more than n" when counting stopped.
    fn total_text(&self) -> String {
        let key = if self.capped {
            "admin.list.total_over"
        } else {
            "admin.list.total"
        };
        self.count_text(key, &self.total)
    }

    /// The text of a key with `{n}` filled in.
    fn count_text(&self, key: &str, n: &i64) -> String {
        self.chrome.t.get(key).replace("{n}", &n.to_string())
    }

    /// A checkbox's label: which failure it picks.
    fn pick_label(&self, f: &Failure) -> String {
        self.chrome
            .t
            .get("admin.bulk.pick")
            .replace("{code}", &f.support_code)
    }
}

pub async fn list(
    State(st): State<AppState>,
    s: AdminSession,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let scope = s.scope();
    let filter = q.filter();
    let mut conn = st.svc.pool.acquire().await?;
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let request = PageRequest {
        sort: q.sort(),
        cursor: cursor.clone(),
        limit: q.per(),
    };
    let page = failures::list(&mut conn, &scope, &filter, &request).await?;
    let totals = failures::totals(&mut conn, &scope, &filter).await?;
    let school_codes = schools::list(&mut conn, &scope, None)
        .await?
        .into_iter()
        .map(|s| s.code)
        .collect();
    let mut idps: Vec<String> = st
        .svc
        .verifier
        .idps()
        .into_iter()
        .map(|i| i.meta.entity_id.clone())
        .collect();
    idps.sort();
    let link = |c: Option<Cursor>| c.map(|c| q.link(Some(&c.encode())));
    let notice = q.dismissed.map(|n| {
        let done = s.t.get("admin.bulk.done").replace("{n}", &n.to_string());
        match q.skipped.filter(|k| *k > 0) {
            Some(k) => format!(
                "{done} {}",
                s.t.get("admin.bulk.skipped").replace("{n}", &k.to_string())
            ),
            None => done,
        }
    });
    let error = match q.bulk_error.as_deref() {
        Some("none") => Some(s.t.get("admin.bulk.none")),
        Some("reason") => Some(s.t.get("admin.bulk.reason_required")),
        _ => None,
    };
    Ok(render(
        StatusCode::OK,
        &ListPage {
            chrome: Chrome::of(&s, "failures"),
            q: &q,
            items: page.items,
            total: totals.shown,
            capped: totals.capped,
            hidden: if filter.verified_only {
                totals.unverified
            } else {
                0
            },
            next: link(page.next),
            prev: link(page.prev),
            first: cursor.is_some().then(|| q.link(None)),
            back: q.link(q.cursor.as_deref()),
            notice,
            error,
            sorts: Sort::ALL.iter().map(|o| o.as_str()).collect(),
            kinds: FailureKind::ALL.iter().map(|k| k.as_str()).collect(),
            school_codes,
            idps,
        },
    ))
}

/// The bulk form, read from its pairs: `ref` is the one field that may come
/// many times (one per ticked failure); `reason` and `back` at most once.
struct BulkDismiss {
    references: Vec<String>,
    reason: String,
    back: ListQuery,
}

impl BulkDismiss {
    fn read(pairs: Vec<(String, String)>) -> Result<BulkDismiss, AppError> {
        let mut references: Vec<String> = Vec::new();
        let (mut reason, mut back) = (None, None);
        let twice = |f: &str| AppError::BadRequest(format!("{f}: given twice"));
        for (k, v) in pairs {
            match k.as_str() {
                "csrf_token" => {}
                "ref" => {
                    let v = v.trim().to_string();
                    if !v.is_empty() && !references.contains(&v) {
                        references.push(v);
                    }
                }
                "reason" if reason.is_none() => reason = Some(v),
                "back" if back.is_none() => back = Some(v),
                "reason" | "back" => return Err(twice(&k)),
                _ => {
                    return Err(AppError::BadRequest(format!(
                        "{k}: not a field of this form"
                    )))
                }
            }
        }
        if references.len() > BULK_MAX {
            return Err(AppError::BadRequest(format!(
                "at most {BULK_MAX} failures at once"
            )));
        }
        // An unreadable `back` only loses the filters, never the action.
        let back = back
            .and_then(|b| serde_urlencoded::from_str::<ListQuery>(&b).ok())
            .unwrap_or_default();
        Ok(BulkDismiss {
            references,
            reason: reason.unwrap_or_default(),
            back,
        })
    }
}

/// Back to the list the form came from, with what happened.
fn back_to(list: &ListQuery, outcome: &str) -> Response {
    let mut to = format!("/admin/failures?{}", list.link(list.cursor.as_deref()));
    if !to.ends_with('?') {
        to.push('&');
    }
    to.push_str(outcome);
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// Dismisses every chosen failure with one reason, in one write transaction,
/// each audited as a single dismiss is. A reference that is not there or
/// outside the admin's scope refuses the whole request (404, nothing
/// changed): it can only come from a forged or stale form, and dismissing
/// "the others" would act on a selection the admin did not make. One that
/// somebody else handled meanwhile is skipped and counted.
pub async fn dismiss_many(
    State(st): State<AppState>,
    AdminForm { session: s, form }: AdminForm<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let bulk = BulkDismiss::read(form)?;
    if bulk.references.is_empty() {
        return Ok(back_to(&bulk.back, "bulk_error=none"));
    }
    let (scope, actor) = (s.scope(), s.admin.email.as_str());
    let mut tx = st.svc.begin_write().await?;
    let (mut dismissed, mut skipped) = (0u32, 0u32);
    for reference in &bulk.references {
        match desk::dismiss(&mut tx, &scope, reference, &bulk.reason, actor).await? {
            Ok(()) => dismissed += 1,
            Err(Refused::AlreadyHandled { .. }) => skipped += 1,
            Err(Refused::Invalid(_)) => {
                tx.rollback().await?;
                return Ok(back_to(&bulk.back, "bulk_error=reason"));
            }
            Err(refused) => {
                tx.rollback().await?;
                return Err(match refused {
                    Refused::NotFound => AppError::NotFound,
                    other => AppError::BadRequest(crate::web::error::refusal_text(&other, s.t)),
                });
            }
        }
    }
    tx.commit().await?;
    Ok(back_to(
        &bulk.back,
        &format!("dismissed={dismissed}&skipped={skipped}"),
    ))
}
