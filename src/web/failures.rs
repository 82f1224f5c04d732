//! The failure page a user lands on, and the failure form ("Identification
//! impossible … renseignez le formulaire puis cliquez sur Envoyer").
//!
//! The page answers with the kind's HTTP status while the failure is open
//! and 200 once it is resolved or dismissed; it names someone to contact
//! (the school's own support, else the service's, else the school's
//! office), with `tel:` and pre-filled `mailto:` links; times are shown in
//! the configured zone, in the page's language.

use super::{render, tr, AppState};
use crate::i18n::Tr;
use crate::resolve::report::{validate, ChildRow, Problems, Report, ROLES};
use crate::resolve::{FailureKind, FailureStatus};
use crate::store::failures::{self, Failure};
use crate::store::schools;
use crate::web::constant_time_eq;
use crate::web::error::{failure_status, AppError};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/failures/{reference}", get(show))
        // A GET of the form's address (the language switch of a page
        // answered to the form's POST, a reload after "open in new tab")
        // goes to the page itself.
        .route("/failures/{reference}/report", get(to_page).post(report))
}

/// One field of the form as shown: everything the markup needs, translated.
pub struct Field {
    /// The element's ID (`last_name`, `child-2-birth_date`), the target of
    /// the error summary's link.
    pub id: String,
    /// The posted name (`last_name`, `child_birth_date[]`).
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    /// The error message (translated), shown above the input.
    pub error: Option<&'static str>,
    /// A hint (translated) with ID `{id}-hint`.
    pub hint: Option<&'static str>,
    /// `aria-describedby`: the hint's and the error's IDs, or empty.
    pub describedby: String,
    /// `aria-invalid`: its own error, or one it shares (no e-mail and no
    /// phone; a parent's first, empty, child row).
    pub invalid: bool,
    /// The input's `type`: `text`, `date`, `email`, `tel`.
    pub input_type: &'static str,
    /// The `autocomplete` token, or empty.
    pub autocomplete: &'static str,
    pub maxlength: usize,
    pub required: bool,
}

impl Field {
    fn new(t: Tr, id: String, name: &'static str, label: &'static str, value: &str) -> Field {
        Field {
            id,
            name,
            label: t.get(label),
            value: value.to_string(),
            error: None,
            hint: None,
            describedby: String::new(),
            invalid: false,
            input_type: "text",
            autocomplete: "",
            maxlength: 100,
            required: false,
        }
    }

    /// The input's type, `autocomplete` token, length limit and whether it
    /// is required, by field.
    fn kind(mut self, field: &str, own: bool) -> Field {
        (self.input_type, self.maxlength) = match field {
            "birth_date" => ("date", 10),
            "email" => ("email", 200),
            "phone" => ("tel", 30),
            "message" => ("text", 2000),
            _ => ("text", 100),
        };
        // The user's own details are theirs to autofill; a child's are not.
        self.autocomplete = match (field, own) {
            ("last_name", true) => "family-name",
            ("first_name", true) => "given-name",
            ("birth_date", true) => "bday",
            ("email", true) => "email",
            ("phone", true) => "tel",
            _ => "off",
        };
        self.required = matches!(field, "last_name" | "first_name" | "birth_date" | "role");
        self
    }

    fn hint(mut self, text: &'static str) -> Field {
        self.hint = Some(text);
        self
    }

    /// Sets the error and computes `aria-describedby` (plus `extra` IDs).
    fn finish(mut self, error: Option<&'static str>, extra: &[String]) -> Field {
        self.error = error;
        self.invalid = error.is_some() || !extra.is_empty();
        let mut ids: Vec<String> = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("{}-hint", self.id));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.id));
        }
        ids.extend(extra.iter().cloned());
        self.describedby = ids.join(" ");
        self
    }
}

/// One child row of a parent's report, as shown.
pub struct ChildView {
    /// 0-based, the value of its "remove" button.
    pub index: usize,
    /// 1-based, in its legend.
    pub number: usize,
    pub fields: Vec<Field>,
}

