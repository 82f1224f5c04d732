//! The failure page a user lands on, and the failure form ("Identification
//! impossible … renseignez le formulaire puis cliquez sur Envoyer").

use super::{render, tr, AppState};
use crate::i18n::Tr;
use crate::resolve::report::{validate, ChildRow, Report};
use crate::resolve::{FailureKind, FailureStatus};
use crate::store::failures::{self, Failure};
use crate::store::schools;
use crate::web::constant_time_eq;
use crate::web::error::AppError;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/failures/{reference}", get(show))
        .route("/failures/{reference}/report", post(report))
}

/// The form as shown: values, errors by field (translation keys) and CSRF.
pub struct FormView {
    pub values: HashMap<&'static str, String>,
    pub errors: HashMap<&'static str, &'static str>,
    pub child_errors: HashMap<usize, &'static str>,
    pub children: Vec<ChildRow>,
    pub csrf: String,
}

impl FormView {
    pub fn value(&self, field: &str) -> &str {
        self.values.get(field).map(String::as_str).unwrap_or("")
    }
    pub fn error(&self, field: &str) -> Option<&'static str> {
        self.errors.get(field).copied()
    }
    pub fn child_error(&self, i: &usize) -> Option<&'static str> {
        self.child_errors.get(i).copied()
    }
    pub fn label(&self, field: &str) -> &'static str {
        match field {
            "last_name" => "form.last_name",
            "first_name" => "form.first_name",
            "class_name" => "form.class_name",
            "email" => "form.email",
            "phone" => "form.phone",
            _ => "form.message",
        }
    }
    pub fn role_is(&self, role: &str) -> bool {
        self.value("role") == role
    }
    pub fn role_label(&self, role: &str) -> &'static str {
        match role {
            "student" => "form.role.student",
            "parent" => "form.role.parent",
            "teacher" => "form.role.teacher",
            _ => "form.role.staff",
        }
    }

    fn from_report(r: &Report, csrf: String) -> FormView {
        let values = [
            ("last_name", &r.last_name),
            ("first_name", &r.first_name),
            ("birth_date", &r.birth_date),
            ("role", &r.role),
            ("class_name", &r.class_name),
            ("email", &r.email),
            ("phone", &r.phone),
            ("message", &r.message),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.clone()))
        .collect();
        let mut children = r.children.clone();
        if children.is_empty() {
            children.push(ChildRow::default());
        }
        FormView {
            values,
            errors: HashMap::new(),
            child_errors: HashMap::new(),
            children,
            csrf,
        }
    }
}

#[derive(Template)]
#[template(path = "failure.html")]
struct FailurePage<'a> {
    t: Tr,
    f: &'a Failure,
    kind_title: String,
    kind_text: String,
    status_text: &'a str,
    login_again: Option<String>,
    help: Vec<&'a str>,
    show_form: bool,
    form: FormView,
    asserted_last_name: &'a str,
    asserted_first_name: &'a str,
    asserted_birth_date: &'a str,
    asserted_class_name: &'a str,
    school: Option<String>,
    portal: Option<String>,
    support: &'a crate::config::Support,
}

