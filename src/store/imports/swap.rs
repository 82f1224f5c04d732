//! Large accounts imports without a long write lock. A million-row upsert
//! holds SQLite's one write lock for seconds, and every login waits behind
//! it. Instead, the next accounts table is built beside the live one
//! (`accounts_next_<token>`, a name of its own per build, with the same
//! columns, constraints and indexes), in short
//! transactions of [`CHUNK`] rows between which logins write; then one
//! short transaction swaps it in (`DROP TABLE accounts`, rename), which
//! costs the time to free the old table's pages, not to write a million
//! rows. Nothing is visible before the swap, so the import stays
//! all-or-nothing: a crash while building leaves the live table as it was
//! and a stray `accounts_next_…` that start-up drops (an error drops it at
//! once).
//!
//! The build reads accounts while it goes; the `generations` counter
//! (migration 0015: triggers on every change to accounts) read at the
//! start is checked again in the swap's transaction, so a change made
//! meanwhile by anyone (another process's import, the refold at start-up)
//! cancels the swap and the caller falls back to the direct upsert.

use super::count;
use crate::resolve::ImportKind;
use sqlx::{Row, SqliteConnection};

/// The names of the tables being built start so.
const NEXT: &str = "accounts_next_";
/// Rows per build transaction: a few milliseconds of write lock each.
pub const CHUNK: i64 = 5_000;

/// The value columns, in table order after `account_id`, without the dates:
/// the staged ones.
fn values() -> &'static [&'static str] {
    &super::columns(ImportKind::Accounts)[1..]
}

/// The accounts generation: moves with every change to accounts.
pub async fn generation(conn: &mut SqliteConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT n FROM generations WHERE name = 'accounts'")
        .fetch_one(&mut *conn)
        .await
}

