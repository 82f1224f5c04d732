//! The failure kinds of SPEC §2: one name per way a login can fail, with the
//! HTTP status the browser gets.

use std::fmt;
use std::str::FromStr;

/// Why a login could not be resolved. Exactly one kind per recorded failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    MalformedRequest,
    UnknownIssuer,
    InvalidSignature,
    WrongAudience,
    Expired,
    Replayed,
    IdpError,
    MissingSchoolCode,
    InvalidSchoolCode,
    UnknownSchool,
    UntrustedSchool,
    MissingSubject,
    IdentityMismatch,
    AmbiguousIdentity,
    AccountDisabled,
}

impl FailureKind {
    /// Every kind, in the order of SPEC §2.
    pub const ALL: [FailureKind; 15] = [
        FailureKind::MalformedRequest,
        FailureKind::UnknownIssuer,
        FailureKind::InvalidSignature,
        FailureKind::WrongAudience,
        FailureKind::Expired,
        FailureKind::Replayed,
        FailureKind::IdpError,
        FailureKind::MissingSchoolCode,
        FailureKind::InvalidSchoolCode,
        FailureKind::UnknownSchool,
        FailureKind::UntrustedSchool,
        FailureKind::MissingSubject,
        FailureKind::IdentityMismatch,
        FailureKind::AmbiguousIdentity,
        FailureKind::AccountDisabled,
    ];

    /// The stable name used in the database, CSV, JSON and meta tags.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::MalformedRequest => "malformed_request",
            FailureKind::UnknownIssuer => "unknown_issuer",
            FailureKind::InvalidSignature => "invalid_signature",
            FailureKind::WrongAudience => "wrong_audience",
            FailureKind::Expired => "expired",
            FailureKind::Replayed => "replayed",
            FailureKind::IdpError => "idp_error",
            FailureKind::MissingSchoolCode => "missing_school_code",
            FailureKind::InvalidSchoolCode => "invalid_school_code",
            FailureKind::UnknownSchool => "unknown_school",
            FailureKind::UntrustedSchool => "untrusted_school",
            FailureKind::MissingSubject => "missing_subject",
            FailureKind::IdentityMismatch => "identity_mismatch",
            FailureKind::AmbiguousIdentity => "ambiguous_identity",
            FailureKind::AccountDisabled => "account_disabled",
        }
    }

    /// Whether an admin may link the identity of a failure of this kind to an
    /// account: a verified assertion refused for its school code or its
    /// identity, never for its signature, audience, time or replay.
    pub fn is_resolvable(self) -> bool {
        matches!(
            self,
            FailureKind::MissingSchoolCode
                | FailureKind::InvalidSchoolCode
                | FailureKind::UnknownSchool
                | FailureKind::IdentityMismatch
                | FailureKind::AmbiguousIdentity
                | FailureKind::AccountDisabled
        )
    }

    /// Whether the user can fill in the failure form for this kind: only when
    /// the assertion was valid but matched no single account.
    pub fn has_form(self) -> bool {
        matches!(
            self,
            FailureKind::IdentityMismatch | FailureKind::AmbiguousIdentity
        )
    }

    /// Whether logging in again, unchanged, may well work: the login was
    /// spoiled on the way (a stale or damaged message, a slow or replayed
    /// one, a portal that stumbled), not refused for who the user is or
    /// which school they belong to. These pages offer "back to your portal".
    pub fn can_retry(self) -> bool {
        matches!(
            self,
            FailureKind::MalformedRequest
                | FailureKind::InvalidSignature
                | FailureKind::WrongAudience
                | FailureKind::Expired
                | FailureKind::Replayed
                | FailureKind::IdpError
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown failure kind {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in FailureKind::ALL {
            assert_eq!(kind.as_str().parse::<FailureKind>(), Ok(kind));
        }
        assert!("nonsense".parse::<FailureKind>().is_err());
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        assert!(!FailureKind::UntrustedSchool.is_resolvable());
    }

    #[test]
    fn only_a_spoiled_login_is_worth_retrying_unchanged() {
        for kind in FailureKind::ALL {
            // Retrying never helps where an admin or the form is the way out.
            assert!(!(kind.can_retry() && (kind.is_resolvable() || kind.has_form())));
        }
        assert!(FailureKind::Expired.can_retry());
        assert!(!FailureKind::UntrustedSchool.can_retry());
    }
}

/// Where a failure stands on the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureStatus {
    /// Waiting for an admin (or for the next login to succeed).
    Open,
    /// Linked to an account: the next login works.
    Resolved,
    /// Closed without a link.
    Dismissed,
}

impl FailureStatus {
    pub const ALL: [FailureStatus; 3] = [
        FailureStatus::Open,
        FailureStatus::Resolved,
        FailureStatus::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureStatus::Open => "open",
            FailureStatus::Resolved => "resolved",
            FailureStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<FailureStatus> {
        FailureStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        self == FailureStatus::Open
    }
}

impl std::fmt::Display for FailureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
