//! The user's failure page over HTTP: its status per kind, the form's error
//! summary and field errors, the send button as the form's default, the
//! children block for parents, who to contact (school, service, office)
//! with exact `tel:` and `mailto:` links, the language switch, local
//! times, the "sent" page, and a catalogue that has every key a template
//! uses in every language.

use crate::common::*;
use jointure::config::{Support, TrustedSchools};
use jointure::i18n::{Lang, Tr};
use jointure::resolve::{FailureKind, SchoolCode};
use jointure::store::schools::{self, Contact};
use jointure::store::Scope;

/// The reference a failed ACS POST leads to: its `Location` (a 303 to
/// `/failures/{reference}`) or, answered in place, the page's meta tag.
async fn reference_of(res: reqwest::Response) -> String {
    if res.status().as_u16() == 303 {
        let to = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        return to
            .strip_prefix("/failures/")
            .unwrap_or_else(|| panic!("a failure page, not {to}"))
            .to_string();
    }
    let html = res.text().await.expect("page");
    meta(&html, "jointure-reference").expect("a failure page")
}

async fn fail_with(app: &TestApp, xml: &str) -> String {
    reference_of(app.post_xml(xml).await).await
}

/// An app whose IdP is trusted for UAI only, so that the BRIN school is
/// `untrusted_school`.
async fn spawn_trusting_uai(tweak: impl FnOnce(&mut jointure::config::Config)) -> TestApp {
    TestApp::spawn_with(|c| {
        let uai: SchoolCode = jointure::resolve::parse_school_code(UAI).expect("uai");
        c.idps[0].schools = Some(TrustedSchools::Only(vec![uai]));
        tweak(c);
    })
    .await
}

/// One failure of every kind, through the ACS.
async fn one_of_each_kind(app: &TestApp) -> Vec<(FailureKind, String)> {
    use chrono::Duration;
    use FailureKind::*;
    let mut out = Vec::new();
    for kind in FailureKind::ALL {
        let sub = format!("each-{}", kind.as_str());
        let mut spec = app.nobody(&sub);
        let xml = match kind {
            MalformedRequest => "this is not XML".to_string(),
            UnknownIssuer => {
                let stranger = fixture_idp("https://stranger.test/idp", 1);
                spec.issuer = stranger.entity_id.clone();
                stranger.response(&spec).expect("mint")
            }
            InvalidSignature => {
                spec.signing.assertion = false;
                spec.signing.response = false;
                app.mint(&spec)
            }
            WrongAudience => {
                spec.audience = Some("https://other.test/saml/metadata".into());
                app.mint(&spec)
            }
            Expired => app.mint(&spec.shifted(-Duration::hours(1))),
            Replayed => {
                spec.in_response_to = Some("_never-sent".into());
                app.mint(&spec)
            }
            IdpError => {
                spec.status = Some("urn:oasis:names:tc:SAML:2.0:status:Responder".into());
                app.mint(&spec)
            }
            MissingSchoolCode => app.mint(
                &jointure::saml::mint::ResponseSpec::new(
                    &app.idp.entity_id,
                    &sp_entity_id(),
                    &acs_url(),
                    &sub,
                )
                .attr("givenName", "Sanne"),
            ),
            InvalidSchoolCode => app.mint(&app.ent(&sub, "a", "b", "", "0751234A")),
            UnknownSchool => app.mint(&app.ent(&sub, "a", "b", "", UAI_B)),
            UntrustedSchool => app.mint(&app.ent(&sub, "a", "b", "", BRIN)),
            MissingSubject => app.mint(&app.ent("", "Dupont-Martin", "Élodie", "12/04/2011", UAI)),
            IdentityMismatch => app.mint(&spec),
            AmbiguousIdentity => app.mint(&app.ent(&sub, "Martin", "Camille", "20/01/2011", UAI)),
            AccountDisabled => {
                app.map(&sub, "A-4").await;
                app.mint(&app.ent(&sub, "Petit", "Noah", "30/06/2009", UAI))
            }
        };
        let reference = fail_with(app, &xml).await;
        let f = app.failure(&reference).await.expect("stored");
        assert_eq!(f.kind, kind, "{sub}");
        out.push((kind, reference));
    }
    out
}

