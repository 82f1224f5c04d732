//! The list's read: filters, the orders the desk offers, row-value keyset
//! pages in both directions, and the counts shown above the list.
//!
//! Each order is a key ending in `id` (unique), walked in one direction, with
//! an index of the same columns (migration 0009): a page is an index range
//! from the cursor, `(a, b, id) < (?, ?, ?)`, so any depth costs the same.
//! The previous page is the same range the other way, reversed.
//! List rows never read the raw response nor the stored attributes: pages
//! and exports show neither, and they are the biggest columns.

mod order;

pub use order::{Cursor, Sort};
use order::{KeyType, KeyValue};

use super::{from_row, Failure};
use crate::resolve::FailureStatus;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// The admin list's filters; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<FailureStatus>,
    pub kind: Option<String>,
    pub school: Option<String>,
    pub idp: Option<String>,
    /// Searched in support code, reference, subject, asserted names, report.
    pub text: Option<String>,
    /// `YYYY-MM-DD`, inclusive, on last seen.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, inclusive, on last seen.
    pub to: Option<String>,
    /// Only failures whose user sent the failure form.
    pub form_sent: bool,
    /// Leaves out attempts whose signature was never verified (the desk
    /// hides that noise by default; exports and the API keep it).
    pub verified_only: bool,
}

/// Which page to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub sort: Sort,
    /// Ignored when it was taken in another order (the first page is read).
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

/// A page of the list and the cursors of its neighbours.
#[derive(Debug)]
pub struct ListPage {
    /// No raw response (`None`) nor attributes (`"{}"`): read one failure
    /// with `by_reference_in` for those.
    pub items: Vec<Failure>,
    pub next: Option<Cursor>,
    pub prev: Option<Cursor>,
}

/// The columns a list row carries: every stored one but the big ones.
const LIST_COLUMNS: &str =
    "id, reference, support_code, kind, status, idp_entity_id, school_code, subject, detail,
    '{}' AS asserted_json, asserted_verified, asserted_last_name, asserted_first_name,
    asserted_birth_date, asserted_role, asserted_class_name, NULL AS raw_response, first_seen,
    last_seen, count, report_json, resolved_account_id, resolved_by, resolved_at";

/// Pushes the scope and the filter's conditions (after a `WHERE 1=1`).
/// `walk`: the page walks its order's index; with one school fixed (the
/// filter, or a one-school scope), the school's index is the one to walk
/// (its rows are the fewest), so the status is written `+status`, which no
/// index serves. Not walking, a search by words is read from its matches
/// in the full-text index (by rowid): every other condition is then
/// written `+column`, so that no index of `failures` is taken instead.
fn push_filter<'q>(
    q: &mut QueryBuilder<'q, Sqlite>,
    scope: &'q crate::store::Scope,
    f: &'q Filter,
    walk: bool,
) {
    let searched = search(f);
    let by_words = !walk && matches!(searched, Search::Text { words: Some(_), .. });
    let plus = |col: &str| {
        if by_words {
            format!("+{col}")
        } else {
            col.to_string()
        }
    };
    scope.push_condition(q, &plus("school_code"));
    let one_school = f.school.as_deref().is_some_and(|s| !s.is_empty())
        || matches!(scope, crate::store::Scope::Schools(s) if s.len() == 1);
    for (col, v) in equalities(f) {
        let Some(v) = v else { continue };
        let col = if col == "status" && walk && one_school {
            "+status".to_string()
        } else {
            plus(col)
        };
        q.push(format_args!(" AND {col} = ")).push_bind(v);
    }
    match searched {
        Search::Nothing => {}
        Search::Code(code) => {
            // A support code, whole or its beginning (read over the phone):
            // a range of its unique index, not a scan of every failure.
            q.push(" AND support_code >= ")
                .push_bind(code.clone())
                .push(" AND support_code < ")
                .push_bind(format!("{code}\u{10FFFF}"));
        }
        Search::Text { text, words } => {
            // A reference exactly (pasted from a log), or words of a name,
            // an e-mail address, a NameID, the form's message: each word the
            // beginning of one of the failure's words (migration 0017).
            // Walking an order's index, the words only filter what is
            // walked (`+`: no index serves them); otherwise the planner
            // reads the matches by rowid and sorts them.
            let filter_only = if walk { "+" } else { "" };
            q.push(format_args!(" AND ({filter_only}reference = "))
                .push_bind(text);
            // The words' matches are taken within the scope and the
            // filter's tags: the fewest rowids to read.
            if let Some(m) = words.and_then(|w| tagged(scope, f, w)) {
                q.push(format_args!(
                    " OR {filter_only}id IN (SELECT rowid FROM failure_words WHERE failure_words MATCH "
                ))
                .push_bind(m)
                .push(")");
            }
            q.push(")");
        }
    }
    if let Some(d) = f.from.as_ref().filter(|d| !d.is_empty()) {
        q.push(" AND last_seen >= ")
            .push_bind(format!("{d}T00:00:00Z"));
    }
    if let Some(d) = f.to.as_ref().filter(|d| !d.is_empty()) {
        q.push(" AND last_seen <= ")
            .push_bind(format!("{d}T23:59:59Z"));
    }
    if f.form_sent {
        q.push(" AND report_json IS NOT NULL");
    }
}

