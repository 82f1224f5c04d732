//! The failure detail page's quick ways to an account: the account search
//! (name, account ID, class, birth date, in the failure's school and the
//! admin's scope), each result linked in one click, and the one-click link
//! to the best candidate when it is clearly ahead. Both post the same
//! resolve as the candidates' buttons.

use crate::resolve::parse_date;
use crate::store::accounts::{self, Account, AccountSearch};
use crate::store::Scope;
use serde::Deserialize;
use sqlx::SqliteConnection;

/// One ranked candidate as shown.
pub struct CandidateView {
    pub account_id: String,
    pub name: String,
    pub birth_date: String,
    pub class_name: String,
    pub score: i32,
    pub reasons: Vec<String>,
    pub active: bool,
}

/// Results shown at most; one more is read to say there are more.
const SHOWN: usize = 20;

/// The search fields as the GET form sends them (with the page's other
/// query fields).
#[derive(Debug, Default, Deserialize)]
pub struct SearchFields {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub birth: String,
}

/// The search as the page shows it: the fields echoed, and results once
/// something was asked.
#[derive(Debug, Default)]
pub struct SearchView {
    pub name: String,
    pub account: String,
    pub class: String,
    pub birth: String,
    /// Whether anything was asked (results, or "no account matches").
    pub asked: bool,
    pub results: Vec<Account>,
    /// More than [`SHOWN`] matched.
    pub more: bool,
    /// A birth date was given that is no date: left out of the search.
    pub bad_date: bool,
}

fn given(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Runs the search when asked; `school` is the failure's school (none: the
/// admin's whole scope).
pub async fn run(
    conn: &mut SqliteConnection,
    scope: &Scope,
    school: Option<&str>,
    f: &SearchFields,
) -> Result<SearchView, sqlx::Error> {
    let birth_date = given(&f.birth).and_then(|b| parse_date(&b));
    let search = AccountSearch {
        name: given(&f.name),
        account_id: given(&f.account),
        class_name: given(&f.class),
        birth_date,
    };
    let mut view = SearchView {
        name: f.name.trim().to_string(),
        account: f.account.trim().to_string(),
        class: f.class.trim().to_string(),
        birth: f.birth.trim().to_string(),
        bad_date: given(&f.birth).is_some() && birth_date.is_none(),
        ..Default::default()
    };
    if search.is_empty() {
        view.asked = view.bad_date;
        return Ok(view);
    }
    let mut results = accounts::search(conn, scope, school, &search, SHOWN as i64 + 1).await?;
    view.more = results.len() > SHOWN;
    results.truncate(SHOWN);
    view.results = results;
    view.asked = true;
    Ok(view)
}

/// The clearly best candidate, as its one-click button says it.
pub struct LeadView {
    pub account_id: String,
    pub label: String,
}

impl LeadView {
    /// The first candidate when the scores put it clearly ahead (and it can
    /// be linked).
    pub(super) fn of(t: crate::i18n::Tr, candidates: &[CandidateView]) -> Option<LeadView> {
        let scores: Vec<i32> = candidates.iter().map(|c| c.score).collect();
        let top = candidates.first().filter(|c| c.active)?;
        crate::resolve::lead::clearly_ahead(&scores).then(|| LeadView {
            account_id: top.account_id.clone(),
            label: t
                .get("admin.lead.button")
                .replace("{name}", &top.name)
                .replace("{account}", &top.account_id),
        })
    }
}
