//! CSV import (SPEC §5): header by name in any order, `,` `;` or tab told
//! from the header, UTF-8 with or without BOM or else Windows-1252, three
//! date formats, French and Dutch role words. All-or-nothing: every bad row
//! is reported with file, line and column, and nothing is written.

use crate::resolve::{parse_date, parse_school_code, Role};
use crate::store::accounts::Account;
use crate::store::schools::{School, Upsert};
use crate::store::{self, accounts, schools};
use sqlx::SqlitePool;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    /// The line in the file; the header is line 1.
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(c) = &self.column {
            write!(f, ": column {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub ignored_columns: Vec<String>,
    pub errors: Vec<RowError>,
    pub dry_run: bool,
}

impl ImportReport {
    pub fn summary(&self) -> String {
        let verb = if self.dry_run { "would be " } else { "" };
        let mut s = format!(
            "{} {verb}created, {} {verb}updated, {} unchanged",
            self.created, self.updated, self.unchanged
        );
        if !self.ignored_columns.is_empty() {
            s.push_str(&format!(
                "; ignored columns: {}",
                self.ignored_columns.join(", ")
            ));
        }
        s
    }
}

/// Decodes a file: UTF-8 (BOM dropped), or Windows-1252 when it is not UTF-8.
pub fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// The delimiter of the header line: whichever of `,` `;` tab is most
/// frequent outside quotes (ties go to `,`).
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// Undoes the formula neutralisation of our exports: a leading `'` before
/// `= + - @`, tab or CR is dropped.
pub fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// A parsed file: rows as maps from known column to value, with line numbers.
pub struct Table {
    pub rows: Vec<(u64, HashMap<String, String>)>,
    pub ignored_columns: Vec<String>,
}

/// Reads a CSV file's rows, checking the header for `required` columns;
/// `optional` columns are read too, anything else is ignored and listed.
pub fn read_table(
    file: &str,
    bytes: &[u8],
    required: &[&str],
    optional: &[&str],
) -> Result<Table, Vec<RowError>> {
    let err = |line, column: Option<&str>, message: String| RowError {
        file: file.to_string(),
        line,
        column: column.map(str::to_string),
        message,
    };
    let text = decode_text(bytes);
    if text.trim().is_empty() {
        return Err(vec![err(
            1,
            None,
            "the file is empty (a header row is required)".into(),
        )]);
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(detect_delimiter(&text))
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![err(1, None, format!("unreadable header: {e}"))]),
    };
    let mut errors = Vec::new();
    for r in required {
        if !headers.iter().any(|h| h == r) {
            errors.push(err(1, Some(r), "required column is missing".into()));
        }
    }
    let mut seen = HashSet::new();
    for h in &headers {
        if !h.is_empty() && !seen.insert(h) {
            errors.push(err(1, Some(h), "column appears twice".into()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let known = |h: &str| required.contains(&h) || optional.contains(&h);
    let ignored_columns: Vec<String> = headers.iter().filter(|h| !known(h)).cloned().collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(rec) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                if rec.iter().all(|c| c.trim().is_empty()) {
                    continue; // blank line
                }
                let map = headers
                    .iter()
                    .zip(rec.iter())
                    .filter(|(h, _)| known(h))
                    .map(|(h, v)| (h.clone(), unneutralise(v.trim()).to_string()))
                    .collect();
                rows.push((line, map));
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("{len} fields where the header has {expected_len}")
                    }
                    _ => format!("unreadable row: {e}"),
                };
                errors.push(err(line, None, message));
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(Table {
            rows,
            ignored_columns,
        })
    } else {
        Err(errors)
    }
}

fn get<'a>(row: &'a HashMap<String, String>, col: &str) -> Option<&'a str> {
    row.get(col).map(String::as_str).filter(|v| !v.is_empty())
}

