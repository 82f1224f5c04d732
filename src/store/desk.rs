//! The admins' actions on failures and mappings. Each runs in the caller's
//! write transaction, checks scope in its queries, and writes the audit log.
//! A failure's status only moves with `WHERE status = …`, so of two admins
//! acting at once one wins and the other is told who did what.

mod recheck;
mod undo;

pub use recheck::{
    recheck_kind, recheck_resolved, recheck_target, recheckable, NewKind, RecheckTarget,
};
pub use undo::{undo, Undone};

use super::{accounts, audit, mappings, Scope};
use crate::resolve::FailureStatus;
use serde_json::json;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

/// Why an action was refused. The web layer renders it in the admin's
/// language from [`Refused::key`] (the store knows no catalogue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not there, or outside the admin's scope (told apart by nobody).
    NotFound,
    /// Somebody else acted first.
    AlreadyHandled {
        status: FailureStatus,
        by: Option<String>,
        at: Option<String>,
    },
    /// The account is not one the admin may link to.
    AccountNotAllowed,
    AccountInactive,
    /// The failure carries no verified identity to map: no IdP or subject
    /// (a malformed request), claims whose signature was never verified, or a
    /// kind that is not about who the person is (e.g. a replay).
    NothingToMap,
    /// The identity is already mapped to another account (named only when
    /// it is in the admin's scope).
    MappedToOther(Option<String>),
    /// Reopening would make two open failures of one (IdP, subject, kind).
    AlreadyOpenTwin,
    /// A form value is wrong; the catalogue key says which rule.
    Invalid(&'static str),
    /// This audit entry is of an action that cannot be undone (or was
    /// written before undo existed and lacks what it needs).
    NotUndoable,
    /// The entry was undone already.
    AlreadyUndone,
    /// The failure or mapping changed since the action (acted on again,
    /// relinked, deleted): undoing would not restore what was.
    ChangedSince,
    /// Re-check is for open failures of verified claims whose outcome
    /// depends on local data.
    NotRecheckable,
}

impl Refused {
    /// The catalogue key of the message (placeholders `{status}`, `{by}`,
    /// `{at}`, `{account}` where the variant carries them).
    pub fn key(&self) -> &'static str {
        match self {
            Refused::NotFound => "refused.not_found",
            Refused::AlreadyHandled { .. } => "refused.already_handled",
            Refused::AccountNotAllowed => "refused.account_not_allowed",
            Refused::AccountInactive => "refused.account_inactive",
            Refused::NothingToMap => "refused.nothing_to_map",
            Refused::MappedToOther(Some(_)) => "refused.mapped_to",
            Refused::MappedToOther(None) => "refused.mapped_outside",
            Refused::AlreadyOpenTwin => "refused.open_twin",
            Refused::Invalid(key) => key,
            Refused::NotUndoable => "refused.not_undoable",
            Refused::AlreadyUndone => "refused.already_undone",
            Refused::ChangedSince => "refused.changed_since",
            Refused::NotRecheckable => "refused.not_recheckable",
        }
    }
}

/// The status columns of a failure, read in scope.
struct Head {
    status: FailureStatus,
    verified: bool,
    idp: Option<String>,
    subject: Option<String>,
    school: Option<String>,
    kind: String,
    resolved_by: Option<String>,
    resolved_at: Option<String>,
}

async fn head(
    conn: &mut SqliteConnection,
    scope: &Scope,
    reference: &str,
) -> Result<Option<Head>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT status, asserted_verified, idp_entity_id, subject, school_code, kind, resolved_by, resolved_at FROM failures WHERE reference = ");
    q.push_bind(reference);
    scope.push_condition(&mut q, "school_code");
    Ok(q.build().fetch_optional(&mut *conn).await?.map(|r| Head {
        status: FailureStatus::parse(r.get("status")).unwrap_or(FailureStatus::Open),
        verified: r.get::<i64, _>("asserted_verified") != 0,
        idp: r.get("idp_entity_id"),
        subject: r.get("subject"),
        school: r.get("school_code"),
        kind: r.get("kind"),
        resolved_by: r.get("resolved_by"),
        resolved_at: r.get("resolved_at"),
    }))
}

