//! What a preview says an import would resolve, told with reads only: what
//! `resolve_open_failures` would do after the import, with the staged rows
//! laid over the database. A preview never takes the write lock.

use super::Options;
use crate::resolve::{parse_date, AssertedPerson, ImportKind, KnownIdps};
use crate::store::imports;
use crate::store::{accounts, mappings};
use sqlx::SqliteConnection;
use std::collections::HashSet;

/// How many open failures the import would resolve, told with reads only:
/// what [`resolve_open_failures`] would do after the import, with the staged
/// rows laid over the database.
pub(super) async fn would_resolve(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    opts: &Options,
) -> Result<u64, sqlx::Error> {
    let mut resolved = 0;
    for open in imports::open_identities(conn, &opts.scope).await? {
        let staged = match kind {
            ImportKind::Mappings => {
                imports::staged_mapping(conn, &open.idp_entity_id, &open.subject).await?
            }
            _ => None,
        };
        let mapped = match staged {
            Some(a) => Some(a),
            None => mappings::find(conn, &open.idp_entity_id, &open.subject).await?,
        };
        let found = match mapped {
            Some(a) => active_after(conn, kind, opts, &a).await?,
            None => would_match(conn, idps, kind, opts, &open).await?,
        };
        resolved += u64::from(found);
    }
    Ok(resolved)
}

/// Whether an account is active once the import is done.
async fn active_after(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    opts: &Options,
    account_id: &str,
) -> Result<bool, sqlx::Error> {
    if kind == ImportKind::Accounts {
        if let Some(s) = imports::staged_account(conn, account_id).await? {
            return Ok(s.active);
        }
    }
    let Some(a) = accounts::get(conn, account_id).await? else {
        return Ok(false);
    };
    let replaced = kind == ImportKind::Accounts
        && opts.replace_school.as_deref() == Some(a.school_code.as_str());
    Ok(a.active && !replaced)
}

/// Whether [`match_unmapped`] would find exactly one account after the
/// import, without mapping it.
async fn would_match(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    opts: &Options,
    open: &imports::OpenIdentity,
) -> Result<bool, sqlx::Error> {
    let Some((key, school)) = identity_of(idps, open) else {
        return Ok(false);
    };
    let mut ids: HashSet<String> = HashSet::new();
    for a in accounts::identity_matches(conn, std::slice::from_ref(&school), &key).await? {
        // A staged row replaces the stored one: it is counted below if it
        // still matches.
        let staged = kind == ImportKind::Accounts
            && imports::staged_account(conn, &a.account_id)
                .await?
                .is_some();
        if !staged && active_after(conn, kind, opts, &a.account_id).await? {
            ids.insert(a.account_id);
        }
    }
    if kind == ImportKind::Accounts {
        ids.extend(imports::staged_identity_matches(conn, &school, &key).await?);
    }
    let mut ids = ids.into_iter();
    let (Some(one), None) = (ids.next(), ids.next()) else {
        return Ok(false);
    };
    Ok(mappings::subjects_for(conn, &open.idp_entity_id, &one)
        .await?
        .is_empty())
}

/// The identity key and school of an open failure, when its IdP matches by
/// identity and the assertion gave enough.
pub(super) fn identity_of(
    idps: &KnownIdps,
    open: &imports::OpenIdentity,
) -> Option<(crate::resolve::IdentityKey, String)> {
    let person = AssertedPerson {
        last_name: open.last_name.clone(),
        first_name: open.first_name.clone(),
        birth_date: open.birth_date.as_deref().and_then(parse_date),
        ..Default::default()
    };
    if !idps.matches_identity(&open.idp_entity_id) {
        return None;
    }
    Some((person.identity_key()?, open.school_code.clone()?))
}
