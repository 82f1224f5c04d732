//! The dashboard's numbers.

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// Dashboard numbers: open failures by kind and by school, and failures
/// first seen per day since `since` (`YYYY-MM-DD`).
pub struct Stats {
    pub by_kind: Vec<(String, i64)>,
    pub by_school: Vec<(Option<String>, i64)>,
    pub per_day: Vec<(String, i64)>,
}

pub async fn stats(
    conn: &mut SqliteConnection,
    scope: &crate::store::Scope,
    since: &str,
) -> Result<Stats, sqlx::Error> {
    // The same query grouped by one column: a constant name, never a value.
    let grouped = |col: &str| {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {col} AS k, COUNT(*) AS n FROM failures WHERE status = 'open'"
        ));
        scope.push_condition(&mut q, "school_code");
        q.push(format_args!(" GROUP BY {col} ORDER BY n DESC, k"));
        q
    };
    let by_kind = grouped("kind")
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get("k"), r.get("n")))
        .collect();
    let by_school = grouped("school_code")
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get("k"), r.get("n")))
        .collect();
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT substr(first_seen, 1, 10) AS d, COUNT(*) AS n FROM failures WHERE first_seen >= ",
    );
    q.push_bind(format!("{since}T00:00:00Z"));
    scope.push_condition(&mut q, "school_code");
    q.push(" GROUP BY d ORDER BY d");
    let per_day = q
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get("d"), r.get("n")))
        .collect();
    Ok(Stats {
        by_kind,
        by_school,
        per_day,
    })
}
