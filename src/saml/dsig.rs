//! XML Signature verification of the one kind SAML uses: an enveloped
//! signature, a direct child of the element it signs, with one Reference to
//! that element's ID.
//!
//! Everything is read from the tree the caller reads its claims from: the
//! canonical bytes are produced from it ([`super::c14n`]), digested and
//! checked with openssl against the IdP keys from metadata, decoded once
//! ([`TrustedKeys`]). The signature's own KeyInfo is never used: a key the
//! document brings proves nothing.

use super::c14n::{canonicalize, Method};
use super::xml::DS_NS;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use roxmltree::Node;

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ecdsa,
}

fn signature_method(alg: &str) -> Option<(KeyKind, MessageDigest)> {
    Some(match alg {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => {
            (KeyKind::Rsa, MessageDigest::sha256())
        }
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => {
            (KeyKind::Rsa, MessageDigest::sha384())
        }
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => {
            (KeyKind::Rsa, MessageDigest::sha512())
        }
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => {
            (KeyKind::Ecdsa, MessageDigest::sha256())
        }
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => {
            (KeyKind::Ecdsa, MessageDigest::sha384())
        }
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" => {
            (KeyKind::Ecdsa, MessageDigest::sha512())
        }
        _ => return None,
    })
}

pub fn digest_method(alg: &str) -> Option<MessageDigest> {
    Some(match alg {
        "http://www.w3.org/2001/04/xmlenc#sha256" => MessageDigest::sha256(),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => MessageDigest::sha384(),
        "http://www.w3.org/2001/04/xmlenc#sha512" => MessageDigest::sha512(),
        _ => return None,
    })
}

/// An IdP's signing keys, decoded from its metadata certificates once.
#[derive(Clone)]
pub struct TrustedKeys {
    keys: Vec<(KeyKind, PKey<Public>)>,
}

impl TrustedKeys {
    /// Decodes base64 DER certificates (as metadata carries them).
    pub fn from_certificates(certs: &[String]) -> Result<TrustedKeys, String> {
        let mut keys = Vec::new();
        for b64 in certs {
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "a signing certificate is not base64".to_string())?;
            let cert = openssl::x509::X509::from_der(&der)
                .map_err(|_| "a signing certificate is not X.509".to_string())?;
            let key = cert
                .public_key()
                .map_err(|e| format!("a signing certificate has no usable key: {e}"))?;
            let kind = match key.id() {
                Id::RSA => KeyKind::Rsa,
                Id::EC => KeyKind::Ecdsa,
                _ => return Err("a signing certificate holds neither an RSA nor an EC key".into()),
            };
            keys.push((kind, key));
        }
        Ok(TrustedKeys { keys })
    }
}

fn is(n: &Node, local: &str) -> bool {
    super::xml::is(n, DS_NS, local)
}

fn alg<'a>(n: Node<'a, '_>) -> &'a str {
    n.attribute("Algorithm").unwrap_or("")
}

/// The element children of `n`, refusing any non-blank text between them.
fn elements<'a, 'i>(n: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>, String> {
    let mut v = Vec::new();
    for c in n.children() {
        if c.is_element() {
            v.push(c);
        } else if c.text().is_some_and(|t| !t.trim().is_empty()) {
            return Err(format!("text inside <ds:{}>", n.tag_name().name()));
        }
    }
    Ok(v)
}

/// The base64 text of an element (DigestValue, SignatureValue,
/// CipherValue), white space dropped.
pub(super) fn base64_text(n: Node, what: &str) -> Result<Vec<u8>, String> {
    let b64: String = n
        .children()
        .filter_map(|c| c.text().filter(|_| c.is_text()))
        .flat_map(str::chars)
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| format!("the {what} is not base64"))
}

/// The canonicalization a CanonicalizationMethod or Transform names, with
/// its InclusiveNamespaces PrefixList.
fn c14n_method(n: Node) -> Result<Method, String> {
    let a = alg(n);
    let kids = elements(n)?;
    match (a, kids.as_slice()) {
        (C14N, []) => Ok(Method::Inclusive),
        (EXC_C14N, []) => Ok(Method::Exclusive {
            inclusive_prefixes: Vec::new(),
        }),
        (EXC_C14N, [k])
            if k.tag_name().namespace() == Some(EXC_C14N)
                && k.tag_name().name() == "InclusiveNamespaces"
                && !k.has_children()
                && k.attributes()
                    .all(|a| a.namespace().is_none() && a.name() == "PrefixList") =>
        {
            let inclusive_prefixes: Vec<String> = k
                .attribute("PrefixList")
                .unwrap_or("")
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect();
            if inclusive_prefixes.len() > MAX_INCLUSIVE_PREFIXES {
                return Err(format!(
                    "an InclusiveNamespaces PrefixList of more than {MAX_INCLUSIVE_PREFIXES} prefixes"
                ));
            }
            Ok(Method::Exclusive { inclusive_prefixes })
        }
        (C14N | EXC_C14N, _) => Err(format!(
            "canonicalization {a:?} with parameters other than one InclusiveNamespaces"
        )),
        _ => Err(format!("canonicalization {a:?} is not accepted")),
    }
}

