//! Why an import file or row is refused, as typed values: the admin pages
//! render them in the admin's language (`describe`), the CLI in English
//! (`Display`, from the same catalogue). Values taken from the file are
//! kept truncated ([`Shown`]): an error never echoes a cell in full, so a
//! file of huge bad cells cannot make a huge error list.

use crate::i18n::{Lang, Tr};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The characters of a file's value shown in an error; longer ones end in `…`.
pub const SHOWN_CHARS: usize = 40;

/// A value from the file as errors show it: at most [`SHOWN_CHARS`]
/// characters (then `…`), control characters escaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shown(String);

impl Shown {
    pub fn new(value: &str) -> Shown {
        let mut s = String::new();
        for (i, c) in value.chars().enumerate() {
            if i == SHOWN_CHARS {
                s.push('…');
                break;
            }
            if c.is_control() {
                s.extend(c.escape_debug());
            } else {
                s.push(c);
            }
        }
        Shown(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// In double quotes, as the messages show a cell's value.
    fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a file, a header or a row is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// Nothing but white space.
    EmptyFile,
    /// Control bytes: a spreadsheet or archive, not CSV text.
    BinaryData,
    /// UTF-8 with a byte that is not (mixed encodings are refused, never
    /// guessed); `column` counts characters on the line, from 1.
    InvalidUtf8 {
        column: u64,
    },
    /// UTF-16 (with its BOM) with a broken character.
    InvalidUtf16 {
        column: u64,
    },
    /// A NUL character: no text file has one.
    NulCharacter {
        column: u64,
    },
    /// A quoted field that never closes (a file cut short).
    UnclosedQuote {
        opened: u64,
    },
    NoRows,
    ReplaceNotAccounts,
    ReplaceNotYours {
        school: Shown,
    },
    UnreadableHeader {
        detail: Shown,
    },
    MissingColumn,
    DuplicateColumn,
    FieldCount {
        found: u64,
        expected: u64,
    },
    UnreadableRow {
        detail: Shown,
    },
    /// A required cell is empty.
    Empty,
    /// A cell over its column's limit (`rows::LIMITS`).
    TooLong {
        limit: usize,
        length: usize,
        value: Shown,
    },
    NotEmail {
        value: Shown,
    },
    NotPhone {
        value: Shown,
    },
    NotWebAddress {
        value: Shown,
    },
    IdpsSuperadminOnly,
    UnknownIdp {
        value: Shown,
    },
    NotSchoolCode {
        value: Shown,
    },
    SchoolNotRegistered {
        school: Shown,
    },
    SchoolNotYours {
        school: Shown,
    },
    SchoolNotReplaced {
        school: Shown,
        replaced: Shown,
    },
    NotDate {
        value: Shown,
    },
    NotRole {
        value: Shown,
    },
    NotYesNo {
        value: Shown,
    },
    /// The row's key appeared on an earlier line.
    Duplicate {
        key: Shown,
        first_line: u64,
    },
    NoSuchAccount {
        value: Shown,
    },
    AccountOfAnotherSchool {
        value: Shown,
    },
    AccountNotInYourSchools {
        value: Shown,
    },
    SubjectOfAnotherSchool {
        value: Shown,
    },
    /// A database check this list does not know yet (English only).
    Refused {
        value: Shown,
        why: String,
    },
}

impl Reason {
    /// The database's refusal of a staged value (`store::imports::Problem`).
    pub fn from_store(value: &str, why: &str) -> Reason {
        let value = Shown::new(value);
        match why {
            "does not exist" => Reason::NoSuchAccount { value },
            "belongs to another school" => Reason::AccountOfAnotherSchool { value },
            "does not exist in your schools" => Reason::AccountNotInYourSchools { value },
            "is linked to an account of another school" => Reason::SubjectOfAnotherSchool { value },
            _ => Reason::Refused {
                value,
                why: why.to_string(),
            },
        }
    }

    /// The catalogue key of the message.
    pub fn key(&self) -> &'static str {
        use Reason::*;
        match self {
            EmptyFile => "admin.import.error.empty_file",
            BinaryData => "admin.import.error.binary_data",
            InvalidUtf8 { .. } => "admin.import.error.invalid_utf8",
            InvalidUtf16 { .. } => "admin.import.error.invalid_utf16",
            NulCharacter { .. } => "admin.import.error.nul_character",
            UnclosedQuote { .. } => "admin.import.error.unclosed_quote",
            NoRows => "admin.import.error.no_rows",
            ReplaceNotAccounts => "admin.import.error.replace_not_accounts",
            ReplaceNotYours { .. } => "admin.import.error.replace_not_yours",
            UnreadableHeader { .. } => "admin.import.error.unreadable_header",
            MissingColumn => "admin.import.error.missing_column",
            DuplicateColumn => "admin.import.error.duplicate_column",
            FieldCount { .. } => "admin.import.error.field_count",
            UnreadableRow { .. } => "admin.import.error.unreadable_row",
            Empty => "admin.import.error.empty",
            TooLong { .. } => "admin.import.error.too_long",
            NotEmail { .. } => "admin.import.error.not_email",
            NotPhone { .. } => "admin.import.error.not_phone",
            NotWebAddress { .. } => "admin.import.error.not_web_address",
            IdpsSuperadminOnly => "admin.import.error.idps_superadmin_only",
            UnknownIdp { .. } => "admin.import.error.unknown_idp",
            NotSchoolCode { .. } => "admin.import.error.not_school_code",
            SchoolNotRegistered { .. } => "admin.import.error.school_not_registered",
            SchoolNotYours { .. } => "admin.import.error.school_not_yours",
            SchoolNotReplaced { .. } => "admin.import.error.school_not_replaced",
            NotDate { .. } => "admin.import.error.not_date",
            NotRole { .. } => "admin.import.error.not_role",
            NotYesNo { .. } => "admin.import.error.not_yes_no",
            Duplicate { .. } => "admin.import.error.duplicate",
            NoSuchAccount { .. } => "admin.import.error.no_such_account",
            AccountOfAnotherSchool { .. } => "admin.import.error.account_of_another_school",
            AccountNotInYourSchools { .. } => "admin.import.error.account_not_in_your_schools",
            SubjectOfAnotherSchool { .. } => "admin.import.error.subject_of_another_school",
            Refused { .. } => "admin.import.error.refused",
        }
    }

    /// The values of the message's `{placeholders}`.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        use Reason::*;
        match self {
            InvalidUtf8 { column } | InvalidUtf16 { column } | NulCharacter { column } => {
                vec![("column", column.to_string())]
            }
            UnclosedQuote { opened } => vec![("opened", opened.to_string())],
            ReplaceNotYours { school }
            | SchoolNotRegistered { school }
            | SchoolNotYours { school } => {
                vec![("school", school.to_string())]
            }
            UnreadableHeader { detail } | UnreadableRow { detail } => {
                vec![("detail", detail.to_string())]
            }
            FieldCount { found, expected } => vec![
                ("found", found.to_string()),
                ("expected", expected.to_string()),
            ],
            TooLong {
                limit,
                length,
                value,
            } => vec![
                ("limit", limit.to_string()),
                ("length", length.to_string()),
                ("value", value.quoted()),
            ],
            NotEmail { value }
            | NotPhone { value }
            | NotWebAddress { value }
            | UnknownIdp { value }
            | NotSchoolCode { value }
            | NotDate { value }
            | NotRole { value }
            | NotYesNo { value } => vec![("value", value.quoted())],
            SchoolNotReplaced { school, replaced } => vec![
                ("school", school.to_string()),
                ("replaced", replaced.to_string()),
            ],
            Duplicate { key, first_line } => {
                vec![("key", key.to_string()), ("line", first_line.to_string())]
            }
            NoSuchAccount { value }
            | AccountOfAnotherSchool { value }
            | AccountNotInYourSchools { value }
            | SubjectOfAnotherSchool { value } => vec![("id", value.to_string())],
            Refused { value, why } => vec![("id", value.to_string()), ("why", why.clone())],
            EmptyFile | BinaryData | NoRows | ReplaceNotAccounts | MissingColumn
            | DuplicateColumn | Empty | IdpsSuperadminOnly => Vec::new(),
        }
    }

