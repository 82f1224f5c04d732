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
use std::io::{self, Read};

/// A file refused as a whole, at `line` (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub line: u64,
    pub reason: Reason,
}

impl Refusal {
    fn at(position: &Position, make: impl FnOnce(u64) -> Reason) -> Refusal {
        Refusal {
            line: position.line,
            reason: make(position.column),
        }
    }
}

/// Why reading a file stopped: the file is refused, or the disk failed.
#[derive(Debug)]
pub enum Failed {
    Refused(Refusal),
    Io(io::Error),
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        Failed::Io(e)
    }
}

impl From<Refusal> for Failed {
    fn from(r: Refusal) -> Failed {
        Failed::Refused(r)
    }
}

/// Where text stands: line and column (both from 1, the column in
/// characters); CR, LF and CRLF each end one line. Fed text in pieces.
#[derive(Debug, Clone)]
pub struct Position {
    line: u64,
    column: u64,
    after_cr: bool,
}

impl Default for Position {
    fn default() -> Position {
        Position {
            line: 1,
            column: 1,
            after_cr: false,
        }
    }
}

impl Position {
    pub fn feed(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '\n' if self.after_cr => {}
                '\n' | '\r' => {
                    self.line += 1;
                    self.column = 1;
                }
                _ => self.column += 1,
            }
            self.after_cr = c == '\r';
        }
    }
}

/// The line and the column just after `text` (see [`Position`]).
pub fn position_after(text: &str) -> (u64, u64) {
    let mut p = Position::default();
    p.feed(text);
    (p.line, p.column)
}

/// How a file's bytes are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

/// Bytes read at a time: memory does not grow with the file.
const CHUNK: usize = 64 * 1024;