/// SignedInfo is canonicalized before its signature is checked: a
/// stranger controls it. Its elements are the few the standard names, each
/// without children beyond them, so that work stays a few microseconds.
const MAX_INCLUSIVE_PREFIXES: usize = 16;

fn leaf(n: Node, what: &str) -> Result<(), String> {
    if n.children().any(|c| c.is_element()) {
        return Err(format!("a {what} carries elements"));
    }
    if what != "DigestValue"
        && n.children()
            .any(|c| c.text().is_some_and(|t| !t.trim().is_empty()))
    {
        return Err(format!("a {what} carries text"));
    }
    Ok(())
}

/// The attributes SignedInfo's elements may carry: what the standard names.
fn only_attributes(n: Node, allowed: &[&str]) -> Result<(), String> {
    match n
        .attributes()
        .find(|a| a.namespace().is_some() || !allowed.contains(&a.name()))
    {
        Some(a) => Err(format!(
            "<ds:{}> carries an attribute {:?} the standard does not name",
            n.tag_name().name(),
            crate::resolve::prefix_within(a.name(), 40)
        )),
        None => Ok(()),
    }
}

/// Verifies the enveloped Signature `sig` of `parent` against `keys`.
/// Refuses every variant a SAML signature has no need of: other references,
/// transforms, algorithms, Objects, Manifests.
// Long on purpose: every rule of an enveloped signature, checked in the
// order that keeps a stranger's work small (structure, then digest, then
// RSA), in one place a reviewer can read whole.
pub fn verify_enveloped(sig: Node, parent: Node, keys: &TrustedKeys) -> Result<(), String> {
    let parts = elements(sig)?;
    let (signed_info, signature_value) = match parts.as_slice() {
        [si, sv] | [si, sv, _] if is(si, "SignedInfo") && is(sv, "SignatureValue") => (*si, *sv),
        _ => {
            return Err(
                "a Signature is not SignedInfo, SignatureValue and an optional KeyInfo".into(),
            )
        }
    };
    if let Some(extra) = parts.get(2) {
        if !is(extra, "KeyInfo") {
            return Err(format!(
                "a Signature carries <{}>; only KeyInfo may follow SignatureValue",
                extra.tag_name().name()
            ));
        }
    }
    let si = elements(signed_info)?;
    let refs = si.iter().filter(|n| is(n, "Reference")).count();
    let [c14n, method, reference] = si.as_slice() else {
        return Err(format!(
            "a Signature has {refs} References; exactly one is accepted"
        ));
    };
    if !is(c14n, "CanonicalizationMethod")
        || !is(method, "SignatureMethod")
        || !is(reference, "Reference")
    {
        return Err(format!(
            "a Signature has {refs} References; exactly one is accepted, after CanonicalizationMethod and SignatureMethod"
        ));
    }
    only_attributes(signed_info, &["Id"])?;
    only_attributes(*c14n, &["Algorithm"])?;
    only_attributes(*method, &["Algorithm"])?;
    only_attributes(*reference, &["URI", "Id", "Type"])?;
    let si_c14n = c14n_method(*c14n)?;
    let (kind, md) = signature_method(alg(*method)).ok_or_else(|| {
        format!(
            "signature algorithm {:?} is not accepted (SHA-256 or stronger only)",
            alg(*method)
        )
    })?;
    leaf(*method, "SignatureMethod")?;

    // The Reference: to the parent, enveloped, canonicalized once.
    let parent_id = parent
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or("a signed element has no ID")?;
    let uri = reference.attribute("URI").unwrap_or("");
    if uri.strip_prefix('#') != Some(parent_id) {
        return Err(format!(
            "a Signature references {uri:?}, not its own element #{parent_id}"
        ));
    }
    if reference
        .attributes()
        .any(|a| a.name() == "Type" && a.namespace().is_none())
    {
        // A Reference of Type Object or Manifest points elsewhere.
        let t = reference.attribute("Type").unwrap_or("");
        if !t.is_empty() {
            return Err(format!("a Reference of Type {t:?} is not accepted"));
        }
    }
    let rparts = elements(*reference)?;
    let (transforms, digest_m, digest_v) = match rparts.as_slice() {
        [t, m, v] if is(t, "Transforms") && is(m, "DigestMethod") && is(v, "DigestValue") => {
            (elements(*t)?, *m, *v)
        }
        _ => return Err("a Reference is not Transforms, DigestMethod and DigestValue".into()),
    };
    leaf(digest_m, "DigestMethod")?;
    leaf(digest_v, "DigestValue")?;
    only_attributes(digest_m, &["Algorithm"])?;
    only_attributes(digest_v, &[])?;
    if let Some(e) = transforms.first() {
        leaf(*e, "Transform")?;
    }
    for t in &transforms {
        only_attributes(*t, &["Algorithm"])?;
    }
    let ref_c14n = match transforms.as_slice() {
        [e] if is(e, "Transform") && alg(*e) == ENVELOPED => Method::Inclusive,
        [e, c] if is(e, "Transform") && alg(*e) == ENVELOPED && is(c, "Transform") => {
            c14n_method(*c).map_err(|_| format!("transform {:?} is not accepted", alg(*c)))?
        }
        [] => return Err("a Reference has no enveloped-signature transform".into()),
        [first, ..] => {
            return Err(format!(
                "transform {:?} is not accepted (enveloped-signature, then one canonicalization)",
                alg(*first)
            ))
        }
    };
    let digest_md = digest_method(alg(digest_m)).ok_or_else(|| {
        format!(
            "digest algorithm {:?} is not accepted (SHA-256 or stronger only)",
            alg(digest_m)
        )
    })?;
    let expected = base64_text(digest_v, "DigestValue")?;
    let signed_value = base64_text(signature_value, "SignatureValue")?;

    // The signature over SignedInfo first: nothing is digested for a
    // signature no trusted key made.
    let signed_info_bytes = canonicalize(signed_info, None, &si_c14n);
    if !keys
        .keys
        .iter()
        .filter(|(k, _)| *k == kind)
        .any(|(k, key)| verify_with(*k, md, key, &signed_info_bytes, &signed_value))
    {
        return Err("the signature does not verify with the IdP's metadata keys".into());
    }
    let content = canonicalize(parent, Some(sig.id()), &ref_c14n);
    let digest = openssl::hash::hash(digest_md, &content).map_err(|e| e.to_string())?;
    if digest.len() != expected.len() || !openssl::memcmp::eq(&digest, &expected) {
        return Err(format!(
            "the digest of #{parent_id} does not match: the signed content was changed"
        ));
    }
    Ok(())
}

