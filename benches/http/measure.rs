//! What the load generator reads besides the answers: the server's and its
//! own CPU time and the server's peak RSS from /proc, and the database's
//! rows after the run.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::path::Path;

/// A process seen through /proc (`self` for this one).
pub struct Proc {
    pid: String,
    clk_tck: f64,
}

impl Proc {
    pub fn new(pid: String, clk_tck: f64) -> Self {
        Proc { pid, clk_tck }
    }

    /// User plus system CPU time so far, in milliseconds.
    fn cpu_ms(&self) -> Result<f64, String> {
        let path = format!("/proc/{}/stat", self.pid);
        let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        // Fields after the command name, which may hold spaces: state is
        // the first, utime the 12th and stime the 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        match (ticks(11), ticks(12)) {
            (Some(u), Some(s)) => Ok((u + s) * 1000.0 / self.clk_tck),
            _ => Err(format!("{path}: no utime/stime")),
        }
    }

    /// The peak resident set (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or(format!("{path}: no VmHWM"))
    }
}

/// CPU milliseconds of the server and of the generator.
#[derive(Clone, Copy)]
pub struct Cpu {
    pub server_ms: f64,
    pub generator_ms: f64,
}

impl Cpu {
    pub fn read(server: &Proc, me: &Proc) -> Result<Self, String> {
        Ok(Cpu {
            server_ms: server.cpu_ms()?,
            generator_ms: me.cpu_ms()?,
        })
    }

    pub fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            server_ms: self.server_ms - before.server_ms,
            generator_ms: self.generator_ms - before.generator_ms,
        }
    }
}

async fn count(conn: &mut sqlx::SqliteConnection, sql: &str) -> Result<i64, String> {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .map_err(|e| format!("{sql}: {e}"))
}

/// Every answer against the rows: one user session and one replay record
/// per login answered with a session, each session for a mapped account,
/// and no failure recorded (every minted response is valid). With requests
/// left unanswered the counts may lie between the two.
pub async fn check_database(
    db: &Path,
    ok: usize,
    refused: usize,
    errors: usize,
) -> Result<(), String> {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let sessions = count(
        &mut conn,
        "SELECT count(*) FROM sessions WHERE kind = 'user'",
    )
    .await?;
    let seen = count(&mut conn, "SELECT count(*) FROM seen_assertions").await?;
    let failures = count(&mut conn, "SELECT coalesce(sum(count), 0) FROM failures").await?;
    let stray = count(
        &mut conn,
        "SELECT count(*) FROM sessions s WHERE s.kind = 'user' AND NOT EXISTS \
         (SELECT 1 FROM mappings m WHERE m.account_id = s.principal)",
    )
    .await?;
    conn.close().await.map_err(|e| e.to_string())?;
    println!(
        "database: {sessions} user sessions, {seen} replay records, {failures} failures, {stray} sessions of unmapped accounts; answers: {ok} sessions, {refused} refused, {errors} unanswered"
    );
    let (lo, hi) = (ok as i64, (ok + errors) as i64);
    let fine = (lo..=hi).contains(&sessions)
        && (lo..=hi).contains(&seen)
        && failures == 0
        && refused == 0
        && stray == 0;
    if fine {
        println!("database check: every outcome accounted for");
        Ok(())
    } else {
        Err(
            "database check failed: rows and answers disagree, or a valid response was refused"
                .into(),
        )
    }
}
