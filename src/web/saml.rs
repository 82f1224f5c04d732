//! The user side of SAML: our metadata, SP-initiated login, the ACS,
//! `/me`, and single logout (`POST /logout`, `GET|POST /saml/slo`).

use super::{render, tr, AppState};
use crate::flow::{self, Context, Outcome};
use crate::i18n::Tr;
use crate::resolve::FailureKind;
use crate::saml::logout::{self, Ask, Message, Refusal};
use crate::saml::Rejection;
use crate::store::{accounts, replay, schools, sessions};
use crate::web::error::AppError;
use askama::Template;
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
/// How long a LogoutRequest we sent may be answered.
const PENDING_LOGOUT_SECONDS: i64 = 10 * 60;
/// The cookie that binds an SP-initiated login to its browser (https only,
/// so it always carries the `__Host-` prefix).
const LOGIN_COOKIE: &str = "__Host-jointure_login";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/saml/metadata", get(metadata))
        .route("/saml/login", get(login))
        .route("/saml/acs", post(acs))
        .route("/me", get(me))
        .route("/logout", post(logout_form))
        .route("/logged-out", get(logged_out))
        .route("/saml/slo", get(slo_redirect).post(slo_post))
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

async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let t = tr(&headers);
    let Some(idp) = st.svc.verifier.idp(&q.idp) else {
        return Ok(super::message_page(
            StatusCode::NOT_FOUND,
            t,
            t.get("failure.heading"),
            t.get("login.unknown_idp"),
        ));
    };
    if idp.meta.sso_redirect.is_none() {
        return Ok(super::message_page(
            StatusCode::BAD_REQUEST,
            t,
            t.get("failure.heading"),
            t.get("login.no_redirect"),
        ));
    }
    let relay = q
        .relay
        .as_deref()
        .and_then(|r| same_origin_path(&st.svc.config.public_url, r));
    let id = crate::saml::new_request_id();
    let now = chrono::Utc::now().timestamp();
    // Login CSRF: over https the answer must come back to this browser,
    // which carries the token of a cross-site cookie (SameSite=None, so it
    // rides on the IdP's POST). Over plain http no such cookie can be set,
    // and the binding is off (said at start-up).
    let browser_token = st.svc.config.is_https().then(|| {
        super::cookie(&headers, LOGIN_COOKIE)
            .filter(|t| {
                t.len() == 43
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .unwrap_or_else(sessions::random_token)
    });
    {
        let pending = replay::Pending {
            idp_entity_id: idp.meta.entity_id.clone(),
            relay_state: relay.clone(),
            browser_hash: browser_token.as_deref().map(sessions::hash_token),
        };
        let ip = super::client_ip(&extensions);
        let mut tx = crate::store::begin_write(&st.svc.pool).await?;
        let added = replay::add_pending(
            &mut tx,
            &id,
            &pending,
            ip.as_deref(),
            now,
            now + PENDING_REQUEST_SECONDS,
        )
        .await?;
        tx.commit().await?;
        if !added {
            return Ok(super::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                t,
                t.get("failure.heading"),
                t.get("login.busy"),
            ));
        }
    }
    // The RelayState sent to the IdP is an opaque handle; the path itself
    // stays server-side with the request.
    let url = crate::saml::authn_redirect(&st.svc.verifier, &idp, &st.svc.sp_keys.key, &id, &id)
        .map_err(AppError::Internal)?;
    let mut res = Redirect::to(url.as_str()).into_response();
    if let Some(token) = browser_token {
        let cookie = format!(
            "{LOGIN_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=None; Max-Age={PENDING_REQUEST_SECONDS}"
        );
        if let Ok(v) = header::HeaderValue::from_str(&cookie) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

/// The ACS: reads the POST under the size limit, runs the flow, and either
/// opens a session and redirects, or shows the failure page.
async fn acs(State(st): State<AppState>, req: Request) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    let t = tr(&parts.headers);
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
    let limit = st.svc.config.max_body_bytes;
    let outcome = match axum::body::to_bytes(body, limit).await {
        Err(_) => {
            let rej = Rejection::new(
                FailureKind::MalformedRequest,
                format!("POST body over the size limit of {limit} bytes"),
            );
            flow::record_rejection(&st.svc, rej, None, &ctx).await?
        }
        Ok(bytes) => {
            let mut saml = Vec::new();
            for (k, v) in url::form_urlencoded::parse(&bytes) {
                match k.as_ref() {
                    "SAMLResponse" => saml.push(v.into_owned()),
                    "RelayState" => ctx.relay_state = Some(v.into_owned()),
                    _ => {}
                }
            }
            match saml.as_slice() {
                [one] => flow::process_encoded(&st.svc, one, &ctx).await?,
                other => {
                    let why = if other.is_empty() {
                        "no SAMLResponse field in the POST"
                    } else {
                        "several SAMLResponse fields in the POST"
                    };
                    let raw = String::from_utf8_lossy(&bytes).into_owned();
                    flow::record_rejection(
                        &st.svc,
                        Rejection::new(FailureKind::MalformedRequest, why),
                        Some(raw),
                        &ctx,
                    )
                    .await?
                }
            }
        }
    };
    match outcome {
        Outcome::Resolved {
            account_id,
            relay_state,
            idp_entity_id,
            name_id,
            name_id_format,
            session,
        } => {
            // The session never outlives the IdP's SessionNotOnOrAfter.
            let mut ttl = USER_SESSION_SECONDS;
            if let Some(end) = session.not_on_or_after {
                let left = (end - chrono::Utc::now()).num_seconds();
                if left <= 0 {
                    tracing::info!("login verified, but its IdP session had already ended (SessionNotOnOrAfter): no session");
                    return Ok(super::message_page(
                        StatusCode::FORBIDDEN,
                        t,
                        t.get("failure.heading"),
                        t.get("login.session_ended"),
                    ));
                }
                ttl = ttl.min(left);
            }
            let idp_session = sessions::IdpSession {
                idp_entity_id,
                name_id,
                name_id_format,
                name_qualifier: session.name_qualifier,
                sp_name_qualifier: session.sp_name_qualifier,
                session_index: session.session_index,
            };
            let name = super::session_cookie_name(&st.svc, crate::web::CookieName::UserSession);
            let mut tx = crate::store::begin_write(&st.svc.pool).await?;
            // A new session ID at every login: the browser's previous one
            // (another person's, on a shared computer) ends here.
            if let Some(old) = super::cookie(&parts.headers, &name) {
                sessions::delete(&mut tx, &old).await?;
            }
            let token = sessions::create_user(&mut tx, &account_id, &idp_session, ttl).await?;
            tx.commit().await?;
            let target = relay_state
                .as_deref()
                .and_then(|r| same_origin_path(&st.svc.config.public_url, r))
                .unwrap_or_else(|| "/me".into());
            let cookie =
                super::session_cookie(&st.svc, crate::web::CookieName::UserSession, &token, ttl);
            Ok((
                StatusCode::SEE_OTHER,
                [(header::LOCATION, target), (header::SET_COOKIE, cookie)],
            )
                .into_response())
        }
        // Post/redirect/get: the failure page is a GET of its own, so a
        // reload shows it again instead of re-posting the login (which
        // would be a replay). It answers with the kind's status while open.
        Outcome::Failed { reference, .. } => Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/failures/{reference}"))],
        )
            .into_response()),
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

/// Our SingleLogoutService URL, as the IdPs know it from our metadata.
fn slo_url(st: &AppState) -> String {
    crate::saml::metadata::slo_url_beside(&st.svc.config.acs_url())
}

/// A 303 to `target`, expiring the user session cookie when asked.
fn see_other(target: &str, set_cookie: Option<String>) -> Response {
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response();
    if let Some(v) = set_cookie.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `POST /logout` (field `csrf_token`): ends the local session, expires
/// the cookie, then, when the session's IdP has an HTTP-Redirect
/// SingleLogoutService, sends the browser there with our signed
/// LogoutRequest (its ID kept to match the answer); otherwise to the
/// "logged out" page. A wrong or missing token (or one given twice) is 403
/// and the session stays.
async fn logout_form(State(st): State<AppState>, req: Request) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    let t = tr(&parts.headers);
    let body = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| AppError::BadRequest(t.get("logout.csrf").into()))?;
    let kind = crate::web::CookieName::UserSession;
    let expired = Some(super::session_cookie(&st.svc, kind, "", 0));
    let Some(token) = super::cookie(&parts.headers, &super::session_cookie_name(&st.svc, kind))
    else {
        return Ok(see_other("/logged-out", expired));
    };
    let mut tx = crate::store::begin_write(&st.svc.pool).await?;
    let Some(session) = sessions::get(&mut tx, sessions::SessionKind::User, &token).await? else {
        return Ok(see_other("/logged-out", expired));
    };
    let given = super::admin::single_field(&body, "csrf_token");
    if !given.is_some_and(|g| super::constant_time_eq(g.as_bytes(), session.csrf_token.as_bytes()))
    {
        return Err(AppError::Forbidden(t.get("logout.csrf").into()));
    }
    let idp_session = sessions::idp_session(&mut tx, &token).await?;
    sessions::delete(&mut tx, &token).await?;
    let target = match idp_session {
        Some(s) => logout_request_to_idp(&st, &mut tx, &s).await?,
        None => None,
    };
    tx.commit().await?;
    Ok(see_other(
        target.as_deref().unwrap_or("/logged-out"),
        expired,
    ))
}