async fn page(app: &TestApp, reference: &str, lang: &str) -> (u16, String) {
    let res = app.get(&format!("/failures/{reference}?lang={lang}")).await;
    let status = res.status().as_u16();
    (status, res.text().await.expect("html"))
}

/// Undoes HTML escaping: the named entities askama writes and numeric
/// ones (`&#38;`, `&#x27;`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of `attr` on the element with `id`.
fn attr_of(html: &str, id: &str, attr: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let needle = format!(" {attr}=\"");
    let v = tag.find(&needle)? + needle.len();
    let e = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..e]))
}

/// The whole start tag of the element with `id`.
fn tag_of<'h>(html: &'h str, id: &str) -> &'h str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = html[..at].rfind('<').expect("tag start");
    let end = at + html[at..].find('>').expect("tag end");
    &html[start..=end]
}

fn fr(key: &str) -> String {
    Tr::new(Lang::Fr).get(key).to_string()
}

#[tokio::test]
async fn the_page_answers_the_kinds_status_while_open_and_200_once_closed() {
    let app = spawn_trusting_uai(|_| {}).await;
    let all = one_of_each_kind(&app).await;
    for (kind, reference) in &all {
        for lang in ["fr", "nl", "en"] {
            let (status, html) = page(&app, reference, lang).await;
            assert_eq!(
                status,
                jointure::web::error::failure_status(*kind).as_u16(),
                "{kind} in {lang}"
            );
            assert_eq!(
                meta(&html, "jointure-failure-kind").as_deref(),
                Some(kind.as_str())
            );
            assert_eq!(
                meta(&html, "jointure-reference").as_deref(),
                Some(reference.as_str())
            );
            assert_eq!(
                meta(&html, "jointure-failure-status").as_deref(),
                Some("open")
            );
            assert!(meta(&html, "jointure-support-code").is_some());
            // No catalogue key shows through, and no empty banner.
            for prefix in [
                "help.", "form.", "support.", "failure.", "kind.", "time.", "lang.", "mail.",
                "layout.", "text.",
            ] {
                assert!(
                    !html.contains(&format!(">{prefix}"))
                        && !html.contains(&format!("=\"{prefix}")),
                    "{kind} in {lang} shows a raw {prefix} key"
                );
            }
            assert!(
                !html.contains("id=\"failure-status\""),
                "{kind}: no banner yet"
            );
            assert_eq!(
                html.contains("<form method=\"post\""),
                kind.has_form(),
                "{kind}: the form only where it helps"
            );
        }
    }
    // Reloading is harmless: the same page, no new row.
    let rows = app.count_failures().await;
    let (kind, reference) = &all[4];
    assert_eq!(
        page(&app, reference, "fr").await.0,
        jointure::web::error::failure_status(*kind).as_u16()
    );
    assert_eq!(app.count_failures().await, rows);

    let mismatch = &all
        .iter()
        .find(|(k, _)| *k == FailureKind::IdentityMismatch)
        .expect("one")
        .1;
    let expired = &all
        .iter()
        .find(|(k, _)| *k == FailureKind::Expired)
        .expect("one")
        .1;
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    jointure::store::desk::resolve(&mut conn, &Scope::All, mismatch, "A-1", "test")
        .await
        .expect("query")
        .expect("resolved");
    jointure::store::desk::dismiss(&mut conn, &Scope::All, expired, "double login", "test")
        .await
        .expect("query")
        .expect("dismissed");
    drop(conn);
    let (status, html) = page(&app, mismatch, "fr").await;
    assert_eq!(status, 200);
    assert_eq!(
        meta(&html, "jointure-failure-status").as_deref(),
        Some("resolved")
    );
    assert!(html.contains("id=\"failure-status\""), "resolved says so");
    assert_eq!(
        attr_of(&html, "login-again", "href").as_deref(),
        Some("/saml/login?idp=https%3A%2F%2Fidp.test%2Fsaml")
    );
    let (status, html) = page(&app, expired, "fr").await;
    assert_eq!(status, 200);
    assert_eq!(
        meta(&html, "jointure-failure-status").as_deref(),
        Some("dismissed")
    );
    assert!(
        !html.contains("id=\"back-to-portal\""),
        "closed: nothing to retry"
    );
}

