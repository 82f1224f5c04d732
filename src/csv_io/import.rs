//! The one import path of the CLI and the admin pages. The file is parsed as
//! a stream of records; valid rows go in batches into a temporary table, and
//! the counts and the changes are then a few set-based statements, all in
//! one write transaction: one bad row and nothing is written. A dry run does
//! the same work and rolls back, so its counts are exact.

use super::{
    decode_text, detect_delimiter, looks_binary, unclosed_quote_line, unneutralise, ImportReport,
    RowError,
};
use crate::resolve::KnownIdps;
use crate::resolve::{fold_name, parse_date, parse_school_code, AssertedPerson, Role};
use crate::store::{self, accounts, audit, mappings, Scope};
use sqlx::SqlitePool;
use sqlx::{Row, SqliteConnection};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which file an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Schools,
    Accounts,
    Mappings,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Schools => "schools",
            ImportKind::Accounts => "accounts",
            ImportKind::Mappings => "mappings",
        }
    }

    pub fn parse(s: &str) -> Option<ImportKind> {
        match s {
            "schools" => Some(ImportKind::Schools),
            "accounts" => Some(ImportKind::Accounts),
            "mappings" => Some(ImportKind::Mappings),
            _ => None,
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            ImportKind::Schools => &["school_code", "name"],
            ImportKind::Accounts => &[
                "account_id",
                "school_code",
                "last_name",
                "first_name",
                "role",
            ],
            ImportKind::Mappings => &["idp_entity_id", "subject", "account_id"],
        }
    }

    fn optional(self) -> &'static [&'static str] {
        match self {
            ImportKind::Schools => &["idp_entity_ids"],
            // `active` is what our export writes, so an export imports unchanged.
            ImportKind::Accounts => &["birth_date", "class_name", "email", "active"],
            ImportKind::Mappings => &[],
        }
    }

    /// The temporary table's value columns, in bind order.
    fn columns(self) -> &'static [&'static str] {
        match self {
            ImportKind::Schools => &["code", "name", "idp_entity_ids"],
            ImportKind::Accounts => &[
                "account_id",
                "school_code",
                "last_name",
                "first_name",
                "birth_date",
                "role",
                "class_name",
                "email",
                "folded_last",
                "folded_first",
                "active",
            ],
            ImportKind::Mappings => &["idp_entity_id", "subject", "account_id"],
        }
    }
}

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
}

impl Options {
    pub fn new(actor: &str) -> Options {
        Options {
            dry_run: false,
            replace_school: None,
            scope: Scope::All,
            actor: actor.into(),
            progress: None,
        }
    }
}

/// Bad rows listed one by one before the rest are only counted.
const MAX_LISTED_ERRORS: usize = 10_000;
/// Rows per INSERT into the temporary table.
const BATCH: usize = 400;

/// A rough row count (lines less the header), for progress displays.
pub fn estimate_rows(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        .saturating_sub(1) as u64
        + u64::from(!bytes.ends_with(b"\n") && !bytes.is_empty())
}

struct Errors {
    file: String,
    list: Vec<RowError>,
    more: u64,
}

impl Errors {
    fn push(&mut self, line: u64, column: Option<&str>, message: String) {
        if self.list.len() < MAX_LISTED_ERRORS {
            self.list.push(RowError {
                file: self.file.clone(),
                line,
                column: column.map(str::to_string),
                message,
            });
        } else {
            self.more += 1;
        }
    }
    fn is_empty(&self) -> bool {
        self.list.is_empty() && self.more == 0
    }
}

/// Imports a file. `Err` is a database error; bad rows come back in the
/// report (with nothing written).
pub async fn import(
    pool: &SqlitePool,
    idps: &KnownIdps,
    kind: ImportKind,
    file: &str,
    bytes: &[u8],
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
    };
    let mut conn = pool.acquire().await?;
    let outcome = import_on(&mut conn, idps, kind, bytes, opts, &mut report, &mut errors).await;
    // The temporary table lives with the connection: drop it whatever happened.
    let _ = sqlx::query("DROP TABLE IF EXISTS temp.imp")
        .execute(&mut *conn)
        .await;
    outcome?;
    errors.list.sort_by_key(|e| e.line);
    report.errors = errors.list;
    report.more_errors = errors.more;
    Ok(report)
}

