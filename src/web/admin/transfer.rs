//! Import and export pages. An upload becomes a job, kept in the database
//! (`store::jobs`) so that a restart never hides what happened; the file is
//! streamed to the jobs folder beside the database, never held in memory
//! between runs. A preview reads and checks it with reads only (progress
//! shown, the page refreshing itself) and says what will happen; only a
//! confirmation imports it, through the same code path as the CLI. Runs go
//! one at a time, so memory is bounded by one file whatever is uploaded.
//! Unconfirmed jobs expire after an hour; a few jobs at once per admin and
//! in all. Exports stream.

use super::{AdminSession, Chrome};
use crate::csv_io::export::{ExportKind, Exporter};
use crate::csv_io::{self, ImportKind, ImportReport, Options, RowError};
use crate::store::jobs::{self, Failure, Findings, JobError, Status};
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// An unconfirmed job expires after this long; its upload is deleted.
const JOB_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
/// Live jobs (queued, previewed, applying) at once, per admin and in all.
pub const MAX_JOBS_PER_ADMIN: u64 = 2;
pub const MAX_JOBS: u64 = 6;

/// A running job's progress: records read, of about `total`.
#[derive(Clone)]
struct Progress {
    done: Arc<AtomicU64>,
    total: u64,
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

    fn progress(&self, id: &str) -> Option<Progress> {
        self.progress_map().get(id).cloned()
    }
}

/// The folder of the uploads, beside the database.
fn jobs_dir(st: &AppState) -> PathBuf {
    let mut name = st.svc.config.database_path.clone().into_os_string();
    name.push(".import-jobs");
    PathBuf::from(name)
}

fn upload_path(st: &AppState, id: &str) -> PathBuf {
    jobs_dir(st).join(format!("{id}.csv"))
}

/// Once per process, before any job is shown or made: the jobs a previous
/// process left running are failed as interrupted (nothing was changed: a
/// preview writes nothing, an import is one transaction that SQLite rolled
/// back), and uploads no live job needs are deleted. Then, every time, the
/// unconfirmed jobs past their lifetime expire.
async fn ready(st: &AppState) -> Result<(), AppError> {
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

#[derive(Template)]
#[template(path = "admin/import.html")]
struct ImportPage<'a> {
    chrome: Chrome<'a>,
    school_codes: Vec<String>,
    error: Option<&'a str>,
    max_mib: usize,
}

pub async fn form(State(st): State<AppState>, s: AdminSession) -> Result<Response, AppError> {
    import_form(&st, &s, StatusCode::OK, None).await
}

async fn import_form(
    st: &AppState,
    s: &AdminSession,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, AppError> {
    let mut conn = st.svc.pool.acquire().await?;
    let school_codes = crate::store::schools::list(&mut conn, &s.scope(), None)
        .await?
        .into_iter()
        .map(|s| s.code)
        .collect();
    Ok(render(
        status,
        &ImportPage {
            chrome: Chrome::of(s, "import"),
            school_codes,
            error,
            max_mib: st.svc.config.max_upload_bytes / (1024 * 1024),
        },
    ))
}

/// Why an upload could not be read.
enum UploadError {
    TooLarge,
    Bad(String),
    Disk(std::io::Error),
}

impl From<axum::extract::multipart::MultipartError> for UploadError {
    fn from(e: axum::extract::multipart::MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            UploadError::TooLarge
        } else {
            UploadError::Bad(format!("upload: {e}"))
        }
    }
}

/// The text fields of a multipart form, and its `file` (name, size, and
/// where it was written).
type Upload = (HashMap<String, String>, Option<(String, u64)>);

/// Reads the form, writing the file chunk by chunk to `to`.
async fn read_upload(mut form: Multipart, to: &std::path::Path) -> Result<Upload, UploadError> {
    let mut fields = HashMap::new();
    let mut file = None;
    while let Some(mut field) = form.next_field().await? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" && file.is_none() {
            let file_name = field.file_name().unwrap_or("upload.csv").to_string();
            let mut out = tokio::fs::File::create(to)
                .await
                .map_err(UploadError::Disk)?;
            let mut size = 0u64;
            while let Some(chunk) = field.chunk().await? {
                size += chunk.len() as u64;
                out.write_all(&chunk).await.map_err(UploadError::Disk)?;
            }
            out.flush().await.map_err(UploadError::Disk)?;
            file = Some((file_name, size));
        } else {
            fields.insert(name, field.text().await?);
        }
    }
    Ok((fields, file))
}

