//! What is wrong with the database, told once: the first request that
//! meets a full disk logs it, the next thousand do not, and the first write
//! that lands again says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Why the database cannot take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Another writer holds the lock past the wait (or no write turn in
    /// time).
    Busy,
    ReadOnly,
    DiskFull,
    Io,
    CannotOpen,
}

impl Cause {
    fn describe(self) -> &'static str {
        match self {
            Cause::Busy => "busy (the write lock was not free within the wait)",
            Cause::ReadOnly => "read-only (file or directory permissions, or a read-only disk)",
            Cause::DiskFull => "disk full",
            Cause::Io => "I/O error",
            Cause::CannotOpen => "the file cannot be opened",
        }
    }
}

/// The error's cause when it says the database cannot take the request
/// now; None for a mistake in the request or the code.
pub fn cause(e: &sqlx::Error) -> Option<Cause> {
    match e {
        sqlx::Error::PoolTimedOut => Some(Cause::Busy),
        sqlx::Error::PoolClosed | sqlx::Error::Io(_) => Some(Cause::Io),
        sqlx::Error::Database(d) => {
            // SQLite's primary result code is the extended code's low byte.
            let code = d.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            match code & 0xff {
                5 | 6 => Some(Cause::Busy),
                8 => Some(Cause::ReadOnly),
                10 => Some(Cause::Io),
                13 => Some(Cause::DiskFull),
                14 => Some(Cause::CannotOpen),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The cause last logged, None while writes land.
static STATE: Mutex<Option<Cause>> = Mutex::new(None);
/// Whether `STATE` holds a cause: every login's commit reads this, so
/// the lock is taken only while the database is (or was just) unavailable.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Logs that the database is unavailable, once per change of cause.
pub fn note_unavailable(e: &sqlx::Error) {
    let Some(cause) = cause(e) else { return };
    let mut state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    UNAVAILABLE.store(true, Ordering::Release);
    if *state != Some(cause) {
        *state = Some(cause);
        tracing::warn!(error = %e, "database unavailable: {}; requests answer 503 until it recovers", cause.describe());
    }
}

/// Notes that a write landed: logs the recovery when one was pending.
pub fn note_written() {
    if !UNAVAILABLE.swap(false, Ordering::AcqRel) {
        return;
    }
    let mut state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cause) = state.take() {
        tracing::info!("database available again (was: {})", cause.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn causes_are_told_apart_and_mistakes_are_not_causes() {
        let e = crate::store::read_only_error().await;
        assert_eq!(cause(&e), Some(Cause::ReadOnly));
        assert_eq!(cause(&sqlx::Error::PoolTimedOut), Some(Cause::Busy));
        assert_eq!(cause(&sqlx::Error::RowNotFound), None);
    }
}
