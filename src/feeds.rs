//! Federation metadata that looks after itself (`[[idp]] metadata_url`):
//! fetched over HTTPS at start and then every `cacheDuration` (bounded),
//! taken only when its signature verifies with the federation's certificate
//! and it has not expired; the last good copy is kept on disk and used when
//! the URL does not answer at start. A refresh that fails, or brings a
//! document that does not verify, is logged and the copy in use is kept.

use crate::config::{Config, IdpConfig, MetadataSource};
use crate::saml::dsig::TrustedKeys;
use crate::saml::federation::{self, Federation, MAX_METADATA_BYTES};
use crate::saml::metadata::{self, IdpMetadata};
use chrono::Utc;
use std::path::Path;
use std::time::Duration;

/// How long a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// How soon a failed refresh is tried again (the copy in use stays).
const RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

/// Fetches a document, at most [`MAX_METADATA_BYTES`].
pub async fn fetch(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut res = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("{url}: HTTP {}", res.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(format!("{url}: more than {MAX_METADATA_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| format!("{url}: the metadata is not UTF-8"))
}

/// The federation's certificate(s), from the config's PEM file.
pub fn signing_keys(cert: &Path) -> Result<TrustedKeys, String> {
    let name = cert.display();
    let pem = std::fs::read(cert).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let certs = openssl::x509::X509::stack_from_pem(&pem)
        .map_err(|_| format!("{name}: not a PEM certificate"))?;
    if certs.is_empty() {
        return Err(format!("{name}: no certificate"));
    }
    let b64: Vec<String> = certs
        .iter()
        .map(|c| {
            c.to_der()
                .map(|d| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, d))
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    TrustedKeys::from_certificates(&b64).map_err(|e| format!("{name}: {e}"))
}

/// Verifies a document off the async threads (a national aggregate is
/// megabytes of XML and a signature check).
async fn verify(text: String, keys: &TrustedKeys) -> Result<Federation, String> {
    let keys = keys.clone();
    tokio::task::spawn_blocking(move || federation::read_signed(&text, &keys, Utc::now()))
        .await
        .map_err(|e| format!("verification task: {e}"))?
}

/// Reads the last good copy, checked again (it may have expired since).
fn read_cached(cache: &Path, keys: &TrustedKeys) -> Result<Federation, String> {
    let text = std::fs::read_to_string(cache)
        .map_err(|e| format!("no usable cached copy {}: {e}", cache.display()))?;
    federation::read_signed(&text, keys, Utc::now())
        .map_err(|e| format!("the cached copy {}: {e}", cache.display()))
}

/// [`read_cached`] off the async threads.
pub async fn cached(cache: &Path, keys: &TrustedKeys) -> Result<Federation, String> {
    let (cache, keys) = (cache.to_path_buf(), keys.clone());
    tokio::task::spawn_blocking(move || read_cached(&cache, &keys))
        .await
        .map_err(|e| format!("verification task: {e}"))?
}

/// Fetches and verifies the document; a good one is written to `cache`
/// (whole or not at all: a temporary file renamed over it). A document
/// that expires before the one in use (`in_use`, its validUntil) is older
/// than it, a replay that would bring back rotated keys or removed IdPs:
/// refused.
pub async fn fetch_verified(
    url: &str,
    keys: &TrustedKeys,
    cache: &Path,
    in_use: Option<chrono::DateTime<Utc>>,
) -> Result<Federation, String> {
    let text = fetch(url).await?;
    let fed = verify(text.clone(), keys)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if let Some(current) = in_use.filter(|c| fed.valid_until < *c) {
        return Err(format!(
            "{url}: the document is older than the one in use (validUntil {} before {current}): refused",
            fed.valid_until
        ));
    }
    for why in &fed.skipped {
        tracing::warn!(%url, reason = %why, "federation member left out");
    }
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = cache.with_extension("tmp");
    std::fs::write(&tmp, &text)
        .and_then(|_| std::fs::rename(&tmp, cache))
        .map_err(|e| format!("{}: {e}", cache.display()))?;
    Ok(fed)
}

/// An `[[idp]]`'s IdPs at start: its file; or its federation's document,
/// fetched, else the cached copy (logged), else an error.
pub async fn at_start(config: &Config, idp: &IdpConfig) -> Result<Source, String> {
    match config.metadata_source(idp) {
        MetadataSource::File(path) => Ok(Source {
            idp: idp.clone(),
            idps: metadata::load_file(&path)?,
            feed: None,
        }),
        MetadataSource::Url {
            url,
            signing_cert,
            cache,
        } => {
            let keys = signing_keys(&signing_cert)?;
            let last_good = cached(&cache, &keys).await;
            let in_use = last_good.as_ref().ok().map(|f| f.valid_until);
            let fed = match (fetch_verified(&url, &keys, &cache, in_use).await, last_good) {
                (Ok(f), _) => f,
                (Err(e), Ok(f)) => {
                    tracing::warn!(error = %e, valid_until = %f.valid_until, "federation metadata not taken at start: using the cached copy");
                    f
                }
                (Err(e), Err(c)) => return Err(format!("{e}; and {c}")),
            };
            Ok(Source {
                idp: idp.clone(),
                idps: fed.idps.clone(),
                feed: Some(Feed {
                    url,
                    keys,
                    cache,
                    next: fed.refresh_after(Utc::now()),
                    valid_until: fed.valid_until,
                }),
            })
        }
    }
}

/// The IdPs one `[[idp]]` table stands for now, and, for a URL, how to
/// refresh them.
pub struct Source {
    pub idp: IdpConfig,
    pub idps: Vec<IdpMetadata>,
    pub feed: Option<Feed>,
}

/// A federation URL being followed.
pub struct Feed {
    pub url: String,
    keys: TrustedKeys,
    cache: std::path::PathBuf,
    /// When to fetch again.
    pub next: Duration,
    /// Until when the document in use may be trusted.
    pub valid_until: chrono::DateTime<Utc>,
}

impl Feed {
    /// One refresh: the new IdPs, or why the old ones stay. Sets when to
    /// try next either way.
    pub async fn refresh(&mut self) -> Result<Vec<IdpMetadata>, String> {
        match fetch_verified(&self.url, &self.keys, &self.cache, Some(self.valid_until)).await {
            Ok(fed) => {
                self.next = fed.refresh_after(Utc::now());
                self.valid_until = fed.valid_until;
                Ok(fed.idps)
            }
            Err(e) => {
                self.next = RETRY_AFTER.min(self.next.max(Duration::from_secs(60)));
                Err(e)
            }
        }
    }
}

/// Without network: an `[[idp]]`'s IdPs from its file or its cached copy
/// (for CLI commands that only need entity IDs).
pub fn offline(config: &Config, idp: &IdpConfig) -> Result<Vec<IdpMetadata>, String> {
    match config.metadata_source(idp) {
        MetadataSource::File(path) => metadata::load_file(&path),
        MetadataSource::Url {
            signing_cert,
            cache,
            ..
        } => read_cached(&cache, &signing_keys(&signing_cert)?).map(|f| f.idps),
    }
}

/// What `jointure metadata check` prints: what would be trusted from a
/// file or URL. With a certificate the document must verify as a
/// federation's does; a URL without one is refused (remote metadata is
/// never trusted unsigned).
pub async fn check(source: &str, signing_cert: Option<&Path>) -> Result<String, String> {
    let remote = source.starts_with("https://") || source.starts_with("http://");
    let text = if remote {
        fetch(source).await?
    } else {
        std::fs::read_to_string(source).map_err(|e| format!("{source}: cannot read: {e}"))?
    };
    let mut out = String::new();
    let idps = match signing_cert {
        Some(cert) => {
            let fed = verify(text, &signing_keys(cert)?)
                .await
                .map_err(|e| format!("{source}: {e}"))?;
            out.push_str(&format!(
                "signature: verified with {}\nvalid until: {}\nrefreshed every: {} s\n",
                cert.display(),
                fed.valid_until,
                fed.refresh_after(Utc::now()).as_secs()
            ));
            for why in &fed.skipped {
                out.push_str(&format!("left out: {why}\n"));
            }
            fed.idps
        }
        None if remote => {
            return Err(format!(
                "{source}: a metadata URL needs --signing-cert (the federation's certificate); remote metadata is never trusted unsigned"
            ))
        }
        None => {
            out.push_str("signature: not checked (a local file, as `metadata = FILE` reads it)\n");
            metadata::parse_metadata(&text).map_err(|e| format!("{source}: {e}"))?
        }
    };
    out.push_str(&format!("{} IdP(s)\n", idps.len()));
    for idp in &idps {
        out.push_str(&describe(idp));
    }
    Ok(out)
}

/// One IdP as `metadata check` prints it.
fn describe(idp: &IdpMetadata) -> String {
    let mut s = format!("\n{}\n", idp.entity_id);
    if let Some(n) = &idp.display_name {
        s.push_str(&format!("  name: {n}\n"));
    }
    s.push_str(&format!(
        "  SSO (HTTP-Redirect): {}\n",
        idp.sso_redirect
            .as_deref()
            .unwrap_or("none (IdP-initiated login only)")
    ));
    for b64 in &idp.signing_certs {
        let cert = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .ok()
            .and_then(|der| openssl::x509::X509::from_der(&der).ok());
        match cert {
            Some(c) => {
                let fingerprint = c
                    .digest(openssl::hash::MessageDigest::sha256())
                    .map(|d| {
                        d.iter()
                            .map(|b| format!("{b:02X}"))
                            .collect::<Vec<_>>()
                            .join(":")
                    })
                    .unwrap_or_default();
                let subject: Vec<String> = c
                    .subject_name()
                    .entries()
                    .filter_map(|e| e.data().to_string().ok())
                    .collect();
                s.push_str(&format!(
                    "  signing key: {} (until {}), SHA-256 {fingerprint}\n",
                    subject.join(", "),
                    c.not_after()
                ));
            }
            None => s.push_str("  signing key: unreadable\n"),
        }
    }
    s
}