/// Two phases. Reading and checking the file (the long part) runs in a
/// deferred transaction that only reads the main database and writes the
/// temporary one, so logins go on meanwhile. Only the set-based checks and
/// changes take the write lock, with `BEGIN IMMEDIATE`; a dry run rolls them
/// back.
async fn import_on(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    bytes: &[u8],
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut read = conn.begin().await?;
    let loaded = load(&mut read, idps, kind, bytes, opts, report, errors).await?;
    read.commit().await?;
    if !loaded || !errors.is_empty() {
        return Ok(());
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // Checked again under the lock: the database may have moved meanwhile.
    check_in_database(&mut tx, kind, opts, errors).await?;
    if !errors.is_empty() {
        tx.rollback().await?;
        return Ok(());
    }
    apply(&mut tx, kind, opts, report).await?;
    if kind != ImportKind::Schools {
        report.failures_resolved =
            resolve_open_failures(&mut tx, idps, &opts.scope, &opts.actor).await?;
    }
    if opts.dry_run {
        tx.rollback().await?;
        return Ok(());
    }
    let after = serde_json::json!({
        "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "deactivated": report.deactivated,
        "failures_resolved": report.failures_resolved, "file": errors.file,
    });
    audit::record(
        &mut tx,
        &opts.actor,
        &format!("import.{}", kind.as_str()),
        None,
        opts.replace_school.as_deref(),
        None,
        Some(after),
    )
    .await?;
    tx.commit().await
}

/// Reads, checks and loads the file into `temp.imp`; false when it stopped
/// before loading (file-level errors).
async fn load(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    kind: ImportKind,
    bytes: &[u8],
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
) -> Result<bool, sqlx::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        errors.push(
            1,
            None,
            "the file is empty (a header row is required)".into(),
        );
        return Ok(false);
    }
    if looks_binary(bytes) {
        errors.push(
            1,
            None,
            "the file is not CSV text (it holds binary data)".into(),
        );
        return Ok(false);
    }
    let text = decode_text(bytes);
    if let Some(line) = unclosed_quote_line(&text) {
        errors.push(
            line,
            None,
            format!(
                "a quoted field opened on line {line} is never closed (is the file cut short?)"
            ),
        );
        return Ok(false);
    }
    if let Some(code) = &opts.replace_school {
        if kind != ImportKind::Accounts {
            errors.push(1, None, "--replace applies to accounts files only".into());
            return Ok(false);
        }
        if !opts.scope.allows(Some(code)) || crate::store::schools::get(conn, code).await?.is_none()
        {
            errors.push(
                1,
                None,
                format!("--replace --school {code}: not a registered school of yours"),
            );
            return Ok(false);
        }
    }

    let mut reader = csv::ReaderBuilder::new()
        .delimiter(detect_delimiter(&text))
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|c| c.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect(),
        Err(e) => {
            errors.push(1, None, format!("unreadable header: {e}"));
            return Ok(false);
        }
    };
    for r in kind.required() {
        if !headers.iter().any(|h| h == r) {
            errors.push(1, Some(r), "required column is missing".into());
        }
    }
    let mut seen = HashSet::new();
    for h in headers.iter().filter(|h| !h.is_empty()) {
        if !seen.insert(h) {
            errors.push(1, Some(h), "column appears twice".into());
        }
    }
    if !errors.is_empty() {
        return Ok(false);
    }
    let known = |h: &str| kind.required().contains(&h) || kind.optional().contains(&h);
    report.ignored_columns = headers.iter().filter(|h| !known(h)).cloned().collect();
    let index: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();

    sqlx::query("DROP TABLE IF EXISTS temp.imp")
        .execute(&mut *conn)
        .await?;
    let cols = kind.columns();
    sqlx::query(&format!(
        "CREATE TEMP TABLE imp (line INTEGER NOT NULL, {})",
        cols.iter()
            .map(|c| format!("{c} TEXT"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .execute(&mut *conn)
    .await?;

    let registered: HashSet<String> = crate::store::schools::all_codes(conn)
        .await?
        .into_iter()
        .collect();
    let ctx = RowContext {
        kind,
        opts,
        registered: &registered,
        idps,
    };
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut batch: Vec<(u64, Vec<Option<String>>)> = Vec::with_capacity(BATCH);
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
                    index: &index,
                };
                match ctx.validate(&cells) {
                    Err(problems) => {
                        for (col, msg) in problems {
                            errors.push(line, Some(col), msg);
                        }
                    }
                    Ok((key, key_col, values)) => {
                        if let Some(prev) = first_line.get(&key) {
                            errors.push(
                                line,
                                Some(key_col),
                                format!(
                                    "{} already appears on line {prev}",
                                    key.replace('\u{1f}', " ")
                                ),
                            );
                            continue;
                        }
                        first_line.insert(key, line);
                        // Valid rows are loaded even after a bad one, so the
                        // database checks below can report every bad row.
                        batch.push((line, values));
                        if batch.len() == BATCH {
                            insert_batch(conn, cols, &batch).await?;
                            batch.clear();
                        }
                    }
                }
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        errors.push(
                            line,
                            None,
                            format!("{len} fields where the header has {expected_len}"),
                        );
                    }
                    _ => {
                        errors.push(line, None, format!("unreadable row: {e}"));
                        break;
                    }
                }
            }
        }
    }
    drop(first_line);
    if report.rows == 0 && errors.is_empty() {
        errors.push(1, None, "the file has a header but no rows".into());
        return Ok(false);
    }
    insert_batch(conn, cols, &batch).await?;
    check_in_database(conn, kind, opts, errors).await?;
    Ok(true)
}

