//! From an uploaded file's bytes to text the CSV reader can trust, or a
//! refusal with its line: never a guess that corrupts names.
//!
//! - UTF-16 with a BOM (LE or BE: Excel's "Unicode text") is decoded; a
//!   broken character is refused.
//! - UTF-8 (BOM dropped) is read as is. A file that is UTF-8 in places and
//!   not in others is refused at its first bad byte: reading it as
//!   Windows-1252 would turn every accented name into mojibake, silently.
//! - A file with high bytes and no valid multi-byte UTF-8 sequence at all is
//!   Windows-1252 (what older spreadsheets save).
//! - A NUL anywhere is refused; many control bytes at the start mean binary.
//! - Line ends: CR, LF and CRLF files give the same line numbers. The CSV
//!   reader ends records at a CR too but counts lines by the LFs it has
//!   consumed, so a CR-only file stays on line 1 and a CRLF file is one line
//!   behind (the record ends at the CR, before its LF is counted). Record
//!   ends outside quoted fields are therefore made LF (the records are the
//!   same); in a CR-only file every CR is the line end.
//! - Quotes are read as the CSV reader reads them: a quote opens a quoted
//!   field only at the start of a field (`O"Brien` is a value); a quoted
//!   field never closed is a file cut short.

use super::reason::Reason;
use std::borrow::Cow;

/// A file refused as a whole, at `line` (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: u64,
    pub reason: Reason,
}

impl Refusal {
    fn at(text_before: &str, make: impl FnOnce(u64) -> Reason) -> Refusal {
        let (line, column) = position_after(text_before);
        Refusal {
            line,
            reason: make(column),
        }
    }
}

/// The text of a file: UTF-16 with BOM, UTF-8 (BOM dropped), or
/// Windows-1252 when it has no UTF-8 at all; refused when it is binary,
/// mixes encodings or holds a NUL. A UTF-8 file is borrowed, not copied.
pub fn decode_text(bytes: &[u8]) -> Result<Cow<'_, str>, Refusal> {
    let utf16 = if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        Some(utf16(rest, u16::from_le_bytes)?)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        Some(utf16(rest, u16::from_be_bytes)?)
    } else {
        None
    };
    let text = match utf16 {
        Some(s) => Cow::Owned(s),
        None if looks_binary(bytes) => {
            return Err(Refusal {
                line: 1,
                reason: Reason::BinaryData,
            })
        }
        None => utf8_or_1252(bytes)?,
    };
    if let Some(at) = text.find('\0') {
        return Err(Refusal::at(&text[..at], |column| Reason::NulCharacter {
            column,
        }));
    }
    Ok(text)
}

/// UTF-8 (with or without BOM), else Windows-1252 when no part of it is
/// UTF-8 beyond ASCII.
fn utf8_or_1252(bytes: &[u8]) -> Result<Cow<'_, str>, Refusal> {
    let (bom, body) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    match std::str::from_utf8(body) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(e) if bom || has_utf8_sequence(body) => {
            let valid = String::from_utf8_lossy(&body[..e.valid_up_to()]);
            Err(Refusal::at(&valid, |column| Reason::InvalidUtf8 { column }))
        }
        Err(_) => Ok(encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(body)
            .0),
    }
}

/// Whether `bytes` hold at least one valid multi-byte UTF-8 sequence.
fn has_utf8_sequence(mut bytes: &[u8]) -> bool {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => return !s.is_ascii(),
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                if !valid.is_ascii() {
                    return true;
                }
                match e.error_len() {
                    Some(n) => bytes = &rest[n..],
                    None => return false,
                }
            }
        }
    }
}

/// UTF-16 code units (after the BOM); a lone surrogate or an odd last
/// byte is refused where it is.
fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, Refusal> {
    let chunks = bytes.chunks_exact(2);
    let odd = !chunks.remainder().is_empty();
    let mut out = String::with_capacity(bytes.len() / 2);
    for c in char::decode_utf16(chunks.map(|c| unit([c[0], c[1]]))) {
        match c {
            Ok(c) => out.push(c),
            Err(_) => return Err(Refusal::at(&out, |column| Reason::InvalidUtf16 { column })),
        }
    }
    if odd {
        return Err(Refusal::at(&out, |column| Reason::InvalidUtf16 { column }));
    }
    Ok(out)
}

/// The line and the column (both from 1, the column in characters) just
/// after `text`; CR, LF and CRLF each end one line.
pub fn position_after(text: &str) -> (u64, u64) {
    let mut line = 1u64;
    let mut column = 1u64;
    let mut after_cr = false;
    for c in text.chars() {
        match c {
            '\n' if after_cr => {}
            '\n' | '\r' => {
                line += 1;
                column = 1;
            }
            _ => column += 1,
        }
        after_cr = c == '\r';
    }
    (line, column)
}

/// Whether a file looks like binary data rather than text: many control
/// bytes in its first 8 KiB (a lone NUL further on is refused by line).
pub fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    let controls = head
        .iter()
        .filter(|b| **b < 0x20 && !matches!(**b, b'\n' | b'\r' | b'\t'))
        .count();
    controls * 20 > head.len().max(1)
}

/// Where a CSV reader with `delimiter` stands while reading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: its end, or the first of `""`.
    QuoteInQuoted,
}