fn handled(h: &Head) -> Refused {
    Refused::AlreadyHandled {
        status: h.status,
        by: h.resolved_by.clone(),
        at: h.resolved_at.clone(),
    }
}

/// Maps a failure's identity to an account (source `admin`), resolves it and
/// every other open failure of the same (IdP, subject). Returns how many
/// failures were resolved.
pub async fn resolve(
    conn: &mut SqliteConnection,
    scope: &Scope,
    reference: &str,
    account_id: &str,
    actor: &str,
) -> Result<Result<u64, Refused>, sqlx::Error> {
    let Some(h) = head(conn, scope, reference).await? else {
        return Ok(Err(Refused::NotFound));
    };
    if !h.status.is_open() {
        return Ok(Err(handled(&h)));
    }
    // Only an identity whose assertion passed every check may be linked:
    // the subject of a refused signature is whatever a forger wrote.
    let resolvable = h
        .kind
        .parse::<crate::resolve::FailureKind>()
        .is_ok_and(|k| k.is_resolvable());
    let (Some(idp), Some(subject), true, true) =
        (h.idp.clone(), h.subject.clone(), h.verified, resolvable)
    else {
        return Ok(Err(Refused::NothingToMap));
    };
    let account = match accounts::get(conn, account_id).await? {
        Some(a) if scope.allows(Some(&a.school_code)) => a,
        _ => return Ok(Err(Refused::AccountNotAllowed)),
    };
    if !account.active {
        return Ok(Err(Refused::AccountInactive));
    }
    let created = mappings::insert(
        conn,
        &idp,
        &subject,
        account_id,
        mappings::Source::Admin,
        Some(actor),
    )
    .await?;
    if !created {
        let existing = mappings::find(conn, &idp, &subject)
            .await?
            .unwrap_or_default();
        if existing != account_id {
            return Ok(Err(mapped_to_other(conn, scope, existing).await?));
        }
    }
    // The identity's other open failures are resolved too, within scope;
    // the entry names them all, and the mapping if made now, for undo.
    let identity = (idp.as_str(), subject.as_str());
    let (resolved, trail) = undo::resolve_with_trail(
        conn,
        scope,
        identity,
        account_id,
        actor,
        created,
        super::failures::ResolvedBy::Admin,
    )
    .await?;
    audit::record(
        conn,
        actor,
        "failure.resolve",
        Some(reference),
        h.school.as_deref(),
        Some(json!({"status": "open", "kind": h.kind})),
        Some(trail),
    )
    .await?;
    Ok(Ok(resolved))
}

/// Closes an open failure without linking, with a reason.
pub async fn dismiss(
    conn: &mut SqliteConnection,
    scope: &Scope,
    reference: &str,
    reason: &str,
    actor: &str,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Ok(Err(Refused::Invalid("refused.reason_required")));
    }
    let Some(h) = head(conn, scope, reference).await? else {
        return Ok(Err(Refused::NotFound));
    };
    // The entry keeps the time written, so an undo can tell this dismissal
    // from a later one.
    let at = super::now_text();
    let mut q =
        QueryBuilder::<Sqlite>::new("UPDATE failures SET status = 'dismissed', dismiss_reason = ");
    q.push_bind(reason)
        .push(", resolved_by = ")
        .push_bind(actor)
        .push(", resolved_at = ")
        .push_bind(at.clone())
        .push(", resolution_source = 'admin'\n         WHERE reference = ")
        .push_bind(reference)
        .push(" AND status = 'open'");
    scope.push_condition(&mut q, "school_code");
    let r = q.build().execute(&mut *conn).await?;
    if r.rows_affected() == 0 {
        return Ok(Err(handled(&h)));
    }
    audit::record(
        conn,
        actor,
        "failure.dismiss",
        Some(reference),
        h.school.as_deref(),
        Some(json!({"status": "open"})),
        Some(json!({"status": "dismissed", "reason": reason, "at": at})),
    )
    .await?;
    Ok(Ok(()))
}