/// Reads the multipart upload: CSRF token, kind, replace option, file.
pub async fn upload(
    State(st): State<AppState>,
    s: AdminSession,
    form: Multipart,
) -> Result<Response, AppError> {
    ready(&st).await?;
    let id = crate::store::sessions::random_token();
    let dir = jobs_dir(&st);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(format!("jobs folder: {e}")))?;
    let path = upload_path(&st, &id);
    let read = read_upload(form, &path).await;
    let outcome = queue(&st, &s, &id, read).await;
    if !matches!(outcome, Ok(Queued::Yes)) {
        let _ = tokio::fs::remove_file(&path).await;
    }
    match outcome? {
        Queued::Yes => Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/admin/import/{id}"))],
        )
            .into_response()),
        Queued::No(page) => Ok(page),
    }
}

enum Queued {
    Yes,
    No(Response),
}

/// Checks the form and adds the job (within the limits), then starts its
/// preview.
async fn queue(
    st: &AppState,
    s: &AdminSession,
    id: &str,
    read: Result<Upload, UploadError>,
) -> Result<Queued, AppError> {
    let refuse = |status, key| async move {
        import_form(st, s, status, Some(s.t.get(key)))
            .await
            .map(Queued::No)
    };
    let (fields, file) = match read {
        Ok(u) => u,
        Err(UploadError::TooLarge) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "admin.import.too_large").await
        }
        Err(UploadError::Bad(m)) => return Err(AppError::BadRequest(m)),
        Err(UploadError::Disk(e)) => return Err(AppError::Internal(format!("upload: {e}"))),
    };
    s.check_csrf(fields.get("csrf_token").map(String::as_str))?;
    let kind = fields
        .get("kind")
        .and_then(|k| ImportKind::parse(k))
        .ok_or_else(|| AppError::BadRequest("kind: schools, accounts or mappings".into()))?;
    let Some((file_name, size)) = file else {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "admin.import.no_file").await;
    };
    let replace_school = fields
        .get("replace")
        .filter(|v| v.as_str() == "1")
        .and_then(|_| fields.get("school"))
        .filter(|c| !c.is_empty());
    let new = jobs::NewJob {
        id,
        admin_id: s.admin.id,
        actor: &s.admin.email,
        kind: kind.as_str(),
        file_name: &file_name,
        size_bytes: size,
        replace_school: replace_school.map(String::as_str),
    };
    let mut tx = crate::store::begin_write(&st.svc.pool).await?;
    if !jobs::create(&mut tx, &new, MAX_JOBS_PER_ADMIN, MAX_JOBS).await? {
        tx.rollback().await?;
        return refuse(StatusCode::TOO_MANY_REQUESTS, "admin.import.too_many").await;
    }
    tx.commit().await?;
    spawn_run(st.clone(), id.to_string(), s.admin.id, s.scope(), true);
    Ok(Queued::Yes)
}

/// Runs a job's preview or real import in the background, one run at a
/// time in the process: the file is read from disk for the run and dropped
/// after it.
fn spawn_run(st: AppState, id: String, admin_id: i64, scope: crate::store::Scope, dry_run: bool) {
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
    let bytes = tokio::fs::read(upload_path(st, id))
        .await
        .map_err(|e| AppError::Internal(format!("upload: {e}")))?;
    let progress = Arc::new(AtomicU64::new(0));
    st.imports.progress_map().insert(
        id.to_string(),
        Progress {
            done: progress.clone(),
            total: csv_io::import::estimate_rows(&bytes),
        },
    );
    let opts = Options {
        dry_run,
        replace_school: job.replace_school.clone(),
        scope,
        progress: Some(progress),
        ..Options::new(&job.actor)
    };
    let report = csv_io::import(
        &st.svc.pool,
        &st.svc.known_idps(),
        kind,
        &job.file_name,
        &bytes,
        &opts,
    )
    .await?;
    drop(bytes);
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
                message: e.message.clone(),
            })
            .collect(),
        more_errors: r.more_errors,
    }
}

fn report_of(file: &str, f: &Findings, dry_run: bool) -> ImportReport {
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
                message: e.message.clone(),
            })
            .collect(),
        more_errors: f.more_errors,
        dry_run,
    }
}

#[derive(Template)]
#[template(path = "admin/import_job.html")]
struct JobPage<'a> {
    chrome: Chrome<'a>,
    id: &'a str,
    kind: &'a str,
    file_name: &'a str,
    replace_school: Option<&'a str>,
    running: Option<&'static str>,
    done: u64,
    total: u64,
    report: Option<ImportReport>,
    applied: bool,
    /// The state, title and text keys of a job that ended without importing.
    ended: Option<(&'static str, &'static str, &'static str)>,
}

