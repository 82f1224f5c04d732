//! Large accounts imports without a long write lock. A million-row upsert
//! holds SQLite's one write lock for seconds, and every login waits behind
//! it. Instead, the next accounts table is built beside the live one
//! (`accounts_next`, same columns, constraints and indexes), in short
//! transactions of [`CHUNK`] rows between which logins write; then one
//! short transaction swaps it in (`DROP TABLE accounts`, rename), which
//! costs the time to free the old table's pages, not to write a million
//! rows. Nothing is visible before the swap, so the import stays
//! all-or-nothing: a crash while building leaves the live table as it was
//! and a stray `accounts_next` that the next import (or start-up) drops.
//!
//! The build reads accounts while it goes; the `generations` counter
//! (migration 0015: triggers on every change to accounts) read at the
//! start is checked again in the swap's transaction, so a change made
//! meanwhile by anyone (another process's import, the refold at start-up)
//! cancels the swap and the caller falls back to the direct upsert.

use super::count;
use sqlx::{Row, SqliteConnection};

/// The table being built.
const NEXT: &str = "accounts_next";
/// Rows per build transaction: a few milliseconds of write lock each.
pub const CHUNK: i64 = 5_000;

/// The value columns, in table order after `account_id`, without the dates.
const VALUES: [&str; 10] = [
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
];

/// The accounts generation: moves with every change to accounts.
pub async fn generation(conn: &mut SqliteConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT n FROM generations WHERE name = 'accounts'")
        .fetch_one(&mut *conn)
        .await
}

/// Drops a table left by a build that did not finish.
pub async fn discard(conn: &mut SqliteConnection) -> sqlx::Result<()> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {NEXT}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An index's name on the next table: the live names are taken until the
/// swap drops them, so the names alternate between two forms.
fn next_index_name(name: &str) -> String {
    match name.strip_suffix("__b") {
        Some(base) => base.to_string(),
        None => format!("{name}__b"),
    }
}

/// `CREATE … <old name> ON <table>(rest)` rewritten to create the same on
/// `table` under `name`: everything from the first parenthesis is kept
/// (columns, constraints, a partial index's condition).
fn rewritten(sql: &str, head: &str) -> Option<String> {
    let open = sql.find('(')?;
    Some(format!("{head}{}", &sql[open..]))
}

/// Creates the empty next table with the live table's definition and its
/// indexes (read from the schema, so a later migration's index is carried
/// over too), after dropping a stray one.
pub async fn prepare(conn: &mut SqliteConnection) -> sqlx::Result<()> {
    discard(conn).await?;
    let schema = sqlx::query(
        "SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = 'accounts' AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY type = 'index'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for r in schema {
        let (kind, name, sql): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let head = if kind == "table" {
            format!("CREATE TABLE {NEXT} ")
        } else {
            let unique = sql.to_ascii_uppercase().starts_with("CREATE UNIQUE");
            let unique = if unique { "UNIQUE " } else { "" };
            format!(
                "CREATE {unique}INDEX \"{}\" ON {NEXT} ",
                next_index_name(&name)
            )
        };
        let create = rewritten(&sql, &head).ok_or_else(|| {
            sqlx::Error::Protocol(format!("accounts schema not understood: {sql}"))
        })?;
        sqlx::query(&create).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Whether a live account `a` differs from its staged row `t` (what the
/// direct upsert compares: the folded names follow the names).
fn differs() -> String {
    VALUES
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

/// Copies the next chunk of live accounts after `after` (in account ID
/// order) into the next table, each merged with its staged row as the
/// direct upsert would: a changed account takes the file's values and
/// `now`, an unchanged one stays as it is, and with `replace_school` that
/// school's active accounts missing from the file are deactivated. Returns
/// the last account ID copied, `None` when there were none left.
pub async fn copy_live(
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
    let cols = VALUES
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
        "INSERT INTO {NEXT} (account_id, {}, created_at, updated_at)
         SELECT a.account_id, {cols}, a.created_at, CASE WHEN {takes} OR {missing} THEN ?1 ELSE a.updated_at END
         FROM accounts a LEFT JOIN imp t ON t.account_id = a.account_id
         WHERE a.account_id > ?3 AND a.account_id <= ?4",
        VALUES.join(", ")
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
    conn: &mut SqliteConnection,
    after: i64,
    now: &str,
) -> sqlx::Result<Option<i64>> {
    let staged = count(conn, "SELECT COALESCE(MAX(rowid), 0) FROM imp", None).await? as i64;
    if after >= staged {
        return Ok(None);
    }
    let values: Vec<String> = VALUES
        .iter()
        .map(|c| match *c {
            "active" => "CAST(t.active AS INTEGER)".to_string(),
            c => format!("t.{c}"),
        })
        .collect();
    sqlx::query(&format!(
        "INSERT INTO {NEXT} (account_id, {}, created_at, updated_at)
         SELECT t.account_id, {}, ?1, ?1 FROM imp t
         WHERE t.rowid > ?2 AND t.rowid <= ?2 + ?3
           AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = t.account_id)",
        VALUES.join(", "),
        values.join(", ")
    ))
    .bind(now)
    .bind(after)
    .bind(CHUNK)
    .execute(&mut *conn)
    .await?;
    Ok(Some(after + CHUNK))
}

/// Whether the next table holds every live account and the new ones: a
/// check of the build before it replaces anything (reads only).
pub async fn complete(conn: &mut SqliteConnection, created: u64) -> sqlx::Result<bool> {
    let live = count(conn, "SELECT COUNT(*) FROM accounts", None).await?;
    let next = count(conn, &format!("SELECT COUNT(*) FROM {NEXT}"), None).await?;
    let lost = count(
        conn,
        &format!("SELECT COUNT(*) FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM {NEXT} n WHERE n.account_id = a.account_id)"),
        None,
    )
    .await?;
    Ok(next == live + created && lost == 0)
}

/// The swap, inside the caller's write transaction, on a connection whose
/// foreign keys are off (dropping the live table must not delete through
/// the mappings' reference; the next table holds every account, checked by
/// [`complete`]). False, with nothing changed, when accounts moved since
/// `generation` was read.
pub async fn swap(conn: &mut SqliteConnection, expected: i64) -> sqlx::Result<bool> {
    if generation(conn).await? != expected {
        return Ok(false);
    }
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'accounts' AND sql IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    // The old table's pages go to the free list as they are (zeroing them
    // would write the whole table again; the same people's rows are in the
    // new table).
    sqlx::query("PRAGMA secure_delete = FAST")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DROP TABLE accounts")
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("ALTER TABLE {NEXT} RENAME TO accounts"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_alternate_between_two_forms() {
        assert_eq!(next_index_name("accounts_identity"), "accounts_identity__b");
        assert_eq!(next_index_name("accounts_identity__b"), "accounts_identity");
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
