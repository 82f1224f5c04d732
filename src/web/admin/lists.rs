//! The searchable lists: mappings (with create and
//! unlink), accounts, schools, audit log.

use super::{AdminForm, AdminSession, Chrome, NoFields};
use crate::store::accounts::Account;
use crate::store::audit::Entry;
use crate::store::desk::{self, Refused};
use crate::store::mappings::MappingRow;
use crate::store::schools::School;
use crate::store::{accounts, audit, mappings, schools};
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub school: Option<String>,
    pub cursor: Option<String>,
    pub done: Option<String>,
    /// A bulk re-check's counts, shown in its notice.
    pub checked: Option<u64>,
    pub resolved: Option<u64>,
    pub changed: Option<u64>,
}

impl SearchQuery {
    fn text(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }
    fn next_link(&self, cursor: String) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = self.text() {
            s.append_pair("q", q);
        }
        if let Some(sc) = self.school.as_deref().filter(|s| !s.is_empty()) {
            s.append_pair("school", sc);
        }
        s.append_pair("cursor", &cursor);
        s.finish()
    }
}

#[derive(Template)]
#[template(path = "admin/mappings.html")]
struct MappingsPage<'a> {
    chrome: Chrome<'a>,
    q: &'a str,
    items: Vec<MappingRow>,
    next: Option<String>,
    notice: Option<&'a str>,
    error: Option<String>,
    idps: Vec<String>,
}

const PAGE: i64 = 50;

async fn mappings_page(
    st: &AppState,
    s: &AdminSession,
    q: &SearchQuery,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, AppError> {
    let before = q.cursor.as_deref().and_then(|c| c.parse::<i64>().ok());
    let mut conn = st.svc.pool.acquire().await?;
    let mut items = mappings::list(&mut conn, &s.scope(), q.text(), before, PAGE + 1).await?;
    let next = (items.len() as i64 > PAGE).then(|| {
        items.truncate(PAGE as usize);
        q.next_link(items.last().map(|m| m.id).unwrap_or_default().to_string())
    });
    let notice = match q.done.as_deref() {
        Some("created") => Some(s.t.get("admin.done.created")),
        Some("deleted") => Some(s.t.get("admin.done.deleted")),
        _ => None,
    };
    let mut idps: Vec<String> = st
        .svc
        .verifier
        .idps()
        .into_iter()
        .map(|i| i.meta.entity_id.clone())
        .collect();
    idps.sort();
    Ok(render(
        status,
        &MappingsPage {
            chrome: Chrome::of(s, "mappings"),
            q: q.text().unwrap_or(""),
            items,
            next,
            notice,
            error,
            idps,
        },
    ))
}

pub async fn mappings(
    State(st): State<AppState>,
    s: AdminSession,
    Query(q): Query<SearchQuery>,
) -> Result<Response, AppError> {
    mappings_page(&st, &s, &q, StatusCode::OK, None).await
}

/// Commits a mapping action and goes back to the list, or rolls it back and
/// shows the list with the refusal.
async fn finish_mapping_action(
    st: &AppState,
    s: &AdminSession,
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    outcome: Result<(), Refused>,
    done: &str,
) -> Result<Response, AppError> {
    match outcome {
        Ok(()) => {
            tx.commit().await?;
            let to = format!("/admin/mappings?done={done}");
            Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response())
        }
        Err(Refused::NotFound) => Err(AppError::NotFound),
        Err(r) => {
            tx.rollback().await?;
            let status = crate::web::error::refusal_status(&r);
            let error = crate::web::error::refusal_text(&r, s.t);
            mappings_page(st, s, &SearchQuery::default(), status, Some(error)).await
        }
    }
}

/// The form that links an identity to an account by hand.
#[derive(Debug, Deserialize)]
pub struct MappingForm {
    #[serde(default)]
    idp_entity_id: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    account_id: String,
}

pub async fn create_mapping(
    State(st): State<AppState>,
    AdminForm { session: s, form }: AdminForm<MappingForm>,
) -> Result<Response, AppError> {
    let mut tx = st.svc.begin_write().await?;
    let outcome = desk::create_mapping(
        &mut tx,
        &s.scope(),
        &form.idp_entity_id,
        &form.subject,
        &form.account_id,
        &s.admin.email,
    )
    .await?;
    finish_mapping_action(&st, &s, tx, outcome, "created").await
}