#[tokio::test]
async fn kinds_worth_retrying_offer_back_to_your_portal_and_phone_help() {
    let app = spawn_trusting_uai(|_| {}).await;
    for (kind, reference) in one_of_each_kind(&app).await {
        let (_, html) = page(&app, &reference, "en").await;
        // A request too broken to name its IdP, or an IdP we do not know:
        // nowhere to go back to.
        let expected = kind.can_retry()
            && !matches!(
                kind,
                FailureKind::UnknownIssuer | FailureKind::MalformedRequest
            );
        assert_eq!(html.contains("id=\"back-to-portal\""), expected, "{kind}");
        if expected {
            assert_eq!(
                attr_of(&html, "back-to-portal", "href").as_deref(),
                Some("/saml/login?idp=https%3A%2F%2Fidp.test%2Fsaml")
            );
        }
        if kind == FailureKind::Expired {
            assert!(
                html.contains("iPhone")
                    && html.contains("Android")
                    && html.contains("Ctrl+Shift+N")
            );
        }
        // At least two steps before "contact support".
        let steps = html[html.find("<ol class=\"help\">").expect("steps")..]
            .split("</ol>")
            .next()
            .expect("list")
            .matches("<li>")
            .count();
        assert!(steps >= 3, "{kind}: {steps} steps");
    }
}

/// Posts the form of `reference` with `pairs` (and its CSRF token).
async fn send_form(app: &TestApp, reference: &str, pairs: &[(&str, &str)]) -> (u16, String) {
    let (_, html) = page(app, reference, "fr").await;
    let csrf = csrf_from(&html);
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(pairs);
    let res = app
        .post_with(&client(), &format!("/failures/{reference}/report"), &all)
        .await;
    let status = res.status().as_u16();
    (status, res.text().await.expect("html"))
}

/// Asserts the summary links to `id` with the message of `key`, and the
/// field is marked invalid and described by its error.
fn assert_field_error(html: &str, id: &str, key: &str) {
    let text = unescape(html);
    let summary = &text[text.find("id=\"error-summary\"").expect("summary")..];
    let summary = &summary[..summary.find("</div>").expect("end")];
    assert!(
        summary.contains(&format!("href=\"#{id}\"")),
        "summary links #{id}: {summary}"
    );
    let message = fr(key);
    assert!(
        summary.contains(&message),
        "summary says {message:?} for #{id}: {summary}"
    );
    let tag = tag_of(html, id);
    assert!(tag.contains("aria-invalid=\"true\""), "{tag}");
    let described = attr_of(html, id, "aria-describedby").unwrap_or_default();
    let error_id = if id == "phone" && key == "form.error.contact" {
        "email-error".to_string()
    } else if key == "form.error.children" {
        "children-error".to_string()
    } else {
        format!("{id}-error")
    };
    assert!(
        described.split(' ').any(|d| d == error_id),
        "#{id} described by {error_id}: {described}"
    );
    let error = &text[text
        .find(&format!("id=\"{error_id}\""))
        .expect("error shown")..];
    assert!(
        error[..error.find("</p>").expect("p")].contains(&message),
        "{error_id}"
    );
}

