//! The SP's own key pair: read from PEM files, or generated on first start.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Name, X509};
use std::path::Path;

/// The SP's signing (and decryption) key and its certificate.
#[derive(Clone)]
pub struct SpKeys {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl SpKeys {
    /// The certificate's DER bytes in base64, as metadata carries them.
    pub fn cert_base64(&self) -> Result<String, openssl::error::ErrorStack> {
        use base64::Engine;
        Ok(base64::engine::general_purpose::STANDARD.encode(self.cert.to_der()?))
    }
}

/// Reads the key and certificate; when both files are missing, generates an
/// RSA-3072 key and a ten-year self-signed certificate and writes them (the
/// key readable by the owner only). One missing and one present is an error:
/// silently replacing half of a pair would break every IdP's trust.
pub fn load_or_generate(key_path: &Path, cert_path: &Path, cn: &str) -> Result<SpKeys, String> {
    match (key_path.exists(), cert_path.exists()) {
        (true, true) => load(key_path, cert_path),
        (false, false) => {
            let keys = generate(cn, 3072).map_err(|e| format!("generating SP key: {e}"))?;
            write_pem(
                key_path,
                &keys
                    .key
                    .private_key_to_pem_pkcs8()
                    .map_err(|e| e.to_string())?,
                true,
            )?;
            write_pem(
                cert_path,
                &keys.cert.to_pem().map_err(|e| e.to_string())?,
                false,
            )?;
            tracing::info!(key = %key_path.display(), cert = %cert_path.display(), "generated SP key pair");
            Ok(keys)
        }
        (true, false) => Err(format!(
            "{}: missing while the key {} exists",
            cert_path.display(),
            key_path.display()
        )),
        (false, true) => Err(format!(
            "{}: missing while the certificate {} exists",
            key_path.display(),
            cert_path.display()
        )),
    }
}

/// Reads a key pair that must exist, and checks that the certificate is
/// the key's.
pub fn load(key_path: &Path, cert_path: &Path) -> Result<SpKeys, String> {
    let key_pem =
        std::fs::read(key_path).map_err(|e| format!("{}: cannot read: {e}", key_path.display()))?;
    let cert_pem = std::fs::read(cert_path)
        .map_err(|e| format!("{}: cannot read: {e}", cert_path.display()))?;
    let key = PKey::private_key_from_pem(&key_pem)
        .map_err(|_| format!("{}: not a PEM private key", key_path.display()))?;
    let cert = X509::from_pem(&cert_pem)
        .map_err(|_| format!("{}: not a PEM certificate", cert_path.display()))?;
    let matches = cert
        .public_key()
        .map(|p| p.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(format!(
            "{}: certificate does not belong to the key in {}",
            cert_path.display(),
            key_path.display()
        ));
    }
    Ok(SpKeys { key, cert })
}

fn write_pem(path: &Path, pem: &[u8], private: bool) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(path)
            .map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
        f.write_all(pem)
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }
    #[cfg(not(unix))]
    {
        let _ = private;
        std::fs::write(path, pem).map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }
}

/// A fresh RSA key and a self-signed SHA-256 certificate for it.
pub fn generate(cn: &str, bits: u32) -> Result<SpKeys, openssl::error::ErrorStack> {
    let key = PKey::from_rsa(Rsa::generate(bits)?)?;
    let cert = self_signed(&key, cn, 3650)?;
    Ok(SpKeys { key, cert })
}

/// A self-signed certificate of `key` (RSA or EC) for `cn`, valid `days`.
pub fn self_signed(
    key: &PKey<Private>,
    cn: &str,
    days: u32,
) -> Result<X509, openssl::error::ErrorStack> {
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    let name = name.build();
    let mut b = X509::builder()?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_version(2)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(days)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}
