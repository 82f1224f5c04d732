//! Admin authentication and the throttles of the forms strangers can post:
//! the rules, apart from the HTTP handlers that apply them.

use crate::store::admins::{self, Admin};
use sqlx::SqlitePool;

/// The rate limits of the user-facing forms.
pub struct Limits {
    /// Failure-form posts per client address.
    pub report_by_ip: RateLimiter,
    /// Failure-form posts per failure.
    pub report_by_failure: RateLimiter,
    /// Admin login attempts per client address.
    pub login_by_ip: RateLimiter,
    /// Admin login attempts per e-mail.
    pub login_by_account: RateLimiter,
    /// Password verifications running at once.
    pub argon2: tokio::sync::Semaphore,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            report_by_ip: RateLimiter::new(30, std::time::Duration::from_secs(600)),
            report_by_failure: RateLimiter::new(10, std::time::Duration::from_secs(600)),
            login_by_ip: RateLimiter::new(20, std::time::Duration::from_secs(900)),
            login_by_account: RateLimiter::new(5, std::time::Duration::from_secs(900)),
            argon2: tokio::sync::Semaphore::new(4),
        }
    }
}

/// A sliding-window counter per key, in memory (one instance; a shared
/// store comes with the multi-instance backend).
pub struct RateLimiter {
    max: usize,
    window: std::time::Duration,
    hits: std::sync::Mutex<std::collections::HashMap<String, Vec<std::time::Instant>>>,
}

impl RateLimiter {
    pub fn new(max: usize, window: std::time::Duration) -> Self {
        RateLimiter {
            max,
            window,
            hits: Default::default(),
        }
    }

    fn with_hits<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Vec<std::time::Instant>, std::time::Instant) -> T,
    ) -> T {
        let now = std::time::Instant::now();
        let mut map = match self.hits.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > 100_000 {
            // Bound memory under a flood of distinct keys.
            map.retain(|_, v| {
                v.last()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let v = map.entry(key.to_string()).or_default();
        v.retain(|t| now.duration_since(*t) < self.window);
        f(v, now)
    }

    /// Takes back the latest hit of `key` (a successful login).
    pub fn forgive(&self, key: &str) {
        self.with_hits(key, |v, _| {
            v.pop();
        })
    }

    /// Counts a hit for `key` unless it is over its limit; false when it is.
    pub fn allow(&self, key: &str) -> bool {
        self.with_hits(key, |v, now| {
            if v.len() >= self.max {
                return false;
            }
            v.push(now);
            true
        })
    }
}

/// Checks the password; Argon2 is slow on purpose, so it runs off the
/// async threads. An unknown e-mail still costs one verification, so
/// timing does not tell which addresses exist.
async fn password_matches(limits: &Limits, hash: Option<String>, password: String) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    // Each verification takes 19 MiB: a few at a time, the rest wait.
    let Ok(_permit) = limits.argon2.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let dummy =
            DUMMY.get_or_init(|| admins::hash_password("no such admin").unwrap_or_default());
        let ok = admins::verify_password(&password, hash.as_deref().unwrap_or(dummy));
        ok && hash.is_some()
    })
    .await
    .unwrap_or(false)
}

/// What an admin login attempt comes to.
pub enum AdminLogin {
    /// Too many attempts from this address or for this e-mail.
    Throttled,
    /// Unknown e-mail or wrong password (told apart by nobody).
    Refused,
    Admitted(Admin),
}

/// Checks an admin login. Every attempt counts before the (slow) check, so
/// parallel guesses cannot slip past the limit; a success forgives its own
/// attempt.
pub async fn admin_login(
    pool: &SqlitePool,
    limits: &Limits,
    email: &str,
    password: String,
    ip: &str,
) -> Result<AdminLogin, sqlx::Error> {
    if !limits.login_by_ip.allow(ip) || !limits.login_by_account.allow(email) {
        return Ok(AdminLogin::Throttled);
    }
    let mut conn = pool.acquire().await?;
    let admin = admins::by_email(&mut conn, email).await?;
    drop(conn);
    let hash = admin.as_ref().map(|a| a.password_hash.clone());
    if !password_matches(limits, hash, password).await {
        return Ok(AdminLogin::Refused);
    }
    limits.login_by_ip.forgive(ip);
    limits.login_by_account.forgive(email);
    Ok(match admin {
        Some(a) => AdminLogin::Admitted(a),
        None => AdminLogin::Refused,
    })
}