/// `JNT-…` (any case, up to the code's length): the support code prefix
/// searched, upper case. Anything else is searched as text.
fn support_code_prefix(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix("JNT-")?;
    (rest.len() <= 6 && rest.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(upper)
}

/// What a filter's text searches, read once for every query of the list.
enum Search<'a> {
    /// No text.
    Nothing,
    /// A support code or its beginning (`support_code_prefix`).
    Code(String),
    /// A reference exactly, or words (`words_query`; `None` when the text
    /// has none, punctuation alone).
    Text {
        text: &'a str,
        words: Option<String>,
    },
}

fn search(f: &Filter) -> Search<'_> {
    match f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Search::Nothing,
        Some(t) => match support_code_prefix(t) {
            Some(code) => Search::Code(code),
            None => Search::Text {
                text: t,
                words: words_query(t),
            },
        },
    }
}

/// The filter's equality conditions on stored columns, each with its
/// value when given: the list's rows and the totals' counters (0018) have
/// the same columns.
fn equalities(f: &Filter) -> [(&'static str, Option<&str>); 4] {
    [
        ("status", f.status.map(|s| s.as_str())),
        ("kind", f.kind.as_deref()),
        ("school_code", f.school.as_deref()),
        ("idp_entity_id", f.idp.as_deref()),
    ]
    .map(|(col, v)| (col, v.filter(|v| !v.is_empty())))
}

/// Words searched at most: more say nothing more about whom is searched.
const MAX_WORDS: usize = 8;

/// The full-text query for a searched text: its words (split where a
/// character is neither a letter, a digit nor an accent), each one quoted
/// (a word holds no `"`, so nothing in it is read as query syntax) and
/// searched as a prefix, all of them required. `None` when it has no word.
/// Case and accents are folded by the index's tokenizer, on both sides.
fn words_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| {
            !(c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c))
        })
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| format!("words : ({})", words.join(" ")))
}

/// A tag as the index stores it (migration 0017, `failure_words_source`):
/// a prefix and the value's letters and digits, quoted.
fn tag(prefix: &str, value: &str) -> String {
    let v: String = value.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("\"{prefix}{v}\"")
}

/// The full-text query of a search within the scope and the filter's
/// school, status, kind and form, as tags beside the words (when
/// the filter also names an IdP or dates, which no tag says, the query
/// matches a superset); `None` when nothing can match (an empty scope).
fn tagged(scope: &crate::store::Scope, f: &Filter, words: String) -> Option<String> {
    let mut m = words;
    if let crate::store::Scope::Schools(codes) = scope {
        if codes.is_empty() {
            return None;
        }
        let any: Vec<String> = codes.iter().map(|c| tag("sch", c)).collect();
        m.push_str(&format!(" AND tags : ({})", any.join(" OR ")));
    }
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|v| !v.trim().is_empty())
    }
    if let Some(school) = given(&f.school) {
        m.push_str(&format!(" AND tags : ({})", tag("sch", school)));
    }
    if let Some(status) = f.status {
        m.push_str(&format!(" AND tags : ({})", tag("st", status.as_str())));
    }
    if let Some(kind) = given(&f.kind) {
        m.push_str(&format!(" AND tags : ({})", tag("k", kind)));
    }
    if f.form_sent {
        m.push_str(" AND tags : (\"formsent\")");
    }
    Some(m)
}

