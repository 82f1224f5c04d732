//! Logout: the user's logout button (and SP-initiated single logout), and
//! the SingleLogoutService where IdPs send their LogoutRequests and their
//! answers to ours (`crate::saml::logout` reads, verifies and builds the
//! messages).

use super::{tr, AppState};
use crate::i18n::Tr;
use crate::saml::logout::{self, Ask, Message, Refusal};
use crate::store::{replay, sessions};
use crate::web::error::AppError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// How long a LogoutRequest we sent may be answered.
const PENDING_LOGOUT_SECONDS: i64 = 10 * 60;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logout", post(logout_form))
        .route("/logged-out", get(logged_out))
        .route("/saml/slo", get(slo_redirect).post(slo_post))
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
    let mut tx = st.svc.begin_write().await?;
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
    let mut tx = st.svc.begin_write().await?;
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
    let mut tx = st.svc.begin_write().await?;
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