#[tokio::test]
async fn every_rule_of_the_form_is_in_the_summary_and_on_its_field_with_the_input_kept() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-rules")).await;
    let long = "x".repeat(101);
    let longer = "y".repeat(2001);
    let (status, html) = send_form(
        &app,
        &reference,
        &[
            ("last_name", ""),
            ("first_name", &long),
            ("birth_date", "31/02/2011"),
            ("role", "pirate"),
            ("class_name", &long),
            ("email", "nope"),
            ("phone", "12"),
            ("message", &longer),
        ],
    )
    .await;
    assert_eq!(status, 422);
    let summary = tag_of(&html, "error-summary");
    for a in [
        "role=\"alert\"",
        "tabindex=\"-1\"",
        "autofocus",
        "aria-labelledby=\"error-summary-title\"",
    ] {
        assert!(summary.contains(a), "{summary}");
    }
    assert!(
        html.find("id=\"error-summary\"") < html.find("<h1>"),
        "the summary comes first"
    );
    assert!(
        html.contains(&format!("<title>{}", fr("form.errors.title"))),
        "the title says so"
    );
    for (id, key) in [
        ("last_name", "form.error.required"),
        ("first_name", "form.error.too_long"),
        ("birth_date", "form.error.birth_date"),
        ("role", "form.error.role"),
        ("class_name", "form.error.too_long"),
        ("email", "form.error.email"),
        ("phone", "form.error.phone"),
        ("message", "form.error.too_long"),
    ] {
        assert_field_error(&html, id, key);
    }
    for kept in [
        format!("value=\"{long}\""),
        "value=\"31/02/2011\"".into(),
        "value=\"nope\"".into(),
        "value=\"12\"".into(),
        format!(">{longer}</textarea>"),
    ] {
        assert!(
            html.contains(&kept),
            "input kept: {}",
            &kept[..kept.len().min(30)]
        );
    }
    // The hint says the date's format in words, and the field points at it.
    assert!(attr_of(&html, "birth_date", "aria-describedby")
        .is_some_and(|d| d.split(' ').any(|i| i == "birth_date-hint")));
    assert!(unescape(&html).contains(&fr("form.date_hint")));
    assert_eq!(
        attr_of(&html, "birth_date", "type").as_deref(),
        Some("date")
    );

    let (status, html) = send_form(
        &app,
        &reference,
        &[
            ("last_name", "Inconnu"),
            ("first_name", "Jean"),
            ("birth_date", "2099-01-01"),
            ("role", ""),
            ("email", ""),
            ("phone", ""),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert_field_error(&html, "birth_date", "form.error.date_future");
    assert_field_error(&html, "role", "form.error.required");
    assert_field_error(&html, "email", "form.error.contact");
    assert!(attr_of(&html, "phone", "aria-describedby")
        .is_some_and(|d| d.split(' ').any(|i| i == "email-error")));
    assert!(
        !html.contains("id=\"last_name-error\""),
        "a good field has no error"
    );
    assert_eq!(attr_of(&html, "last_name", "aria-invalid"), None);
}

#[tokio::test]
async fn a_parent_without_children_is_told_to_name_one_and_each_child_field_is_checked() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-parent")).await;
    let parent = [
        ("last_name", "Inconnu"),
        ("first_name", "Jean"),
        ("birth_date", "1980-01-01"),
        ("role", "parent"),
        ("email", "p@example.test"),
    ];
    let (status, html) = send_form(&app, &reference, &parent).await;
    assert_eq!(status, 422);
    assert_field_error(&html, "child-1-last_name", "form.error.children");
    let mut pairs = parent.to_vec();
    pairs.extend([
        ("child_last_name[]", "Inconnu"),
        ("child_first_name[]", ""),
        ("child_birth_date[]", "2012-13-01"),
        ("child_class_name[]", "CM2"),
    ]);
    let (status, html) = send_form(&app, &reference, &pairs).await;
    assert_eq!(status, 422);
    assert_field_error(&html, "child-1-first_name", "form.error.required");
    assert_field_error(&html, "child-1-birth_date", "form.error.birth_date");
    assert!(unescape(&html).contains(&format!(
        "{} 1 – {}",
        fr("form.child"),
        fr("form.first_name")
    )));
    assert!(html.contains("value=\"CM2\""), "the child's input is kept");
    // Each child is a group with a legend.
    assert!(html.contains(&format!(
        "<fieldset class=\"child\" data-index=\"0\">\n<legend class=\"child-title\">{} <span class=\"child-number\">1</span></legend>",
        fr("form.child")
    )));
}

#[tokio::test]
async fn enter_sends_the_form_because_send_is_its_first_submit_button() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-enter")).await;
    let (_, html) = send_form(
        &app,
        &reference,
        &[
            ("role", "parent"),
            ("child_last_name[]", "A"),
            ("add_child", "1"),
        ],
    )
    .await;
    let form = &html[html.find("<form method=\"post\"").expect("form")..];
    let form = &form[..form.find("</form>").expect("end")];
    let buttons: Vec<&str> = form
        .match_indices("<button")
        .map(|(i, _)| &form[i..i + form[i..].find('>').expect("tag")])
        .collect();
    assert!(buttons.len() >= 4, "{buttons:?}");
    let first = buttons[0];
    assert!(
        first.contains("type=\"submit\"") && !first.contains("name="),
        "the default button sends: {first}"
    );
    assert!(first.contains("tabindex=\"-1\"") && first.contains("aria-hidden=\"true\""));
    // The visible Send has no name either, so both post the same.
    let send = tag_of(form, "send");
    assert!(!send.contains("name="), "{send}");
    assert!(buttons[1..]
        .iter()
        .any(|b| b.contains("name=\"remove_child\"")));
    assert!(buttons[1..]
        .iter()
        .any(|b| b.contains("name=\"add_child\"")));
}

