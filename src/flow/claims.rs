//! What is read of a verified or unverified assertion's claims (subject,
//! person), and what is kept of them with a failure, within bounds.

use crate::resolve::{parse_date, prefix_within, AssertedPerson, Role};
use crate::saml::Claims;
use crate::store::failures;

/// The subject the IdP's `subject` setting names: the NameID (unless it is
/// transient: a new value at every login names nobody, and mapping it would
/// lock the person out from the next login on), or the first value of an
/// attribute by name, FriendlyName or alias. `Err` says why there is none,
/// for the admin.
pub(super) fn subject_of(claims: &Claims, subject: &str) -> Result<String, String> {
    let value = if subject.eq_ignore_ascii_case("nameid") {
        if claims.name_id_is_transient() {
            return Err("this IdP sends transient NameIDs (a new value at every login, naming no person): ask the IdP operator for persistent NameIDs, or set this IdP's subject to an attribute (subject-id, pairwise-id, eduPersonTargetedID or the IdP's own ID attribute)".into());
        }
        claims.name_id.as_deref()
    } else {
        claims.first(&[subject])
    };
    value
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            if subject.eq_ignore_ascii_case("nameid") {
                claims.name_id_error.clone().unwrap_or_else(|| {
                    "no NameID in the assertion (subject = \"nameid\")".to_string()
                })
            } else {
                format!("no value for the subject attribute {subject:?}")
            }
        })
}

pub(super) fn person_of(claims: &Claims, attrs: &crate::config::AttributeNames) -> AssertedPerson {
    AssertedPerson {
        last_name: claims.first(&attrs.last_name).map(str::to_string),
        first_name: claims.first(&attrs.first_name).map(str::to_string),
        birth_date: claims.first(&attrs.birth_date).and_then(parse_date),
        role: claims
            .all_values(&attrs.role)
            .into_iter()
            .find_map(Role::parse),
        class_name: claims.first(&attrs.class_name).map(str::to_string),
    }
}

/// What is kept of the claims of a failure: a stranger's forged post is
/// stored too, so each part is bounded (README, "Bounded storage").
pub const MAX_STORED_ATTRIBUTES: usize = 64;
pub const MAX_STORED_VALUES: usize = 16;
pub const MAX_STORED_NAME_BYTES: usize = 256;
pub const MAX_STORED_VALUE_BYTES: usize = 1024;
pub const MAX_STORED_CLAIM_BYTES: usize = 16 * 1024;
/// The longest subject taken (the failure's `subject` column holds as much).
pub const MAX_SUBJECT_BYTES: usize = 1024;

/// The claims within the storage bounds above, and at most
/// [`MAX_STORED_CLAIM_BYTES`] of names and values in all: what does not fit
/// is left out (the raw response, itself capped, shows the rest).
fn bounded(claims: &Claims) -> Claims {
    let budget = std::cell::Cell::new(MAX_STORED_CLAIM_BYTES);
    let take = |s: &str, max: usize| {
        let v = prefix_within(s, max.min(budget.get())).to_string();
        budget.set(budget.get() - v.len());
        v
    };
    let name_id = claims
        .name_id
        .as_deref()
        .map(|n| take(n, MAX_STORED_VALUE_BYTES));
    let name_id_format = claims
        .name_id_format
        .as_deref()
        .map(|f| take(f, MAX_STORED_NAME_BYTES));
    let mut attributes = Vec::new();
    for a in claims.attributes.iter().take(MAX_STORED_ATTRIBUTES) {
        if budget.get() < MAX_STORED_NAME_BYTES {
            break;
        }
        let name = take(&a.name, MAX_STORED_NAME_BYTES);
        let friendly_name = a
            .friendly_name
            .as_deref()
            .map(|n| take(n, MAX_STORED_NAME_BYTES));
        let values = a
            .values
            .iter()
            .take(MAX_STORED_VALUES)
            .map(|v| take(v, MAX_STORED_VALUE_BYTES))
            .collect();
        attributes.push(crate::saml::Attr {
            name,
            friendly_name,
            values,
        });
    }
    Claims {
        name_id,
        name_id_format,
        name_id_error: claims
            .name_id_error
            .as_deref()
            .map(|e| take(e, MAX_STORED_VALUE_BYTES)),
        attributes,
    }
}

pub(super) fn describe_claims(
    f: &mut failures::NewFailure,
    claims: &Claims,
    attrs: &crate::config::AttributeNames,
    verified: bool,
) {
    let claims = &bounded(claims);
    let p = person_of(claims, attrs);
    f.asserted_json = serde_json::to_string(claims).unwrap_or_else(|_| "{}".into());
    f.asserted_verified = verified;
    f.asserted_last_name = p.last_name;
    f.asserted_first_name = p.first_name;
    // The date as sent when it does not parse, so the admin sees it.
    f.asserted_birth_date = p
        .birth_date
        .map(|d| d.format("%Y-%m-%d").to_string())
        .or_else(|| claims.first(&attrs.birth_date).map(str::to_string));
    f.asserted_role = p.role.map(|r| r.as_str().to_string());
    f.asserted_class_name = p.class_name;
}
