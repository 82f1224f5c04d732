//! The user side of SAML: our metadata, SP-initiated login, the ACS,
//! `/me`, and single logout (`POST /logout`, `GET|POST /saml/slo`).

use super::failures::login_failed;
use super::{render, tr, AppState};
use crate::flow::{self, Context, Outcome};
use crate::i18n::Tr;
use crate::resolve::FailureKind;
use crate::saml::Rejection;
use crate::store::{accounts, replay, schools, sessions};
use crate::web::error::AppError;
use askama::Template;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

/// How long a user session lasts.
const USER_SESSION_SECONDS: i64 = 8 * 3600;
/// How long an AuthnRequest we sent may be answered.
const PENDING_REQUEST_SECONDS: i64 = 10 * 60;
/// The cookie that binds an SP-initiated login to its browser (https only,
/// so it always carries the `__Host-` prefix).
const LOGIN_COOKIE: &str = "__Host-jointure_login";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/saml/metadata", get(metadata))
        .route("/saml/login", get(login))
        .route("/saml/acs", post(acs))
        .route("/me", get(me))
}

async fn metadata(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        st.svc.sp_metadata.clone(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    idp: String,
    relay: Option<String>,
}

/// A RelayState we honour: a path on this site, or an absolute URL of it
/// (reduced to its path). Anything else would make us an open redirector.
pub fn same_origin_path(public_url: &str, relay: &str) -> Option<String> {
    let relay = relay.trim();
    let path = match relay.strip_prefix(public_url) {
        Some(rest) if rest.starts_with('/') => rest,
        Some(_) => return None,
        None => relay,
    };
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.len() <= 1024
        && !path.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| path.to_string())
}

/// SP-initiated login: records the AuthnRequest (bound to this browser
/// over https) and redirects to the IdP.
async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let t = tr(&headers);
    let Some(idp) = st.svc.verifier.idp(&q.idp) else {
        return Ok(login_failed(StatusCode::NOT_FOUND, t, "login.unknown_idp"));
    };
    if idp.meta.sso_redirect.is_none() {
        return Ok(login_failed(
            StatusCode::BAD_REQUEST,
            t,
            "login.no_redirect",
        ));
    }
    let relay = q
        .relay
        .as_deref()
        .and_then(|r| same_origin_path(&st.svc.config.public_url, r));
    let id = crate::saml::new_request_id();
    let browser_token = browser_token(&st, &headers);
    let pending = replay::Pending {
        idp_entity_id: idp.meta.entity_id.clone(),
        relay_state: relay,
        browser_hash: browser_token.as_deref().map(sessions::hash_token),
    };
    if !add_pending(&st, &extensions, &id, &pending).await? {
        return Ok(login_failed(
            StatusCode::SERVICE_UNAVAILABLE,
            t,
            "login.busy",
        ));
    }
    // The RelayState sent to the IdP is an opaque handle; the path itself
    // stays server-side with the request.
    let url = crate::saml::authn_redirect(&st.svc.verifier, &idp, &st.svc.sp_keys.key, &id, &id)
        .map_err(AppError::Internal)?;
    let mut res = Redirect::to(url.as_str()).into_response();
    if let Some(token) = browser_token {
        set_login_cookie(&mut res, &token);
    }
    Ok(res)
}