#[tokio::test]
async fn the_children_block_is_for_parents_only() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-kids")).await;
    let (_, html) = page(&app, &reference, "fr").await;
    let block = tag_of(&html, "children");
    assert!(
        block.contains(" hidden") && block.contains(" disabled"),
        "absent for a pupil: {block}"
    );
    assert!(
        unescape(&html).contains(&fr("form.parent_note")),
        "the note for parents"
    );
    assert!(attr_of(&html, "role", "aria-describedby").is_some_and(|d| d.contains("role-hint")));
    let pupil = [
        ("last_name", ""),
        ("first_name", "Jean"),
        ("birth_date", "2011-01-01"),
        ("role", "student"),
        ("email", "j@example.test"),
    ];
    let (_, html) = send_form(&app, &reference, &pupil).await;
    let block = tag_of(&html, "children");
    assert!(
        block.contains(" hidden"),
        "still absent for a pupil: {block}"
    );
    let mut parent = pupil.to_vec();
    parent[3] = ("role", "parent");
    let (_, html) = send_form(&app, &reference, &parent).await;
    let block = tag_of(&html, "children");
    assert!(
        !block.contains("hidden") && !block.contains("disabled"),
        "shown for a parent: {block}"
    );
}

async fn set_contact(app: &TestApp, code: &str, c: Contact) {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    assert!(schools::set_contact(&mut conn, code, &c)
        .await
        .expect("update"));
}

fn global_support() -> Support {
    Support {
        phone: Some("01 40 00 00 00".into()),
        email: Some("support@service.test".into()),
        url: Some("https://aide.service.test/".into()),
    }
}

