//! A returning user's login (an identity already mapped to an active
//! account) in one trip to the writer: what it needs is read first on a
//! reader, and its writes go to the writer as one list of statements
//! inside the writer's transaction, each re-checking what was read. A
//! re-check that fails undoes that login's statements (a savepoint), and
//! the login takes the full path, which decides and records alone.
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

/// The writes of a returning user's login, and what they re-check. Owned:
/// it travels to the writer's login queue (`Writer::write_returning`).
#[derive(Debug, Clone)]
pub struct ReturningLogin {
    /// The pending request answered, by ID, as it was read: consumed here,
    /// it must still be there, unexpired, and the same.
    pub pending: Option<(String, replay::Pending)>,
    pub issuer: String,
    pub assertion_id: String,
    /// Until when the assertion ID is remembered (it must be new).
    pub replay_until: i64,
    /// The mapping that carries the login: still there, to this account,
    /// still active, in this registered school.
    pub subject: String,
    pub account_id: String,
    pub school_code: String,
    /// The school trusts the IdP through its own `idp_entity_ids` (then
    /// re-checked), not through the IdP's configured `schools`.
    pub trust_listed: bool,
    /// The browser's previous session, ended.
    pub replaces: Option<String>,
    /// The session to open: the IdP session, and its longest life in
    /// seconds; `not_on_or_after` (Unix time), the IdP session's end, cuts
    /// it when the writer's turn comes (past it, the login goes the full
    /// way, which says the IdP session ended).
    pub session: Option<(sessions::IdpSession, i64, Option<i64>)>,
}

/// The statements of one login, each re-check an error when it fails (a
/// CHECK constraint on a temporary table), so that a stale read stops the
/// list at once; the caller undoes what ran before with its savepoint.
/// Returns the SQL and the steps its rows must name.
fn statements(w: &ReturningLogin) -> (String, Vec<&'static str>) {
    let mut sql: Vec<String> = vec!["SAVEPOINT returning_login".into()];
    let mut want = Vec::new();
    let check = |condition: &str| {
        format!("INSERT OR REPLACE INTO temp.login_checks (one, ok) SELECT 1, {condition}")
    };
    if w.pending.is_some() {
        sql.push(format!(
            "{} AND idp_entity_id = ? AND relay_state IS ? AND browser_hash IS ? {}",
            replay::TAKE_PENDING_WHERE,
            replay::TAKE_PENDING_RETURNING
        ));
        want.push("pending");
        sql.push(check("changes() = 1"));
    }
    // The primary key refuses a replay: an error too.
    sql.push(format!("{} RETURNING 'replay' AS step", replay::REMEMBER));
    want.push("replay");
    sql.push(check(&format!(
        "EXISTS (SELECT 1 FROM mappings m JOIN accounts a ON a.account_id = m.account_id
           JOIN schools ON schools.code = a.school_code
          WHERE m.idp_entity_id = ? AND m.subject = ? AND m.account_id = ? AND a.active = 1
            AND a.school_code = ? AND (? = 0 OR {}))",
        schools::LISTS_IDP
    )));
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
    sql.push("RELEASE returning_login".into());
    (sql.join(";\n"), want)
}

/// A re-check that failed (the CHECK) or an assertion already seen (the
/// primary key): the login's own refusal, not the database's trouble.
fn is_stale(e: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    e.as_database_error().is_some_and(|d| {
        matches!(
            d.kind(),
            ErrorKind::CheckViolation | ErrorKind::UniqueViolation
        )
    })
}

/// The table whose CHECK turns a failed re-check into an error: one row
/// at most, each check replacing the last (REPLACE resolves the key, never
/// the CHECK), so nothing piles up and nothing needs clearing.
const CHECKS: &str = "CREATE TEMP TABLE IF NOT EXISTS login_checks
   (one INTEGER PRIMARY KEY, ok INTEGER NOT NULL CHECK (ok = 1))";

/// A returning login written: the new session's token and life, when one
/// was asked.
pub type Written = Option<(String, i64)>;

