//! One `[[idp]]` table: the attribute names read, the schools the IdP may
//! speak for, and where its metadata comes from.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The attribute names read for each piece of identity, by SAML `Name` or
/// `FriendlyName`. The defaults cover Entree, the French ENTs and EduConnect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeNames {
    pub school_code: Vec<String>,
    pub last_name: Vec<String>,
    pub first_name: Vec<String>,
    pub birth_date: Vec<String>,
    pub role: Vec<String>,
    pub class_name: Vec<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for AttributeNames {
    fn default() -> Self {
        AttributeNames {
            school_code: strings(&[
                "nlEduPersonHomeOrganizationId",
                "urn:mace:dir:attribute-def:nlEduPersonHomeOrganizationId",
                "urn:oid:1.3.6.1.4.1.1076.20.100.10.10.2",
                "ENTStructureUAI",
                "FrEduCtEleveUAI",
                "urn:oid:1.3.6.1.4.1.20326.10.999.1.72",
            ]),
            last_name: strings(&["sn", "urn:oid:2.5.4.4", "urn:mace:dir:attribute-def:sn"]),
            first_name: strings(&[
                "givenName",
                "urn:oid:2.5.4.42",
                "urn:mace:dir:attribute-def:givenName",
            ]),
            birth_date: strings(&[
                "ENTPersonDateNaissance",
                "FrEduCtDateNaissance",
                "urn:oid:1.3.6.1.4.1.20326.10.999.1.67",
                "schacDateOfBirth",
                "urn:oid:1.3.6.1.4.1.25178.1.2.3",
            ]),
            role: strings(&[
                "eduPersonAffiliation",
                "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
                "urn:mace:dir:attribute-def:eduPersonAffiliation",
                "FrEduCtPersonAffiliation",
                "urn:oid:1.3.6.1.4.1.20326.10.999.1.7",
                "ENTPersonProfils",
            ]),
            class_name: strings(&["ENTEleveClasses", "ENTEleveClasse"]),
        }
    }
}

/// One `[[idp]]` table: where its metadata comes from (a file, or a
/// federation's URL; one EntityDescriptor, or an EntitiesDescriptor meaning
/// every IdP in it) and how to read its assertions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpConfig {
    /// A metadata file (`metadata`)…
    #[serde(default)]
    pub metadata: Option<PathBuf>,
    /// …or a federation's metadata URL, fetched, signature-checked with
    /// `metadata_signing_cert` and refreshed (see [`MetadataSource`]).
    #[serde(default)]
    pub metadata_url: Option<String>,
    #[serde(default)]
    pub metadata_signing_cert: Option<PathBuf>,
    #[serde(default = "default_subject")]
    pub subject: String,
    #[serde(default)]
    pub account_id_attribute: Option<String>,
    #[serde(default = "yes")]
    pub allow_idp_initiated: bool,
    /// Step 3 of resolution: automatic matching by name and birth date.
    #[serde(default = "yes")]
    pub match_identity: bool,
    #[serde(default)]
    pub attributes: AttributeNames,
    /// The schools this IdP may speak for; `None` when the file says nothing
    /// (then "all" if it is the only IdP, see [`TrustedSchools`]).
    #[serde(default)]
    pub schools: Option<TrustedSchools>,
}

/// `[[idp]] schools`: `"all"` (a federation hub, a national IdP) or a list of
/// school codes. A school's `idp_entity_ids` (schools CSV) adds to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedSchools {
    All,
    Only(Vec<crate::resolve::SchoolCode>),
}

impl TrustedSchools {
    /// Whether this setting alone trusts the IdP for the school of this
    /// canonical code.
    pub fn includes_code(&self, code: &str) -> bool {
        match self {
            TrustedSchools::All => true,
            TrustedSchools::Only(codes) => codes.iter().any(|c| c.as_str() == code),
        }
    }
}

impl<'de> Deserialize<'de> for TrustedSchools {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "all" => Ok(TrustedSchools::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "schools: {w:?} is neither \"all\" nor a list of school codes"
            ))),
            Raw::List(codes) => codes
                .iter()
                .map(|c| {
                    crate::resolve::parse_school_code(c).ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "schools: {c:?} is neither a BRIN nor a valid UAI"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(TrustedSchools::Only),
        }
    }
}

/// Exactly one of `metadata` and `metadata_url`; a URL over HTTPS (plain
/// HTTP only to a loopback address, for tests) with the federation's
/// certificate to check it.
pub(super) fn check_metadata_source(idp: &IdpConfig) -> Result<(), String> {
    match (&idp.metadata, &idp.metadata_url, &idp.metadata_signing_cert) {
        (Some(_), None, None) => Ok(()),
        (Some(_), None, Some(_)) => Err("idp.metadata_signing_cert: only with metadata_url".into()),
        (Some(_), Some(_), _) => Err("idp: metadata and metadata_url are exclusive".into()),
        (None, None, _) => Err("idp: metadata (a file) or metadata_url is required".into()),
        (None, Some(_), None) => Err(
            "idp.metadata_signing_cert: required with metadata_url (the federation's certificate that signs the metadata)".into(),
        ),
        (None, Some(_), Some(_)) if idp.schools.is_none() => Err(
            "idp.schools: required with metadata_url (\"all\" or a list): what a federation's IdPs may speak for must not depend on how many the document lists".into(),
        ),
        (None, Some(url), Some(_)) => {
            let u = url::Url::parse(url).map_err(|e| format!("idp.metadata_url {url:?}: {e}"))?;
            let loopback = match u.host() {
                Some(url::Host::Ipv4(a)) => a.is_loopback(),
                Some(url::Host::Ipv6(a)) => a.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            match u.scheme() {
                "https" => Ok(()),
                "http" if loopback => Ok(()),
                _ => Err(format!("idp.metadata_url {url:?}: must be https")),
            }
        }
    }
}

fn default_subject() -> String {
    "nameid".into()
}
fn yes() -> bool {
    true
}

/// Where an IdP's metadata comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataSource {
    File(PathBuf),
    /// A federation's signed metadata, refreshed in the background; the
    /// last good copy is kept in `cache`.
    Url {
        url: String,
        signing_cert: PathBuf,
        cache: PathBuf,
    },
}

impl super::Config {
    /// Where an `[[idp]]`'s metadata comes from; a URL's last good copy is
    /// kept beside the database, named after the URL.
    pub fn metadata_source(&self, idp: &IdpConfig) -> MetadataSource {
        match (&idp.metadata, &idp.metadata_url, &idp.metadata_signing_cert) {
            (_, Some(url), Some(cert)) => {
                use sha2::Digest;
                let name: String = sha2::Sha256::digest(url.as_bytes())[..12]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let dir = self
                    .database_path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                MetadataSource::Url {
                    url: url.clone(),
                    signing_cert: cert.clone(),
                    cache: dir.join("metadata-cache").join(format!("{name}.xml")),
                }
            }
            (file, _, _) => MetadataSource::File(file.clone().unwrap_or_default()),
        }
    }
}

impl IdpConfig {
    /// An IdP with every default, for `JOINTURE_IDP_METADATA` and the demo.
    pub fn with_metadata(metadata: PathBuf) -> Self {
        IdpConfig {
            metadata: Some(metadata),
            metadata_url: None,
            metadata_signing_cert: None,
            subject: default_subject(),
            account_id_attribute: None,
            allow_idp_initiated: true,
            match_identity: true,
            attributes: AttributeNames::default(),
            schools: None,
        }
    }
}
