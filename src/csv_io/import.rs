//! The one import path of the CLI and the admin pages. The file is parsed as
//! a stream of records; valid rows go in batches into a temporary table, and
//! the counts and the changes are then a few set-based statements, all in
//! one write transaction: one bad row and nothing is written. A dry run (the
//! admin pages' preview) reads and checks the same way but only counts, with
//! reads: it never takes the write lock, so logins go on. Only the first
//! errors are kept, each one's text capped, so a preview's memory does not
//! grow with the number of bad rows. The statements are in `store::imports`;
//! the row checks in `rows`.

mod large;
mod preview;

use super::decode::Failed;
use super::prepared::prepare;
use super::rows::{optional, required, Cells, RowContext};
use super::{ImportReport, Reason, RowError, Shown};
use crate::resolve::{ImportKind, KnownIdps};
use crate::store::imports::swap;
use crate::store::imports::{self, Staged, BATCH};
use crate::store::{accounts, audit, failures, mappings, Scope, Writer};
use preview::{identity_of, would_resolve};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    /// `--replace --school CODE`: the file is the whole truth for that
    /// school; its accounts missing from the file are deactivated.
    pub replace_school: Option<String>,
    /// Whose rows may be imported.
    pub scope: Scope,
    /// Who imports, for mappings, resolutions and the audit log.
    pub actor: String,
    /// Records read so far, for progress displays.
    pub progress: Option<Arc<AtomicU64>>,
    /// Bad rows listed one by one before the rest are only counted.
    pub max_errors: usize,
    /// The server's writer: each write transaction of the import waits for
    /// its turn in the writer's queue, so logins and the import take turns
    /// instead of sleeping in SQLite's busy handler. `None` (the CLI): the
    /// lock alone.
    pub writer: Option<Writer>,
    /// Accounts files of at least this many rows are applied by building
    /// the next table beside the live one in short transactions
    /// ([`imports::swap`]); smaller ones by one upsert.
    pub swap_from_rows: u64,
}

impl Options {
    pub fn new(actor: &str) -> Options {
        Options {
            dry_run: false,
            replace_school: None,
            scope: Scope::All,
            actor: actor.into(),
            progress: None,
            max_errors: DEFAULT_MAX_ERRORS,
            writer: None,
            swap_from_rows: SWAP_FROM_ROWS,
        }
    }
}

/// Accounts files from this size are swapped in ([`Options::swap_from_rows`]):
/// below it, the one upsert holds the lock for less than about a tenth of a
/// second.
pub const SWAP_FROM_ROWS: u64 = 20_000;

/// Bad rows listed by default before the rest are only counted.
pub const DEFAULT_MAX_ERRORS: usize = 100;

/// An error's text is cut after this many characters (a bad value can be
/// as long as the file), so that the first errors stay small.
pub const MAX_ERROR_CHARS: usize = 300;

/// `text` cut to `max` characters, with `…` when cut.
pub fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A rough row count (lines less the header), for progress displays.
pub fn estimate_rows(mut bytes: &[u8]) -> u64 {
    super::prepared::estimate_rows(&mut bytes).unwrap_or(0)
}

struct Errors {
    file: String,
    list: Vec<RowError>,
    more: u64,
    max: usize,
}

impl Errors {
    fn push(&mut self, line: u64, column: Option<&str>, reason: Reason) {
        if self.list.len() < self.max {
            self.list.push(RowError {
                file: self.file.clone(),
                line,
                // A header name from the file: shown truncated too.
                column: column.map(|c| Shown::new(c).to_string()),
                reason,
            });
        } else {
            self.more += 1;
        }
    }
    fn is_empty(&self) -> bool {
        self.list.is_empty() && self.more == 0
    }
}

