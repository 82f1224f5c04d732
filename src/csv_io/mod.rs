//! CSV (SPEC §5): reading rules shared by every import (header by name in
//! any order, `,` `;` or tab told from the header, UTF-8 with or without BOM
//! or else Windows-1252), the import engine, and the streamed exports.

pub mod export;
pub mod import;
mod rows;

pub use crate::resolve::ImportKind;
pub use import::{import, Options};

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

/// Decodes a file: UTF-8 (BOM dropped), or Windows-1252 when it is not UTF-8.
/// A UTF-8 file is borrowed, not copied (imports can be large).
pub fn decode_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
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

/// Whether a file looks like binary data rather than text: a NUL byte, or
/// many control characters, in its first 8 KiB.
pub fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    let controls = head
        .iter()
        .filter(|b| **b < 0x20 && !matches!(**b, b'\n' | b'\r' | b'\t'))
        .count();
    head.contains(&0) || controls * 20 > head.len().max(1)
}

/// The line where a quoted field opens and never closes (a file cut in the
/// middle), if any.
pub fn unclosed_quote_line(text: &str) -> Option<u64> {
    let mut line = 1u64;
    let mut open_at = None;
    for c in text.chars() {
        match c {
            '"' => open_at = if open_at.is_some() { None } else { Some(line) },
            '\n' => line += 1,
            _ => {}
        }
    }
    open_at
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
    }

    #[test]
    fn windows_1252_is_read_when_not_utf8() {
        assert_eq!(decode_text(b"\xC9lodie"), "Élodie");
        assert_eq!(decode_text("\u{feff}Élodie".as_bytes()), "Élodie");
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

    #[test]
    fn binary_data_and_cut_files_are_recognised() {
        assert!(looks_binary(b"PK\x03\x04\x00\x00binary"));
        assert!(!looks_binary("account_id;nom\r\na;b\n".as_bytes()));
        assert_eq!(unclosed_quote_line("a,b\n1,\"x\"\n2,\"cut\nhere"), Some(3));
        assert_eq!(unclosed_quote_line("a,b\n1,\"multi\nline\"\n"), None);
    }
}
