//! The test harness: a real server on port 0 over a real SQLite file, an IdP
//! with a fresh key pair that mints signed responses, and an HTTP client.
#![allow(dead_code)]

use jointure::config::{Config, IdpConfig};
use jointure::resolve::Role;
use jointure::saml::mint::{to_base64, MintingIdp, ResponseSpec};
use jointure::store::accounts::Account;
use jointure::store::schools::School;
use jointure::store::{accounts, mappings, schools};
use jointure::{Application, Service};
use std::sync::Arc;

pub const SP: &str = "https://sp.test";
pub const UAI: &str = "0751234J";
pub const UAI_B: &str = "0330001X";
pub const BRIN: &str = "12AB";

pub struct TestApp {
    pub base: String,
    pub svc: Arc<Service>,
    pub idp: MintingIdp,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// An IdP with fixed key pair `n` (0, 1 or 2) from `fixtures/`: no test
/// pays for key generation, and IdPs that must differ use different `n`.
pub fn fixture_idp(entity_id: &str, n: usize) -> MintingIdp {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    let read = |f: String| std::fs::read(dir.join(f)).expect("fixture key");
    MintingIdp::from_pem(
        entity_id,
        &read(format!("idp-{n}.key")),
        &read(format!("idp-{n}.crt")),
    )
    .expect("fixture IdP")
}

/// Puts the fixed SP key pair where `config` expects it.
pub fn install_sp_keys(config: &Config) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    std::fs::copy(dir.join("sp.key"), &config.sp_key).expect("sp key");
    std::fs::copy(dir.join("sp.crt"), &config.sp_cert).expect("sp cert");
}

pub fn sp_entity_id() -> String {
    format!("{SP}/saml/metadata")
}
pub fn acs_url() -> String {
    format!("{SP}/saml/acs")
}

/// A config in `dir` trusting `idp`; the IdP passes `serviceAccountId`.
pub fn config_for(dir: &std::path::Path, idp: &MintingIdp) -> Config {
    let meta = dir.join("idp.xml");
    std::fs::write(&meta, idp.metadata_xml("https://idp.test/sso")).expect("write metadata");
    let mut c = Config::defaults();
    c.public_url = SP.into();
    c.listen = "127.0.0.1:0".into();
    c.database_path = dir.join("jointure.db");
    c.sp_key = dir.join("sp.key");
    c.sp_cert = dir.join("sp.crt");
    let mut idp_cfg = IdpConfig::with_metadata(meta);
    idp_cfg.account_id_attribute = Some("serviceAccountId".into());
    c.idps = vec![idp_cfg];
    install_sp_keys(&c);
    c
}