/// Where an import reads its file from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// In memory (the CLI, the tests).
    Bytes(&'a [u8]),
    /// On disk (the import page's uploads): read in pieces, with the text
    /// the CSV reader takes written beside it (`<file>.prepared`, deleted
    /// after the run), so memory does not grow with the file.
    File(&'a Path),
}

/// Imports a file given in memory. `Err` is a database error; bad rows
/// come back in the report (with nothing written).
pub async fn import(
    pool: &SqlitePool,
    idps: &KnownIdps,
    kind: ImportKind,
    file: &str,
    bytes: &[u8],
    opts: &Options,
) -> Result<ImportReport, sqlx::Error> {
    import_from(pool, idps, kind, file, Source::Bytes(bytes), opts).await
}

/// Imports a file, from memory or from disk (see [`Source`]).
pub async fn import_from(
    pool: &SqlitePool,
    idps: &KnownIdps,
    kind: ImportKind,
    file: &str,
    source: Source<'_>,
    opts: &Options,
) -> Result<ImportReport, sqlx::Error> {
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let mut errors = Errors {
        file: file.to_string(),
        list: Vec::new(),
        more: 0,
        max: opts.max_errors,
    };
    let mut held = Held(Some(pool.acquire().await?));
    let conn = held.0.as_mut().expect("held");
    let outcome = import_on(conn, idps, kind, source, opts, &mut report, &mut errors).await;
    // The temporary table lives with the connection, and the swap turns
    // foreign keys off for its transaction: the connection goes back to
    // the pool only once both are undone.
    let cleaned = imports::drop_table(conn).await.is_ok()
        && sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut **conn)
            .await
            .is_ok();
    if cleaned {
        drop(held.0.take());
    }
    drop(held);
    outcome?;
    errors.list.sort_by_key(|e| e.line);
    report.errors = errors.list;
    report.more_errors = errors.more;
    Ok(report)
}

