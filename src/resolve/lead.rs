//! When the best candidate is clearly ahead: the desk then offers to link
//! it in one click. The rule is on scores alone (see `ranking`): the best
//! must reach the points of the same name and birth date (50 + 30), and be
//! at least a birth date's worth (30) ahead of the next, so twins, namesakes
//! and a mapping to someone else (−25) never qualify.

/// The least score the leader needs: same folded name and birth date.
pub const LEAD_MIN_SCORE: i32 = 80;
/// How far ahead of the second it must be.
pub const LEAD_MARGIN: i32 = 30;

/// Whether the first of `scores` (best first) is clearly ahead.
pub fn clearly_ahead(scores: &[i32]) -> bool {
    match scores {
        [] => false,
        [top] => *top >= LEAD_MIN_SCORE,
        [top, second, ..] => *top >= LEAD_MIN_SCORE && top - second >= LEAD_MARGIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_exact_match_is_ahead() {
        assert!(clearly_ahead(&[80]));
        assert!(clearly_ahead(&[90, 22]));
    }

    #[test]
    fn twins_and_close_seconds_are_not() {
        assert!(!clearly_ahead(&[80, 80]));
        assert!(!clearly_ahead(&[90, 61]));
        assert!(clearly_ahead(&[90, 60]));
    }

    #[test]
    fn a_weak_top_is_not_however_alone() {
        assert!(!clearly_ahead(&[]));
        assert!(!clearly_ahead(&[79]));
        // Swapped names and birth date (40 + 30), or an exact match already
        // linked to someone else (80 − 25).
        assert!(!clearly_ahead(&[70, 0]));
        assert!(!clearly_ahead(&[55]));
    }
}