/// Failures matching a full-text query, counted up to `limit`.
async fn count_matches(
    conn: &mut SqliteConnection,
    query: &str,
    limit: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM failure_words WHERE failure_words MATCH ? LIMIT ?)",
    )
    .bind(query)
    .bind(limit)
    .fetch_one(&mut *conn)
    .await
}

/// The page's query, `prefix` before it (`EXPLAIN QUERY PLAN` in a test).
/// Returns whether it reads backwards (its rows then come reversed).
fn page_query<'q>(
    prefix: &str,
    scope: &'q crate::store::Scope,
    f: &'q Filter,
    page: &'q PageRequest,
    read: Read,
) -> (QueryBuilder<'q, Sqlite>, bool) {
    let sort = page.sort;
    let mut keys = sort.keys().to_vec();
    // In a school scope no row lacks a school, and the bare column lets the
    // scope's `school_code IN (…)` walk its index in order.
    if sort == Sort::School && *scope != crate::store::Scope::All {
        keys[0].0 = "school_code";
    }
    let mut q = QueryBuilder::<Sqlite>::new(format!("{prefix}SELECT {LIST_COLUMNS}"));
    for (i, (expr, _)) in keys.iter().enumerate() {
        q.push(format_args!(", {expr} AS k{i}"));
    }
    q.push(" FROM failures WHERE 1=1");
    push_filter(&mut q, scope, f, read == Read::Walk);
    if f.verified_only {
        q.push(" AND asserted_verified = 1");
    }
    let cursor = page.cursor.as_ref().filter(|c| c.sort == sort);
    let back = cursor.is_some_and(|c| c.back);
    // Down the key when the order is descending and we read forwards, or
    // ascending and we read backwards.
    let down = sort.descending() != back;
    if let Some(c) = cursor {
        let names: Vec<&str> = keys.iter().map(|(e, _)| *e).collect();
        q.push(format_args!(" AND ({}) ", names.join(", ")));
        q.push(if down { "< (" } else { "> (" });
        let mut values = q.separated(", ");
        for v in &c.key {
            match v {
                KeyValue::Int(i) => values.push_bind(*i),
                KeyValue::Text(t) => values.push_bind(t.as_str()),
            };
        }
        q.push(")");
    }
    let dir = if down { "DESC" } else { "ASC" };
    // `+`: the key is no index's order, so the planner filters by its
    // narrowest index and sorts what matches.
    let plus = if read == Read::Sorted { "+" } else { "" };
    let order: Vec<String> = keys
        .iter()
        .map(|(e, _)| format!("{plus}{e} {dir}"))
        .collect();
    q.push(format_args!(" ORDER BY {} LIMIT ", order.join(", ")))
        .push_bind(page.limit + 1);
    (q, back)
}

/// How a page is read. In the order's index (`Walk`), a page costs the
/// rows walked to find it: nothing when matches are dense, the whole index
/// when they are rare (a school with no open failure of a kind). Sorted
/// (`Sorted`), it costs the matches: cheap when they are few.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Read {
    Walk,
    Sorted,
}

/// Matches below which a page is sorted rather than walked.
const SORT_BELOW: i64 = 2000;

