//! A returning user's login (an identity already mapped to an active
//! account) in one trip to the writer: what it needs is read first on a
//! reader, and its writes go to the writer as one list of statements
//! inside the caller's transaction, each re-checking what was read. Any
//! re-check that fails makes the whole list void (the caller rolls back and
//! takes the full path, which decides and records alone).
//!
//! The statements are those of `replay` and `sessions`, composed.

use super::{replay, schools, sessions};
use sqlx::{Row, SqliteConnection};

/// The account an identity is mapped to, read in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedAccount {
    pub account_id: String,
    pub school_code: String,
    pub active: bool,
}

/// The account `subject` at `idp` is mapped to, if any.
pub async fn mapped_account(
    conn: &mut SqliteConnection,
    idp: &str,
    subject: &str,
) -> Result<Option<MappedAccount>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT a.account_id, a.school_code, a.active FROM mappings m
           JOIN accounts a ON a.account_id = m.account_id
          WHERE m.idp_entity_id = ? AND m.subject = ?",
    )
    .bind(idp)
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| MappedAccount {
        account_id: r.get(0),
        school_code: r.get(1),
        active: r.get::<i64, _>(2) != 0,
    }))
}

/// The writes of a returning user's login, and what they re-check.
pub struct ReturningLogin<'a> {
    /// The pending request answered, by ID, as it was read: consumed here,
    /// it must still be there, unexpired at `now`, and the same.
    pub pending: Option<(&'a str, &'a replay::Pending)>,
    pub now: i64,
    pub issuer: &'a str,
    pub assertion_id: &'a str,
    /// Until when the assertion ID is remembered (it must be new).
    pub replay_until: i64,
    /// The mapping that carries the login: still there, to this account,
    /// still active, in this registered school.
    pub subject: &'a str,
    pub account_id: &'a str,
    pub school_code: &'a str,
    /// The school trusts the IdP through its own `idp_entity_ids` (then
    /// re-checked), not through the IdP's configured `schools`.
    pub trust_listed: bool,
    /// The browser's previous session, ended.
    pub replaces: Option<&'a str>,
    /// The session to open: the IdP session and its life in seconds.
    pub session: Option<(&'a sessions::IdpSession, i64)>,
}