/// The help steps for a kind, as translation keys, most useful first.
fn help_keys(kind: FailureKind) -> &'static [&'static str] {
    use FailureKind::*;
    match kind {
        MalformedRequest | InvalidSignature | Replayed => &[
            "help.close_browser",
            "help.private_window",
            "help.contact_support",
        ],
        Expired => &[
            "help.clock",
            "help.close_browser",
            "help.private_window",
            "help.contact_support",
        ],
        WrongAudience | IdpError => &[
            "help.close_browser",
            "help.private_window",
            "help.contact_support",
        ],
        UnknownIssuer | UnknownSchool => &["help.school_connected", "help.contact_support"],
        UntrustedSchool => &["help.right_portal", "help.contact_support"],
        MissingSchoolCode | InvalidSchoolCode | MissingSubject | AccountDisabled => {
            &["help.contact_support"]
        }
        IdentityMismatch | AmbiguousIdentity => &["form.intro", "help.contact_support"],
    }
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

/// Renders the failure page. `form` carries a re-shown form (with errors);
/// otherwise the last report, or what the IdP asserted, fills it.
pub async fn failure_page(
    st: &AppState,
    t: Tr,
    f: &Failure,
    status: StatusCode,
    form: Option<FormView>,
) -> Result<Response, AppError> {
    let mut conn = st.svc.pool.acquire().await?;
    let school = match &f.school_code {
        Some(code) => Some(match schools::get(&mut conn, code).await? {
            Some(s) => format!("{} ({})", s.name, s.code),
            None => code.clone(),
        }),
        None => None,
    };
    drop(conn);
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
    let login_again = (f.status == FailureStatus::Resolved)
        .then(|| idp.filter(|i| i.meta.sso_redirect.is_some()))
        .flatten()
        .map(|i| {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("idp", &i.meta.entity_id)
                .finish();
            format!("/saml/login?{q}")
        });
    let status_text = match f.status {
        FailureStatus::Resolved => t.get("failure.status.resolved"),
        FailureStatus::Dismissed => t.get("failure.status.dismissed"),
        FailureStatus::Open if f.kind.has_form() => t.get("failure.status.open"),
        FailureStatus::Open => "",
    };
    let form = form.unwrap_or_else(|| {
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
        FormView::from_report(&report, form_csrf(st, &f.reference))
    });
    let not_sent = t.get("form.not_sent");
    let page = FailurePage {
        t,
        f,
        kind_title: t.kind(f.kind.as_str(), "title"),
        kind_text: t.kind(f.kind.as_str(), "text"),
        status_text,
        login_again,
        help: help_keys(f.kind).iter().map(|k| t.get(k)).collect(),
        show_form: f.kind.has_form() && f.status.is_open(),
        form,
        asserted_last_name: f.asserted_last_name.as_deref().unwrap_or(not_sent),
        asserted_first_name: f.asserted_first_name.as_deref().unwrap_or(not_sent),
        asserted_birth_date: f.asserted_birth_date.as_deref().unwrap_or(not_sent),
        asserted_class_name: f.asserted_class_name.as_deref().unwrap_or(not_sent),
        school,
        portal,
        support: &st.svc.config.support,
    };
    Ok(render(status, &page))
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

async fn show(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Result<Response, AppError> {
    let f = load(&st, &reference).await?;
    failure_page(&st, tr(&headers), &f, StatusCode::OK, None).await
}

#[derive(Template)]
#[template(path = "report_sent.html")]
struct SentPage<'a> {
    t: Tr,
    reference: &'a str,
}

/// Reads the posted form; repeated `child_*[]` fields become rows.
fn parse_report(body: &[u8]) -> (Report, HashMap<String, String>) {
    let mut r = Report::default();
    let mut other = HashMap::new();
    let mut cols: [Vec<String>; 4] = Default::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        let v = v.trim().to_string();
        match k.as_ref() {
            "last_name" => r.last_name = v,
            "first_name" => r.first_name = v,
            "birth_date" => r.birth_date = v,
            "role" => r.role = v,
            "class_name" => r.class_name = v,
            "email" => r.email = v,
            "phone" => r.phone = v,
            "message" => r.message = v,
            "child_last_name[]" => cols[0].push(v),
            "child_first_name[]" => cols[1].push(v),
            "child_birth_date[]" => cols[2].push(v),
            "child_class_name[]" => cols[3].push(v),
            k => {
                other.insert(k.to_string(), v);
            }
        }
    }
    let n = cols.iter().map(Vec::len).max().unwrap_or(0).min(20);
    let at = |c: &Vec<String>, i: usize| c.get(i).cloned().unwrap_or_default();
    r.children = (0..n)
        .map(|i| ChildRow {
            last_name: at(&cols[0], i),
            first_name: at(&cols[1], i),
            birth_date: at(&cols[2], i),
            class_name: at(&cols[3], i),
        })
        .collect();
    (r, other)
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
    let (mut r, other) = parse_report(&body);
    let expected = form_csrf(&st, &f.reference);
    let given = other.get("csrf_token").map(String::as_str).unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Ok(super::message_page(
            StatusCode::FORBIDDEN,
            t,
            t.get("page.error"),
            "CSRF",
        ));
    }
    if !(f.kind.has_form() && f.status.is_open()) {
        return Ok(super::message_page(
            StatusCode::CONFLICT,
            t,
            t.get("failure.heading"),
            t.get("form.closed"),
        ));
    }
    let ip = super::client_ip(&parts.extensions).unwrap_or_else(|| "unknown".into());
    if !st.limits.report_by_ip.allow(&ip) || !st.limits.report_by_failure.allow(&f.reference) {
        return Ok(super::message_page(
            StatusCode::TOO_MANY_REQUESTS,
            t,
            t.get("failure.heading"),
            t.get("form.too_many"),
        ));
    }
    // "Add a child" / "remove this child": re-show, nothing saved.
    let add = other.contains_key("add_child");
    let remove = other
        .get("remove_child")
        .and_then(|v| v.parse::<usize>().ok());
    if add || remove.is_some() {
        if let Some(i) = remove.filter(|i| *i < r.children.len()) {
            r.children.remove(i);
        }
        if add && r.children.len() < 20 {
            r.children.push(ChildRow::default());
        }
        let view = FormView::from_report(&r, expected);
        return failure_page(&st, t, &f, StatusCode::OK, Some(view)).await;
    }
    let (errors, child_errors) = validate(&mut r);
    if !errors.is_empty() || !child_errors.is_empty() {
        let mut view = FormView::from_report(&r, expected);
        view.errors = errors;
        view.child_errors = child_errors;
        return failure_page(&st, t, &f, StatusCode::UNPROCESSABLE_ENTITY, Some(view)).await;
    }
    let json = serde_json::to_string(&r).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut conn = st.svc.pool.acquire().await?;
    if !failures::save_report(&mut conn, &f.reference, &json).await? {
        return Ok(super::message_page(
            StatusCode::CONFLICT,
            t,
            t.get("failure.heading"),
            t.get("form.closed"),
        ));
    }
    Ok(render(
        StatusCode::OK,
        &SentPage {
            t,
            reference: &f.reference,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_rows_are_read_from_repeated_fields() {
        let (r, other) = parse_report(b"role=parent&child_last_name%5B%5D=A&child_first_name%5B%5D=B&child_last_name%5B%5D=C&csrf_token=x");
        assert_eq!(r.children.len(), 2);
        assert_eq!(r.children[1].last_name, "C");
        assert_eq!(r.children[1].first_name, "");
        assert_eq!(other.get("csrf_token").map(String::as_str), Some("x"));
    }
}
