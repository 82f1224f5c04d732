//! One CSV row's checks, without the database: required cells, school
//! codes of the importer's scope, dates, roles, yes/no. What needs the
//! database is checked once the rows are staged (`store::imports::problems`).

use super::reason::{Reason, Shown};
use super::unneutralise;
use crate::resolve::{
    fold_name, parse_date, parse_school_code, ImportKind, KnownIdps, Role, SchoolCode,
};
use crate::store::Scope;
use std::collections::{HashMap, HashSet};

/// The columns a file of `kind` must have.
pub fn required(kind: ImportKind) -> &'static [&'static str] {
    match kind {
        ImportKind::Schools => &["school_code", "name"],
        ImportKind::Accounts => &[
            "account_id",
            "school_code",
            "last_name",
            "first_name",
            "role",
        ],
        ImportKind::Mappings => &["idp_entity_id", "subject", "account_id"],
    }
}

/// The columns a file of `kind` may have.
pub fn optional(kind: ImportKind) -> &'static [&'static str] {
    match kind {
        ImportKind::Schools => &[
            "idp_entity_ids",
            "support_email",
            "support_phone",
            "support_url",
        ],
        // `active` is what our export writes, so an export imports unchanged.
        ImportKind::Accounts => &["birth_date", "class_name", "email", "active"],
        ImportKind::Mappings => &[],
    }
}

/// The longest value each column takes, in characters. What a school's
/// systems hold, with room: SAML entity IDs and subjects by the SAML
/// limits, e-mail addresses by RFC 5321; a longer cell is a wrong column or
/// a broken file, refused with its line (README, "CSV files").
pub const LIMITS: &[(&str, usize)] = &[
    ("account_id", 100),
    ("school_code", 20),
    ("name", 200),
    ("last_name", 100),
    ("first_name", 100),
    ("birth_date", 20),
    ("role", 30),
    ("class_name", 50),
    ("email", 254),
    ("active", 10),
    ("support_email", 254),
    ("support_phone", 30),
    ("support_url", 500),
    ("idp_entity_id", 1024),
    ("idp_entity_ids", 8192),
    ("subject", 256),
];

/// A problem for each cell over its column's limit.
fn too_long(cells: &Cells, p: &mut Problems) {
    for (col, limit) in LIMITS {
        let Some(v) = cells.get(col) else { continue };
        let length = v.chars().count();
        if length > *limit {
            p.push((
                col,
                Reason::TooLong {
                    limit: *limit,
                    length,
                    value: Shown::new(v),
                },
            ));
        }
    }
}

/// One record's cells by column name: trimmed, formula-neutralisation
/// undone, empty ones absent.
pub struct Cells<'r> {
    pub record: &'r csv::StringRecord,
    pub index: &'r HashMap<&'r str, usize>,
}

impl<'r> Cells<'r> {
    /// Whether the file has the column at all.
    fn has(&self, col: &str) -> bool {
        self.index.contains_key(col)
    }

    fn get(&self, col: &str) -> Option<&'r str> {
        let i = *self.index.get(col)?;
        self.record
            .get(i)
            .map(|v| unneutralise(v.trim()))
            .filter(|v| !v.is_empty())
    }

    /// A cell that must not be empty; an empty one is a problem.
    fn required(&self, col: &'static str, p: &mut Problems) -> Option<String> {
        let v = self.get(col).map(str::to_string);
        if v.is_none() {
            p.push((col, Reason::Empty));
        }
        v
    }
}

