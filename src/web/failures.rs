//! The failure page a user lands on, and the failure form ("Identification
//! impossible … renseignez le formulaire puis cliquez sur Envoyer").
//!
//! The page answers with the kind's HTTP status while the failure is open
//! and 200 once it is resolved or dismissed; it names someone to contact
//! (the school's own support, else the service's, else the school's
//! office), with `tel:` and pre-filled `mailto:` links; times are shown in
//! the configured zone, in the page's language.

mod form;
mod support;

pub use form::{ChildView, Field, FormView};
pub use support::{local_time, mailto, tel, ContactView, Link, Step};

use super::{render, tr, AppState};
use crate::i18n::Tr;
use crate::resolve::report::{validate, ChildRow, Problems, Report};
use crate::resolve::FailureStatus;
use crate::store::failures::{self, Failure};
use crate::store::schools::{self, Contact, School};
use crate::web::constant_time_eq;
use crate::web::error::{failure_status, AppError};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use support::{help_steps, Details};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/failures/{reference}", get(show))
        // A GET of the form's address (the language switch of a page
        // answered to the form's POST, a reload after "open in new tab")
        // goes to the page itself.
        .route("/failures/{reference}/report", get(to_page).post(report))
}

#[derive(Template)]
#[template(path = "failure.html")]
struct FailurePage<'a> {
    t: Tr,
    f: &'a Failure,
    title: String,
    kind_title: String,
    kind_text: String,
    /// The banner: resolved, dismissed, or "your request is waiting" once
    /// a report was sent; none otherwise.
    status_text: Option<&'a str>,
    login_again: Option<String>,
    /// "Back to your portal": a new login at the same IdP, on kinds where
    /// trying again may work.
    retry: Option<String>,
    help: Vec<Step>,
    show_form: bool,
    form: FormView,
    asserted_last_name: &'a str,
    asserted_first_name: &'a str,
    asserted_birth_date: &'a str,
    asserted_class_name: &'a str,
    school: Option<String>,
    portal: Option<String>,
    when: String,
    when_iso: &'a str,
    service: &'a str,
    contact: Option<ContactView>,
    office: String,
}

/// Renders the failure page. `form` carries a re-shown form (with errors);
/// otherwise the last report, or what the IdP asserted, fills it.
pub async fn failure_page(
    st: &AppState,
    t: Tr,
    f: &Failure,
    status: StatusCode,
    form: Option<FormView>,
) -> Result<Response, AppError> {
    let (registered, school) = school_of(st, f).await?;
    let (portal, login_url) = portal_of(st, f);
    let login_again = login_url
        .clone()
        .filter(|_| f.status == FailureStatus::Resolved);
    let retry = login_url.filter(|_| f.status.is_open() && f.kind.can_retry());
    let form = form.unwrap_or_else(|| initial_form(st, t, f));
    let kind_title = t.kind(f.kind.as_str(), "title");
    let show_form = f.kind.has_form() && f.status.is_open();
    let title = if show_form && form.has_errors() {
        format!("{}{kind_title}", t.get("form.errors.title"))
    } else {
        kind_title.clone()
    };
    let when = local_time(t, st.svc.config.timezone, &f.last_seen);
    let service = st.svc.config.public_url.as_str();
    let details = Details {
        code: &f.support_code,
        error: &kind_title,
        school: school.as_deref(),
        portal: portal.as_deref(),
        service,
        when: &when,
    };
    let contact = support::contact(t, registered.as_ref(), &st.svc.config.support, &details);
    let not_sent = t.get("form.not_sent");
    let page = FailurePage {
        t,
        f,
        title,
        kind_text: t.kind(f.kind.as_str(), "text"),
        kind_title,
        status_text: status_text(t, f),
        login_again,
        retry,
        help: help_steps(t, f.kind),
        show_form,
        form,
        asserted_last_name: f.asserted_last_name.as_deref().unwrap_or(not_sent),
        asserted_first_name: f.asserted_first_name.as_deref().unwrap_or(not_sent),
        asserted_birth_date: f.asserted_birth_date.as_deref().unwrap_or(not_sent),
        asserted_class_name: f.asserted_class_name.as_deref().unwrap_or(not_sent),
        school,
        portal,
        when,
        when_iso: &f.last_seen,
        service,
        contact,
        office: support::office(t, registered.as_ref()),
    };
    Ok(render(status, &page))
}