/// Which way to read: the open failures' counters (migration 0011) tell
/// how many open failures match a status, kind, school and form filter,
/// without reading them; other filters walk (their matches are the old,
/// plentiful rows).
async fn read_for(
    conn: &mut SqliteConnection,
    scope: &crate::store::Scope,
    f: &Filter,
) -> Result<Read, sqlx::Error> {
    let searched = search(f);
    if let Search::Text {
        words: Some(words), ..
    } = searched
    {
        // The failures with these words (in scope, with the filter's tags),
        // counted up to the threshold in the full-text index.
        let Some(m) = tagged(scope, f, words) else {
            return Ok(Read::Sorted);
        };
        let n = count_matches(conn, &m, SORT_BELOW).await?;
        return Ok(if n < SORT_BELOW {
            Read::Sorted
        } else {
            Read::Walk
        });
    }
    let counted = f.status == Some(FailureStatus::Open)
        && f.idp.is_none()
        && matches!(searched, Search::Nothing)
        && f.from.as_deref().is_none_or(str::is_empty)
        && f.to.as_deref().is_none_or(str::is_empty);
    if !counted {
        return Ok(Read::Walk);
    }
    let n = if f.form_sent { "reported" } else { "n" };
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT COALESCE(SUM({n}), 0) FROM failure_open_counts WHERE 1=1"
    ));
    scope.push_condition(&mut q, "school_code");
    if let Some(k) = f.kind.as_deref().filter(|k| !k.is_empty()) {
        q.push(" AND kind = ").push_bind(k);
    }
    if let Some(s) = f.school.as_deref().filter(|s| !s.is_empty()) {
        q.push(" AND school_code = ").push_bind(s);
    }
    let matches: i64 = q.build_query_scalar().fetch_one(&mut *conn).await?;
    Ok(if matches < SORT_BELOW {
        Read::Sorted
    } else {
        Read::Walk
    })
}

/// The key of a row as read by the page query.
fn key_of(r: &sqlx::sqlite::SqliteRow, sort: Sort) -> Vec<KeyValue> {
    sort.keys()
        .iter()
        .enumerate()
        .map(|(i, (_, t))| {
            let name = format!("k{i}");
            match t {
                KeyType::Int => KeyValue::Int(r.get(name.as_str())),
                KeyType::Text => KeyValue::Text(r.get(name.as_str())),
            }
        })
        .collect()
}

/// Schools of a scope up to which a walked page is read school by school.
const MERGE_UP_TO: usize = 16;

/// A walked page for a scope of several schools: SQLite cannot walk one
/// index in order over `school_code IN (…)` (it would sort every row of
/// those schools), so each school's index is walked from the cursor for a
/// page, and the pages merged by key.
async fn merged(
    conn: &mut SqliteConnection,
    codes: &[String],
    f: &Filter,
    page: &PageRequest,
) -> Result<(Vec<sqlx::sqlite::SqliteRow>, bool), sqlx::Error> {
    let mut rows = Vec::new();
    let mut back = false;
    for code in codes {
        let one = crate::store::Scope::Schools(vec![code.clone()]);
        let (mut q, b) = page_query("", &one, f, page, Read::Walk);
        rows.extend(q.build().fetch_all(&mut *conn).await?);
        back = b;
    }
    let down = page.sort.descending() != back;
    let mut keyed: Vec<_> = rows
        .into_iter()
        .map(|r| (key_of(&r, page.sort), r))
        .collect();
    keyed.sort_by(|a, b| if down { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
    keyed.truncate(page.limit.max(0) as usize + 1);
    Ok((keyed.into_iter().map(|(_, r)| r).collect(), back))
}

/// A page of failures in scope matching the filter, in the requested order,
/// with the cursors of the next and previous pages (when there are rows
/// there).
pub async fn list(
    conn: &mut SqliteConnection,
    scope: &crate::store::Scope,
    f: &Filter,
    page: &PageRequest,
) -> Result<ListPage, sqlx::Error> {
    let read = read_for(conn, scope, f).await?;
    let (mut rows, back) = match scope {
        crate::store::Scope::Schools(codes)
            if read == Read::Walk
                && (2..=MERGE_UP_TO).contains(&codes.len())
                && f.school.as_deref().is_none_or(str::is_empty) =>
        {
            merged(conn, codes, f, page).await?
        }
        _ => {
            let (mut q, back) = page_query("", scope, f, page, read);
            (q.build().fetch_all(&mut *conn).await?, back)
        }
    };
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit.max(0) as usize);
    if back {
        rows.reverse();
    }
    let cursor = |r: Option<&sqlx::sqlite::SqliteRow>, back: bool| {
        r.map(|r| Cursor {
            sort: page.sort,
            back,
            key: key_of(r, page.sort),
        })
    };
    let started = page.cursor.as_ref().is_some_and(|c| c.sort == page.sort);
    // Forwards, a page after a cursor has one before it; backwards, one
    // before the cursor has the cursor's page after it.
    let (has_prev, has_next) = if back { (more, true) } else { (started, more) };
    Ok(ListPage {
        next: cursor(rows.last().filter(|_| has_next), false),
        prev: cursor(rows.first().filter(|_| has_prev), true),
        items: rows.iter().map(from_row).collect(),
    })
}

/// How many failures match a filter, and how many of them are unverified
/// attempts (counted whether or not the filter hides them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Rows the list shows over all its pages; with `capped`, at least
    /// this many.
    pub shown: i64,
    /// Unverified attempts among the matches, hidden when `verified_only`;
    /// with `capped`, among the first `TOTALS_CAP` matches.
    pub unverified: i64,
    /// More than `TOTALS_CAP` rows match a filter the counters do not
    /// cover (words, dates): counting stopped there.
    pub capped: bool,
}

