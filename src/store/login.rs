//! Returning users' logins (identities already mapped to an active
//! account), written together: what each needs is read first on a reader;
//! then the writer runs, in one trip to its connection, one list of
//! statements for all the logins waiting: `BEGIN IMMEDIATE`, for each
//! login its re-checks of what was read and its writes, each write done
//! only when the re-checks held, and `COMMIT`. A login whose re-checks did
//! not hold writes nothing and takes the full path, which decides and
//! records alone; the others stand.
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

/// Logins in one transaction at most: a batch's list holds a power of two
/// of slots up to this (`slots`), so that a few lists, each prepared once,
/// serve every batch size.
pub const MAX_BATCH: usize = 64;
const _: () = assert!(MAX_BATCH.is_power_of_two());

/// The one-row table a login's re-checks are written to, and its writes
/// read: `ok` is 1 when every re-check held. Each login replaces the row,
/// so nothing piles up and nothing needs clearing.
const HELD: &str =
    "CREATE TEMP TABLE IF NOT EXISTS login_held (one INTEGER PRIMARY KEY, ok INTEGER NOT NULL)";

/// The statements of one login's slot, the same text for every login (what
/// a login does not need is bound to nothing: no request, no session to
/// end or to open; an unused slot is not `present`). First the re-checks,
/// all reads, into `login_held`: the request is still there, unexpired and
/// the same as read; the assertion is new; the mapping is still there, to
/// this account, active, in this registered school that still lists the
/// IdP when its trust came from the list. Then each write, only when they
/// held: the request consumed, the assertion remembered, the previous
/// session ended, the new one opened. Last the outcome, one row.
fn slot() -> String {
    let ok = "(SELECT ok FROM temp.login_held)";
    [
        format!(
            "INSERT OR REPLACE INTO temp.login_held (one, ok) SELECT 1, EXISTS (SELECT 1 WHERE ?
               AND (? IS NULL OR EXISTS (SELECT 1 FROM pending_requests WHERE id = ? AND expires_at > ?
                      AND idp_entity_id = ? AND relay_state IS ? AND browser_hash IS ?))
               AND NOT EXISTS (SELECT 1 FROM seen_assertions WHERE idp_entity_id = ? AND assertion_id = ?)
               AND EXISTS (SELECT 1 FROM mappings m JOIN accounts a ON a.account_id = m.account_id
                      JOIN schools ON schools.code = a.school_code
                     WHERE m.idp_entity_id = ? AND m.subject = ? AND m.account_id = ? AND a.active = 1
                       AND a.school_code = ? AND (? = 0 OR {})))",
            schools::LISTS_IDP
        ),
        format!("DELETE FROM pending_requests WHERE id = ? AND {ok}"),
        format!("{} SELECT ?, ?, ? WHERE {ok}", replay::REMEMBER_INTO),
        format!("{} AND {ok}", sessions::DELETE),
        format!("{} WHERE ? AND {ok}", sessions::INSERT_USER_SELECT),
        "SELECT ok AS held FROM temp.login_held".into(),
    ]
    .join(";\n")
}

/// The slots of the list a batch of `n` logins (1 to `MAX_BATCH`) runs
/// in: the next power of two.
fn slots(n: usize) -> usize {
    n.next_power_of_two().min(MAX_BATCH)
}

/// The list for `slots` logins, built once: its own write transaction,
/// begun and committed in the same trip to the connection.
fn batch_sql(slots: usize) -> &'static str {
    static LISTS: [std::sync::OnceLock<String>; MAX_BATCH.trailing_zeros() as usize + 1] =
        [const { std::sync::OnceLock::new() }; MAX_BATCH.trailing_zeros() as usize + 1];
    LISTS[slots.trailing_zeros() as usize].get_or_init(|| {
        let one = slot();
        let mut sql = vec!["BEGIN IMMEDIATE".to_string(), HELD.to_string()];
        sql.extend(std::iter::repeat_n(one, slots));
        sql.push("COMMIT".into());
        sql.join(";\n")
    })
}

/// A returning login written: the new session's token and life, when one
/// was asked.
pub type Written = Option<(String, i64)>;

