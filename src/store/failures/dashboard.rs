//! The dashboard's numbers, read from the counters that triggers keep
//! (migration 0011: `failure_open_counts`, `failure_days`), so that they
//! cost a few hundred rows at any number of failures; the oldest open
//! failure comes from a partial index on open rows.

use crate::store::Scope;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// Dashboard numbers for one scope.
pub struct Stats {
    /// Open failures by kind, most first.
    pub by_kind: Vec<(String, i64)>,
    /// Open failures by school (`None`: without a school), most first.
    pub by_school: Vec<(Option<String>, i64)>,
    /// Open failures whose user sent the form.
    pub reported: i64,
    /// The open failure first seen longest ago.
    pub oldest: Option<Oldest>,
    /// Failures first seen per UTC day since `since`, by kind: (day, kind,
    /// count), days without any left out.
    pub per_day: Vec<(String, String, i64)>,
}

/// The open failure that has waited longest.
#[derive(Debug, Clone)]
pub struct Oldest {
    pub reference: String,
    pub kind: String,
    pub school_code: Option<String>,
    pub first_seen: String,
}

/// The dashboard's numbers in `scope`; `since` is a `YYYY-MM-DD` day.
pub async fn stats(
    conn: &mut SqliteConnection,
    scope: &Scope,
    since: &str,
) -> Result<Stats, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT kind, school_code, n, reported FROM failure_open_counts WHERE n > 0",
    );
    scope.push_condition(&mut q, "school_code");
    let mut kinds = std::collections::BTreeMap::<String, i64>::new();
    let mut schools = std::collections::BTreeMap::<String, i64>::new();
    let mut reported = 0;
    for r in q.build().fetch_all(&mut *conn).await? {
        let n: i64 = r.get("n");
        *kinds.entry(r.get("kind")).or_default() += n;
        *schools.entry(r.get("school_code")).or_default() += n;
        reported += r.get::<i64, _>("reported");
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT day, kind, SUM(n) AS n FROM failure_days WHERE n > 0 AND day >= ",
    );
    q.push_bind(since);
    scope.push_condition(&mut q, "school_code");
    q.push(" GROUP BY day, kind ORDER BY day, kind");
    let per_day = q
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get("day"), r.get("kind"), r.get("n")))
        .collect();
    Ok(Stats {
        by_kind: most_first(kinds),
        by_school: most_first(schools)
            .into_iter()
            .map(|(s, n)| (Some(s).filter(|s| !s.is_empty()), n))
            .collect(),
        reported,
        oldest: oldest(conn, scope).await?,
        per_day,
    })
}

fn most_first(m: std::collections::BTreeMap<String, i64>) -> Vec<(String, i64)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The oldest open failure in scope: one step down the partial index on
/// open rows, per school for a school admin (an `IN` list would sort every
/// open row of those schools).
pub async fn oldest(
    conn: &mut SqliteConnection,
    scope: &Scope,
) -> Result<Option<Oldest>, sqlx::Error> {
    const SELECT: &str =
        "SELECT reference, kind, school_code, first_seen FROM failures WHERE status = 'open'";
    const ORDER: &str = " ORDER BY first_seen, id LIMIT 1";
    let rows = match scope {
        Scope::All => sqlx::query(&format!("{SELECT}{ORDER}"))
            .fetch_optional(&mut *conn)
            .await?
            .into_iter()
            .collect::<Vec<_>>(),
        Scope::Schools(codes) => {
            let mut rows = Vec::new();
            for code in codes {
                let row = sqlx::query(&format!("{SELECT} AND school_code = ?{ORDER}"))
                    .bind(code)
                    .fetch_optional(&mut *conn)
                    .await?;
                rows.extend(row);
            }
            rows
        }
    };
    Ok(rows
        .iter()
        .map(|r| Oldest {
            reference: r.get("reference"),
            kind: r.get("kind"),
            school_code: r.get("school_code"),
            first_seen: r.get("first_seen"),
        })
        .min_by(|a, b| a.first_seen.cmp(&b.first_seen)))
}