#[tokio::test]
async fn the_schools_contact_comes_first_then_the_services_then_the_schools_office() {
    let app = TestApp::spawn_with(|c| c.support = global_support()).await;
    set_contact(
        &app,
        UAI,
        Contact {
            email: Some("vie-scolaire@college-a.test".into()),
            phone: Some("+33 (0)1 23 45 67 89".into()),
            url: None,
        },
    )
    .await;
    let a = app.fail(&app.nobody("sub-a")).await;
    let (_, html) = page(&app, &a, "fr").await;
    let text = unescape(&html);
    assert!(text.contains(&fr("support.from_school").replace("{school}", "Collège A")));
    assert!(text.contains(">vie-scolaire@college-a.test</a>"));
    assert!(
        !text.contains("support@service.test"),
        "the school's own, not the service's"
    );
    assert!(!html.contains("id=\"contact-office\""));

    let b = app.fail(&app.ent("sub-b", "X", "Y", "", BRIN)).await;
    let (_, html) = page(&app, &b, "fr").await;
    let text = unescape(&html);
    assert!(text.contains(&fr("support.from_service")));
    assert!(text.contains(">support@service.test</a>") && text.contains(">01 40 00 00 00</a>"));
    assert_eq!(
        attr_of(&html, "contact-url", "href").as_deref(),
        Some("https://aide.service.test/")
    );

    // Nobody configured: the school's office, by name; or any school's.
    let bare = TestApp::spawn().await;
    let b = bare.fail(&bare.ent("sub-b", "X", "Y", "", BRIN)).await;
    let (_, html) = page(&bare, &b, "en").await;
    let office = Tr::new(Lang::En)
        .get("support.school_office")
        .replace("{school}", "School B");
    assert!(unescape(&html).contains(&office), "{office}");
    assert!(!html.contains("href=\"mailto:") && !html.contains("href=\"tel:"));
    let unknown = bare.fail(&bare.ent("sub-u", "X", "Y", "", UAI_B)).await;
    let (_, html) = page(&bare, &unknown, "en").await;
    assert!(unescape(&html).contains(Tr::new(Lang::En).get("support.school_office.any")));
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn tel_and_mailto_links_are_exact_and_in_the_users_language() {
    let app = TestApp::spawn().await;
    set_contact(
        &app,
        UAI,
        Contact {
            email: Some("vie-scolaire@college-a.test".into()),
            phone: Some("+33 (0)1 23 45 67 89".into()),
            url: Some("https://college-a.test/aide".into()),
        },
    )
    .await;
    let reference = app.fail(&app.nobody("sub-mail")).await;
    sqlx::query("UPDATE failures SET last_seen = '2026-12-02T20:05:00Z' WHERE reference = ?")
        .bind(&reference)
        .execute(&app.svc.pool)
        .await
        .expect("update");
    let code = app.failure(&reference).await.expect("row").support_code;
    for (lang, subject, greeting, details, when, sep) in [
        (
            "fr",
            format!("Problème de connexion, code {code}"),
            "Bonjour,",
            "Informations pour l'assistance :",
            "2 décembre 2026 à 21:05",
            " : ",
        ),
        (
            "nl",
            format!("Probleem met inloggen, code {code}"),
            "Hallo,",
            "Gegevens voor de helpdesk:",
            "2 december 2026 om 21:05",
            ": ",
        ),
        (
            "en",
            format!("Login problem, code {code}"),
            "Hello,",
            "Details for support:",
            "2 December 2026 at 21:05",
            ": ",
        ),
    ] {
        let (_, html) = page(&app, &reference, lang).await;
        assert_eq!(
            attr_of(&html, "contact-phone", "href").as_deref(),
            Some("tel:+33123456789")
        );
        let t = Tr::new(Lang::from_code(lang).expect("lang"));
        let line = |k: &str, v: &str| format!("{}{sep}{v}", t.get(k));
        let body = [
            greeting.to_string(),
            String::new(),
            String::new(),
            String::new(),
            details.to_string(),
            line("support.code", &code),
            line("support.error", &t.kind("identity_mismatch", "title")),
            line("support.school", "Collège A (0751234J)"),
            line("support.portal", "https://idp.test/saml"),
            line("support.service", SP),
            line("support.how", t.get("support.how.value")),
            line("support.when", when),
        ]
        .join("\r\n");
        let expected = format!(
            "mailto:vie-scolaire@college-a.test?subject={}&body={}",
            pct(&subject),
            pct(&body)
        );
        assert_eq!(
            attr_of(&html, "contact-email", "href").as_deref(),
            Some(expected.as_str()),
            "{lang}"
        );
        assert!(
            !expected.contains(&reference),
            "the reference is a capability: never mailed"
        );
        assert_eq!(
            attr_of(&html, "contact-url", "href").as_deref(),
            Some("https://college-a.test/aide")
        );
    }
}

#[tokio::test]
async fn the_language_switch_links_every_language_and_marks_the_current_one() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-lang")).await;
    for (lang, name) in [("fr", "Français"), ("nl", "Nederlands"), ("en", "English")] {
        let (_, html) = page(&app, &reference, lang).await;
        assert!(html.contains(&format!("<html lang=\"{lang}\">")));
        let nav = &html[html.find("<nav class=\"langs\"").expect("switch")..];
        let nav = &nav[..nav.find("</nav>").expect("end")];
        for other in ["fr", "nl", "en"] {
            let link = format!("<a href=\"?lang={other}\" lang=\"{other}\" hreflang=\"{other}\"");
            let at = nav.find(&link).unwrap_or_else(|| panic!("{link} in {nav}"));
            let tag = &nav[at..at + nav[at..].find('>').expect("tag")];
            assert_eq!(
                tag.contains("aria-current=\"true\""),
                other == lang,
                "{tag}"
            );
        }
        assert!(nav.contains(&format!(">{name}</a>")));
        for landmark in ["<header", "<main", "<footer"] {
            assert!(html.contains(landmark), "{landmark}");
        }
    }
    // The form's address, fetched (the switch on a page answered to a
    // POST), leads back to the page.
    let res = app
        .get(&format!("/failures/{reference}/report?lang=nl"))
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/failures/{reference}").as_str())
    );
}

