//! School codes: a Dutch BRIN (`^[0-9]{2}[A-Z]{2}([0-9]{2})?$`) or a French
//! UAI (`^[0-9]{7}[A-Z]$` whose letter is the check letter of the number).

/// The check letters of a UAI, indexed by the 7-digit number modulo 23.
const UAI_LETTERS: &[u8; 23] = b"ABCDEFGHJKLMNPRSTUVWXYZ";

/// What a string is as a school code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchoolCode {
    Brin(String),
    Uai(String),
}

impl SchoolCode {
    /// The canonical (trimmed, upper-case) code.
    pub fn as_str(&self) -> &str {
        match self {
            SchoolCode::Brin(s) | SchoolCode::Uai(s) => s,
        }
    }

    /// Whether a stored code (an account's, a school's) is this one.
    pub fn is(&self, stored: &str) -> bool {
        self.as_str() == stored
    }
}

impl std::fmt::Display for SchoolCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes as a list for a message: `0751234J, 12AB`.
pub fn listed(codes: &[SchoolCode]) -> String {
    codes
        .iter()
        .map(SchoolCode::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a school code, telling BRIN from UAI by its shape. Surrounding white
/// space and letter case are ignored (ENTs send `0751234j` as often as
/// `0751234J`); anything else that is not exactly a BRIN or a valid UAI is
/// refused.
pub fn parse_school_code(raw: &str) -> Option<SchoolCode> {
    let code = raw.trim().to_ascii_uppercase();
    let b = code.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let letters = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_uppercase);
    match b.len() {
        4 if digits(0..2) && letters(2..4) => Some(SchoolCode::Brin(code)),
        6 if digits(0..2) && letters(2..4) && digits(4..6) => Some(SchoolCode::Brin(code)),
        8 if digits(0..7) && letters(7..8) => {
            let n: u32 = code[..7].parse().ok()?;
            (UAI_LETTERS[(n % 23) as usize] == b[7]).then_some(SchoolCode::Uai(code))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uai_with_the_right_check_letter_is_valid() {
        assert_eq!(
            parse_school_code("0751234J"),
            Some(SchoolCode::Uai("0751234J".into()))
        );
        assert_eq!(
            parse_school_code(" 0751234j "),
            Some(SchoolCode::Uai("0751234J".into()))
        );
    }

    #[test]
    fn uai_with_a_wrong_check_letter_is_refused() {
        assert_eq!(parse_school_code("0751234A"), None);
        // I and O are not check letters at all.
        assert_eq!(parse_school_code("0751234I"), None);
    }

    #[test]
    fn brin_of_four_or_six_characters_is_valid() {
        assert_eq!(
            parse_school_code("12AB"),
            Some(SchoolCode::Brin("12AB".into()))
        );
        assert_eq!(
            parse_school_code("12ab03"),
            Some(SchoolCode::Brin("12AB03".into()))
        );
    }

    #[test]
    fn other_shapes_are_refused() {
        for bad in [
            "",
            "1AB",
            "12A",
            "12ABC",
            "12AB3",
            "AB12",
            "075123J",
            "07512345J",
            "12-AB",
        ] {
            assert_eq!(parse_school_code(bad), None, "{bad}");
        }
    }
}