/// The signed LogoutRequest URL for an IdP session, with its ID kept as
/// pending; None when the IdP has no HTTP-Redirect SingleLogoutService or
/// the session no NameID (then the logout is local only). A signing
/// failure is logged and the logout stays local: the session is gone
/// whatever happens.
async fn logout_request_to_idp(
    st: &AppState,
    conn: &mut sqlx::SqliteConnection,
    s: &sessions::IdpSession,
) -> Result<Option<String>, AppError> {
    let Some(idp) = st.svc.verifier.idp(&s.idp_entity_id) else {
        return Ok(None);
    };
    let (Some(slo), Some(value)) = (&idp.meta.slo_redirect, &s.name_id) else {
        return Ok(None);
    };
    let id = crate::saml::new_request_id();
    let now = chrono::Utc::now();
    let name_id = logout::NameId {
        value,
        format: s.name_id_format.as_deref(),
        name_qualifier: s.name_qualifier.as_deref(),
        sp_name_qualifier: s.sp_name_qualifier.as_deref(),
    };
    let xml = logout::logout_request_xml(
        &id,
        &st.svc.verifier.sp_entity_id,
        &slo.location,
        &name_id,
        s.session_index.as_deref(),
        now,
    );
    match logout::signed_redirect(
        &slo.location,
        "SAMLRequest",
        &xml,
        None,
        &st.svc.sp_keys.key,
    ) {
        Ok(url) => {
            let now = now.timestamp();
            sessions::add_pending_logout(
                conn,
                &id,
                &s.idp_entity_id,
                now,
                now + PENDING_LOGOUT_SECONDS,
            )
            .await?;
            Ok(Some(url))
        }
        Err(e) => {
            tracing::error!(error = %e, "single logout: the LogoutRequest could not be signed; local logout only");
            Ok(None)
        }
    }
}

