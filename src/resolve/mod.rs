//! The pure domain: failure kinds, school codes, name folding and the rules of
//! identity resolution. Nothing here knows HTTP or SQL.

pub mod attributes;
pub mod kinds;
pub mod lead;
pub mod names;
pub mod ranking;
pub mod report;
pub mod school_code;

pub use kinds::{FailureKind, FailureStatus};
pub use names::{fold_name, parse_date, prefix_within};
pub use school_code::{parse_school_code, SchoolCode};

use chrono::NaiveDate;

/// A person's role in the school, as stored on accounts and read from IdP
/// affiliations or CSV files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Parent,
    Teacher,
    Staff,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Student, Role::Parent, Role::Teacher, Role::Staff];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Parent => "parent",
            Role::Teacher => "teacher",
            Role::Staff => "staff",
        }
    }

    /// Reads a role word in English, French or Dutch (CSV files), or an IdP
    /// affiliation value (Entree's `eduPersonAffiliation`, EduConnect's
    /// `eleve1d`/`resp2d`, ENT profiles such as `National_ELV`).
    pub fn parse(raw: &str) -> Option<Role> {
        let w = fold_name(raw);
        let role = match w.as_str() {
            "student" | "eleve" | "leerling" | "pupil" | "eleve1d" | "eleve2d" | "nationalelv" => {
                Role::Student
            }
            "parent" | "responsable" | "ouder" | "resp1d" | "resp2d" | "nationaltut" => {
                Role::Parent
            }
            "teacher" | "enseignant" | "professeur" | "docent" | "faculty" | "nationalens" => {
                Role::Teacher
            }
            "staff" | "personnel" | "medewerker" | "employee" | "nationaldir" | "nationalevs"
            | "nationaleto" | "nationalcol" => Role::Staff,
            _ => return None,
        };
        Some(role)
    }
}

/// Which table an import fills (SPEC §5: schools, accounts, mappings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Schools,
    Accounts,
    Mappings,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Schools => "schools",
            ImportKind::Accounts => "accounts",
            ImportKind::Mappings => "mappings",
        }
    }

    pub fn parse(s: &str) -> Option<ImportKind> {
        match s {
            "schools" => Some(ImportKind::Schools),
            "accounts" => Some(ImportKind::Accounts),
            "mappings" => Some(ImportKind::Mappings),
            _ => None,
        }
    }
}

/// What an assertion says about the person, read from the attributes the IdP
/// is configured (or known by default) to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssertedPerson {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub role: Option<Role>,
    pub class_name: Option<String>,
}

/// The key automatic matching compares: folded last name, folded first name
/// and birth date. Matching is only attempted when all three are asserted:
/// a name alone is not enough to hand a pupil's account to somebody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityKey {
    pub folded_last: String,
    pub folded_first: String,
    pub birth_date: NaiveDate,
}

impl AssertedPerson {
    pub fn identity_key(&self) -> Option<IdentityKey> {
        let folded_last = fold_name(self.last_name.as_deref()?);
        let folded_first = fold_name(self.first_name.as_deref()?);
        if folded_last.is_empty() || folded_first.is_empty() {
            return None;
        }
        Some(IdentityKey {
            folded_last,
            folded_first,
            birth_date: self.birth_date?,
        })
    }
}

/// The outcome of automatic matching over the accounts whose identity key
/// equals the asserted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    Unique(String),
    None,
    Several(Vec<String>),
}

/// Decides from the exact matches found: one is a match, several are homonyms
/// (never a guess), none is a mismatch.
pub fn decide_match(mut exact: Vec<String>) -> MatchOutcome {
    match exact.len() {
        0 => MatchOutcome::None,
        1 => MatchOutcome::Unique(exact.remove(0)),
        _ => {
            exact.sort();
            MatchOutcome::Several(exact)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_words_in_three_languages_are_read() {
        assert_eq!(Role::parse("Élève"), Some(Role::Student));
        assert_eq!(Role::parse("leerling"), Some(Role::Student));
        assert_eq!(Role::parse("Responsable"), Some(Role::Parent));
        assert_eq!(Role::parse("ouder"), Some(Role::Parent));
        assert_eq!(Role::parse("professeur"), Some(Role::Teacher));
        assert_eq!(Role::parse("docent"), Some(Role::Teacher));
        assert_eq!(Role::parse("medewerker"), Some(Role::Staff));
        assert_eq!(Role::parse("National_ELV"), Some(Role::Student));
        assert_eq!(Role::parse("astronaut"), None);
    }

    #[test]
    fn identity_key_needs_both_names_and_the_birth_date() {
        let mut p = AssertedPerson {
            last_name: Some("Dupont-Martin".into()),
            first_name: Some("Élodie".into()),
            birth_date: NaiveDate::from_ymd_opt(2010, 5, 1),
            ..Default::default()
        };
        let key = p.identity_key().expect("complete identity");
        assert_eq!(key.folded_last, "dupontmartin");
        assert_eq!(key.folded_first, "elodie");
        p.birth_date = None;
        assert_eq!(p.identity_key(), None);
        p.birth_date = NaiveDate::from_ymd_opt(2010, 5, 1);
        p.first_name = Some(" - ".into());
        assert_eq!(p.identity_key(), None);
    }

    #[test]
    fn homonyms_are_never_guessed() {
        assert_eq!(decide_match(vec![]), MatchOutcome::None);
        assert_eq!(
            decide_match(vec!["a1".into()]),
            MatchOutcome::Unique("a1".into())
        );
        assert_eq!(
            decide_match(vec!["b".into(), "a".into()]),
            MatchOutcome::Several(vec!["a".into(), "b".into()])
        );
    }
}

/// The configured IdPs by entity ID, with whether automatic matching is on
/// for each: what imports need, without keys or a verifier.
#[derive(Debug, Clone, Default)]
pub struct KnownIdps(pub std::collections::HashMap<String, bool>);

impl KnownIdps {
    pub fn contains(&self, entity_id: &str) -> bool {
        self.0.contains_key(entity_id)
    }

    pub fn matches_identity(&self, entity_id: &str) -> bool {
        self.0.get(entity_id).copied().unwrap_or(false)
    }
}

/// What an admin (or an API client) may see: every school, or its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRole {
    Superadmin,
    SchoolAdmin,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Superadmin => "superadmin",
            AdminRole::SchoolAdmin => "school_admin",
        }
    }

    pub fn parse(s: &str) -> Option<AdminRole> {
        [AdminRole::Superadmin, AdminRole::SchoolAdmin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// A school admin has at least one school; a superadmin none (they
    /// see every school, a list would only mislead).
    pub fn check_schools(self, count: usize) -> Result<(), &'static str> {
        match (self, count) {
            (AdminRole::SchoolAdmin, 0) => {
                Err("--role school_admin needs at least one --school CODE")
            }
            (AdminRole::Superadmin, n) if n > 0 => {
                Err("--school is for school_admin only (a superadmin sees every school)")
            }
            _ => Ok(()),
        }
    }
}