/// One record's cells by column name: trimmed, formula-neutralisation
/// undone, empty ones absent.
struct Cells<'r> {
    record: &'r csv::StringRecord,
    index: &'r HashMap<&'r str, usize>,
}

impl<'r> Cells<'r> {
    /// Whether the file has the column at all.
    fn has(&self, col: &str) -> bool {
        self.index.contains_key(col)
    }

    fn get(&self, col: &str) -> Option<&'r str> {
        let i = *self.index.get(col)?;
        self.record
            .get(i)
            .map(|v| unneutralise(v.trim()))
            .filter(|v| !v.is_empty())
    }
}

struct RowContext<'a> {
    kind: ImportKind,
    opts: &'a Options,
    registered: &'a HashSet<String>,
    idps: &'a KnownIdps,
}

type Problems = Vec<(&'static str, String)>;

impl RowContext<'_> {
    /// Checks one row; returns its duplicate key, the key's column and the
    /// temporary table's values.
    fn validate(
        &self,
        cells: &Cells,
    ) -> Result<(String, &'static str, Vec<Option<String>>), Problems> {
        let mut p: Problems = Vec::new();
        let cell = |col: &str| cells.get(col);
        let required = |col: &'static str, p: &mut Problems| -> Option<String> {
            let v = cell(col).map(str::to_string);
            if v.is_none() {
                p.push((col, "is empty".into()));
            }
            v
        };
        match self.kind {
            ImportKind::Schools => {
                let code = self.school(required("school_code", &mut p), false, &mut p);
                let name = required("name", &mut p);
                // Absent column: the school keeps its list; present and
                // empty: the list is cleared.
                let idps = cells.has("idp_entity_ids").then(|| {
                    let ids: std::collections::BTreeSet<&str> = cell("idp_entity_ids")
                        .unwrap_or("")
                        .split_ascii_whitespace()
                        .collect();
                    // Trust decides who may log in a school's pupils: a
                    // superadmin's call, like the config.
                    if !ids.is_empty() && !matches!(self.opts.scope, crate::store::Scope::All) {
                        p.push((
                            "idp_entity_ids",
                            "only a superadmin may set the IdPs trusted for a school".into(),
                        ));
                    }
                    for i in &ids {
                        if !self.idps.contains(i) {
                            p.push(("idp_entity_ids", format!("{i:?} is not a configured IdP")));
                        }
                    }
                    ids.into_iter().collect::<Vec<_>>().join(" ")
                });
                match (code, name) {
                    (Some(code), Some(name)) if p.is_empty() => Ok((
                        code.clone(),
                        "school_code",
                        vec![Some(code), Some(name), idps],
                    )),
                    _ => Err(p),
                }
            }
            ImportKind::Accounts => {
                let id = required("account_id", &mut p);
                let school = self.school(required("school_code", &mut p), true, &mut p);
                let last = required("last_name", &mut p);
                let first = required("first_name", &mut p);
                let birth = match cell("birth_date") {
                    None => None,
                    Some(d) => {
                        match parse_date(d) {
                            Some(d) => Some(d.format("%Y-%m-%d").to_string()),
                            None => {
                                p.push(("birth_date", format!("{d:?} is not a date (YYYY-MM-DD, DD/MM/YYYY or DD-MM-YYYY)")));
                                None
                            }
                        }
                    }
                };
                let role = match required("role", &mut p) {
                    None => None,
                    Some(r) => match Role::parse(&r) {
                        Some(r) => Some(r.as_str().to_string()),
                        None => {
                            p.push(("role", format!("{r:?} is not a known role (student, parent, teacher, staff, or élève, responsable, enseignant, personnel, leerling, ouder, docent, medewerker)")));
                            None
                        }
                    },
                };
                let active = match cell("active").map(fold_name) {
                    None => Some("1"),
                    Some(a) if ["1", "yes", "true", "oui", "ja", "y"].contains(&a.as_str()) => {
                        Some("1")
                    }
                    Some(a) if ["0", "no", "false", "non", "nee", "n"].contains(&a.as_str()) => {
                        Some("0")
                    }
                    Some(a) => {
                        p.push(("active", format!("{a:?} is not yes or no")));
                        None
                    }
                };
                if let (Some(s), Some(only)) = (&school, &self.opts.replace_school) {
                    if s != only {
                        p.push((
                            "school_code",
                            format!("school {s} in a file that replaces school {only}"),
                        ));
                    }
                }
                match (id, school, last, first, role, active) {
                    (Some(id), Some(school), Some(last), Some(first), Some(role), Some(active))
                        if p.is_empty() =>
                    {
                        let (fl, ff) = (fold_name(&last), fold_name(&first));
                        Ok((
                            id.clone(),
                            "account_id",
                            vec![
                                Some(id),
                                Some(school),
                                Some(last),
                                Some(first),
                                birth,
                                Some(role),
                                cell("class_name").map(str::to_string),
                                cell("email").map(str::to_string),
                                Some(fl),
                                Some(ff),
                                Some(active.to_string()),
                            ],
                        ))
                    }
                    _ => Err(p),
                }
            }
            ImportKind::Mappings => {
                let idp = required("idp_entity_id", &mut p);
                if let Some(i) = &idp {
                    if !self.idps.contains(i) {
                        p.push(("idp_entity_id", format!("{i:?} is not a configured IdP")));
                    }
                }
                let subject = required("subject", &mut p);
                let account = required("account_id", &mut p);
                match (idp, subject, account) {
                    (Some(i), Some(s), Some(a)) if p.is_empty() => Ok((
                        format!("{i}\u{1f}{s}"),
                        "subject",
                        vec![Some(i), Some(s), Some(a)],
                    )),
                    _ => Err(p),
                }
            }
        }
    }

    /// A school code: valid, of the admin's scope, and (for accounts)
    /// registered.
    fn school(&self, raw: Option<String>, must_exist: bool, p: &mut Problems) -> Option<String> {
        let raw = raw?;
        let Some(code) = parse_school_code(&raw) else {
            p.push((
                "school_code",
                format!("{raw:?} is neither a BRIN nor a valid UAI"),
            ));
            return None;
        };
        let code = code.as_str().to_string();
        if must_exist && !self.registered.contains(&code) {
            p.push(("school_code", format!("school {code} is not registered")));
            return None;
        }
        if !self.opts.scope.allows(Some(&code)) {
            p.push(("school_code", format!("school {code} is not one of yours")));
            return None;
        }
        Some(code)
    }
}