/// Drops the tables of builds that did not finish (start-up: a crash, or
/// another process's build, which then fails without changing anything).
pub async fn discard_all(conn: &mut SqliteConnection) -> sqlx::Result<()> {
    let stray: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'accounts\\_next\\_%' ESCAPE '\\'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for table in stray {
        sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// `CREATE … <old name> ON <table>(rest)` rewritten with `head`: everything
/// from the first parenthesis is kept (columns, constraints, a partial
/// index's condition).
fn rewritten(sql: &str, head: &str) -> Option<String> {
    let open = sql.find('(')?;
    Some(format!("{head}{}", &sql[open..]))
}

/// An index's name on the next table: its base name and the build's token
/// (the live names are taken until the swap drops them).
fn index_name(name: &str, token: &str) -> String {
    let base = match name.rsplit_once("__") {
        Some((base, t)) if t.len() == TOKEN_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) => base,
        _ => name,
    };
    format!("{base}__{token}")
}

/// Hex digits of a build's token (64 bits: two builds never draw the same).
const TOKEN_LEN: usize = 16;

/// The triggers the swap puts back; with the columns the copy writes (the
/// staged ones and the two dates), what a schema must be for a swap: one
/// that differs (a later migration) is applied the direct way until this
/// module is taught it.
const TRIGGERS: [&str; 3] = [
    "accounts_generation_delete",
    "accounts_generation_insert",
    "accounts_generation_update",
];

/// One build of the next accounts table, under a name of its own.
pub struct Build {
    token: String,
    table: String,
}

impl Default for Build {
    fn default() -> Build {
        Build::new()
    }
}

impl Build {
    pub fn new() -> Build {
        let token = format!("{:016x}", rand::random::<u64>());
        Build {
            table: format!("{NEXT}{token}"),
            token,
        }
    }

    /// Creates the empty next table with the live table's definition and
    /// its indexes, read from the schema. False, with nothing created, when
    /// the accounts table is not the one this module copies (see
    /// [`TRIGGERS`]).
    pub async fn prepare(&self, conn: &mut SqliteConnection) -> sqlx::Result<bool> {
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('accounts') ORDER BY cid")
                .fetch_all(&mut *conn)
                .await?;
        let triggers: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'accounts' ORDER BY name",
        )
        .fetch_all(&mut *conn)
        .await?;
        // A view or another table's trigger naming accounts would make the
        // rename fail once the live table is dropped.
        let mentions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_schema WHERE (type = 'view' OR (type = 'trigger' AND tbl_name <> 'accounts')) AND sql LIKE '%accounts%'",
        )
        .fetch_one(&mut *conn)
        .await?;
        let expected: Vec<&str> = super::columns(ImportKind::Accounts)
            .iter()
            .copied()
            .chain(["created_at", "updated_at"])
            .collect();
        if columns != expected || triggers != TRIGGERS || mentions > 0 {
            tracing::warn!("the accounts schema is not the one a large import's swap copies: applied in one transaction (store::imports::swap)");
            return Ok(false);
        }
        let schema = sqlx::query(
            "SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = 'accounts' AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY type = 'index'",
        )
        .fetch_all(&mut *conn)
        .await?;
        for r in schema {
            let (kind, name, sql): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            let head = if kind == "table" {
                format!("CREATE TABLE \"{}\" ", self.table)
            } else {
                let unique = sql.to_ascii_uppercase().starts_with("CREATE UNIQUE");
                let unique = if unique { "UNIQUE " } else { "" };
                format!(
                    "CREATE {unique}INDEX \"{}\" ON \"{}\" ",
                    index_name(&name, &self.token),
                    self.table
                )
            };
            let create = rewritten(&sql, &head).ok_or_else(|| {
                sqlx::Error::Protocol(format!("accounts schema not understood: {sql}"))
            })?;
            sqlx::query(&create).execute(&mut *conn).await?;
        }
        Ok(true)
    }

    /// Drops this build's table.
    pub async fn discard(&self, conn: &mut SqliteConnection) -> sqlx::Result<()> {
        sqlx::query(&format!("DROP TABLE IF EXISTS \"{}\"", self.table))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Copies the next chunk of live accounts after `after` (in account ID
    /// order) into the next table, each merged with its staged row as the
    /// direct upsert would: a changed account takes the file's values and
    /// `now`, an unchanged one stays as it is, and with `replace_school` that
    /// school's active accounts missing from the file are deactivated. Returns
    /// the last account ID copied, `None` when there were none left.
    pub async fn copy_live(
        &self,
        conn: &mut SqliteConnection,
        after: &str,
        replace_school: Option<&str>,
        now: &str,
    ) -> sqlx::Result<Option<String>> {
        let last: Option<String> = sqlx::query_scalar(
            "SELECT MAX(account_id) FROM (SELECT account_id FROM accounts WHERE account_id > ? ORDER BY account_id LIMIT ?)",
        )
        .bind(after)
        .bind(CHUNK)
        .fetch_one(&mut *conn)
        .await?;
        let Some(last) = last else {
            return Ok(None);
        };
        let takes = format!("(t.account_id IS NOT NULL AND ({}))", differs());
        let missing = "(t.account_id IS NULL AND a.school_code = ?2 AND a.active = 1)";
        let cols = values()
            .iter()
            .map(|c| match *c {
                "active" => format!(
                    "CASE WHEN {takes} THEN CAST(t.active AS INTEGER) WHEN {missing} THEN 0 ELSE a.active END"
                ),
                c => format!("CASE WHEN {takes} THEN t.{c} ELSE a.{c} END"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(&format!(
            "INSERT INTO \"{}\" (account_id, {}, created_at, updated_at)
             SELECT a.account_id, {cols}, a.created_at, CASE WHEN {takes} OR {missing} THEN ?1 ELSE a.updated_at END
             FROM accounts a LEFT JOIN imp t ON t.account_id = a.account_id
             WHERE a.account_id > ?3 AND a.account_id <= ?4",
            self.table,
            values().join(", ")
        ))
        .bind(now)
        .bind(replace_school)
        .bind(after)
        .bind(&last)
        .execute(&mut *conn)
        .await?;
        Ok(Some(last))
    }

    /// Adds the staged rows with `after < rowid <= after + CHUNK` that are not
    /// live accounts (the new ones). Returns the next `after`, `None` past the
    /// last staged row.
    pub async fn copy_new(
        &self,
        conn: &mut SqliteConnection,
        after: i64,
        now: &str,
    ) -> sqlx::Result<Option<i64>> {
        let staged = count(conn, "SELECT COALESCE(MAX(rowid), 0) FROM imp", None).await? as i64;
        if after >= staged {
            return Ok(None);
        }
        let picked: Vec<String> = values()
            .iter()
            .map(|c| match *c {
                "active" => "CAST(t.active AS INTEGER)".to_string(),
                c => format!("t.{c}"),
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO \"{}\" (account_id, {}, created_at, updated_at)
             SELECT t.account_id, {}, ?1, ?1 FROM imp t
             WHERE t.rowid > ?2 AND t.rowid <= ?2 + ?3
               AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t.account_id)",
            self.table,
            values().join(", "),
            picked.join(", ")
        ))
        .bind(now)
        .bind(after)
        .bind(CHUNK)
        .execute(&mut *conn)
        .await?;
        Ok(Some(after + CHUNK))
    }

    /// Whether the next table holds every live account and the new ones: a
    /// check of the build before it replaces anything, in one read
    /// transaction. `None` when accounts moved since `generation_read`.
    pub async fn complete(
        &self,
        conn: &mut SqliteConnection,
        created: u64,
        generation_read: i64,
    ) -> sqlx::Result<Option<bool>> {
        use sqlx::Connection;
        let mut read = conn.begin().await?;
        if generation(&mut read).await? != generation_read {
            return Ok(None);
        }
        let complete = self.counts_match(&mut read, created).await?;
        read.commit().await?;
        Ok(Some(complete))
    }

    async fn counts_match(&self, conn: &mut SqliteConnection, created: u64) -> sqlx::Result<bool> {
        let live = count(conn, "SELECT COUNT(*) FROM accounts", None).await?;
        let next = self.rows(conn).await?;
        let lost = count(
            conn,
            &format!(
                "SELECT COUNT(*) FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM \"{}\" n WHERE n.account_id = a.account_id)",
                self.table
            ),
            None,
        )
        .await?;
        Ok(next == live + created && lost == 0)
    }

    /// Rows in the next table.
    async fn rows(&self, conn: &mut SqliteConnection) -> sqlx::Result<u64> {
        count(
            conn,
            &format!("SELECT COUNT(*) FROM \"{}\"", self.table),
            None,
        )
        .await
    }

    /// The swap, inside the caller's write transaction, on a connection whose
    /// foreign keys are off (dropping the live table must not delete through
    /// the mappings' reference; the next table holds every account, checked by
    /// [`Build::complete`]). False, with nothing changed,
    /// when accounts moved since `generation` was read.
    pub async fn swap(
        &self,
        conn: &mut SqliteConnection,
        generation_read: i64,
    ) -> sqlx::Result<bool> {
        if generation(conn).await? != generation_read {
            return Ok(false);
        }
        // The generation unchanged since [`Build::complete`] counted, its
        // counts still hold; the foreign keys must be off.
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?;
        if fk != 0 {
            return Err(sqlx::Error::Protocol(
                "the accounts swap found foreign keys on: nothing was changed".into(),
            ));
        }
        let triggers: Vec<String> = sqlx::query_scalar(
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'accounts' AND sql IS NOT NULL",
        )
        .fetch_all(&mut *conn)
        .await?;
        // The old table's pages go to the free list as they are (the bundled
        // SQLite's `secure_delete` is off): freeing them costs a walk of the
        // table, not a second write of it. README, "Large accounts imports",
        // says what that leaves in the file.
        sqlx::query("DROP TABLE accounts")
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE \"{}\" RENAME TO accounts",
            self.table
        ))
        .execute(&mut *conn)
        .await?;
        for t in triggers {
            sqlx::query(&t).execute(&mut *conn).await?;
        }
        sqlx::query("UPDATE generations SET n = n + 1 WHERE name = 'accounts'")
            .execute(&mut *conn)
            .await?;
        Ok(true)
    }
}

/// Whether a live account `a` differs from its staged row `t` (what the
/// direct upsert compares: the folded names follow the names).
fn differs() -> String {
    values()
        .iter()
        .filter(|c| !c.starts_with("folded_"))
        .map(|c| match *c {
            "active" => "a.active IS NOT CAST(t.active AS INTEGER)".to_string(),
            c => format!("a.{c} IS NOT t.{c}"),
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Notes, in a temporary table, the staged accounts that are new or differ
/// from the live ones (reads only, of the main database), and returns how
/// many: a large file that changes few is applied by upserting those only
/// (`imports::apply_marked_accounts`) rather than rebuilt.
pub async fn mark_changes(conn: &mut SqliteConnection) -> sqlx::Result<u64> {
    sqlx::query("DROP TABLE IF EXISTS temp.imp_todo")
        .execute(&mut *conn)
        .await?;
    sqlx::query("CREATE TEMP TABLE imp_todo (account_id TEXT PRIMARY KEY NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let marked = sqlx::query(&format!(
        "INSERT INTO temp.imp_todo (account_id) SELECT t.account_id FROM imp t LEFT JOIN accounts a ON a.account_id = t.account_id
         WHERE a.account_id IS NULL OR {}",
        differs()
    ))
    .execute(&mut *conn)
    .await?;
    Ok(marked.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_carry_the_build_token_on_their_base_name() {
        let (t1, t2) = ("0a1b2c3d4e5f6789", "ffff0000ffff0000");
        assert_eq!(
            index_name("accounts_identity", t1),
            format!("accounts_identity__{t1}")
        );
        assert_eq!(
            index_name(&format!("accounts_identity__{t1}"), t2),
            format!("accounts_identity__{t2}")
        );
        // A name of its own with `__` keeps it.
        assert_eq!(index_name("accounts__a", t1), format!("accounts__a__{t1}"));
    }

    #[test]
    fn a_definition_keeps_everything_from_its_first_parenthesis() {
        assert_eq!(
            rewritten(
                "CREATE INDEX accounts_x ON \"accounts\"(school_code, birth_date) WHERE active = 1",
                "CREATE INDEX \"accounts_x__b\" ON accounts_next "
            )
            .as_deref(),
            Some("CREATE INDEX \"accounts_x__b\" ON accounts_next (school_code, birth_date) WHERE active = 1")
        );
        assert_eq!(rewritten("CREATE TABLE nothing", "x"), None);
    }
}
