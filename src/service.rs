//! The service every entry point shares (server, CLI, tests): configuration,
//! database, the verifier of every configured IdP, the SP's keys; built
//! once at start, where every configuration error is found.

use crate::config::{self, Config, IdpConfig};
use crate::feeds;
use crate::resolve::KnownIdps;
use crate::saml::{self, keys::SpKeys, metadata::IdpMetadata};
use crate::store;
use sqlx::SqlitePool;
use std::sync::Arc;

/// What the server, the CLI and the tests share: configuration, database,
/// the verifier of every configured IdP, and the SP's keys.
pub struct Service {
    pub config: Config,
    /// The readers (and the odd autocommit write). Write transactions go
    /// through `begin_write`, the one writer.
    pub pool: SqlitePool,
    /// The one connection that writes (see `store::Writer`).
    pub writer: store::Writer,
    /// Signature verification runs on the blocking threads, at most one
    /// per core: a flood queues here instead of growing threads.
    pub verify_permits: Arc<tokio::sync::Semaphore>,
    pub verifier: Arc<saml::Verifier>,
    pub sp_keys: SpKeys,
    pub sp_metadata: String,
    /// A secret for stateless tokens (the failure form's CSRF token),
    /// derived from the SP key so it survives restarts.
    pub form_secret: String,
    /// Logins that took the returning user's short way (`flow::returning`)
    /// since start: the rest went the full way.
    pub short_logins: std::sync::atomic::AtomicU64,
    /// Where the IdPs come from, for federation refreshes.
    sources: tokio::sync::Mutex<Vec<feeds::Source>>,
    extra_idps: Vec<(IdpMetadata, IdpConfig)>,
}

/// The configured IdPs without network (metadata files, federations'
/// cached copies), for CLI commands.
pub fn known_idps(config: &Config) -> Result<KnownIdps, StartError> {
    let mut known = Vec::new();
    for idp in &config.idps {
        for meta in feeds::offline(config, idp).map_err(StartError)? {
            known.push((meta.entity_id, idp.match_identity));
        }
    }
    Ok(KnownIdps(known.into_iter().collect()))
}

/// Every IdP of the sources (an EntitiesDescriptor gives several), each
/// with its `[[idp]]` settings. `schools` defaults to "all" only for a
/// configuration of one IdP from a file (a federation's `[[idp]]` must say,
/// so that what it trusts never depends on how many IdPs a remote document
/// lists); otherwise an IdP without it is trusted for the schools that list
/// it. Also returns the IdPs left to such lists. A federation member that a
/// file also configures is taken from the file.
fn assemble(
    sources: &[feeds::Source],
    extra: &[(IdpMetadata, IdpConfig)],
) -> (Vec<(IdpMetadata, IdpConfig)>, Vec<String>) {
    let from_files: std::collections::HashSet<&str> = sources
        .iter()
        .filter(|s| s.feed.is_none())
        .flat_map(|s| s.idps.iter().map(|m| m.entity_id.as_str()))
        .chain(extra.iter().map(|(m, _)| m.entity_id.as_str()))
        .collect();
    let mut idps: Vec<(IdpMetadata, IdpConfig)> = Vec::new();
    for s in sources {
        for m in &s.idps {
            if s.feed.is_some() && from_files.contains(m.entity_id.as_str()) {
                tracing::warn!(entity = %m.entity_id, "an IdP of a federation is also configured from a file: the file's settings are used");
                continue;
            }
            idps.push((m.clone(), s.idp.clone()));
        }
    }
    idps.extend(extra.iter().cloned());
    let single = idps.len() == 1 && sources.iter().all(|s| s.feed.is_none());
    let mut unlisted = Vec::new();
    for (meta, cfg) in &mut idps {
        if cfg.schools.is_none() {
            if single {
                cfg.schools = Some(config::TrustedSchools::All);
            } else {
                cfg.schools = Some(config::TrustedSchools::Only(Vec::new()));
                unlisted.push(meta.entity_id.clone());
            }
        }
    }
    (idps, unlisted)
}

/// A start-up failure: one line naming the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// Why the database could not be opened, in one line that says what to do.
fn open_error(config: &Config, e: sqlx::Error) -> StartError {
    let path = config.database_path.display();
    match store::cause(&e) {
        Some(store::Cause::ReadOnly) => StartError(format!(
            "{path}: the database cannot be written (read-only file, directory or disk): give the user running jointure write access to the file and its directory ({e})"
        )),
        Some(store::Cause::CannotOpen) => StartError(format!(
            "{path}: the database cannot be opened: check that the directory exists and is writable ({e})"
        )),
        Some(store::Cause::DiskFull) => StartError(format!("{path}: the disk is full ({e})")),
        _ => StartError(format!("{path}: {e}")),
    }
}

