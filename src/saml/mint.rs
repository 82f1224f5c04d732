//! A small SAML identity provider that mints signed responses: the demo IdP
//! of `serve --demo`, and the tests' source of real signed responses (fresh
//! keys, current times; nothing stored that could expire).

use super::keys::{generate, SpKeys};
use super::metadata::escape;
use super::xml::{DS_NS, MD_NS};
use chrono::{DateTime, Duration, Utc};
use samael::crypto::{Crypto, CryptoProvider};

/// An IdP with its own key pair.
pub struct MintingIdp {
    pub entity_id: String,
    keys: SpKeys,
    key_der: Vec<u8>,
}

/// Which parts carry a signature, and with which algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signing {
    pub response: bool,
    pub assertion: bool,
    /// RSA-SHA1 with SHA-1 digests, which must be refused.
    pub sha1: bool,
}

impl Default for Signing {
    fn default() -> Self {
        Signing {
            response: false,
            assertion: true,
            sha1: false,
        }
    }
}

/// What [`ResponseSpec::encrypt`] encrypts, to which key, how.
#[derive(Debug, Clone)]
pub struct EncryptParts {
    pub to: openssl::pkey::PKey<openssl::pkey::Public>,
    pub gcm: bool,
    pub name_id: bool,
    pub attributes: bool,
}

impl EncryptParts {
    fn apply(&self, on: bool, xml: String, wrapper: &str) -> Result<String, String> {
        if on {
            super::xmlenc::encrypt_element(&xml, &self.to, self.gcm, wrapper)
        } else {
            Ok(xml)
        }
    }
}

/// Everything a minted response says. [`ResponseSpec::new`] gives a valid
/// one; tests and demo scenarios change one field to reach each failure.
#[derive(Debug, Clone)]
pub struct ResponseSpec {
    pub issuer: String,
    pub destination: Option<String>,
    pub audience: Option<String>,
    pub recipient: String,
    pub in_response_to: Option<String>,
    pub name_id: String,
    /// The NameID's Format (persistent unless a test says otherwise).
    pub name_id_format: String,
    pub attributes: Vec<(String, Vec<String>)>,
    /// Whole `<saml:Attribute>` elements written as given, after the
    /// others: for values that are XML (an eduPersonTargetedID's NameID).
    pub xml_attributes: Vec<String>,
    /// Parts of the Assertion encrypted to the SP (EncryptedID,
    /// EncryptedAttribute), as some IdPs send them.
    pub encrypt: Option<EncryptParts>,
    pub issue_instant: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub not_on_or_after: DateTime<Utc>,
    /// The AuthnStatement's SessionNotOnOrAfter (none unless a test sets it).
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    /// None for Success.
    pub status: Option<String>,
    pub signing: Signing,
    pub response_id: String,
    pub assertion_id: String,
}