/// The failure's school as registered (with its contacts), and as shown:
/// "name (code)", or the bare code when it is not registered.
async fn school_of(
    st: &AppState,
    f: &Failure,
) -> Result<(Option<(School, Contact)>, Option<String>), AppError> {
    let mut conn = st.svc.pool.acquire().await?;
    let registered = match &f.school_code {
        Some(code) => schools::with_contact(&mut conn, code).await?,
        None => None,
    };
    let school = match (&registered, &f.school_code) {
        (Some((s, _)), _) => Some(format!("{} ({})", s.name, s.code)),
        (None, code) => code.clone(),
    };
    Ok((registered, school))
}

/// The portal (IdP) the user came from, by name, and a new login at it
/// when it takes redirects.
fn portal_of(st: &AppState, f: &Failure) -> (Option<String>, Option<String>) {
    let idp = f
        .idp_entity_id
        .as_deref()
        .and_then(|i| st.svc.verifier.idp(i));
    let portal = idp
        .as_ref()
        .map(|i| {
            i.meta
                .display_name
                .clone()
                .unwrap_or_else(|| i.meta.entity_id.clone())
        })
        .or_else(|| f.idp_entity_id.clone());
    let login_url = idp.filter(|i| i.meta.sso_redirect.is_some()).map(|i| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("idp", &i.meta.entity_id)
            .finish();
        format!("/saml/login?{q}")
    });
    (portal, login_url)
}

/// The banner: resolved, dismissed, or "your request is waiting" only once
/// there is a request (a sent form); none otherwise.
fn status_text(t: Tr, f: &Failure) -> Option<&'static str> {
    match f.status {
        FailureStatus::Resolved => Some(t.get("failure.status.resolved")),
        FailureStatus::Dismissed => Some(t.get("failure.status.dismissed")),
        FailureStatus::Open if f.kind.has_form() && f.report_json.is_some() => {
            Some(t.get("failure.status.open"))
        }
        FailureStatus::Open => None,
    }
}

/// The form as first shown: the last report sent, else what the IdP asserted.
fn initial_form(st: &AppState, t: Tr, f: &Failure) -> FormView {
    let report = f
        .report_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<Report>(j).ok())
        .unwrap_or_else(|| Report {
            last_name: f.asserted_last_name.clone().unwrap_or_default(),
            first_name: f.asserted_first_name.clone().unwrap_or_default(),
            birth_date: f.asserted_birth_date.clone().unwrap_or_default(),
            role: f.asserted_role.clone().unwrap_or_default(),
            class_name: f.asserted_class_name.clone().unwrap_or_default(),
            ..Default::default()
        });
    FormView::from_report(
        t,
        &report,
        form_csrf(st, &f.reference),
        &Problems::default(),
    )
}

