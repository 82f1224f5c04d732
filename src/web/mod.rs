//! HTTP: one router, state in one `AppState`, a module per area.

pub mod admin;
pub mod api;
pub mod demo;
pub mod error;
pub mod failures;
mod logout;
pub mod saml;

use crate::i18n::{Lang, Tr};
use crate::service::Service;
use askama::Template;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub svc: Arc<Service>,
    /// Present only under `serve --demo`.
    pub demo: Option<Arc<crate::demo::Demo>>,
    pub limits: Arc<crate::auth::Limits>,
    /// Imports uploaded on the admin pages.
    pub imports: Arc<admin::transfer::Jobs>,
}

impl AppState {
    pub fn new(svc: Arc<Service>, demo: Option<Arc<crate::demo::Demo>>) -> AppState {
        AppState {
            svc,
            demo,
            limits: Arc::new(crate::auth::Limits::default()),
            imports: Arc::new(admin::transfer::Jobs::default()),
        }
    }
}

/// All routes. The demo IdP's routes exist only under `--demo`.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/me") }))
        .route("/static/style.css", get(style))
        .route("/static/autopost.js", get(autopost_js))
        .route("/static/report.js", get(report_js))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(saml::routes())
        .merge(logout::routes())
        .merge(failures::routes())
        .merge(admin::routes(state.svc.config.max_upload_bytes))
        .merge(api::routes());
    if state.demo.is_some() {
        r = r.merge(demo::routes());
    }
    r.fallback(|| async { crate::web::error::AppError::NotFound })
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Ready when the database answers within two seconds.
async fn readyz(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> (StatusCode, &'static str) {
    let ping = crate::store::ping(&st.svc.pool);
    match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// What an error page needs to know of the request it answers, without
/// every handler passing it down: its ID (quoted to support) and language.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub id: String,
    pub lang: Lang,
    /// The path and query of a GET, where a language switch on the page
    /// comes back to.
    pub page: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// The request being answered, when called inside one.
pub fn current_request() -> Option<RequestContext> {
    REQUEST.try_with(Clone::clone).ok()
}

/// A request ID on every request: the caller's `x-request-id` when it is a
/// plain token, else a fresh one; in every log line of the request (its
/// span) and on the response. The log line names the route pattern, never
/// the path itself (a failure's reference) or any personal data.
async fn request_id(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    let given = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string);
    let id = given.unwrap_or_else(|| {
        let bytes: [u8; 8] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(no route)".into());
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, %method, %route);
    let start = std::time::Instant::now();
    let (lang, chosen) = negotiate(req.uri().query(), req.headers());
    let page = (req.method() == axum::http::Method::GET)
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_string()))
        .flatten();
    let context = RequestContext {
        id: id.clone(),
        lang,
        page,
    };
    let mut res = REQUEST
        .scope(context, next.run(req).instrument(span.clone()))
        .await;
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            ms = start.elapsed().as_millis() as u64,
            "served"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    if chosen {
        res.headers_mut()
            .append(header::SET_COOKIE, lang_cookie(lang));
    }
    res
}

/// The cookie that remembers a language: a year; not a secret, so
/// readable over http too.
pub fn lang_cookie(lang: Lang) -> HeaderValue {
    HeaderValue::from_static(match lang {
        Lang::Fr => "lang=fr; Path=/; Max-Age=31536000; SameSite=Lax",
        Lang::Nl => "lang=nl; Path=/; Max-Age=31536000; SameSite=Lax",
        Lang::En => "lang=en; Path=/; Max-Age=31536000; SameSite=Lax",
    })
}

/// Headers every page carries: no framing, no sniffing, a strict CSP (our
/// pages have no inline script), no referrer leaking references.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action *; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

fn script(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
        .into_response()
}

async fn autopost_js() -> Response {
    script(include_str!("../../static/autopost.js"))
}

async fn report_js() -> Response {
    script(include_str!("../../static/report.js"))
}

/// The language of a request: as chosen for the request being answered
/// (`?lang=`, the `lang` cookie, `Accept-Language`, see [`negotiate`]),
/// else from the headers alone.
pub fn tr(headers: &HeaderMap) -> Tr {
    Tr::new(current_request().map_or_else(|| negotiate(None, headers).0, |r| r.lang))
}