/// A random XML ID (an NCName: it starts with `_`).
pub fn random_id() -> String {
    let bytes: [u8; 16] = rand::random();
    format!("_{}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl ResponseSpec {
    /// A valid response of `issuer` for the SP at `sp_entity_id`/`acs_url`.
    pub fn new(issuer: &str, sp_entity_id: &str, acs_url: &str, name_id: &str) -> Self {
        let now = Utc::now();
        ResponseSpec {
            issuer: issuer.into(),
            destination: Some(acs_url.into()),
            audience: Some(sp_entity_id.into()),
            recipient: acs_url.into(),
            in_response_to: None,
            name_id: name_id.into(),
            name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into(),
            attributes: Vec::new(),
            xml_attributes: Vec::new(),
            encrypt: None,
            issue_instant: now,
            not_before: now - Duration::seconds(60),
            not_on_or_after: now + Duration::seconds(300),
            session_not_on_or_after: None,
            status: None,
            signing: Signing::default(),
            response_id: random_id(),
            assertion_id: random_id(),
        }
    }

    /// Adds an attribute with one value.
    pub fn attr(mut self, name: &str, value: &str) -> Self {
        self.attributes.push((name.into(), vec![value.into()]));
        self
    }

    /// Moves every time of the response by `by` (negative: into the past).
    pub fn shifted(mut self, by: Duration) -> Self {
        self.issue_instant += by;
        self.not_before += by;
        self.not_on_or_after += by;
        self.session_not_on_or_after = self.session_not_on_or_after.map(|t| t + by);
        self
    }
}

/// An enveloped signature template for the element of ID `reference`
/// (exclusive c14n, RSA-SHA256, or RSA-SHA1 when `sha1`), to be signed.
pub fn signature_template(reference: &str, sha1: bool) -> String {
    let (sig, dig) = if sha1 {
        (
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        )
    } else {
        (
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2001/04/xmlenc#sha256",
        )
    };
    format!(
        "<ds:Signature xmlns:ds=\"{DS_NS}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"{sig}\"/><ds:Reference URI=\"#{reference}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{dig}\"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"
    )
}

/// Removes the XML declaration that libxml2 puts on serialised documents.
fn strip_declaration(xml: &str) -> &str {
    let t = xml.trim_start();
    match t.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, r)| r.trim_start())
            .unwrap_or(t),
        None => t,
    }
}

impl MintingIdp {
    /// A new IdP with a fresh RSA-2048 key.
    pub fn generate(entity_id: &str) -> Result<Self, String> {
        let keys = generate("jointure test IdP", 2048).map_err(|e| e.to_string())?;
        Self::with_keys(entity_id, keys)
    }

    /// An IdP with a given key pair in PEM (the tests' fixed keys).
    pub fn from_pem(entity_id: &str, key_pem: &[u8], cert_pem: &[u8]) -> Result<Self, String> {
        let key = openssl::pkey::PKey::private_key_from_pem(key_pem).map_err(|e| e.to_string())?;
        let cert = openssl::x509::X509::from_pem(cert_pem).map_err(|e| e.to_string())?;
        Self::with_keys(entity_id, SpKeys { key, cert })
    }

    fn with_keys(entity_id: &str, keys: SpKeys) -> Result<Self, String> {
        let key_der = keys
            .key
            .rsa()
            .and_then(|r| r.private_key_to_der())
            .map_err(|e| e.to_string())?;
        Ok(MintingIdp {
            entity_id: entity_id.into(),
            keys,
            key_der,
        })
    }

    /// The key and certificate in PEM, for signers outside this crate
    /// (the interoperability tests sign with signxml).
    pub fn pem_pair(&self) -> Result<(Vec<u8>, Vec<u8>), String> {
        let key = self
            .keys
            .key
            .private_key_to_pem_pkcs8()
            .map_err(|e| e.to_string())?;
        let cert = self.keys.cert.to_pem().map_err(|e| e.to_string())?;
        Ok((key, cert))
    }

    pub fn cert_base64(&self) -> String {
        self.keys.cert_base64().unwrap_or_default()
    }

    /// Metadata describing this IdP, with its signing certificate.
    pub fn metadata_xml(&self, sso_url: &str) -> String {
        format!(
            "<md:EntityDescriptor xmlns:md=\"{MD_NS}\" xmlns:ds=\"{DS_NS}\" entityID=\"{eid}\"><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"><md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{sso}\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
            eid = escape(&self.entity_id),
            cert = self.cert_base64(),
            sso = escape(sso_url),
        )
    }

    /// Metadata describing this IdP with an HTTP-Redirect
    /// SingleLogoutService at `slo_url` (single logout tests).
    pub fn metadata_xml_with_slo(&self, sso_url: &str, slo_url: &str) -> String {
        let slo = format!(
            "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{}\"/>",
            escape(slo_url)
        );
        self.metadata_xml(sso_url).replacen(
            "<md:SingleSignOnService",
            &format!("{slo}<md:SingleSignOnService"),
            1,
        )
    }