/// The import's connection. Dropped before it was cleaned (an error in
/// the cleaning, or the import's future dropped midway), it is closed
/// rather than pooled: its temporary table or its foreign keys turned off
/// never reach another request.
struct Held(Option<PoolConnection<Sqlite>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

/// Two phases. Reading and checking the file (the long part) runs in a
/// deferred transaction that only reads the main database and writes the
/// temporary one, so logins go on meanwhile; a dry run counts there too and
/// stops. Then a real import writes: a large accounts file by building the
/// next table in short transactions and swapping it in
/// ([`imports::swap`]), anything else in one `BEGIN IMMEDIATE` transaction
/// with its set-based checks and changes.
async fn import_on(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    source: Source<'_>,
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
) -> Result<(), sqlx::Error> {
    let mut read = conn.begin().await?;
    let loaded = load(&mut read, idps, kind, source, opts, report, errors).await?;
    let large = kind == ImportKind::Accounts && report.rows >= opts.swap_from_rows;
    let mut plan = None;
    if loaded && errors.is_empty() && opts.dry_run {
        let counts = imports::counts(&mut read, kind, opts.replace_school.as_deref()).await?;
        fill_counts(report, counts);
        if kind != ImportKind::Schools {
            report.failures_resolved = would_resolve(&mut read, idps, kind, opts).await?;
        }
    } else if loaded && errors.is_empty() && large {
        // What the import will change, counted in the same snapshot as
        // the checks; the generation tells at the write whether it still
        // holds. Rows to write: the new and changed ones, and the
        // deactivated; when they are few only they are written, and only
        // then are they marked.
        let counts = imports::counts(&mut read, kind, opts.replace_school.as_deref()).await?;
        let few = report.rows - counts.unchanged + counts.deactivated < opts.swap_from_rows;
        if few {
            swap::mark_changes(&mut read).await?;
        }
        let generation = swap::generation(&mut read).await?;
        plan = Some((large::Plan { counts, generation }, few));
    }
    read.commit().await?;
    if !loaded || !errors.is_empty() || opts.dry_run {
        return Ok(());
    }
    if let Some((plan, few)) = plan {
        let done = if few {
            large::apply_marked(conn, idps, opts, report, errors, plan).await?
        } else {
            large::swap_in(conn, idps, opts, report, errors, plan).await?
        };
        if done {
            return Ok(());
        }
        // Accounts changed meanwhile: the direct way, under the lock.
    }
    let turn = write_turn(opts).await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // Checked again under the lock: the database may have moved meanwhile.
    check_in_database(&mut tx, kind, opts, errors).await?;
    if !errors.is_empty() {
        tx.rollback().await?;
        return Ok(());
    }
    let counts = imports::apply(&mut tx, kind, opts.replace_school.as_deref(), &opts.actor).await?;
    fill_counts(report, counts);
    finish(&mut tx, idps, kind, opts, report, errors).await?;
    tx.commit().await?;
    drop(turn);
    Ok(())
}

/// The writer's turn for one write transaction of the import (nothing
/// without a writer: the lock alone serialises).
async fn write_turn(opts: &Options) -> Result<Option<PoolConnection<Sqlite>>, sqlx::Error> {
    match &opts.writer {
        Some(w) => Ok(Some(w.pool().acquire().await?)),
        None => Ok(None),
    }
}

/// The end of a real import, in its write transaction: the open failures
/// it resolves, and the audit record.
async fn finish(
    tx: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    opts: &Options,
    report: &mut ImportReport,
    errors: &Errors,
) -> Result<(), sqlx::Error> {
    if kind != ImportKind::Schools {
        report.failures_resolved =
            resolve_open_failures(tx, idps, &opts.scope, &opts.actor).await?;
    }
    let after = serde_json::json!({
        "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "deactivated": report.deactivated,
        "failures_resolved": report.failures_resolved, "file": errors.file,
    });
    audit::record(
        tx,
        &opts.actor,
        &format!("import.{}", kind.as_str()),
        None,
        opts.replace_school.as_deref(),
        None,
        Some(after),
    )
    .await?;
    Ok(())
}

fn fill_counts(report: &mut ImportReport, counts: imports::Counts) {
    report.created = counts.created;
    report.unchanged = counts.unchanged;
    report.deactivated = counts.deactivated;
    report.updated = report.rows - report.created - report.unchanged;
}

/// Reads, checks and loads the file into the temporary table; false when
/// it stopped before loading (file-level errors).
async fn load(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    source: Source<'_>,
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
) -> Result<bool, sqlx::Error> {
    let Some(ready) = readable(source, errors).await? else {
        return Ok(false);
    };
    if !replace_allowed(conn, kind, opts, errors).await? {
        return Ok(false);
    }
    let mut builder = csv::ReaderBuilder::new();
    builder
        .delimiter(ready.delimiter)
        .has_headers(true)
        .flexible(false);
    match &ready.text {
        Text::Memory(text) => {
            let mut reader = builder.from_reader(text.as_slice());
            read_rows(conn, idps, kind, &mut reader, opts, report, errors).await
        }
        Text::File(file) => {
            let f = std::fs::File::open(&file.0).map_err(sqlx::Error::Io)?;
            let mut reader = builder.from_reader(std::io::BufReader::new(f));
            read_rows(conn, idps, kind, &mut reader, opts, report, errors).await
        }
    }
}

/// The records, checked and staged, then the checks over them all.
async fn read_rows<R: std::io::Read + Send>(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    reader: &mut csv::Reader<R>,
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
) -> Result<bool, sqlx::Error> {
    let Some(headers) = read_header(reader, kind, errors) else {
        return Ok(false);
    };
    let known = |h: &str| required(kind).contains(&h) || optional(kind).contains(&h);
    report.ignored_columns = headers.iter().filter(|h| !known(h)).cloned().collect();
    let index: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();

    imports::create_table(conn, kind).await?;
    let registered: HashSet<String> = crate::store::schools::all_codes(conn)
        .await?
        .into_iter()
        .collect();
    let ctx = RowContext {
        kind,
        scope: &opts.scope,
        replace_school: opts.replace_school.as_deref(),
        registered: &registered,
        idps,
    };
    stage_rows(conn, reader, &ctx, &index, opts, report, errors).await?;
    if report.rows == 0 && errors.is_empty() {
        errors.push(1, None, Reason::NoRows);
        return Ok(false);
    }
    let (dups, all) = imports::duplicates(conn, kind, opts.max_errors).await?;
    errors.more += all - dups.len() as u64;
    for d in dups {
        errors.push(
            d.line,
            Some(d.column),
            Reason::Duplicate {
                key: Shown::new(&d.key.replace('\u{1f}', " ")),
                first_line: d.first,
            },
        );
    }
    check_in_database(conn, kind, opts, errors).await?;
    Ok(true)
}

/// The text the CSV reader takes and its delimiter.
struct Ready {
    delimiter: u8,
    text: Text,
}

enum Text {
    Memory(Vec<u8>),
    File(Prepared),
}

/// The text written beside an upload, deleted when the run is over.
struct Prepared(PathBuf);

impl Drop for Prepared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The file made ready for the CSV reader (`prepared`), or `None` with the
/// reason it is refused as a whole: empty, binary, not in one encoding, a
/// NUL, or cut short.
async fn readable(source: Source<'_>, errors: &mut Errors) -> Result<Option<Ready>, sqlx::Error> {
    let prepared = match source {
        Source::Bytes(bytes) => {
            let mut out = Vec::new();
            prepare(&mut std::io::Cursor::new(bytes), &mut out).map(|delimiter| Ready {
                delimiter,
                text: Text::Memory(out),
            })
        }
        Source::File(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".prepared");
            let (from, into) = (path.to_path_buf(), Prepared(PathBuf::from(name)));
            // Reading and writing files: off the async threads.
            tokio::task::spawn_blocking(move || {
                let mut input = std::fs::File::open(&from)?;
                let mut out = std::io::BufWriter::new(std::fs::File::create(&into.0)?);
                let delimiter = prepare(&mut input, &mut out)?;
                out.flush()?;
                Ok(Ready {
                    delimiter,
                    text: Text::File(into),
                })
            })
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("reading the file: {e}")))?
        }
    };
    match prepared {
        Ok(ready) => Ok(Some(ready)),
        Err(Failed::Refused(r)) => {
            errors.push(r.line, None, r.reason);
            Ok(None)
        }
        Err(Failed::Io(e)) => Err(sqlx::Error::Io(e)),
    }
}

