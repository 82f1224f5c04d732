//! Import and export pages. An upload becomes a job: the file is read and
//! checked in a dry run (progress shown, the page refreshing itself), the
//! preview says exactly what will happen, and only a confirmation imports it,
//! through the same code path as the CLI. Exports stream.

use super::{AdminSession, Chrome};
use crate::csv_io::export::{ExportKind, Exporter};
use crate::csv_io::{self, ImportKind, ImportReport, Options};
use crate::web::error::AppError;
use crate::web::{render, AppState};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a job is.
#[derive(Debug, Clone)]
pub enum Phase {
    Previewing,
    Previewed(ImportReport),
    Applying,
    Applied(ImportReport),
    Failed(String),
}

/// One uploaded file on its way in.
pub struct Job {
    admin_id: i64,
    actor: String,
    kind: ImportKind,
    file_name: String,
    bytes: Arc<Vec<u8>>,
    replace_school: Option<String>,
    scope: crate::store::Scope,
    total: u64,
    progress: Arc<AtomicU64>,
    phase: Mutex<Phase>,
    created: Instant,
}

impl Job {
    fn phase(&self) -> Phase {
        match self.phase.lock() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    fn set(&self, phase: Phase) {
        match self.phase.lock() {
            Ok(mut p) => *p = phase,
            Err(p) => *p.into_inner() = phase,
        }
    }
}

/// The jobs of this instance, kept an hour at most.
#[derive(Default)]
pub struct Jobs {
    map: Mutex<HashMap<String, Arc<Job>>>,
}

const JOB_LIFETIME: Duration = Duration::from_secs(3600);
const MAX_JOBS: usize = 8;

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Job>>> {
        match self.map.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    /// A job of this admin (another admin's answers as absent).
    fn get(&self, id: &str, admin_id: i64) -> Option<Arc<Job>> {
        self.lock()
            .get(id)
            .filter(|j| j.admin_id == admin_id)
            .cloned()
    }

    fn add(&self, job: Job) -> Result<String, ()> {
        let mut map = self.lock();
        map.retain(|_, j| j.created.elapsed() < JOB_LIFETIME);
        if map.len() >= MAX_JOBS {
            // Drop finished jobs first; refuse when all are running.
            map.retain(|_, j| matches!(j.phase(), Phase::Previewing | Phase::Applying));
            if map.len() >= MAX_JOBS {
                return Err(());
            }
        }
        let id = crate::store::sessions::random_token();
        map.insert(id.clone(), Arc::new(job));
        Ok(id)
    }
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

/// The text fields of a multipart form, and its `file` (name and bytes).
type Upload = (HashMap<String, String>, Option<(String, Bytes)>);

async fn read_upload(mut form: Multipart) -> Result<Upload, UploadError> {
    let mut fields = HashMap::new();
    let mut file = None;
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("upload.csv").to_string();
            file = Some((file_name, field.bytes().await?));
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
    let (fields, file) = match read_upload(form).await {
        Ok(u) => u,
        Err(UploadError::TooLarge) => {
            let msg = s.t.get("admin.import.too_large");
            return import_form(&st, &s, StatusCode::PAYLOAD_TOO_LARGE, Some(msg)).await;
        }
        Err(UploadError::Bad(m)) => return Err(AppError::BadRequest(m)),
    };
    s.check_csrf(fields.get("csrf_token").map(String::as_str))?;
    let kind = fields
        .get("kind")
        .and_then(|k| ImportKind::parse(k))
        .ok_or_else(|| AppError::BadRequest("kind: schools, accounts or mappings".into()))?;
    let Some((file_name, bytes)) = file else {
        return import_form(
            &st,
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(s.t.get("admin.import.no_file")),
        )
        .await;
    };
    let replace_school = fields
        .get("replace")
        .filter(|v| v.as_str() == "1")
        .and_then(|_| fields.get("school"))
        .filter(|c| !c.is_empty())
        .cloned();
    let bytes = Arc::new(bytes.to_vec());
    let job = Job {
        admin_id: s.admin.id,
        actor: s.admin.email.clone(),
        kind,
        total: csv_io::import::estimate_rows(&bytes),
        file_name,
        bytes,
        replace_school,
        scope: s.scope(),
        progress: Arc::new(AtomicU64::new(0)),
        phase: Mutex::new(Phase::Previewing),
        created: Instant::now(),
    };
    let Ok(id) = st.imports.add(job) else {
        return Err(AppError::BadRequest(
            "too many imports at once; try again in a minute".into(),
        ));
    };
    if let Some(job) = st.imports.get(&id, s.admin.id) {
        spawn_run(st.clone(), job, true);
    }
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/admin/import/{id}"))],
    )
        .into_response())
}

/// Runs a job's dry run or real import in the background.
fn spawn_run(st: AppState, job: Arc<Job>, dry_run: bool) {
    tokio::spawn(async move {
        job.progress.store(0, Ordering::Relaxed);
        let opts = Options {
            dry_run,
            replace_school: job.replace_school.clone(),
            scope: job.scope.clone(),
            actor: job.actor.clone(),
            progress: Some(job.progress.clone()),
        };
        let r = csv_io::import(
            &st.svc.pool,
            &st.svc.known_idps(),
            job.kind,
            &job.file_name,
            &job.bytes,
            &opts,
        )
        .await;
        job.set(match r {
            Ok(report) if dry_run => Phase::Previewed(report),
            Ok(report) => Phase::Applied(report),
            Err(e) => {
                tracing::error!(error = %e, "import failed");
                Phase::Failed("database error; nothing was imported".into())
            }
        });
    });
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
    failed: Option<String>,
}

pub async fn job(
    State(st): State<AppState>,
    s: AdminSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let job = st.imports.get(&id, s.admin.id).ok_or(AppError::NotFound)?;
    let phase = job.phase();
    let (running, report, applied, failed) = match phase {
        Phase::Previewing => (Some("admin.import.reading"), None, false, None),
        Phase::Applying => (Some("admin.import.applying"), None, false, None),
        Phase::Previewed(r) => (None, Some(r), false, None),
        Phase::Applied(r) => (None, Some(r), true, None),
        Phase::Failed(m) => (None, None, false, Some(m)),
    };
    Ok(render(
        StatusCode::OK,
        &JobPage {
            chrome: Chrome::of(&s, "import"),
            id: &id,
            kind: job.kind.as_str(),
            file_name: &job.file_name,
            replace_school: job.replace_school.as_deref(),
            running,
            done: job.progress.load(Ordering::Relaxed).min(job.total.max(1)),
            total: job.total,
            report,
            applied,
            failed,
        },
    ))
}

pub async fn confirm(
    State(st): State<AppState>,
    Path(id): Path<String>,
    super::AdminForm { session: s, .. }: super::AdminForm<super::NoFields>,
) -> Result<Response, AppError> {
    let job = st.imports.get(&id, s.admin.id).ok_or(AppError::NotFound)?;
    {
        let mut phase = match job.phase.lock() {
            Ok(p) => p,
            Err(p) => p.into_inner(),
        };
        // Only a clean preview can be confirmed, and only once.
        match &*phase {
            Phase::Previewed(r) if r.errors.is_empty() => *phase = Phase::Applying,
            _ => {
                return Err(AppError::BadRequest(
                    "this import cannot be confirmed (bad rows, or already confirmed)".into(),
                ))
            }
        }
    }
    spawn_run(st.clone(), job, false);
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