fn verify_with(
    kind: KeyKind,
    md: MessageDigest,
    key: &PKey<Public>,
    data: &[u8],
    sig: &[u8],
) -> bool {
    let der;
    let sig = match kind {
        KeyKind::Rsa => sig,
        KeyKind::Ecdsa => {
            // XML Signature carries r || s, each the size of the curve.
            let Some(bytes) = key
                .ec_key()
                .ok()
                .map(|k| (k.group().degree() as usize).div_ceil(8))
            else {
                return false;
            };
            if sig.len() != 2 * bytes {
                return false;
            }
            let (r, s) = sig.split_at(bytes);
            let (Ok(r), Ok(s)) = (
                openssl::bn::BigNum::from_slice(r),
                openssl::bn::BigNum::from_slice(s),
            ) else {
                return false;
            };
            der = match openssl::ecdsa::EcdsaSig::from_private_components(r, s)
                .and_then(|e| e.to_der())
            {
                Ok(d) => d,
                Err(_) => return false,
            };
            &der
        }
    };
    openssl::sign::Verifier::new(md, key)
        .and_then(|mut v| {
            v.update(data)?;
            v.verify(sig)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use samael::crypto::{Crypto, CryptoProvider};

    fn ec_key_and_cert(nid: Nid) -> (Vec<u8>, String) {
        let group = EcGroup::from_curve_name(nid).expect("curve");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let mut name = openssl::x509::X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "ec idp").expect("cn");
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().expect("builder");
        b.set_version(2).expect("version");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        let now = openssl::asn1::Asn1Time::days_from_now(0).expect("now");
        let later = openssl::asn1::Asn1Time::days_from_now(1).expect("later");
        b.set_not_before(&now).expect("nb");
        b.set_not_after(&later).expect("na");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        let cert = b.build().to_der().expect("der");
        (
            key.private_key_to_der().expect("key der"),
            base64::engine::general_purpose::STANDARD.encode(cert),
        )
    }

    fn template(alg: &str) -> String {
        format!(
            "<r:Doc xmlns:r=\"urn:r\" ID=\"_d1\"><r:v a=\"1\">text &amp; more</r:v><ds:Signature xmlns:ds=\"{DS_NS}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/><ds:SignatureMethod Algorithm=\"{alg}\"/><ds:Reference URI=\"#_d1\"><ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"/><ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature></r:Doc>"
        )
    }

    fn check(xml: &str, keys: &TrustedKeys) -> Result<(), String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let sig = doc
            .descendants()
            .find(|n| is(n, "Signature"))
            .ok_or("no signature")?;
        verify_enveloped(sig, doc.root_element(), keys)
    }

    #[test]
    fn ecdsa_signatures_made_by_libxmlsec1_verify_on_every_curve() {
        for (nid, alg) in [
            (
                Nid::X9_62_PRIME256V1,
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            ),
            (
                Nid::SECP384R1,
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
            ),
            (
                Nid::SECP521R1,
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
            ),
        ] {
            let (key_der, cert) = ec_key_and_cert(nid);
            let signed = Crypto::sign_xml(template(alg), &key_der).expect("libxmlsec1 signs");
            let keys = TrustedKeys::from_certificates(&[cert]).expect("keys");
            check(&signed, &keys).expect("verifies");
            let tampered = signed.replace("text &amp; more", "text &amp; less");
            assert!(check(&tampered, &keys)
                .expect_err("tampered")
                .contains("digest"));
            // Another key of the same curve does not verify it.
            let (_, other) = ec_key_and_cert(nid);
            let other = TrustedKeys::from_certificates(&[other]).expect("keys");
            assert!(check(&signed, &other).is_err());
        }
    }

    #[test]
    fn a_key_of_the_wrong_kind_never_verifies() {
        let (key_der, cert) = ec_key_and_cert(Nid::X9_62_PRIME256V1);
        let alg = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
        let signed = Crypto::sign_xml(template(alg), &key_der).expect("signs");
        // The same document claiming RSA is refused: the only key is EC.
        let as_rsa = signed.replace(alg, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
        let keys = TrustedKeys::from_certificates(&[cert]).expect("keys");
        assert!(check(&as_rsa, &keys).is_err());
    }
}

#[cfg(test)]
mod signed_by_hand {
    use super::*;

    /// A document whose SignedInfo is signed here, so that a trusted key can
    /// sign what no signing library would write.
    #[test]
    fn a_signed_digest_of_the_wrong_length_is_refused_not_a_panic() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("key");
        let cert = crate::saml::keys::self_signed(&key, "idp", 1).expect("cert");
        let cert = base64::engine::general_purpose::STANDARD.encode(cert.to_der().expect("der"));
        let keys = TrustedKeys::from_certificates(&[cert]).expect("keys");
        // A sha256 DigestMethod with a 64-byte DigestValue.
        let long = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        let signed_info = format!(
            "<ds:SignedInfo xmlns:ds=\"{DS_NS}\"><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"#_d1\"><ds:Transforms><ds:Transform Algorithm=\"{ENVELOPED}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>{long}</ds:DigestValue></ds:Reference></ds:SignedInfo>"
        );
        let si_doc = roxmltree::Document::parse(&signed_info).expect("si");
        let bytes = canonicalize(
            si_doc.root_element(),
            None,
            &Method::Exclusive {
                inclusive_prefixes: vec![],
            },
        );
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key).expect("signer");
        signer.update(&bytes).expect("update");
        let sig =
            base64::engine::general_purpose::STANDARD.encode(signer.sign_to_vec().expect("sig"));
        let xml = format!(
            "<r:Doc xmlns:r=\"urn:r\" ID=\"_d1\"><ds:Signature xmlns:ds=\"{DS_NS}\">{}<ds:SignatureValue>{sig}</ds:SignatureValue></ds:Signature></r:Doc>",
            signed_info.replacen(&format!(" xmlns:ds=\"{DS_NS}\""), "", 1)
        );
        let doc = roxmltree::Document::parse(&xml).expect("doc");
        let s = doc.descendants().find(|n| is(n, "Signature")).expect("sig");
        let err = verify_enveloped(s, doc.root_element(), &keys).expect_err("refused");
        assert!(err.contains("digest"), "{err}");
    }
}