async fn insert_batch(
    conn: &mut SqliteConnection,
    cols: &[&str],
    batch: &[(u64, Vec<Option<String>>)],
) -> Result<(), sqlx::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let one = format!("(?{})", ", ?".repeat(cols.len()));
    let sql = format!(
        "INSERT INTO temp.imp (line, {}) VALUES {}",
        cols.join(", "),
        vec![one; batch.len()].join(", ")
    );
    let mut q = sqlx::query(&sql);
    for (line, values) in batch {
        q = q.bind(*line as i64);
        for v in values {
            q = q.bind(v.as_deref());
        }
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Checks that need the database: accounts that do not exist, and
/// accounts or identities of schools outside the importer's scope.
async fn check_in_database(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    opts: &Options,
    errors: &mut Errors,
) -> Result<(), sqlx::Error> {
    let outside = match &opts.scope {
        Scope::All => None,
        // No school at all: everything is outside.
        Scope::Schools(codes) if codes.is_empty() => Some(("1".to_string(), Vec::new())),
        Scope::Schools(codes) => Some((
            format!(
                "a.school_code NOT IN ({})",
                vec!["?"; codes.len()].join(", ")
            ),
            codes.clone(),
        )),
    };
    let mut checks: Vec<(String, &str, &str)> = Vec::new();
    if kind == ImportKind::Mappings {
        checks.push(("SELECT t.line, t.account_id AS v FROM imp t LEFT JOIN accounts a ON a.account_id = t.account_id WHERE a.account_id IS NULL".into(), "account_id", "does not exist"));
    }
    if let Some((cond, _)) = &outside {
        match kind {
            ImportKind::Schools => {}
            ImportKind::Accounts => checks.push((format!("SELECT t.line, t.account_id AS v FROM imp t JOIN accounts a ON a.account_id = t.account_id WHERE {cond}"), "account_id", "belongs to another school")),
            ImportKind::Mappings => {
                checks.push((format!("SELECT t.line, t.account_id AS v FROM imp t JOIN accounts a ON a.account_id = t.account_id WHERE {cond}"), "account_id", "does not exist in your schools"));
                checks.push((format!("SELECT t.line, t.subject AS v FROM imp t JOIN mappings m ON m.idp_entity_id = t.idp_entity_id AND m.subject = t.subject JOIN accounts a ON a.account_id = m.account_id WHERE {cond}"), "subject", "is linked to an account of another school"));
            }
        }
    }
    for (sql, column, why) in checks {
        let sql = format!("{sql} ORDER BY t.line");
        let mut q = sqlx::query(&sql);
        if sql.contains("NOT IN (") {
            for b in outside.iter().flat_map(|(_, b)| b) {
                q = q.bind(b);
            }
        }
        for r in q.fetch_all(&mut *conn).await? {
            let v: String = r.get("v");
            errors.push(
                r.get::<i64, _>("line") as u64,
                Some(column),
                format!("{v} {why}"),
            );
        }
    }
    Ok(())
}

async fn count(
    conn: &mut SqliteConnection,
    sql: &str,
    bind: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let mut q = sqlx::query_scalar::<_, i64>(sql);
    if let Some(b) = bind {
        q = q.bind(b);
    }
    Ok(q.fetch_one(&mut *conn).await? as u64)
}

/// Counts what will change, then changes it.
async fn apply(
    conn: &mut SqliteConnection,
    kind: ImportKind,
    opts: &Options,
    report: &mut ImportReport,
) -> Result<(), sqlx::Error> {
    let now = store::now_text();
    match kind {
        ImportKind::Schools => {
            report.created = count(conn, "SELECT COUNT(*) FROM imp t WHERE NOT EXISTS (SELECT 1 FROM schools s WHERE s.code = t.code)", None).await?;
            report.unchanged = count(conn, "SELECT COUNT(*) FROM imp t JOIN schools s ON s.code = t.code WHERE s.name IS t.name AND (t.idp_entity_ids IS NULL OR s.idp_entity_ids IS t.idp_entity_ids)", None).await?;
            sqlx::query(
                "INSERT INTO schools (code, name, idp_entity_ids, created_at, updated_at) SELECT code, name, COALESCE(idp_entity_ids, ''), ?1, ?1 FROM imp WHERE true
                 ON CONFLICT(code) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at WHERE schools.name IS NOT excluded.name",
            )
            .bind(&now)
            .execute(&mut *conn)
            .await?;
            // A file without the column (NULL here) leaves each list alone.
            sqlx::query(
                "UPDATE schools SET idp_entity_ids = t.idp_entity_ids, updated_at = ?1 FROM imp t
                 WHERE t.code = schools.code AND t.idp_entity_ids IS NOT NULL AND schools.idp_entity_ids IS NOT t.idp_entity_ids",
            )
            .bind(&now)
            .execute(&mut *conn)
            .await?;
        }
        ImportKind::Accounts => {
            report.created = count(conn, "SELECT COUNT(*) FROM imp t WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t.account_id)", None).await?;
            report.unchanged = count(
                conn,
                "SELECT COUNT(*) FROM imp t JOIN accounts a ON a.account_id = t.account_id
                 WHERE a.school_code IS t.school_code AND a.last_name IS t.last_name AND a.first_name IS t.first_name
                   AND a.birth_date IS t.birth_date AND a.role IS t.role AND a.class_name IS t.class_name
                   AND a.email IS t.email AND a.active = CAST(t.active AS INTEGER)",
                None,
            )
            .await?;
            if let Some(school) = &opts.replace_school {
                let missing = "FROM accounts WHERE school_code = ? AND active = 1 AND account_id NOT IN (SELECT account_id FROM imp)";
                report.deactivated =
                    count(conn, &format!("SELECT COUNT(*) {missing}"), Some(school)).await?;
                sqlx::query(&format!("UPDATE accounts SET active = 0, updated_at = ? WHERE account_id IN (SELECT account_id {missing})"))
                    .bind(&now)
                    .bind(school)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO accounts (account_id, school_code, last_name, first_name, birth_date, role, class_name, email, folded_last, folded_first, active, created_at, updated_at)
                 SELECT account_id, school_code, last_name, first_name, birth_date, role, class_name, email, folded_last, folded_first, CAST(active AS INTEGER), ?1, ?1 FROM imp WHERE true
                 ON CONFLICT(account_id) DO UPDATE SET school_code = excluded.school_code, last_name = excluded.last_name,
                   first_name = excluded.first_name, birth_date = excluded.birth_date, role = excluded.role,
                   class_name = excluded.class_name, email = excluded.email, folded_last = excluded.folded_last,
                   folded_first = excluded.folded_first, active = excluded.active, updated_at = excluded.updated_at
                 WHERE accounts.school_code IS NOT excluded.school_code OR accounts.last_name IS NOT excluded.last_name
                   OR accounts.first_name IS NOT excluded.first_name OR accounts.birth_date IS NOT excluded.birth_date
                   OR accounts.role IS NOT excluded.role OR accounts.class_name IS NOT excluded.class_name
                   OR accounts.email IS NOT excluded.email OR accounts.active IS NOT excluded.active",
            )
            .bind(&now)
            .execute(&mut *conn)
            .await?;
        }
        ImportKind::Mappings => {
            report.created = count(conn, "SELECT COUNT(*) FROM imp t WHERE NOT EXISTS (SELECT 1 FROM mappings m WHERE m.idp_entity_id = t.idp_entity_id AND m.subject = t.subject)", None).await?;
            report.unchanged = count(conn, "SELECT COUNT(*) FROM imp t JOIN mappings m ON m.idp_entity_id = t.idp_entity_id AND m.subject = t.subject WHERE m.account_id = t.account_id", None).await?;
            sqlx::query(
                "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at, created_by)
                 SELECT idp_entity_id, subject, account_id, 'import', ?1, ?2 FROM imp WHERE true
                 ON CONFLICT(idp_entity_id, subject) DO UPDATE SET account_id = excluded.account_id, source = 'import',
                   created_at = excluded.created_at, created_by = excluded.created_by
                 WHERE mappings.account_id IS NOT excluded.account_id",
            )
            .bind(&now)
            .bind(&opts.actor)
            .execute(&mut *conn)
            .await?;
        }
    }
    report.updated = report.rows - report.created - report.unchanged;
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
    let (cond, binds) = scope.condition("school_code");
    let sql = format!(
        "SELECT idp_entity_id, subject, school_code, asserted_last_name, asserted_first_name, asserted_birth_date FROM failures
         WHERE status = 'open' AND kind IN ('identity_mismatch', 'ambiguous_identity', 'account_disabled')
           AND asserted_verified = 1 AND idp_entity_id IS NOT NULL AND subject IS NOT NULL{cond}
         GROUP BY idp_entity_id, subject"
    );
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut resolved = 0;
    for r in rows {
        let idp: String = r.get("idp_entity_id");
        let subject: String = r.get("subject");
        let school: Option<String> = r.get("school_code");
        let account = match mappings::find(conn, &idp, &subject).await? {
            Some(a) => accounts::get(conn, &a)
                .await?
                .filter(|a| a.active)
                .map(|a| a.account_id),
            None => {
                let matchable = idps.matches_identity(&idp);
                let person = AssertedPerson {
                    last_name: r.get("asserted_last_name"),
                    first_name: r.get("asserted_first_name"),
                    birth_date: r
                        .get::<Option<String>, _>("asserted_birth_date")
                        .as_deref()
                        .and_then(parse_date),
                    ..Default::default()
                };
                match (matchable, person.identity_key(), school) {
                    (true, Some(key), Some(school)) => {
                        let active: Vec<_> = accounts::identity_matches(conn, &[school], &key)
                            .await?
                            .into_iter()
                            .filter(|a| a.active)
                            .collect();
                        match active.as_slice() {
                            [one]
                                if mappings::subjects_for(conn, &idp, &one.account_id)
                                    .await?
                                    .is_empty() =>
                            {
                                mappings::insert(
                                    conn,
                                    &idp,
                                    &subject,
                                    &one.account_id,
                                    mappings::Source::Import,
                                    Some(actor),
                                )
                                .await?;
                                Some(one.account_id.clone())
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                }
            }
        };
        if let Some(account) = account {
            // Only this scope's failures of the identity are resolved.
            let sql = format!(
                "UPDATE failures SET status = 'resolved', resolved_account_id = ?, resolved_by = ?, resolved_at = ?, resolution_source = 'import'
                 WHERE idp_entity_id = ? AND subject = ? AND status = 'open'{cond}"
            );
            let mut q = sqlx::query(&sql)
                .bind(&account)
                .bind(actor)
                .bind(store::now_text())
                .bind(&idp)
                .bind(&subject);
            for b in &binds {
                q = q.bind(b);
            }
            let done = q.execute(&mut *conn).await?;
            resolved += done.rows_affected();
        }
    }
    Ok(resolved)
}
