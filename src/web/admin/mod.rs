//! The admins' desk: login, dashboard, failures, mappings, accounts,
//! schools, audit. Every page needs an admin session; every POST carries the
//! session's CSRF token; scope is applied in the store queries, so another
//! school's row answers 404 as if it did not exist.

mod dashboard;
pub(crate) mod failure_list;
mod failure_search;
pub(crate) mod failures;
mod language;
mod lists;
mod login;
pub mod transfer;
mod undo;

use super::AppState;
use crate::i18n::Tr;
use crate::store::admins::Admin;
use crate::store::{sessions, Scope};
use crate::web::error::AppError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

/// An admin session ends after this long without a request…
pub const IDLE_SECONDS: i64 = 30 * 60;
/// …and in any case this long after login.
pub const ABSOLUTE_SECONDS: i64 = 10 * 3600;

/// The admin routes; uploads may be up to `max_upload_bytes`.
pub fn routes(max_upload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(login::form).post(login::submit))
        .route("/admin/logout", post(login::logout))
        .route("/admin/language", post(language::switch))
        .route("/admin", get(dashboard::dashboard))
        .route("/admin/failures", get(failure_list::list))
        .route("/admin/failures/dismiss", post(failure_list::dismiss_many))
        .route("/admin/failures/{reference}", get(failures::detail))
        .route(
            "/admin/failures/{reference}/resolve",
            post(failures::resolve),
        )
        .route(
            "/admin/failures/{reference}/dismiss",
            post(failures::dismiss),
        )
        .route("/admin/failures/{reference}/reopen", post(failures::reopen))
        .route(
            "/admin/failures/{reference}/recheck",
            post(undo::recheck_one),
        )
        .route("/admin/failures/recheck", post(undo::recheck_every))
        .route(
            "/admin/mappings",
            get(lists::mappings).post(lists::create_mapping),
        )
        .route("/admin/mappings/{id}/delete", post(lists::delete_mapping))
        .route("/admin/accounts", get(lists::accounts))
        .route("/admin/schools", get(lists::schools))
        .route("/admin/audit", get(lists::audit))
        .route("/admin/audit/{id}/undo", post(undo::undo))
        .route(
            "/admin/import",
            get(transfer::form)
                .post(transfer::upload)
                .layer(axum::extract::DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route("/admin/import/{id}", get(transfer::job))
        .route("/admin/import/{id}/confirm", post(transfer::confirm))
        .route("/admin/export/{file}", get(transfer::export))
}

/// A logged-in admin, with the session's CSRF token.
pub struct AdminSession {
    pub admin: Admin,
    pub csrf: String,
    pub t: Tr,
}

impl AdminSession {
    pub fn scope(&self) -> Scope {
        self.admin.scope()
    }

    /// Refuses a POST whose `csrf_token` is not this session's: 403, nothing
    /// changed.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), AppError> {
        let ok =
            given.is_some_and(|g| crate::web::constant_time_eq(g.as_bytes(), self.csrf.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(AppError::Forbidden(self.t.get("admin.csrf").into()))
        }
    }
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let t = super::tr(&parts.headers);
        let to_login = || Redirect::to("/admin/login").into_response();
        let name = super::session_cookie_name(&st.svc, crate::web::CookieName::AdminSession);
        let Some(token) = super::cookie(&parts.headers, &name) else {
            return Err(to_login());
        };
        let fail = |e: sqlx::Error| AppError::from(e).into_response();
        let mut conn = st.svc.pool.acquire().await.map_err(fail)?;
        let Some(s) = sessions::get(&mut conn, sessions::SessionKind::Admin, &token)
            .await
            .map_err(fail)?
        else {
            return Err(to_login());
        };
        let now = chrono::Utc::now().timestamp();
        if now - s.last_seen > IDLE_SECONDS || now - s.created_at > ABSOLUTE_SECONDS {
            // Best effort: the session is refused either way, and the
            // purge removes expired rows later.
            if let Err(e) = sessions::delete(&mut conn, &token).await {
                tracing::debug!(error = %e, "expired admin session not deleted now");
            }
            return Err(to_login());
        }
        let admin = match s.principal.parse::<i64>() {
            Ok(id) => crate::store::admins::by_id(&mut conn, id)
                .await
                .map_err(fail)?,
            Err(_) => None,
        };
        let Some(admin) = admin else {
            return Err(to_login());
        };
        drop(conn);
        if now - s.last_seen >= TOUCH_AFTER_SECONDS {
            touch_later(st, token);
        }
        Ok(AdminSession {
            admin,
            csrf: s.csrf_token,
            t,
        })
    }
}

/// How stale `last_seen` may get before a request refreshes it: far below
/// the idle timeout, and it keeps the desk's pages from writing at all on
/// most requests.
const TOUCH_AFTER_SECONDS: i64 = 60;