/// Reads up to `CHUNK` bytes (fewer only at the end).
pub(super) fn fill(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.resize(CHUNK, 0);
    let mut n = 0;
    while n < CHUNK {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(n)
}

/// The first pass, over the raw bytes: the encoding, or why the file is
/// refused as a whole (empty, binary, UTF-8 in places only).
pub fn sniff(input: &mut impl Read) -> Result<Encoding, Failed> {
    let mut buf = Vec::new();
    fill(input, &mut buf)?;
    let all_space = |b: &[u8]| b.iter().all(u8::is_ascii_whitespace);
    if buf.starts_with(b"\xFF\xFE") || buf.starts_with(b"\xFE\xFF") {
        return Ok(if buf[0] == 0xFF {
            Encoding::Utf16Le
        } else {
            Encoding::Utf16Be
        });
    }
    let binary = looks_binary(&buf);
    let bom = buf.starts_with(b"\xEF\xBB\xBF");
    let mut check = Utf8Check::default();
    let mut space = all_space(&buf);
    let mut first = true;
    loop {
        let body = if first && bom { &buf[3..] } else { &buf[..] };
        first = false;
        let end = buf.len() < CHUNK;
        check.push(body, end);
        if end {
            break;
        }
        fill(input, &mut buf)?;
        space &= all_space(&buf);
    }
    if space {
        return Err(Refusal {
            line: 1,
            reason: Reason::EmptyFile,
        }
        .into());
    }
    if binary {
        return Err(Refusal {
            line: 1,
            reason: Reason::BinaryData,
        }
        .into());
    }
    match check.first_error {
        None => Ok(Encoding::Utf8),
        // UTF-8 in places: refused where it stops being UTF-8.
        Some(at) if bom || check.multibyte => {
            Err(Refusal::at(&at, |column| Reason::InvalidUtf8 { column }).into())
        }
        // No UTF-8 at all beyond ASCII: what older spreadsheets save.
        Some(_) => Ok(Encoding::Windows1252),
    }
}

/// UTF-8 checked in pieces: where the first invalid byte is, and whether a
/// valid multi-byte sequence appears anywhere.
#[derive(Default)]
struct Utf8Check {
    carry: Vec<u8>,
    position: Position,
    first_error: Option<Position>,
    multibyte: bool,
}

impl Utf8Check {
    fn push(&mut self, bytes: &[u8], end: bool) {
        let mut joined = std::mem::take(&mut self.carry);
        joined.extend_from_slice(bytes);
        let mut rest: &[u8] = &joined;
        loop {
            let (valid, next) = match std::str::from_utf8(rest) {
                Ok(s) => (s, None),
                Err(e) => (
                    std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
                    Some((e.valid_up_to(), e.error_len())),
                ),
            };
            self.multibyte |= !valid.is_ascii();
            if self.first_error.is_none() {
                self.position.feed(valid);
            }
            match next {
                None => return,
                Some((at, Some(bad))) => {
                    self.error();
                    rest = &rest[at + bad..];
                }
                // A sequence cut by the end of this piece.
                Some((at, None)) if !end => {
                    self.carry = rest[at..].to_vec();
                    return;
                }
                Some(_) => {
                    self.error();
                    return;
                }
            }
        }
    }

    fn error(&mut self) {
        if self.first_error.is_none() {
            self.first_error = Some(self.position.clone());
        }
    }
}

/// Decodes the file with `encoding` (a BOM skipped), handing the text to
/// `each` in pieces with the position before each piece; a character
/// that does not decode (UTF-16: a lone surrogate, an odd last byte) is
/// refused where it is.
pub fn decode_stream(
    input: &mut impl Read,
    encoding: Encoding,
    mut each: impl FnMut(&Position, &str) -> Result<(), Failed>,
) -> Result<(), Failed> {
    let mut position = Position::default();
    let mut hand = |text: &str, position: &mut Position| -> Result<(), Failed> {
        each(position, text)?;
        position.feed(text);
        Ok(())
    };
    let mut buf = Vec::new();
    fill(input, &mut buf)?;
    let (decoding, skip) = match encoding {
        Encoding::Utf8 => (
            encoding_rs::UTF_8,
            if buf.starts_with(b"\xEF\xBB\xBF") {
                3
            } else {
                0
            },
        ),
        Encoding::Utf16Le => (encoding_rs::UTF_16LE, 2),
        Encoding::Utf16Be => (encoding_rs::UTF_16BE, 2),
        Encoding::Windows1252 => (encoding_rs::WINDOWS_1252, 0),
    };
    let mut decoder = decoding.new_decoder_without_bom_handling();
    let mut from = skip.min(buf.len());
    let mut out = String::new();
    loop {
        let last = buf.len() < CHUNK;
        let piece = &buf[from..];
        let room = decoder
            .max_utf8_buffer_length_without_replacement(piece.len())
            .unwrap_or(piece.len() * 3 + 16);
        out.clear();
        out.reserve(room);
        let (result, _) = decoder.decode_to_string_without_replacement(piece, &mut out, last);
        match result {
            encoding_rs::DecoderResult::InputEmpty => hand(&out, &mut position)?,
            encoding_rs::DecoderResult::OutputFull => {
                return Err(io::Error::other("decoder buffer too small").into())
            }
            encoding_rs::DecoderResult::Malformed(_, _) => {
                hand(&out, &mut position)?;
                let reason = if encoding == Encoding::Utf8 {
                    |column| Reason::InvalidUtf8 { column }
                } else {
                    |column| Reason::InvalidUtf16 { column }
                };
                return Err(Refusal::at(&position, reason).into());
            }
        }
        if last {
            return Ok(());
        }
        fill(input, &mut buf)?;
        from = 0;
    }
}

/// The text of a file in memory (the fuzz targets' and the tests' way in):
/// UTF-16 with BOM, UTF-8 (BOM dropped), or Windows-1252 when it has no
/// UTF-8 at all; refused when it is binary, mixes encodings or holds a
/// NUL. The import reads files in pieces instead (`prepared`).
pub fn decode_text(bytes: &[u8]) -> Result<Cow<'_, str>, Refusal> {
    let run = || -> Result<String, Failed> {
        let encoding = sniff(&mut &bytes[..])?;
        let mut text = String::new();
        decode_stream(&mut &bytes[..], encoding, |position, piece| {
            refuse_nul(position, piece)?;
            text.push_str(piece);
            Ok(())
        })?;
        Ok(text)
    };
    match run() {
        Ok(text) => Ok(Cow::Owned(text)),
        Err(Failed::Refused(r)) => Err(r),
        // Reading memory does not fail.
        Err(Failed::Io(e)) => Err(Refusal {
            line: 1,
            reason: Reason::UnreadableRow {
                detail: super::Shown::new(&e.to_string()),
            },
        }),
    }
}

/// A NUL in `piece` (which starts at `position`) refused with its place.
pub fn refuse_nul(position: &Position, piece: &str) -> Result<(), Refusal> {
    match piece.find('\0') {
        None => Ok(()),
        Some(at) => {
            let mut p = position.clone();
            p.feed(&piece[..at]);
            Err(Refusal::at(&p, |column| Reason::NulCharacter { column }))
        }
    }
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
}
