//! Ranking candidate accounts for a failure, with the reasons for each rank,
//! so an admin sees why an account is proposed.

use super::fold_name;
use chrono::NaiveDate;

/// The identity a failure is about: what the IdP asserted, what the user
/// declared on the form, or a child a parent named in the report.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub class_name: Option<String>,
    /// A child named in a parent's report: an account matched through it
    /// says so.
    pub child: bool,
}

/// What ranking needs of an account.
#[derive(Debug, Clone)]
pub struct CandidateAccount {
    pub account_id: String,
    pub last_name: String,
    pub first_name: String,
    pub birth_date: Option<NaiveDate>,
    pub class_name: Option<String>,
    pub active: bool,
    /// Already reached by another subject of the same IdP (never the
    /// failure's own identity: its mapping is not a reason against).
    pub mapped_elsewhere: bool,
    /// Already reached by the failure's own identity (same IdP and
    /// subject): said, scored neither way.
    pub mapped_here: bool,
}

/// How many letters of a folded name the candidate prefilter compares: a
/// typo after them is still found.
pub const PREFIX_LETTERS: usize = 3;

/// What the store's candidate prefilter looks for, from one claim: its
/// folded names (empty: not given) and birth date. An account is plausible
/// when its folded last and first names start like the claimed ones, same
/// or swapped (typos late in the names), when it has the claimed birth date
/// (a typo early in a name), or, for a claim with a last name only, when its
/// folded last name is that one (the only match such a claim scores). The
/// ranking then scores only those, so what it can no longer propose is an
/// account differing early in a name *and* by birth date (the account
/// search finds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub last: String,
    pub first: String,
    pub birth_date: Option<NaiveDate>,
}

impl Probe {
    /// The probes of some claims, without repeats.
    pub fn of(claims: &[Claimed]) -> Vec<Probe> {
        let mut out: Vec<Probe> = Vec::new();
        for c in claims {
            let p = Probe {
                last: fold_opt(c.last_name.as_deref()),
                first: fold_opt(c.first_name.as_deref()),
                birth_date: c.birth_date,
            };
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// The byte-wise range `[low, high)` of every folded name that starts
    /// like `folded` (its first [`PREFIX_LETTERS`] letters).
    pub fn range(folded: &str) -> (String, String) {
        let low: String = folded.chars().take(PREFIX_LETTERS).collect();
        // No folded name holds U+10FFFF, the highest character.
        let high = format!("{low}\u{10FFFF}");
        (low, high)
    }
}

/// Why an account got its score.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    SameFoldedName,
    SwappedNames,
    BirthDateEqual,
    BirthDateDiffers,
    ClassEqual,
    NameSimilarity(f64),
    MappedElsewhere,
    /// Linked to the failure's own identity already (a reopened failure).
    MappedHere,
    Inactive,
    /// Matched through a child named in a parent's report.
    ChildNamed,
}

impl Reason {
    /// The translation key of the reason, and the similarity in percent
    /// when it has one.
    pub fn key(&self) -> (&'static str, Option<u32>) {
        match self {
            Reason::SameFoldedName => ("reason.same_name", None),
            Reason::SwappedNames => ("reason.swapped", None),
            Reason::BirthDateEqual => ("reason.birth_equal", None),
            Reason::BirthDateDiffers => ("reason.birth_differs", None),
            Reason::ClassEqual => ("reason.class_equal", None),
            Reason::NameSimilarity(s) => ("reason.similarity", Some((s * 100.0).round() as u32)),
            Reason::MappedElsewhere => ("reason.mapped_elsewhere", None),
            Reason::MappedHere => ("reason.mapped_here", None),
            Reason::Inactive => ("reason.inactive", None),
            Reason::ChildNamed => ("reason.child_named", None),
        }
    }
}

/// A ranked candidate.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub account: CandidateAccount,
    pub score: i32,
    pub reasons: Vec<Reason>,
}

/// A claim with its names folded once, not once per account.
struct FoldedClaim<'c> {
    claim: &'c Claimed,
    last: String,
    first: String,
}

fn fold_opt(s: Option<&str>) -> String {
    s.map(fold_name).unwrap_or_default()
}