/// The cookie that remembers a chosen language.
const LANG_COOKIE: &str = "lang";

/// The language of a request, and whether it was chosen now (`?lang=`, to
/// be remembered in the cookie): `?lang=fr|nl|en`, else the `lang` cookie,
/// else `Accept-Language`, else French.
fn negotiate(query: Option<&str>, headers: &HeaderMap) -> (Lang, bool) {
    let asked = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::from_code(&v))
    });
    if let Some(l) = asked {
        return (l, true);
    }
    if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|c| Lang::from_code(&c)) {
        return (l, false);
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    (Lang::from_accept_language(accept), false)
}

/// Renders a template with a status.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    t: Tr,
    title: &'a str,
    text: &'a str,
    /// For server errors: the request ID to quote to support.
    request_id: Option<String>,
}

/// A page with a title and a sentence.
pub fn message_page(status: StatusCode, t: Tr, title: &str, text: &str) -> Response {
    let request_id = status
        .is_server_error()
        .then(current_request)
        .flatten()
        .map(|r| r.id);
    render(
        status,
        &MessagePage {
            t,
            title,
            text,
            request_id,
        },
    )
}

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The cookies jointure sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieName {
    /// A logged-in user's session.
    UserSession,
    /// An admin's session.
    AdminSession,
    /// The admin login form's CSRF token, before any session exists.
    LoginCsrf,
}

impl CookieName {
    fn as_str(self) -> &'static str {
        match self {
            CookieName::UserSession => "session",
            CookieName::AdminSession => "admin",
            CookieName::LoginCsrf => "login_csrf",
        }
    }
}

/// A cookie's name: `__Host-` prefixed when served over https (the prefix
/// requires Secure), so no subdomain can plant or widen it.
pub fn session_cookie_name(svc: &Service, kind: CookieName) -> String {
    let kind = kind.as_str();
    if svc.config.is_https() {
        format!("__Host-jointure_{kind}")
    } else {
        format!("jointure_{kind}")
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the ACS POST arrives
/// cross-site and redirects; Lax still sends the cookie on that top-level
/// navigation), Path=/, Secure over https.
pub fn session_cookie(svc: &Service, kind: CookieName, value: &str, max_age: i64) -> String {
    let secure = if svc.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        session_cookie_name(svc, kind)
    )
}

/// The client address as the socket saw it (no proxy header is trusted).
pub fn client_ip(req_ext: &axum::http::Extensions) -> Option<String> {
    req_ext
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(res: Response) -> String {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[test]
    fn the_language_is_asked_then_remembered_then_the_browsers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("nl-NL,nl;q=0.9"),
        );
        assert_eq!(negotiate(None, &h), (Lang::Nl, false));
        assert_eq!(negotiate(Some("lang=en&x=1"), &h), (Lang::En, true));
        assert_eq!(
            negotiate(Some("lang=de"), &h),
            (Lang::Nl, false),
            "unknown: ignored"
        );
        h.insert(header::COOKIE, HeaderValue::from_static("lang=fr"));
        assert_eq!(
            negotiate(None, &h),
            (Lang::Fr, false),
            "the cookie beats the browser"
        );
        assert_eq!(negotiate(Some("lang=NL"), &h), (Lang::Nl, true));
        assert_eq!(negotiate(None, &HeaderMap::new()), (Lang::Fr, false));
    }

    #[tokio::test]
    async fn a_server_error_page_names_the_request_id_in_the_requests_language() {
        let ctx = RequestContext {
            id: "5e1f00d2a9b3c4d7".into(),
            lang: Lang::En,
            page: None,
        };
        let (server, missing) = REQUEST
            .scope(ctx, async {
                (
                    crate::web::error::AppError::Internal("disk".into()).into_response(),
                    crate::web::error::AppError::NotFound.into_response(),
                )
            })
            .await;
        assert_eq!(server.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let html = body_of(server).await;
        assert!(html.contains("5e1f00d2a9b3c4d7"), "{html}");
        assert!(html.contains("Service error"), "{html}");
        assert!(!html.contains("disk"), "the cause is logged, not shown");
        // A 404 needs no reference, but speaks the language.
        let html = body_of(missing).await;
        assert!(!html.contains("5e1f00d2a9b3c4d7"));
        assert!(html.contains("lang=\"en\""), "{html}");
    }
}
