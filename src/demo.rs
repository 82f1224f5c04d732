//! `serve --demo`: a built-in IdP that signs responses for demo people, so
//! that a newcomer reaches a successful login and every failure kind from
//! the browser; plus demo schools, accounts, mappings and a superadmin.
//! Nothing here exists without `--demo`.

use crate::config::{Config, IdpConfig};
use crate::resolve::Role;
use crate::saml::metadata::IdpMetadata;
use crate::saml::mint::{MintingIdp, ResponseSpec};
use crate::service::{Service, StartError};
use crate::store::accounts::Account;
use crate::store::mappings::Source;
use crate::store::schools::School;
use crate::store::{accounts, admins, mappings, replay, schools};
use chrono::{Duration, NaiveDate};
use sqlx::SqliteConnection;

/// One button of the demo IdP page.
pub struct Scenario {
    pub id: &'static str,
    pub label: &'static str,
    /// What the service answers: `success` or a failure kind.
    pub expect: &'static str,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "match",
        label: "Élodie Dupont-Martin (ENT) — automatic match on name, first name and birth date",
        expect: "success",
    },
    Scenario {
        id: "mapped",
        label: "Lucas Bernard (ENT) — identity already linked",
        expect: "success",
    },
    Scenario {
        id: "account_id",
        label: "Inès Haddad (ENT) — the ENT passes our account ID",
        expect: "success",
    },
    Scenario {
        id: "entree",
        label: "Sanne de Vries (Entree) — identity already linked",
        expect: "success",
    },
    Scenario {
        id: "mismatch",
        label: "Jean Inconnu (ENT) — no such account",
        expect: "identity_mismatch",
    },
    Scenario {
        id: "homonym",
        label: "Camille Martin (ENT) — two pupils share name and birth date",
        expect: "ambiguous_identity",
    },
    Scenario {
        id: "disabled",
        label: "Noah Petit (ENT) — left the school, account deactivated",
        expect: "account_disabled",
    },
    Scenario {
        id: "missing_school",
        label: "Entree login without BRIN",
        expect: "missing_school_code",
    },
    Scenario {
        id: "invalid_school",
        label: "UAI 0751234A (wrong check letter)",
        expect: "invalid_school_code",
    },
    Scenario {
        id: "unknown_school",
        label: "UAI 0330001X, a school not connected",
        expect: "unknown_school",
    },
    Scenario {
        id: "untrusted_school",
        label: "UAI 0690001B, a connected school that logs in through another ENT",
        expect: "untrusted_school",
    },
    Scenario {
        id: "missing_subject",
        label: "Subject attribute left empty",
        expect: "missing_subject",
    },
    Scenario {
        id: "expired",
        label: "A response issued an hour ago",
        expect: "expired",
    },
    Scenario {
        id: "replayed",
        label: "A response that was already used",
        expect: "replayed",
    },
    Scenario {
        id: "wrong_audience",
        label: "A response meant for another service",
        expect: "wrong_audience",
    },
    Scenario {
        id: "bad_signature",
        label: "A name changed after signing",
        expect: "invalid_signature",
    },
    Scenario {
        id: "unknown_issuer",
        label: "A response from an IdP this service does not know",
        expect: "unknown_issuer",
    },
    Scenario {
        id: "idp_error",
        label: "The IdP answers AuthnFailed",
        expect: "idp_error",
    },
    Scenario {
        id: "malformed",
        label: "XML with a DOCTYPE (entity expansion attempt)",
        expect: "malformed_request",
    },
];

pub const DEMO_UAI: &str = "0751234J";
pub const DEMO_BRIN: &str = "12AB";
/// A connected school that the demo IdP is not trusted for (its pupils log
/// in through another ENT).
pub const DEMO_OTHER_UAI: &str = "0690001B";
pub const ADMIN_EMAIL: &str = "admin@demo.jointure.test";

/// The demo accounts: account ID, school, last and first name, birth date,
/// role, class (empty: none), active. One person a line, so rustfmt keeps
/// off it.
#[rustfmt::skip]
const DEMO_PEOPLE: [Person; 8] = [
    ("D-1001", DEMO_UAI, "Dupont-Martin", "Élodie", d(2011, 4, 12), Role::Student, "4B", true),
    ("D-1002", DEMO_UAI, "Bernard", "Lucas", d(2010, 9, 3), Role::Student, "3A", true),
    ("D-1003", DEMO_UAI, "Haddad", "Inès", d(1985, 2, 7), Role::Teacher, "", true),
    ("D-1004", DEMO_UAI, "Martin", "Camille", d(2011, 1, 20), Role::Student, "4A", true),
    ("D-1005", DEMO_UAI, "Martin", "Camille", d(2011, 1, 20), Role::Student, "4C", true),
    ("D-1006", DEMO_UAI, "Petit", "Noah", d(2009, 6, 30), Role::Student, "3B", false),
    ("D-1007", DEMO_UAI, "Dupond", "Jean", d(2011, 8, 1), Role::Student, "4B", true),
    ("D-2001", DEMO_BRIN, "de Vries", "Sanne", d(2013, 2, 14), Role::Student, "groep 7", true),
];

