//! The desk's language switch: remembered with the admin (a school's
//! shared computer shows each admin their own language after login) and in
//! the browser's `lang` cookie.

use super::AdminForm;
use crate::i18n::Lang;
use crate::store::admins;
use crate::web::error::AppError;
use crate::web::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    back: String,
}

/// Where to go back after the switch: a desk page of ours, without a
/// `lang=` of its own (it would undo the choice); else the dashboard.
pub fn back_to(given: &str) -> String {
    let Ok(url) = url::Url::parse("https://desk.invalid").and_then(|b| b.join(given)) else {
        return "/admin".into();
    };
    let ours = url.host_str() == Some("desk.invalid")
        && given.starts_with("/admin")
        && !given.starts_with("//")
        && !given.contains('\\');
    if !ours {
        return "/admin".into();
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "lang")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut to = url.path().to_string();
    if !kept.is_empty() {
        to.push('?');
        to.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(kept)
                .finish(),
        );
    }
    to
}

pub async fn switch(
    State(st): State<AppState>,
    AdminForm { session, form }: AdminForm<LanguageForm>,
) -> Result<Response, AppError> {
    let Some(lang) = Lang::from_code(form.lang.trim()) else {
        return Err(AppError::BadRequest(
            session.t.get("admin.language.unknown").into(),
        ));
    };
    let mut conn = st.svc.pool.acquire().await?;
    admins::set_lang(&mut conn, session.admin.id, lang).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (
                header::LOCATION,
                back_to(&form.back)
                    .parse()
                    .map_err(|_| AppError::NotFound)?,
            ),
            (header::SET_COOKIE, crate::web::lang_cookie(lang)),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::back_to;

    #[test]
    fn the_switch_goes_back_to_a_desk_page_without_its_language() {
        assert_eq!(
            back_to("/admin/failures?status=open&lang=fr"),
            "/admin/failures?status=open"
        );
        assert_eq!(
            back_to("/admin/failures/abc?lang=nl"),
            "/admin/failures/abc"
        );
        assert_eq!(back_to("/admin"), "/admin");
        assert_eq!(back_to("//evil.example/admin"), "/admin");
        assert_eq!(back_to("https://evil.example/admin"), "/admin");
        assert_eq!(back_to("/failures/xyz"), "/admin");
        assert_eq!(back_to("/admin\\@evil"), "/admin");
        assert_eq!(back_to(""), "/admin");
    }
}
