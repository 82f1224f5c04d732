//! Reading the two bindings: HTTP-Redirect (the raw query, its DEFLATE
//! and its query signature) and HTTP-POST (a form body), bounded before
//! anything is decoded.

use super::*;

/// `%XX` and `+` decoded, as `application/x-www-form-urlencoded` says.
pub(super) fn percent_decode(raw: &str) -> Vec<u8> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Base64 as bindings carry it: white space dropped, and a space put back
/// to the `+` that an unencoded query turned into one (base64 has no
/// spaces, so nothing else is meant).
pub(super) fn base64_value(bytes: &[u8], what: &str) -> Result<Vec<u8>, Refusal> {
    let compact: Vec<u8> = bytes
        .iter()
        .filter(|b| !matches!(b, b'\r' | b'\n' | b'\t'))
        .map(|&b| if b == b' ' { b'+' } else { b })
        .collect();
    if compact.is_empty() {
        return Err(unverifiable(format!("the {what} is empty")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| unverifiable(format!("the {what} is not valid base64")))
}

pub(super) fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, Refusal> {
    String::from_utf8(bytes).map_err(|_| unverifiable(format!("the {what} is not UTF-8 text")))
}

/// Inflates raw DEFLATE, stopping past [`MAX_MESSAGE_BYTES`].
pub(super) fn inflate(deflated: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| unverifiable("the message is not DEFLATE data"))?;
    if out.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::TooLarge(format!(
            "the message inflates to more than {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    Ok(out)
}

pub(super) fn relay_state(bytes: Vec<u8>) -> Result<String, Refusal> {
    if bytes.len() > MAX_RELAY_STATE_BYTES {
        return Err(Refusal::TooLarge(format!(
            "a RelayState over {MAX_RELAY_STATE_BYTES} bytes"
        )));
    }
    utf8(bytes, "RelayState")
}

/// Reads the HTTP-Redirect binding from the raw query string. The signed
/// octets are taken from it as they came, never re-encoded.
pub fn from_query(query: &str) -> Result<Incoming, Refusal> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Refusal::TooLarge(format!(
            "a query string over {MAX_QUERY_BYTES} bytes"
        )));
    }
    const NAMES: [&str; 5] = [
        "SAMLRequest",
        "SAMLResponse",
        "RelayState",
        "SigAlg",
        "Signature",
    ];
    let mut raw: [Option<&str>; 5] = [None; 5];
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(i) = NAMES.iter().position(|n| *n == k) else {
            continue;
        };
        if raw[i].replace(v).is_some() {
            return Err(unverifiable(format!("the {k} parameter is given twice")));
        }
    }
    let [req, res, relay, sig_alg, signature] = raw;
    let (is_request, param, message) = match (req, res) {
        (Some(m), None) => (true, "SAMLRequest", m),
        (None, Some(m)) => (false, "SAMLResponse", m),
        (Some(_), Some(_)) => {
            return Err(unverifiable("both SAMLRequest and SAMLResponse are given"))
        }
        (None, None) => return Err(unverifiable("no SAMLRequest or SAMLResponse parameter")),
    };
    let mut signed = format!("{param}={message}");
    if let Some(r) = relay {
        signed.push_str("&RelayState=");
        signed.push_str(r);
    }
    if let Some(a) = sig_alg {
        signed.push_str("&SigAlg=");
        signed.push_str(a);
    }
    let xml = utf8(
        inflate(&base64_value(&percent_decode(message), param)?)?,
        param,
    )?;
    let relay_state = relay.map(|r| relay_state(percent_decode(r))).transpose()?;
    let sig_alg = sig_alg
        .map(|a| utf8(percent_decode(a), "SigAlg"))
        .transpose()?;
    let signature = signature
        .map(|s| base64_value(&percent_decode(s), "Signature"))
        .transpose()?;
    Ok(Incoming {
        is_request,
        xml,
        relay_state,
        redirect: Some(QuerySignature {
            signed,
            sig_alg,
            signature,
        }),
    })
}

