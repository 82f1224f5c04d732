//! The account of a verified login whose school and subject are known: an
//! existing mapping, the account ID the IdP passes, or careful matching.

use super::claims::person_of;
use super::{Known, Refusal, Step};
use crate::resolve::{decide_match, FailureKind, MatchOutcome, SchoolCode};
use crate::saml::Verified;
use crate::store::{accounts, mappings};
use sqlx::SqliteConnection;

/// A verified login once its school and subject are known.
pub(super) struct Login<'a> {
    pub(super) idp: &'a crate::saml::Idp,
    pub(super) v: &'a Verified,
    pub(super) known: &'a Known,
    pub(super) subject: &'a str,
    /// The asserted schools the IdP is trusted for.
    pub(super) schools: &'a [SchoolCode],
}

/// The account: an existing mapping, else the account ID the IdP passes,
/// else careful automatic matching; the last two map the identity.
pub(super) async fn find_account(conn: &mut SqliteConnection, login: &Login<'_>) -> Step<String> {
    let Login {
        v,
        known,
        subject,
        schools,
        ..
    } = *login;
    // 1. An existing mapping. The mapped account must belong to a school
    // the assertion names: a mapping made in one school's desk cannot
    // carry a login of another.
    if let Some(account_id) = mappings::find(conn, &v.issuer, subject).await? {
        return Ok(match accounts::get(conn, &account_id).await? {
            Some(a) if a.active && schools.iter().any(|c| c.is(&a.school_code)) => Ok(account_id),
            Some(a) if a.active => Err(known.refuse(
                FailureKind::IdentityMismatch,
                format!("mapped to account {account_id} of school {}, which the assertion does not name", a.school_code),
            )),
            _ => Err(known.refuse(
                FailureKind::AccountDisabled,
                format!("mapped to account {account_id}, which is deactivated"),
            )),
        });
    }
    let mut notes = Vec::new();
    if let Some(account) = step!(by_passed_id(conn, login, &mut notes)) {
        return Ok(Ok(account));
    }
    by_matching(conn, login, notes).await
}

/// Second way: the IdP passes our account ID; only an account of the asserted
/// school(s) is taken, so one school's IdP cannot reach another's pupils.
/// Why a passed ID was not taken goes into `notes`.
async fn by_passed_id(
    conn: &mut SqliteConnection,
    login: &Login<'_>,
    notes: &mut Vec<String>,
) -> Step<Option<String>> {
    let Login {
        idp,
        v,
        known,
        subject,
        schools,
    } = *login;
    let Some(attr) = &idp.config.account_id_attribute else {
        return Ok(Ok(None));
    };
    let Some(account_id) = v.claims.first(&[attr.as_str()]) else {
        return Ok(Ok(None));
    };
    match accounts::get(conn, account_id).await? {
        Some(a) if schools.iter().any(|c| c.is(&a.school_code)) => {
            if !a.active {
                return Ok(Err(known.refuse(
                    FailureKind::AccountDisabled,
                    format!("account {account_id} passed by the IdP is deactivated"),
                )));
            }
            mappings::insert(
                conn,
                &v.issuer,
                subject,
                &a.account_id,
                mappings::Source::Attribute,
                None,
            )
            .await?;
            return Ok(Ok(Some(a.account_id)));
        }
        Some(_) => notes.push(format!(
            "account {account_id} passed in {attr} belongs to another school"
        )),
        None => notes.push(format!(
            "account {account_id} passed in {attr} does not exist"
        )),
    }
    Ok(Ok(None))
}

/// Third way: careful automatic matching in the asserted school(s): exactly one
/// active account with the asserted last name, first name and birth date,
/// not yet linked to another identity of the IdP.
async fn by_matching(
    conn: &mut SqliteConnection,
    login: &Login<'_>,
    notes: Vec<String>,
) -> Step<String> {
    let Login {
        idp,
        v,
        known,
        subject,
        schools,
    } = *login;
    let mismatch = |mut notes: Vec<String>, note: String| {
        notes.push(note);
        Ok(Err(
            known.refuse(FailureKind::IdentityMismatch, notes.join("; "))
        ))
    };
    if !idp.config.match_identity {
        return mismatch(notes, "automatic matching is off for this IdP".into());
    }
    let person = person_of(&v.claims, &idp.config.attributes);
    let Some(key) = person.identity_key() else {
        return mismatch(
            notes,
            "the assertion lacks last name, first name or birth date, so no automatic match".into(),
        );
    };
    let codes: Vec<String> = schools.iter().map(SchoolCode::to_string).collect();
    let found = accounts::identity_matches(conn, &codes, &key).await?;
    let (active, inactive): (Vec<_>, Vec<_>) = found.into_iter().partition(|a| a.active);
    match decide_match(active.into_iter().map(|a| a.account_id).collect()) {
        MatchOutcome::Unique(account_id) => {
            let others = mappings::subjects_for(conn, &v.issuer, &account_id).await?;
            if !others.is_empty() {
                return mismatch(notes, format!("the only matching account {account_id} is already linked to another identity at this IdP"));
            }
            mappings::insert(
                conn,
                &v.issuer,
                subject,
                &account_id,
                mappings::Source::Auto,
                None,
            )
            .await?;
            Ok(Ok(account_id))
        }
        MatchOutcome::Several(ids) => Ok(Err(Refusal {
            candidates: Some(ids.join(",")),
            ..known.refuse(
                FailureKind::AmbiguousIdentity,
                format!("{} accounts match name and birth date", ids.len()),
            )
        })),
        MatchOutcome::None if !inactive.is_empty() => Ok(Err(known.refuse(
            FailureKind::AccountDisabled,
            format!(
                "the matching account {} is deactivated",
                inactive[0].account_id
            ),
        ))),
        MatchOutcome::None => mismatch(
            notes,
            "no account matches name and birth date in the school".into(),
        ),
    }
}
