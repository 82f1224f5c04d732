//! Admin login and logout. The login form's CSRF token is a double-submit
//! cookie (there is no session yet); a successful login always creates a new
//! session ID; failed attempts are throttled per address and per e-mail.

use super::{single_field, AdminForm, NoFields};
use crate::auth::{self, AdminLogin};
use crate::i18n::Tr;
use crate::store::sessions;
use crate::web::error::AppError;
use crate::web::{render, tr, AppState};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    t: Tr,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

fn login_cookie_name(st: &AppState) -> String {
    crate::web::session_cookie_name(&st.svc, crate::web::CookieName::LoginCsrf)
}

/// The login page; sets the double-submit cookie when it is missing.
pub async fn form(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let t = tr(&headers);
    let name = login_cookie_name(&st);
    let (token, fresh) = match crate::web::cookie(&headers, &name).filter(|c| c.len() >= 32) {
        Some(c) => (c, false),
        None => (sessions::random_token(), true),
    };
    let mut res = render(
        StatusCode::OK,
        &LoginPage {
            t,
            csrf: &token,
            email: "",
            error: None,
        },
    );
    if fresh {
        let cookie =
            crate::web::session_cookie(&st.svc, crate::web::CookieName::LoginCsrf, &token, 3600)
                .replace("SameSite=Lax", "SameSite=Strict");
        if let Ok(v) = cookie.parse() {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// The login form's fields (its CSRF token is checked against the cookie
/// before anything else is read).
#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(State(st): State<AppState>, req: Request) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    let t = tr(&parts.headers);
    let body: Bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| AppError::BadRequest("form too large".into()))?;
    let cookie = crate::web::cookie(&parts.headers, &login_cookie_name(&st)).unwrap_or_default();
    let given = single_field(&body, "csrf_token").unwrap_or_default();
    if cookie.len() < 32 || !crate::web::constant_time_eq(given.as_bytes(), cookie.as_bytes()) {
        return Err(AppError::Forbidden(t.get("admin.csrf").into()));
    }
    let form: LoginForm =
        serde_urlencoded::from_bytes(&body).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let email = form.email.trim().to_lowercase();
    let password = form.password;
    let ip = crate::web::client_ip(&parts.extensions).unwrap_or_else(|| "unknown".into());
    let again = |status, error| {
        render(
            status,
            &LoginPage {
                t,
                csrf: &cookie,
                email: &email,
                error: Some(t.get(error)),
            },
        )
    };
    let admin = match auth::admin_login(&st.svc.pool, &st.limits, &email, password, &ip).await? {
        AdminLogin::Throttled => {
            tracing::warn!("admin login throttled");
            return Ok(again(StatusCode::TOO_MANY_REQUESTS, "admin.throttled"));
        }
        AdminLogin::Refused => return Ok(again(StatusCode::UNAUTHORIZED, "admin.bad_login")),
        AdminLogin::Admitted(admin) => admin,
    };
    let mut conn = st.svc.pool.acquire().await?;
    // A new session ID at every login; whatever admin cookie came in (a
    // fixed one included) is dropped.
    let name = crate::web::session_cookie_name(&st.svc, crate::web::CookieName::AdminSession);
    if let Some(old) = crate::web::cookie(&parts.headers, &name) {
        sessions::delete(&mut conn, &old).await?;
    }
    let token = sessions::create(
        &mut conn,
        sessions::SessionKind::Admin,
        &admin.id.to_string(),
        super::ABSOLUTE_SECONDS,
    )
    .await?;
    crate::store::audit::record(
        &mut conn,
        &admin.email,
        "admin.login",
        None,
        None,
        None,
        None,
    )
    .await?;
    let cookie = crate::web::session_cookie(
        &st.svc,
        crate::web::CookieName::AdminSession,
        &token,
        super::ABSOLUTE_SECONDS,
    )
    .replace("SameSite=Lax", "SameSite=Strict");
    let mut res = (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/admin".to_string()),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response();
    // The admin's own language, when chosen before, over the browser's.
    if let Some(lang) = admin.lang {
        res.headers_mut()
            .append(header::SET_COOKIE, crate::web::lang_cookie(lang));
    }
    Ok(res)
}

pub async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    AdminForm { .. }: AdminForm<NoFields>,
) -> Result<Response, AppError> {
    let name = crate::web::session_cookie_name(&st.svc, crate::web::CookieName::AdminSession);
    if let Some(token) = crate::web::cookie(&headers, &name) {
        let mut conn = st.svc.pool.acquire().await?;
        sessions::delete(&mut conn, &token).await?;
    }
    let expired = crate::web::session_cookie(&st.svc, crate::web::CookieName::AdminSession, "", 0);
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/admin/login".to_string()),
            (header::SET_COOKIE, expired),
        ],
    )
        .into_response())
}
