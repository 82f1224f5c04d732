//! The failure detail page with ranked candidates (and a one-click link
//! when one is clearly ahead), the account search, and the resolve /
//! dismiss / reopen actions.

use super::failure_search::{self, CandidateView, LeadView, SearchFields, SearchView};
use super::{AdminForm, AdminSession, Chrome, NoFields};
use crate::resolve::ranking::{rank, CandidateAccount, Claimed, Probe, Ranked};
use crate::resolve::report::Report;
use crate::resolve::{fold_name, parse_date};
use crate::saml::Claims;
use crate::store::desk::{self, Refused};
use crate::store::failures::{self, Failure};
use crate::store::{accounts, audit};
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/failure.html")]
struct DetailPage<'a> {
    chrome: Chrome<'a>,
    f: &'a Failure,
    kind_title: String,
    claims: Claims,
    report: Option<Report>,
    /// Which fields the IdP and the user disagree on.
    diff: Differences,
    candidates: Vec<CandidateView>,
    /// The first candidate, when clearly ahead: offered in one click.
    lead: Option<LeadView>,
    search: SearchView,
    /// Whether "re-check now" is offered.
    recheckable: bool,
    history: Vec<Failure>,
    audit: Vec<audit::Entry>,
    raw: Option<String>,
    notice: Option<&'a str>,
    error: Option<String>,
    /// Whether linking to an account is offered: a verified assertion of a
    /// kind about school or identity.
    resolvable: bool,
    /// What the user is told by e-mail, as a catalogue key, when the form
    /// carries an address.
    mail_note: Option<String>,
}

/// The fields where what the IdP asserted and what the user declared
/// differ, both being given: names and classes compared folded (case,
/// accents, spaces and hyphens alone are no difference), birth dates as
/// dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Differences {
    pub last_name: bool,
    pub first_name: bool,
    pub birth_date: bool,
    pub class_name: bool,
}

