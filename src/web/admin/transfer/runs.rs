//! The running side of import jobs: one run at a time per process, the
//! file read from disk for the run and dropped after it, what a run found
//! recorded in the job, and the clean-up of jobs a stopped process left.

use crate::csv_io::{self, ImportKind, ImportReport, Options, RowError};
use crate::store::jobs::{self, Failure, Findings, JobError, Status};
use crate::web::error::AppError;
use crate::web::AppState;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// An unconfirmed job expires after this long; its upload is deleted.
const JOB_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
/// Live jobs (queued, previewed, applying) at once, per admin and in all.
pub const MAX_JOBS_PER_ADMIN: u64 = 2;
pub const MAX_JOBS: u64 = 6;

/// A running job's progress: records read, of about `total`.
#[derive(Clone)]
pub(super) struct Progress {
    pub(super) done: Arc<AtomicU64>,
    pub(super) total: u64,
}

/// What the jobs of this process share: the progress of the running ones,
/// one run at a time, and the clean-up of a previous process's jobs.
pub struct Jobs {
    progress: Mutex<HashMap<String, Progress>>,
    run: tokio::sync::Semaphore,
    started: tokio::sync::OnceCell<()>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            progress: Mutex::new(HashMap::new()),
            run: tokio::sync::Semaphore::new(1),
            started: tokio::sync::OnceCell::new(),
        }
    }
}

impl Jobs {
    fn progress_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Progress>> {
        match self.progress.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    pub(super) fn progress(&self, id: &str) -> Option<Progress> {
        self.progress_map().get(id).cloned()
    }
}

/// The folder of the uploads, beside the database.
pub(super) fn jobs_dir(st: &AppState) -> PathBuf {
    let mut name = st.svc.config.database_path.clone().into_os_string();
    name.push(".import-jobs");
    PathBuf::from(name)
}

pub(super) fn upload_path(st: &AppState, id: &str) -> PathBuf {
    jobs_dir(st).join(format!("{id}.csv"))
}

/// Once per process, before any job is shown or made: the jobs a previous
/// process left running are failed as interrupted (nothing was changed: a
/// preview writes nothing, an import is one transaction that SQLite rolled
/// back), and uploads no live job needs are deleted. Then, every time, the
/// unconfirmed jobs past their lifetime expire.
pub(super) async fn ready(st: &AppState) -> Result<(), AppError> {
    st.imports
        .started
        .get_or_try_init(|| async {
            let mut tx = crate::store::begin_write(&st.svc.pool).await?;
            let stopped = jobs::interrupt_running(&mut tx).await?;
            let live = jobs::live_ids(&mut tx).await?;
            tx.commit().await?;
            if !stopped.is_empty() {
                tracing::warn!(
                    jobs = stopped.len(),
                    "import jobs interrupted by a stop; nothing was changed"
                );
            }
            if let Ok(dir) = std::fs::read_dir(jobs_dir(st)) {
                for f in dir.flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if !live.iter().any(|id| name == format!("{id}.csv")) {
                        let _ = std::fs::remove_file(f.path());
                    }
                }
            }
            Ok::<(), AppError>(())
        })
        .await?;
    let before = crate::store::time_text(chrono::Utc::now() - JOB_LIFETIME);
    let mut conn = st.svc.pool.acquire().await?;
    for id in jobs::expire(&mut conn, &before).await? {
        let _ = tokio::fs::remove_file(upload_path(st, &id)).await;
    }
    Ok(())
}

/// Runs a job's preview or real import in the background, one run at a
/// time in the process: the file is read from disk for the run and dropped
/// after it.
pub(super) fn spawn_run(
    st: AppState,
    id: String,
    admin_id: i64,
    scope: crate::store::Scope,
    dry_run: bool,
) {
    tokio::spawn(async move {
        let Ok(_permit) = st.imports.run.acquire().await else {
            return;
        };
        let outcome = run(&st, &id, admin_id, scope, dry_run).await;
        st.imports.progress_map().remove(&id);
        if let Err(e) = outcome {
            tracing::error!(error = %e, "import job failed; nothing was changed");
            if let Ok(mut conn) = st.svc.pool.acquire().await {
                let _ = jobs::fail(&mut conn, &id, Failure::Database).await;
            }
            let _ = tokio::fs::remove_file(upload_path(&st, &id)).await;
        }
    });
}