/// Refreshes a session's `last_seen` off the request: a read-only page
/// never waits for the write lock, and a touch that cannot be written now
/// (lock held, disk full) is simply tried again by a later request.
fn touch_later(st: &AppState, token: String) {
    let svc = st.svc.clone();
    tokio::spawn(async move {
        let touched = async {
            let mut tx = svc.begin_write().await?;
            sessions::touch(&mut tx, &token).await?;
            tx.commit().await
        };
        if let Err(e) = touched.await {
            tracing::debug!(error = %e, "admin session not touched this time");
        }
    });
}

/// A posted admin form: the session, its CSRF token checked (403 and
/// nothing done otherwise), and the fields read into `T`. A field given
/// twice is refused (400), never read one way here and another there.
pub struct AdminForm<T> {
    pub session: AdminSession,
    pub form: T,
}

/// The form every admin POST without fields of its own sends.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NoFields {}

impl<T> FromRequest<AppState> for AdminForm<T>
where
    T: serde::de::DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = AdminSession::from_request_parts(&mut parts, st).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(IntoResponse::into_response)?;
        let given = single_field(&body, "csrf_token");
        session
            .check_csrf(given.as_deref())
            .map_err(IntoResponse::into_response)?;
        let form = serde_urlencoded::from_bytes::<T>(&body)
            .map_err(|e| AppError::BadRequest(e.to_string()).into_response())?;
        Ok(AdminForm { session, form })
    }
}

/// The navigation and the logout form of every admin page.
pub struct Chrome<'a> {
    pub t: Tr,
    pub email: &'a str,
    pub csrf: &'a str,
    pub active: &'static str,
    /// The page a language switch comes back to.
    pub here: String,
}

impl<'a> Chrome<'a> {
    pub fn of(s: &'a AdminSession, active: &'static str) -> Chrome<'a> {
        Chrome {
            t: s.t,
            email: &s.admin.email,
            csrf: &s.csrf,
            active,
            here: crate::web::current_request()
                .and_then(|r| r.page)
                .unwrap_or_else(|| "/admin".into()),
        }
    }
    /// The languages the desk offers, for the switch: code, own name,
    /// whether it is the page's.
    pub fn languages(&self) -> [(&'static str, &'static str, bool); 3] {
        use crate::i18n::Lang;
        [
            (Lang::Fr, "Français"),
            (Lang::Nl, "Nederlands"),
            (Lang::En, "English"),
        ]
        .map(|(l, name)| (l.code(), name, l == self.t.lang))
    }
    pub fn is(&self, item: &str) -> bool {
        self.active == item
    }
}

/// A form field's value when it is given exactly once (a field given twice
/// is ambiguous: refused as absent).
pub fn single_field(body: &[u8], name: &str) -> Option<String> {
    let mut values = url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Indents XML for reading, tolerating anything (the raw response may be
/// malformed); the template escapes the result.
pub fn pretty_xml(raw: &str) -> String {
    // Indentation is capped (a hostile document of 30,000 nested tags would
    // otherwise cost a gigabyte of spaces).
    const MAX_DEPTH: usize = 24;
    let mut out = String::with_capacity(raw.len() + raw.len() / 8);
    let mut depth: usize = 0;
    let mut rest = raw.trim();
    while let Some(start) = rest.find('<') {
        let text = rest[..start].trim();
        if !text.is_empty() {
            out.push_str(text);
        }
        let Some(end) = rest[start..].find('>') else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&"  ".repeat(depth.min(MAX_DEPTH)));
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = &rest[start..start + end + 1];
        let closing = tag.starts_with("</");
        let self_closing = tag.ends_with("/>") || tag.starts_with("<?") || tag.starts_with("<!");
        if closing {
            depth = depth.saturating_sub(1);
        }
        // A closing tag right after its text stays on the text's line.
        if !closing || text.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&"  ".repeat(depth.min(MAX_DEPTH)));
        }
        out.push_str(tag);
        if !closing && !self_closing {
            depth += 1;
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest.trim());
    out
}

#[cfg(test)]
mod tests {
    use super::pretty_xml;

    #[test]
    fn xml_is_indented_with_text_kept_inline() {
        let p = pretty_xml("<a><b x=\"1\">text</b><c/></a>");
        assert_eq!(p, "<a>\n  <b x=\"1\">text</b>\n  <c/>\n</a>");
    }

    #[test]
    fn deep_nesting_stays_small() {
        let hostile = "<a>".repeat(30_000);
        assert!(pretty_xml(&hostile).len() < hostile.len() * 20);
    }

    #[test]
    fn broken_xml_does_not_panic() {
        assert_eq!(pretty_xml("<a><b"), "<a>\n  <b");
        assert_eq!(pretty_xml("no tags"), "no tags");
    }
}
