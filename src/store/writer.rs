//! The server's database: a pool of readers and one writer. Writes are
//! serialised by design: every write transaction takes the writer's one
//! connection, and waiting for it is an async queue with a deadline, not a
//! thread asleep in SQLite's busy handler. In WAL mode readers never wait
//! for the writer, so the desk's pages keep answering while a write (or
//! another process) holds the lock.

use super::login::{ReturningLogin, Written};
use super::{migrate, options, pool_options};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteTransactionManager};
use sqlx::{ConnectOptions, Connection, TransactionManager};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long SQLite's own busy handler may sleep on the writer connection:
/// only for the instant another process commits; longer waits are ours,
/// asynchronous (`Writer::begin_within`).
const WRITER_BUSY: Duration = Duration::from_millis(20);
/// The writer's page cache: 64 MiB (negative: KiB), not SQLite's 2 MiB.
/// Logins insert at random places of three indexes (session token hashes,
/// assertion IDs, request IDs); with a cache smaller than those, most
/// inserts read their page back from the file and leave one more page for
/// the checkpoint to copy, and logins slow down as the tables grow (3,600
/// logins/s against 4,200 at 40,000 sessions, BENCHMARKS.md). A
/// connection's cache outlives its own commits only: another connection's
/// commit (a reader's autocommit write, an import's chunk, a command of the
/// CLI) empties it, as logins empty a reader's every few milliseconds; the
/// writer makes nearly all commits, so only the writer's is raised.
const WRITER_CACHE: &str = "-65536";
/// How often the checkpointer copies the WAL back into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
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
    /// Returning users' logins, written in batches (`run_logins`).
    logins: tokio::sync::mpsc::Sender<LoginJob>,
}

/// A returning user's login waiting for the writer, and who waits for it.
#[derive(Debug)]
struct LoginJob {
    login: ReturningLogin,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Result<Option<Written>, sqlx::Error>>,
}

/// Logins written in one transaction at most.
const LOGIN_BATCH: usize = super::login::MAX_BATCH;
/// Logins waiting at most; past it, a login waits to be queued.
const LOGIN_QUEUE: usize = 4096;

/// A pool whose connection is kept for the life of the server, not closed
/// after sqlx's default 30 minutes (or 10 idle): the writer's page cache,
/// its prepared login lists and the checkpointer's connection stay warm.
fn kept(pool: sqlx::sqlite::SqlitePoolOptions) -> sqlx::sqlite::SqlitePoolOptions {
    pool.max_lifetime(None).idle_timeout(None)
}

