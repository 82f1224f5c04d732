//! The `JOINTURE_*` environment variables over the file's values.

use super::{ConfigError, FileConfig, IdpConfig, Support};
use std::path::PathBuf;

/// Applies `JOINTURE_*` variables over the file's values. Paths given in the
/// environment are relative to the working directory, so they are made
/// absolute here.
// Long on purpose: one override per environment variable, as listed in
// the README.
pub(super) fn apply_env(
    mut fc: FileConfig,
    get: impl Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let abs = |p: String| cwd.join(p);
    let num = |k: &str, v: String| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| ConfigError::new(k, format!("{v:?} is not a whole number")))
    };
    if let Some(v) = get("JOINTURE_PUBLIC_URL") {
        fc.public_url = Some(v);
    }
    if let Some(v) = get("JOINTURE_LISTEN") {
        fc.listen = Some(v);
    }
    if let Some(v) = get("JOINTURE_DATABASE_URL") {
        // A relative sqlite path from the environment is relative to the cwd.
        fc.database_url = Some(match v.strip_prefix("sqlite://") {
            Some(p) if !p.starts_with('/') && !p.is_empty() => {
                format!("sqlite://{}", abs(p.to_string()).display())
            }
            _ => v,
        });
    }
    if let Some(v) = get("JOINTURE_SP_KEY") {
        fc.sp_key = Some(abs(v));
    }
    if let Some(v) = get("JOINTURE_SP_CERT") {
        fc.sp_cert = Some(abs(v));
    }
    if let Some(v) = get("JOINTURE_SP_PREVIOUS_KEY") {
        fc.sp_previous_key = Some(abs(v));
    }
    if let Some(v) = get("JOINTURE_SP_PREVIOUS_CERT") {
        fc.sp_previous_cert = Some(abs(v));
    }
    if let Some(v) = get("JOINTURE_CLOCK_SKEW_SECONDS") {
        fc.clock_skew_seconds = Some(num("JOINTURE_CLOCK_SKEW_SECONDS", v)?);
    }
    if let Some(v) = get("JOINTURE_RETENTION_DAYS") {
        fc.retention_days = Some(num("JOINTURE_RETENTION_DAYS", v)?);
    }
    if let Some(v) = get("JOINTURE_MAX_BODY_BYTES") {
        let n = num("JOINTURE_MAX_BODY_BYTES", v)?;
        fc.max_body_bytes =
            Some(usize::try_from(n).map_err(|_| {
                ConfigError::new("JOINTURE_MAX_BODY_BYTES", "must not be negative")
            })?);
    }
    if let Some(v) = get("JOINTURE_MAX_UPLOAD_BYTES") {
        let n = num("JOINTURE_MAX_UPLOAD_BYTES", v)?;
        fc.max_upload_bytes =
            Some(usize::try_from(n).map_err(|_| {
                ConfigError::new("JOINTURE_MAX_UPLOAD_BYTES", "must not be negative")
            })?);
    }
    if let Some(v) = get("JOINTURE_DB_WAIT_MS") {
        let n = num("JOINTURE_DB_WAIT_MS", v)?;
        fc.db_wait_ms = Some(
            u64::try_from(n)
                .map_err(|_| ConfigError::new("JOINTURE_DB_WAIT_MS", "must not be negative"))?,
        );
    }
    if let Some(v) = get("JOINTURE_SMTP_URL") {
        fc.smtp_url = Some(v);
    }
    if let Some(v) = get("JOINTURE_MAIL_FROM") {
        fc.mail_from = Some(v);
    }
    if let Some(v) = get("JOINTURE_TIMEZONE") {
        fc.timezone = Some(v);
    }
    for (key, field) in [
        ("JOINTURE_SUPPORT_PHONE", 0),
        ("JOINTURE_SUPPORT_EMAIL", 1),
        ("JOINTURE_SUPPORT_URL", 2),
    ] {
        if let Some(v) = get(key) {
            let s = fc.support.get_or_insert_with(Support::default);
            let slot = match field {
                0 => &mut s.phone,
                1 => &mut s.email,
                _ => &mut s.url,
            };
            *slot = Some(v);
        }
    }
    if let Some(v) = get("JOINTURE_IDP_METADATA") {
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            fc.idp.push(IdpConfig::with_metadata(abs(p.to_string())));
        }
    }
    Ok(fc)
}
