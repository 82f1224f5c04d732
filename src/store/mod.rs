//! All SQL lives here, one file per table family. Functions take a
//! connection (`&mut SqliteConnection`, which a transaction derefs to), so
//! that a request or an import runs in one transaction.

pub mod accounts;
pub mod admins;
pub mod audit;
pub mod desk;
pub mod failures;
pub mod imports;
pub mod jobs;
pub mod login;
pub mod mail;
pub mod mappings;
pub mod replay;
pub mod schools;
pub mod sessions;
pub mod tokens;

mod health;
mod writer;

pub use health::{cause, note_unavailable, note_written, Cause};
pub use writer::{Db, Writer};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Whether the database answers (for `/readyz`).
pub async fn ping(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(pool)
        .await
        .map(|_| ())
}

/// The WAL is cut back to this size after a checkpoint (64 MiB), so a
/// burst of writes does not leave a file of gigabytes behind.
const JOURNAL_SIZE_LIMIT: &str = "67108864";
/// Pages in the WAL past which a commit checkpoints (SQLite's default,
/// said here so it is a decision, not an accident).
const WAL_AUTOCHECKPOINT: &str = "1000";

/// The connection options every connection shares: WAL, foreign keys,
/// the WAL bounds, and how long SQLite itself sleeps on a lock.
fn options(path: &Path, busy: Duration) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(busy)
        .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT)
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT))
}

/// Pool options shared by the readers and the writer: no ping on acquire
/// (a round trip per request for nothing: a broken connection fails its
/// first statement anyway), and a connection handed back inside a
/// transaction is never reused as it is (see `clean_on_release`).
fn pool_options(max: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max)
        .test_before_acquire(false)
        .after_release(|conn, _| Box::pin(writer::clean_on_release(conn)))
}

/// Opens (creating when missing) the SQLite file in WAL mode, with foreign
/// keys on, and applies the embedded migrations: one pool, for the CLI's
/// commands (the server uses `open_db`).
pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    let pool = pool_options(8)
        .connect_with(options(path, Duration::from_secs(10))?)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the migrations embedded from `migrations/`.
pub async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

/// Starts a write transaction on a plain pool (the CLI's, tests'). The
/// server's writes go through its one writer instead
/// (`Service::begin_write`). `BEGIN IMMEDIATE` takes the write lock at
/// once, so two writers queue instead of failing when a read transaction
/// tries to upgrade.
pub async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// The current time as stored: RFC 3339 UTC, second precision.
pub fn now_text() -> String {
    time_text(chrono::Utc::now())
}

pub fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The outcome of an INSERT guarded by a UNIQUE constraint: `Ok(false)` when
/// the row was already there (told by the error's kind, not its message).
pub fn inserted(
    r: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
) -> Result<bool, sqlx::Error> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether an error says the database cannot take the request now (busy or
/// locked past the timeout, read-only, disk full, an I/O error, no
/// connection in time) rather than that the request or the code is wrong:
/// the caller answers "try again later", not "service error".
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    health::cause(e).is_some()
}

/// Whether SQLite said the lock is taken (BUSY or LOCKED).
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(cause(e), Some(Cause::Busy))
}

/// A migrated database in memory, on one connection, for tests.
#[cfg(test)]
pub(crate) async fn memory() -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .expect("memory db");
    migrate(&pool).await.expect("migrations");
    pool
}

/// A real SQLite refusal, for tests: a write to a database that only reads.
#[cfg(test)]
pub(crate) async fn read_only_error() -> sqlx::Error {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .expect("memory db");
    sqlx::query("CREATE TABLE t (x)")
        .execute(&mut c)
        .await
        .expect("table");
    sqlx::query("PRAGMA query_only = ON")
        .execute(&mut c)
        .await
        .expect("pragma");
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut c)
        .await
        .expect_err("read only")
}

/// Whether an error is a UNIQUE (or primary key) violation, told by its kind.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// Which schools an admin may see: every one, or a list. Every scoped query
/// adds its condition in SQL, so an out-of-scope row is never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Schools(Vec<String>),
}

impl Scope {
    /// What `role` with `schools` may see: the one rule, for admins and
    /// API clients alike.
    pub fn of(role: crate::resolve::AdminRole, schools: &[String]) -> Scope {
        match role {
            crate::resolve::AdminRole::Superadmin => Scope::All,
            crate::resolve::AdminRole::SchoolAdmin => Scope::Schools(schools.to_vec()),
        }
    }

    /// Pushes ` AND column IN (…)` onto a query being built, each code a
    /// bound parameter (nothing for `All`; always false for an empty list).
    /// Rows whose column is NULL are outside every list.
    pub fn push_condition<'q>(&'q self, q: &mut QueryBuilder<'q, Sqlite>, column: &str) {
        match self {
            Scope::All => {}
            Scope::Schools(codes) if codes.is_empty() => {
                q.push(" AND 0");
            }
            Scope::Schools(codes) => {
                q.push(format_args!(" AND {column} IN ("));
                let mut list = q.separated(", ");
                for c in codes {
                    list.push_bind(c.as_str());
                }
                q.push(")");
            }
        }
    }

    /// Whether a school (or none) is inside the scope.
    pub fn allows(&self, school: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Schools(codes) => school.is_some_and(|s| codes.iter().any(|c| c == s)),
        }
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