fn score_one(c: &FoldedClaim, a: &CandidateAccount, al: &str, af: &str) -> (i32, Vec<Reason>) {
    let claimed = c.claim;
    let mut score = 0i32;
    let mut reasons = Vec::new();
    let (cl, cf) = (c.last.as_str(), c.first.as_str());
    if !cl.is_empty() && !cf.is_empty() {
        if cl == al && cf == af {
            score += 50;
            reasons.push(Reason::SameFoldedName);
        } else if cl == af && cf == al {
            score += 40;
            reasons.push(Reason::SwappedNames);
        } else {
            let sim = strsim::jaro_winkler(&format!("{cl} {cf}"), &format!("{al} {af}")).max(
                strsim::jaro_winkler(&format!("{cf} {cl}"), &format!("{al} {af}")),
            );
            if sim >= 0.75 {
                score += (sim * 40.0).round() as i32;
                reasons.push(Reason::NameSimilarity(sim));
            }
        }
    } else if !cl.is_empty() && cl == al {
        score += 20;
        reasons.push(Reason::NameSimilarity(1.0));
    }
    match (claimed.birth_date, a.birth_date) {
        (Some(c), Some(d)) if c == d => {
            score += 30;
            reasons.push(Reason::BirthDateEqual);
        }
        (Some(_), Some(_)) => {
            score -= 10;
            reasons.push(Reason::BirthDateDiffers);
        }
        _ => {}
    }
    if let (Some(c), Some(k)) = (claimed.class_name.as_deref(), a.class_name.as_deref()) {
        if !c.trim().is_empty() && fold_name(c) == fold_name(k) {
            score += 10;
            reasons.push(Reason::ClassEqual);
        }
    }
    if a.mapped_elsewhere {
        score -= 25;
        reasons.push(Reason::MappedElsewhere);
    } else if a.mapped_here {
        reasons.push(Reason::MappedHere);
    }
    if !a.active {
        score -= 40;
        reasons.push(Reason::Inactive);
    }
    (score, reasons)
}