/// The form as shown: fields with values and errors, the children (for a
/// parent), the error summary and the CSRF token.
pub struct FormView {
    fields: HashMap<&'static str, Field>,
    pub children: Vec<ChildView>,
    /// "A parent names at least one child", above the first child.
    pub children_error: Option<&'static str>,
    /// The error summary: (link target, message), in the form's order.
    pub summary: Vec<(String, String)>,
    /// Whether the children block shows (the role is parent); without
    /// JavaScript it appears after a submit as a parent.
    pub show_children: bool,
    pub role: String,
    pub csrf: String,
}

const MAIN_FIELDS: [(&str, &str); 7] = [
    ("last_name", "form.last_name"),
    ("first_name", "form.first_name"),
    ("birth_date", "form.birth_date"),
    ("role", "form.role"),
    ("class_name", "form.class_name"),
    ("email", "form.email"),
    ("phone", "form.phone"),
];

const CHILD_FIELDS: [(&str, &str, &str); 4] = [
    ("last_name", "child_last_name[]", "form.last_name"),
    ("first_name", "child_first_name[]", "form.first_name"),
    ("birth_date", "child_birth_date[]", "form.birth_date"),
    ("class_name", "child_class_name[]", "form.class_name"),
];

impl FormView {
    /// A field by its name (`last_name` … `message`).
    pub fn field(&self, name: &str) -> &Field {
        self.fields
            .get(name)
            .or_else(|| self.fields.get("message"))
            .expect("the form has a message field")
    }

    /// The role options: (value, translated label, selected).
    pub fn roles(&self, t: &Tr) -> Vec<(&'static str, &'static str, bool)> {
        ROLES
            .iter()
            .map(|r| {
                let label = match *r {
                    "student" => "form.role.student",
                    "parent" => "form.role.parent",
                    "teacher" => "form.role.teacher",
                    _ => "form.role.staff",
                };
                (*r, t.get(label), self.role == *r)
            })
            .collect()
    }

    pub fn has_errors(&self) -> bool {
        !self.summary.is_empty()
    }

    fn from_report(t: Tr, r: &Report, csrf: String, problems: &Problems) -> FormView {
        let value = |name: &str| match name {
            "last_name" => &r.last_name,
            "first_name" => &r.first_name,
            "birth_date" => &r.birth_date,
            "role" => &r.role,
            "class_name" => &r.class_name,
            "email" => &r.email,
            "phone" => &r.phone,
            _ => &r.message,
        };
        let error = |name: &str| problems.fields.get(name).copied().map(|k| t.get(k));
        let pair = |label: &str, error: &str| {
            t.get("text.pair")
                .replace("{label}", label)
                .replace("{value}", error)
        };
        let mut fields = HashMap::new();
        let mut summary = Vec::new();
        // "An e-mail or a phone" is said once, on the e-mail field; the
        // phone field points at it too.
        let contact_missing = problems.fields.get("email") == Some(&"form.error.contact");
        for (name, label) in MAIN_FIELDS.iter().chain(&[("message", "form.message")]) {
            let mut f = Field::new(t, name.to_string(), name, label, value(name)).kind(name, true);
            f = match *name {
                "birth_date" => f.hint(t.get("form.date_hint")),
                "role" => f.hint(t.get("form.parent_note")),
                "email" | "phone" => f.hint(t.get("form.contact_hint")),
                _ => f,
            };
            let extra = if *name == "phone" && contact_missing {
                vec!["email-error".to_string()]
            } else {
                Vec::new()
            };
            let f = f.finish(error(name), &extra);
            if *name != "message" {
                if let Some(e) = f.error {
                    summary.push((format!("#{}", f.id), pair(f.label, e)));
                }
            }
            fields.insert(*name, f);
        }
        let show_children = r.role == "parent";
        let mut rows = r.children.clone();
        if rows.is_empty() {
            rows.push(ChildRow::default());
        }
        let children_error = problems.fields.get("children").copied().map(|k| t.get(k));
        if let (Some(e), true) = (children_error, show_children) {
            summary.push(("#child-1-last_name".to_string(), e.to_string()));
        }
        let children = rows
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let fields = CHILD_FIELDS
                    .iter()
                    .map(|(field, name, label)| {
                        let v = match *field {
                            "last_name" => &c.last_name,
                            "first_name" => &c.first_name,
                            "birth_date" => &c.birth_date,
                            _ => &c.class_name,
                        };
                        let id = format!("child-{}-{field}", i + 1);
                        let mut f = Field::new(t, id, name, label, v).kind(field, false);
                        if *field == "birth_date" {
                            f = f.hint(t.get("form.date_hint"));
                        }
                        let extra = if i == 0 && *field == "last_name" && children_error.is_some() {
                            vec!["children-error".to_string()]
                        } else {
                            Vec::new()
                        };
                        let e = problems
                            .children
                            .get(&(i, *field))
                            .copied()
                            .map(|k| t.get(k));
                        let f = f.finish(e, &extra);
                        if let (Some(e), true) = (f.error, show_children) {
                            let who = format!("{} {} – {}", t.get("form.child"), i + 1, f.label);
                            summary.push((format!("#{}", f.id), pair(&who, e)));
                        }
                        f
                    })
                    .collect();
                ChildView {
                    index: i,
                    number: i + 1,
                    fields,
                }
            })
            .collect();
        if let Some(e) = fields.get("message").and_then(|f| f.error) {
            summary.push(("#message".into(), pair(t.get("form.message"), e)));
        }
        FormView {
            fields,
            children,
            children_error,
            summary,
            show_children,
            role: r.role.clone(),
            csrf,
        }
    }
}