    /// A LogoutRequest per the spec, with an enveloped signature when
    /// `signature` says so (for the HTTP-POST binding; the HTTP-Redirect
    /// binding signs the query instead, [`MintingIdp::redirect_query`]).
    pub fn logout_request_xml(
        &self,
        s: &LogoutRequestSpec,
        signature: Option<LogoutAlg>,
    ) -> Result<String, String> {
        let subject = match (&s.name_id, s.encrypted_id) {
            (_, true) => "<saml:EncryptedID><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"/></saml:EncryptedID>".to_string(),
            (Some(v), false) => format!(
                "<saml:NameID{}>{}</saml:NameID>",
                s.name_id_format
                    .as_ref()
                    .map(|f| format!(" Format=\"{}\"", escape(f)))
                    .unwrap_or_default(),
                escape(v)
            ),
            (None, false) => String::new(),
        };
        let indexes: String = s
            .session_indexes
            .iter()
            .map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(i)))
            .collect();
        let xml = format!(
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{ii}\"{dest}{noa}><saml:Issuer>{iss}</saml:Issuer>{sig}{subject}{indexes}</samlp:LogoutRequest>",
            id = escape(&s.id),
            ii = ts(s.issue_instant),
            dest = optional_attr("Destination", s.destination.as_deref()),
            noa = optional_attr("NotOnOrAfter", s.not_on_or_after.map(ts).as_deref()),
            iss = escape(&s.issuer),
            sig = signature
                .map(|a| signature_template(&s.id, a == LogoutAlg::RsaSha1))
                .unwrap_or_default(),
        );
        self.sign_if(signature.is_some(), xml)
    }

    /// A LogoutResponse per the spec, signed as
    /// [`MintingIdp::logout_request_xml`] is.
    pub fn logout_response_xml(
        &self,
        s: &LogoutResponseSpec,
        signature: Option<LogoutAlg>,
    ) -> Result<String, String> {
        let xml = format!(
            "<samlp:LogoutResponse xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{ii}\"{dest}{irt}><saml:Issuer>{iss}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value=\"{st}\"/></samlp:Status></samlp:LogoutResponse>",
            id = escape(&s.id),
            ii = ts(s.issue_instant),
            dest = optional_attr("Destination", s.destination.as_deref()),
            irt = optional_attr("InResponseTo", s.in_response_to.as_deref()),
            iss = escape(&s.issuer),
            sig = signature
                .map(|a| signature_template(&s.id, a == LogoutAlg::RsaSha1))
                .unwrap_or_default(),
            st = escape(&s.status),
        );
        self.sign_if(signature.is_some(), xml)
    }

    /// The query string of the HTTP-Redirect binding carrying `xml` as
    /// `param` (`SAMLRequest` or `SAMLResponse`), signed over
    /// `param=…&RelayState=…&SigAlg=…` with this IdP's key when
    /// `signature` says so (RSA-SHA1 to test that it is refused).
    pub fn redirect_query(
        &self,
        param: &str,
        xml: &str,
        relay_state: Option<&str>,
        signature: Option<LogoutAlg>,
    ) -> Result<String, String> {
        use super::logout::{encode_redirect_message, url_encode};
        let mut q = format!("{param}={}", encode_redirect_message(xml)?);
        if let Some(r) = relay_state {
            q.push_str(&format!("&RelayState={}", url_encode(r)));
        }
        let Some(alg) = signature else {
            return Ok(q);
        };
        let (uri, md) = match alg {
            LogoutAlg::RsaSha256 => (
                super::logout::RSA_SHA256,
                openssl::hash::MessageDigest::sha256(),
            ),
            LogoutAlg::RsaSha1 => (
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                openssl::hash::MessageDigest::sha1(),
            ),
        };
        q.push_str(&format!("&SigAlg={}", url_encode(uri)));
        let mut signer =
            openssl::sign::Signer::new(md, &self.keys.key).map_err(|e| e.to_string())?;
        signer.update(q.as_bytes()).map_err(|e| e.to_string())?;
        let sig = signer.sign_to_vec().map_err(|e| e.to_string())?;
        use base64::Engine;
        q.push_str(&format!(
            "&Signature={}",
            url_encode(&base64::engine::general_purpose::STANDARD.encode(sig))
        ));
        Ok(q)
    }

    /// Signs the first signature template in `xml`.
    pub fn sign(&self, xml: &str) -> Result<String, String> {
        Crypto::sign_xml(xml, &self.key_der).map_err(|e| format!("signing: {e}"))
    }

    /// Signs `xml` when asked, as an element to embed (no XML declaration).
    fn sign_if(&self, sign: bool, xml: String) -> Result<String, String> {
        if sign {
            Ok(strip_declaration(&self.sign(&xml)?).to_string())
        } else {
            Ok(xml)
        }
    }

    /// The Assertion element, signed when the spec says so.
    pub fn assertion_xml(&self, s: &ResponseSpec) -> Result<String, String> {
        let mut attrs = String::new();
        let encrypt = |on: fn(&EncryptParts) -> bool, xml: String, wrapper: &str| match &s.encrypt {
            Some(e) => e.apply(on(e), xml, wrapper),
            None => Ok(xml),
        };
        for (name, values) in &s.attributes {
            let mut one = format!(
                "<saml:Attribute Name=\"{}\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\">",
                escape(name)
            );
            for v in values {
                one.push_str(&format!(
                    "<saml:AttributeValue xsi:type=\"xs:string\">{}</saml:AttributeValue>",
                    escape(v)
                ));
            }
            one.push_str("</saml:Attribute>");
            attrs.push_str(&encrypt(|e| e.attributes, one, "EncryptedAttribute")?);
        }
        let name_id = encrypt(
            |e| e.name_id,
            format!(
                "<saml:NameID Format=\"{}\">{}</saml:NameID>",
                escape(&s.name_id_format),
                escape(&s.name_id)
            ),
            "EncryptedID",
        )?;
        for raw in &s.xml_attributes {
            attrs.push_str(raw);
        }
        let audience = s
            .audience
            .as_ref()
            .map(|a| {
                format!(
                    "<saml:AudienceRestriction><saml:Audience>{}</saml:Audience></saml:AudienceRestriction>",
                    escape(a)
                )
            })
            .unwrap_or_default();
        let irt = s
            .in_response_to
            .as_ref()
            .map(|i| format!(" InResponseTo=\"{}\"", escape(i)))
            .unwrap_or_default();
        let sig = if s.signing.assertion {
            signature_template(&s.assertion_id, s.signing.sha1)
        } else {
            String::new()
        };
        let xml = format!(
            "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ID=\"{aid}\" Version=\"2.0\" IssueInstant=\"{ii}\"><saml:Issuer>{iss}</saml:Issuer>{sig}<saml:Subject>{name_id}<saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><saml:SubjectConfirmationData NotOnOrAfter=\"{noa}\" Recipient=\"{rcp}\"{irt}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{noa}\">{audience}</saml:Conditions><saml:AuthnStatement AuthnInstant=\"{ii}\" SessionIndex=\"{aid}\"{snoa}><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>{attrs}</saml:AttributeStatement></saml:Assertion>",
            aid = escape(&s.assertion_id),
            ii = ts(s.issue_instant),
            iss = escape(&s.issuer),
            noa = ts(s.not_on_or_after),
            nb = ts(s.not_before),
            rcp = escape(&s.recipient),
            snoa = s
                .session_not_on_or_after
                .map(|t| format!(" SessionNotOnOrAfter=\"{}\"", ts(t)))
                .unwrap_or_default(),
        );
        self.sign_if(s.signing.assertion, xml)
    }

    /// The Response around `assertion` (already signed or not), signed when
    /// the spec says so.
    pub fn response_around(&self, s: &ResponseSpec, assertion: &str) -> Result<String, String> {
        let status = s
            .status
            .as_deref()
            .unwrap_or("urn:oasis:names:tc:SAML:2.0:status:Success");
        let dest = s
            .destination
            .as_ref()
            .map(|d| format!(" Destination=\"{}\"", escape(d)))
            .unwrap_or_default();
        let irt = s
            .in_response_to
            .as_ref()
            .map(|i| format!(" InResponseTo=\"{}\"", escape(i)))
            .unwrap_or_default();
        let sig = if s.signing.response {
            signature_template(&s.response_id, s.signing.sha1)
        } else {
            String::new()
        };
        let xml = format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{rid}\" Version=\"2.0\" IssueInstant=\"{ii}\"{dest}{irt}><saml:Issuer>{iss}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value=\"{st}\"/></samlp:Status>{assertion}</samlp:Response>",
            rid = escape(&s.response_id),
            ii = ts(s.issue_instant),
            iss = escape(&s.issuer),
            st = escape(status),
        );
        self.sign_if(s.signing.response, xml)
    }

    /// A whole response per the spec. An error status carries no assertion,
    /// as IdPs send it.
    pub fn response(&self, s: &ResponseSpec) -> Result<String, String> {
        let assertion = if s.status.is_some() {
            String::new()
        } else {
            self.assertion_xml(s)?
        };
        self.response_around(s, &assertion)
    }
}