/// `GET /logged-out`: the page a logout ends on.
async fn logged_out(headers: HeaderMap) -> Response {
    logged_out_page(tr(&headers), "logout.text")
}

/// "You are logged out", with the sentence `text` (a catalogue key).
fn logged_out_page(t: Tr, text: &str) -> Response {
    super::message_page(StatusCode::OK, t, t.get("logout.heading"), t.get(text))
}

/// `GET /saml/slo`: the HTTP-Redirect binding, read from the raw query.
async fn slo_redirect(
    State(st): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, AppError> {
    let incoming = logout::from_query(uri.query().unwrap_or(""));
    slo(&st, tr(&headers), incoming).await
}

/// `POST /saml/slo`: the HTTP-POST binding, the body read under its bound.
async fn slo_post(State(st): State<AppState>, req: Request) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    let incoming = match axum::body::to_bytes(body, logout::MAX_BODY_BYTES).await {
        Ok(bytes) => logout::from_form(&bytes),
        Err(_) => Err(Refusal::TooLarge(format!(
            "a POST body over {} bytes",
            logout::MAX_BODY_BYTES
        ))),
    };
    slo(&st, tr(&parts.headers), incoming).await
}

/// A refused logout message: a 4xx page, the reason in the log (it names
/// no person), nothing answered to the IdP, no session touched.
fn slo_refused(t: Tr, r: &Refusal) -> Response {
    let status = match r {
        Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Unverifiable(_) => StatusCode::BAD_REQUEST,
        Refusal::Stale(_) => StatusCode::FORBIDDEN,
    };
    tracing::warn!(reason = %r.reason(), status = status.as_u16(), "logout message refused");
    super::message_page(
        status,
        t,
        t.get("logout.refused.heading"),
        t.get("logout.refused"),
    )
}

