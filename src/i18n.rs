//! The translation catalogue: every user-visible string, in French (the
//! default), Dutch and English, from `locales/{fr,nl,en}.txt` (built in).
//!
//! The files are `key = text` lines with `{name}` placeholders: what the
//! pages need today. Fluent (the reference design) adds plurals, selectors
//! and its own syntax; its message IDs cannot hold the dotted keys the
//! templates use, and its crates add a runtime for features no page uses
//! yet. Should plurals be needed, the files map one to one to `.ftl`
//! messages (dots become dashes).

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    Nl,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    /// `fr`, `nl` or `en` (any case).
    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "fr" => Some(Lang::Fr),
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header, by
    /// quality; French when none is.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.unwrap_or("").split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = match tag.split('-').next().unwrap_or("") {
                "fr" => Lang::Fr,
                "nl" => Lang::Nl,
                "en" => Lang::En,
                _ => continue,
            };
            if best.map(|(bq, _)| q > bq).unwrap_or(true) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::Fr)
    }
}

/// Looks up strings in one language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

type Table = HashMap<&'static str, &'static str>;

/// The catalogue files, one per language, in [`Lang`] order, built in.
pub const FILES: [(&str, &str); 3] = [
    ("fr", include_str!("../locales/fr.txt")),
    ("nl", include_str!("../locales/nl.txt")),
    ("en", include_str!("../locales/en.txt")),
];

/// Reads a catalogue file: `key = text` lines; blank lines and lines that
/// start with `#` are skipped. Errors name the line (a test reads every file
/// strictly, so a broken catalogue never ships).
pub fn parse(text: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(" = ") else {
            return Err(format!("line {}: not `key = text`", i + 1));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {}: bad key {key:?}", i + 1));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn tables() -> &'static [Table; 3] {
    static T: OnceLock<[Table; 3]> = OnceLock::new();
    T.get_or_init(|| FILES.map(|(_, text)| parse(text).unwrap_or_default().into_iter().collect()))
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The string for `key` in this language, else in French.
    fn lookup(&self, key: &str) -> Option<&'static str> {
        let idx = match self.lang {
            Lang::Fr => 0,
            Lang::Nl => 1,
            Lang::En => 2,
        };
        let t = tables();
        t[idx].get(key).or_else(|| t[0].get(key)).copied()
    }

    /// The string for `key`; the key itself when no language has it (a test
    /// keeps the catalogue complete).
    pub fn get<'k>(&self, key: &'k str) -> &'k str
    where
        'static: 'k,
    {
        self.lookup(key).unwrap_or(key)
    }

    /// The label of a stored code (`family.code`, e.g. `admin.status.open`),
    /// else the code itself.
    pub fn code(&self, family: &str, code: &str) -> String {
        let key = format!("{family}.{code}");
        self.lookup(&key)
            .map_or_else(|| code.to_string(), str::to_string)
    }

    /// The string for a kind-specific key such as `kind.expired.title`.
    pub fn kind(&self, kind: &str, part: &str) -> String {
        let key = format!("kind.{kind}.{part}");
        self.lookup(&key).map(str::to_string).unwrap_or(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::FailureKind;

    #[test]
    fn every_language_has_every_key_once() {
        let mut sets = Vec::new();
        for (code, text) in FILES {
            let entries = parse(text).unwrap_or_else(|e| panic!("locales/{code}.txt: {e}"));
            let keys: std::collections::BTreeSet<&str> = entries.iter().map(|(k, _)| *k).collect();
            assert_eq!(
                keys.len(),
                entries.len(),
                "locales/{code}.txt: a key appears twice"
            );
            assert!(
                entries.iter().all(|(_, v)| !v.trim().is_empty()),
                "{code}: an empty text"
            );
            sets.push((code, keys));
        }
        for (code, keys) in &sets[1..] {
            let missing: Vec<_> = sets[0].1.difference(keys).collect();
            let extra: Vec<_> = keys.difference(&sets[0].1).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{code}: missing {missing:?}, not in French {extra:?}"
            );
        }
    }

    #[test]
    fn a_broken_line_is_named() {
        assert_eq!(
            parse("# c\n\na.b = x {name}\n"),
            Ok(vec![("a.b", "x {name}")])
        );
        assert_eq!(
            parse("a.b = x\nno equals sign\n"),
            Err("line 2: not `key = text`".into())
        );
    }

    #[test]
    fn every_failure_kind_has_a_title_and_an_explanation() {
        for lang in [Lang::Fr, Lang::Nl, Lang::En] {
            let t = Tr::new(lang);
            for k in FailureKind::ALL {
                for part in ["title", "text"] {
                    let s = t.kind(k.as_str(), part);
                    assert!(!s.starts_with("kind."), "{lang:?} lacks {s}");
                }
            }
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::from_accept_language(None), Lang::Fr);
        assert_eq!(
            Lang::from_accept_language(Some("nl-NL,nl;q=0.9,en;q=0.8")),
            Lang::Nl
        );
        assert_eq!(
            Lang::from_accept_language(Some("de-DE,en;q=0.5,fr;q=0.7")),
            Lang::Fr
        );
        assert_eq!(
            Lang::from_accept_language(Some("de, en-GB;q=0.3")),
            Lang::En
        );
    }
}
