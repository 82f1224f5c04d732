//! Admin accounts, with Argon2id password hashes.

use crate::i18n::Lang;
use crate::resolve::AdminRole;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use sqlx::SqliteConnection;

/// Argon2id with m = 19456 KiB, t = 2, p = 1 (the OWASP minimum).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Creates an admin, or replaces the password, role and schools of an
/// existing one with the same e-mail.
pub async fn upsert(
    conn: &mut SqliteConnection,
    email: &str,
    password_hash: &str,
    role: AdminRole,
    schools: &[String],
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO admins (email, password_hash, role, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(email) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role
         RETURNING id",
    )
    .bind(email)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(super::now_text())
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM admin_schools WHERE admin_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let mut unique: Vec<&String> = schools.iter().collect();
    unique.sort();
    unique.dedup();
    for s in unique {
        sqlx::query("INSERT INTO admin_schools (admin_id, school_code) VALUES (?, ?)")
            .bind(id)
            .bind(s)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

/// Remembers the language an admin chose.
pub async fn set_lang(conn: &mut SqliteConnection, id: i64, lang: Lang) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE admins SET lang = ? WHERE id = ?")
        .bind(lang.code())
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}

/// An admin and what they may see.
#[derive(Debug, Clone)]
pub struct Admin {
    pub id: i64,
    pub email: String,
    pub role: AdminRole,
    pub password_hash: String,
    pub schools: Vec<String>,
    /// The language the admin chose on the desk, if any.
    pub lang: Option<Lang>,
}

impl Admin {
    pub fn scope(&self) -> super::Scope {
        super::Scope::of(self.role, &self.schools)
    }
}

async fn load(
    conn: &mut SqliteConnection,
    row: Option<sqlx::sqlite::SqliteRow>,
) -> Result<Option<Admin>, sqlx::Error> {
    use sqlx::Row;
    let Some(r) = row else { return Ok(None) };
    let id: i64 = r.get("id");
    let schools = sqlx::query_scalar(
        "SELECT school_code FROM admin_schools WHERE admin_id = ? ORDER BY school_code",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Admin {
        id,
        email: r.get("email"),
        // An unknown role sees nothing: the least privilege.
        role: AdminRole::parse(r.get("role")).unwrap_or(AdminRole::SchoolAdmin),
        password_hash: r.get("password_hash"),
        schools,
        lang: r
            .get::<Option<String>, _>("lang")
            .as_deref()
            .and_then(Lang::from_code),
    }))
}

pub async fn by_email(
    conn: &mut SqliteConnection,
    email: &str,
) -> Result<Option<Admin>, sqlx::Error> {
    let row =
        sqlx::query("SELECT id, email, role, password_hash, lang FROM admins WHERE email = ?")
            .bind(email.trim())
            .fetch_optional(&mut *conn)
            .await?;
    load(conn, row).await
}

pub async fn by_id(conn: &mut SqliteConnection, id: i64) -> Result<Option<Admin>, sqlx::Error> {
    let row = sqlx::query("SELECT id, email, role, password_hash, lang FROM admins WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    load(conn, row).await
}