/// The token that binds a login to this browser: the login cookie's when
/// it has a well-formed one, else a new one; none over plain http.
fn browser_token(st: &AppState, headers: &HeaderMap) -> Option<String> {
    // Login CSRF: over https the answer must come back to this browser,
    // which carries the token of a cross-site cookie (SameSite=None, so it
    // rides on the IdP's POST). Over plain http no such cookie can be set,
    // and the binding is off (said at start-up).
    st.svc.config.is_https().then(|| {
        super::cookie(headers, LOGIN_COOKIE)
            .filter(|t| {
                t.len() == 43
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .unwrap_or_else(sessions::random_token)
    })
}

/// Records the AuthnRequest `id` as pending; false when too many are.
async fn add_pending(
    st: &AppState,
    extensions: &axum::http::Extensions,
    id: &str,
    pending: &replay::Pending,
) -> Result<bool, AppError> {
    let now = chrono::Utc::now().timestamp();
    let ip = super::client_ip(extensions);
    let mut tx = st.svc.begin_write().await?;
    let added = replay::add_pending(
        &mut tx,
        id,
        pending,
        ip.as_deref(),
        now,
        now + PENDING_REQUEST_SECONDS,
    )
    .await?;
    tx.commit().await?;
    Ok(added)
}

/// Sets the login cookie (cross-site, so it comes back on the IdP's POST).
fn set_login_cookie(res: &mut Response, token: &str) {
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=None; Max-Age={PENDING_REQUEST_SECONDS}"
    );
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The ACS: reads the POST under the size limit, runs the flow, and either
/// opens a session and redirects, or shows the failure page.
async fn acs(State(st): State<AppState>, req: Request) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    let mut ctx = Context {
        client_ip: super::client_ip(&parts.extensions),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        relay_state: None,
        browser_token: super::cookie(&parts.headers, LOGIN_COOKIE),
    };
    let name = super::session_cookie_name(&st.svc, crate::web::CookieName::UserSession);
    let wish = flow::SessionWish {
        replaces: super::cookie(&parts.headers, &name),
        max_seconds: USER_SESSION_SECONDS,
    };
    let (outcome, opened) = run_flow(&st, body, &mut ctx, &wish).await?;
    Ok(respond(&st, &parts.headers, outcome, opened))
}

/// Reads the POST under the size limit and runs the flow on its one
/// SAMLResponse (its RelayState into `ctx`); anything else is recorded as
/// a malformed request.
async fn run_flow(
    st: &AppState,
    body: Body,
    ctx: &mut Context,
    wish: &flow::SessionWish,
) -> Result<(Outcome, Option<flow::Opened>), AppError> {
    let limit = st.svc.config.max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let rej = Rejection::new(
            FailureKind::MalformedRequest,
            format!("POST body over the size limit of {limit} bytes"),
        );
        return Ok((flow::record_rejection(&st.svc, rej, None, ctx).await?, None));
    };
    let mut saml = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "SAMLResponse" => saml.push(v.into_owned()),
            "RelayState" => ctx.relay_state = Some(v.into_owned()),
            _ => {}
        }
    }
    let outcome = match saml.as_slice() {
        [one] => flow::login_encoded(&st.svc, one, ctx, Some(wish)).await?,
        other => {
            let why = if other.is_empty() {
                "no SAMLResponse field in the POST"
            } else {
                "several SAMLResponse fields in the POST"
            };
            let raw = String::from_utf8_lossy(&bytes).into_owned();
            let outcome = flow::record_rejection(
                &st.svc,
                Rejection::new(FailureKind::MalformedRequest, why),
                Some(raw),
                ctx,
            )
            .await?;
            (outcome, None)
        }
    };
    Ok(outcome)
}

/// The flow's outcome as the ACS answers it: the session it opened and a
/// redirect to the RelayState (else `/me`), or a redirect to the failure
/// page.
fn respond(
    st: &AppState,
    headers: &HeaderMap,
    outcome: Outcome,
    opened: Option<flow::Opened>,
) -> Response {
    match (outcome, opened) {
        (Outcome::Resolved { relay_state, .. }, Some(flow::Opened::Session { token, ttl })) => {
            let cookie =
                super::session_cookie(&st.svc, crate::web::CookieName::UserSession, &token, ttl);
            let target = relay_state
                .as_deref()
                .and_then(|r| same_origin_path(&st.svc.config.public_url, r))
                .unwrap_or_else(|| "/me".into());
            (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, target), (header::SET_COOKIE, cookie)],
            )
                .into_response()
        }
        (Outcome::Resolved { .. }, _) => {
            tracing::info!("login verified, but its IdP session had already ended (SessionNotOnOrAfter): no session");
            login_failed(StatusCode::FORBIDDEN, tr(headers), "login.session_ended")
        }
        // Post/redirect/get: the failure page is a GET of its own, so a
        // reload shows it again instead of re-posting the login (which
        // would be a replay). It answers with the kind's status while open.
        (Outcome::Failed { reference, .. }, _) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/failures/{reference}"))],
        )
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    t: Tr,
    account: accounts::Account,
    school_name: String,
    /// The session's CSRF token, for the logout form.
    csrf: String,
}

async fn me(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let t = tr(&headers);
    let name = super::session_cookie_name(&st.svc, crate::web::CookieName::UserSession);
    let mut conn = st.svc.pool.acquire().await?;
    let session = match super::cookie(&headers, &name) {
        Some(token) => sessions::get(&mut conn, sessions::SessionKind::User, &token).await?,
        None => None,
    };
    let (account, csrf) = match session {
        Some(s) => (accounts::get(&mut conn, &s.principal).await?, s.csrf_token),
        None => (None, String::new()),
    };
    let Some(account) = account.filter(|a| a.active) else {
        return Ok(super::message_page(
            StatusCode::UNAUTHORIZED,
            t,
            t.get("me.not_logged_in.heading"),
            t.get("me.not_logged_in"),
        ));
    };
    let school_name = schools::get(&mut conn, &account.school_code)
        .await?
        .map(|s| s.name)
        .unwrap_or_default();
    Ok(render(
        StatusCode::OK,
        &MePage {
            t,
            account,
            school_name,
            csrf,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::same_origin_path;

    #[test]
    fn only_same_origin_relay_states_are_honoured() {
        let base = "https://app.test";
        assert_eq!(
            same_origin_path(base, "/courses?x=1").as_deref(),
            Some("/courses?x=1")
        );
        assert_eq!(
            same_origin_path(base, "https://app.test/a").as_deref(),
            Some("/a")
        );
        for bad in [
            "//evil.test/",
            "/\\evil.test",
            "https://evil.test/",
            "https://app.test.evil.test/",
            "javascript:alert(1)",
            "relative",
            "/a\nb",
        ] {
            assert_eq!(same_origin_path(base, bad), None, "{bad}");
        }
    }
}