/// Reopens a resolved or dismissed failure. A mapping made by resolving it
/// stays (unlink it on the mappings page).
pub async fn reopen(
    conn: &mut SqliteConnection,
    scope: &Scope,
    reference: &str,
    actor: &str,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let Some(h) = head(conn, scope, reference).await? else {
        return Ok(Err(Refused::NotFound));
    };
    if h.status.is_open() {
        return Ok(Err(handled(&h)));
    }
    let r = sqlx::query(
        "UPDATE failures SET status = 'open', resolved_account_id = NULL, resolved_by = NULL, resolved_at = NULL, resolution_source = NULL, dismiss_reason = NULL
         WHERE reference = ? AND status = ?",
    )
    .bind(reference)
    .bind(h.status.as_str())
    .execute(&mut *conn)
    .await;
    match r {
        Ok(r) if r.rows_affected() == 1 => {}
        Ok(_) => return Ok(Err(handled(&h))),
        Err(e) if super::is_unique_violation(&e) => return Ok(Err(Refused::AlreadyOpenTwin)),
        Err(e) => return Err(e),
    }
    audit::record(
        conn,
        actor,
        "failure.reopen",
        Some(reference),
        h.school.as_deref(),
        Some(json!({"status": h.status, "resolved_by": h.resolved_by})),
        Some(json!({"status": "open"})),
    )
    .await?;
    Ok(Ok(()))
}

/// Creates a mapping by hand, for an account in scope.
pub async fn create_mapping(
    conn: &mut SqliteConnection,
    scope: &Scope,
    idp: &str,
    subject: &str,
    account_id: &str,
    actor: &str,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let (idp, subject) = (idp.trim(), subject.trim());
    if idp.is_empty() || subject.is_empty() {
        return Ok(Err(Refused::Invalid("refused.identity_required")));
    }
    let account = match accounts::get(conn, account_id.trim()).await? {
        Some(a) if scope.allows(Some(&a.school_code)) => a,
        _ => return Ok(Err(Refused::AccountNotAllowed)),
    };
    if !mappings::insert(
        conn,
        idp,
        subject,
        &account.account_id,
        mappings::Source::Admin,
        Some(actor),
    )
    .await?
    {
        let existing = mappings::find(conn, idp, subject)
            .await?
            .unwrap_or_default();
        return Ok(Err(mapped_to_other(conn, scope, existing).await?));
    }
    let row = mappings::identity_row(conn, idp, subject).await?;
    audit::record(
        conn,
        actor,
        "mapping.create",
        Some(&format!("{idp} {subject}")),
        Some(&account.school_code),
        None,
        Some(
            json!({"idp_entity_id": idp, "subject": subject, "account_id": account.account_id,
            "mapping_id": row.as_ref().map(|r| r.0), "created_at": row.map(|r| r.1)}),
        ),
    )
    .await?;
    Ok(Ok(()))
}

/// Deletes (unlinks) a mapping whose account is in scope.
pub async fn delete_mapping(
    conn: &mut SqliteConnection,
    scope: &Scope,
    id: i64,
    actor: &str,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let Some(m) = mappings::get(conn, scope, id).await? else {
        return Ok(Err(Refused::NotFound));
    };
    // Scoped in the statement too, though the SELECT above already was.
    let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM mappings WHERE id = ");
    q.push_bind(id)
        .push(" AND account_id IN (SELECT account_id FROM accounts WHERE 1=1");
    scope.push_condition(&mut q, "school_code");
    q.push(")");
    q.build().execute(&mut *conn).await?;
    audit::record(conn, actor, "mapping.delete", Some(&format!("{} {}", m.idp_entity_id, m.subject)), Some(&m.school_code), Some(json!({"idp_entity_id": m.idp_entity_id, "subject": m.subject, "account_id": m.account_id, "source": m.source,
        "mapping_id": m.id, "created_at": m.created_at, "created_by": m.created_by})), None).await?;
    Ok(Ok(()))
}

/// The refusal for an identity already linked: the account is named only
/// when the admin may see it.
async fn mapped_to_other(
    conn: &mut SqliteConnection,
    scope: &Scope,
    account_id: String,
) -> Result<Refused, sqlx::Error> {
    let visible = accounts::get(conn, &account_id)
        .await?
        .is_some_and(|a| scope.allows(Some(&a.school_code)));
    Ok(Refused::MappedToOther(visible.then_some(account_id)))
}