/// Binds one slot's values onto `q`: `login`'s, or nothing (an unused
/// slot). Returns the session opened when the re-checks hold.
fn bind_slot<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    login: Option<(&'q ReturningLogin, Option<i64>)>,
    now: i64,
) -> (
    sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    Written,
) {
    let none = None::<&str>;
    let Some((w, ttl)) = login else {
        q = q.bind(false).bind(none).bind(none).bind(now);
        for _ in 0..16 {
            q = q.bind(none);
        }
        for _ in 0..sessions::USER_VALUES {
            q = q.bind(none);
        }
        return (q.bind(false), None);
    };
    let pending_id = w.pending.as_ref().map(|(id, _)| id.as_str());
    let read = w.pending.as_ref().map(|(_, p)| p);
    q = q
        .bind(true)
        .bind(pending_id)
        .bind(pending_id)
        .bind(now)
        .bind(read.map(|p| p.idp_entity_id.as_str()))
        .bind(read.and_then(|p| p.relay_state.as_deref()))
        .bind(read.and_then(|p| p.browser_hash.as_deref()))
        .bind(&w.issuer)
        .bind(&w.assertion_id)
        .bind(&w.issuer)
        .bind(&w.subject)
        .bind(&w.account_id)
        .bind(&w.school_code)
        .bind(w.trust_listed)
        .bind(&w.issuer)
        .bind(pending_id)
        .bind(&w.issuer)
        .bind(&w.assertion_id)
        .bind(w.replay_until)
        .bind(w.replaces.as_deref().map(sessions::hash_token));
    match (&w.session, ttl) {
        (Some((idp_session, _, _)), Some(ttl)) => {
            let (token, bound) = sessions::bind_user(q, &w.account_id, idp_session, ttl, now);
            (bound.bind(true), Some((token, ttl)))
        }
        _ => {
            for _ in 0..sessions::USER_VALUES {
                q = q.bind(none);
            }
            (q.bind(false), None)
        }
    }
}

/// A batch's list with every slot's values bound (`logins` first, then
/// unused slots), and the session each login opens when its re-checks
/// hold (`None`: the login is not written, its IdP session has ended).
fn bind_batch<'q>(
    logins: &[&'q ReturningLogin],
    now: i64,
) -> (
    sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    Vec<Option<Written>>,
) {
    let slots = slots(logins.len());
    let mut q = sqlx::query(batch_sql(slots));
    let mut opened = Vec::with_capacity(logins.len());
    for i in 0..slots {
        let login = logins.get(i).map(|&w| {
            let ttl = w
                .session
                .as_ref()
                .map(|(_, max, end)| sessions::life(*max, *end, now));
            (w, ttl)
        });
        // An IdP session that has ended: the full way says so.
        let live = login.filter(|(_, ttl)| !matches!(ttl, Some(None)));
        let (bound, written) = bind_slot(q, live.map(|(w, ttl)| (w, ttl.flatten())), now);
        q = bound;
        if login.is_some() {
            opened.push(live.map(|_| written));
        }
    }
    (q, opened)
}

/// Writes returning users' logins (at most `MAX_BATCH`) in one write
/// transaction of their own, begun, written and committed in one trip to
/// the connection: for each login, `Some` when every re-check held, `None`
/// when one did not (nothing of that login is written: the full way then
/// decides). `conn` must not be inside a transaction.
///
/// An error of the list voids the transaction, all of its logins (they
/// then answer as the full way would on that error): it is rolled back,
/// and a connection that cannot say it is out of it is closed (the pool
/// opens another), so that one failed batch never poisons the next
/// writer. Outcomes that do not match the batch after its commit (which
/// the tests rule out) are an error too, though its logins stay written.
pub async fn write_returning(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    logins: &[&ReturningLogin],
) -> Result<Vec<Option<Written>>, sqlx::Error> {
    if logins.len() > MAX_BATCH {
        return Err(sqlx::Error::Protocol(format!(
            "{} returning logins in one batch, more than {MAX_BATCH}",
            logins.len()
        )));
    }
    if logins.is_empty() {
        return Ok(Vec::new());
    }
    let (q, opened) = bind_batch(logins, chrono::Utc::now().timestamp());
    let rows = match q.fetch_all(&mut **conn).await {
        Ok(rows) => rows,
        Err(e) => {
            undo(conn).await;
            return Err(e);
        }
    };
    let held: Result<Vec<bool>, _> = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("held").map(|h| h == 1))
        .collect();
    match held {
        Ok(held) if held.len() == slots(logins.len()) => Ok(opened
            .into_iter()
            .zip(held)
            .map(|(written, held)| written.filter(|_| held))
            .collect()),
        // Committed, but not as written (the list and its binding are
        // checked by the tests; this cannot happen): say so rather than
        // guess which logins held. Not the full way either, which would
        // record the committed ones as replays.
        other => Err(sqlx::Error::Protocol(format!(
            "a batch of {} returning logins was committed, but its outcomes ({:?}) do not match it",
            logins.len(),
            other.map(|h| h.len())
        ))),
    }
}

