//! Exports, streamed: rows are read a page at a time (keyset) and written
//! as CSV chunks, so memory stays constant whatever the size. Cells are
//! neutralised for spreadsheets; the Excel variant adds a BOM and uses `;`
//! (what French and Dutch spreadsheet programs expect).

use super::neutralise;
use crate::resolve::report::Report;
use crate::store::failures::{self, Cursor, Failure, Filter, PageRequest, Sort};
use crate::store::Scope;
use sqlx::SqlitePool;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Failures,
    Mappings,
    Accounts,
}

impl ExportKind {
    pub fn parse(s: &str) -> Option<ExportKind> {
        match s {
            "failures" => Some(ExportKind::Failures),
            "mappings" => Some(ExportKind::Mappings),
            "accounts" => Some(ExportKind::Accounts),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Failures => "failures",
            ExportKind::Mappings => "mappings",
            ExportKind::Accounts => "accounts",
        }
    }
    fn header(self) -> &'static [&'static str] {
        match self {
            ExportKind::Failures => &[
                "reference",
                "support_code",
                "first_seen",
                "last_seen",
                "count",
                "kind",
                "status",
                "idp_entity_id",
                "school_code",
                "subject",
                "asserted_last_name",
                "asserted_first_name",
                "asserted_birth_date",
                "declared_last_name",
                "declared_first_name",
                "declared_birth_date",
                "role",
                "class_name",
                "email",
                "resolved_account_id",
                "resolved_by",
                "resolved_at",
            ],
            ExportKind::Mappings => &[
                "idp_entity_id",
                "subject",
                "account_id",
                "school_code",
                "source",
                "created_at",
                "created_by",
            ],
            ExportKind::Accounts => &[
                "account_id",
                "school_code",
                "last_name",
                "first_name",
                "birth_date",
                "role",
                "class_name",
                "email",
                "active",
            ],
        }
    }
}

/// One export run, page by page.
pub struct Exporter {
    pool: SqlitePool,
    kind: ExportKind,
    scope: Scope,
    filter: Filter,
    excel: bool,
    /// Keyset position: (text key, numeric key) of the last row written.
    after: Option<(String, i64)>,
    /// The failures' keyset position (their list's own cursor).
    failures_after: Option<Cursor>,
    started: bool,
    done: bool,
}

const PAGE: i64 = 1000;

impl Exporter {
    /// `filter` applies to failures (status, kind, school, IdP, text, dates);
    /// for mappings and accounts only its `school` is read.
    pub fn new(
        pool: SqlitePool,
        kind: ExportKind,
        scope: Scope,
        filter: Filter,
        excel: bool,
    ) -> Exporter {
        Exporter {
            pool,
            kind,
            scope,
            filter,
            excel,
            after: None,
            failures_after: None,
            started: false,
            done: false,
        }
    }

    /// The next chunk of the file, `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, sqlx::Error> {
        if self.done {
            return Ok(None);
        }
        let delimiter = if self.excel { b';' } else { b',' };
        let mut w = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(Vec::new());
        let mut prefix = Vec::new();
        if !self.started {
            self.started = true;
            if self.excel {
                prefix.extend_from_slice("\u{feff}".as_bytes());
            }
            write(&mut w, self.kind.header().iter().copied());
        }
        let rows = self.page().await?;
        if (rows.len() as i64) < PAGE {
            self.done = true;
        }
        for r in &rows {
            write(&mut w, r.iter().map(|c| neutralise(c).into_owned()));
        }
        prefix.extend(w.into_inner().unwrap_or_default());
        Ok(Some(prefix))
    }

    /// The next page of rows, of the export's kind.
    async fn page(&mut self) -> Result<Vec<Vec<String>>, sqlx::Error> {
        match self.kind {
            ExportKind::Failures => self.failures_page().await,
            ExportKind::Mappings => self.mappings_page().await,
            ExportKind::Accounts => self.accounts_page().await,
        }
    }

    /// The school the export is limited to, if any (mappings and accounts).
    fn school(&self) -> Option<String> {
        self.filter.school.clone().filter(|s| !s.is_empty())
    }

    /// A page of failures, the newest seen first; the last page ends the run.
    async fn failures_page(&mut self) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let page = PageRequest {
            sort: Sort::LastSeen,
            cursor: self.failures_after.take(),
            limit: PAGE,
        };
        let page = failures::list(&mut conn, &self.scope, &self.filter, &page).await?;
        self.failures_after = page.next;
        if self.failures_after.is_none() {
            self.done = true;
        }
        Ok(page.items.into_iter().map(failure_row).collect())
    }

    /// A page of mappings, by ID.
    async fn mappings_page(&mut self) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let school = self.school();
        let after = self.after.as_ref().map(|a| a.1).unwrap_or(0);
        let rows = crate::store::mappings::export_page(
            &mut conn,
            &self.scope,
            school.as_deref(),
            after,
            PAGE,
        )
        .await?;
        if let Some(last) = rows.last() {
            self.after = Some((String::new(), last.id));
        }
        Ok(rows
            .into_iter()
            .map(|m| {
                vec![
                    m.idp_entity_id,
                    m.subject,
                    m.account_id,
                    m.school_code,
                    m.source,
                    m.created_at,
                    m.created_by.unwrap_or_default(),
                ]
            })
            .collect())
    }

    /// A page of accounts, by account ID.
    async fn accounts_page(&mut self) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let school = self.school();
        let after = self.after.as_ref().map(|a| a.0.clone()).unwrap_or_default();
        let items = crate::store::accounts::list(
            &mut conn,
            &self.scope,
            school.as_deref(),
            None,
            Some(&after),
            PAGE,
        )
        .await?;
        if let Some(last) = items.last() {
            self.after = Some((last.account_id.clone(), 0));
        }
        Ok(items
            .into_iter()
            .map(|a| {
                vec![
                    a.account_id,
                    a.school_code,
                    a.last_name,
                    a.first_name,
                    a.birth_date
                        .map(|d| d.format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    a.role.as_str().to_string(),
                    a.class_name.unwrap_or_default(),
                    a.email.unwrap_or_default(),
                    if a.active { "yes" } else { "no" }.to_string(),
                ]
            })
            .collect())
    }
}

/// A failure's cells: what was asserted, and what the user declared in
/// the form (role and class: the declared ones, else the asserted).
fn failure_row(f: Failure) -> Vec<String> {
    let r: Report = f
        .report_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let declared = f.report_json.is_some();
    let pick = |d: &str, a: Option<String>| {
        if declared && !d.is_empty() {
            d.to_string()
        } else {
            a.unwrap_or_default()
        }
    };
    vec![
        f.reference,
        f.support_code,
        f.first_seen,
        f.last_seen,
        f.count.to_string(),
        f.kind.as_str().to_string(),
        f.status.to_string(),
        f.idp_entity_id.unwrap_or_default(),
        f.school_code.unwrap_or_default(),
        f.subject.unwrap_or_default(),
        f.asserted_last_name.unwrap_or_default(),
        f.asserted_first_name.unwrap_or_default(),
        f.asserted_birth_date.unwrap_or_default(),
        r.last_name.clone(),
        r.first_name.clone(),
        r.birth_date.clone(),
        pick(&r.role, f.asserted_role),
        pick(&r.class_name, f.asserted_class_name),
        r.email.clone(),
        f.resolved_account_id.unwrap_or_default(),
        f.resolved_by.unwrap_or_default(),
        f.resolved_at.unwrap_or_default(),
    ]
}

fn write<I, S>(w: &mut csv::Writer<Vec<u8>>, cells: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cells);
}