/// The totals of a search by words (and a reference) whose other filters
/// the tags cover: counted in the full-text index, all and unverified.
async fn searched_totals(
    conn: &mut SqliteConnection,
    scope: &crate::store::Scope,
    f: &Filter,
    text: &str,
    words: Option<String>,
) -> Result<(i64, i64), sqlx::Error> {
    let matching = words.and_then(|w| tagged(scope, f, w));
    let (mut all, mut unverified) = match &matching {
        Some(m) => (
            count_matches(conn, m, i64::MAX).await?,
            count_matches(conn, &format!("{m} AND tags : (\"unverified\")"), i64::MAX).await?,
        ),
        None => (0, 0),
    };
    // The failure whose reference this is, unless its words matched too.
    let bare = Filter {
        text: None,
        ..f.clone()
    };
    let mut q = QueryBuilder::<Sqlite>::new("SELECT id, asserted_verified FROM failures WHERE 1=1");
    push_filter(&mut q, scope, &bare, false);
    q.push(" AND reference = ").push_bind(text);
    if let Some(row) = q.build().fetch_optional(&mut *conn).await? {
        let id: i64 = row.get(0);
        let counted = match &matching {
            Some(m) => sqlx::query_scalar::<_, i64>(
                "SELECT 1 FROM failure_words WHERE failure_words MATCH ? AND rowid = ?",
            )
            .bind(m)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
            None => false,
        };
        if !counted {
            all += 1;
            unverified += i64::from(row.get::<i64, _>(1) == 0);
        }
    }
    Ok((all, unverified))
}

/// Matches counted at most for a filter the counters do not cover (a
/// thousand rows read: a few milliseconds; past it, refine the search).
pub const TOTALS_CAP: i64 = 1_000;

/// The totals for the filter, in scope: from the maintained counters
/// (migration 0018) when the filter is status, kind, school, IdP and form
/// only; in the full-text index (0017) for words with those filters but
/// the IdP; in both cases exact whatever the number of failures.
/// Otherwise (dates, a support code, words and an IdP) counted, up to
/// `TOTALS_CAP`.
pub async fn totals(
    conn: &mut SqliteConnection,
    scope: &crate::store::Scope,
    f: &Filter,
) -> Result<Totals, sqlx::Error> {
    let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    let dated = given(&f.from) || given(&f.to);
    let (all, unverified, capped) = match search(f) {
        Search::Text { text, words } if !dated && !given(&f.idp) => {
            let (all, unverified) = searched_totals(conn, scope, f, text, words).await?;
            (all, unverified, false)
        }
        Search::Nothing if !dated => {
            let n = if f.form_sent { "reported" } else { "n" };
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT COALESCE(SUM({n}), 0), COALESCE(SUM({n}) FILTER (WHERE verified = 0), 0) FROM failure_counts WHERE 1=1"
            ));
            scope.push_condition(&mut q, "school_code");
            for (col, v) in equalities(f) {
                if let Some(v) = v {
                    q.push(format_args!(" AND {col} = ")).push_bind(v);
                }
            }
            let row = q.build().fetch_one(&mut *conn).await?;
            (row.get::<i64, _>(0), row.get::<i64, _>(1), false)
        }
        _ => {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT COUNT(*), COALESCE(SUM(asserted_verified = 0), 0) FROM (SELECT asserted_verified FROM failures WHERE 1=1",
            );
            push_filter(&mut q, scope, f, false);
            q.push(" LIMIT ").push_bind(TOTALS_CAP + 1).push(")");
            let row = q.build().fetch_one(&mut *conn).await?;
            let all: i64 = row.get(0);
            (all.min(TOTALS_CAP), row.get::<i64, _>(1), all > TOTALS_CAP)
        }
    };
    Ok(Totals {
        shown: if f.verified_only {
            all - unverified
        } else {
            all
        },
        unverified,
        capped,
    })
}