/// Ends the transaction a failed list may have left open; a connection
/// that is still inside one afterwards (its rollback failed) is closed
/// rather than handed to the next writer.
async fn undo(conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>) {
    let _ = sqlx::query("ROLLBACK").execute(&mut **conn).await;
    // `BEGIN` fails inside a transaction: this one tells it is over.
    if sqlx::query("BEGIN; ROLLBACK")
        .execute(&mut **conn)
        .await
        .is_err()
    {
        conn.close_on_drop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        write_returning(&mut conn, logins).await.expect("write")
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
            ..unsolicited(assertion_id)
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

    fn unsolicited(assertion_id: &str) -> ReturningLogin {
        ReturningLogin {
            pending: None,
            issuer: IDP.into(),
            assertion_id: assertion_id.into(),
            replay_until: 3000,
            subject: "sub".into(),
            account_id: "A-1".into(),
            school_code: "0751234J".into(),
            trust_listed: true,
            replaces: None,
            session: Some((idp_session(), 600, None)),
        }
    }

    #[tokio::test]
    async fn every_batch_size_fills_its_slots_and_a_longer_one_is_refused_whole() {
        let pool = memory().await;
        // Sizes that fill their list, leave slots unused, and pass it.
        let mut n = 0;
        for size in [1, 3, 4, 5, 17, MAX_BATCH] {
            let logins: Vec<ReturningLogin> = (0..size)
                .map(|i| unsolicited(&format!("_s{size}_{i}")))
                .collect();
            let refs: Vec<&ReturningLogin> = logins.iter().collect();
            let done = write(&pool, &refs).await;
            assert_eq!(done.len(), size);
            assert!(done.iter().all(|d| d.as_ref().is_some_and(|s| s.is_some())));
            n += size as i64;
            assert_eq!(count(&pool, "sessions").await, n, "size {size}");
            assert_eq!(count(&pool, "seen_assertions").await, n, "size {size}");
        }
        let logins: Vec<ReturningLogin> = (0..=MAX_BATCH)
            .map(|i| unsolicited(&format!("_long{i}")))
            .collect();
        let refs: Vec<&ReturningLogin> = logins.iter().collect();
        let mut conn = pool.acquire().await.expect("conn");
        assert!(write_returning(&mut conn, &refs).await.is_err());
        drop(conn);
        assert_eq!(count(&pool, "seen_assertions").await, n, "nothing of it");
        // No session asked: the assertion is remembered, no session opened.
        let mut quiet = unsolicited("_quiet");
        quiet.session = None;
        assert_eq!(one(&pool, &quiet).await, Some(None));
        assert_eq!(count(&pool, "sessions").await, n);
        assert_eq!(count(&pool, "seen_assertions").await, n + 1);
    }

    #[tokio::test]
    async fn a_batch_that_fails_leaves_nothing_and_the_connection_writes_again() {
        let pool = memory().await;
        // The same (only) connection as the batch: a statement of the
        // second login fails with an error that is no re-check's.
        sqlx::query(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON seen_assertions WHEN NEW.assertion_id = '_boom'
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .execute(&pool)
        .await
        .expect("trigger");
        let (first, boom) = (unsolicited("_ok"), unsolicited("_boom"));
        let mut conn = pool.acquire().await.expect("conn");
        let e = write_returning(&mut conn, &[&first, &boom])
            .await
            .expect_err("the batch fails");
        assert!(e.to_string().contains("boom"), "{e}");
        drop(conn);
        assert_eq!(
            count(&pool, "sessions").await,
            0,
            "the first login undone too"
        );
        assert_eq!(count(&pool, "seen_assertions").await, 0);
        // Out of the transaction: the next batch is written.
        assert!(one(&pool, &first).await.is_some());
        assert_eq!(count(&pool, "sessions").await, 1);
    }

    /// Values are bound by position across the list's statements, and a
    /// value missing or extra is not an error: each slot binds exactly its
    /// placeholders, whether it holds a login, one without a request or a
    /// session, or nothing.
    #[test]
    fn each_slot_binds_exactly_its_placeholders() {
        use sqlx::{Arguments, Execute};
        let placeholders = slot().matches('?').count();
        assert_eq!(placeholders, 34);
        let mut bare = unsolicited("_bare");
        bare.session = None;
        let full = ReturningLogin {
            pending: Some((
                "_req".into(),
                replay::Pending {
                    idp_entity_id: IDP.into(),
                    relay_state: Some("r".into()),
                    browser_hash: Some("b".into()),
                },
            )),
            replaces: Some("old".into()),
            ..unsolicited("_full")
        };
        for logins in [vec![&full], vec![&full, &bare, &full], vec![&bare]] {
            let (mut q, opened) = bind_batch(&logins, 1000);
            let slots = slots(logins.len());
            let bound = q.take_arguments().expect("args").expect("bound").len();
            assert_eq!(bound, slots * placeholders, "{} logins", logins.len());
            assert_eq!(batch_sql(slots).matches('?').count(), bound);
            assert_eq!(opened.len(), logins.len());
        }
    }
}
