//! Large accounts files: built beside the live table and swapped in, or,
//! when they change few rows, only those written (`store::imports::swap`;
//! README, "Large accounts imports").

use super::{fill_counts, finish, write_turn, Errors, ImportReport, Options};
use crate::resolve::{ImportKind, KnownIdps};
use crate::store::imports::{self, swap};
use sqlx::{Connection, SqliteConnection};

/// What the checks counted, and the accounts generation they saw.
#[derive(Clone, Copy)]
pub(super) struct Plan {
    pub counts: imports::Counts,
    pub generation: i64,
}

/// A short write transaction of the import, in the writer's turn: `step`
/// runs and commits unless accounts moved since `generation` (then `None`,
/// and the transaction rolls back as it is dropped).
macro_rules! build_step {
    ($conn:expr, $opts:expr, $generation:expr, |$tx:ident| $step:expr) => {{
        let _turn = write_turn($opts).await?;
        let mut $tx = $conn.begin_with("BEGIN IMMEDIATE").await?;
        if swap::generation(&mut $tx).await? != $generation {
            None
        } else {
            let out = $step;
            $tx.commit().await?;
            Some(out)
        }
    }};
}

/// A large accounts import: builds the next accounts table in short
/// transactions (the writer's turn each), checks it, then swaps it in with
/// the failures it resolves and the audit record, in one short transaction.
/// False, with nothing changed, when accounts moved meanwhile (or their
/// schema is not the one the build copies). The build's table is dropped
/// whenever it is not swapped in, errors included.
pub(super) async fn swap_in(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
    plan: Plan,
) -> Result<bool, sqlx::Error> {
    let build = swap::Build::new();
    match build_and_swap(&build, conn, idps, opts, report, errors, plan).await {
        Ok(true) => Ok(true),
        Ok(false) => {
            tracing::info!(
                "a large import was not swapped in (accounts changed meanwhile, or a schema it does not copy): applied in one transaction instead"
            );
            discard(&build, conn, opts).await?;
            Ok(false)
        }
        Err(e) => {
            if let Err(d) = discard(&build, conn, opts).await {
                tracing::warn!("a large import's unfinished table could not be dropped ({d}); start-up drops it");
            }
            Err(e)
        }
    }
}

async fn build_and_swap(
    build: &swap::Build,
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
    Plan { counts, generation }: Plan,
) -> Result<bool, sqlx::Error> {
    let now = crate::store::now_text();
    let replace = opts.replace_school.as_deref();
    match build_step!(conn, opts, generation, |tx| build.prepare(&mut tx).await?) {
        Some(true) => {}
        _ => return Ok(false),
    }
    let mut after = String::new();
    loop {
        let step = build_step!(conn, opts, generation, |tx| {
            build.copy_live(&mut tx, &after, replace, &now).await?
        });
        match step {
            None => return Ok(false),
            Some(Some(last)) => after = last,
            Some(None) => break,
        }
    }
    let mut at = 0;
    loop {
        let step = build_step!(conn, opts, generation, |tx| {
            build.copy_new(&mut tx, at, &now).await?
        });
        match step {
            None => return Ok(false),
            Some(Some(next)) => at = next,
            Some(None) => break,
        }
    }
    match build.complete(conn, counts.created, generation).await? {
        None => return Ok(false),
        Some(false) => {
            return Err(sqlx::Error::Protocol(
                "the next accounts table is incomplete: nothing was changed".into(),
            ))
        }
        Some(true) => {}
    }
    // Dropping the live table must not delete through the mappings'
    // reference (the next table holds every account, checked above and
    // again in the swap); `import` makes sure they are back on.
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    let turn = write_turn(opts).await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let swapped = build.swap(&mut tx, generation).await?;
    if swapped {
        fill_counts(report, counts);
        finish(&mut tx, idps, ImportKind::Accounts, opts, report, errors).await?;
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    drop(turn);
    let on = sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await;
    match on {
        // Not swapped: the direct way follows on this connection, which
        // needs them.
        Err(e) if !swapped => return Err(e),
        // Committed: a failure here is not the import's (`import` closes
        // the connection rather than pool it with foreign keys off).
        Err(e) => tracing::warn!("foreign keys could not be turned back on after a swap: {e}"),
        Ok(_) => {}
    }
    Ok(swapped)
}

/// A large accounts file that changes few rows: only those are written,
/// in one short transaction. False, with nothing changed, when accounts
/// moved since the marks were taken.
pub(super) async fn apply_marked(
    conn: &mut SqliteConnection,
    idps: &KnownIdps,
    opts: &Options,
    report: &mut ImportReport,
    errors: &mut Errors,
    Plan { counts, generation }: Plan,
) -> Result<bool, sqlx::Error> {
    let now = crate::store::now_text();
    let done = build_step!(conn, opts, generation, |tx| {
        imports::apply_marked_accounts(&mut tx, opts.replace_school.as_deref(), &now).await?;
        fill_counts(report, counts);
        finish(&mut tx, idps, ImportKind::Accounts, opts, report, errors).await?;
    });
    Ok(done.is_some())
}

/// Drops a build's table, in the writer's turn.
async fn discard(
    build: &swap::Build,
    conn: &mut SqliteConnection,
    opts: &Options,
) -> Result<(), sqlx::Error> {
    let _turn = write_turn(opts).await?;
    build.discard(conn).await
}
