//! Configuration: a TOML file (optional) overridden by `JOINTURE_*` environment
//! variables, validated once at start. Relative paths in a file are relative to
//! that file's folder; with no file, to the working directory.
//!
//! Here the file's keys and their validation; in `idp` an `[[idp]]` table
//! (attribute names, trusted schools, metadata source); in `env` the
//! `JOINTURE_*` overrides.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

mod env;
mod idp;

use env::apply_env;
use idp::check_metadata_source;
pub use idp::{AttributeNames, IdpConfig, MetadataSource, TrustedSchools};

/// A configuration problem, always naming where it comes from.
#[derive(Debug, Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}

/// Support contact shown on failure pages.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    pub phone: Option<String>,
    pub email: Option<String>,
    pub url: Option<String>,
}

/// `timezone`: an IANA zone name, as in the tz database (`Europe/Paris`,
/// `Europe/Amsterdam`, `UTC`).
fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "timezone {name:?}: not a time zone name of the tz database, such as \"Europe/Paris\""
        )
    })
}

/// The host of a URL, for default addresses.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    public_url: Option<String>,
    listen: Option<String>,
    database_url: Option<String>,
    sp_key: Option<PathBuf>,
    sp_cert: Option<PathBuf>,
    sp_previous_key: Option<PathBuf>,
    sp_previous_cert: Option<PathBuf>,
    clock_skew_seconds: Option<i64>,
    retention_days: Option<i64>,
    max_body_bytes: Option<usize>,
    max_upload_bytes: Option<usize>,
    db_wait_ms: Option<u64>,
    support: Option<Support>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    timezone: Option<String>,
    #[serde(default)]
    idp: Vec<IdpConfig>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL without trailing slash; SP entity ID and ACS derive from it.
    pub public_url: String,
    pub listen: String,
    /// Path of the SQLite file.
    pub database_path: PathBuf,
    pub sp_key: PathBuf,
    pub sp_cert: PathBuf,
    /// During an encryption key rollover: the previous key pair, still
    /// published for encryption and tried for decryption (never generated).
    pub sp_previous: Option<(PathBuf, PathBuf)>,
    pub clock_skew_seconds: i64,
    /// How long raw responses and client details of failures are kept.
    pub retention_days: i64,
    /// The largest POST body the ACS reads.
    pub max_body_bytes: usize,
    /// The largest CSV file the import page accepts.
    pub max_upload_bytes: usize,
    /// How long an interactive request waits for the database's write
    /// turn before it answers 503 "try again in a minute".
    pub db_wait: std::time::Duration,
    pub support: Support,
    /// Where resolution e-mails go out (`smtp://host[:port]`, STARTTLS when
    /// offered; `smtps://` for TLS from the start); none: no e-mail.
    pub smtp_url: Option<String>,
    /// The From of those e-mails.
    pub mail_from: String,
    /// The zone dates and times are shown in (IANA name, e.g.
    /// `Europe/Paris`): the schools', not the server's (often UTC).
    pub timezone: chrono_tz::Tz,
    pub idps: Vec<IdpConfig>,
}

impl Config {
    pub fn sp_entity_id(&self) -> String {
        format!("{}/saml/metadata", self.public_url)
    }

    pub fn acs_url(&self) -> String {
        format!("{}/saml/acs", self.public_url)
    }
    /// Whether cookies must carry `Secure` (and may use the `__Host-` prefix).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Built-in defaults, relative to the working directory.
    pub fn defaults() -> Config {
        Config::resolve(FileConfig::default(), Path::new("."), "defaults")
            .expect("built-in defaults are valid")
    }