/// Ranks accounts against one or more claimed identities (asserted,
/// declared, and each child a parent's report names): each account keeps
/// its best score (the first claim on a tie), and one matched through a
/// child says so first. Accounts with nothing in common (no name reason)
/// are left out; at most `limit` are returned, best first, ties by account
/// ID.
pub fn rank(claims: &[Claimed], accounts: Vec<CandidateAccount>, limit: usize) -> Vec<Ranked> {
    let claims: Vec<FoldedClaim> = claims
        .iter()
        .map(|claim| FoldedClaim {
            claim,
            last: fold_opt(claim.last_name.as_deref()),
            first: fold_opt(claim.first_name.as_deref()),
        })
        .collect();
    let mut out: Vec<Ranked> = accounts
        .into_iter()
        .filter_map(|a| {
            let (al, af) = (fold_name(&a.last_name), fold_name(&a.first_name));
            let (score, mut reasons, child) = claims
                .iter()
                .map(|c| {
                    let (s, r) = score_one(c, &a, &al, &af);
                    (s, r, c.claim.child)
                })
                .reduce(|best, next| if next.0 > best.0 { next } else { best })?;
            if child {
                reasons.insert(0, Reason::ChildNamed);
            }
            let named = reasons.iter().any(|r| {
                matches!(
                    r,
                    Reason::SameFoldedName | Reason::SwappedNames | Reason::NameSimilarity(_)
                )
            });
            named.then_some(Ranked {
                account: a,
                score,
                reasons,
            })
        })
        .collect();
    out.sort_by(|x, y| {
        y.score
            .cmp(&x.score)
            .then_with(|| x.account.account_id.cmp(&y.account.account_id))
    });
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(id: &str, last: &str, first: &str, birth: &str, class: &str) -> CandidateAccount {
        CandidateAccount {
            account_id: id.into(),
            last_name: last.into(),
            first_name: first.into(),
            birth_date: birth.parse().ok(),
            class_name: Some(class.into()),
            active: true,
            mapped_elsewhere: false,
            mapped_here: false,
        }
    }

    fn claim(last: &str, first: &str, birth: &str, class: &str) -> Claimed {
        Claimed {
            last_name: Some(last.into()),
            first_name: Some(first.into()),
            birth_date: birth.parse().ok(),
            class_name: (!class.is_empty()).then(|| class.into()),
            child: false,
        }
    }

    fn pool() -> Vec<CandidateAccount> {
        vec![
            acc("a1", "Dupont-Martin", "Élodie", "2011-04-12", "4B"),
            acc("a2", "Martin", "Camille", "2011-01-20", "4A"),
            acc("a3", "Martin", "Camille", "2011-01-20", "4C"),
            acc("a4", "Durand", "Paul", "2010-02-01", "3A"),
            acc("a5", "Dupont", "Lucas", "2011-04-12", "4B"),
        ]
    }

    fn ids(r: &[Ranked]) -> Vec<&str> {
        r.iter().map(|x| x.account.account_id.as_str()).collect()
    }

    #[test]
    fn accents_and_case_rank_the_right_account_first() {
        let r = rank(
            &[claim("DUPONT MARTIN", "ELODIE", "2011-04-12", "")],
            pool(),
            5,
        );
        assert_eq!(ids(&r)[0], "a1");
        assert!(r[0].reasons.contains(&Reason::SameFoldedName));
        assert!(r[0].reasons.contains(&Reason::BirthDateEqual));
    }

    #[test]
    fn homonyms_are_told_apart_by_class() {
        let r = rank(&[claim("Martin", "Camille", "2011-01-20", "4C")], pool(), 5);
        assert_eq!(&ids(&r)[..2], ["a3", "a2"]);
        assert!(r[0].reasons.contains(&Reason::ClassEqual));
        assert!(!r[1].reasons.contains(&Reason::ClassEqual));
    }

    #[test]
    fn swapped_first_and_last_names_are_recognised() {
        let r = rank(&[claim("Paul", "Durand", "2010-02-01", "")], pool(), 5);
        assert_eq!(ids(&r)[0], "a4");
        assert!(r[0].reasons.contains(&Reason::SwappedNames));
    }

    #[test]
    fn a_typo_in_the_last_name_still_ranks_first_with_its_similarity() {
        let r = rank(&[claim("Durant", "Paul", "2010-02-01", "")], pool(), 5);
        assert_eq!(ids(&r)[0], "a4");
        assert!(matches!(r[0].reasons[0], Reason::NameSimilarity(s) if s > 0.9));
    }

    #[test]
    fn a_different_birth_date_lowers_the_rank_and_says_so() {
        let r = rank(&[claim("Durand", "Paul", "2010-02-02", "")], pool(), 5);
        assert_eq!(ids(&r)[0], "a4");
        assert!(r[0].reasons.contains(&Reason::BirthDateDiffers));
        let exact = rank(&[claim("Durand", "Paul", "2010-02-01", "")], pool(), 5);
        assert!(exact[0].score > r[0].score);
    }

    #[test]
    fn an_account_already_mapped_elsewhere_ranks_below_a_free_one() {
        let mut p = pool();
        p[1].mapped_elsewhere = true;
        let r = rank(&[claim("Martin", "Camille", "2011-01-20", "")], p, 5);
        assert_eq!(&ids(&r)[..2], ["a3", "a2"]);
        assert!(r[1].reasons.contains(&Reason::MappedElsewhere));
    }

    #[test]
    fn the_declared_identity_can_outrank_the_asserted_one() {
        // The IdP sent a nickname; the user declared the real name.
        let asserted = claim("Dupont", "Lulu", "", "");
        let declared = claim("Dupont", "Lucas", "2011-04-12", "4B");
        let r = rank(&[asserted, declared], pool(), 5);
        assert_eq!(ids(&r)[0], "a5");
    }

    #[test]
    fn a_child_named_in_a_parents_report_ranks_first_and_says_so() {
        // The parent has no account; the report names the child exactly.
        let asserted = claim("Haddad", "Karim", "1984-03-03", "");
        let child = Claimed {
            child: true,
            ..claim("DUPONT MARTIN", "Elodie", "2011-04-12", "4B")
        };
        let r = rank(&[asserted, child], pool(), 5);
        assert_eq!(ids(&r)[0], "a1");
        assert_eq!(r[0].reasons[0], Reason::ChildNamed);
        assert!(r[0].reasons.contains(&Reason::SameFoldedName));
        assert!(r.iter().skip(1).all(|x| x.score < r[0].score));
    }

    #[test]
    fn a_match_through_the_parent_is_not_labelled_as_a_child() {
        let parent = claim("Durand", "Paul", "2010-02-01", "");
        let child = Claimed {
            child: true,
            ..claim("Zyx", "Qwv", "2015-01-01", "")
        };
        let r = rank(&[parent, child], pool(), 5);
        assert_eq!(ids(&r)[0], "a4");
        assert!(!r[0].reasons.contains(&Reason::ChildNamed));
    }

    #[test]
    fn the_identitys_own_mapping_is_not_a_minus() {
        let mut p = pool();
        p[3].mapped_here = true;
        let here = rank(&[claim("Durand", "Paul", "2010-02-01", "")], p, 5);
        let free = rank(&[claim("Durand", "Paul", "2010-02-01", "")], pool(), 5);
        assert_eq!(here[0].score, free[0].score);
        assert!(here[0].reasons.contains(&Reason::MappedHere));
        assert!(!here[0].reasons.contains(&Reason::MappedElsewhere));
    }

    #[test]
    fn unrelated_accounts_are_left_out() {
        let r = rank(&[claim("Zyx", "Qwv", "1999-01-01", "")], pool(), 5);
        assert!(r.is_empty(), "{:?}", ids(&r));
    }
}
