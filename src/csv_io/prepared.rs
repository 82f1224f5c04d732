//! An upload made ready for the CSV reader, in pieces: memory stays flat
//! whatever the file's size. Three passes over the file (`decode`'s rules):
//! the raw bytes for the encoding; the text for a NUL, a broken
//! character, an empty file, the kind of line ends and the header line
//! (the delimiter); then the text again with its line ends made the ones
//! the CSV reader counts right, written out (to a file beside the upload,
//! or to memory for a file given in memory). The reader then reads that.

use super::decode::{decode_stream, fill, refuse_nul, sniff, Failed, Position, Refusal};
use super::detect_delimiter;
use super::reason::Reason;
use std::borrow::Cow;
use std::io::{self, Read, Seek, Write};

/// Where a CSV reader with `delimiter` stands while reading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: its end, or the first of `""`.
    QuoteInQuoted,
}

/// Makes record ends outside quoted fields LF, fed text in pieces (see the
/// module comment of `decode`): a lone CR becomes LF, the CR of a CRLF
/// goes; in a CR-only file every CR is a line end. Knows the line a quoted
/// field opened on, for a file cut short.
struct Normaliser {
    delimiter: char,
    cr_only: bool,
    state: State,
    line: u64,
    opened: u64,
    /// A CR that ends a record, waiting for the next character.
    pending_cr: bool,
    out: String,
}

impl Normaliser {
    fn new(delimiter: u8, cr_only: bool) -> Normaliser {
        Normaliser {
            delimiter: char::from(delimiter),
            cr_only,
            state: State::StartField,
            line: 1,
            opened: 1,
            pending_cr: false,
            out: String::new(),
        }
    }

    /// The next piece of text; its normalised form is left in `out`.
    fn push(&mut self, text: &str) {
        self.out.clear();
        for c in text.chars() {
            let c = if self.cr_only && c == '\r' { '\n' } else { c };
            if self.pending_cr {
                self.pending_cr = false;
                // CRLF: the CR goes (the LF below counts the line).
                if c != '\n' {
                    self.out.push('\n');
                    self.line += 1;
                }
            }
            if c == '\r' && self.state != State::Quoted {
                self.pending_cr = true;
            } else {
                self.out.push(c);
            }
            if c == '\n' {
                self.line += 1;
            }
            self.state = match (self.state, c) {
                (State::StartField, '"') => {
                    self.opened = self.line;
                    State::Quoted
                }
                (State::Quoted, '"') => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (State::QuoteInQuoted, '"') => State::Quoted,
                (_, c) if c == self.delimiter || c == '\n' || c == '\r' => State::StartField,
                _ => State::Unquoted,
            };
        }
    }

    /// The end of the text: what is left in `out`, or the line of a quoted
    /// field that never closes.
    fn finish(&mut self) -> Result<(), u64> {
        self.out.clear();
        if self.pending_cr {
            self.pending_cr = false;
            self.out.push('\n');
        }
        match self.state {
            State::Quoted => Err(self.opened),
            _ => Ok(()),
        }
    }
}

/// What the second pass learns of the text.
#[derive(Default)]
struct Seen {
    lf: bool,
    cr: bool,
    /// Where the text stands against "white space, BOMs, white space"
    /// (what an empty file is): 0, 1, 2 in those, 3 past them.
    blank: u8,
    header: String,
    header_done: bool,
    /// The first NUL: a broken character anywhere is said first.
    nul: Option<Refusal>,
}

impl Seen {
    fn blank_after(&mut self, piece: &str) {
        for c in piece.chars() {
            self.blank = match (self.blank, c) {
                (3, _) => return,
                (0, c) if c.is_whitespace() => 0,
                (0 | 1, '\u{feff}') => 1,
                (1 | 2, c) if c.is_whitespace() => 2,
                _ => 3,
            };
        }
    }
}

/// The longest header line kept to tell the delimiter.
const HEADER_MAX: usize = 1 << 20;