#[cfg(test)]
mod tests {
    use super::order::tests::cursor;
    use super::*;
    use crate::store::Scope;

    use crate::store::memory;

    async fn plan(
        pool: &sqlx::SqlitePool,
        scope: &Scope,
        f: &Filter,
        page: &PageRequest,
    ) -> String {
        let (q, _) = page_query("EXPLAIN QUERY PLAN ", scope, f, page, Read::Walk);
        explained(pool, q).await
    }

    /// The plan's lines of an `EXPLAIN QUERY PLAN` query.
    async fn explained(pool: &sqlx::SqlitePool, mut q: QueryBuilder<'_, Sqlite>) -> String {
        let rows = q.build().fetch_all(pool).await.expect("plan");
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn every_order_reads_an_index_in_order_with_and_without_the_open_status() {
        let pool = memory().await;
        let desk = Filter {
            verified_only: true,
            ..Default::default()
        };
        let one_school = Scope::Schools(vec!["0751234J".into()]);
        let open = Filter {
            verified_only: true,
            status: Some(FailureStatus::Open),
            ..Default::default()
        };
        for sort in Sort::ALL {
            for c in [None, Some(cursor(sort, false)), Some(cursor(sort, true))] {
                let page = PageRequest {
                    sort,
                    cursor: c,
                    limit: 50,
                };
                for (scope, f) in [
                    (&Scope::All, &desk),
                    (&one_school, &desk),
                    (&Scope::All, &open),
                    (&one_school, &open),
                ] {
                    let p = plan(&pool, scope, f, &page).await;
                    let what = format!("{sort:?} {scope:?} {:?}: {p}", f.status);
                    assert!(p.contains("USING INDEX"), "{what}");
                    assert!(!p.contains("TEMP B-TREE"), "{what}");
                }
            }
        }
    }

    #[test]
    fn a_support_code_is_searched_by_its_index_and_anything_else_as_text() {
        assert_eq!(support_code_prefix("jnt-7k3f").as_deref(), Some("JNT-7K3F"));
        assert_eq!(
            support_code_prefix("JNT-7K3F9Q").as_deref(),
            Some("JNT-7K3F9Q")
        );
        assert_eq!(support_code_prefix("JNT-7K3F9Q1"), None);
        assert_eq!(support_code_prefix("Dupont"), None);
    }

    #[tokio::test]
    async fn a_kind_an_idp_or_a_support_code_alone_reads_an_index_without_a_sort() {
        let pool = memory().await;
        let page = PageRequest {
            sort: Sort::NeedsYou,
            cursor: None,
            limit: 50,
        };
        for f in [
            Filter {
                kind: Some("identity_mismatch".into()),
                ..Default::default()
            },
            Filter {
                idp: Some("https://idp.example".into()),
                ..Default::default()
            },
        ] {
            let p = plan(&pool, &Scope::All, &f, &page).await;
            assert!(!p.contains("TEMP B-TREE"), "{f:?}: {p}");
        }
        let code = Filter {
            text: Some("JNT-7K3".into()),
            ..Default::default()
        };
        let mut q = QueryBuilder::<Sqlite>::new(
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM failures WHERE 1=1",
        );
        push_filter(&mut q, &Scope::All, &code, false);
        let p = explained(&pool, q).await;
        assert!(p.contains("support_code>?"), "{p}");
    }

    #[test]
    fn searched_words_are_quoted_prefixes_and_punctuation_is_no_syntax() {
        assert_eq!(
            words_query("Dupont-Martin, Éloïse").as_deref(),
            Some(r#"words : ("Dupont"* "Martin"* "Éloïse"*)"#)
        );
        assert_eq!(
            words_query(r#"a" OR b* NEAR(c"#).as_deref(),
            Some(r#"words : ("a"* "OR"* "b"* "NEAR"* "c"*)"#)
        );
        assert_eq!(words_query(" \"*()-: "), None);
        assert_eq!(
            words_query("a b c d e f g h i j").map(|q| q.matches('*').count()),
            Some(MAX_WORDS)
        );
    }

    #[tokio::test]
    async fn words_are_searched_in_the_full_text_index_in_every_order() {
        let pool = memory().await;
        let f = Filter {
            text: Some("dupont eloise".into()),
            verified_only: true,
            ..Default::default()
        };
        for sort in Sort::ALL {
            for scope in [
                Scope::All,
                Scope::Schools(vec!["0751234J".into()]),
                Scope::Schools(vec!["0751234J".into(), "0761234K".into()]),
            ] {
                let page = PageRequest {
                    sort,
                    cursor: None,
                    limit: 50,
                };
                let (q, _) = page_query("EXPLAIN QUERY PLAN ", &scope, &f, &page, Read::Sorted);
                let p = explained(&pool, q).await;
                assert!(p.contains("VIRTUAL TABLE INDEX"), "{sort:?} {scope:?}: {p}");
                assert!(!p.contains("SCAN failures"), "{sort:?} {scope:?}: {p}");
                // Many matches: the order's index is walked, the words filter
                // (several schools: see `every_order_reads_an_index…`).
                if matches!(&scope, Scope::Schools(s) if s.len() > 1) {
                    continue;
                }
                let (q, _) = page_query("EXPLAIN QUERY PLAN ", &scope, &f, &page, Read::Walk);
                let p = explained(&pool, q).await;
                assert!(p.contains("VIRTUAL TABLE INDEX"), "{sort:?} {scope:?}: {p}");
                assert!(!p.contains("TEMP B-TREE"), "{sort:?} {scope:?}: {p}");
            }
        }
    }

    /// The totals read directly, by counting every matching row.
    async fn counted(pool: &sqlx::SqlitePool, scope: &Scope, f: &Filter) -> (i64, i64) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT COUNT(*), COALESCE(SUM(asserted_verified = 0), 0) FROM failures WHERE 1=1",
        );
        push_filter(&mut q, scope, f, false);
        let row = q.build().fetch_one(pool).await.expect("count");
        let (all, unverified): (i64, i64) = (row.get(0), row.get(1));
        (
            if f.verified_only {
                all - unverified
            } else {
                all
            },
            unverified,
        )
    }

    #[tokio::test]
    async fn the_counters_agree_with_counting_through_inserts_updates_and_deletes() {
        let pool = memory().await;
        for i in 0..60i64 {
            sqlx::query(
                "INSERT INTO failures (reference, support_code, kind, status, idp_entity_id, school_code, detail, asserted_verified, first_seen, last_seen, report_json, asserted_last_name)
                 VALUES (?, ?, ?, ?, ?, ?, 'x', ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', ?, ?)",
            )
            .bind(format!("r{i}"))
            .bind(format!("JNT-{i:06}"))
            .bind(["identity_mismatch", "expired", "unknown_school"][i as usize % 3])
            .bind(["open", "resolved", "dismissed", "open"][i as usize % 4])
            .bind((i % 5 != 0).then(|| ["https://a", "https://b"][i as usize % 2]))
            .bind((i % 7 != 0).then(|| ["0751234J", "0761234K", "01AB"][i as usize % 3]))
            .bind(i % 6 != 0)
            .bind((i % 4 == 0).then_some("{}"))
            .bind(if i % 2 == 0 { "Dupont" } else { "Martin" })
            .execute(&pool)
            .await
            .expect("insert");
        }
        for sql in [
            "UPDATE failures SET status = 'resolved' WHERE id % 9 = 0",
            "UPDATE failures SET report_json = NULL WHERE id % 8 = 0",
            "UPDATE failures SET report_json = '{}' WHERE id % 11 = 0",
            "UPDATE failures SET school_code = '0761234K', kind = 'expired' WHERE id % 13 = 0",
            "UPDATE failures SET asserted_verified = 1, idp_entity_id = 'https://b' WHERE id % 17 = 0",
            "UPDATE failures SET asserted_last_name = 'Dupont' WHERE id % 19 = 0",
            "DELETE FROM failures WHERE id % 10 = 3",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        let scopes = [
            Scope::All,
            Scope::Schools(vec!["0751234J".into()]),
            Scope::Schools(vec!["0761234K".into(), "01AB".into()]),
        ];
        let mut checked = 0;
        for scope in &scopes {
            for status in [
                None,
                Some(FailureStatus::Open),
                Some(FailureStatus::Resolved),
            ] {
                for kind in [None, Some("expired")] {
                    for school in [None, Some("0761234K")] {
                        for idp in [None, Some("https://b")] {
                            for text in [None, Some("DUPONT"), Some("r4"), Some("r5 dupont")] {
                                for (form_sent, verified_only) in
                                    [(false, false), (true, false), (false, true), (true, true)]
                                {
                                    let f = Filter {
                                        status,
                                        kind: kind.map(str::to_string),
                                        school: school.map(str::to_string),
                                        idp: idp.map(str::to_string),
                                        form_sent,
                                        verified_only,
                                        text: text.map(str::to_string),
                                        ..Default::default()
                                    };
                                    let mut conn = pool.acquire().await.expect("conn");
                                    let t = totals(&mut conn, scope, &f).await.expect("totals");
                                    drop(conn);
                                    assert_eq!(
                                        (t.shown, t.unverified),
                                        counted(&pool, scope, &f).await,
                                        "{scope:?} {f:?}"
                                    );
                                    assert!(!t.capped);
                                    checked += (t.shown > 0) as i32;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 200, "the combinations match rows: {checked}");
    }

    #[tokio::test]
    async fn totals_of_words_are_exact_and_of_dates_count_up_to_the_cap_and_say_so() {
        let pool = memory().await;
        let rows: Vec<i64> = (0..TOTALS_CAP + 5).collect();
        for chunk in rows.chunks(1000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO failures (reference, support_code, kind, detail, asserted_last_name, first_seen, last_seen) ",
            );
            q.push_values(chunk, |mut b, i| {
                b.push_bind(format!("r{i}"))
                    .push_bind(format!("JNT-{i:06}"))
                    .push_bind("expired")
                    .push_bind("x")
                    .push_bind(if *i < 3 { "Lefèvre" } else { "Martin" })
                    .push_bind("2026-01-01T00:00:00Z")
                    .push_bind("2026-01-01T00:00:00Z");
            });
            q.build().execute(&pool).await.expect("insert");
        }
        let mut conn = pool.acquire().await.expect("conn");
        let words = |t: &str| Filter {
            text: Some(t.into()),
            ..Default::default()
        };
        let few = totals(&mut conn, &Scope::All, &words("lefevre"))
            .await
            .expect("few");
        assert_eq!((few.shown, few.capped), (3, false));
        let many = totals(&mut conn, &Scope::All, &words("martin"))
            .await
            .expect("many");
        assert_eq!(
            (many.shown, many.capped),
            (TOTALS_CAP + 2, false),
            "words are counted in the index, exactly"
        );
        let dated = Filter {
            from: Some("2026-01-01".into()),
            ..Default::default()
        };
        let all = totals(&mut conn, &Scope::All, &dated).await.expect("dated");
        assert_eq!((all.shown, all.capped), (TOTALS_CAP, true));
        let none = totals(&mut conn, &Scope::All, &Filter::default())
            .await
            .expect("exact");
        assert_eq!(
            (none.shown, none.capped),
            (TOTALS_CAP + 5, false),
            "the counters are exact"
        );
    }

    #[tokio::test]
    async fn the_default_order_starts_at_its_cursor_in_the_index() {
        let pool = memory().await;
        let page = PageRequest {
            sort: Sort::NeedsYou,
            cursor: Some(cursor(Sort::NeedsYou, false)),
            limit: 50,
        };
        let p = plan(&pool, &Scope::All, &Filter::default(), &page).await;
        assert!(p.contains("failures_list_needs_you (("), "{p}");
    }
}
