//! The failures list: filters kept in the URL, keyset pagination.

use super::{AdminSession, Chrome};
use crate::resolve::{parse_date, FailureKind, FailureStatus};
use crate::store::failures::{self, Cursor, Failure, Filter};
use crate::store::schools;
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub school: Option<String>,
    pub idp: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The filters as a query string, for links that keep them.
    pub fn query_string(&self, cursor: Option<&str>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &self.status),
            ("kind", &self.kind),
            ("school", &self.school),
            ("idp", &self.idp),
            ("q", &self.q),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                s.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            s.append_pair("cursor", c);
        }
        s.finish()
    }

    pub fn filter(&self) -> Filter {
        let date = |d: &Option<String>| {
            d.clone()
                .filter(|d| parse_date(d).is_some() && d.len() == 10 && d.as_bytes()[4] == b'-')
        };
        Filter {
            status: self.status.as_deref().and_then(FailureStatus::parse),
            kind: self
                .kind
                .clone()
                .filter(|k| k.parse::<FailureKind>().is_ok()),
            school: self.school.clone(),
            idp: self.idp.clone(),
            text: self.q.clone(),
            from: date(&self.from),
            to: date(&self.to),
        }
    }

    pub fn is(&self, field: &str, value: &str) -> bool {
        let v = match field {
            "status" => &self.status,
            "kind" => &self.kind,
            "school" => &self.school,
            _ => &self.idp,
        };
        v.as_deref() == Some(value)
    }

    pub fn value(&self, field: &str) -> &str {
        match field {
            "q" => self.q.as_deref(),
            "from" => self.from.as_deref(),
            "to" => self.to.as_deref(),
            _ => None,
        }
        .unwrap_or("")
    }
}

#[derive(Template)]
#[template(path = "admin/failures.html")]
struct ListPage<'a> {
    chrome: Chrome<'a>,
    q: &'a ListQuery,
    items: Vec<Failure>,
    next: Option<String>,
    kinds: Vec<&'static str>,
    school_codes: Vec<String>,
    idps: Vec<String>,
}

pub async fn list(
    State(st): State<AppState>,
    s: AdminSession,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let scope = s.scope();
    let mut conn = st.svc.pool.acquire().await?;
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let (items, next) = failures::list(&mut conn, &scope, &q.filter(), cursor.as_ref(), 50).await?;
    let school_codes = schools::list(&mut conn, &scope, None)
        .await?
        .into_iter()
        .map(|s| s.code)
        .collect();
    let mut idps: Vec<String> = st
        .svc
        .verifier
        .idps()
        .into_iter()
        .map(|i| i.meta.entity_id.clone())
        .collect();
    idps.sort();
    let next = next.map(|c| q.query_string(Some(&c.encode())));
    Ok(render(
        StatusCode::OK,
        &ListPage {
            chrome: Chrome::of(&s, "failures"),
            q: &q,
            items,
            next,
            kinds: FailureKind::ALL.iter().map(|k| k.as_str()).collect(),
            school_codes,
            idps,
        },
    ))
}
