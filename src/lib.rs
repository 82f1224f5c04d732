//! jointure: the SAML front door of a school service and its admins'
//! resolution desk. `main.rs` parses the command line; everything else is
//! here so that tests drive the real thing.

pub mod config;
pub mod csv_io;
pub mod demo;
pub mod flow;
pub mod i18n;
pub mod resolve;
pub mod saml;
pub mod store;
pub mod web;

use config::{Config, IdpConfig};
use saml::keys::SpKeys;
use saml::metadata::IdpMetadata;
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

/// The configured IdPs by entity ID, with whether automatic matching is on
/// for each: what imports need, without keys or a verifier.
#[derive(Debug, Clone, Default)]
pub struct KnownIdps(pub std::collections::HashMap<String, bool>);

impl KnownIdps {
    /// Reads the metadata files of the config.
    pub fn load(config: &Config) -> Result<KnownIdps, StartError> {
        Ok(KnownIdps(
            configured_idps(config)?
                .into_iter()
                .map(|(meta, cfg)| (meta.entity_id, cfg.match_identity))
                .collect(),
        ))
    }

    pub fn contains(&self, entity_id: &str) -> bool {
        self.0.contains_key(entity_id)
    }

    pub fn matches_identity(&self, entity_id: &str) -> bool {
        self.0.get(entity_id).copied().unwrap_or(false)
    }
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
            &sp_keys.key,
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

/// The bound server.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    service: Arc<Service>,
    demo: Option<Arc<demo::Demo>>,
}

impl Application {
    /// Builds the service and binds `config.listen` (port 0 picks a free one).
    /// With `demo`, the demo IdP, schools, accounts and admin are added.
    pub async fn build(config: Config, demo: bool) -> Result<Application, StartError> {
        let listen = config.listen.clone();
        let (service, demo) = if demo {
            let d = demo::Demo::new(&config).map_err(StartError)?;
            let service = Service::build(config, vec![d.idp_entry()?]).await?;
            d.seed(&service)
                .await
                .map_err(|e| StartError(format!("demo data: {e}")))?;
            (service, Some(Arc::new(d)))
        } else {
            (Service::build(config, Vec::new()).await?, None)
        };
        if !service.config.is_https() {
            tracing::warn!(
                public_url = %service.config.public_url,
                "plain http: SP-initiated logins are not bound to the browser that started them (login CSRF protection needs https)"
            );
        }
        let service = Arc::new(service);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| StartError(format!("listen {listen}: {e}")))?;
        let router = web::router(web::AppState::new(service.clone(), demo.clone()));
        Ok(Application {
            listener,
            router,
            service,
            demo,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The demo admin's password, under `--demo`.
    pub fn demo_admin_password(&self) -> Option<&str> {
        self.demo.as_deref().map(|d| d.admin_password.as_str())
    }

    pub fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    /// Serves until the process ends, with hourly housekeeping.
    pub async fn run(self) -> std::io::Result<()> {
        let svc = self.service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = svc.housekeeping().await {
                    tracing::error!(error = %e, "housekeeping failed");
                }
            }
        });
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    }
}