/// A valid response of `idp` for `subject` with French ENT attributes.
pub fn ent_of(
    idp: &MintingIdp,
    subject: &str,
    last: &str,
    first: &str,
    birth: &str,
    uai: &str,
) -> ResponseSpec {
    ResponseSpec::new(&idp.entity_id, &sp_entity_id(), &acs_url(), subject)
        .attr("sn", last)
        .attr("givenName", first)
        .attr("ENTPersonDateNaissance", birth)
        .attr("ENTStructureUAI", uai)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with a config changed by `tweak`, and the usual seed data.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::try_spawn_with(tweak).await.expect("app builds")
    }

    /// [`TestApp::spawn_with`], or the start error.
    pub async fn try_spawn_with(tweak: impl FnOnce(&mut Config)) -> Result<TestApp, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let idp = fixture_idp("https://idp.test/saml", 0);
        let mut config = config_for(dir.path(), &idp);
        tweak(&mut config);
        let app = Application::build(config, false)
            .await
            .map_err(|e| e.to_string())?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let svc = app.service();
        tokio::spawn(app.run());
        let t = TestApp {
            base,
            svc,
            idp,
            client: client(),
            dir,
        };
        t.seed().await;
        Ok(t)
    }

    async fn seed(&self) {
        let mut conn = self.svc.pool.acquire().await.expect("conn");
        for (code, name) in [(UAI, "Collège A"), (BRIN, "School B")] {
            schools::upsert(
                &mut conn,
                &School {
                    code: code.into(),
                    name: name.into(),
                },
            )
            .await
            .expect("school");
        }
        for row in [
            ("A-1", UAI, "Dupont-Martin", "Élodie", "2011-04-12", true),
            ("A-2", UAI, "Martin", "Camille", "2011-01-20", true),
            ("A-3", UAI, "Martin", "Camille", "2011-01-20", true),
            ("A-4", UAI, "Petit", "Noah", "2009-06-30", false),
            ("A-5", UAI, "Haddad", "Inès", "1985-02-07", true),
            ("B-1", BRIN, "de Vries", "Sanne", "2013-02-14", true),
        ] {
            self.add_account(&mut conn, row).await;
        }
    }

    /// Adds an account: (id, school, last name, first name, birth date, active).
    pub async fn add_account(
        &self,
        conn: &mut sqlx::SqliteConnection,
        (id, school, last, first, birth, active): (&str, &str, &str, &str, &str, bool),
    ) {
        let a = Account {
            account_id: id.into(),
            school_code: school.into(),
            last_name: last.into(),
            first_name: first.into(),
            birth_date: Some(birth.parse().expect("date")),
            role: Role::Student,
            class_name: Some("4B".into()),
            email: None,
            active,
        };
        accounts::upsert(conn, &a).await.expect("account");
    }

    pub async fn map(&self, subject: &str, account: &str) {
        let mut conn = self.svc.pool.acquire().await.expect("conn");
        mappings::insert(
            &mut conn,
            &self.idp.entity_id,
            subject,
            account,
            mappings::Source::Admin,
            Some("test"),
        )
        .await
        .expect("mapping");
    }

    /// A valid response for `subject` with French ENT attributes.
    pub fn ent(
        &self,
        subject: &str,
        last: &str,
        first: &str,
        birth: &str,
        uai: &str,
    ) -> ResponseSpec {
        ent_of(&self.idp, subject, last, first, birth, uai)
    }

    /// A valid response for a person who has no account.
    pub fn nobody(&self, subject: &str) -> ResponseSpec {
        self.ent(subject, "Inconnu", "Jean", "01/01/2011", UAI)
    }

    pub fn mint(&self, spec: &ResponseSpec) -> String {
        self.idp.response(spec).expect("mint")
    }

    /// Posts a form body to the ACS.
    pub async fn post_form(&self, body: String) -> reqwest::Response {
        self.client
            .post(format!("{}/saml/acs", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post")
    }

    /// Posts a response document as the HTTP-POST binding does, and, as a
    /// browser does, follows the 303 of a failed login to its page.
    pub async fn post_xml(&self, xml: &str) -> reqwest::Response {
        let res = self.post_xml_raw(xml).await;
        self.follow_failure(res).await
    }

    /// Posts a response document; the ACS's own answer.
    pub async fn post_xml_raw(&self, xml: &str) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &to_base64(xml))
            .finish();
        self.post_form(body).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("get")
    }

    /// Posts, expects a failure page, checks its kind and status, and
    /// returns the stored row.
    pub async fn expect_failure(
        &self,
        xml: &str,
        kind: &str,
        status: u16,
    ) -> jointure::store::failures::Failure {
        let res = self.post_xml(xml).await;
        self.check_failure(res, kind, status).await
    }

    /// The ACS answers a failed login with 303 to the failure page (post,
    /// redirect, get): follows it once, as a browser does.
    pub async fn follow_failure(&self, res: reqwest::Response) -> reqwest::Response {
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match location {
            Some(l) if res.status().as_u16() == 303 && l.starts_with("/failures/") => {
                self.get(&l).await
            }
            _ => res,
        }
    }

    pub async fn check_failure(
        &self,
        res: reqwest::Response,
        kind: &str,
        status: u16,
    ) -> jointure::store::failures::Failure {
        let res = self.follow_failure(res).await;
        assert_eq!(res.status().as_u16(), status, "HTTP status for {kind}");
        let html = res.text().await.expect("body");
        assert_eq!(
            meta(&html, "jointure-failure-kind").as_deref(),
            Some(kind),
            "meta kind; page: {}",
            &html[..html.len().min(600)]
        );
        assert_eq!(
            meta(&html, "jointure-failure-status").as_deref(),
            Some("open")
        );
        let reference = meta(&html, "jointure-reference").expect("reference meta");
        let code = meta(&html, "jointure-support-code").expect("support code meta");
        assert!(code.starts_with("JNT-") && code.len() == 10, "{code}");
        let f = self.failure(&reference).await.expect("stored failure");
        assert_eq!(f.kind.as_str(), kind, "stored kind");
        assert_eq!(f.support_code, code);
        assert_eq!(f.status.as_str(), "open");
        assert!(html.contains(&code), "support code shown");
        f
    }

    pub async fn failure(&self, reference: &str) -> Option<jointure::store::failures::Failure> {
        let mut conn = self.svc.pool.acquire().await.expect("conn");
        jointure::store::failures::by_reference(&mut conn, reference)
            .await
            .expect("query")
    }

    /// Posts and expects a login: 303 to `/me`, where the account shows.
    pub async fn expect_login(&self, xml: &str, account_id: &str) {
        let res = self.post_xml(xml).await;
        assert_eq!(
            res.status().as_u16(),
            303,
            "login should succeed: {}",
            res.text().await.unwrap_or_default()
        );
        assert_eq!(
            res.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("/me")
        );
        let me = self.get("/me").await;
        assert_eq!(me.status().as_u16(), 200);
        let html = me.text().await.expect("me");
        assert!(
            html.contains(&format!("<dd id=\"account-id\">{account_id}</dd>")),
            "{html}"
        );
    }

    pub async fn mapping_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM mappings")
            .fetch_one(&self.svc.pool)
            .await
            .expect("query")
    }

    pub async fn mapping(&self, subject: &str) -> Option<(String, String)> {
        sqlx::query_as(
            "SELECT account_id, source FROM mappings WHERE idp_entity_id = ? AND subject = ?",
        )
        .bind(&self.idp.entity_id)
        .bind(subject)
        .fetch_optional(&self.svc.pool)
        .await
        .expect("query")
    }

    pub async fn count_failures(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM failures")
            .fetch_one(&self.svc.pool)
            .await
            .expect("count")
    }
}

