//! The service every entry point shares (server, CLI, tests): configuration,
//! database, the verifier of every configured IdP, the SP's keys; built
//! once at start, where every configuration error is found.

use crate::config::{self, Config, IdpConfig};
use crate::resolve::KnownIdps;
use crate::saml::{self, keys::SpKeys, metadata::IdpMetadata};
use crate::store;
use sqlx::SqlitePool;
use std::sync::Arc;

/// What the server, the CLI and the tests share: configuration, database,
/// the verifier of every configured IdP, and the SP's keys.
pub struct Service {
    pub config: Config,
    pub pool: SqlitePool,
    pub verifier: Arc<saml::Verifier>,
    pub sp_keys: SpKeys,
    pub sp_metadata: String,
    /// A secret for stateless tokens (the failure form's CSRF token),
    /// derived from the SP key so it survives restarts.
    pub form_secret: String,
    pub known_idps: KnownIdps,
}

/// Reads the metadata files of the config.
pub fn known_idps(config: &Config) -> Result<KnownIdps, StartError> {
    Ok(KnownIdps(
        configured_idps(config)?
            .into_iter()
            .map(|(meta, cfg)| (meta.entity_id, cfg.match_identity))
            .collect(),
    ))
}

/// Every IdP of the config's metadata files (an EntitiesDescriptor gives
/// several), each with its `[[idp]]` settings.
fn configured_idps(config: &Config) -> Result<Vec<(IdpMetadata, IdpConfig)>, StartError> {
    let mut idps = Vec::new();
    for idp in &config.idps {
        for meta in saml::metadata::load_file(&idp.metadata).map_err(StartError)? {
            idps.push((meta, idp.clone()));
        }
    }
    Ok(idps)
}

/// A start-up failure: one line naming the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

impl Service {
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
        let mut idps = configured_idps(&config)?;
        idps.extend(extra_idps);
        // `schools` defaults to "all" for a single IdP only; with several,
        // an IdP without it is trusted for the schools that list it.
        let single = idps.len() == 1;
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
        let verifier = saml::Verifier::new(
            config.sp_entity_id(),
            config.acs_url(),
            config.clock_skew_seconds,
            &decryption_keys,
            idps,
        )
        .map_err(StartError)?;
        let sp_metadata =
            saml::metadata::sp_metadata_xml(&config.sp_entity_id(), &config.acs_url(), &sp_keys)
                .map_err(StartError)?;
        let db_error =
            |e: sqlx::Error| StartError(format!("{}: {e}", config.database_path.display()));
        let pool = store::open(&config.database_path).await.map_err(db_error)?;
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
        let known_idps = KnownIdps(
            verifier
                .idps()
                .map(|i| (i.meta.entity_id.clone(), i.config.match_identity))
                .collect(),
        );
        Ok(Service {
            known_idps,
            config,
            pool,
            verifier: Arc::new(verifier),
            sp_keys,
            sp_metadata,
            form_secret,
        })
    }

    /// Drops expired replay entries, requests and sessions, and forgets the
    /// personal details of old failures.
    pub async fn housekeeping(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        store::replay::purge_expired(&mut conn, chrono::Utc::now().timestamp()).await?;
        store::failures::purge_personal_data(&mut conn, self.config.retention_days).await?;
        Ok(())
    }
}
