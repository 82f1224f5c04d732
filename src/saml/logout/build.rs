//! Our logout messages: LogoutRequest and LogoutResponse XML, and the
//! signed HTTP-Redirect URL that carries them.

use super::*;

/// The NameID of a session, exactly as the IdP sent it at login.
#[derive(Debug, Clone, Copy)]
pub struct NameId<'a> {
    pub value: &'a str,
    pub format: Option<&'a str>,
    pub name_qualifier: Option<&'a str>,
    pub sp_name_qualifier: Option<&'a str>,
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn attr(name: &str, value: Option<&str>) -> String {
    value
        .map(|v| format!(" {name}=\"{}\"", escape(v)))
        .unwrap_or_default()
}

/// Our LogoutRequest for the person `name_id` of the IdP session
/// `session_index`, to `destination` (the IdP's SingleLogoutService).
pub fn logout_request_xml(
    id: &str,
    sp_entity_id: &str,
    destination: &str,
    name_id: &NameId,
    session_index: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let index = session_index
        .map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(i)))
        .unwrap_or_default();
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{ii}\" Destination=\"{dest}\" Reason=\"{REASON_USER}\"><saml:Issuer>{iss}</saml:Issuer><saml:NameID{fmt}{nq}{spnq}>{value}</saml:NameID>{index}</samlp:LogoutRequest>",
        id = escape(id),
        ii = ts(now),
        dest = escape(destination),
        iss = escape(sp_entity_id),
        fmt = attr("Format", name_id.format),
        nq = attr("NameQualifier", name_id.name_qualifier),
        spnq = attr("SPNameQualifier", name_id.sp_name_qualifier),
        value = escape(name_id.value),
    )
}

/// Our LogoutResponse to the IdP's request `in_response_to`.
pub fn logout_response_xml(
    id: &str,
    sp_entity_id: &str,
    destination: &str,
    in_response_to: &str,
    status: Status,
    now: DateTime<Utc>,
) -> String {
    let code = match status.sub_code {
        None => format!("<samlp:StatusCode Value=\"{}\"/>", status.code),
        Some(sub) => format!(
            "<samlp:StatusCode Value=\"{}\"><samlp:StatusCode Value=\"{sub}\"/></samlp:StatusCode>",
            status.code
        ),
    };
    format!(
        "<samlp:LogoutResponse xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{ii}\" Destination=\"{dest}\" InResponseTo=\"{irt}\"><saml:Issuer>{iss}</saml:Issuer><samlp:Status>{code}</samlp:Status></samlp:LogoutResponse>",
        id = escape(id),
        ii = ts(now),
        dest = escape(destination),
        irt = escape(in_response_to),
        iss = escape(sp_entity_id),
    )
}

/// A message as the HTTP-Redirect binding carries it: raw DEFLATE, base64,
/// then URL-encoded.
pub fn encode_redirect_message(xml: &str) -> Result<String, String> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(xml.as_bytes())
        .map_err(|e| format!("deflating: {e}"))?;
    let deflated = enc.finish().map_err(|e| format!("deflating: {e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(deflated);
    Ok(url_encode(&b64))
}

/// URL-encodes a query value.
pub fn url_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The URL that sends `xml` as `param` (`SAMLRequest` or `SAMLResponse`)
/// to `location` by the HTTP-Redirect binding, signed RSA-SHA256 with
/// `key` over `param=…&RelayState=…&SigAlg=…` (bindings §3.4.4.1).
pub fn signed_redirect(
    location: &str,
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
    key: &PKey<Private>,
) -> Result<String, String> {
    if key.id() != Id::RSA {
        return Err("the SP key is not an RSA key; redirect signatures need one".into());
    }
    let mut query = format!("{param}={}", encode_redirect_message(xml)?);
    if let Some(r) = relay_state {
        query.push_str("&RelayState=");
        query.push_str(&url_encode(r));
    }
    query.push_str("&SigAlg=");
    query.push_str(&url_encode(RSA_SHA256));
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key)
        .map_err(|e| format!("signing: {e}"))?;
    signer
        .update(query.as_bytes())
        .map_err(|e| format!("signing: {e}"))?;
    let signature = signer.sign_to_vec().map_err(|e| format!("signing: {e}"))?;
    query.push_str("&Signature=");
    query.push_str(&url_encode(
        &base64::engine::general_purpose::STANDARD.encode(signature),
    ));
    let mut url = url::Url::parse(location).map_err(|e| format!("{location:?}: {e}"))?;
    let full = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{query}"),
        _ => query,
    };
    url.set_query(Some(&full));
    Ok(url.to_string())
}
