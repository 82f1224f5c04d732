//! Registered schools.

use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct School {
    pub code: String,
    pub name: String,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

pub async fn upsert(conn: &mut SqliteConnection, s: &School) -> Result<Upsert, sqlx::Error> {
    let existing = get(conn, &s.code).await?;
    let now = super::now_text();
    match existing {
        None => {
            sqlx::query(
                "INSERT INTO schools (code, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
            )
            .bind(&s.code)
            .bind(&s.name)
            .bind(&now)
            .bind(&now)
            .execute(&mut *conn)
            .await?;
            Ok(Upsert::Created)
        }
        Some(e) if e == *s => Ok(Upsert::Unchanged),
        Some(_) => {
            sqlx::query("UPDATE schools SET name = ?, updated_at = ? WHERE code = ?")
                .bind(&s.name)
                .bind(&now)
                .bind(&s.code)
                .execute(&mut *conn)
                .await?;
            Ok(Upsert::Updated)
        }
    }
}

pub async fn get(conn: &mut SqliteConnection, code: &str) -> Result<Option<School>, sqlx::Error> {
    let row = sqlx::query("SELECT code, name FROM schools WHERE code = ?")
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| School {
        code: r.get("code"),
        name: r.get("name"),
    }))
}

/// A school's own support contact (schools CSV `support_email`,
/// `support_phone`, `support_url`), each checked for shape at import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub url: Option<String>,
}

impl Contact {
    /// Whether the school gave any way to reach it.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none() && self.url.is_none()
    }
}

/// A registered school and its contact; `None` for an unknown code.
pub async fn with_contact(
    conn: &mut SqliteConnection,
    code: &str,
) -> Result<Option<(School, Contact)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT code, name, support_email, support_phone, support_url FROM schools WHERE code = ?",
    )
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| {
        let some = |c: &str| r.get::<Option<String>, _>(c).filter(|v| !v.is_empty());
        (
            School {
                code: r.get("code"),
                name: r.get("name"),
            },
            Contact {
                email: some("support_email"),
                phone: some("support_phone"),
                url: some("support_url"),
            },
        )
    }))
}

/// Sets a registered school's contact (all three at once); false when no
/// such school.
pub async fn set_contact(
    conn: &mut SqliteConnection,
    code: &str,
    c: &Contact,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE schools SET support_email = ?, support_phone = ?, support_url = ?, updated_at = ? WHERE code = ?",
    )
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.url)
    .bind(super::now_text())
    .bind(code)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Every registered code, for validating a whole import at once.
pub async fn all_codes(conn: &mut SqliteConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT code FROM schools ORDER BY code")
        .fetch_all(&mut *conn)
        .await
}

/// Schools in scope, optionally matching `text` in code or name.
pub async fn list(
    conn: &mut SqliteConnection,
    scope: &super::Scope,
    text: Option<&str>,
) -> Result<Vec<School>, sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT code, name FROM schools WHERE 1=1");
    scope.push_condition(&mut q, "code");
    if let Some(t) = text {
        let p = super::like_pattern(t);
        q.push(" AND (code LIKE ")
            .push_bind(p.clone())
            .push(" ESCAPE '\\' OR name LIKE ")
            .push_bind(p)
            .push(" ESCAPE '\\')");
    }
    q.push(" ORDER BY code");
    let rows = q.build().fetch_all(&mut *conn).await?;
    Ok(rows
        .iter()
        .map(|r| School {
            code: r.get("code"),
            name: r.get("name"),
        })
        .collect())
}

/// The condition that a school's `idp_entity_ids` lists the bound entity
/// ID (one of its space-separated words).
pub(super) const LISTS_IDP: &str = "instr(' ' || idp_entity_ids || ' ', ' ' || ? || ' ') > 0";

/// Whether the school's own list (`idp_entity_ids`) trusts `entity_id`.
pub async fn lists_idp(
    conn: &mut SqliteConnection,
    code: &str,
    entity_id: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM schools WHERE code = ? AND {LISTS_IDP}"
    ))
    .bind(code)
    .bind(entity_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// Whether any school lists `entity_id` among its trusted IdPs.
pub async fn any_lists_idp(
    conn: &mut SqliteConnection,
    entity_id: &str,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM schools WHERE instr(' ' || idp_entity_ids || ' ', ' ' || ? || ' ') > 0 LIMIT 1",
    )
    .bind(entity_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}