/// `--replace --school CODE` applies to an accounts file, for a registered
/// school of the importer's.
async fn replace_allowed(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    opts: &Options,
    errors: &mut Errors,
) -> Result<bool, sqlx::Error> {
    let Some(code) = &opts.replace_school else {
        return Ok(true);
    };
    if kind != ImportKind::Accounts {
        errors.push(1, None, Reason::ReplaceNotAccounts);
        return Ok(false);
    }
    if !opts.scope.allows(Some(code)) || crate::store::schools::get(conn, code).await?.is_none() {
        errors.push(
            1,
            None,
            Reason::ReplaceNotYours {
                school: Shown::new(code),
            },
        );
        return Ok(false);
    }
    Ok(true)
}

/// The header's column names (trimmed, lower case, BOM dropped), or `None`
/// when a required column is missing or one appears twice.
fn read_header<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    kind: ImportKind,
    errors: &mut Errors,
) -> Option<Vec<String>> {
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|c| c.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect(),
        Err(e) => {
            let detail = Shown::new(&e.to_string());
            errors.push(1, None, Reason::UnreadableHeader { detail });
            return None;
        }
    };
    for r in required(kind) {
        if !headers.iter().any(|h| h == r) {
            errors.push(1, Some(r), Reason::MissingColumn);
        }
    }
    let mut seen = HashSet::new();
    for h in headers.iter().filter(|h| !h.is_empty()) {
        if !seen.insert(h) {
            errors.push(1, Some(h), Reason::DuplicateColumn);
        }
    }
    errors.is_empty().then_some(headers)
}