/// A school's contact columns, checked for shape: `None` when the file has
/// no such column (the school keeps its value), `Some("")` for an empty
/// cell (cleared). Shown to users as `mailto:`, `tel:` and a link, so only
/// what can be one is taken.
fn contact_cells(cells: &Cells, p: &mut Problems) -> [Option<String>; 3] {
    let take =
        |col: &'static str, ok: fn(&str) -> bool, why: fn(Shown) -> Reason, p: &mut Problems| {
            if !cells.has(col) {
                return None;
            }
            let v = cells.get(col).unwrap_or("");
            if !v.is_empty() && !ok(v) {
                p.push((col, why(Shown::new(v))));
            }
            Some(v.to_string())
        };
    [
        take(
            "support_email",
            crate::resolve::report::is_email,
            |value| Reason::NotEmail { value },
            p,
        ),
        take(
            "support_phone",
            crate::resolve::report::is_phone,
            |value| Reason::NotPhone { value },
            p,
        ),
        take(
            "support_url",
            is_web_address,
            |value| Reason::NotWebAddress { value },
            p,
        ),
    ]
}

/// An absolute `http` or `https` URL with a host.
fn is_web_address(v: &str) -> bool {
    url::Url::parse(v)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        && !v.contains(char::is_whitespace)
}

pub struct RowContext<'a> {
    pub kind: ImportKind,
    pub scope: &'a Scope,
    pub replace_school: Option<&'a str>,
    pub registered: &'a HashSet<String>,
    pub idps: &'a KnownIdps,
}

