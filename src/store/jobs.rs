//! Import jobs of the admin pages (`import_jobs`): what was uploaded, where
//! the job is, and what its preview or import found (counts and the first
//! errors only). Durable, so that after a restart the job page still says
//! whether an import landed.

use super::now_text;
use sqlx::{Row, SqliteConnection};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Uploaded; the preview waits or runs.
    Queued,
    /// The preview is done; waiting for a confirmation.
    Previewed,
    /// Confirmed; the import runs.
    Applying,
    Done,
    Failed,
    /// Not confirmed in time; the upload is gone.
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Previewed => "previewed",
            Status::Applying => "applying",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "queued" => Status::Queued,
            "previewed" => Status::Previewed,
            "applying" => Status::Applying,
            "done" => Status::Done,
            "expired" => Status::Expired,
            _ => Status::Failed,
        }
    }
}

/// Why a job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server stopped while the job ran; nothing was changed (an import
    /// is one transaction).
    Interrupted,
    /// A database error; nothing was changed.
    Database,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Interrupted => "interrupted",
            Failure::Database => "database",
        }
    }
}

/// One listed error of a job, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobError {
    pub line: u64,
    pub column: Option<String>,
    /// Why, as the import engine describes it (its typed reason as JSON:
    /// the store keeps it without reading it).
    pub reason: serde_json::Value,
}

/// What a preview or an import found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub resolved: u64,
    pub ignored_columns: Vec<String>,
    /// The first errors (already capped by the caller).
    pub errors: Vec<JobError>,
    pub more_errors: u64,
}

/// A new job.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub id: &'a str,
    pub admin_id: i64,
    pub actor: &'a str,
    pub kind: &'a str,
    pub file_name: &'a str,
    pub size_bytes: u64,
    pub replace_school: Option<&'a str>,
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub admin_id: i64,
    pub actor: String,
    pub kind: String,
    pub file_name: String,
    pub size_bytes: u64,
    pub replace_school: Option<String>,
    pub status: Status,
    pub findings: Findings,
    pub failure: Option<String>,
    pub created_at: String,
}

/// The statuses that hold an upload and count against the limits.
const LIVE: &str = "('queued', 'previewed', 'applying')";

/// Adds a queued job unless the admin already has `per_admin` live jobs or
/// the instance `global` ones; `Ok(false)` when refused. Run it in a write
/// transaction so that the count and the insert agree.
pub async fn create(
    conn: &mut SqliteConnection,
    job: &NewJob<'_>,
    per_admin: u64,
    global: u64,
) -> sqlx::Result<bool> {
    let (mine, all): (i64, i64) = sqlx::query_as(&format!(
        "SELECT COALESCE(SUM(admin_id = ?), 0), COUNT(*) FROM import_jobs WHERE status IN {LIVE}"
    ))
    .bind(job.admin_id)
    .fetch_one(&mut *conn)
    .await?;
    if mine as u64 >= per_admin || all as u64 >= global {
        return Ok(false);
    }
    let now = now_text();
    sqlx::query(
        "INSERT INTO import_jobs (id, admin_id, actor, kind, file_name, size_bytes, replace_school, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
    )
    .bind(job.id)
    .bind(job.admin_id)
    .bind(job.actor)
    .bind(job.kind)
    .bind(job.file_name)
    .bind(job.size_bytes as i64)
    .bind(job.replace_school)
    .bind(&now)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// A job of this admin (another admin's answers as absent).
pub async fn get(
    conn: &mut SqliteConnection,
    id: &str,
    admin_id: i64,
) -> sqlx::Result<Option<Job>> {
    let row = sqlx::query("SELECT * FROM import_jobs WHERE id = ? AND admin_id = ?")
        .bind(id)
        .bind(admin_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| {
        let errors: String = r.get("errors_json");
        let ignored: String = r.get("ignored_columns");
        Job {
            id: r.get("id"),
            admin_id: r.get("admin_id"),
            actor: r.get("actor"),
            kind: r.get("kind"),
            file_name: r.get("file_name"),
            size_bytes: r.get::<i64, _>("size_bytes") as u64,
            replace_school: r.get("replace_school"),
            status: Status::parse(r.get("status")),
            findings: Findings {
                rows: r.get::<i64, _>("rows_read") as u64,
                created: r.get::<i64, _>("created_count") as u64,
                updated: r.get::<i64, _>("updated_count") as u64,
                unchanged: r.get::<i64, _>("unchanged_count") as u64,
                deactivated: r.get::<i64, _>("deactivated_count") as u64,
                resolved: r.get::<i64, _>("resolved_count") as u64,
                ignored_columns: ignored
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                errors: serde_json::from_str(&errors).unwrap_or_default(),
                more_errors: r.get::<i64, _>("more_errors") as u64,
            },
            failure: r.get("failure"),
            created_at: r.get("created_at"),
        }
    }))
}

/// Moves a job from `from` to `to`; false when it was not at `from` (so a
/// job is confirmed once, and only after a preview).
pub async fn advance(
    conn: &mut SqliteConnection,
    id: &str,
    from: Status,
    to: Status,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE import_jobs SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
    )
    .bind(to.as_str())
    .bind(now_text())
    .bind(id)
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records what a run found and the job's new status.
pub async fn record(
    conn: &mut SqliteConnection,
    id: &str,
    status: Status,
    f: &Findings,
) -> sqlx::Result<()> {
    let errors = serde_json::to_string(&f.errors).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "UPDATE import_jobs SET status = ?, rows_read = ?, created_count = ?, updated_count = ?, unchanged_count = ?,
           deactivated_count = ?, resolved_count = ?, ignored_columns = ?, errors_json = ?, more_errors = ?, updated_at = ?
         WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(f.rows as i64)
    .bind(f.created as i64)
    .bind(f.updated as i64)
    .bind(f.unchanged as i64)
    .bind(f.deactivated as i64)
    .bind(f.resolved as i64)
    .bind(f.ignored_columns.join(","))
    .bind(errors)
    .bind(f.more_errors as i64)
    .bind(now_text())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks a job failed.
pub async fn fail(conn: &mut SqliteConnection, id: &str, why: Failure) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE import_jobs SET status = 'failed', failure = ?, updated_at = ? WHERE id = ?",
    )
    .bind(why.as_str())
    .bind(now_text())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Expires the previews created before `before` that nobody confirmed;
/// returns their ids (so that their uploads are deleted).
pub async fn expire(conn: &mut SqliteConnection, before: &str) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(
        "UPDATE import_jobs SET status = 'expired', updated_at = ? WHERE status IN ('queued', 'previewed') AND created_at < ? RETURNING id",
    )
    .bind(now_text())
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(|r| r.get("id")).collect())
}

/// At start: every job that was running when the process stopped is
/// failed as interrupted (a preview writes nothing; an import is one
/// transaction, which SQLite rolled back). Returns their ids.
pub async fn interrupt_running(conn: &mut SqliteConnection) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(
        "UPDATE import_jobs SET status = 'failed', failure = 'interrupted', updated_at = ? WHERE status IN ('queued', 'applying') RETURNING id",
    )
    .bind(now_text())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(|r| r.get("id")).collect())
}

/// The ids of the jobs that still need their upload (at most the global
/// limit of them).
pub async fn live_ids(conn: &mut SqliteConnection) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(&format!(
        "SELECT id FROM import_jobs WHERE status IN {LIVE}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(|r| r.get("id")).collect())
}