    /// Reads the file (if any) and then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let (fc, base, name) = match file {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(&name, format!("cannot read: {e}")))?;
                let fc: FileConfig = toml::from_str(&text).map_err(|e| {
                    ConfigError::new(&name, e.to_string().trim().replace('\n', " "))
                })?;
                let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                (fc, base, name)
            }
            None => (
                FileConfig::default(),
                PathBuf::from("."),
                "defaults".to_string(),
            ),
        };
        let fc = apply_env(fc, |k| std::env::var(k).ok())?;
        Config::resolve(fc, &base, &name)
    }

    // Long on purpose: one validation per key, in the order of the table in
    // the README.
    fn resolve(fc: FileConfig, base: &Path, name: &str) -> Result<Config, ConfigError> {
        let err = |m: String| ConfigError::new(name, m);
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let public_url = fc
            .public_url
            .unwrap_or_else(|| "http://127.0.0.1:8080".into())
            .trim_end_matches('/')
            .to_string();
        let parsed = url::Url::parse(&public_url)
            .map_err(|e| err(format!("public_url {public_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/" {
            return Err(err(format!(
                "public_url {public_url:?}: must be http(s)://host[:port] with no path"
            )));
        }
        let database_url = fc
            .database_url
            .unwrap_or_else(|| "sqlite://jointure.db".into());
        let database_path = match database_url.strip_prefix("sqlite://") {
            Some(p) if !p.is_empty() => rel(PathBuf::from(p)),
            _ => {
                return Err(err(format!(
                    "database_url {database_url:?}: expected sqlite://relative.db or sqlite:///absolute/path.db"
                )))
            }
        };
        let clock_skew_seconds = fc.clock_skew_seconds.unwrap_or(180);
        if !(0..=3600).contains(&clock_skew_seconds) {
            return Err(err("clock_skew_seconds: must be between 0 and 3600".into()));
        }
        let retention_days = fc.retention_days.unwrap_or(90);
        if retention_days < 1 {
            return Err(err("retention_days: must be at least 1".into()));
        }
        let db_wait_ms = fc.db_wait_ms.unwrap_or(2000);
        if !(10..=60_000).contains(&db_wait_ms) {
            return Err(err("db_wait_ms: must be between 10 and 60000".into()));
        }
        let max_body_bytes = fc.max_body_bytes.unwrap_or(256 * 1024);
        if max_body_bytes < 1024 {
            return Err(err("max_body_bytes: must be at least 1024".into()));
        }
        let max_upload_bytes = fc.max_upload_bytes.unwrap_or(200 * 1024 * 1024);
        if max_upload_bytes < 1024 {
            return Err(err("max_upload_bytes: must be at least 1024".into()));
        }
        let listen = fc.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| err(format!("listen {listen:?}: {e}")))?;
        let mut idps = fc.idp;
        for idp in &mut idps {
            idp.metadata = idp.metadata.take().map(&rel);
            idp.metadata_signing_cert = idp.metadata_signing_cert.take().map(&rel);
            check_metadata_source(idp).map_err(err)?;
            if idp.subject.trim().is_empty() {
                return Err(err(
                    "idp.subject: must be \"nameid\" or an attribute name".into()
                ));
            }
        }
        let mail_host = host_of(&public_url);
        let timezone =
            parse_timezone(fc.timezone.as_deref().unwrap_or("Europe/Paris")).map_err(err)?;
        Ok(Config {
            public_url,
            listen,
            database_path,
            sp_key: rel(fc.sp_key.unwrap_or_else(|| "sp.key".into())),
            sp_cert: rel(fc.sp_cert.unwrap_or_else(|| "sp.crt".into())),
            sp_previous: match (fc.sp_previous_key, fc.sp_previous_cert) {
                (None, None) => None,
                (Some(k), Some(c)) => Some((rel(k), rel(c))),
                _ => return Err(err(
                    "sp_previous_key and sp_previous_cert go together (the key pair of a rollover)"
                        .into(),
                )),
            },
            clock_skew_seconds,
            retention_days,
            max_body_bytes,
            db_wait: std::time::Duration::from_millis(db_wait_ms),
            max_upload_bytes,
            support: fc.support.unwrap_or_default(),
            smtp_url: match fc.smtp_url.filter(|u| !u.trim().is_empty()) {
                None => None,
                Some(u) => {
                    let parsed =
                        url::Url::parse(&u).map_err(|e| err(format!("smtp_url {u:?}: {e}")))?;
                    if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
                        return Err(err(format!(
                            "smtp_url {u:?}: smtp://host[:port] or smtps://host[:port]"
                        )));
                    }
                    Some(u)
                }
            },
            mail_from: fc
                .mail_from
                .unwrap_or_else(|| format!("jointure <noreply@{mail_host}>")),
            timezone,
            idps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = Config::defaults();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.sp_entity_id(), "http://127.0.0.1:8080/saml/metadata");
        assert_eq!(c.acs_url(), "http://127.0.0.1:8080/saml/acs");
        assert!(c.database_path.ends_with("jointure.db"));
        assert_eq!(c.clock_skew_seconds, 180);
    }

    #[test]
    fn file_paths_are_relative_to_the_file_and_env_overrides_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.toml");
        std::fs::write(
            &path,
            "database_url = \"sqlite://data/j.db\"\nclock_skew_seconds = 60\n[[idp]]\nmetadata = \"idp/ent.xml\"\nsubject = \"uid\"\n",
        )
        .expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let fc: FileConfig = toml::from_str(&text).expect("toml");
        let fc = apply_env(fc, |k| {
            (k == "JOINTURE_CLOCK_SKEW_SECONDS").then(|| "30".into())
        })
        .expect("env");
        let c = Config::resolve(fc, dir.path(), "j.toml").expect("valid");
        assert_eq!(c.database_path, dir.path().join("data/j.db"));
        assert_eq!(c.idps[0].metadata, Some(dir.path().join("idp/ent.xml")));
        assert_eq!(c.idps[0].subject, "uid");
        assert_eq!(c.clock_skew_seconds, 30);
    }

    #[test]
    fn bad_values_name_the_key() {
        let fc = FileConfig {
            database_url: Some("postgres://x".into()),
            ..Default::default()
        };
        let e = Config::resolve(fc, Path::new("."), "c.toml").expect_err("refused");
        assert!(e.to_string().starts_with("c.toml: database_url"), "{e}");
        let e = apply_env(FileConfig::default(), |k| {
            (k == "JOINTURE_RETENTION_DAYS").then(|| "many".into())
        })
        .expect_err("refused");
        assert!(e.to_string().contains("JOINTURE_RETENTION_DAYS"), "{e}");
    }

    #[test]
    fn an_idp_has_one_metadata_source_and_remote_metadata_is_signed_and_https() {
        let idp = |toml: &str| -> Result<Config, String> {
            let fc: FileConfig =
                toml::from_str(&format!("[[idp]]\n{toml}")).map_err(|e| e.to_string())?;
            Config::resolve(fc, Path::new("/etc/j"), "c.toml").map_err(|e| e.to_string())
        };
        let c =
            idp("metadata_url = \"https://fed.test/md.xml\"\nmetadata_signing_cert = \"fed.crt\"\nschools = \"all\"")
                .expect("valid");
        match c.metadata_source(&c.idps[0]) {
            MetadataSource::Url {
                url,
                signing_cert,
                cache,
            } => {
                assert_eq!(url, "https://fed.test/md.xml");
                assert_eq!(signing_cert, Path::new("/etc/j/fed.crt"));
                assert!(
                    cache.starts_with(c.database_path.parent().expect("dir")),
                    "{cache:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(idp(
            "metadata_url = \"http://127.0.0.1:9/md.xml\"\nmetadata_signing_cert = \"f.crt\"\nschools = [\"0751234J\"]"
        )
        .is_ok());
        for (bad, why) in [
            ("metadata_url = \"http://fed.test/md.xml\"\nmetadata_signing_cert = \"f.crt\"\nschools = \"all\"", "https"),
            ("metadata_url = \"https://fed.test/md.xml\"\nmetadata_signing_cert = \"f.crt\"", "idp.schools"),
            ("metadata_url = \"https://fed.test/md.xml\"", "metadata_signing_cert"),
            ("metadata = \"a.xml\"\nmetadata_url = \"https://fed.test/md.xml\"\nmetadata_signing_cert = \"f.crt\"", "exclusive"),
            ("metadata = \"a.xml\"\nmetadata_signing_cert = \"f.crt\"", "only with metadata_url"),
            ("subject = \"uid\"", "required"),
        ] {
            let e = idp(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn times_are_shown_in_paris_unless_told_and_a_bad_zone_is_refused() {
        assert_eq!(Config::defaults().timezone, chrono_tz::Europe::Paris);
        let fc: FileConfig = toml::from_str("timezone = \"Europe/Amsterdam\"").expect("toml");
        let c = Config::resolve(fc, Path::new("."), "c.toml").expect("valid");
        assert_eq!(c.timezone, chrono_tz::Europe::Amsterdam);
        let fc = apply_env(FileConfig::default(), |k| {
            (k == "JOINTURE_TIMEZONE").then(|| "Mars/Olympus".into())
        })
        .expect("env");
        let e = Config::resolve(fc, Path::new("."), "env").expect_err("refused");
        assert!(e.to_string().contains("timezone \"Mars/Olympus\""), "{e}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<FileConfig>("colour = \"blue\"").is_err());
    }
}