/// A row of [`DEMO_PEOPLE`].
type Person = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<NaiveDate>,
    Role,
    &'static str,
    bool,
);

/// A birth date of the demo people.
const fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, day)
}

/// The demo IdP (trusted) and a stranger IdP (not configured).
pub struct Demo {
    pub idp: MintingIdp,
    stranger: MintingIdp,
    sp_entity_id: String,
    acs_url: String,
    pub sso_url: String,
    pub admin_password: String,
}

impl Demo {
    pub fn new(config: &Config) -> Result<Demo, String> {
        let sso_url = format!("{}/demo/idp", config.public_url);
        Ok(Demo {
            idp: MintingIdp::generate(&sso_url)?,
            stranger: MintingIdp::generate("https://unknown-idp.example.test/saml")?,
            sp_entity_id: config.sp_entity_id(),
            acs_url: config.acs_url(),
            sso_url,
            admin_password: crate::store::sessions::random_token()[..16].to_string(),
        })
    }

    /// The demo IdP as a configured IdP: NameID as subject, and
    /// `serviceAccountId` as the passed account ID.
    pub fn idp_entry(&self) -> Result<(IdpMetadata, IdpConfig), StartError> {
        let meta = crate::saml::metadata::parse_metadata(&self.idp.metadata_xml(&self.sso_url))
            .map_err(StartError)?
            .remove(0);
        let mut cfg = IdpConfig::with_metadata("(demo)".into());
        cfg.account_id_attribute = Some("serviceAccountId".into());
        cfg.schools = Some(crate::config::TrustedSchools::Only(
            [DEMO_UAI, DEMO_BRIN]
                .iter()
                .filter_map(|c| crate::resolve::parse_school_code(c))
                .collect(),
        ));
        Ok((meta, cfg))
    }

    /// Demo schools, accounts, mappings and the superadmin (its password is
    /// new at every start and printed).
    pub async fn seed(&self, svc: &Service) -> Result<(), sqlx::Error> {
        let mut tx = svc.begin_write().await?;
        seed_schools(&mut tx).await?;
        seed_accounts(&mut tx).await?;
        self.seed_mappings(&mut tx).await?;
        self.seed_admin(&mut tx).await?;
        tx.commit().await
    }

    /// The demo identities already linked to their accounts.
    async fn seed_mappings(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let idp = &self.idp.entity_id;
        for (subject, account) in [
            ("demo-lucas", "D-1002"),
            ("demo-noah", "D-1006"),
            ("demo-sanne", "D-2001"),
        ] {
            mappings::insert(conn, idp, subject, account, Source::Admin, Some("demo")).await?;
        }
        Ok(())
    }

    /// The demo superadmin, with this start's password.
    async fn seed_admin(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let hash = admins::hash_password(&self.admin_password).map_err(sqlx::Error::Protocol)?;
        admins::upsert(
            conn,
            ADMIN_EMAIL,
            &hash,
            crate::resolve::AdminRole::Superadmin,
            &[],
        )
        .await?;
        Ok(())
    }

    fn ent(
        &self,
        subject: &str,
        last: &str,
        first: &str,
        birth: &str,
        uai: &str,
        class: &str,
    ) -> ResponseSpec {
        ResponseSpec::new(
            &self.idp.entity_id,
            &self.sp_entity_id,
            &self.acs_url,
            subject,
        )
        .attr("sn", last)
        .attr("givenName", first)
        .attr("ENTPersonDateNaissance", birth)
        .attr("ENTStructureUAI", uai)
        .attr("ENTEleveClasses", class)
        .attr("ENTPersonProfils", "National_ELV")
    }

    fn entree(&self, subject: &str, brin: Option<&str>) -> ResponseSpec {
        let mut s = ResponseSpec::new(
            &self.idp.entity_id,
            &self.sp_entity_id,
            &self.acs_url,
            subject,
        )
        .attr("uid", subject)
        .attr("givenName", "Sanne")
        .attr("sn", "de Vries")
        .attr("eduPersonAffiliation", "student")
        .attr("nlEduPersonHomeOrganization", "Basisschool De Linde");
        if let Some(b) = brin {
            s = s.attr("nlEduPersonHomeOrganizationId", b);
        }
        s
    }

    /// Mints the response XML of a scenario. `replayed` records its
    /// assertion as already used first.
    pub async fn mint(
        &self,
        svc: &Service,
        scenario: &str,
        in_response_to: Option<String>,
    ) -> Result<String, String> {
        let spec = self.spec(scenario, in_response_to)?;
        let signer = if scenario == "unknown_issuer" {
            &self.stranger
        } else {
            &self.idp
        };
        let xml = signer.response(&spec)?;
        after_signing(svc, scenario, &spec, xml).await
    }