impl Differences {
    pub fn of(f: &Failure, report: Option<&Report>) -> Differences {
        let Some(r) = report else {
            return Differences::default();
        };
        let given = |s: &str| !s.trim().is_empty();
        let names = |a: Option<&str>, d: &str| {
            a.is_some_and(|a| given(a) && given(d) && fold_name(a) != fold_name(d))
        };
        let dates = |a: Option<&str>, d: &str| match (a.and_then(parse_date), parse_date(d)) {
            (Some(a), Some(d)) => a != d,
            _ => false,
        };
        Differences {
            last_name: names(f.asserted_last_name.as_deref(), &r.last_name),
            first_name: names(f.asserted_first_name.as_deref(), &r.first_name),
            birth_date: dates(f.asserted_birth_date.as_deref(), &r.birth_date),
            class_name: names(f.asserted_class_name.as_deref(), &r.class_name),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    pub done: Option<String>,
    #[serde(flatten)]
    pub search: SearchFields,
}

pub(super) async fn load(
    st: &AppState,
    s: &AdminSession,
    reference: &str,
) -> Result<Failure, AppError> {
    let mut conn = st.svc.pool.acquire().await?;
    failures::by_reference_in(&mut conn, &s.scope(), reference)
        .await?
        .ok_or(AppError::NotFound)
}

async fn candidates(
    st: &AppState,
    t: crate::i18n::Tr,
    f: &Failure,
    report: Option<&Report>,
) -> Result<Vec<CandidateView>, AppError> {
    let Some(school) = &f.school_code else {
        return Ok(Vec::new());
    };
    let mut claims = vec![Claimed {
        last_name: f.asserted_last_name.clone(),
        first_name: f.asserted_first_name.clone(),
        birth_date: f.asserted_birth_date.as_deref().and_then(parse_date),
        class_name: f.asserted_class_name.clone(),
        child: false,
    }];
    if let Some(r) = report {
        let class = |c: &str| Some(c.to_string()).filter(|c| !c.trim().is_empty());
        claims.push(Claimed {
            last_name: Some(r.last_name.clone()),
            first_name: Some(r.first_name.clone()),
            birth_date: parse_date(&r.birth_date),
            class_name: class(&r.class_name),
            child: false,
        });
        // A parent's report: the children it names are whom the parent
        // came for (their accounts are what the parent's login reaches).
        if r.role == "parent" {
            claims.extend(r.children.iter().map(|c| Claimed {
                last_name: Some(c.last_name.clone()),
                first_name: Some(c.first_name.clone()),
                birth_date: parse_date(&c.birth_date),
                class_name: class(&c.class_name),
                child: true,
            }));
        }
    }
    // Only the plausible accounts of the school are read and scored (a
    // prefilter in SQL on the stored folded names and the birth date), not
    // all of them.
    let mut conn = st.svc.pool.acquire().await?;
    let pool = accounts::plausible_pool(
        &mut conn,
        school,
        f.idp_entity_id.as_deref(),
        f.subject.as_deref(),
        &Probe::of(&claims),
    )
    .await?;
    drop(conn);
    let accounts = pool
        .into_iter()
        .map(|(a, reached)| CandidateAccount {
            account_id: a.account_id,
            last_name: a.last_name,
            first_name: a.first_name,
            birth_date: a.birth_date,
            class_name: a.class_name,
            active: a.active,
            mapped_elsewhere: reached.elsewhere,
            mapped_here: reached.here,
        })
        .collect();
    Ok(rank(&claims, accounts, 10)
        .into_iter()
        .map(
            |Ranked {
                 account,
                 score,
                 reasons,
             }| CandidateView {
                name: format!("{} {}", account.first_name, account.last_name),
                birth_date: account
                    .birth_date
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                class_name: account.class_name.unwrap_or_default(),
                active: account.active,
                account_id: account.account_id,
                score,
                reasons: reasons
                    .iter()
                    .map(|r| match r.key() {
                        (key, Some(pct)) => format!("{} {pct} %", t.get(key)),
                        (key, None) => t.get(key).to_string(),
                    })
                    .collect(),
            },
        )
        .collect())
}

/// The notice of a finished action, by its `done` code.
fn notice_of(t: crate::i18n::Tr, done: &str) -> Option<&'static str> {
    let key = match done {
        "resolved" => "admin.done.resolved",
        "dismissed" => "admin.done.dismissed",
        "reopened" => "admin.done.reopened",
        "undone" => "admin.done.undone",
        "recheck_resolved" => "admin.done.recheck_resolved",
        "recheck_changed" => "admin.done.recheck_changed",
        "recheck_unchanged" => "admin.done.recheck_unchanged",
        _ => return None,
    };
    Some(t.get(key))
}

pub(super) async fn detail_page(
    st: &AppState,
    s: &AdminSession,
    f: &Failure,
    status: StatusCode,
    q: &DetailQuery,
    error: Option<String>,
) -> Result<Response, AppError> {
    let report = f
        .report_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<Report>(j).ok());
    let resolvable = f.asserted_verified && f.kind.is_resolvable();
    let candidates = if f.status.is_open() && resolvable {
        candidates(st, s.t, f, report.as_ref()).await?
    } else {
        Vec::new()
    };
    let lead = LeadView::of(s.t, &candidates);
    let scope = s.scope();
    let mut conn = st.svc.pool.acquire().await?;
    let search = if f.status.is_open() && resolvable {
        failure_search::run(&mut conn, &scope, f.school_code.as_deref(), &q.search).await?
    } else {
        SearchView::default()
    };
    let recheckable = f.status.is_open()
        && f.asserted_verified
        && crate::flow::recheck::RECHECKABLE.contains(&f.kind);
    let history = match (&f.idp_entity_id, &f.subject) {
        (Some(i), Some(sub)) => failures::of_identity(&mut conn, &scope, i, sub)
            .await?
            .into_iter()
            .filter(|h| h.id != f.id)
            .collect(),
        _ => Vec::new(),
    };
    let audit = audit::list(&mut conn, &scope, Some(&f.reference), None, 50).await?;
    let has_address = report.as_ref().is_some_and(|r| !r.email.trim().is_empty());
    let mail_note = if has_address {
        let (sent, waiting, error) = crate::store::mail::status_of(&mut conn, f.id).await?;
        Some(match (st.svc.config.smtp_url.is_some(), sent, waiting) {
            (false, _, _) => s.t.get("admin.mail.off").to_string(),
            (true, 0, 0) => s.t.get("admin.mail.on_resolve").to_string(),
            (true, 0, _) => match error {
                Some(e) => format!("{} {e}", s.t.get("admin.mail.retrying")),
                None => s.t.get("admin.mail.waiting").to_string(),
            },
            (true, _, _) => s.t.get("admin.mail.sent").to_string(),
        })
    } else {
        None
    };
    let notice = q.done.as_deref().and_then(|d| notice_of(s.t, d));
    Ok(render(
        status,
        &DetailPage {
            chrome: Chrome::of(s, "failures"),
            kind_title: s.t.kind(f.kind.as_str(), "title"),
            claims: serde_json::from_str(&f.asserted_json).unwrap_or_default(),
            diff: Differences::of(f, report.as_ref()),
            report,
            candidates,
            lead,
            search,
            recheckable,
            mail_note,
            history,
            audit,
            raw: f.raw_response.as_deref().map(super::pretty_xml),
            notice,
            error,
            resolvable,
            f,
        },
    ))
}