/// Parses and validates a schools file.
pub fn parse_schools(
    file: &str,
    bytes: &[u8],
) -> Result<(Vec<School>, Vec<String>), Vec<RowError>> {
    let table = read_table(file, bytes, &["school_code", "name"], &[])?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, row) in &table.rows {
        let e = |c: &str, m: String| RowError {
            file: file.into(),
            line: *line,
            column: Some(c.into()),
            message: m,
        };
        let code = match get(row, "school_code") {
            None => {
                errors.push(e("school_code", "is empty".into()));
                continue;
            }
            Some(c) => match parse_school_code(c) {
                Some(c) => c.as_str().to_string(),
                None => {
                    errors.push(e(
                        "school_code",
                        format!("{c:?} is neither a BRIN nor a valid UAI"),
                    ));
                    continue;
                }
            },
        };
        let Some(name) = get(row, "name") else {
            errors.push(e("name", "is empty".into()));
            continue;
        };
        if let Some(prev) = first_line.insert(code.clone(), *line) {
            errors.push(e(
                "school_code",
                format!("{code} already appears on line {prev}"),
            ));
            continue;
        }
        out.push(School {
            code,
            name: name.to_string(),
        });
    }
    if errors.is_empty() {
        Ok((out, table.ignored_columns))
    } else {
        Err(errors)
    }
}

/// Parses and validates an accounts file against the registered schools.
pub fn parse_accounts(
    file: &str,
    bytes: &[u8],
    registered: &HashSet<String>,
) -> Result<(Vec<Account>, Vec<String>), Vec<RowError>> {
    let table = read_table(
        file,
        bytes,
        &[
            "account_id",
            "school_code",
            "last_name",
            "first_name",
            "role",
        ],
        &["birth_date", "class_name", "email"],
    )?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, row) in &table.rows {
        let before = errors.len();
        let mut e = |c: &str, m: String| {
            errors.push(RowError {
                file: file.into(),
                line: *line,
                column: Some(c.into()),
                message: m,
            })
        };
        let account_id = get(row, "account_id");
        if account_id.is_none() {
            e("account_id", "is empty".into());
        }
        let school = match get(row, "school_code") {
            None => {
                e("school_code", "is empty".into());
                None
            }
            Some(c) => match parse_school_code(c) {
                None => {
                    e(
                        "school_code",
                        format!("{c:?} is neither a BRIN nor a valid UAI"),
                    );
                    None
                }
                Some(code) if !registered.contains(code.as_str()) => {
                    e(
                        "school_code",
                        format!("school {} is not registered", code.as_str()),
                    );
                    None
                }
                Some(code) => Some(code.as_str().to_string()),
            },
        };
        let last_name = get(row, "last_name");
        if last_name.is_none() {
            e("last_name", "is empty".into());
        }
        let first_name = get(row, "first_name");
        if first_name.is_none() {
            e("first_name", "is empty".into());
        }
        let birth_date = match get(row, "birth_date") {
            None => None,
            Some(d) => match parse_date(d) {
                Some(d) => Some(d),
                None => {
                    e(
                        "birth_date",
                        format!("{d:?} is not a date (YYYY-MM-DD, DD/MM/YYYY or DD-MM-YYYY)"),
                    );
                    None
                }
            },
        };
        let role = match get(row, "role") {
            None => {
                e("role", "is empty".into());
                None
            }
            Some(r) => match Role::parse(r) {
                Some(r) => Some(r),
                None => {
                    e("role", format!("{r:?} is not a known role (student, parent, teacher, staff, or élève, responsable, enseignant, personnel, leerling, ouder, docent, medewerker)"));
                    None
                }
            },
        };
        if errors.len() > before {
            continue;
        }
        let (Some(account_id), Some(school_code), Some(last_name), Some(first_name), Some(role)) =
            (account_id, school, last_name, first_name, role)
        else {
            continue;
        };
        if let Some(prev) = first_line.insert(account_id.to_string(), *line) {
            errors.push(RowError {
                file: file.into(),
                line: *line,
                column: Some("account_id".into()),
                message: format!("{account_id} already appears on line {prev}"),
            });
            continue;
        }
        out.push(Account {
            account_id: account_id.to_string(),
            school_code,
            last_name: last_name.to_string(),
            first_name: first_name.to_string(),
            birth_date,
            role,
            class_name: get(row, "class_name").map(str::to_string),
            email: get(row, "email").map(str::to_string),
            active: true,
        });
    }
    if errors.is_empty() {
        Ok((out, table.ignored_columns))
    } else {
        Err(errors)
    }
}