/// The content of `<meta name="NAME" content="…">`.
/// A free loopback port, for a server process the test starts (a port
/// cannot be handed to another process, so it is bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A response header that must be there, as text.
pub fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_string()
}

pub fn meta(html: &str, name: &str) -> Option<String> {
    let needle = format!("<meta name=\"{name}\" content=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// The first `csrf_token` hidden field of a page.
pub fn csrf_from(html: &str) -> String {
    let needle = "name=\"csrf_token\" value=\"";
    let start = html.find(needle).expect("csrf_token field") + needle.len();
    let end = html[start..].find('"').expect("end") + start;
    html[start..end].to_string()
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// Creates an admin with the test password.
    pub async fn add_admin(&self, email: &str, role: &str, schools: &[&str]) {
        let hash = jointure::store::admins::hash_password(PASSWORD).expect("hash");
        let mut conn = self.svc.pool.acquire().await.expect("conn");
        let schools: Vec<String> = schools.iter().map(|s| s.to_string()).collect();
        jointure::store::admins::upsert(
            &mut conn,
            email,
            &hash,
            jointure::resolve::AdminRole::parse(role).expect("role"),
            &schools,
        )
        .await
        .expect("admin");
    }

    /// A fresh client logged in as `email`, and the session's CSRF token.
    pub async fn admin_client(&self, email: &str) -> (reqwest::Client, String) {
        let c = client();
        let res = self.login_as(&c, email, PASSWORD).await;
        assert_eq!(res.status().as_u16(), 303, "login of {email}");
        let page = c
            .get(format!("{}/admin", self.base))
            .send()
            .await
            .expect("dashboard");
        assert_eq!(page.status().as_u16(), 200);
        let csrf = csrf_from(&page.text().await.expect("html"));
        (c, csrf)
    }

    /// GETs the login page (for its CSRF cookie and field) and POSTs it.
    pub async fn login_as(
        &self,
        c: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let form = c
            .get(format!("{}/admin/login", self.base))
            .send()
            .await
            .expect("login page");
        let csrf = csrf_from(&form.text().await.expect("html"));
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf_token", &csrf)
            .append_pair("email", email)
            .append_pair("password", password)
            .finish();
        c.post(format!("{}/admin/login", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("login")
    }

    /// POSTs form pairs with a client.
    pub async fn post_with(
        &self,
        c: &reqwest::Client,
        path: &str,
        pairs: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        c.post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(s.finish())
            .send()
            .await
            .expect("post")
    }

    /// Posts a response and returns the failure reference it got.
    pub async fn fail(&self, spec: &jointure::saml::mint::ResponseSpec) -> String {
        let html = self
            .post_xml(&self.mint(spec))
            .await
            .text()
            .await
            .expect("page");
        meta(&html, "jointure-reference").expect("a failure")
    }
}
