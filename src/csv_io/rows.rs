//! One CSV row's checks, without the database: required cells, school
//! codes of the importer's scope, dates, roles, yes/no. What needs the
//! database is checked once the rows are staged (`store::imports::problems`).

use super::unneutralise;
use crate::resolve::{fold_name, parse_date, parse_school_code, ImportKind, KnownIdps, Role};
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
}

/// A school's contact columns, checked for shape: `None` when the file has
/// no such column (the school keeps its value), `Some("")` for an empty
/// cell (cleared). Shown to users as `mailto:`, `tel:` and a link, so only
/// what can be one is taken.
fn contact_cells(cells: &Cells, p: &mut Problems) -> [Option<String>; 3] {
    let take = |col: &'static str, ok: fn(&str) -> bool, why: &str, p: &mut Problems| {
        if !cells.has(col) {
            return None;
        }
        let v = cells.get(col).unwrap_or("");
        if !v.is_empty() && !ok(v) {
            p.push((col, format!("{v:?} {why}")));
        }
        Some(v.to_string())
    };
    [
        take(
            "support_email",
            crate::resolve::report::is_email,
            "is not an e-mail address",
            p,
        ),
        take(
            "support_phone",
            crate::resolve::report::is_phone,
            "is not a phone number (6 to 20 digits, with spaces, +, (), . or -)",
            p,
        ),
        take(
            "support_url",
            is_web_address,
            "is not a web address (http:// or https://)",
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

type Problems = Vec<(&'static str, String)>;

impl RowContext<'_> {
    /// Checks one row; returns its duplicate key, the key's column and the
    /// temporary table's values.
    pub fn validate(
        &self,
        cells: &Cells,
    ) -> Result<(String, &'static str, Vec<Option<String>>), Problems> {
        let mut p: Problems = Vec::new();
        let cell = |col: &str| cells.get(col);
        let required = |col: &'static str, p: &mut Problems| -> Option<String> {
            let v = cell(col).map(str::to_string);
            if v.is_none() {
                p.push((col, "is empty".into()));
            }
            v
        };
        match self.kind {
            ImportKind::Schools => {
                let code = self.school(required("school_code", &mut p), false, &mut p);
                let name = required("name", &mut p);
                // Absent column: the school keeps its list; present and
                // empty: the list is cleared.
                let idps = cells.has("idp_entity_ids").then(|| {
                    let ids: std::collections::BTreeSet<&str> = cell("idp_entity_ids")
                        .unwrap_or("")
                        .split_ascii_whitespace()
                        .collect();
                    // Trust decides who may log in a school's pupils: a
                    // superadmin's call, like the config.
                    if !ids.is_empty() && !matches!(self.scope, Scope::All) {
                        p.push((
                            "idp_entity_ids",
                            "only a superadmin may set the IdPs trusted for a school".into(),
                        ));
                    }
                    for i in &ids {
                        if !self.idps.contains(i) {
                            p.push(("idp_entity_ids", format!("{i:?} is not a configured IdP")));
                        }
                    }
                    ids.into_iter().collect::<Vec<_>>().join(" ")
                });
                let [email, phone, url] = contact_cells(cells, &mut p);
                match (code, name) {
                    (Some(code), Some(name)) if p.is_empty() => Ok((
                        code.clone(),
                        "school_code",
                        vec![Some(code), Some(name), idps, email, phone, url],
                    )),
                    _ => Err(p),
                }
            }
            ImportKind::Accounts => {
                let id = required("account_id", &mut p);
                let school = self.school(required("school_code", &mut p), true, &mut p);
                let last = required("last_name", &mut p);
                let first = required("first_name", &mut p);
                let birth = match cell("birth_date") {
                    None => None,
                    Some(d) => {
                        match parse_date(d) {
                            Some(d) => Some(d.format("%Y-%m-%d").to_string()),
                            None => {
                                p.push(("birth_date", format!("{d:?} is not a date (YYYY-MM-DD, DD/MM/YYYY or DD-MM-YYYY)")));
                                None
                            }
                        }
                    }
                };
                let role = match required("role", &mut p) {
                    None => None,
                    Some(r) => match Role::parse(&r) {
                        Some(r) => Some(r.as_str().to_string()),
                        None => {
                            p.push(("role", format!("{r:?} is not a known role (student, parent, teacher, staff, or élève, responsable, enseignant, personnel, leerling, ouder, docent, medewerker)")));
                            None
                        }
                    },
                };
                let active = match cell("active").map(fold_name) {
                    None => Some("1"),
                    Some(a) if ["1", "yes", "true", "oui", "ja", "y"].contains(&a.as_str()) => {
                        Some("1")
                    }
                    Some(a) if ["0", "no", "false", "non", "nee", "n"].contains(&a.as_str()) => {
                        Some("0")
                    }
                    Some(a) => {
                        p.push(("active", format!("{a:?} is not yes or no")));
                        None
                    }
                };
                if let (Some(s), Some(only)) = (&school, self.replace_school) {
                    if s != only {
                        p.push((
                            "school_code",
                            format!("school {s} in a file that replaces school {only}"),
                        ));
                    }
                }
                match (id, school, last, first, role, active) {
                    (Some(id), Some(school), Some(last), Some(first), Some(role), Some(active))
                        if p.is_empty() =>
                    {
                        let (fl, ff) = (fold_name(&last), fold_name(&first));
                        Ok((
                            id.clone(),
                            "account_id",
                            vec![
                                Some(id),
                                Some(school),
                                Some(last),
                                Some(first),
                                birth,
                                Some(role),
                                cell("class_name").map(str::to_string),
                                cell("email").map(str::to_string),
                                Some(fl),
                                Some(ff),
                                Some(active.to_string()),
                            ],
                        ))
                    }
                    _ => Err(p),
                }
            }
            ImportKind::Mappings => {
                let idp = required("idp_entity_id", &mut p);
                if let Some(i) = &idp {
                    if !self.idps.contains(i) {
                        p.push(("idp_entity_id", format!("{i:?} is not a configured IdP")));
                    }
                }
                let subject = required("subject", &mut p);
                let account = required("account_id", &mut p);
                match (idp, subject, account) {
                    (Some(i), Some(s), Some(a)) if p.is_empty() => Ok((
                        format!("{i}\u{1f}{s}"),
                        "subject",
                        vec![Some(i), Some(s), Some(a)],
                    )),
                    _ => Err(p),
                }
            }
        }
    }

    /// A school code: valid, of the admin's scope, and (for accounts)
    /// registered.
    fn school(&self, raw: Option<String>, must_exist: bool, p: &mut Problems) -> Option<String> {
        let raw = raw?;
        let Some(code) = parse_school_code(&raw) else {
            p.push((
                "school_code",
                format!("{raw:?} is neither a BRIN nor a valid UAI"),
            ));
            return None;
        };
        let code = code.as_str().to_string();
        if must_exist && !self.registered.contains(&code) {
            p.push(("school_code", format!("school {code} is not registered")));
            return None;
        }
        if !self.scope.allows(Some(&code)) {
            p.push(("school_code", format!("school {code} is not one of yours")));
            return None;
        }
        Some(code)
    }
}