fn count(report: &mut ImportReport, u: Upsert) {
    match u {
        Upsert::Created => report.created += 1,
        Upsert::Updated => report.updated += 1,
        Upsert::Unchanged => report.unchanged += 1,
    }
}

/// Which file an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Schools,
    Accounts,
}

/// Imports a file in one transaction; with `dry_run`, the same work is done
/// and rolled back, so the counts are exactly what a real run would do.
/// `Err` carries a database error; bad rows come back in the report.
pub async fn import(
    pool: &SqlitePool,
    kind: ImportKind,
    file: &str,
    bytes: &[u8],
    dry_run: bool,
) -> Result<ImportReport, sqlx::Error> {
    let mut report = ImportReport {
        dry_run,
        ..Default::default()
    };
    let mut tx = store::begin_write(pool).await?;
    match kind {
        ImportKind::Schools => match parse_schools(file, bytes) {
            Err(errors) => report.errors = errors,
            Ok((rows, ignored)) => {
                report.ignored_columns = ignored;
                for s in &rows {
                    count(&mut report, schools::upsert(&mut tx, s).await?);
                }
            }
        },
        ImportKind::Accounts => {
            let registered: HashSet<String> =
                schools::all_codes(&mut tx).await?.into_iter().collect();
            match parse_accounts(file, bytes, &registered) {
                Err(errors) => report.errors = errors,
                Ok((rows, ignored)) => {
                    report.ignored_columns = ignored;
                    for a in &rows {
                        count(&mut report, accounts::upsert(&mut tx, a).await?);
                    }
                }
            }
        }
    }
    if dry_run || !report.errors.is_empty() {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_is_told_from_the_header() {
        assert_eq!(detect_delimiter("a,b,c\n1;2;3"), b',');
        assert_eq!(detect_delimiter("a;b;c\n"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter("\"a;x\",b\n"), b',');
    }

    #[test]
    fn windows_1252_is_read_when_not_utf8() {
        assert_eq!(decode_text(b"\xC9lodie"), "Élodie");
        assert_eq!(decode_text("\u{feff}Élodie".as_bytes()), "Élodie");
    }

    #[test]
    fn neutralised_formulas_come_back() {
        assert_eq!(unneutralise("'=1+1"), "=1+1");
        assert_eq!(unneutralise("'-3"), "-3");
        assert_eq!(unneutralise("O'Brien"), "O'Brien");
        assert_eq!(unneutralise("'quoted'"), "'quoted'");
    }

    #[test]
    fn missing_columns_and_bad_rows_name_line_and_column() {
        let e = parse_schools("s.csv", b"school_code\n0751234J\n").expect_err("bad");
        assert_eq!(
            e[0].to_string(),
            "s.csv:1: column name: required column is missing"
        );
        let e = parse_schools(
            "s.csv",
            b"name,school_code\nA,0751234A\nB,\n,12AB\nC,12AB\nD,12ab\n",
        )
        .expect_err("bad");
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "s.csv:2: column school_code: \"0751234A\" is neither a BRIN nor a valid UAI",
                "s.csv:3: column school_code: is empty",
                "s.csv:4: column name: is empty",
                "s.csv:6: column school_code: 12AB already appears on line 5",
            ]
        );
    }

    #[test]
    fn accounts_rows_are_checked_field_by_field() {
        let reg: HashSet<String> = ["0751234J".to_string()].into();
        let file = "account_id;school_code;last_name;first_name;birth_date;role;extra\n\
                    a1;0751234J;Dupont;Élodie;31/02/2010;élève;x\n\
                    a2;12AB;Martin;Paul;2010-01-01;astronaut;x\n";
        let e = parse_accounts("a.csv", file.as_bytes(), &reg).expect_err("bad");
        let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].starts_with("a.csv:2: column birth_date: \"31/02/2010\""));
        assert!(shown[1].starts_with("a.csv:3: column school_code: school 12AB is not registered"));
        assert!(shown[2].starts_with("a.csv:3: column role: \"astronaut\""));
    }

    #[test]
    fn a_row_with_too_many_fields_is_reported() {
        let e = parse_schools("s.csv", b"school_code,name\n12AB,A,extra\n").expect_err("bad");
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("3 fields"), "{}", e[0]);
    }
}