#[tokio::test]
async fn times_are_shown_in_the_configured_zone_in_each_language() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-time")).await;
    sqlx::query("UPDATE failures SET last_seen = '2026-12-02T20:05:00Z' WHERE reference = ?")
        .bind(&reference)
        .execute(&app.svc.pool)
        .await
        .expect("update");
    for (lang, shown) in [
        ("fr", "2 décembre 2026 à 21:05"),
        ("nl", "2 december 2026 om 21:05"),
        ("en", "2 December 2026 at 21:05"),
    ] {
        let (_, html) = page(&app, &reference, lang).await;
        assert!(
            html.contains(&format!(
                "<time datetime=\"2026-12-02T20:05:00Z\" id=\"failure-time\">{shown}</time>"
            )),
            "{lang}: {}",
            &html[html.find("failure-time").unwrap_or(0)..][..80]
        );
    }
    let ny = TestApp::spawn_with(|c| c.timezone = chrono_tz::America::New_York).await;
    let reference = ny.fail(&ny.nobody("sub-time")).await;
    sqlx::query("UPDATE failures SET last_seen = '2026-12-02T20:05:00Z'")
        .execute(&ny.svc.pool)
        .await
        .expect("update");
    let (_, html) = page(&ny, &reference, "en").await;
    assert!(html.contains(">2 December 2026 at 15:05</time>"));
}

#[tokio::test]
async fn the_sent_page_gives_the_code_what_happens_next_and_the_link() {
    let app = TestApp::spawn_with(|c| c.smtp_url = Some("smtp://127.0.0.1:9".into())).await;
    let reference = app.fail(&app.nobody("sub-sent")).await;
    let code = app.failure(&reference).await.expect("row").support_code;
    // Before anything is sent: no "your request is waiting".
    let (_, html) = page(&app, &reference, "fr").await;
    assert!(!html.contains("id=\"failure-status\""));
    let good = [
        ("last_name", "Inconnu"),
        ("first_name", "Jean"),
        ("birth_date", "2011-01-01"),
        ("role", "student"),
        ("email", "jean@example.test"),
    ];
    let (status, html) = send_form(&app, &reference, &good).await;
    assert_eq!(status, 200);
    let text = unescape(&html);
    assert!(html.contains(&format!(
        "<strong id=\"support-code\" class=\"code\">{code}</strong>"
    )));
    for key in [
        "form.sent.next",
        "form.sent.link",
        "form.sent.email",
        "form.sent.change",
    ] {
        assert!(text.contains(&fr(key)), "{key}");
    }
    assert_eq!(
        attr_of(&html, "follow-up", "href"),
        Some(format!("/failures/{reference}"))
    );
    // Now the page says the request is waiting.
    let (_, html) = page(&app, &reference, "fr").await;
    assert!(unescape(&html).contains(&fr("failure.status.open")));
    assert!(html.contains("id=\"failure-status\""));
    // Without an e-mail address, no promise of one.
    let mut by_phone = good.to_vec();
    by_phone[4] = ("phone", "06 12 34 56 78");
    let (_, html) = send_form(&app, &reference, &by_phone).await;
    assert!(!html.contains("id=\"will-email\"") && html.contains("id=\"come-back\""));
}