/// Writes a returning user's login. `Some(token)` (the new session's, if
/// one was asked) when every re-check held; `None` when one did not: the
/// caller must roll the transaction back.
pub async fn write_returning(
    conn: &mut SqliteConnection,
    w: &ReturningLogin<'_>,
) -> Result<Option<Option<String>>, sqlx::Error> {
    // Each statement gives one row when it holds, named by its `step`.
    let mut sql: Vec<String> = Vec::new();
    let mut want: Vec<&str> = Vec::new();
    if w.pending.is_some() {
        sql.push(replay::TAKE_PENDING.into());
        want.push("pending");
    }
    sql.push(format!("{} RETURNING 'replay' AS step", replay::REMEMBER));
    want.push("replay");
    sql.push(format!(
        "SELECT 'mapping' AS step FROM mappings m JOIN accounts a ON a.account_id = m.account_id
           JOIN schools ON schools.code = a.school_code
          WHERE m.idp_entity_id = ? AND m.subject = ? AND m.account_id = ? AND a.active = 1
            AND a.school_code = ? AND (? = 0 OR {})",
        schools::LISTS_IDP
    ));
    want.push("mapping");
    if w.replaces.is_some() {
        sql.push(sessions::DELETE.into());
    }
    if w.session.is_some() {
        sql.push(format!(
            "{} RETURNING 'session' AS step",
            sessions::INSERT_USER
        ));
        want.push("session");
    }
    let sql = sql.join(";\n");
    let mut q = sqlx::query(&sql);
    if let Some((id, _)) = w.pending {
        q = q.bind(id).bind(w.now);
    }
    q = q
        .bind(w.issuer)
        .bind(w.assertion_id)
        .bind(w.replay_until)
        .bind(w.issuer)
        .bind(w.subject)
        .bind(w.account_id)
        .bind(w.school_code)
        .bind(w.trust_listed)
        .bind(w.issuer);
    if let Some(old) = w.replaces {
        q = q.bind(sessions::hash_token(old));
    }
    let mut token = None;
    if let Some((idp_session, ttl)) = w.session {
        let (t, bound) = sessions::bind_user(q, w.account_id, idp_session, ttl);
        token = Some(t);
        q = bound;
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let got: Vec<&str> = rows
        .iter()
        .map(|r| r.try_get::<&str, _>("step").unwrap_or("?"))
        .collect();
    if got != want {
        return Ok(None);
    }
    // The consumed request (then the first row) is the one read: its rows
    // are never updated, this only keeps it so.
    let same = match w.pending {
        Some((_, read)) => replay::pending_of(&rows[0]) == *read,
        None => true,
    };
    Ok(same.then_some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    const IDP: &str = "https://idp.test/saml";

    async fn memory() -> sqlx::SqlitePool {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("memory db");
        crate::store::migrate(&pool).await.expect("migrations");
        for sql in [
            "INSERT INTO schools (code, name, created_at, updated_at, idp_entity_ids) VALUES ('0751234J', 'A', '', '', 'https://idp.test/saml')",
            "INSERT INTO accounts (account_id, school_code, last_name, first_name, role, folded_last, folded_first, created_at, updated_at) VALUES ('A-1', '0751234J', 'X', 'Y', 'student', 'x', 'y', '', '')",
            "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at) VALUES ('https://idp.test/saml', 'sub', 'A-1', 'admin', '')",
            "INSERT INTO pending_requests (id, idp_entity_id, expires_at) VALUES ('_req', 'https://idp.test/saml', 2000)",
        ] {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        pool
    }

    fn idp_session() -> sessions::IdpSession {
        sessions::IdpSession {
            idp_entity_id: IDP.into(),
            name_id: Some("sub".into()),
            name_id_format: None,
            name_qualifier: None,
            sp_name_qualifier: None,
            session_index: Some("s1".into()),
        }
    }

    /// Writes the login in a transaction, committed when it held.
    async fn write(pool: &sqlx::SqlitePool, w: &ReturningLogin<'_>) -> Option<Option<String>> {
        let mut conn = pool.acquire().await.expect("conn");
        let mut tx = conn.begin().await.expect("tx");
        let done = write_returning(&mut tx, w).await.expect("write");
        if done.is_some() {
            tx.commit().await.expect("commit");
        }
        done
    }

    async fn count(pool: &sqlx::SqlitePool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn a_login_writes_together_and_each_re_check_voids_it_all() {
        let s = idp_session();
        let read = replay::Pending {
            idp_entity_id: IDP.into(),
            relay_state: None,
            browser_hash: None,
        };
        let login = |assertion_id| ReturningLogin {
            pending: Some(("_req", &read)),
            now: 1000,
            issuer: IDP,
            assertion_id,
            replay_until: 3000,
            subject: "sub",
            account_id: "A-1",
            school_code: "0751234J",
            trust_listed: true,
            replaces: None,
            session: Some((&s, 600)),
        };
        // Each stale read, one at a time: nothing is written.
        let pool = memory().await;
        let stale: [(&str, &str); 5] = [
            ("UPDATE accounts SET active = 0", "UPDATE accounts SET active = 1"),
            ("DELETE FROM mappings", "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at) VALUES ('https://idp.test/saml', 'sub', 'A-1', 'admin', '')"),
            ("UPDATE schools SET idp_entity_ids = ''", "UPDATE schools SET idp_entity_ids = 'https://idp.test/saml'"),
            ("UPDATE pending_requests SET expires_at = 1000", "UPDATE pending_requests SET expires_at = 2000"),
            ("INSERT INTO seen_assertions VALUES ('https://idp.test/saml', '_a1', 3000)", "DELETE FROM seen_assertions"),
        ];
        for (spoil, mend) in stale {
            sqlx::query(spoil).execute(&pool).await.expect(spoil);
            assert_eq!(write(&pool, &login("_a1")).await, None, "{spoil}");
            assert_eq!(count(&pool, "sessions").await, 0, "{spoil}");
            assert_eq!(count(&pool, "pending_requests").await, 1, "{spoil}");
            sqlx::query(mend).execute(&pool).await.expect(mend);
        }
        assert_eq!(count(&pool, "seen_assertions").await, 0);
        // A request that is not the one read (another IdP's) is not taken.
        let other = replay::Pending {
            idp_entity_id: "https://other.test".into(),
            ..read.clone()
        };
        let not_read = ReturningLogin {
            pending: Some(("_req", &other)),
            ..login("_a1")
        };
        assert_eq!(write(&pool, &not_read).await, None);
        assert_eq!(count(&pool, "pending_requests").await, 1);
        // All fresh: one commit writes it all.
        let token = write(&pool, &login("_a1"))
            .await
            .expect("held")
            .expect("a session");
        assert_eq!(count(&pool, "sessions").await, 1);
        assert_eq!(count(&pool, "seen_assertions").await, 1);
        assert_eq!(
            count(&pool, "pending_requests").await,
            0,
            "the request consumed"
        );
        let principal: String =
            sqlx::query_scalar("SELECT principal FROM sessions WHERE token_hash = ?")
                .bind(sessions::hash_token(&token))
                .fetch_one(&pool)
                .await
                .expect("session");
        assert_eq!(principal, "A-1");
        // Trusted by configuration: the school's list is not consulted; the
        // browser's previous session ends.
        sqlx::query("UPDATE schools SET idp_entity_ids = ''")
            .execute(&pool)
            .await
            .expect("unlist");
        let again = ReturningLogin {
            pending: None,
            trust_listed: false,
            replaces: Some(&token),
            ..login("_a2")
        };
        let second = write(&pool, &again)
            .await
            .expect("held")
            .expect("a session");
        assert_ne!(second, token);
        assert_eq!(count(&pool, "sessions").await, 1, "the old one ended");
        // The same assertion again is a replay.
        assert_eq!(
            write(
                &pool,
                &ReturningLogin {
                    pending: None,
                    trust_listed: false,
                    ..login("_a2")
                }
            )
            .await,
            None
        );
    }
}
