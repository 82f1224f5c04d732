//! Undo of the desk's actions. Each undoable audit entry carries what was
//! changed (the failures resolved and when, the mapping row made or
//! deleted); an undo puts exactly that back, and only while it is still
//! what the action left: a failure acted on again, a mapping relinked or
//! deleted since, refuse the undo instead of overwriting newer work.

use super::Refused;
use crate::store::failures::{resolve_identity, ResolvedBy};
use crate::store::{accounts, audit, is_unique_violation, mappings, Scope};
use serde_json::{json, Value};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// What an undo undid, for the page that comes next.
#[derive(Debug, Clone)]
pub struct Undone {
    pub action: String,
    pub target: Option<String>,
}

/// Resolves the scope's open failures of an identity to `account_id` and
/// returns how many, with the audit payload an undo needs: the references
/// resolved, the time written, and the mapping row when `mapping_made`.
pub(crate) async fn resolve_with_trail(
    conn: &mut SqliteConnection,
    scope: &Scope,
    identity: (&str, &str),
    account_id: &str,
    actor: &str,
    mapping_made: bool,
    by: ResolvedBy,
) -> Result<(u64, Value), sqlx::Error> {
    let (idp, subject) = identity;
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT reference FROM failures WHERE status = 'open' AND idp_entity_id = ",
    );
    q.push_bind(idp).push(" AND subject = ").push_bind(subject);
    scope.push_condition(&mut q, "school_code");
    let references: Vec<String> = q
        .build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get("reference"))
        .collect();
    let mapping = if mapping_made {
        mappings::identity_row(conn, idp, subject).await?
    } else {
        None
    };
    let resolved = resolve_identity(conn, scope, identity, account_id, actor, by).await?;
    let at: Option<String> = match references.first() {
        Some(r) => sqlx::query_scalar("SELECT resolved_at FROM failures WHERE reference = ?")
            .bind(r)
            .fetch_optional(&mut *conn)
            .await?
            .flatten(),
        None => None,
    };
    let trail = json!({
        "status": "resolved", "account_id": account_id, "idp_entity_id": idp,
        "subject": subject, "failures_resolved": resolved, "references": references,
        "at": at, "mapping_id": mapping.as_ref().map(|m| m.0),
        "created_at": mapping.map(|m| m.1),
    });
    Ok((resolved, trail))
}

/// Undoes audit entry `id` (in scope) and records the undo, naming it.
/// The caller rolls back on a refusal: nothing is half undone.
pub async fn undo(
    conn: &mut SqliteConnection,
    scope: &Scope,
    id: i64,
    actor: &str,
) -> Result<Result<Undone, Refused>, sqlx::Error> {
    let Some(entry) = audit::get(conn, scope, id).await? else {
        return Ok(Err(Refused::NotFound));
    };
    if entry.undone_by.is_some() {
        return Ok(Err(Refused::AlreadyUndone));
    }
    if !entry.undoable() {
        return Ok(Err(Refused::NotUndoable));
    }
    // Times are kept to the second: the log, not only the state, tells
    // whether the failure or mapping was acted on since.
    if audit::acted_on_since(conn, &entry).await? {
        return Ok(Err(Refused::ChangedSince));
    }
    let (before, after) = (entry.before(), entry.after());
    let outcome = match entry.action.as_str() {
        "failure.resolve" | "failure.recheck" => undo_resolution(conn, scope, &after).await?,
        "failure.dismiss" => undo_dismissal(conn, scope, &entry, &after).await?,
        "mapping.create" => undo_mapping_create(conn, scope, &after).await?,
        "mapping.delete" => undo_mapping_delete(conn, scope, before).await?,
        _ => Err(Refused::NotUndoable),
    };
    if let Err(r) = outcome {
        return Ok(Err(r));
    }
    if !audit::record_undo(conn, actor, &entry).await? {
        return Ok(Err(Refused::AlreadyUndone));
    }
    Ok(Ok(Undone {
        action: entry.action,
        target: entry.target,
    }))
}

fn text<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(Value::as_str)
}

