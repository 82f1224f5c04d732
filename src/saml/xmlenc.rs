//! XML Encryption of SAML elements (EncryptedAssertion, EncryptedID,
//! EncryptedAttribute): decryption with the SP keys (the current one and,
//! during a rollover, the previous one), and for the demo IdP and the tests,
//! encryption to a key.
//!
//! Accepted: the content key wrapped with RSA-OAEP (`rsa-oaep-mgf1p`, or
//! `xmlenc11#rsa-oaep` with SHA-1 or SHA-2 digests and MGF1 with SHA-1 or
//! SHA-2), the content in AES-GCM or AES-CBC. Refused: RSA PKCS#1 v1.5 key
//! transport (Bleichenbacher's oracle). AES-CBC is malleable: in an unsigned
//! Response an attacker may alter the ciphertext and watch how it fails
//! (the padding oracle of Jager and Somorovsky, 2011). So the verifier
//! gives every failure from decryption to the inner signature one and the
//! same answer (README, "Encrypted assertions"); nothing a decryption
//! reveals reaches the sender. The EncryptedKey may sit in the
//! EncryptedData's KeyInfo or beside it, as IdPs do both.

use super::xml::{child, is, DS_NS, SAML_NS};
use base64::Engine;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Private, Public};
use openssl::symm::Cipher;
use roxmltree::Node;

const MAX_ENCRYPTED_KEYS: usize = 4;
pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";

fn only_child<'a, 'i>(n: Node<'a, 'i>, ns: &str, local: &str) -> Result<Node<'a, 'i>, String> {
    let mut it = n.children().filter(|c| is(c, ns, local));
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(c),
        (None, _) => Err(format!("no {local} in <{}>", n.tag_name().name())),
        (Some(_), Some(_)) => Err(format!("two {local} in <{}>", n.tag_name().name())),
    }
}

fn cipher_value(n: Node) -> Result<Vec<u8>, String> {
    let cv = only_child(
        only_child(n, XENC_NS, "CipherData")?,
        XENC_NS,
        "CipherValue",
    )?;
    super::dsig::base64_text(cv, "CipherValue")
}

fn md_of(alg: &str) -> Option<&'static MdRef> {
    Some(match alg {
        "http://www.w3.org/2000/09/xmldsig#sha1" => Md::sha1(),
        "http://www.w3.org/2001/04/xmlenc#sha256" => Md::sha256(),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Md::sha384(),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Md::sha512(),
        _ => return None,
    })
}

fn mgf_of(alg: &str) -> Option<&'static MdRef> {
    Some(match alg {
        "http://www.w3.org/2009/xmlenc11#mgf1sha1" => Md::sha1(),
        "http://www.w3.org/2009/xmlenc11#mgf1sha256" => Md::sha256(),
        "http://www.w3.org/2009/xmlenc11#mgf1sha384" => Md::sha384(),
        "http://www.w3.org/2009/xmlenc11#mgf1sha512" => Md::sha512(),
        _ => return None,
    })
}

/// Unwraps the content key of an EncryptedKey with one of the SP's keys.
fn unwrap_key(ek: Node, sp_keys: &[PKey<Private>]) -> Result<Vec<u8>, String> {
    let method = only_child(ek, XENC_NS, "EncryptionMethod")?;
    let alg = method.attribute("Algorithm").unwrap_or("");
    let digest = match child(method, DS_NS, "DigestMethod") {
        None => Md::sha1(),
        Some(d) => md_of(d.attribute("Algorithm").unwrap_or("")).ok_or("an unknown OAEP digest")?,
    };
    let mgf = match (alg, child(method, XENC11_NS, "MGF")) {
        (RSA_OAEP_MGF1P, None) => Md::sha1(),
        (RSA_OAEP, None) => Md::sha1(),
        (RSA_OAEP, Some(m)) => {
            mgf_of(m.attribute("Algorithm").unwrap_or("")).ok_or("an unknown OAEP mask function")?
        }
        _ => return Err(format!("key transport {alg:?} is refused; RSA-OAEP only")),
    };
    if child(method, XENC_NS, "OAEPparams").is_some() {
        return Err("OAEP parameters are not accepted".into());
    }
    let wrapped = cipher_value(ek)?;
    for sp_key in sp_keys.iter().filter(|k| k.size() == wrapped.len()) {
        let mut ctx = openssl::pkey_ctx::PkeyCtx::new(sp_key).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let opened = ctx
            .decrypt_init()
            .and_then(|_| ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP))
            .and_then(|_| ctx.set_rsa_oaep_md(digest))
            .and_then(|_| ctx.set_rsa_mgf1_md(mgf))
            .and_then(|_| ctx.decrypt_to_vec(&wrapped, &mut out));
        if opened.is_ok() {
            return Ok(out);
        }
    }
    Err("the content key does not decrypt with our key (is the IdP using the encryption certificate of our metadata?)".into())
}