pub async fn job(
    State(st): State<AppState>,
    s: AdminSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    ready(&st).await?;
    let mut conn = st.svc.pool.acquire().await?;
    let job = jobs::get(&mut conn, &id, s.admin.id)
        .await?
        .ok_or(AppError::NotFound)?;
    drop(conn);
    let progress = st.imports.progress(&id);
    let (running, report, applied, ended) = match job.status {
        Status::Queued if progress.is_none() => (Some("admin.import.queued"), None, false, None),
        Status::Queued => (Some("admin.import.reading"), None, false, None),
        Status::Applying => (Some("admin.import.applying"), None, false, None),
        Status::Previewed => (
            None,
            Some(report_of(&job.file_name, &job.findings, true)),
            false,
            None,
        ),
        Status::Done => {
            // Done with bad rows is a preview that went no further.
            let r = report_of(&job.file_name, &job.findings, false);
            let applied = r.errors.is_empty() && r.more_errors == 0;
            (None, Some(r), applied, None)
        }
        Status::Expired => (
            None,
            None,
            false,
            Some((
                "expired",
                "admin.import.expired_title",
                "admin.import.expired",
            )),
        ),
        Status::Failed => {
            let text = match job.failure.as_deref() {
                Some("interrupted") => "admin.import.interrupted",
                _ => "admin.import.failed_database",
            };
            (
                None,
                None,
                false,
                Some(("failed", "admin.import.failed_title", text)),
            )
        }
    };
    let (done, total) = progress
        .map(|p| (p.done.load(Ordering::Relaxed).min(p.total), p.total))
        .unwrap_or((0, 0));
    Ok(render(
        StatusCode::OK,
        &JobPage {
            chrome: Chrome::of(&s, "import"),
            id: &id,
            kind: &job.kind,
            file_name: &job.file_name,
            replace_school: job.replace_school.as_deref(),
            running,
            done,
            total,
            report,
            applied,
            ended,
        },
    ))
}

pub async fn confirm(
    State(st): State<AppState>,
    Path(id): Path<String>,
    super::AdminForm { session: s, .. }: super::AdminForm<super::NoFields>,
) -> Result<Response, AppError> {
    ready(&st).await?;
    let mut tx = crate::store::begin_write(&st.svc.pool).await?;
    let job = jobs::get(&mut tx, &id, s.admin.id)
        .await?
        .ok_or(AppError::NotFound)?;
    // Only a clean preview can be confirmed, and only once.
    let clean = job.findings.errors.is_empty() && job.findings.more_errors == 0;
    if !clean || !jobs::advance(&mut tx, &id, Status::Previewed, Status::Applying).await? {
        tx.rollback().await?;
        return Err(AppError::BadRequest(
            "this import cannot be confirmed (bad rows, expired, or already confirmed)".into(),
        ));
    }
    tx.commit().await?;
    spawn_run(st.clone(), id.clone(), s.admin.id, s.scope(), false);
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/admin/import/{id}"))],
    )
        .into_response())
}

/// `GET /admin/export/{failures|mappings|accounts}.csv`, with the failure
/// list's filters, `excel=1` for the Excel variant. Streamed; audited.
pub async fn export(
    State(st): State<AppState>,
    s: AdminSession,
    Path(file): Path<String>,
    Query(q): Query<super::failure_list::ListQuery>,
    Query(flags): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let kind = file
        .strip_suffix(".csv")
        .and_then(ExportKind::parse)
        .ok_or(AppError::NotFound)?;
    let excel = flags.get("excel").is_some_and(|v| v == "1");
    let filter = q.filter();
    if !filter
        .school
        .as_deref()
        .is_none_or(|c| s.scope().allows(Some(c)))
    {
        return Err(AppError::NotFound);
    }
    {
        let mut conn = st.svc.pool.acquire().await?;
        let what = serde_json::json!({"excel": excel, "school": filter.school, "status": filter.status, "kind": filter.kind});
        // One entry per school the export covers, so each school's admins
        // see who exported their data.
        let schools: Vec<Option<String>> = match (&filter.school, s.scope()) {
            (Some(one), _) => vec![Some(one.clone())],
            (None, crate::store::Scope::Schools(codes)) => codes.into_iter().map(Some).collect(),
            (None, crate::store::Scope::All) => vec![None],
        };
        for school in schools {
            crate::store::audit::record(
                &mut conn,
                &s.admin.email,
                &format!("export.{}", kind.as_str()),
                None,
                school.as_deref(),
                None,
                Some(what.clone()),
            )
            .await?;
        }
    }
    let exporter = Exporter::new(st.svc.pool.clone(), kind, s.scope(), filter, excel);
    let stream = futures_util::stream::unfold(Some(exporter), |state| async move {
        let mut e = state?;
        match e.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), Some(e))),
            Ok(None) => None,
            Err(err) => {
                tracing::error!(error = %err, "export failed");
                Some((Err(std::io::Error::other("export failed")), None))
            }
        }
    });
    let name = format!(
        "jointure-{}-{}{}.csv",
        kind.as_str(),
        chrono::Utc::now().format("%Y-%m-%d"),
        if excel { "-excel" } else { "" }
    );
    let content_type = if excel {
        "text/csv; charset=utf-8; header=present"
    } else {
        "text/csv; charset=utf-8"
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