/// How a minted logout message is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutAlg {
    RsaSha256,
    /// Must be refused.
    RsaSha1,
}

/// An IdP's LogoutRequest; [`LogoutRequestSpec::new`] gives a valid one.
#[derive(Debug, Clone)]
pub struct LogoutRequestSpec {
    pub issuer: String,
    pub id: String,
    pub destination: Option<String>,
    pub issue_instant: DateTime<Utc>,
    pub not_on_or_after: Option<DateTime<Utc>>,
    /// None: no NameID at all.
    pub name_id: Option<String>,
    pub name_id_format: Option<String>,
    /// An EncryptedID instead of the NameID.
    pub encrypted_id: bool,
    pub session_indexes: Vec<String>,
}

impl LogoutRequestSpec {
    /// A valid LogoutRequest of `issuer` to the SP's SLO `destination`,
    /// for the persistent NameID `name_id`.
    pub fn new(issuer: &str, destination: &str, name_id: &str) -> Self {
        let now = Utc::now();
        LogoutRequestSpec {
            issuer: issuer.into(),
            id: random_id(),
            destination: Some(destination.into()),
            issue_instant: now,
            not_on_or_after: Some(now + Duration::seconds(300)),
            name_id: Some(name_id.into()),
            name_id_format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into()),
            encrypted_id: false,
            session_indexes: Vec::new(),
        }
    }
}

/// An IdP's LogoutResponse; [`LogoutResponseSpec::new`] gives a valid one.
#[derive(Debug, Clone)]
pub struct LogoutResponseSpec {
    pub issuer: String,
    pub id: String,
    pub destination: Option<String>,
    pub issue_instant: DateTime<Utc>,
    pub in_response_to: Option<String>,
    pub status: String,
}

impl LogoutResponseSpec {
    /// A Success answer of `issuer` to our LogoutRequest `in_response_to`.
    pub fn new(issuer: &str, destination: &str, in_response_to: &str) -> Self {
        LogoutResponseSpec {
            issuer: issuer.into(),
            id: random_id(),
            destination: Some(destination.into()),
            issue_instant: Utc::now(),
            in_response_to: Some(in_response_to.into()),
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".into(),
        }
    }
}

fn optional_attr(name: &str, value: Option<&str>) -> String {
    value
        .map(|v| format!(" {name}=\"{}\"", escape(v)))
        .unwrap_or_default()
}

/// Base64 as the HTTP-POST binding carries it.
pub fn to_base64(xml: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}