pub async fn delete_mapping(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    AdminForm { session: s, .. }: AdminForm<NoFields>,
) -> Result<Response, AppError> {
    let mut tx = st.svc.begin_write().await?;
    let outcome = desk::delete_mapping(&mut tx, &s.scope(), id, &s.admin.email).await?;
    finish_mapping_action(&st, &s, tx, outcome, "deleted").await
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage<'a> {
    chrome: Chrome<'a>,
    q: &'a str,
    school: &'a str,
    school_codes: Vec<String>,
    items: Vec<Account>,
    next: Option<String>,
}

pub async fn accounts(
    State(st): State<AppState>,
    s: AdminSession,
    Query(q): Query<SearchQuery>,
) -> Result<Response, AppError> {
    let scope = s.scope();
    let school = q.school.as_deref().filter(|s| !s.is_empty());
    let mut conn = st.svc.pool.acquire().await?;
    let mut items = accounts::list(
        &mut conn,
        &scope,
        school,
        q.text(),
        q.cursor.as_deref(),
        PAGE + 1,
    )
    .await?;
    let next = (items.len() as i64 > PAGE).then(|| {
        items.truncate(PAGE as usize);
        q.next_link(
            items
                .last()
                .map(|a| a.account_id.clone())
                .unwrap_or_default(),
        )
    });
    let school_codes = schools::list(&mut conn, &scope, None)
        .await?
        .into_iter()
        .map(|s| s.code)
        .collect();
    Ok(render(
        StatusCode::OK,
        &AccountsPage {
            chrome: Chrome::of(&s, "accounts"),
            q: q.text().unwrap_or(""),
            school: school.unwrap_or(""),
            school_codes,
            items,
            next,
        },
    ))
}

#[derive(Template)]
#[template(path = "admin/schools.html")]
struct SchoolsPage<'a> {
    chrome: Chrome<'a>,
    q: &'a str,
    items: Vec<School>,
}

pub async fn schools(
    State(st): State<AppState>,
    s: AdminSession,
    Query(q): Query<SearchQuery>,
) -> Result<Response, AppError> {
    let mut conn = st.svc.pool.acquire().await?;
    let items = schools::list(&mut conn, &s.scope(), q.text()).await?;
    Ok(render(
        StatusCode::OK,
        &SchoolsPage {
            chrome: Chrome::of(&s, "schools"),
            q: q.text().unwrap_or(""),
            items,
        },
    ))
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    chrome: Chrome<'a>,
    items: Vec<Entry>,
    next: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// The audit log page, with the notice of an undo or a bulk re-check, or
/// the refusal of an undo.
pub(super) async fn audit_page(
    st: &AppState,
    s: &AdminSession,
    q: &SearchQuery,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, AppError> {
    let before = q.cursor.as_deref().and_then(|c| c.parse::<i64>().ok());
    let mut conn = st.svc.pool.acquire().await?;
    let mut items = audit::list(&mut conn, &s.scope(), None, before, PAGE + 1).await?;
    let next = (items.len() as i64 > PAGE).then(|| {
        items.truncate(PAGE as usize);
        format!("cursor={}", items.last().map(|e| e.id).unwrap_or_default())
    });
    let notice = match q.done.as_deref() {
        Some("undone") => Some(s.t.get("admin.done.undone").to_string()),
        Some("recheck_all") => Some(
            s.t.get("admin.done.recheck_all")
                .replace("{checked}", &q.checked.unwrap_or(0).to_string())
                .replace("{resolved}", &q.resolved.unwrap_or(0).to_string())
                .replace("{changed}", &q.changed.unwrap_or(0).to_string()),
        ),
        _ => None,
    };
    Ok(render(
        status,
        &AuditPage {
            chrome: Chrome::of(s, "audit"),
            items,
            next,
            notice,
            error,
        },
    ))
}

pub async fn audit(
    State(st): State<AppState>,
    s: AdminSession,
    Query(q): Query<SearchQuery>,
) -> Result<Response, AppError> {
    audit_page(&st, &s, &q, StatusCode::OK, None).await
}