async fn run(
    st: &AppState,
    id: &str,
    admin_id: i64,
    scope: crate::store::Scope,
    dry_run: bool,
) -> Result<(), AppError> {
    let mut conn = st.svc.pool.acquire().await?;
    let Some(job) = jobs::get(&mut conn, id, admin_id).await? else {
        return Ok(());
    };
    drop(conn);
    let expected = if dry_run {
        Status::Queued
    } else {
        Status::Applying
    };
    if job.status != expected {
        return Ok(()); // expired meanwhile
    }
    let kind = ImportKind::parse(&job.kind).ok_or(AppError::NotFound)?;
    let path = upload_path(st, id);
    let total = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            csv_io::prepared::estimate_rows(&mut std::fs::File::open(path)?)
        })
        .await
        .map_err(|e| AppError::Internal(format!("upload: {e}")))?
        .map_err(|e| AppError::Internal(format!("upload: {e}")))?
    };
    let progress = Arc::new(AtomicU64::new(0));
    st.imports.progress_map().insert(
        id.to_string(),
        Progress {
            done: progress.clone(),
            total,
        },
    );
    let opts = Options {
        dry_run,
        replace_school: job.replace_school.clone(),
        scope,
        progress: Some(progress),
        writer: Some(st.svc.writer.clone()),
        ..Options::new(&job.actor)
    };
    let report = csv_io::import::import_from(
        &st.svc.pool,
        &st.svc.known_idps(),
        kind,
        &job.file_name,
        csv_io::import::Source::File(&path),
        &opts,
    )
    .await?;
    let clean = report.errors.is_empty() && report.more_errors == 0;
    let status = match (dry_run, clean) {
        (true, true) => Status::Previewed,
        // Bad rows or an import done: nothing more to confirm.
        _ => Status::Done,
    };
    let mut conn = st.svc.pool.acquire().await?;
    jobs::record(&mut conn, id, status, &findings(&report)).await?;
    if status == Status::Done {
        let _ = tokio::fs::remove_file(upload_path(st, id)).await;
    }
    Ok(())
}

fn findings(r: &ImportReport) -> Findings {
    Findings {
        rows: r.rows,
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        deactivated: r.deactivated,
        resolved: r.failures_resolved,
        ignored_columns: r.ignored_columns.clone(),
        errors: r
            .errors
            .iter()
            .map(|e| JobError {
                line: e.line,
                column: e.column.clone(),
                reason: serde_json::to_value(&e.reason).unwrap_or_default(),
            })
            .collect(),
        more_errors: r.more_errors,
    }
}

pub(super) fn report_of(file: &str, f: &Findings, dry_run: bool) -> ImportReport {
    ImportReport {
        rows: f.rows,
        created: f.created,
        updated: f.updated,
        unchanged: f.unchanged,
        deactivated: f.deactivated,
        failures_resolved: f.resolved,
        ignored_columns: f.ignored_columns.clone(),
        errors: f
            .errors
            .iter()
            .map(|e| RowError {
                file: file.to_string(),
                line: e.line,
                column: e.column.clone(),
                // A reason this version cannot read (written by another):
                // told as such rather than dropped.
                reason: serde_json::from_value(e.reason.clone()).unwrap_or_else(|_| {
                    crate::csv_io::Reason::UnreadableRow {
                        detail: crate::csv_io::Shown::new(&e.reason.to_string()),
                    }
                }),
            })
            .collect(),
        more_errors: f.more_errors,
        dry_run,
    }
}