/// Runs an UPDATE that reopens one failure: exactly one row, or the failure
/// changed since; a twin opened meanwhile is told apart.
async fn reopen_exactly(
    conn: &mut SqliteConnection,
    mut q: QueryBuilder<'_, Sqlite>,
) -> Result<Result<(), Refused>, sqlx::Error> {
    match q.build().execute(&mut *conn).await {
        Ok(r) if r.rows_affected() == 1 => Ok(Ok(())),
        Ok(_) => Ok(Err(Refused::ChangedSince)),
        Err(e) if is_unique_violation(&e) => Ok(Err(Refused::AlreadyOpenTwin)),
        Err(e) => Err(e),
    }
}

/// Reopens every failure the resolution resolved (each still resolved to
/// that account at that time), drops their e-mails not sent yet, and
/// deletes the mapping it made.
async fn undo_resolution(
    conn: &mut SqliteConnection,
    scope: &Scope,
    after: &Value,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let references: Option<Vec<&str>> = after
        .get("references")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let (Some(references), Some(at), Some(account)) =
        (references, text(after, "at"), text(after, "account_id"))
    else {
        return Ok(Err(Refused::NotUndoable));
    };
    for reference in references {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE failures SET status = 'open', resolved_account_id = NULL, resolved_by = NULL, resolved_at = NULL, resolution_source = NULL WHERE status = 'resolved' AND reference = ",
        );
        q.push_bind(reference)
            .push(" AND resolved_account_id = ")
            .push_bind(account)
            .push(" AND resolved_at = ")
            .push_bind(at);
        scope.push_condition(&mut q, "school_code");
        if let Err(r) = reopen_exactly(conn, q).await? {
            return Ok(Err(r));
        }
        // An e-mail saying "you can log in again" that has not gone out
        // would now be wrong; one already sent cannot be taken back.
        sqlx::query("DELETE FROM mail_queue WHERE sent_at IS NULL AND failure_id = (SELECT id FROM failures WHERE reference = ?)")
            .bind(reference)
            .execute(&mut *conn)
            .await?;
    }
    if after.get("mapping_id").is_some_and(Value::is_i64) {
        return undo_mapping_create(conn, scope, after).await;
    }
    Ok(Ok(()))
}

/// Reopens a dismissed failure, if it is still that dismissal.
async fn undo_dismissal(
    conn: &mut SqliteConnection,
    scope: &Scope,
    entry: &audit::Entry,
    after: &Value,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let (Some(reference), Some(at)) = (entry.target.as_deref(), text(after, "at")) else {
        return Ok(Err(Refused::NotUndoable));
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE failures SET status = 'open', dismiss_reason = NULL, resolved_by = NULL, resolved_at = NULL, resolution_source = NULL WHERE status = 'dismissed' AND reference = ",
    );
    q.push_bind(reference)
        .push(" AND resolved_at = ")
        .push_bind(at)
        .push(" AND resolved_by = ")
        .push_bind(entry.actor.as_str());
    scope.push_condition(&mut q, "school_code");
    reopen_exactly(conn, q).await
}

/// Deletes the mapping row the action made, if it is still that row.
async fn undo_mapping_create(
    conn: &mut SqliteConnection,
    scope: &Scope,
    after: &Value,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let id = after.get("mapping_id").and_then(Value::as_i64);
    let fields = (
        text(after, "idp_entity_id"),
        text(after, "subject"),
        text(after, "account_id"),
        text(after, "created_at"),
    );
    let (Some(id), (Some(idp), Some(subject), Some(account), Some(created))) = (id, fields) else {
        return Ok(Err(Refused::NotUndoable));
    };
    let deleted = mappings::delete_exact(conn, scope, id, (idp, subject), account, created).await?;
    Ok(if deleted {
        Ok(())
    } else {
        Err(Refused::ChangedSince)
    })
}

/// Puts a deleted mapping back as it was, for an account still in scope,
/// unless the identity was linked again since.
async fn undo_mapping_delete(
    conn: &mut SqliteConnection,
    scope: &Scope,
    before: Value,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let Ok(m) = serde_json::from_value::<mappings::Restored>(before) else {
        return Ok(Err(Refused::NotUndoable));
    };
    match accounts::get(conn, &m.account_id).await? {
        Some(a) if scope.allows(Some(&a.school_code)) => {}
        _ => return Ok(Err(Refused::AccountNotAllowed)),
    }
    Ok(if mappings::restore(conn, &m).await? {
        Ok(())
    } else {
        Err(Refused::ChangedSince)
    })
}
