//! A federation's metadata, as Entree Federatie, EduConnect and Renater
//! publish it: one signed document (an EntitiesDescriptor, or one
//! EntityDescriptor) with a `validUntil` and a `cacheDuration`. It is taken
//! only when its enveloped signature verifies with the federation's
//! certificate (given in the config, never read from the document) and it
//! has not expired.
//!
//! The signature is verified on the strictly parsed tree by the same code
//! as assertions ([`super::dsig`]), and the IdPs are read from that same
//! tree, by its structure only ([`super::metadata::read_document`]): an
//! EntityDescriptor slipped into the Signature's KeyInfo (which the
//! enveloped signature does not cover) refuses the document. A member IdP
//! that lacks what we need is skipped and named, not the whole federation.

use super::dsig::{verify_enveloped, TrustedKeys};
use super::metadata::{read_document, IdpMetadata};
use super::xml::{is, parse_strict_within, DS_NS, MD_NS};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The largest metadata document taken (a national aggregate is a few MB).
pub const MAX_METADATA_BYTES: usize = 64 << 20;
/// Nodes in such a document.
const MAX_METADATA_NODES: u32 = 8_000_000;
/// How often metadata is fetched when it names no `cacheDuration`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(6 * 3600);
/// Bounds on a `cacheDuration`: not more often than this…
pub const MIN_REFRESH: Duration = Duration::from_secs(10 * 60);
/// …and not less often than this.
pub const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// A verified federation document.
#[derive(Debug, Clone)]
pub struct Federation {
    pub idps: Vec<IdpMetadata>,
    /// Member entities left out, and why.
    pub skipped: Vec<String>,
    pub valid_until: DateTime<Utc>,
    pub cache_duration: Option<Duration>,
}

impl Federation {
    /// When to fetch again: the `cacheDuration` within bounds, and well
    /// before `validUntil`.
    pub fn refresh_after(&self, now: DateTime<Utc>) -> Duration {
        let wanted = self
            .cache_duration
            .unwrap_or(DEFAULT_REFRESH)
            .clamp(MIN_REFRESH, MAX_REFRESH);
        let left = (self.valid_until - now).to_std().unwrap_or_default() / 2;
        wanted.min(left.max(Duration::from_secs(60)))
    }
}

/// Verifies and reads a federation's metadata document.
pub fn read_signed(
    text: &str,
    keys: &TrustedKeys,
    now: DateTime<Utc>,
) -> Result<Federation, String> {
    if text.len() > MAX_METADATA_BYTES {
        return Err(format!(
            "the metadata is {} bytes; at most {MAX_METADATA_BYTES} are read",
            text.len()
        ));
    }
    let doc = parse_strict_within(text, MAX_METADATA_NODES)
        .map_err(|e| format!("not usable XML metadata: {e}"))?;
    let root = doc.root_element();
    if !is(&root, MD_NS, "EntitiesDescriptor") && !is(&root, MD_NS, "EntityDescriptor") {
        return Err(format!(
            "the root element is <{}>, not md:EntitiesDescriptor or md:EntityDescriptor",
            root.tag_name().name()
        ));
    }
    refuse_hidden_text(&doc)?;
    let mut sigs = root.children().filter(|c| is(c, DS_NS, "Signature"));
    let sig = match (sigs.next(), sigs.next()) {
        (Some(s), None) => s,
        (None, _) => return Err("the metadata is not signed".into()),
        (Some(_), Some(_)) => return Err("the metadata carries two signatures".into()),
    };
    verify_enveloped(sig, root, keys).map_err(|e| format!("the metadata signature: {e}"))?;
    let valid_until = root
        .attribute("validUntil")
        .ok_or("the metadata has no validUntil (an unbounded copy could be replayed forever)")?;
    let valid_until = super::reading::parse_instant(valid_until)
        .ok_or_else(|| format!("validUntil {valid_until:?} is not a date and time"))?;
    if valid_until <= now {
        return Err(format!("the metadata expired at {valid_until}"));
    }
    let cache_duration = match root.attribute("cacheDuration") {
        None => None,
        Some(d) => Some(
            parse_duration(d).ok_or_else(|| format!("cacheDuration {d:?} is not a duration"))?,
        ),
    };
    let (idps, skipped) = read_document(&doc, true)?;
    Ok(Federation {
        idps,
        skipped,
        valid_until,
        cache_duration,
    })
}

/// Comments between elements are common in aggregates and harmless; a
/// comment inside text (a certificate, a name) would make the signed text
/// and the read text differ, and is refused; so are processing
/// instructions.
fn refuse_hidden_text(doc: &roxmltree::Document) -> Result<(), String> {
    for n in doc.descendants() {
        if n.is_pi() {
            return Err("a processing instruction is present".into());
        }
        if n.is_comment() {
            let text_beside = n.parent().is_some_and(|p| {
                p.children()
                    .any(|c| c.is_text() && c.text().is_some_and(|t| !t.trim().is_empty()))
            });
            if text_beside {
                return Err("a comment inside text is present".into());
            }
        }
    }
    Ok(())
}

/// An `xs:duration` such as `PT6H` or `P1DT12H` (a year counts 365 days, a
/// month 30); negative durations are refused.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut seconds = 0f64;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        let mut last = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let i = units.iter().position(|(u, _)| *u == c)?;
            if i < last || number.is_empty() {
                return None;
            }
            last = i + 1;
            seconds += number.parse::<f64>().ok()? * units[i].1;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    add(
        date,
        &[
            ('Y', 365.0 * 86400.0),
            ('M', 30.0 * 86400.0),
            ('D', 86400.0),
        ],
    )?;
    if let Some(t) = time {
        add(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_federations_write_them() {
        assert_eq!(parse_duration("PT6H"), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(
            parse_duration("P1DT12H"),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(parse_duration("PT30M"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("PT1.5S"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("P1M"), Some(Duration::from_secs(30 * 86400)));
        for bad in [
            "", "P", "PT", "6H", "-PT6H", "PT6", "PH6", "P1H", "PT1H2H", "PT1M1H",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refresh_is_bounded_and_before_expiry() {
        let now = Utc::now();
        let f = |cache: Option<Duration>, hours: i64| Federation {
            idps: Vec::new(),
            skipped: Vec::new(),
            valid_until: now + chrono::Duration::hours(hours),
            cache_duration: cache,
        };
        assert_eq!(f(None, 240).refresh_after(now), DEFAULT_REFRESH);
        assert_eq!(
            f(Some(Duration::from_secs(1)), 240).refresh_after(now),
            MIN_REFRESH
        );
        assert_eq!(
            f(Some(Duration::from_secs(864_000)), 240).refresh_after(now),
            MAX_REFRESH
        );
        // Two hours left: fetch within the hour.
        assert_eq!(f(None, 2).refresh_after(now), Duration::from_secs(3600));
    }
}