/// One step of "what you can do", with sub-steps (per device).
pub struct Step {
    pub text: &'static str,
    pub sub: Vec<&'static str>,
}

/// A way to reach support: what to show and where the link goes.
pub struct Link {
    pub text: String,
    pub href: String,
}

/// Whom the user can contact: the school's own support, else the
/// service's (config `support`); `None`: the school's office.
pub struct ContactView {
    pub intro: String,
    pub phone: Option<Link>,
    pub email: Option<Link>,
    pub url: Option<Link>,
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

/// The help steps for a kind, as translation keys, most useful first: at
/// least two things to try, then "contact support" (a test holds this).
fn help_keys(kind: FailureKind) -> &'static [&'static str] {
    use FailureKind::*;
    match kind {
        MalformedRequest | InvalidSignature | Replayed => &[
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        Expired => &[
            "help.clock",
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        WrongAudience => &[
            "help.right_portal",
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        IdpError => &[
            "help.portal_home",
            "help.close_browser",
            "help.private.intro",
            "help.contact_support",
        ],
        UnknownIssuer => &[
            "help.right_portal",
            "help.school_connected",
            "help.contact_support",
        ],
        UnknownSchool => &[
            "help.right_school",
            "help.school_connected",
            "help.contact_support",
        ],
        UntrustedSchool => &[
            "help.right_portal",
            "help.right_school",
            "help.contact_support",
        ],
        MissingSchoolCode | InvalidSchoolCode => &[
            "help.right_school",
            "help.tell_school_office",
            "help.contact_support",
        ],
        MissingSubject => &[
            "help.close_browser",
            "help.tell_school_office",
            "help.contact_support",
        ],
        AccountDisabled => &[
            "help.changed_school",
            "help.tell_school_office",
            "help.contact_support",
        ],
        IdentityMismatch => &["help.compare", "help.fill_form", "help.contact_support"],
        AmbiguousIdentity => &["help.homonym", "help.fill_form", "help.contact_support"],
    }
}

fn help_steps(t: Tr, kind: FailureKind) -> Vec<Step> {
    help_keys(kind)
        .iter()
        .map(|k| Step {
            text: t.get(k),
            sub: if *k == "help.private.intro" {
                [
                    "help.private.desktop",
                    "help.private.ios",
                    "help.private.android",
                ]
                .iter()
                .map(|s| t.get(s))
                .collect()
            } else {
                Vec::new()
            },
        })
        .collect()
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

/// A stored time (`YYYY-MM-DDTHH:MM:SSZ`) in `tz`, in words of the page's
/// language: "2 décembre 2026 à 21:05", "2 december 2026 om 21:05",
/// "2 December 2026 at 21:05". Unreadable: as stored.
pub fn local_time(t: Tr, tz: chrono_tz::Tz, stored: &str) -> String {
    use chrono::{Datelike, TimeZone};
    let Ok(naive) = chrono::NaiveDateTime::parse_from_str(stored, "%Y-%m-%dT%H:%M:%SZ") else {
        return stored.to_string();
    };
    let local = tz.from_utc_datetime(&naive);
    let day = match local.day() {
        1 => t.get("time.day1").to_string(),
        d => d.to_string(),
    };
    let month = format!("time.month.{}", local.month());
    t.get("time.format")
        .replace("{day}", &day)
        .replace("{month}", t.get(&month))
        .replace("{year}", &local.year().to_string())
        .replace("{time}", &local.format("%H:%M").to_string())
}

/// RFC 6068 (mailto) and RFC 3986 percent-encoding: every byte but the
/// unreserved ones (and `@` in the address) as `%XX`, so spaces are `%20`
/// (never `+`) and line breaks `%0D%0A`.
fn percent_encode(s: &str, keep_at: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_at && b == b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `mailto:` URL with a subject and a body.
pub fn mailto(address: &str, subject: &str, body: &str) -> String {
    format!(
        "mailto:{}?subject={}&body={}",
        percent_encode(address, true),
        percent_encode(subject, false),
        percent_encode(body, false)
    )
}

/// A `tel:` URL: digits, and `+` in front, nothing else. The "(0)" of
/// "+33 (0)1 …" is dropped: it is not dialled after a country code.
pub fn tel(phone: &str) -> String {
    let phone = phone.trim();
    let international = phone.starts_with('+');
    let phone = if international {
        phone.replace("(0)", "")
    } else {
        phone.to_string()
    };
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if international {
        format!("tel:+{digits}")
    } else {
        format!("tel:{digits}")
    }
}

/// What the page says about the failure, for the `mailto:` body and the
/// details list.
struct Details<'a> {
    code: &'a str,
    error: &'a str,
    school: Option<&'a str>,
    portal: Option<&'a str>,
    service: &'a str,
    when: &'a str,
}

/// The pre-filled e-mail: a greeting, room for the user's message, then
/// what support desks ask first, in the page's language.
fn mail_body(t: Tr, d: &Details) -> String {
    let pair = |label: &str, value: &str| {
        t.get("text.pair")
            .replace("{label}", t.get(label))
            .replace("{value}", value)
    };
    let mut lines = vec![
        t.get("mail.greeting").to_string(),
        String::new(),
        String::new(),
        String::new(),
        t.get("mail.details").to_string(),
        pair("support.code", d.code),
        pair("support.error", d.error),
    ];
    if let Some(s) = d.school {
        lines.push(pair("support.school", s));
    }
    if let Some(p) = d.portal {
        lines.push(pair("support.portal", p));
    }
    lines.push(pair("support.service", d.service));
    lines.push(pair("support.how", t.get("support.how.value")));
    lines.push(pair("support.when", d.when));
    lines.join("\r\n")
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The contact links of one source.
fn contact_view(t: Tr, intro: String, c: &schools::Contact, d: &Details) -> Option<ContactView> {
    let phone = non_empty(&c.phone).map(|p| Link {
        text: p.to_string(),
        href: tel(p),
    });
    let email = non_empty(&c.email).map(|e| {
        let subject = t.get("mail.subject").replace("{code}", d.code);
        Link {
            text: e.to_string(),
            href: mailto(e, &subject, &mail_body(t, d)),
        }
    });
    // Only a web address is a link (never `javascript:` or the like).
    let url = non_empty(&c.url)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(|u| Link {
            text: u.to_string(),
            href: u.to_string(),
        });
    (phone.is_some() || email.is_some() || url.is_some()).then_some(ContactView {
        intro,
        phone,
        email,
        url,
    })
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
    let registered = match &f.school_code {
        Some(code) => schools::with_contact(&mut conn, code).await?,
        None => None,
    };
    drop(conn);
    let school = match (&registered, &f.school_code) {
        (Some((s, _)), _) => Some(format!("{} ({})", s.name, s.code)),
        (None, code) => code.clone(),
    };
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
    let login_again = login_url
        .clone()
        .filter(|_| f.status == FailureStatus::Resolved);
    let retry = login_url.filter(|_| f.status.is_open() && f.kind.can_retry());
    // "Your request is waiting" only once there is a request: a sent form.
    let status_text = match f.status {
        FailureStatus::Resolved => Some(t.get("failure.status.resolved")),
        FailureStatus::Dismissed => Some(t.get("failure.status.dismissed")),
        FailureStatus::Open if f.kind.has_form() && f.report_json.is_some() => {
            Some(t.get("failure.status.open"))
        }
        FailureStatus::Open => None,
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
        FormView::from_report(
            t,
            &report,
            form_csrf(st, &f.reference),
            &Problems::default(),
        )
    });
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
    // The school's own support when it has one, else the service's.
    let contact = registered
        .as_ref()
        .filter(|(_, c)| !c.is_empty())
        .and_then(|(s, c)| {
            let intro = t.get("support.from_school").replace("{school}", &s.name);
            contact_view(t, intro, c, &details)
        })
        .or_else(|| {
            let g = &st.svc.config.support;
            let c = schools::Contact {
                email: g.email.clone(),
                phone: g.phone.clone(),
                url: g.url.clone(),
            };
            contact_view(t, t.get("support.from_service").to_string(), &c, &details)
        });
    let office = match &registered {
        Some((s, _)) => t.get("support.school_office").replace("{school}", &s.name),
        None => t.get("support.school_office.any").to_string(),
    };
    let not_sent = t.get("form.not_sent");
    let page = FailurePage {
        t,
        f,
        title,
        kind_text: t.kind(f.kind.as_str(), "text"),
        kind_title,
        status_text,
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
        office,
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
            t.get("admin.csrf"),
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
            support_code: &f.support_code,
            will_email: !r.email.is_empty() && st.svc.config.smtp_url.is_some(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn children_rows_are_read_from_repeated_fields() {
        let (r, other) = parse_report(b"role=parent&child_last_name%5B%5D=A&child_first_name%5B%5D=B&child_last_name%5B%5D=C&csrf_token=x");
        assert_eq!(r.children.len(), 2);
        assert_eq!(r.children[1].last_name, "C");
        assert_eq!(r.children[1].first_name, "");
        assert_eq!(other.get("csrf_token").map(String::as_str), Some("x"));
    }

    #[test]
    fn every_kind_has_two_things_to_try_before_contact() {
        for kind in FailureKind::ALL {
            let keys = help_keys(kind);
            assert_eq!(keys.last(), Some(&"help.contact_support"), "{kind}");
            assert!(keys.len() >= 3, "{kind}: {keys:?}");
        }
    }

    #[test]
    fn times_are_local_and_in_words() {
        let paris = chrono_tz::Europe::Paris;
        let at = |lang, s| local_time(Tr::new(lang), paris, s);
        assert_eq!(
            at(Lang::Fr, "2026-12-02T20:05:09Z"),
            "2 décembre 2026 à 21:05"
        );
        assert_eq!(
            at(Lang::Nl, "2026-12-02T20:05:09Z"),
            "2 december 2026 om 21:05"
        );
        assert_eq!(
            at(Lang::En, "2026-12-02T20:05:09Z"),
            "2 December 2026 at 21:05"
        );
        assert_eq!(
            at(Lang::Fr, "2026-07-01T08:30:00Z"),
            "1er juillet 2026 à 10:30"
        );
        assert_eq!(at(Lang::Fr, "garbage"), "garbage");
    }

    #[test]
    fn contact_links_are_encoded_for_their_scheme() {
        assert_eq!(tel("+33 (0)1 23 45-67.89"), "tel:+33123456789");
        assert_eq!(tel("020 123 45 67"), "tel:0201234567");
        assert_eq!(
            mailto("aide@école.fr", "Code JNT-1 & co", "a b\r\nc=d?"),
            "mailto:aide@%C3%A9cole.fr?subject=Code%20JNT-1%20%26%20co&body=a%20b%0D%0Ac%3Dd%3F"
        );
    }
}