impl Service {
    /// A write transaction for an interactive request: the writer's turn
    /// within `db_wait_ms`, else an error answered 503.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.writer.begin().await
    }

    /// Reads keys and IdP metadata, opens and migrates the database.
    /// `extra_idps` are IdPs not in the config (the demo IdP).
    pub async fn build(
        config: Config,
        extra_idps: Vec<(IdpMetadata, IdpConfig)>,
    ) -> Result<Service, StartError> {
        let host = url::Url::parse(&config.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "jointure".into());
        let sp_keys = saml::keys::load_or_generate(&config.sp_key, &config.sp_cert, &host)
            .map_err(StartError)?;
        let previous_keys = match &config.sp_previous {
            None => None,
            Some((key, cert)) => Some(saml::keys::load(key, cert).map_err(StartError)?),
        };
        let decryption_keys: Vec<_> = std::iter::once(sp_keys.key.clone())
            .chain(previous_keys.iter().map(|k| k.key.clone()))
            .collect();
        let mut sources = Vec::new();
        for idp in &config.idps {
            sources.push(feeds::at_start(&config, idp).await.map_err(StartError)?);
        }
        let (idps, unlisted) = assemble(&sources, &extra_idps);
        let verifier = saml::Verifier::new(
            config.sp_entity_id(),
            config.acs_url(),
            config.clock_skew_seconds,
            &decryption_keys,
            idps,
        )
        .map_err(StartError)?;
        let sp_metadata = saml::metadata::sp_metadata_xml(
            &config.sp_entity_id(),
            &config.acs_url(),
            &sp_keys,
            previous_keys.as_ref(),
        )
        .map_err(StartError)?;
        let db_error =
            |e: sqlx::Error| StartError(format!("{}: {e}", config.database_path.display()));
        let db = store::Db::open(&config.database_path, config.db_wait)
            .await
            .map_err(|e| open_error(&config, e))?;
        let pool = db.read;
        // Folded names made by an older folding are redone before anything
        // matches on them (a no-op read when they are current).
        store::accounts::refold_if_stale(&pool)
            .await
            .map_err(db_error)?;
        let mut conn = pool.acquire().await.map_err(db_error)?;
        for entity_id in unlisted {
            let listed = store::schools::any_lists_idp(&mut conn, &entity_id)
                .await
                .map_err(db_error)?;
            if !listed {
                return Err(StartError(format!(
                    "IdP {entity_id:?} is trusted for no school: with several IdPs, give its [[idp]] a `schools` list (or \"all\"), or list it in a school's idp_entity_ids"
                )));
            }
        }
        drop(conn);
        let key_der = sp_keys
            .key
            .private_key_to_der()
            .map_err(|e| StartError(format!("SP key: {e}")))?;
        let form_secret = store::sessions::hash_token(&format!(
            "jointure-form-secret:{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key_der)
        ));
        Ok(Service {
            sources: tokio::sync::Mutex::new(sources),
            extra_idps,
            config,
            pool,
            writer: db.writer,
            verify_permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            verifier: Arc::new(verifier),
            sp_keys,
            sp_metadata,
            form_secret,
            short_logins: Default::default(),
        })
    }

    /// The IdPs trusted now, and whether each matches identities.
    pub fn known_idps(&self) -> KnownIdps {
        KnownIdps(
            self.verifier
                .idps()
                .into_iter()
                .map(|i| (i.meta.entity_id.clone(), i.config.match_identity))
                .collect(),
        )
    }

    /// Refreshes every federation whose time has come; returns how long to
    /// wait before the next one is due (None: no federation). A refreshed
    /// document replaces its IdPs (new keys, new or gone IdPs) at once; one
    /// that fails keeps the IdPs in use, logged.
    pub async fn refresh_feeds(&self, elapsed: std::time::Duration) -> Option<std::time::Duration> {
        let mut sources = self.sources.lock().await;
        let mut previous = Vec::new();
        let now = chrono::Utc::now();
        for (i, source) in sources.iter_mut().enumerate() {
            let Some(feed) = source.feed.as_mut() else {
                continue;
            };
            // A document past its validUntil is no longer the federation's
            // word: its IdPs stop being trusted until a fresh one arrives.
            if feed.valid_until <= now && !source.idps.is_empty() {
                tracing::error!(url = %feed.url, valid_until = %feed.valid_until, "federation metadata expired and not refreshed: its IdPs are no longer trusted");
                previous.push((i, std::mem::take(&mut source.idps)));
            }
            feed.next = feed.next.saturating_sub(elapsed);
            if !feed.next.is_zero() {
                continue;
            }
            match feed.refresh().await {
                Ok(idps) => {
                    tracing::info!(url = %feed.url, idps = idps.len(), "federation metadata refreshed");
                    previous.push((i, std::mem::replace(&mut source.idps, idps)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "federation metadata refresh failed: the copy in use is kept")
                }
            }
        }
        if !previous.is_empty() {
            let (idps, _) = assemble(&sources, &self.extra_idps);
            if let Err(e) = self.verifier.replace_idps(idps) {
                tracing::warn!(error = %e, "refreshed federation metadata refused: the IdPs in use are kept");
                for (i, idps) in previous {
                    sources[i].idps = idps;
                }
            }
        }
        sources
            .iter()
            .filter_map(|s| s.feed.as_ref().map(|f| f.next))
            .min()
    }

    /// Drops expired replay entries, requests and sessions, and forgets the
    /// personal details of old failures.
    /// Then cuts the WAL back (an idle moment: the task runs between
    /// requests' writes, through the writer).
    pub async fn housekeeping(&self) -> Result<(), sqlx::Error> {
        let long = std::time::Duration::from_secs(60);
        let mut tx = self.writer.begin_within(long).await?;
        store::replay::purge_expired(&mut tx, chrono::Utc::now().timestamp()).await?;
        tx.commit().await?;
        let mut tx = self.writer.begin_within(long).await?;
        store::failures::purge_personal_data(&mut tx, self.config.retention_days).await?;
        tx.commit().await?;
        self.writer.checkpoint().await?;
        Ok(())
    }
}