    /// The unsigned response of a scenario: its person, and its times, audience, issuer, status.
    fn spec(&self, scenario: &str, in_response_to: Option<String>) -> Result<ResponseSpec, String> {
        let mut spec = self.person(scenario)?;
        match scenario {
            "expired" => spec = spec.shifted(-Duration::hours(1)),
            "wrong_audience" => {
                spec.audience = Some("https://another-service.example.test/saml/metadata".into())
            }
            "unknown_issuer" => spec.issuer = self.stranger.entity_id.clone(),
            "idp_error" => {
                spec.status = Some("urn:oasis:names:tc:SAML:2.0:status:Responder".into())
            }
            _ => {}
        }
        if scenario != "expired" && scenario != "replayed" {
            spec.in_response_to = in_response_to;
        }
        Ok(spec)
    }

    /// The assertion's subject and attributes for the demo person of a scenario.
    fn person(&self, scenario: &str) -> Result<ResponseSpec, String> {
        let spec = match scenario {
            "match" => self.ent(
                "demo-elodie",
                "DUPONT MARTIN",
                "ELODIE",
                "12/04/2011",
                DEMO_UAI,
                "4B",
            ),
            "mapped" => self.ent(
                "demo-lucas",
                "Bernard",
                "Lucas",
                "03/09/2010",
                DEMO_UAI,
                "3A",
            ),
            "account_id" => self
                .ent("demo-ines", "Haddad", "Inès", "07/02/1985", DEMO_UAI, "")
                .attr("serviceAccountId", "D-1003"),
            "entree" => self.entree("demo-sanne", Some(DEMO_BRIN)),
            "mismatch" => self.ent(
                "demo-jean-inconnu",
                "Inconnu",
                "Jean",
                "01/01/2011",
                DEMO_UAI,
                "4B",
            ),
            "homonym" => self.ent(
                "demo-camille",
                "Martin",
                "Camille",
                "20/01/2011",
                DEMO_UAI,
                "4A",
            ),
            "disabled" => self.ent("demo-noah", "Petit", "Noah", "30/06/2009", DEMO_UAI, "3B"),
            "missing_school" => self.entree("demo-sanne-nobrin", None),
            "invalid_school" => self.paul("demo-bad-uai", "0751234A", "4B"),
            "unknown_school" => self.paul("demo-other-school", "0330001X", "4B"),
            "untrusted_school" => self.paul("demo-other-ent", DEMO_OTHER_UAI, "2A"),
            "missing_subject" => self.paul("", DEMO_UAI, "4B"),
            "expired" => self.paul("demo-late", DEMO_UAI, "4B"),
            "replayed" => self.paul("demo-replay", DEMO_UAI, "4B"),
            "wrong_audience" => self.paul("demo-audience", DEMO_UAI, "4B"),
            "bad_signature" => self.paul("demo-tampered", DEMO_UAI, "4B"),
            "unknown_issuer" => self.paul("demo-stranger", DEMO_UAI, "4B"),
            "idp_error" => self.paul("demo-idp-error", DEMO_UAI, "4B"),
            "malformed" => self.paul("demo-doctype", DEMO_UAI, "4B"),
            other => return Err(format!("unknown scenario {other:?}")),
        };
        Ok(spec)
    }

    /// Paul Durand, the ENT pupil (no account) of most failure scenarios.
    fn paul(&self, subject: &str, uai: &str, class: &str) -> ResponseSpec {
        self.ent(subject, "Durand", "Paul", "01/02/2011", uai, class)
    }
}

/// After signing: `bad_signature` and `malformed` alter the XML, `replayed` is recorded as used.
async fn after_signing(
    svc: &Service,
    scenario: &str,
    spec: &ResponseSpec,
    mut xml: String,
) -> Result<String, String> {
    match scenario {
        "bad_signature" => xml = xml.replacen(">Durand<", ">Dupond<", 1),
        "malformed" => {
            xml = format!(
                "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]>{}",
                xml.replacen(">Paul<", ">&b;<", 1)
            )
        }
        "replayed" => {
            let mut conn = svc.pool.acquire().await.map_err(|e| e.to_string())?;
            let until = (chrono::Utc::now() + Duration::hours(1)).timestamp();
            replay::remember_assertion(&mut conn, &spec.issuer, &spec.assertion_id, until)
                .await
                .map_err(|e| e.to_string())?;
        }
        _ => {}
    }
    Ok(xml)
}

/// The demo schools: a French and a Dutch one, and one the demo IdP is not trusted for.
async fn seed_schools(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    for (code, name) in [
        (DEMO_UAI, "Collège Victor Hugo (démo)"),
        (DEMO_BRIN, "Basisschool De Linde (demo)"),
        (DEMO_OTHER_UAI, "Lycée Ampère (démo, autre ENT)"),
    ] {
        schools::upsert(
            conn,
            &School {
                code: code.into(),
                name: name.into(),
            },
        )
        .await?;
    }
    Ok(())
}

/// The demo accounts of [`DEMO_PEOPLE`].
async fn seed_accounts(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    for (id, school, last, first, birth, role, class, active) in DEMO_PEOPLE {
        let a = Account {
            account_id: id.into(),
            school_code: school.into(),
            last_name: last.into(),
            first_name: first.into(),
            birth_date: birth,
            role,
            class_name: (!class.is_empty()).then(|| class.to_string()),
            email: None,
            active,
        };
        accounts::upsert(conn, &a).await?;
    }
    Ok(())
}
