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
/// index serves.
fn push_filter<'q>(
    q: &mut QueryBuilder<'q, Sqlite>,
    scope: &'q crate::store::Scope,
    f: &'q Filter,
    walk: bool,
) {
    scope.push_condition(q, "school_code");
    let one_school = f.school.as_deref().is_some_and(|s| !s.is_empty())
        || matches!(scope, crate::store::Scope::Schools(s) if s.len() == 1);
    let status = if walk && one_school {
        "+status"
    } else {
        "status"
    };
    let equal = [
        (status, f.status.map(|s| s.as_str())),
        ("kind", f.kind.as_deref()),
        ("school_code", f.school.as_deref()),
        ("idp_entity_id", f.idp.as_deref()),
    ];
    for (col, v) in equal {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            q.push(format_args!(" AND {col} = ")).push_bind(v);
        }
    }
    let text = f.text.as_ref().map(|t| t.trim()).filter(|t| !t.is_empty());
    if let Some(code) = text.and_then(support_code_prefix) {
        // A support code, whole or its beginning (read over the phone): a
        // range of its unique index, not a scan of every failure.
        q.push(" AND support_code >= ")
            .push_bind(code.clone())
            .push(" AND support_code < ")
            .push_bind(format!("{code}\u{10FFFF}"));
    } else if let Some(t) = text {
        let p = crate::store::like_pattern(t);
        q.push(" AND (");
        let mut any = q.separated(" OR ");
        any.push("support_code LIKE ")
            .push_bind_unseparated(p.clone())
            .push_unseparated(" ESCAPE '\\'");
        any.push("reference = ").push_bind_unseparated(t);
        for col in [
            "subject",
            "asserted_last_name",
            "asserted_first_name",
            "report_json",
        ] {
            any.push(format_args!("{col} LIKE "))
                .push_bind_unseparated(p.clone())
                .push_unseparated(" ESCAPE '\\'");
        }
        q.push(")");
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
    let counted = f.status == Some(FailureStatus::Open)
        && f.idp.is_none()
        && f.text.as_deref().is_none_or(|t| t.trim().is_empty())
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
    let (mut q, back) = page_query("", scope, f, page, read);
    let mut rows = q.build().fetch_all(&mut *conn).await?;
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
    /// Rows the list shows over all its pages.
    pub shown: i64,
    /// Unverified attempts among the matches, hidden when `verified_only`.
    pub unverified: i64,
}

/// The totals for the filter, in scope.
pub async fn totals(
    conn: &mut SqliteConnection,
    scope: &crate::store::Scope,
    f: &Filter,
) -> Result<Totals, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT COUNT(*), COALESCE(SUM(asserted_verified = 0), 0) FROM failures WHERE 1=1",
    );
    push_filter(&mut q, scope, f, false);
    let row = q.build().fetch_one(&mut *conn).await?;
    let (all, unverified): (i64, i64) = (row.get(0), row.get(1));
    Ok(Totals {
        shown: if f.verified_only {
            all - unverified
        } else {
            all
        },
        unverified,
    })
}

#[cfg(test)]
mod tests {
    use super::order::tests::cursor;
    use super::*;
    use crate::store::Scope;

    async fn memory() -> sqlx::SqlitePool {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("memory db");
        crate::store::migrate(&pool).await.expect("migrations");
        pool
    }

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