/// Writes returning users' logins, in turn, inside the caller's
/// transaction, one trip each: for each, `Some` when every re-check held,
/// `None` when one did not (nothing of that login stays: the full way then
/// decides). An error other than a login's own voids the whole
/// transaction.
pub async fn write_returning(
    conn: &mut SqliteConnection,
    logins: &[&ReturningLogin],
) -> Result<Vec<Option<Written>>, sqlx::Error> {
    sqlx::query(CHECKS).execute(&mut *conn).await?;
    let now = chrono::Utc::now().timestamp();
    let mut out = Vec::with_capacity(logins.len());
    for &w in logins {
        let ttl = match &w.session {
            Some((_, max, end)) => match sessions::life(*max, *end, now) {
                Some(ttl) => Some(ttl),
                // The IdP session has ended: the full way says so.
                None => {
                    out.push(None);
                    continue;
                }
            },
            None => None,
        };
        let (sql, want) = statements(w);
        let mut q = sqlx::query(&sql);
        if let Some((id, p)) = &w.pending {
            q = q
                .bind(id)
                .bind(now)
                .bind(&p.idp_entity_id)
                .bind(&p.relay_state)
                .bind(&p.browser_hash);
        }
        q = q
            .bind(&w.issuer)
            .bind(&w.assertion_id)
            .bind(w.replay_until)
            .bind(&w.issuer)
            .bind(&w.subject)
            .bind(&w.account_id)
            .bind(&w.school_code)
            .bind(w.trust_listed)
            .bind(&w.issuer);
        if let Some(old) = &w.replaces {
            q = q.bind(sessions::hash_token(old));
        }
        let mut opened = None;
        if let (Some((idp_session, _, _)), Some(ttl)) = (&w.session, ttl) {
            let (token, bound) = sessions::bind_user(q, &w.account_id, idp_session, ttl, now);
            opened = Some((token, ttl));
            q = bound;
        }
        match q.fetch_all(&mut *conn).await {
            Ok(rows) => {
                let got: Vec<&str> = rows
                    .iter()
                    .map(|r| r.try_get::<&str, _>("step").unwrap_or("?"))
                    .collect();
                if got != want {
                    // Every re-check is an error: this cannot happen, and
                    // if it does, nothing of the batch is kept.
                    return Err(sqlx::Error::Protocol(format!(
                        "a returning login's statements gave {got:?}, not {want:?}"
                    )));
                }
                out.push(Some(opened));
            }
            Err(e) if super::is_unavailable(&e) => return Err(e),
            Err(e) => {
                // A re-check failed (or the assertion was seen), or this
                // login's own statement did: undo its statements, the
                // others stand, and the full way decides.
                if !is_stale(&e) {
                    tracing::warn!(error = %e, "a returning login goes the full way");
                }
                sqlx::query("ROLLBACK TO returning_login; RELEASE returning_login")
                    .execute(&mut *conn)
                    .await?;
                out.push(None);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    const IDP: &str = "https://idp.test/saml";

    async fn memory() -> sqlx::SqlitePool {
        let pool = crate::store::memory().await;
        for sql in [
            "INSERT INTO schools (code, name, created_at, updated_at, idp_entity_ids) VALUES ('0751234J', 'A', '', '', 'https://idp.test/saml')",
            "INSERT INTO accounts (account_id, school_code, last_name, first_name, role, folded_last, folded_first, created_at, updated_at) VALUES ('A-1', '0751234J', 'X', 'Y', 'student', 'x', 'y', '', '')",
            "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at) VALUES ('https://idp.test/saml', 'sub', 'A-1', 'admin', '')",
            "INSERT INTO pending_requests (id, idp_entity_id, expires_at) VALUES ('_req', 'https://idp.test/saml', 4000000000)",
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

    /// Writes logins in one transaction, committed.
    async fn write(pool: &sqlx::SqlitePool, logins: &[&ReturningLogin]) -> Vec<Option<Written>> {
        let mut conn = pool.acquire().await.expect("conn");
        let mut tx = conn.begin().await.expect("tx");
        let done = write_returning(&mut tx, logins).await.expect("write");
        tx.commit().await.expect("commit");
        done
    }

    /// One login's outcome.
    async fn one(pool: &sqlx::SqlitePool, login: &ReturningLogin) -> Option<Written> {
        write(pool, &[login]).await.remove(0)
    }

    async fn count(pool: &sqlx::SqlitePool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn a_login_writes_together_and_each_re_check_voids_it_all() {
        let read = replay::Pending {
            idp_entity_id: IDP.into(),
            relay_state: None,
            browser_hash: None,
        };
        let login = |assertion_id: &str| ReturningLogin {
            pending: Some(("_req".into(), read.clone())),
            issuer: IDP.into(),
            assertion_id: assertion_id.into(),
            replay_until: 3000,
            subject: "sub".into(),
            account_id: "A-1".into(),
            school_code: "0751234J".into(),
            trust_listed: true,
            replaces: None,
            session: Some((idp_session(), 600, None)),
        };
        // Each stale read, one at a time: nothing is written.
        let pool = memory().await;
        let stale: [(&str, &str); 5] = [
            ("UPDATE accounts SET active = 0", "UPDATE accounts SET active = 1"),
            ("DELETE FROM mappings", "INSERT INTO mappings (idp_entity_id, subject, account_id, source, created_at) VALUES ('https://idp.test/saml', 'sub', 'A-1', 'admin', '')"),
            ("UPDATE schools SET idp_entity_ids = ''", "UPDATE schools SET idp_entity_ids = 'https://idp.test/saml'"),
            ("UPDATE pending_requests SET expires_at = 1000", "UPDATE pending_requests SET expires_at = 4000000000"),
            ("INSERT INTO seen_assertions VALUES ('https://idp.test/saml', '_a1', 3000)", "DELETE FROM seen_assertions"),
        ];
        for (spoil, mend) in stale {
            sqlx::query(spoil).execute(&pool).await.expect(spoil);
            assert_eq!(one(&pool, &login("_a1")).await, None, "{spoil}");
            assert_eq!(count(&pool, "sessions").await, 0, "{spoil}");
            assert_eq!(count(&pool, "pending_requests").await, 1, "{spoil}");
            sqlx::query(mend).execute(&pool).await.expect(mend);
        }
        assert_eq!(count(&pool, "seen_assertions").await, 0);
        // A request that is not the one read (another IdP's) is not taken;
        // nor is a login whose IdP session has ended.
        let mut not_read = login("_a1");
        not_read.pending = Some((
            "_req".into(),
            replay::Pending {
                idp_entity_id: "https://other.test".into(),
                ..read.clone()
            },
        ));
        let mut ended = login("_a1");
        ended.session = Some((idp_session(), 600, Some(1000)));
        assert_eq!(write(&pool, &[&not_read, &ended]).await, vec![None, None]);
        assert_eq!(count(&pool, "pending_requests").await, 1);
        assert_eq!(count(&pool, "seen_assertions").await, 0);
        // All fresh: it is all written; in the same batch a replay of it is
        // undone alone, an identity mapped to no account fails its check
        // alone, and an unsolicited one (no request) stands after them.
        let mut unsolicited = login("_a3");
        unsolicited.pending = None;
        let mut unmapped = login("_a5");
        unmapped.pending = None;
        unmapped.subject = "nobody".into();
        let (first, again) = (login("_a1"), login("_a1"));
        let done = write(&pool, &[&first, &again, &unmapped, &unsolicited]).await;
        assert_eq!(done[1], None, "the replay in the same batch");
        assert_eq!(done[2], None, "the unmapped identity");
        let (token, ttl) = done[0].clone().expect("held").expect("a session");
        assert_eq!(ttl, 600);
        assert!(done[3].is_some());
        assert_eq!(count(&pool, "sessions").await, 2);
        assert_eq!(count(&pool, "seen_assertions").await, 2);
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
        let mut again = login("_a2");
        again.pending = None;
        again.trust_listed = false;
        again.replaces = Some(token.clone());
        let (second, _) = one(&pool, &again).await.expect("held").expect("a session");
        assert_ne!(second, token);
        assert_eq!(count(&pool, "sessions").await, 2, "the old one ended");
    }
}
