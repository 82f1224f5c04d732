//! Import and export pages. An upload becomes a job, kept in the database
//! (`store::jobs`) so that a restart never hides what happened; the file is
//! streamed to the jobs folder beside the database, never held in memory
//! between runs. A preview reads and checks it with reads only (progress
//! shown, the page refreshing itself) and says what will happen; only a
//! confirmation imports it, through the same code path as the CLI. Runs go
//! one at a time, so memory is bounded by one file whatever is uploaded.
//! Unconfirmed jobs expire after an hour; a few jobs at once per admin and
//! in all. Exports stream.

mod runs;

use super::{AdminSession, Chrome};
use crate::csv_io::export::{ExportKind, Exporter};
use crate::csv_io::{ImportKind, ImportReport};
use crate::store::jobs::{self, Status};
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use runs::{jobs_dir, ready, report_of, spawn_run, upload_path};
pub use runs::{Jobs, MAX_JOBS, MAX_JOBS_PER_ADMIN};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tokio::io::AsyncWriteExt;

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