/// Reads `input` (from its start) and writes the text the CSV reader
/// takes to `out`; returns the delimiter. Refuses an empty or binary file,
/// one that mixes encodings or holds a NUL, and a quoted field that never
/// closes, each with its line.
pub fn prepare<R: Read + Seek, W: Write>(input: &mut R, out: &mut W) -> Result<u8, Failed> {
    let encoding = sniff(input)?;
    input.rewind()?;
    let mut seen = Seen::default();
    decode_stream(input, encoding, |position: &Position, piece: &str| {
        if seen.nul.is_none() {
            seen.nul = refuse_nul(position, piece).err();
        }
        seen.lf |= piece.contains('\n');
        seen.cr |= piece.contains('\r');
        seen.blank_after(piece);
        if !seen.header_done {
            let end = piece.find(['\r', '\n']);
            let part = &piece[..end.unwrap_or(piece.len())];
            let room = HEADER_MAX.saturating_sub(seen.header.len());
            let mut cut = part.len().min(room);
            while !part.is_char_boundary(cut) {
                cut -= 1;
            }
            seen.header.push_str(&part[..cut]);
            seen.header_done = end.is_some() || cut < part.len();
        }
        Ok(())
    })?;
    if let Some(nul) = seen.nul {
        return Err(nul.into());
    }
    // A UTF-16 file of white space only is empty too.
    if seen.blank < 3 {
        return Err(Refusal {
            line: 1,
            reason: Reason::EmptyFile,
        }
        .into());
    }
    let delimiter = detect_delimiter(&seen.header);
    input.rewind()?;
    let mut lines = Normaliser::new(delimiter, !seen.lf && seen.cr);
    decode_stream(input, encoding, |_: &Position, piece: &str| {
        lines.push(piece);
        out.write_all(lines.out.as_bytes())?;
        Ok(())
    })?;
    match lines.finish() {
        Ok(()) => {
            out.write_all(lines.out.as_bytes())?;
            Ok(delimiter)
        }
        Err(opened) => Err(Refusal {
            line: opened,
            reason: Reason::UnclosedQuote { opened },
        }
        .into()),
    }
}

/// Records in a file, to show progress against: its LFs, read in pieces.
pub fn estimate_rows(input: &mut impl Read) -> io::Result<u64> {
    let (mut lfs, mut last, mut any) = (0u64, b'\n', false);
    let mut buf = Vec::new();
    while fill(input, &mut buf)? > 0 {
        any = true;
        lfs += buf.iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[buf.len() - 1];
    }
    Ok(lfs.saturating_sub(1) + u64::from(any && last != b'\n'))
}

/// Text with its line ends normalised, in memory (the tests' way in).
pub fn normalise_line_ends(text: Cow<'_, str>, delimiter: u8) -> Result<Cow<'_, str>, u64> {
    let mut lines = Normaliser::new(delimiter, !text.contains('\n') && text.contains('\r'));
    lines.push(&text);
    let mut out = std::mem::take(&mut lines.out);
    lines.finish()?;
    out.push_str(&lines.out);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::super::decode::position_after;
    use super::*;

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

    #[test]
    fn a_file_read_in_pieces_gives_what_it_gives_whole() {
        // Over several 64 KiB pieces: multi-byte characters and CRLFs cut
        // at every boundary come out whole.
        let row = "É-1,0751234J,Lefèvre,Zoë,2011-02-03,student\r\n";
        let text = format!(
            "account_id,school_code,last_name,first_name,birth_date,role\r\n{}",
            row.repeat(9000)
        );
        let mut out = Vec::new();
        let d = prepare(&mut std::io::Cursor::new(text.as_bytes()), &mut out).expect("prepared");
        assert_eq!(d, b',');
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            text.replace("\r\n", "\n")
        );
        let mut le: Vec<u8> = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut out16 = Vec::new();
        prepare(&mut std::io::Cursor::new(&le), &mut out16).expect("utf-16");
        assert_eq!(
            String::from_utf8(out16).expect("utf-8"),
            text.replace("\r\n", "\n")
        );
        assert_eq!(estimate_rows(&mut text.as_bytes()).expect("rows"), 9000);
    }

    #[test]
    fn a_broken_character_is_said_before_a_nul_and_blank_text_is_empty() {
        let refused =
            |bytes: &[u8]| match prepare(&mut std::io::Cursor::new(bytes), &mut Vec::new()) {
                Err(Failed::Refused(r)) => (r.line, r.reason),
                other => panic!("{:?}", other.map(|_| ())),
            };
        assert_eq!(
            refused(&[0xFF, 0xFE, b'a', 0, 0, 0, 0x00, 0xD8, b'b', 0]),
            (1, Reason::InvalidUtf16 { column: 3 })
        );
        let utf16 = |t: &str| -> Vec<u8> {
            [0xFF, 0xFE]
                .into_iter()
                .chain(t.encode_utf16().flat_map(u16::to_le_bytes))
                .collect()
        };
        assert_eq!(refused(&utf16(" \u{feff}\n ")), (1, Reason::EmptyFile));
        // White space between two BOMs is not an empty file (the header
        // is then what is wrong).
        assert!(!matches!(
            prepare(
                &mut std::io::Cursor::new(utf16("\u{feff}\n\u{feff}")),
                &mut Vec::new()
            ),
            Err(Failed::Refused(Refusal {
                reason: Reason::EmptyFile,
                ..
            }))
        ));
    }

    #[test]
    fn a_bad_byte_far_into_a_file_is_refused_at_its_line() {
        let mut file = "nom,prénom\n".repeat(20_000).into_bytes();
        file.extend(b"Zo\xEB,x\n");
        let err = prepare(&mut std::io::Cursor::new(&file), &mut Vec::new()).expect_err("refused");
        match err {
            Failed::Refused(r) => assert_eq!(
                (r.line, r.reason),
                (20_001, Reason::InvalidUtf8 { column: 3 })
            ),
            Failed::Io(e) => panic!("{e}"),
        }
    }
}