struct DataCipher {
    cipher: Cipher,
    key_len: usize,
    gcm: bool,
}

fn data_cipher(alg: &str) -> Option<DataCipher> {
    let (cipher, key_len, gcm) = match alg {
        "http://www.w3.org/2009/xmlenc11#aes128-gcm" => (Cipher::aes_128_gcm(), 16, true),
        "http://www.w3.org/2009/xmlenc11#aes192-gcm" => (Cipher::aes_192_gcm(), 24, true),
        "http://www.w3.org/2009/xmlenc11#aes256-gcm" => (Cipher::aes_256_gcm(), 32, true),
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => (Cipher::aes_128_cbc(), 16, false),
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => (Cipher::aes_192_cbc(), 24, false),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => (Cipher::aes_256_cbc(), 32, false),
        _ => return None,
    };
    Some(DataCipher {
        cipher,
        key_len,
        gcm,
    })
}

/// Decrypts an EncryptedAssertion, EncryptedID or EncryptedAttribute into
/// the text of the element it hides.
// Long on purpose: the decryption rules in order (element, algorithms,
// keys tried, then the content), so the bounds on a stranger's work read
// together.
pub fn decrypt_element(encrypted: Node, sp_keys: &[PKey<Private>]) -> Result<String, String> {
    let data = only_child(encrypted, XENC_NS, "EncryptedData")?;
    if let Some(t) = data.attribute("Type") {
        if t != "http://www.w3.org/2001/04/xmlenc#Element" {
            return Err(format!(
                "EncryptedData of Type {t:?}; an Element is expected"
            ));
        }
    }
    let alg = only_child(data, XENC_NS, "EncryptionMethod")?
        .attribute("Algorithm")
        .unwrap_or("");
    let dc =
        data_cipher(alg).ok_or_else(|| format!("content encryption {alg:?} is not accepted"))?;
    let in_key_info = child(data, DS_NS, "KeyInfo")
        .map(|ki| {
            ki.children()
                .filter(|c| is(c, XENC_NS, "EncryptedKey"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let beside: Vec<_> = encrypted
        .children()
        .filter(|c| is(c, XENC_NS, "EncryptedKey"))
        .collect();
    let candidates = if in_key_info.is_empty() {
        beside
    } else {
        in_key_info
    };
    if candidates.is_empty() {
        return Err("the encrypted element carries no EncryptedKey".into());
    }
    // Several EncryptedKeys are one per recipient; ours is the one that
    // opens with our key. Each try is an RSA private-key operation, so a
    // stranger's list is cut short: at most four, each tried only with our
    // keys of exactly its length (at most 4 × 2 operations).
    if candidates.len() > MAX_ENCRYPTED_KEYS {
        return Err(format!("more than {MAX_ENCRYPTED_KEYS} EncryptedKeys"));
    }
    let mut last = String::new();
    let key = candidates
        .iter()
        .find_map(|ek| match unwrap_key(*ek, sp_keys) {
            Ok(k) => Some(k),
            Err(e) => {
                last = e;
                None
            }
        })
        .ok_or(last)?;
    if key.len() != dc.key_len {
        return Err("the content key has the wrong length".into());
    }
    let body = cipher_value(data)?;
    let plain = if dc.gcm {
        if body.len() < 12 + 16 {
            return Err("the ciphertext is too short".into());
        }
        let (iv, rest) = body.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        openssl::symm::decrypt_aead(dc.cipher, &key, Some(iv), &[], ct, tag)
            .map_err(|_| "the content does not decrypt".to_string())?
    } else {
        if body.len() < 32 || body.len() % 16 != 0 {
            return Err("the ciphertext is not whole AES blocks".into());
        }
        let (iv, ct) = body.split_at(16);
        let mut c =
            openssl::symm::Crypter::new(dc.cipher, openssl::symm::Mode::Decrypt, &key, Some(iv))
                .map_err(|e| e.to_string())?;
        c.pad(false);
        let mut out = vec![0; ct.len() + 16];
        let mut n = c
            .update(ct, &mut out)
            .map_err(|_| "the content does not decrypt")?;
        n += c
            .finalize(&mut out[n..])
            .map_err(|_| "the content does not decrypt")?;
        out.truncate(n);
        // XML Encryption's padding: the last byte says how many to drop.
        let pad = usize::from(*out.last().ok_or("the content does not decrypt")?);
        if pad == 0 || pad > 16 || pad > out.len() {
            return Err("the content does not decrypt".into());
        }
        out.truncate(out.len() - pad);
        out
    };
    String::from_utf8(plain).map_err(|_| "the decrypted content is not UTF-8".into())
}

/// Encrypts `assertion` (its XML text) to `sp_key`, as an IdP does: AES-GCM
/// (or AES-CBC when `gcm` is false) under a fresh key wrapped with
/// RSA-OAEP, the EncryptedKey inside the EncryptedData's KeyInfo.
pub fn encrypt_assertion(
    assertion: &str,
    sp_key: &PKey<Public>,
    gcm: bool,
) -> Result<String, String> {
    encrypt_element(assertion, sp_key, gcm, "EncryptedAssertion")
}

/// Encrypts an element's XML text as `wrapper` (`EncryptedAssertion`,
/// `EncryptedID` or `EncryptedAttribute`), as [`encrypt_assertion`] does.
pub fn encrypt_element(
    assertion: &str,
    sp_key: &PKey<Public>,
    gcm: bool,
    wrapper: &str,
) -> Result<String, String> {
    let e = |e: openssl::error::ErrorStack| e.to_string();
    let mut key = [0u8; 16];
    openssl::rand::rand_bytes(&mut key).map_err(e)?;
    let (alg, body) = if gcm {
        let mut iv = [0u8; 12];
        openssl::rand::rand_bytes(&mut iv).map_err(e)?;
        let mut tag = [0u8; 16];
        let ct = openssl::symm::encrypt_aead(
            Cipher::aes_128_gcm(),
            &key,
            Some(&iv),
            &[],
            assertion.as_bytes(),
            &mut tag,
        )
        .map_err(e)?;
        (
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            [&iv[..], &ct, &tag].concat(),
        )
    } else {
        let mut iv = [0u8; 16];
        openssl::rand::rand_bytes(&mut iv).map_err(e)?;
        let ct =
            openssl::symm::encrypt(Cipher::aes_128_cbc(), &key, Some(&iv), assertion.as_bytes())
                .map_err(e)?;
        (
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            [&iv[..], &ct].concat(),
        )
    };
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(sp_key).map_err(e)?;
    let mut wrapped = Vec::new();
    ctx.encrypt_init()
        .and_then(|_| ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP))
        .and_then(|_| ctx.encrypt_to_vec(&key, &mut wrapped))
        .map_err(e)?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(format!(
        "<saml:{wrapper} xmlns:saml=\"{SAML_NS}\"><xenc:EncryptedData xmlns:xenc=\"{XENC_NS}\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\"><xenc:EncryptionMethod Algorithm=\"{alg}\"/><ds:KeyInfo xmlns:ds=\"{DS_NS}\"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm=\"{RSA_OAEP_MGF1P}\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/></xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:{wrapper}>",
        b64(&wrapped),
        b64(&body),
    ))
}