impl Db {
    /// Opens the file (creating it and its directory when missing), applies
    /// the migrations, and checks it can be written: a file that cannot is
    /// refused now, in one line, rather than failing every write later.
    pub async fn open(path: &Path, wait: Duration) -> Result<Db, sqlx::Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let writer = kept(pool_options(1))
            .acquire_timeout(Duration::from_secs(3600))
            .connect_with(options(path, WRITER_BUSY)?.pragma("cache_size", WRITER_CACHE))
            .await?;
        migrate(&writer).await?;
        let read = pool_options(READERS)
            .connect_with(options(path, wait)?)
            .await?;
        let (logins, queue) = tokio::sync::mpsc::channel(LOGIN_QUEUE);
        let writer = Writer {
            pool: writer,
            wait,
            logins,
        };
        writer.check_writable().await?;
        // The task holds the pool, not the queue's sender: when the last
        // `Writer` goes, the queue closes and the task ends.
        tokio::spawn(run_logins(writer.pool.clone(), queue));
        let checkpointer = kept(pool_options(1))
            .connect_with(options(path, wait)?.disable_statement_logging())
            .await?;
        tokio::spawn(run_checkpoints(checkpointer, writer.logins.downgrade()));
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
        begin_on(&self.pool, wait).await
    }

    /// Writes a returning user's login (`store::login`), with the others
    /// that queue meanwhile: one transaction and one commit for all of
    /// them, one trip to the connection each. Waits at most `db_wait_ms`,
    /// then fails as `begin` does. `None`: a re-check failed, nothing of
    /// this login was written.
    pub async fn write_returning(
        &self,
        login: ReturningLogin,
    ) -> Result<Option<Written>, sqlx::Error> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = LoginJob {
            login,
            deadline: Instant::now() + self.wait,
            reply,
        };
        // A full queue waits as long as the writer would; a queue that
        // is gone (its task ended) sends the login the full way.
        match tokio::time::timeout(self.wait, self.logins.send(job)).await {
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
            Ok(Err(_)) => return Ok(None),
            Ok(Ok(())) => {}
        }
        answer.await.unwrap_or(Ok(None))
    }

    /// The writer's pool itself, for work that must not run beside another
    /// write (a checkpoint).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Cuts the WAL back to nothing when no reader holds it (the idle
    /// housekeeping calls this); a busy database is left for next time.
    /// The checkpointer's passes hold the checkpoint for an instant: when
    /// one was under way, this tries again (twice), letting the writer go
    /// meanwhile.
    pub async fn checkpoint(&self) -> Result<(), sqlx::Error> {
        for _ in 0..3 {
            let mut conn = tokio::time::timeout(self.wait, self.pool.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            // (busy, frames in the WAL, frames copied back)
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *conn)
                .await?;
            if busy == 0 {
                break;
            }
            drop(conn);
            tokio::time::sleep(CHECKPOINT_EVERY / 2).await;
        }
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

/// A write transaction on the writer's pool, waiting at most `wait` for
/// it (see `Writer::begin_within`).
async fn begin_on(
    pool: &SqlitePool,
    wait: Duration,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let begun = tokio::time::timeout(left, pool.begin_with("BEGIN IMMEDIATE")).await;
        match begun {
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
            Ok(Ok(tx)) => return Ok(tx),
            // Another process holds the lock: try again shortly,
            // without holding a thread.
            Ok(Err(e)) if worth_retrying(&e, deadline) => {
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Whether a write that failed on another process's lock may try again
/// after `RETRY_EVERY` and still be done before `deadline`.
fn worth_retrying(e: &sqlx::Error, deadline: Instant) -> bool {
    super::is_busy(e) && Instant::now() + RETRY_EVERY < deadline
}

/// Writes the queued returning logins, all those waiting at once (up to
/// `LOGIN_BATCH`), in one write transaction taken in turn with every other
/// writer, begun, written and committed in one trip to the connection
/// (`store::login::write_returning`). A login whose caller has stopped
/// waiting is not written; a batch that cannot be written fails each of
/// its logins as the transaction did (503 when the database is
/// unavailable).
async fn run_logins(pool: SqlitePool, mut queue: tokio::sync::mpsc::Receiver<LoginJob>) {
    let mut taken = Vec::with_capacity(LOGIN_BATCH);
    while queue.recv_many(&mut taken, LOGIN_BATCH).await > 0 {
        let (jobs, late): (Vec<LoginJob>, Vec<LoginJob>) = taken.drain(..).partition(waiting);
        answer_late(late);
        // Each login waits for the writer as long as it may: the batch as
        // long as its most patient one; the others are answered late.
        let Some(last) = jobs.iter().map(|j| j.deadline).max() else {
            continue;
        };
        let mut jobs = jobs;
        let written = loop {
            let left = last.saturating_duration_since(Instant::now());
            let mut conn = match tokio::time::timeout(left, pool.acquire()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err(sqlx::Error::PoolTimedOut),
            };
            // Those that stopped waiting meanwhile are not written.
            let (still, late): (Vec<LoginJob>, Vec<LoginJob>) = jobs.into_iter().partition(waiting);
            answer_late(late);
            jobs = still;
            if jobs.is_empty() {
                break Ok(Vec::new());
            }
            let logins: Vec<&ReturningLogin> = jobs.iter().map(|j| &j.login).collect();
            match super::login::write_returning(&mut conn, &logins).await {
                // Another process holds the lock: try again shortly,
                // without holding a thread, nor the writer from the others.
                Err(e) if worth_retrying(&e, last) => {
                    drop(conn);
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                done => break done,
            }
        };
        match written {
            Ok(out) => {
                if !out.is_empty() {
                    super::note_written();
                }
                for (j, o) in jobs.into_iter().zip(out) {
                    let _ = j.reply.send(Ok(o));
                }
            }
            Err(e) => fail(jobs, &e),
        }
    }
}

/// Whether a queued login is still awaited: its wait is not over and its
/// caller has not gone.
fn waiting(j: &LoginJob) -> bool {
    j.deadline > Instant::now() && !j.reply.is_closed()
}

/// Copies the WAL back into the database file every `CHECKPOINT_EVERY`,
/// on a connection of its own, without waiting for readers or the writer
/// (a passive checkpoint), so that the commit that crosses SQLite's
/// threshold (`WAL_AUTOCHECKPOINT` pages), which checkpoints inline while
/// every login waits behind it (7 to 12 ms for 1,000 pages here, every
/// 120 ms at 1,000 logins/s), finds all but the last few pages copied: its
/// checkpoint is short, and as it leaves nothing uncopied, the WAL
/// restarts from its start at the next write (a checkpoint beside a busy
/// writer alone never leaves it so: the WAL then grows to any bound it is
/// given; BENCHMARKS.md). Ends when the last `Writer` is gone.
async fn run_checkpoints(pool: SqlitePool, alive: tokio::sync::mpsc::WeakSender<LoginJob>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            break;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            // The writer's own checkpoint still bounds the WAL.
            tracing::debug!(error = %e, "checkpoint not done");
        }
    }
    pool.close().await;
}

/// Answers the logins whose wait is over, or whose caller has gone.
fn answer_late(late: Vec<LoginJob>) {
    for j in late {
        let _ = j.reply.send(Err(sqlx::Error::PoolTimedOut));
    }
}

/// Answers the logins of a batch that could not be written: unavailable
/// (noted as the full way notes it, the login answers 503), or an error.
fn fail(jobs: Vec<LoginJob>, e: &sqlx::Error) {
    let unavailable = super::is_unavailable(e);
    if unavailable {
        super::note_unavailable(e);
    } else {
        tracing::error!(error = %e, "a batch of returning logins failed");
    }
    for j in jobs {
        let _ = j.reply.send(Err(if unavailable {
            sqlx::Error::PoolTimedOut
        } else {
            sqlx::Error::Protocol(format!("returning logins: {e}"))
        }));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;

    /// Rows in the database file itself, the WAL left unread.
    async fn in_file(path: &Path) -> Option<i64> {
        let opts = SqliteConnectOptions::new().filename(path).immutable(true);
        let mut conn = SqliteConnection::connect_with(&opts).await.ok()?;
        sqlx::query_scalar("SELECT COUNT(*) FROM checkpointed")
            .fetch_one(&mut conn)
            .await
            .ok()
    }

    #[tokio::test]
    async fn the_checkpointer_copies_the_writes_back_without_the_writer() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("j.db");
        let db = Db::open(&path, Duration::from_secs(2)).await.expect("open");
        let mut tx = db.writer.begin().await.expect("begin");
        sqlx::query("CREATE TABLE checkpointed (x INTEGER)")
            .execute(&mut *tx)
            .await
            .expect("create");
        sqlx::query("INSERT INTO checkpointed VALUES (1), (2), (3)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        // Far below the writer's own threshold: only the checkpointer
        // puts them in the file.
        let mut found = None;
        for _ in 0..100 {
            found = in_file(&path).await;
            if found == Some(3) {
                break;
            }
            tokio::time::sleep(CHECKPOINT_EVERY / 2).await;
        }
        assert_eq!(found, Some(3));
    }
}
