//! The database on a bad day: a full disk, a lock held by another process,
//! a file that cannot be written, and what the logs look like in a file.
//! Real SQLite files, the real server.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A small tmpfs mounted for one test, unmounted (lazily) when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None when this process may not mount (not root): the test says so.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("dir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills every free byte with a file; returns it (remove it to free).
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

/// Fills `disk` once the WAL of `db` is cut back to nothing, so that the
/// next commit needs new space: a WAL that the checkpointer has copied back
/// restarts from its start, and takes the next frames in place.
async fn fill_after_truncating(disk: &SmallDisk, app: &TestApp, db: &Path) -> PathBuf {
    let wal = db.with_extension("db-wal");
    for _ in 0..100 {
        app.svc.writer.checkpoint().await.expect("checkpoint");
        if std::fs::metadata(&wal).map_or(true, |m| m.len() == 0) {
            break;
        }
        // The checkpointer held the checkpoint: again.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    disk.fill()
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// How many assertion IDs are remembered, and how many user sessions exist.
async fn replay_and_sessions(app: &TestApp) -> (i64, i64) {
    let replay = sqlx::query_scalar("SELECT COUNT(*) FROM seen_assertions")
        .fetch_one(&app.svc.pool)
        .await
        .expect("replay");
    let sessions = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE kind = 'user'")
        .fetch_one(&app.svc.pool)
        .await
        .expect("sessions");
    (replay, sessions)
}

fn retry_after(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn a_full_disk_answers_503_and_logins_recover_by_themselves_when_space_comes_back() {
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let db = disk.path().join("j.db");
    let app = TestApp::spawn_with(|c| c.database_path = db.clone()).await;
    app.map("sub-full", "A-1").await;
    let login = app.mint(&app.ent("sub-full", "x", "y", "01/01/2000", UAI));
    let filler = fill_after_truncating(&disk, &app, &db).await;

    // While full: a login and a refusal both say "try again later",
    // neither hands out a session or a failure page.
    for xml in [login.clone(), app.mint(&app.nobody("sub-nobody"))] {
        let res = app.post_xml_raw(&xml).await;
        assert_eq!(res.status().as_u16(), 503, "{:?}", res.headers());
        assert_eq!(retry_after(&res).as_deref(), Some("60"));
        assert!(res.headers().get("set-cookie").is_none());
        assert!(res.headers().get("location").is_none());
    }
    // Neither half of the login landed: no replay record, no session.
    assert_eq!(replay_and_sessions(&app).await, (0, 0));

    std::fs::remove_file(&filler).expect("free the disk");
    // The same response again: the failed attempt left no replay record
    // behind (it would now be refused as replayed), and the writer's
    // connection was not left inside a transaction.
    app.expect_login(&login, "A-1").await;
    // Both halves landed together.
    assert_eq!(replay_and_sessions(&app).await, (1, 1));
    for i in 0..3 {
        let spec = app.ent(&format!("sub-after-{i}"), "Haddad", "Inès", "", UAI);
        let spec = spec.attr("serviceAccountId", "A-5");
        app.expect_login(&app.mint(&spec), "A-5").await;
    }
    let failures = app.count_failures().await;
    app.fail(&app.nobody("sub-nobody-after")).await;
    assert_eq!(app.count_failures().await, failures + 1);
}

#[tokio::test]
async fn a_commit_that_fails_is_a_503_never_a_failure_page_for_a_row_that_does_not_exist() {
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let db = disk.path().join("j.db");
    let app = TestApp::spawn_with(|c| c.database_path = db.clone()).await;
    let before = app.count_failures().await;
    let filler = fill_after_truncating(&disk, &app, &db).await;
    // A refusal's row is written at its commit (WAL): that commit fails.
    let res = app.post_xml_raw(&app.mint(&app.nobody("sub-lost"))).await;
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().get("location").is_none());
    let page = res.text().await.expect("page");
    assert!(meta(&page, "jointure-reference").is_none(), "{page}");
    std::fs::remove_file(&filler).expect("free the disk");
    assert_eq!(app.count_failures().await, before);
    // The next request succeeds, and its reference names a stored row.
    let reference = app.fail(&app.nobody("sub-lost")).await;
    assert!(app.failure(&reference).await.is_some());
}

#[tokio::test]
async fn a_write_lock_held_by_another_process_leaves_the_desk_readable_and_logins_503_within_the_wait(
) {
    let wait = Duration::from_millis(700);
    let app = TestApp::spawn_with(|c| c.db_wait = wait).await;
    app.add_admin("root@sp.test", "superadmin", &[]).await;
    let (admin, _) = app.admin_client("root@sp.test").await;
    let reference = app.fail(&app.nobody("sub-locked")).await;
    app.map("sub-lock", "A-1").await;
    let login = app.mint(&app.ent("sub-lock", "x", "y", "01/01/2000", UAI));

    // Another process takes the write lock and keeps it (up to 30 s).
    use sqlx::Connection;
    let url = format!("sqlite://{}", app.svc.config.database_path.display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.expect("other");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("lock");

    for path in [
        "/admin/failures".to_string(),
        format!("/admin/failures/{reference}"),
    ] {
        let res = admin
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("page");
        assert_eq!(res.status().as_u16(), 200, "{path}");
    }
    for xml in [login.clone(), app.mint(&app.nobody("sub-locked-2"))] {
        let started = Instant::now();
        let res = app.post_xml_raw(&xml).await;
        let took = started.elapsed();
        assert_eq!(res.status().as_u16(), 503);
        assert_eq!(retry_after(&res).as_deref(), Some("60"));
        assert!(took < wait + Duration::from_millis(1500), "took {took:?}");
    }

    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("unlock");
    drop(other);
    app.expect_login(&login, "A-1").await;
}

#[tokio::test]
async fn a_database_that_cannot_be_written_is_refused_at_start_in_one_line() {
    // A file made read-only: root ignores permissions, so for root the
    // database sits on a file system mounted read-only instead.
    let dir = tempfile::tempdir().expect("dir");
    let made = dir.path().join("made.db");
    let pool = jointure::store::open(&made).await.expect("db");
    pool.close().await;
    let disk = SmallDisk::mount("8m");
    let db = match &disk {
        Some(d) => d.path().join("j.db"),
        None => dir.path().join("j.db"),
    };
    std::fs::copy(&made, &db).expect("copy");
    match &disk {
        Some(d) => {
            let ok = Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(d.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "remount read-only");
        }
        None => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        }
    }
    let e = TestApp::try_spawn_with(|c| c.database_path = db.clone())
        .await
        .err()
        .expect("refused");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("j.db"), "{e}");
    assert!(
        e.contains("cannot be written") || e.contains("cannot be opened"),
        "{e}"
    );
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("junk.xml");
    std::fs::write(&file, "<not-a-response/>").expect("file");
    let out = Command::new(env!("CARGO_BIN_EXE_jointure"))
        .args(["ingest", &file.display().to_string()])
        .env(
            "JOINTURE_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("j.db").display()),
        )
        .env("JOINTURE_LOG", "info")
        .current_dir(dir.path())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("INFO"), "a log line was written: {err}");
    assert!(!err.contains("\x1b["), "{err:?}");
}