pub async fn detail(
    State(st): State<AppState>,
    s: AdminSession,
    Path(reference): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, AppError> {
    let f = load(&st, &s, &reference).await?;
    detail_page(&st, &s, &f, StatusCode::OK, &q, None).await
}

/// A desk action on one failure, as posted.
enum Action {
    Resolve { account_id: String },
    Dismiss { reason: String },
    Reopen,
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    account_id: String,
}

#[derive(Debug, Deserialize)]
pub struct DismissForm {
    #[serde(default)]
    reason: String,
}

/// Runs one desk action in a write transaction; success goes back to the
/// failure page, a refusal re-shows it saying why (who acted first, which
/// account is out of reach…).
async fn act(
    st: AppState,
    s: AdminSession,
    reference: String,
    action: Action,
) -> Result<Response, AppError> {
    let mut tx = st.svc.begin_write().await?;
    let (scope, actor) = (s.scope(), s.admin.email.as_str());
    let (outcome, done) = match &action {
        Action::Resolve { account_id } => (
            desk::resolve(&mut tx, &scope, &reference, account_id.trim(), actor)
                .await?
                .map(|_| ()),
            "resolved",
        ),
        Action::Dismiss { reason } => (
            desk::dismiss(&mut tx, &scope, &reference, reason, actor).await?,
            "dismissed",
        ),
        Action::Reopen => (
            desk::reopen(&mut tx, &scope, &reference, actor).await?,
            "reopened",
        ),
    };
    match outcome {
        Ok(()) => {
            tx.commit().await?;
            let to = format!("/admin/failures/{reference}?done={done}");
            Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response())
        }
        Err(Refused::NotFound) => Err(AppError::NotFound),
        Err(refused) => {
            tx.rollback().await?;
            let status = crate::web::error::refusal_status(&refused);
            let f = load(&st, &s, &reference).await?;
            let error = crate::web::error::refusal_text(&refused, s.t);
            detail_page(&st, &s, &f, status, &DetailQuery::default(), Some(error)).await
        }
    }
}

pub async fn resolve(
    State(st): State<AppState>,
    Path(reference): Path<String>,
    AdminForm { session, form }: AdminForm<ResolveForm>,
) -> Result<Response, AppError> {
    let action = Action::Resolve {
        account_id: form.account_id,
    };
    act(st, session, reference, action).await
}

pub async fn dismiss(
    State(st): State<AppState>,
    Path(reference): Path<String>,
    AdminForm { session, form }: AdminForm<DismissForm>,
) -> Result<Response, AppError> {
    let action = Action::Dismiss {
        reason: form.reason,
    };
    act(st, session, reference, action).await
}

pub async fn reopen(
    State(st): State<AppState>,
    Path(reference): Path<String>,
    AdminForm { session, .. }: AdminForm<NoFields>,
) -> Result<Response, AppError> {
    act(st, session, reference, Action::Reopen).await
}