/// The SingleLogoutService: verifies the message off the async threads,
/// then acts on it.
async fn slo(
    st: &AppState,
    t: Tr,
    incoming: Result<logout::Incoming, Refusal>,
) -> Result<Response, AppError> {
    let incoming = match incoming {
        Ok(i) => i,
        Err(r) => return Ok(slo_refused(t, &r)),
    };
    let verifier = st.svc.verifier.clone();
    let (slo_url, skew) = (slo_url(st), st.svc.config.clock_skew_seconds);
    let verified = tokio::task::spawn_blocking(move || {
        logout::verify(&incoming, &verifier, &slo_url, skew, chrono::Utc::now())
    })
    .await
    .map_err(|e| AppError::Internal(format!("logout verification task failed: {e}")))?;
    match verified {
        Err(r) => Ok(slo_refused(t, &r)),
        Ok(Message::Request(req)) => idp_logout(st, t, req).await,
        Ok(Message::Response(res)) => logout_answered(st, t, res).await,
    }
}

/// An IdP's verified LogoutRequest: its ID into the replay cache, every
/// session of that person at that IdP (only those of the SessionIndexes
/// given, if any) ended, and our signed LogoutResponse sent back through
/// the browser.
async fn idp_logout(
    st: &AppState,
    t: Tr,
    req: logout::LogoutRequest,
) -> Result<Response, AppError> {
    let Some(idp) = st.svc.verifier.idp(&req.issuer) else {
        return Ok(slo_refused(
            t,
            &Refusal::Unverifiable("the IdP is no longer configured".into()),
        ));
    };
    let mut tx = crate::store::begin_write(&st.svc.pool).await?;
    if !replay::remember_assertion(&mut tx, &req.issuer, &req.id, req.replay_until.timestamp())
        .await?
    {
        return Ok(slo_refused(
            t,
            &Refusal::Stale("the LogoutRequest was already received (replay)".into()),
        ));
    }
    let status = match &req.ask {
        Ask::Logout {
            name_id,
            session_indexes,
        } => {
            let ended =
                sessions::end_idp_sessions(&mut tx, &req.issuer, name_id, session_indexes).await?;
            tracing::info!(ended, "single logout requested by the IdP");
            logout::Status::SUCCESS
        }
        Ask::Refuse { status, reason } => {
            tracing::warn!(%reason, "an IdP's LogoutRequest cannot be done; answered so");
            *status
        }
    };
    let Some(slo) = &idp.meta.slo_redirect else {
        tx.commit().await?;
        tracing::warn!(
            "the IdP has no HTTP-Redirect SingleLogoutService: its LogoutRequest is not answered"
        );
        return Ok(logged_out_page(t, "logout.text"));
    };
    let xml = logout::logout_response_xml(
        &crate::saml::new_request_id(),
        &st.svc.verifier.sp_entity_id,
        &slo.response_location,
        &req.id,
        status,
        chrono::Utc::now(),
    );
    let signed = logout::signed_redirect(
        &slo.response_location,
        "SAMLResponse",
        &xml,
        req.relay_state.as_deref(),
        &st.svc.sp_keys.key,
    );
    // The sessions end whatever happens to the answer.
    tx.commit().await?;
    match signed {
        Ok(url) => Ok(see_other(&url, None)),
        Err(e) => {
            tracing::error!(error = %e, "single logout: the LogoutResponse could not be signed; not answered");
            Ok(logged_out_page(t, "logout.text"))
        }
    }
}

/// The IdP's verified LogoutResponse to ours: it must answer a pending
/// LogoutRequest we sent to that IdP (consumed now, so a replay is
/// refused). The local session ended before we sent it; a non-Success
/// status only means the IdP may still be logged in.
async fn logout_answered(
    st: &AppState,
    t: Tr,
    res: logout::LogoutResponse,
) -> Result<Response, AppError> {
    let Some(irt) = res.in_response_to.as_deref() else {
        return Ok(slo_refused(
            t,
            &Refusal::Stale("a LogoutResponse without InResponseTo".into()),
        ));
    };
    let mut tx = crate::store::begin_write(&st.svc.pool).await?;
    let now = chrono::Utc::now().timestamp();
    if !sessions::take_pending_logout(&mut tx, irt, &res.issuer, now).await? {
        return Ok(slo_refused(
            t,
            &Refusal::Stale(
                "the LogoutResponse answers no pending LogoutRequest of ours to this IdP (unknown, answered already, or expired)".into(),
            ),
        ));
    }
    tx.commit().await?;
    if res.success {
        return Ok(logged_out_page(t, "logout.text"));
    }
    tracing::warn!(status = %res.status, "the IdP did not confirm single logout");
    Ok(logged_out_page(t, "logout.partial"))
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