/// The text with line ends the CSV reader counts right (see the module
/// comment), or the line of a quoted field that never closes.
pub fn normalise_line_ends(text: Cow<'_, str>, delimiter: u8) -> Result<Cow<'_, str>, u64> {
    let text = if !text.contains('\n') && text.contains('\r') {
        Cow::Owned(text.replace('\r', "\n"))
    } else {
        text
    };
    let delimiter = char::from(delimiter);
    let mut state = State::StartField;
    let (mut line, mut opened) = (1u64, 1u64);
    // Byte offsets of the CRs that end records (outside quoted fields).
    let mut crs = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next_is_lf = chars.peek().is_some_and(|(_, n)| *n == '\n');
        // Lines as the CSV reader will count them: LFs, and the lone CRs
        // that end records (which become LFs).
        let ends_record = c == '\r' && state != State::Quoted;
        if ends_record {
            crs.push(at);
        }
        if c == '\n' || (ends_record && !next_is_lf) {
            line += 1;
        }
        state = match (state, c) {
            (State::StartField, '"') => {
                opened = line;
                State::Quoted
            }
            (State::Quoted, '"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, '"') => State::Quoted,
            (_, c) if c == delimiter || c == '\n' || c == '\r' => State::StartField,
            _ => State::Unquoted,
        };
    }
    if state == State::Quoted {
        return Err(opened);
    }
    if crs.is_empty() {
        return Ok(text);
    }
    // A lone CR becomes LF; the CR of a CRLF goes.
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for at in crs {
        out.push_str(&text[from..at]);
        if !text[at + 1..].starts_with('\n') {
            out.push('\n');
        }
        from = at + 1;
    }
    out.push_str(&text[from..]);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(bytes: &[u8]) -> (u64, Reason) {
        let r = decode_text(bytes).expect_err("refused");
        (r.line, r.reason)
    }

    #[test]
    fn windows_1252_is_read_when_there_is_no_utf8_at_all() {
        assert_eq!(decode_text(b"a\n\xC9lodie\n").as_deref(), Ok("a\nÉlodie\n"));
        assert_eq!(
            decode_text("\u{feff}Élodie".as_bytes()).as_deref(),
            Ok("Élodie")
        );
    }

    #[test]
    fn utf8_with_one_bad_byte_is_refused_at_its_line_and_column() {
        let file = b"nom\r\n\xC3\x89lodie\r\nZo\xEB\r\n";
        assert_eq!(refused(file), (3, Reason::InvalidUtf8 { column: 3 }));
        // With a BOM the file says it is UTF-8: no guess even without é.
        assert_eq!(
            refused(b"\xEF\xBB\xBFa\n\xC9"),
            (2, Reason::InvalidUtf8 { column: 1 })
        );
    }

    #[test]
    fn utf16_with_bom_is_read_in_both_byte_orders() {
        let text = "nom\tprénom\r\nN'Diaye\tÉloïse\r\n";
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode_text(&le).as_deref(), Ok(text));
        assert_eq!(decode_text(&be).as_deref(), Ok(text));
        assert_eq!(
            refused(&[0xFF, 0xFE, b'a', 0, b'\n', 0, 0x00, 0xD8, b'b', 0]),
            (2, Reason::InvalidUtf16 { column: 1 })
        );
        assert_eq!(
            refused(&[0xFF, 0xFE, b'a', 0, b'b']),
            (1, Reason::InvalidUtf16 { column: 2 })
        );
    }

    #[test]
    fn a_nul_anywhere_is_refused_with_its_line() {
        let mut file = "a,b\n1,2\n".repeat(5000).into_bytes();
        file.extend(b"3,\x004\n");
        assert_eq!(refused(&file), (10_001, Reason::NulCharacter { column: 3 }));
        assert_eq!(
            refused(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00"),
            (1, Reason::BinaryData)
        );
    }

    fn normalised(text: &str) -> Result<String, u64> {
        normalise_line_ends(Cow::Borrowed(text), b',').map(Cow::into_owned)
    }

    #[test]
    fn line_ends_are_counted_alike_for_cr_lf_and_crlf() {
        assert_eq!(
            normalised("a\rb\r\"c\rd\"\r").as_deref(),
            Ok("a\nb\n\"c\nd\"\n")
        );
        assert_eq!(
            normalised("a\r\nb,\"x\r\ny\"\r\n").as_deref(),
            Ok("a\nb,\"x\r\ny\"\n")
        );
        assert_eq!(
            normalised("a\nb\rc\n\"x\ry\"\n").as_deref(),
            Ok("a\nb\nc\n\"x\ry\"\n")
        );
        assert_eq!(position_after("a\r\nb\rc\nd"), (4, 2));
    }

    #[test]
    fn quotes_are_read_as_the_csv_reader_reads_them() {
        assert!(normalised("a,b\n1,O\"Brien\n2,x\n").is_ok());
        assert!(normalised("a,b\n1,\"say \"\"hi\"\"\"\n").is_ok());
        assert_eq!(normalised("a,b\n1,\"x\"\n2,\"cut\nhere"), Err(3));
        assert_eq!(normalised("a,b\r1,\"x\"\r2,\"cut\rhere"), Err(3));
        assert_eq!(
            normalised("a,b\n1,\"multi\nline\"\n"),
            Ok("a,b\n1,\"multi\nline\"\n".into())
        );
    }
}