/// Reads the HTTP-POST binding from a form body.
pub fn from_form(body: &[u8]) -> Result<Incoming, Refusal> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal::TooLarge(format!(
            "a POST body over {MAX_BODY_BYTES} bytes"
        )));
    }
    let (mut req, mut res, mut relay) = (None, None, None);
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "SAMLRequest" => &mut req,
            "SAMLResponse" => &mut res,
            "RelayState" => &mut relay,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(unverifiable(format!("the {k} field is given twice")));
        }
    }
    let (is_request, what, message) = match (req, res) {
        (Some(m), None) => (true, "SAMLRequest", m),
        (None, Some(m)) => (false, "SAMLResponse", m),
        (Some(_), Some(_)) => {
            return Err(unverifiable("both SAMLRequest and SAMLResponse are given"))
        }
        (None, None) => return Err(unverifiable("no SAMLRequest or SAMLResponse field")),
    };
    let xml = utf8(base64_value(message.as_bytes(), what)?, what)?;
    if xml.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::TooLarge(format!(
            "a message over {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    Ok(Incoming {
        is_request,
        xml,
        relay_state: relay.map(|r| relay_state(r.into_bytes())).transpose()?,
        redirect: None,
    })
}

/// The key kind and digest of an accepted SigAlg: SHA-256 or stronger.
pub(super) fn query_signature_method(alg: &str) -> Option<(Id, MessageDigest)> {
    Some(match alg {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => (Id::RSA, MessageDigest::sha256()),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => (Id::RSA, MessageDigest::sha384()),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => (Id::RSA, MessageDigest::sha512()),
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => (Id::EC, MessageDigest::sha256()),
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => (Id::EC, MessageDigest::sha384()),
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" => (Id::EC, MessageDigest::sha512()),
        _ => return None,
    })
}

/// The public keys of base64 DER certificates (as metadata carries them).
pub(super) fn certificate_keys(certs: &[String]) -> Vec<PKey<Public>> {
    certs
        .iter()
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter_map(|der| openssl::x509::X509::from_der(&der).ok())
        .filter_map(|cert| cert.public_key().ok())
        .collect()
}

/// An ECDSA signature as openssl checks it (DER). The value may come as
/// `r || s` of the curve's size (as XML Signature writes it) or as DER (as
/// Java signers write it for this binding); both prove the same key.
pub(super) fn ecdsa_forms(key: &PKey<Public>, sig: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![sig.to_vec()];
    let Some(size) = key
        .ec_key()
        .ok()
        .map(|k| (k.group().degree() as usize).div_ceil(8))
    else {
        return forms;
    };
    if sig.len() == 2 * size {
        let (r, s) = sig.split_at(size);
        if let (Ok(r), Ok(s)) = (
            openssl::bn::BigNum::from_slice(r),
            openssl::bn::BigNum::from_slice(s),
        ) {
            if let Ok(der) =
                openssl::ecdsa::EcdsaSig::from_private_components(r, s).and_then(|e| e.to_der())
            {
                forms.insert(0, der);
            }
        }
    }
    forms
}

/// Checks the query signature of an HTTP-Redirect message with the IdP's
/// metadata keys.
pub(super) fn verify_query_signature(q: &QuerySignature, certs: &[String]) -> Result<(), Refusal> {
    let (Some(alg), Some(signature)) = (&q.sig_alg, &q.signature) else {
        return Err(unverifiable(
            "the message is not signed (no SigAlg and Signature parameters)",
        ));
    };
    let (kind, md) = query_signature_method(alg).ok_or_else(|| {
        unverifiable(format!(
            "signature algorithm {:?} is not accepted (SHA-256 or stronger only)",
            crate::resolve::prefix_within(alg, 80)
        ))
    })?;
    let verifies = |key: &PKey<Public>, sig: &[u8]| {
        openssl::sign::Verifier::new(md, key)
            .and_then(|mut v| {
                v.update(q.signed.as_bytes())?;
                v.verify(sig)
            })
            .unwrap_or(false)
    };
    let ok = certificate_keys(certs)
        .iter()
        .filter(|k| k.id() == kind)
        .any(|k| match kind {
            Id::EC => ecdsa_forms(k, signature).iter().any(|s| verifies(k, s)),
            _ => verifies(k, signature),
        });
    if ok {
        Ok(())
    } else {
        Err(unverifiable(
            "the query signature does not verify with the IdP's metadata keys",
        ))
    }
}
