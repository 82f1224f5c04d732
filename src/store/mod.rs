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
pub mod mail;
pub mod mappings;
pub mod replay;
pub mod schools;
pub mod sessions;
pub mod tokens;

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

/// Opens (creating when missing) the SQLite file in WAL mode, with foreign
/// keys on, and applies the embedded migrations.
pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    let opts = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the migrations embedded from `migrations/`.
pub async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

/// Starts a write transaction. `BEGIN IMMEDIATE` takes the write lock at
/// once, so two writers queue on the busy timeout instead of failing when a
/// read transaction tries to upgrade.
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
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => {
            // SQLite's primary result code is the extended code's low byte:
            // BUSY 5, LOCKED 6, READONLY 8, IOERR 10, FULL 13, CANTOPEN 14.
            let code = d.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
        }
        _ => false,
    }
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