/// The CSRF token of a failure's form: an HMAC of its reference under the
/// server's secret. The user has no session; the token proves the POST
/// comes from our page.
pub fn form_csrf(st: &AppState, reference: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(st.svc.form_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(b"failure-report:");
    mac.update(reference.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn load(st: &AppState, reference: &str) -> Result<Failure, AppError> {
    // References are 43 URL-safe characters; anything else is not looked up.
    if reference.len() > 64
        || !reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AppError::NotFound);
    }
    let mut conn = st.svc.pool.acquire().await?;
    failures::by_reference(&mut conn, reference)
        .await?
        .ok_or(AppError::NotFound)
}

/// The HTTP status of a failure page (SPEC §2, §3): the kind's while the
/// failure is open, 200 once it is resolved or dismissed.
pub fn page_status(f: &Failure) -> StatusCode {
    if f.status.is_open() {
        failure_status(f.kind)
    } else {
        StatusCode::OK
    }
}

async fn show(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Result<Response, AppError> {
    let f = load(&st, &reference).await?;
    failure_page(&st, tr(&headers), &f, page_status(&f), None).await
}

async fn to_page(
    State(st): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Response, AppError> {
    let f = load(&st, &reference).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/failures/{}", f.reference))],
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "report_sent.html")]
struct SentPage<'a> {
    t: Tr,
    reference: &'a str,
    support_code: &'a str,
    /// The user gave an e-mail address and jointure sends e-mail.
    will_email: bool,
}

/// A message page under "Login failed", its text by catalogue key.
pub fn login_failed(status: StatusCode, t: Tr, key: &str) -> Response {
    super::message_page(status, t, t.get("failure.heading"), t.get(key))
}

/// The failure form's POST: CSRF-checked, rate-limited per address and per
/// failure, validated; errors re-show the form with the input kept.
async fn report(
    State(st): State<AppState>,
    Path(reference): Path<String>,
    req: Request,
) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    let t = tr(&parts.headers);
    let f = load(&st, &reference).await?;
    let body: Bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| AppError::BadRequest("form too large".into()))?;
    let (mut r, other) = form::parse_report(&body);
    let expected = form_csrf(&st, &f.reference);
    if let Some(refused) = refusal(&st, t, &f, &parts.extensions, &other, &expected) {
        return Ok(refused);
    }
    // "Add a child" / "remove this child": re-show, nothing saved.
    if edit_children(&mut r, &other) {
        let view = FormView::from_report(t, &r, expected, &Problems::default());
        return failure_page(&st, t, &f, StatusCode::OK, Some(view)).await;
    }
    let problems = validate(&mut r);
    if !problems.is_empty() {
        let view = FormView::from_report(t, &r, expected, &problems);
        return failure_page(&st, t, &f, StatusCode::UNPROCESSABLE_ENTITY, Some(view)).await;
    }
    let json = serde_json::to_string(&r).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut conn = st.svc.pool.acquire().await?;
    if !failures::save_report(&mut conn, &f.reference, &json, t.lang.code()).await? {
        return Ok(login_failed(StatusCode::CONFLICT, t, "form.closed"));
    }
    Ok(render(
        StatusCode::OK,
        &SentPage {
            t,
            reference: &f.reference,
            support_code: &f.support_code,
            will_email: !r.email.is_empty() && st.svc.config.smtp_url.is_some(),
        },
    ))
}

/// Why a POST of the form is not taken, in this order: a wrong CSRF token,
/// a failure that takes no form (or no longer), too many posts.
fn refusal(
    st: &AppState,
    t: Tr,
    f: &Failure,
    extensions: &Extensions,
    other: &HashMap<String, String>,
    expected: &str,
) -> Option<Response> {
    let given = other.get("csrf_token").map(String::as_str).unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Some(super::message_page(
            StatusCode::FORBIDDEN,
            t,
            t.get("page.error"),
            t.get("admin.csrf"),
        ));
    }
    if !(f.kind.has_form() && f.status.is_open()) {
        return Some(login_failed(StatusCode::CONFLICT, t, "form.closed"));
    }
    let ip = super::client_ip(extensions).unwrap_or_else(|| "unknown".into());
    if !st.limits.report_by_ip.allow(&ip) || !st.limits.report_by_failure.allow(&f.reference) {
        return Some(login_failed(
            StatusCode::TOO_MANY_REQUESTS,
            t,
            "form.too_many",
        ));
    }
    None
}

/// "Add a child" / "remove this child" (at most 20 rows): applies it to
/// `r` and says whether the POST was one.
fn edit_children(r: &mut Report, other: &HashMap<String, String>) -> bool {
    let add = other.contains_key("add_child");
    let remove = other
        .get("remove_child")
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(i) = remove.filter(|i| *i < r.children.len()) {
        r.children.remove(i);
    }
    if add && r.children.len() < 20 {
        r.children.push(ChildRow::default());
    }
    add || remove.is_some()
}