/// Checks every record and stages the valid ones in batches. Valid rows
/// are staged even after a bad one, so the database checks can report
/// every bad row.
async fn stage_rows<R: std::io::Read + Send>(
    conn: &mut SqliteConnection,
    reader: &mut csv::Reader<R>,
    ctx: &RowContext<'_>,
    index: &HashMap<&str, usize>,
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
) -> Result<(), sqlx::Error> {
    let mut batch: Vec<Staged> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                if let Some(p) = &opts.progress {
                    p.fetch_add(1, Ordering::Relaxed);
                }
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                report.rows += 1;
                let cells = Cells {
                    record: &record,
                    index,
                };
                match ctx.validate(&cells) {
                    Err(problems) => {
                        for (col, msg) in problems {
                            errors.push(line, Some(col), msg);
                        }
                    }
                    // Duplicate keys are told once the rows are staged.
                    Ok((_key, _key_col, values)) => {
                        batch.push((line, values));
                        if batch.len() == BATCH {
                            imports::stage(conn, ctx.kind, &batch).await?;
                            batch.clear();
                        }
                    }
                }
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                if let csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } = e.kind()
                {
                    let (found, expected) = (*len, *expected_len);
                    errors.push(line, None, Reason::FieldCount { found, expected });
                } else {
                    let detail = Shown::new(&e.to_string());
                    errors.push(line, None, Reason::UnreadableRow { detail });
                    break;
                }
            }
        }
    }
    imports::stage(conn, ctx.kind, &batch).await
}

/// The staged rows the database refuses, as row errors.
async fn check_in_database(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    opts: &Options,
    errors: &mut Errors,
) -> Result<(), sqlx::Error> {
    for p in imports::problems(conn, kind, &opts.scope).await? {
        errors.push(p.line, Some(p.column), Reason::from_store(&p.value, p.why));
    }
    Ok(())
}

/// After accounts or mappings change: open failures of a valid assertion
/// that now resolve (a mapping to an active account, or exactly one active
/// account matching the asserted name and birth date) are resolved with
/// source `import`. Only what the IdP asserted counts, never what a user
/// typed in the form.
pub async fn resolve_open_failures(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    scope: &Scope,
    actor: &str,
) -> Result<u64, sqlx::Error> {
    let mut resolved = 0;
    for open in imports::open_identities(conn, scope).await? {
        let account = match mappings::find(conn, &open.idp_entity_id, &open.subject).await? {
            Some(a) => accounts::get(conn, &a)
                .await?
                .filter(|a| a.active)
                .map(|a| a.account_id),
            None => match_unmapped(conn, idps, &open, actor).await?,
        };
        if let Some(account) = account {
            // Only this scope's failures of the identity are resolved.
            resolved += failures::resolve_identity(
                conn,
                scope,
                (&open.idp_entity_id, &open.subject),
                &account,
                actor,
                failures::ResolvedBy::Import,
            )
            .await?;
        }
    }
    Ok(resolved)
}

/// The automatic match for an unmapped identity: exactly one active account
/// of its school with the asserted name and birth date, not yet linked to
/// another identity of the IdP; mapped (source `import`) when found.
async fn match_unmapped(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    open: &imports::OpenIdentity,
    actor: &str,
) -> Result<Option<String>, sqlx::Error> {
    let Some((key, school)) = identity_of(idps, open) else {
        return Ok(None);
    };
    let active: Vec<_> = accounts::identity_matches(conn, &[school], &key)
        .await?
        .into_iter()
        .filter(|a| a.active)
        .collect();
    let [one] = active.as_slice() else {
        return Ok(None);
    };
    if !mappings::subjects_for(conn, &open.idp_entity_id, &one.account_id)
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    mappings::insert(
        conn,
        &open.idp_entity_id,
        &open.subject,
        &one.account_id,
        mappings::Source::Import,
        Some(actor),
    )
    .await?;
    Ok(Some(one.account_id.clone()))
}
