//! The list's orders and the cursor that carries one: each order is a key
//! ending in `id`, walked one way; a cursor is the key of the row next to
//! its page, its order and its direction, encoded so clients cannot read or
//! make one by hand.

use base64::Engine;

/// The orders of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Open failures whose user sent the form first, then by count, then
    /// the most recent.
    #[default]
    NeedsYou,
    /// The most recently seen first.
    LastSeen,
    /// The longest waiting first.
    FirstSeen,
    /// The most repeated first, then the most recent.
    Count,
    /// By school code (none first), the longest waiting first in each.
    School,
}

/// How a key column is read and written in a cursor.
#[derive(Debug, Clone, Copy)]
pub(super) enum KeyType {
    Int,
    Text,
}

impl Sort {
    pub const ALL: [Sort; 5] = [
        Sort::NeedsYou,
        Sort::LastSeen,
        Sort::FirstSeen,
        Sort::Count,
        Sort::School,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::NeedsYou => "needs_you",
            Sort::LastSeen => "last_seen",
            Sort::FirstSeen => "first_seen",
            Sort::Count => "count",
            Sort::School => "school",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The key's expressions, as the index of migration 0009 has them.
    pub(super) fn keys(self) -> &'static [(&'static str, KeyType)] {
        use KeyType::{Int, Text};
        match self {
            Sort::NeedsYou => &[
                ("needs_you", Int),
                ("count", Int),
                ("last_seen", Text),
                ("id", Int),
            ],
            Sort::LastSeen => &[("last_seen", Text), ("id", Int)],
            Sort::FirstSeen => &[("first_seen", Text), ("id", Int)],
            Sort::Count => &[("count", Int), ("last_seen", Text), ("id", Int)],
            Sort::School => &[
                ("IFNULL(school_code, '')", Text),
                ("last_seen", Text),
                ("id", Int),
            ],
        }
    }

    /// Whether the list runs from the biggest key down.
    pub(super) fn descending(self) -> bool {
        !matches!(self, Sort::FirstSeen | Sort::School)
    }
}

/// One key value of a cursor. Ordered as SQLite orders the column (one
/// type per key position; text by bytes, SQLite's BINARY collation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum KeyValue {
    Int(i64),
    Text(String),
}

/// Where a page starts: the key of the row next to it, the order it was
/// taken in, and which way the page runs from it. Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(super) sort: Sort,
    /// The page before the key (else after it).
    pub(super) back: bool,
    pub(super) key: Vec<KeyValue>,
}

impl Cursor {
    /// The cursor's text: URL-safe, not meant to be read or made by hand.
    pub fn encode(&self) -> String {
        let key: Vec<serde_json::Value> = self
            .key
            .iter()
            .map(|v| match v {
                KeyValue::Int(i) => serde_json::json!(i),
                KeyValue::Text(t) => serde_json::json!(t),
            })
            .collect();
        let doc = serde_json::json!([self.sort.as_str(), self.back, key]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
    }

    /// A cursor this module encoded, else `None`.
    pub fn decode(s: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let doc: (String, bool, Vec<serde_json::Value>) = serde_json::from_slice(&bytes).ok()?;
        let sort = Sort::parse(&doc.0)?;
        let types = sort.keys();
        if doc.2.len() != types.len() {
            return None;
        }
        let key = doc
            .2
            .iter()
            .zip(types)
            .map(|(v, (_, t))| match t {
                KeyType::Int => v.as_i64().map(KeyValue::Int),
                KeyType::Text => v.as_str().map(|s| KeyValue::Text(s.to_string())),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Cursor {
            sort,
            back: doc.1,
            key,
        })
    }

    /// The order this cursor's pages run in.
    pub fn sort(&self) -> Sort {
        self.sort
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A cursor of `sort` with plausible values (for the list's tests too).
    pub(in crate::store::failures::list) fn cursor(sort: Sort, back: bool) -> Cursor {
        let key = sort
            .keys()
            .iter()
            .map(|(_, t)| match t {
                KeyType::Int => KeyValue::Int(3),
                KeyType::Text => KeyValue::Text("2026-09-01T08:00:00Z".into()),
            })
            .collect();
        Cursor { sort, back, key }
    }

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_nothing_else() {
        for sort in Sort::ALL {
            let c = cursor(sort, true);
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        assert_eq!(Cursor::decode("2026-09-01T08:00:00Z~3"), None);
        assert_eq!(Cursor::decode(""), None);
        let wrong = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"["count",false,["x","2026",1]]"#);
        assert_eq!(Cursor::decode(&wrong), None, "a text where a number goes");
    }
}
