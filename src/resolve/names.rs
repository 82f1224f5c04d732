//! Name folding and date parsing shared by matching, ranking and CSV import.

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

/// Folds a name for comparison: accents removed, case folded, and spaces,
/// hyphens, apostrophes and dots dropped, so that `Élodie Dupont-Martin` and
/// `ELODIE DUPONT MARTIN` fold to the same `elodiedupontmartin`.
pub fn fold_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        // Letters that Unicode does not decompose into a base letter.
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ø' => out.push('o'),
            'ł' => out.push('l'),
            c if c.is_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// Parses a date as `YYYY-MM-DD`, `DD/MM/YYYY`, `DD-MM-YYYY`, or `YYYYMMDD`
/// (the last is what `schacDateOfBirth` carries).
/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary: how every bounded text is cut.
pub fn prefix_within(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let s = raw.trim();
    ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
        // chrono accepts one-digit day and month fields; a real date never
        // has them, and accepting `9/3/2012` would hide typos.
        .filter(|_| s.len() == 10 || (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_case_spaces_and_hyphens_fold_away() {
        assert_eq!(fold_name("Élodie"), fold_name("ELODIE"));
        assert_eq!(fold_name("Dupont-Martin"), fold_name("DUPONT MARTIN"));
        assert_eq!(fold_name("  N'Diaye "), "ndiaye");
        assert_eq!(fold_name("Œlla Groß"), "oellagross");
        assert_ne!(fold_name("Martin"), fold_name("Martine"));
    }

    #[test]
    fn the_three_csv_date_formats_and_schac_are_read() {
        let d = NaiveDate::from_ymd_opt(2012, 3, 9).expect("date");
        assert_eq!(parse_date("2012-03-09"), Some(d));
        assert_eq!(parse_date("09/03/2012"), Some(d));
        assert_eq!(parse_date("09-03-2012"), Some(d));
        assert_eq!(parse_date("20120309"), Some(d));
    }

    #[test]
    fn impossible_or_partial_dates_are_refused() {
        for bad in [
            "2012-02-30",
            "31/04/2012",
            "9/3/2012",
            "2012-3-9",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