#[tokio::test]
async fn the_schools_csv_carries_an_optional_checked_contact() {
    use jointure::csv_io::{import, ImportKind, Options};
    let app = TestApp::spawn().await;
    let run = |text: &'static str| {
        let svc = app.svc.clone();
        async move {
            import(
                &svc.pool,
                &svc.known_idps(),
                ImportKind::Schools,
                "schools.csv",
                text.as_bytes(),
                &Options::new("test"),
            )
            .await
            .expect("import runs")
        }
    };
    let contact = |code: &'static str| {
        let svc = app.svc.clone();
        async move {
            let mut conn = svc.pool.acquire().await.expect("conn");
            schools::with_contact(&mut conn, code)
                .await
                .expect("query")
                .expect("school")
                .1
        }
    };
    let r = run("school_code,name,support_email,support_phone,support_url\n0751234J,Collège A,vs@a.test,+33 1 23 45 67 89,https://a.test/aide\n").await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.updated, 1);
    assert_eq!(
        contact(UAI).await,
        Contact {
            email: Some("vs@a.test".into()),
            phone: Some("+33 1 23 45 67 89".into()),
            url: Some("https://a.test/aide".into()),
        }
    );
    // Without the columns the school keeps its contact; the same file again
    // changes nothing; an empty cell clears one.
    let r = run("school_code,name\n0751234J,Collège A\n").await;
    assert_eq!((r.unchanged, r.updated), (1, 0));
    assert!(contact(UAI).await.email.is_some());
    let r = run("school_code,name,support_phone\n0751234J,Collège A,\n").await;
    assert_eq!(r.updated, 1);
    let c = contact(UAI).await;
    assert_eq!((c.phone, c.email.is_some()), (None, true));
    // Bad shapes are refused with their line and column; nothing written.
    let r = run("school_code,name,support_email,support_phone,support_url\n12AB,School B,not-an-address,call me,javascript:alert(1)\n").await;
    let cols: Vec<_> = r
        .errors
        .iter()
        .map(|e| (e.line, e.column.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        cols,
        vec![
            (2, "support_email".to_string()),
            (2, "support_phone".to_string()),
            (2, "support_url".to_string())
        ]
    );
    assert!(contact(BRIN).await.is_empty());
}

/// Every `"ns.key"` literal of a template, where `ns` is a namespace of the
/// catalogue (`form`, `help`, …): the keys the templates use.
fn keys_in_template(text: &str, namespaces: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('"') {
        let rest = &text[i + 1..];
        let Some(end) = rest.find('"') else { break };
        let lit = &rest[..end];
        let is_key = lit.contains('.')
            && lit.split('.').all(|part| !part.is_empty())
            && lit
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
            && lit
                .split('.')
                .next()
                .is_some_and(|ns| namespaces.contains(ns));
        if is_key {
            out.push(lit.to_string());
        }
    }
    out
}

#[test]
fn every_catalogue_key_a_template_uses_exists_in_every_language() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // The keys of each language's catalogue file.
    let table = |code: &str| -> std::collections::BTreeSet<String> {
        let (_, text) = jointure::i18n::FILES
            .iter()
            .find(|(c, _)| *c == code)
            .unwrap_or_else(|| panic!("catalogue {code}"));
        jointure::i18n::parse(text)
            .expect("catalogue parses")
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect()
    };
    let langs = [
        ("fr", table("fr")),
        ("nl", table("nl")),
        ("en", table("en")),
    ];
    assert!(
        langs.iter().all(|(_, t)| t.len() > 100),
        "the tables were read"
    );
    let namespaces: std::collections::BTreeSet<String> = langs[0]
        .1
        .iter()
        .filter_map(|k| k.split('.').next().map(str::to_string))
        .collect();
    let mut used = Vec::new();
    for dir in ["templates", "templates/admin"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("templates") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "html") {
                let text = std::fs::read_to_string(&path).expect("template");
                for k in keys_in_template(&text, &namespaces) {
                    used.push((
                        path.file_name()
                            .map(|f| f.to_string_lossy().to_string())
                            .unwrap_or_default(),
                        k,
                    ));
                }
            }
        }
    }
    assert!(
        used.iter().any(|(_, k)| k == "form.send"),
        "keys were found"
    );
    let mut missing = Vec::new();
    for (file, key) in &used {
        for (lang, keys) in &langs {
            if !keys.contains(key) {
                missing.push(format!("{file}: {key} ({lang})"));
            }
        }
        // And the running catalogue agrees.
        for lang in [Lang::Fr, Lang::Nl, Lang::En] {
            if Tr::new(lang).get(key) == key {
                missing.push(format!("{file}: {key} ({lang:?}, at run time)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys used but missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_test_of_keys_used_sees_a_missing_one() {
    let namespaces = ["form".to_string()].into_iter().collect();
    let found = keys_in_template(
        "{{ t.get(\"form.nowhere\") }} <a href=\"/x.html\"> {{ t.get(\"form.send\") }}",
        &namespaces,
    );
    assert_eq!(found, vec!["form.nowhere", "form.send"]);
    assert_eq!(Tr::new(Lang::Nl).get("form.nowhere"), "form.nowhere");
}
