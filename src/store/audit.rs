//! The audit log: who did what, when, to which failure or mapping, with the
//! state before and after. An `undo` entry names the entry it undoes
//! (`undoes`), so each entry is undone at most once.

use super::Scope;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// The actions an admin can undo: each entry of these carries in its JSON
/// what is needed to put the previous state back.
pub const UNDOABLE: [&str; 5] = [
    "failure.resolve",
    "failure.dismiss",
    "failure.recheck",
    "mapping.create",
    "mapping.delete",
];

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
    /// For an `undo`: the entry it undid.
    pub undoes: Option<i64>,
    /// The `undo` entry that undid this one, if any.
    pub undone_by: Option<i64>,
}

impl Entry {
    /// Whether an undo is offered: an action of [`UNDOABLE`] not undone yet
    /// (a re-check only when it resolved). Whether it is still possible is
    /// decided when asked, against the current state.
    pub fn undoable(&self) -> bool {
        let resolved_recheck = self.action != "failure.recheck"
            || self
                .after_json
                .as_deref()
                .is_some_and(|a| a.contains("\"status\":\"resolved\""));
        self.undone_by.is_none() && UNDOABLE.contains(&self.action.as_str()) && resolved_recheck
    }

    /// The JSON after the action, parsed (`Null` when absent or broken).
    pub fn after(&self) -> serde_json::Value {
        parse(self.after_json.as_deref())
    }

    /// The JSON before the action, parsed (`Null` when absent or broken).
    pub fn before(&self) -> serde_json::Value {
        parse(self.before_json.as_deref())
    }
}

fn parse(j: Option<&str>) -> serde_json::Value {
    j.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(serde_json::Value::Null)
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

/// Records the `undo` of `undone`, same target and school; false when that
/// entry was already undone (the unique index on `undoes` decides, so of
/// two admins undoing at once one wins).
pub async fn record_undo(
    conn: &mut SqliteConnection,
    actor: &str,
    undone: &Entry,
) -> Result<bool, sqlx::Error> {
    let after = serde_json::json!({"undoes": undone.id, "action": undone.action});
    let r = sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, school_code, before_json, after_json, undoes) VALUES (?, ?, 'undo', ?, ?, ?, ?, ?)",
    )
    .bind(super::now_text())
    .bind(actor)
    .bind(&undone.target)
    .bind(&undone.school_code)
    .bind(&undone.after_json)
    .bind(after.to_string())
    .bind(undone.id)
    .execute(&mut *conn)
    .await;
    super::inserted(r)
}

/// Whether the target of `e` was acted on after it: a later entry on the
/// same target that is neither an undo nor undone itself.
pub async fn acted_on_since(conn: &mut SqliteConnection, e: &Entry) -> Result<bool, sqlx::Error> {
    let Some(target) = &e.target else {
        return Ok(false);
    };
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM audit_log l WHERE l.target = ? AND l.id > ? AND l.action <> 'undo'
           AND NOT EXISTS (SELECT 1 FROM audit_log u WHERE u.undoes = l.id))",
    )
    .bind(target)
    .bind(e.id)
    .fetch_one(&mut *conn)
    .await
}

const SELECT: &str = "SELECT id, at, actor, action, target, school_code, before_json, after_json, undoes,
    (SELECT u.id FROM audit_log u WHERE u.undoes = audit_log.id) AS undone_by FROM audit_log WHERE 1=1";

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
        undoes: r.get("undoes"),
        undone_by: r.get("undone_by"),
    }
}

/// One entry in scope.
pub async fn get(
    conn: &mut SqliteConnection,
    scope: &Scope,
    id: i64,
) -> Result<Option<Entry>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(SELECT);
    q.push(" AND id = ").push_bind(id);
    scope.push_condition(&mut q, "school_code");
    Ok(q.build()
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(from_row))
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
    let mut q = QueryBuilder::<Sqlite>::new(SELECT);
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
