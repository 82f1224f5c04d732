//! The bound server: the service, the demo when asked, the router and the
//! listener, and the loop that serves them.

use crate::config::Config;
use crate::service::{Service, StartError};
use crate::{demo, web};
use std::sync::Arc;

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

    /// Serves until SIGTERM or SIGINT, with hourly housekeeping; on the
    /// signal, stops accepting and lets requests in flight finish.
    pub async fn run(self) -> std::io::Result<()> {
        let feeds = self.service.clone();
        tokio::spawn(async move {
            // Federation metadata: each refreshed when its time comes.
            let mut wait = std::time::Duration::from_secs(60);
            loop {
                tokio::time::sleep(wait).await;
                match feeds.refresh_feeds(wait).await {
                    Some(next) => wait = next.max(std::time::Duration::from_secs(1)),
                    None => break,
                }
            }
        });
        if self.service.config.smtp_url.is_some() {
            let mail = self.service.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
                loop {
                    tick.tick().await;
                    if let Err(e) =
                        crate::mail::deliver_due(&mail, chrono::Utc::now().timestamp()).await
                    {
                        tracing::error!(error = %e, "resolution e-mails: database error");
                    }
                }
            });
        }
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
        .with_graceful_shutdown(shutdown_signal())
        .await
    }
}

/// SIGINT (Ctrl+C) or SIGTERM (systemd, docker stop).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
