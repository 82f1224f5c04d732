//! The audit log: who did what, when, to which failure or mapping, with the
//! state before and after.

use super::Scope;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub school_code: Option<String>,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
}

pub async fn record(
    conn: &mut SqliteConnection,
    actor: &str,
    action: &str,
    target: Option<&str>,
    school_code: Option<&str>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, school_code, before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(super::now_text())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(school_code)
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn from_row(r: &sqlx::sqlite::SqliteRow) -> Entry {
    Entry {
        id: r.get("id"),
        at: r.get("at"),
        actor: r.get("actor"),
        action: r.get("action"),
        target: r.get("target"),
        school_code: r.get("school_code"),
        before_json: r.get("before_json"),
        after_json: r.get("after_json"),
    }
}

/// Entries in scope, newest first, before the `before_id` cursor; and, with
/// `target`, only those about one failure or mapping.
pub async fn list(
    conn: &mut SqliteConnection,
    scope: &Scope,
    target: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT id, at, actor, action, target, school_code, before_json, after_json FROM audit_log WHERE 1=1",
    );
    scope.push_condition(&mut q, "school_code");
    if let Some(t) = target {
        q.push(" AND target = ").push_bind(t);
    }
    if let Some(b) = before_id {
        q.push(" AND id < ").push_bind(b);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(from_row).collect())
}