type Problems = Vec<(&'static str, Reason)>;

/// A checked row: its duplicate key, the key's column and the temporary
/// table's values.
type Checked = (String, &'static str, Vec<Option<String>>);

impl RowContext<'_> {
    /// Checks one row; returns its duplicate key, the key's column and the
    /// temporary table's values.
    pub fn validate(&self, cells: &Cells) -> Result<Checked, Problems> {
        let mut p: Problems = Vec::new();
        // Over-long cells first, and alone: the other checks would only
        // repeat them.
        too_long(cells, &mut p);
        if !p.is_empty() {
            return Err(p);
        }
        let row = match self.kind {
            ImportKind::Schools => self.school_row(cells, &mut p),
            ImportKind::Accounts => self.account_row(cells, &mut p),
            ImportKind::Mappings => self.mapping_row(cells, &mut p),
        };
        match row {
            Some(row) if p.is_empty() => Ok(row),
            _ => Err(p),
        }
    }

    /// A schools row: code, name, trusted IdPs, contacts.
    fn school_row(&self, cells: &Cells, p: &mut Problems) -> Option<Checked> {
        let code = self.school(cells.required("school_code", p), false, p);
        let name = cells.required("name", p);
        let idps = self.idp_list(cells, p);
        let [email, phone, url] = contact_cells(cells, p);
        let (code, name) = (code?.to_string(), name?);
        Some((
            code.clone(),
            "school_code",
            vec![Some(code), Some(name), idps, email, phone, url],
        ))
    }

    /// The IdPs a school trusts, space-separated and sorted. Absent column:
    /// the school keeps its list; present and empty: the list is cleared.
    fn idp_list(&self, cells: &Cells, p: &mut Problems) -> Option<String> {
        cells.has("idp_entity_ids").then(|| {
            let ids: std::collections::BTreeSet<&str> = cells
                .get("idp_entity_ids")
                .unwrap_or("")
                .split_ascii_whitespace()
                .collect();
            // Trust decides who may log in a school's pupils: a
            // superadmin's call, like the config.
            if !ids.is_empty() && !matches!(self.scope, Scope::All) {
                p.push(("idp_entity_ids", Reason::IdpsSuperadminOnly));
            }
            for i in &ids {
                self.known_idp("idp_entity_ids", i, p);
            }
            ids.into_iter().collect::<Vec<_>>().join(" ")
        })
    }

    /// An accounts row: of a registered school (the one a replacing file
    /// names), with a known role, a date of birth and yes/no if given.
    fn account_row(&self, cells: &Cells, p: &mut Problems) -> Option<Checked> {
        let id = cells.required("account_id", p);
        let school = self.school(cells.required("school_code", p), true, p);
        let last = cells.required("last_name", p);
        let first = cells.required("first_name", p);
        let birth = birth_date(cells, p);
        let role = role(cells.required("role", p), p);
        let active = active(cells, p);
        if let (Some(s), Some(only)) = (&school, self.replace_school) {
            if !s.is(only) {
                p.push((
                    "school_code",
                    Reason::SchoolNotReplaced {
                        school: Shown::new(s.as_str()),
                        replaced: Shown::new(only),
                    },
                ));
            }
        }
        let (id, school, last, first) = (id?, school?, last?, first?);
        let (role, active) = (role?, active?);
        let (fl, ff) = (fold_name(&last), fold_name(&first));
        Some((
            id.clone(),
            "account_id",
            vec![
                Some(id),
                Some(school.to_string()),
                Some(last),
                Some(first),
                birth,
                Some(role),
                cells.get("class_name").map(str::to_string),
                cells.get("email").map(str::to_string),
                Some(fl),
                Some(ff),
                Some(active.to_string()),
            ],
        ))
    }

    /// A mappings row: a configured IdP, a subject, an account.
    fn mapping_row(&self, cells: &Cells, p: &mut Problems) -> Option<Checked> {
        let idp = cells.required("idp_entity_id", p);
        if let Some(i) = &idp {
            self.known_idp("idp_entity_id", i, p);
        }
        let subject = cells.required("subject", p);
        let account = cells.required("account_id", p);
        let (i, s, a) = (idp?, subject?, account?);
        Some((
            format!("{i}\u{1f}{s}"),
            "subject",
            vec![Some(i), Some(s), Some(a)],
        ))
    }

    /// A problem in `col` unless `id` is one of the configured IdPs.
    fn known_idp(&self, col: &'static str, id: &str, p: &mut Problems) {
        if !self.idps.contains(id) {
            p.push((
                col,
                Reason::UnknownIdp {
                    value: Shown::new(id),
                },
            ));
        }
    }

    /// A school code: valid, of the admin's scope, and (for accounts)
    /// registered.
    fn school(
        &self,
        raw: Option<String>,
        must_exist: bool,
        p: &mut Problems,
    ) -> Option<SchoolCode> {
        let raw = raw?;
        let Some(code) = parse_school_code(&raw) else {
            p.push((
                "school_code",
                Reason::NotSchoolCode {
                    value: Shown::new(&raw),
                },
            ));
            return None;
        };
        if must_exist && !self.registered.contains(code.as_str()) {
            p.push((
                "school_code",
                Reason::SchoolNotRegistered {
                    school: Shown::new(code.as_str()),
                },
            ));
            return None;
        }
        if !self.scope.allows(Some(code.as_str())) {
            p.push((
                "school_code",
                Reason::SchoolNotYours {
                    school: Shown::new(code.as_str()),
                },
            ));
            return None;
        }
        Some(code)
    }
}

/// A date of birth, if given, as `YYYY-MM-DD`.
fn birth_date(cells: &Cells, p: &mut Problems) -> Option<String> {
    let d = cells.get("birth_date")?;
    match parse_date(d) {
        Some(d) => Some(d.format("%Y-%m-%d").to_string()),
        None => {
            p.push((
                "birth_date",
                Reason::NotDate {
                    value: Shown::new(d),
                },
            ));
            None
        }
    }
}

/// A role in any of the languages, as stored.
fn role(raw: Option<String>, p: &mut Problems) -> Option<String> {
    let r = raw?;
    match Role::parse(&r) {
        Some(r) => Some(r.as_str().to_string()),
        None => {
            p.push((
                "role",
                Reason::NotRole {
                    value: Shown::new(&r),
                },
            ));
            None
        }
    }
}

/// The `active` cell as `1` or `0` (absent or empty: active).
fn active(cells: &Cells, p: &mut Problems) -> Option<&'static str> {
    match cells.get("active").map(fold_name) {
        None => Some("1"),
        Some(a) if ["1", "yes", "true", "oui", "ja", "y"].contains(&a.as_str()) => Some("1"),
        Some(a) if ["0", "no", "false", "non", "nee", "n"].contains(&a.as_str()) => Some("0"),
        Some(a) => {
            p.push((
                "active",
                Reason::NotYesNo {
                    value: Shown::new(&a),
                },
            ));
            None
        }
    }
}
