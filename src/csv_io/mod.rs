//! CSV (SPEC §5): reading rules shared by every import (header by name in
//! any order, `,` `;` or tab told from the header, UTF-16 with BOM, UTF-8
//! with or without BOM, or else Windows-1252: see `decode`), the import
//! engine, and the streamed exports.

pub mod decode;
pub mod export;
pub mod import;
pub mod prepared;
pub mod reason;
mod rows;

pub use crate::resolve::ImportKind;
pub use decode::{decode_text, looks_binary};
pub use import::{import, Options};
pub use reason::{Reason, Shown};
pub use rows::LIMITS;

use crate::i18n::Tr;
use std::fmt;

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowError {
    pub file: String,
    /// The line in the file; the header is line 1.
    pub line: u64,
    pub column: Option<String>,
    pub reason: Reason,
}

impl RowError {
    /// Why, in `t`'s language (the page shows the line and column apart).
    pub fn describe(&self, t: &Tr) -> String {
        self.reason.describe(t)
    }
}

impl fmt::Display for RowError {
    /// `file:line: column c: why`, in English (the CLI's form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(c) = &self.column {
            write!(f, ": column {c}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    /// Open failures that the imported rows resolve.
    pub failures_resolved: u64,
    pub ignored_columns: Vec<String>,
    pub errors: Vec<RowError>,
    /// Bad rows beyond those listed in `errors`.
    pub more_errors: u64,
    pub dry_run: bool,
}

impl ImportReport {
    pub fn summary(&self) -> String {
        let verb = if self.dry_run { "would be " } else { "" };
        let mut s = format!(
            "{} rows: {} {verb}created, {} {verb}updated, {} unchanged, {} {verb}deactivated; {} open failure(s) {verb}resolved",
            self.rows, self.created, self.updated, self.unchanged, self.deactivated, self.failures_resolved
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

/// The delimiter of the header line: whichever of `,` `;` tab is most
/// frequent outside quotes (ties go to `,`).
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text.split(['\r', '\n']).next().unwrap_or("");
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

/// Neutralises a cell for spreadsheets: one starting with `= + - @`, tab or
/// CR gets a leading `'`, so it is shown, not run.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
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
        assert_eq!(detect_delimiter("a;b;c\r1,2,3,4,5\r"), b';');
    }

    #[test]
    fn neutralised_formulas_come_back() {
        for cell in [
            "=1+1", "-3", "+33 1", "@SUM(A1)", "\tx", "plain", "O'Brien", "'quoted'",
        ] {
            assert_eq!(unneutralise(&neutralise(cell)), cell, "{cell}");
        }
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("Dupont"), "Dupont");
    }
}
