//! The admin list's read: filters, keyset pages.

use super::{from_row, Failure, COLUMNS};
use crate::resolve::FailureStatus;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// The admin list's filters; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<FailureStatus>,
    pub kind: Option<String>,
    pub school: Option<String>,
    pub idp: Option<String>,
    /// Searched in support code, reference, subject, asserted names, report.
    pub text: Option<String>,
    /// `YYYY-MM-DD`, inclusive, on last seen.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, inclusive, on last seen.
    pub to: Option<String>,
}

/// A keyset cursor: the (last_seen, id) of the last row shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub last_seen: String,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}~{}", self.last_seen, self.id)
    }
    pub fn decode(s: &str) -> Option<Cursor> {
        let (t, id) = s.split_once('~')?;
        Some(Cursor {
            last_seen: t.to_string(),
            id: id.parse().ok()?,
        })
    }
}

/// Failures in scope matching the filter, newest first, after the cursor.
/// Returns at most `limit` rows and the cursor of the next page.
pub async fn list(
    conn: &mut SqliteConnection,
    scope: &crate::store::Scope,
    f: &Filter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<Failure>, Option<Cursor>), sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM failures WHERE 1=1"));
    scope.push_condition(&mut q, "school_code");
    let equal = [
        ("status", f.status.map(|s| s.as_str())),
        ("kind", f.kind.as_deref()),
        ("school_code", f.school.as_deref()),
        ("idp_entity_id", f.idp.as_deref()),
    ];
    for (col, v) in equal {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            q.push(format_args!(" AND {col} = ")).push_bind(v);
        }
    }
    if let Some(t) = f.text.as_ref().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let p = crate::store::like_pattern(t);
        q.push(" AND (");
        let mut any = q.separated(" OR ");
        any.push("support_code LIKE ")
            .push_bind_unseparated(p.clone())
            .push_unseparated(" ESCAPE '\\'");
        any.push("reference = ").push_bind_unseparated(t);
        for col in [
            "subject",
            "asserted_last_name",
            "asserted_first_name",
            "report_json",
        ] {
            any.push(format_args!("{col} LIKE "))
                .push_bind_unseparated(p.clone())
                .push_unseparated(" ESCAPE '\\'");
        }
        q.push(")");
    }
    if let Some(d) = f.from.as_ref().filter(|d| !d.is_empty()) {
        q.push(" AND last_seen >= ")
            .push_bind(format!("{d}T00:00:00Z"));
    }
    if let Some(d) = f.to.as_ref().filter(|d| !d.is_empty()) {
        q.push(" AND last_seen <= ")
            .push_bind(format!("{d}T23:59:59Z"));
    }
    if let Some(c) = after {
        q.push(" AND (last_seen < ")
            .push_bind(&c.last_seen)
            .push(" OR (last_seen = ")
            .push_bind(&c.last_seen)
            .push(" AND id < ")
            .push_bind(c.id)
            .push("))");
    }
    q.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
        .push_bind(limit + 1);
    let rows = q.build().fetch_all(&mut *conn).await?;
    let mut items: Vec<Failure> = rows.iter().map(from_row).collect();
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|f| Cursor {
            last_seen: f.last_seen.clone(),
            id: f.id,
        })
    } else {
        None
    };
    Ok((items, next))
}