    /// The message in `t`'s language.
    pub fn describe(&self, t: &Tr) -> String {
        fill(t.get(self.key()), &self.args())
    }
}

impl fmt::Display for Reason {
    /// English, for the CLI.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(&Tr::new(Lang::En)))
    }
}

/// Replaces each `{name}` of `template` by its value, in one pass: a value
/// that itself holds `{…}` is left as it is.
fn fill(template: &str, args: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let arg = after
            .find('}')
            .and_then(|close| Some((close, args.iter().find(|(n, _)| *n == &after[..close])?)));
        match arg {
            Some((close, (_, v))) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each, for the catalogue check.
    fn every_reason() -> Vec<Reason> {
        use Reason::*;
        let v = || Shown::new("x");
        vec![
            EmptyFile,
            BinaryData,
            InvalidUtf8 { column: 1 },
            InvalidUtf16 { column: 1 },
            NulCharacter { column: 1 },
            UnclosedQuote { opened: 1 },
            NoRows,
            ReplaceNotAccounts,
            ReplaceNotYours { school: v() },
            UnreadableHeader { detail: v() },
            MissingColumn,
            DuplicateColumn,
            FieldCount {
                found: 1,
                expected: 2,
            },
            UnreadableRow { detail: v() },
            Empty,
            TooLong {
                limit: 1,
                length: 2,
                value: v(),
            },
            NotEmail { value: v() },
            NotPhone { value: v() },
            NotWebAddress { value: v() },
            IdpsSuperadminOnly,
            UnknownIdp { value: v() },
            NotSchoolCode { value: v() },
            SchoolNotRegistered { school: v() },
            SchoolNotYours { school: v() },
            SchoolNotReplaced {
                school: v(),
                replaced: v(),
            },
            NotDate { value: v() },
            NotRole { value: v() },
            NotYesNo { value: v() },
            Duplicate {
                key: v(),
                first_line: 1,
            },
            NoSuchAccount { value: v() },
            AccountOfAnotherSchool { value: v() },
            AccountNotInYourSchools { value: v() },
            SubjectOfAnotherSchool { value: v() },
            Refused {
                value: v(),
                why: "w".into(),
            },
        ]
    }

    #[test]
    fn every_reason_has_a_message_in_every_language_with_its_values_filled() {
        for lang in [Lang::Fr, Lang::Nl, Lang::En] {
            let t = Tr::new(lang);
            for r in every_reason() {
                let s = r.describe(&t);
                assert_ne!(t.get(r.key()), r.key(), "{lang:?} lacks {}", r.key());
                assert!(!s.contains('{'), "{lang:?} {}: unfilled {s}", r.key());
                for (name, _) in r.args() {
                    assert!(
                        t.get(r.key()).contains(&format!("{{{name}}}")),
                        "{lang:?} {} does not show {name}",
                        r.key()
                    );
                }
            }
        }
    }

    #[test]
    fn shown_values_are_truncated_and_escaped() {
        let long = "é".repeat(100);
        let s = Shown::new(&long);
        assert_eq!(s.as_str().chars().count(), SHOWN_CHARS + 1);
        assert!(s.as_str().ends_with('…'));
        assert_eq!(Shown::new("a\nb\u{1b}").as_str(), "a\\nb\\u{1b}");
        assert_eq!(Shown::new("short").as_str(), "short");
    }

    #[test]
    fn placeholders_are_filled_once() {
        let args = [("value", "{limit}".to_string()), ("limit", "5".into())];
        assert_eq!(
            fill("{value} over {limit} {other}", &args),
            "{limit} over 5 {other}"
        );
        assert_eq!(fill("no { close", &args), "no { close");
    }
}
