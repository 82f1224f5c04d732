//! The demo IdP's pages (routed only under `serve --demo`): a list of demo
//! people and scenarios, each posting a freshly signed response to the ACS.
//! It also answers SP-initiated logins: the AuthnRequest's ID comes back as
//! InResponseTo.

use super::{render, tr, AppState};
use crate::i18n::Tr;
use crate::web::error::AppError;
use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::io::Read;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo/idp", get(page))
        .route("/demo/idp/send", post(send))
}

#[derive(Template)]
#[template(path = "demo_idp.html")]
struct DemoPage<'a> {
    t: Tr,
    scenarios: &'a [crate::demo::Scenario],
    in_response_to: Option<String>,
    relay_state: Option<String>,
    admin_email: Option<&'a str>,
}

#[derive(Deserialize)]
struct SsoQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// The ID of a deflated, base64 AuthnRequest (HTTP-Redirect binding).
fn authn_request_id(encoded: &str) -> Option<String> {
    use base64::Engine;
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..])
        .take(64 * 1024)
        .read_to_string(&mut xml)
        .ok()?;
    crate::saml::xml::check_message_text(&xml).ok()?;
    let doc = crate::saml::xml::parse_strict(&xml).ok()?;
    doc.root_element().attribute("ID").map(str::to_string)
}

async fn page(
    State(_st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SsoQuery>,
) -> Response {
    let in_response_to = q.saml_request.as_deref().and_then(authn_request_id);
    render(
        StatusCode::OK,
        &DemoPage {
            t: tr(&headers),
            scenarios: crate::demo::SCENARIOS,
            in_response_to,
            relay_state: q.relay_state,
            admin_email: Some(crate::demo::ADMIN_EMAIL),
        },
    )
}

#[derive(Deserialize)]
struct SendForm {
    scenario: String,
    in_response_to: Option<String>,
    relay_state: Option<String>,
}

#[derive(Template)]
#[template(path = "autopost.html")]
struct AutoPost {
    t: Tr,
    acs: String,
    saml_response: String,
    relay_state: Option<String>,
}

async fn send(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SendForm>,
) -> Result<Response, AppError> {
    let demo = st.demo.as_ref().ok_or(AppError::NotFound)?;
    let xml = demo
        .mint(
            &st.svc,
            &f.scenario,
            f.in_response_to.filter(|s| !s.is_empty()),
        )
        .await
        .map_err(AppError::BadRequest)?;
    Ok(render(
        StatusCode::OK,
        &AutoPost {
            t: tr(&headers),
            acs: st.svc.config.acs_url(),
            saml_response: crate::saml::mint::to_base64(&xml),
            relay_state: f.relay_state.filter(|s| !s.is_empty()),
        },
    ))
}
