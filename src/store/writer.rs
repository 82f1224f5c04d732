//! The server's database: a pool of readers and one writer. Writes are
//! serialised by design: every write transaction takes the writer's one
//! connection, and waiting for it is an async queue with a deadline, not a
//! thread asleep in SQLite's busy handler. In WAL mode readers never wait
//! for the writer, so the desk's pages keep answering while a write (or
//! another process) holds the lock.

use super::{migrate, options, pool_options};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteTransactionManager};
use sqlx::{Connection, TransactionManager};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long SQLite's own busy handler may sleep on the writer connection:
/// only for the instant another process commits; longer waits are ours,
/// asynchronous (`Writer::begin_within`).
const WRITER_BUSY: Duration = Duration::from_millis(20);
/// How often a writer waiting on another process's lock tries again.
const RETRY_EVERY: Duration = Duration::from_millis(25);
/// Readers (and the odd autocommit write of a reader) in parallel.
const READERS: u32 = 8;

/// The readers' pool and the writer.
pub struct Db {
    pub read: SqlitePool,
    pub writer: Writer,
}

/// The one connection that writes, and how long interactive requests wait
/// for it.
#[derive(Clone, Debug)]
pub struct Writer {
    pool: SqlitePool,
    wait: Duration,
}

impl Db {
    /// Opens the file (creating it and its directory when missing), applies
    /// the migrations, and checks it can be written: a file that cannot is
    /// refused now, in one line, rather than failing every write later.
    pub async fn open(path: &Path, wait: Duration) -> Result<Db, sqlx::Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let writer = pool_options(1)
            .acquire_timeout(Duration::from_secs(3600))
            .connect_with(options(path, WRITER_BUSY)?)
            .await?;
        migrate(&writer).await?;
        let read = pool_options(READERS)
            .connect_with(options(path, wait)?)
            .await?;
        let writer = Writer { pool: writer, wait };
        writer.check_writable().await?;
        // A large import's build that a crash interrupted (nothing of it
        // was visible): its table goes.
        let mut conn = writer.pool.acquire().await?;
        super::imports::swap::discard_all(&mut conn).await?;
        drop(conn);
        Ok(Db { read, writer })
    }
}

impl Writer {
    /// A write transaction for an interactive request: waits at most the
    /// configured `db_wait_ms`, then fails with an error the pages answer
    /// 503 for.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_within(self.wait).await
    }

    /// A write transaction, waiting at most `wait` for the writer (long
    /// jobs, imports and purges, may wait longer than a login).
    pub async fn begin_within(
        &self,
        wait: Duration,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let begun = tokio::time::timeout(left, self.pool.begin_with("BEGIN IMMEDIATE")).await;
            match begun {
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
                Ok(Ok(tx)) => return Ok(tx),
                // Another process holds the lock: try again shortly,
                // without holding a thread.
                Ok(Err(e)) if is_busy(&e) && Instant::now() + RETRY_EVERY < deadline => {
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// The writer's pool itself, for work that must not run beside another
    /// write (a checkpoint).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Cuts the WAL back to nothing when no reader holds it (the idle
    /// housekeeping calls this); a busy database is left for next time.
    pub async fn checkpoint(&self) -> Result<(), sqlx::Error> {
        let mut conn = tokio::time::timeout(self.wait, self.pool.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Writes (and takes back) a table, to learn now whether the file, its
    /// directory (WAL and shared memory live beside it) and the disk take
    /// writes.
    async fn check_writable(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("CREATE TABLE jointure_write_check (x INTEGER)")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await
    }
}

/// Whether SQLite said the lock is taken (BUSY or LOCKED).
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(super::cause(e), Some(super::health::Cause::Busy))
}

/// Decides, as a connection comes back to its pool, whether it may be
/// reused: only outside a transaction. A transaction dropped without commit
/// has queued its rollback; the ping waits for it. One whose rollback
/// failed (SQLite had already ended the transaction on a full disk, say)
/// is closed, and the pool opens a fresh one: one failed transaction never
/// poisons later requests.
pub(super) async fn clean_on_release(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if SqliteTransactionManager::get_transaction_depth(conn) == 0 {
        return Ok(true);
    }
    conn.ping().await?;
    let clean = SqliteTransactionManager::get_transaction_depth(conn) == 0;
    if !clean {
        tracing::warn!(
            "a database connection was left inside a transaction: closed, a new one is opened"
        );
    }
    Ok(clean)
}
