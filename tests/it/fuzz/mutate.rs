//! Structure-aware mutations of an XML document's bytes: flipped bytes,
//! truncation, elements duplicated and reordered (cut at tag starts), huge
//! attributes, deep nesting, and inserted XML constructs.

use proptest::prelude::*;

/// One change to a document's bytes; positions are taken modulo its length.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    /// Repeats the bytes from the `a`-th `<` to the `b`-th.
    Duplicate(usize, usize),
    /// Swaps two neighbouring runs of elements.
    Reorder(usize, usize, usize),
    /// An attribute of `n` bytes in the `at`-th tag.
    HugeAttribute(usize, usize),
    /// `depth` nested elements at the `at`-th tag.
    Deep(usize, usize),
    Insert(usize, String),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
        2 => (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(a, b, c)| Mutation::Reorder(a, b, c)),
        1 => (any::<usize>(), 1usize..300_000).prop_map(|(a, n)| Mutation::HugeAttribute(a, n)),
        1 => (any::<usize>(), 1usize..3_000).prop_map(|(a, d)| Mutation::Deep(a, d)),
        2 => (any::<usize>(), prop_oneof![
            Just("<!DOCTYPE r [<!ENTITY e \"x\">]>".to_string()),
            Just("&e;&amp;&#0;&#xD800;".to_string()),
            Just("<!-- c -->".to_string()),
            Just("<?pi x?>".to_string()),
            Just("]]><![CDATA[".to_string()),
            Just("xmlns:ds=\"urn:other\" ".to_string()),
            "\\PC{0,40}",
        ]).prop_map(|(a, s)| Mutation::Insert(a, s)),
    ]
}

/// The byte offsets of the tags of `doc`.
fn tags(doc: &[u8]) -> Vec<usize> {
    doc.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'<')
        .map(|(i, _)| i)
        .collect()
}

pub fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    if doc.is_empty() {
        return;
    }
    let t = tags(doc);
    let tag = |i: usize| t.get(i % t.len().max(1)).copied().unwrap_or(0);
    match m {
        Mutation::Flip(i, b) => {
            let i = i % doc.len();
            doc[i] ^= b | 1;
        }
        Mutation::Truncate(i) => doc.truncate(i % doc.len()),
        Mutation::Duplicate(a, b) => {
            let (a, b) = (tag(*a).min(tag(*b)), tag(*a).max(tag(*b)));
            let run = doc[a..b].to_vec();
            doc.splice(a..a, run);
        }
        Mutation::Reorder(a, b, c) => {
            let mut p = [tag(*a), tag(*b), tag(*c)];
            p.sort_unstable();
            let moved: Vec<u8> = doc[p[1]..p[2]]
                .iter()
                .chain(&doc[p[0]..p[1]])
                .copied()
                .collect();
            doc.splice(p[0]..p[2], moved);
        }
        Mutation::HugeAttribute(a, n) => {
            let at = tag(*a);
            let at = doc[at..]
                .iter()
                .position(|b| *b == b' ')
                .map_or(at, |p| at + p);
            let attr = format!(" huge=\"{}\"", "A".repeat(*n));
            doc.splice(at..at, attr.into_bytes());
        }
        Mutation::Deep(a, depth) => {
            let at = tag(*a);
            let nest = format!("{}{}", "<d>".repeat(*depth), "</d>".repeat(*depth));
            doc.splice(at..at, nest.into_bytes());
        }
        Mutation::Insert(a, s) => {
            let at = tag(*a);
            doc.splice(at..at, s.bytes());
        }
    }
}
