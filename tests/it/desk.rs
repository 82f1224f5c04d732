//! The failure form and the admins' desk over HTTP: the whole story, scoping,
//! CSRF, throttling, sessions, escaping and concurrent actions.

use crate::common::*;

#[tokio::test]
async fn the_whole_story_mismatch_form_admin_resolves_next_login_works() {
    let app = TestApp::spawn().await;
    app.add_admin("admin@a.test", "school_admin", &[UAI]).await;

    // 1. A signed response for a pupil whose ENT spells her name otherwise.
    let spec = app.ent("sub-story", "Dupond-Martin", "Elodie", "12/04/2011", UAI);
    let res = app.post_xml(&app.mint(&spec)).await;
    assert_eq!(res.status().as_u16(), 403);
    let page = res.text().await.expect("page");
    assert_eq!(
        meta(&page, "jointure-failure-kind").as_deref(),
        Some("identity_mismatch")
    );
    let reference = meta(&page, "jointure-reference").expect("ref");

    // 2. She sends the failure form.
    let user = client();
    let csrf = csrf_from(&page);
    let sent = app
        .post_with(
            &user,
            &format!("/failures/{reference}/report"),
            &[
                ("csrf_token", &csrf),
                ("last_name", "Dupont-Martin"),
                ("first_name", "Élodie"),
                ("birth_date", "2011-04-12"),
                ("role", "student"),
                ("class_name", "4B"),
                ("email", "elodie@example.test"),
                ("phone", ""),
                ("message", "Mon nom est mal écrit."),
            ],
        )
        .await;
    assert_eq!(sent.status().as_u16(), 200);
    assert!(sent
        .text()
        .await
        .expect("confirmation")
        .contains(&format!("/failures/{reference}")));

    // 3. The admin logs in, finds it, sees both sides and the candidates.
    let (admin, csrf) = app.admin_client("admin@a.test").await;
    let list = admin
        .get(format!(
            "{}/admin/failures?status=open&kind=identity_mismatch",
            app.base
        ))
        .send()
        .await
        .expect("list");
    let list = list.text().await.expect("html");
    assert!(list.contains(&format!("/admin/failures/{reference}")));
    let detail = admin
        .get(format!("{}/admin/failures/{reference}", app.base))
        .send()
        .await
        .expect("detail")
        .text()
        .await
        .expect("html");
    assert!(detail.contains("Dupond-Martin"), "asserted side");
    assert!(detail.contains("Mon nom est mal écrit."), "declared side");
    let first = detail
        .find("class=\"candidate\" data-account=\"")
        .expect("a candidate")
        + "class=\"candidate\" data-account=\"".len();
    let top = &detail[first..first + detail[first..].find('"').expect("end")];
    assert_eq!(top, "A-1", "the top candidate is the right pupil");

    // 4. Resolve to the top candidate.
    let res = app
        .post_with(
            &admin,
            &format!("/admin/failures/{reference}/resolve"),
            &[("csrf_token", &csrf), ("account_id", top)],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/admin/failures/{reference}?done=resolved").as_str())
    );
    assert_eq!(
        app.mapping("sub-story").await,
        Some(("A-1".into(), "admin".into()))
    );

    // 5. Her failure page says so, with a way to log in again.
    let page = app
        .get(&format!("/failures/{reference}"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(
        meta(&page, "jointure-failure-status").as_deref(),
        Some("resolved")
    );
    assert!(
        page.contains("/saml/login?idp="),
        "a link that starts a fresh login"
    );

    // 6. Her next signed login succeeds.
    app.expect_login(
        &app.mint(&app.ent("sub-story", "Dupond-Martin", "Elodie", "12/04/2011", UAI)),
        "A-1",
    )
    .await;

    // The audit log has it.
    let audit = admin
        .get(format!("{}/admin/audit", app.base))
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("html");
    assert!(audit.contains("failure.resolve") && audit.contains("admin@a.test"));
}

#[tokio::test]
async fn resolving_resolves_every_open_failure_of_the_identity() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let r1 = app.fail(&app.nobody("sub-multi")).await;
    // The same person, asserted with a school not (yet) registered.
    let r2 = app.fail(&app.ent("sub-multi", "Zz", "Yy", "", UAI_B)).await;
    assert_ne!(r1, r2);
    let (admin, csrf) = app.admin_client("root@x.test").await;
    let res = app
        .post_with(
            &admin,
            &format!("/admin/failures/{r1}/resolve"),
            &[("csrf_token", &csrf), ("account_id", "A-5")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        app.failure(&r2).await.expect("r2").status.as_str(),
        "resolved"
    );
}

#[tokio::test]
async fn a_school_admin_never_sees_or_changes_another_school() {
    let app = TestApp::spawn().await;
    app.add_admin("a@a.test", "school_admin", &[UAI]).await;
    app.map("sub-b", "B-1").await;
    let b_failure = app
        .fail(&app.ent("sub-nl", "Nobody", "X", "01/01/2012", BRIN))
        .await;
    let a_failure = app.fail(&app.nobody("sub-a")).await;
    let mut no_school = app.nobody("sub-none");
    no_school.attributes.retain(|(n, _)| n != "ENTStructureUAI");
    let none_failure = app.fail(&no_school).await;
    let (c, csrf) = app.admin_client("a@a.test").await;
    let base = app.base.clone();
    let get = |path: String| {
        let c = c.clone();
        let base = base.clone();
        async move { c.get(format!("{base}{path}")).send().await.expect("get") }
    };

    assert_eq!(
        get(format!("/admin/failures/{b_failure}"))
            .await
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        get(format!("/admin/failures/{none_failure}"))
            .await
            .status()
            .as_u16(),
        404,
        "no school code: superadmins only"
    );
    assert_eq!(
        get(format!("/admin/failures/{a_failure}"))
            .await
            .status()
            .as_u16(),
        200
    );
    let list = get("/admin/failures".into())
        .await
        .text()
        .await
        .expect("list");
    assert!(
        list.contains(&a_failure) && !list.contains(&b_failure) && !list.contains(&none_failure)
    );
    let accounts = get("/admin/accounts".into())
        .await
        .text()
        .await
        .expect("accounts");
    assert!(accounts.contains("A-1") && !accounts.contains("B-1"));
    let mappings = get("/admin/mappings".into())
        .await
        .text()
        .await
        .expect("mappings");
    assert!(!mappings.contains("sub-b"));
    let schools = get("/admin/schools".into())
        .await
        .text()
        .await
        .expect("schools");
    assert!(schools.contains(UAI) && !schools.contains(BRIN));

    // B's mapping by URL: 404, nothing deleted.
    let b_mapping: i64 = sqlx::query_scalar("SELECT id FROM mappings WHERE subject = 'sub-b'")
        .fetch_one(&app.svc.pool)
        .await
        .expect("id");
    let res = app
        .post_with(
            &c,
            &format!("/admin/mappings/{b_mapping}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status().as_u16(), 404);
    assert!(app.mapping("sub-b").await.is_some());
    // B's failure: resolve and dismiss answer 404.
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{b_failure}/dismiss"),
            &[("csrf_token", &csrf), ("reason", "x")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 404);
    // Resolving A's failure to B's account is refused, nothing mapped.
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{a_failure}/resolve"),
            &[("csrf_token", &csrf), ("account_id", "B-1")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.mapping("sub-a").await, None);
    assert_eq!(
        app.failure(&a_failure).await.expect("row").status.as_str(),
        "open"
    );
    // Creating a mapping to B's account by hand is refused too.
    let res = app
        .post_with(
            &c,
            "/admin/mappings",
            &[
                ("csrf_token", &csrf),
                ("idp_entity_id", &app.idp.entity_id),
                ("subject", "x"),
                ("account_id", "B-1"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.mapping("x").await, None);

    // A superadmin sees the failure without school.
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (root, _) = app.admin_client("root@x.test").await;
    let res = root
        .get(format!("{}/admin/failures/{none_failure}", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn a_form_field_given_twice_is_refused_not_read_one_way() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app.fail(&app.nobody("sub-twice")).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let path = format!("/admin/failures/{reference}/resolve");
    // The right token twice, or the right one beside a forged one: 403.
    for second in [csrf.as_str(), "forged"] {
        let res = app
            .post_with(
                &c,
                &path,
                &[
                    ("csrf_token", &csrf),
                    ("csrf_token", second),
                    ("account_id", "A-5"),
                ],
            )
            .await;
        assert_eq!(res.status().as_u16(), 403, "second token {second:?}");
    }
    // Two account IDs: which one would be meant? 400, nothing mapped.
    let res = app
        .post_with(
            &c,
            &path,
            &[
                ("csrf_token", &csrf),
                ("account_id", "A-5"),
                ("account_id", "A-6"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(app.mapping("sub-twice").await, None);
    assert_eq!(
        app.failure(&reference).await.expect("row").status.as_str(),
        "open"
    );
    // Once each: it works.
    let res = app
        .post_with(&c, &path, &[("csrf_token", &csrf), ("account_id", "A-5")])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        app.mapping("sub-twice").await.map(|m| m.0),
        Some("A-5".into())
    );
}

#[tokio::test]
async fn posts_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app.fail(&app.nobody("sub-csrf")).await;
    let (c, _) = app.admin_client("root@x.test").await;
    for token in ["", "forged"] {
        let res = app
            .post_with(
                &c,
                &format!("/admin/failures/{reference}/resolve"),
                &[("csrf_token", token), ("account_id", "A-5")],
            )
            .await;
        assert_eq!(res.status().as_u16(), 403);
        let res = app
            .post_with(
                &c,
                &format!("/admin/failures/{reference}/dismiss"),
                &[("csrf_token", token), ("reason", "r")],
            )
            .await;
        assert_eq!(res.status().as_u16(), 403);
        let res = app
            .post_with(
                &c,
                "/admin/mappings",
                &[
                    ("csrf_token", token),
                    ("idp_entity_id", "i"),
                    ("subject", "s"),
                    ("account_id", "A-5"),
                ],
            )
            .await;
        assert_eq!(res.status().as_u16(), 403);
        let res = app
            .post_with(&c, "/admin/logout", &[("csrf_token", token)])
            .await;
        assert_eq!(res.status().as_u16(), 403);
    }
    assert_eq!(
        app.failure(&reference).await.expect("row").status.as_str(),
        "open"
    );
    assert_eq!(app.mapping("sub-csrf").await, None);
    // The failure form too.
    let res = app
        .post_with(
            &client(),
            &format!("/failures/{reference}/report"),
            &[("csrf_token", "forged"), ("last_name", "X")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(app
        .failure(&reference)
        .await
        .expect("row")
        .report_json
        .is_none());
    // And the login form: no cookie, no login.
    let res = app
        .post_with(
            &client(),
            "/admin/login",
            &[
                ("csrf_token", "x".repeat(43).as_str()),
                ("email", "root@x.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn wrong_passwords_are_throttled() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            app.login_as(&c, "root@x.test", "wrong password")
                .await
                .status()
                .as_u16(),
            401
        );
    }
    // Now even the right password waits.
    let res = app.login_as(&c, "root@x.test", PASSWORD).await;
    assert_eq!(res.status().as_u16(), 429);
}

#[tokio::test]
async fn session_cookie_flags_and_rotation_at_login() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let c = client();
    let first = app.login_as(&c, "root@x.test", PASSWORD).await;
    let cookie1 = header(&first, "set-cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie1.contains(flag), "{flag} in {cookie1}");
    }
    assert!(cookie1.starts_with("__Host-jointure_admin="), "{cookie1}");
    let token1 = cookie1.split(';').next().expect("pair").to_string();
    // Logging in again (with the old cookie sent) gives a new ID and kills the old one.
    let second = app.login_as(&c, "root@x.test", PASSWORD).await;
    let cookie2 = header(&second, "set-cookie");
    let token2 = cookie2.split(';').next().expect("pair").to_string();
    assert_ne!(token1, token2);
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = stale
        .get(format!("{}/admin", app.base))
        .header("cookie", &token1)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 303, "the old session is gone");
    let res = stale
        .get(format!("{}/admin", app.base))
        .header("cookie", &token2)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 200);
    // A cookie fixed by an attacker before login is not what login returns.
    let fixed = "__Host-jointure_admin=attacker-chosen-value";
    let res = stale
        .get(format!("{}/admin", app.base))
        .header("cookie", fixed)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 303);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let res = app
        .post_with(&c, "/admin/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let res = c
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/admin/login")
    );
}

#[tokio::test]
async fn html_in_asserted_attributes_and_form_fields_is_escaped_everywhere() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let evil = "<script>alert(1)</script>";
    let spec = app
        .ent(
            "sub-<b>x</b>",
            evil,
            "<img src=x onerror=alert(2)>",
            "01/01/2011",
            UAI,
        )
        .attr("ENTEleveClasses", evil);
    let res = app.post_xml(&app.mint(&spec)).await;
    let page = res.text().await.expect("page");
    assert!(!page.contains("<script>alert(1)"), "user page");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || page.contains("&#60;script&#62;"),
        "shown escaped"
    );
    let reference = meta(&page, "jointure-reference").expect("ref");
    let csrf = csrf_from(&page);
    let res = app
        .post_with(
            &client(),
            &format!("/failures/{reference}/report"),
            &[
                ("csrf_token", &csrf),
                ("last_name", evil),
                ("first_name", "<i>F</i>"),
                ("birth_date", "2011-01-01"),
                ("role", "student"),
                ("email", "a@b.test"),
                ("message", "</textarea><script>alert(3)</script>"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let again = app
        .get(&format!("/failures/{reference}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        !again.contains("<script>alert(")
            && !again.contains("<i>F</i>")
            && !again.contains("</textarea><script>")
    );
    let (c, _) = app.admin_client("root@x.test").await;
    for path in [
        format!("/admin/failures/{reference}"),
        "/admin/failures".into(),
        "/admin/audit".into(),
    ] {
        let html = c
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("html");
        assert!(
            !html.contains("<script>alert(")
                && !html.contains("<img src=x")
                && !html.contains("<b>x</b>"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn two_admins_resolving_at_once_one_wins_and_the_other_is_told_who() {
    let app = TestApp::spawn().await;
    app.add_admin("one@x.test", "superadmin", &[]).await;
    app.add_admin("two@x.test", "superadmin", &[]).await;
    let reference = app.fail(&app.nobody("sub-race")).await;
    let (c1, t1) = app.admin_client("one@x.test").await;
    let (c2, t2) = app.admin_client("two@x.test").await;
    let path = format!("/admin/failures/{reference}/resolve");
    let p1 = [("csrf_token", t1.as_str()), ("account_id", "A-1")];
    let p2 = [("csrf_token", t2.as_str()), ("account_id", "A-5")];
    let (r1, r2) = tokio::join!(
        app.post_with(&c1, &path, &p1),
        app.post_with(&c2, &path, &p2)
    );
    let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [303, 409]);
    let loser = if r1.status().as_u16() == 409 { r1 } else { r2 };
    let html = loser.text().await.expect("html");
    assert!(
        html.contains("déjà résolu par"),
        "the loser is told who did what"
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mappings WHERE subject = 'sub-race'")
        .fetch_one(&app.svc.pool)
        .await
        .expect("count");
    assert_eq!(n, 1, "never two mappings for one identity");
}

#[tokio::test]
async fn dismiss_needs_a_reason_and_reopen_brings_it_back() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let reference = app.fail(&app.nobody("sub-dismiss")).await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{reference}/dismiss"),
            &[("csrf_token", &csrf), ("reason", "  ")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 422);
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{reference}/dismiss"),
            &[
                ("csrf_token", &csrf),
                ("reason", "test login by the IT team"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let page = app
        .get(&format!("/failures/{reference}"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(
        meta(&page, "jointure-failure-status").as_deref(),
        Some("dismissed")
    );
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{reference}/reopen"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        app.failure(&reference).await.expect("row").status.as_str(),
        "open"
    );
}

#[tokio::test]
async fn the_failure_form_keeps_input_and_shows_errors_next_to_fields() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-form")).await;
    let page = app
        .get(&format!("/failures/{reference}"))
        .await
        .text()
        .await
        .expect("page");
    let csrf = csrf_from(&page);
    let c = client();
    let res = app
        .post_with(
            &c,
            &format!("/failures/{reference}/report"),
            &[
                ("csrf_token", &csrf),
                ("last_name", "Kept Name"),
                ("first_name", ""),
                ("birth_date", "31/02/2011"),
                ("role", "parent"),
                ("email", "x@y.test"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 422);
    let html = res.text().await.expect("html");
    assert!(html.contains("value=\"Kept Name\""), "input kept");
    assert!(html.contains("id=\"first_name-error\"") && html.contains("id=\"birth_date-error\""));
    // Adding a child row without JavaScript re-shows the form with one more row.
    let rows = |h: &str| h.matches("name=\"child_last_name[]\"").count();
    let before = rows(&html);
    let res = app
        .post_with(
            &c,
            &format!("/failures/{reference}/report"),
            &[
                ("csrf_token", &csrf),
                ("role", "parent"),
                ("child_last_name[]", "A"),
                ("add_child", "1"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(rows(&res.text().await.expect("html")), before + 1);
    // A parent's complete report is stored with the child; sending again updates it.
    for msg in ["first", "second"] {
        let res = app
            .post_with(
                &c,
                &format!("/failures/{reference}/report"),
                &[
                    ("csrf_token", &csrf),
                    ("last_name", "Parent"),
                    ("first_name", "P"),
                    ("birth_date", "1980-01-01"),
                    ("role", "parent"),
                    ("email", "p@y.test"),
                    ("message", msg),
                    ("child_last_name[]", "Kid"),
                    ("child_first_name[]", "K"),
                    ("child_birth_date[]", "2012-05-05"),
                    ("child_class_name[]", "CM2"),
                ],
            )
            .await;
        assert_eq!(res.status().as_u16(), 200);
    }
    let stored: serde_json::Value = serde_json::from_str(
        &app.failure(&reference)
            .await
            .expect("row")
            .report_json
            .expect("report"),
    )
    .expect("json");
    assert_eq!(stored["message"], "second");
    assert_eq!(stored["children"][0]["class_name"], "CM2");
}

#[tokio::test]
async fn the_failure_form_is_rate_limited_per_failure() {
    let app = TestApp::spawn().await;
    let reference = app.fail(&app.nobody("sub-rate")).await;
    let csrf = csrf_from(
        &app.get(&format!("/failures/{reference}"))
            .await
            .text()
            .await
            .expect("page"),
    );
    let mut last = 0;
    for _ in 0..12 {
        last = app
            .post_with(
                &client(),
                &format!("/failures/{reference}/report"),
                &[("csrf_token", &csrf), ("last_name", "x")],
            )
            .await
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
}

#[tokio::test]
async fn the_dashboard_counts_open_failures_by_kind_and_school() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    app.fail(&app.nobody("d1")).await;
    app.fail(&app.nobody("d2")).await;
    app.fail(&app.ent("d3", "a", "b", "", UAI_B)).await;
    let (c, _) = app.admin_client("root@x.test").await;
    let html = c
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    let kinds = &html[html.find("id=\"by-kind\"").expect("by kind")..];
    assert!(
        kinds.contains("kind=identity_mismatch\">2</a></td>"),
        "{kinds}"
    );
    assert!(html.contains("school=0751234J") && html.contains("school=0330001X"));
}

#[tokio::test]
async fn the_failure_list_paginates_by_keyset_and_keeps_filters() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    for i in 0..55 {
        app.fail(&app.nobody(&format!("page-{i}"))).await;
    }
    let (c, _) = app.admin_client("root@x.test").await;
    let first = c
        .get(format!(
            "{}/admin/failures?status=open&kind=identity_mismatch",
            app.base
        ))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert_eq!(first.matches("class=\"support\"").count(), 50);
    let link = &first[..first.find("id=\"next-page\"").expect("next link")];
    let start = link.rfind("href=\"").expect("href") + 6;
    let next_href = link[start..]
        .split('"')
        .next()
        .expect("href")
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    assert!(
        next_href.contains("status=open")
            && next_href.contains("kind=identity_mismatch")
            && next_href.contains("cursor="),
        "{next_href}"
    );
    let second = c
        .get(format!("{}{next_href}", app.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert_eq!(
        second.matches("class=\"support\"").count(),
        5,
        "{next_href}"
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_admin_sessions() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let (c, _) = app.admin_client("root@x.test").await;
    sqlx::query("UPDATE sessions SET last_seen = last_seen - 31 * 60 WHERE kind = 'admin'")
        .execute(&app.svc.pool)
        .await
        .expect("age");
    let res = c
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 303, "idle for 31 minutes");
    let (c, _) = app.admin_client("root@x.test").await;
    sqlx::query("UPDATE sessions SET created_at = created_at - 11 * 3600 WHERE kind = 'admin'")
        .execute(&app.svc.pool)
        .await
        .expect("age");
    let res = c
        .get(format!("{}/admin", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(
        res.status().as_u16(),
        303,
        "logged in 11 hours ago, though active"
    );
}

/// The visible text of a page: tags (with their attributes), scripts and
/// styles dropped, and `<code>` blocks, which show recorded data as data
/// (audit payloads, account IDs), not the page's own words.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        out.push(' ');
        let tail = &rest[i..];
        let skip_to = if tail.starts_with("<code") {
            tail.find("</code>").map(|j| j + 7)
        } else if tail.starts_with("<script") {
            tail.find("</script>").map(|j| j + 9)
        } else if tail.starts_with("<style") {
            tail.find("</style>").map(|j| j + 8)
        } else {
            tail.find('>').map(|j| j + 1)
        };
        let Some(j) = skip_to else { break };
        rest = &tail[j..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn desk_pages_show_no_raw_codes_in_any_language() {
    let app = TestApp::spawn().await;
    app.add_admin("root@x.test", "superadmin", &[]).await;
    let open = app.fail(&app.nobody("sub-codes")).await;
    let expired = app
        .fail(
            &app.nobody("sub-codes-2")
                .shifted(chrono::Duration::hours(-2)),
        )
        .await;
    let (c, csrf) = app.admin_client("root@x.test").await;
    let res = app
        .post_with(
            &c,
            &format!("/admin/failures/{expired}/dismiss"),
            &[("csrf_token", &csrf), ("reason", "test")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let kinds: Vec<&str> = jointure::resolve::FailureKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    for lang in ["fr", "nl", "en"] {
        for path in [
            "/admin".to_string(),
            "/admin/failures".to_string(),
            "/admin/failures?status=dismissed".to_string(),
            format!("/admin/failures/{open}"),
            format!("/admin/failures/{expired}"),
            "/admin/accounts".to_string(),
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let res = c
                .get(format!("{}{path}{sep}lang={lang}", app.base))
                .send()
                .await
                .expect("page");
            assert_eq!(res.status().as_u16(), 200, "{lang} {path}");
            let text = visible_text(&res.text().await.expect("html"));
            let words: Vec<&str> = text
                .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            // Codes without an underscore ("expired", "replayed") are words
            // in English.
            let mut raw: Vec<&str> = kinds
                .iter()
                .copied()
                .filter(|k| lang != "en" || k.contains('_'))
                .collect();
            if lang != "en" {
                // In English these are words; elsewhere they are codes
                // ("open" is Dutch too).
                raw.extend(["resolved", "dismissed", "student", "teacher", "staff"]);
            }
            if lang == "fr" {
                raw.push("open");
            }
            for code in raw {
                assert!(
                    !words.contains(&code),
                    "{lang} {path}: raw code {code:?} shown"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_desk_language_is_remembered_per_admin_across_logins() {
    let app = TestApp::spawn().await;
    app.add_admin("nl@x.test", "superadmin", &[]).await;
    app.add_admin("fr@x.test", "superadmin", &[]).await;
    let (c, csrf) = app.admin_client("nl@x.test").await;
    // Without the session's CSRF token nothing is changed.
    let res = app
        .post_with(&c, "/admin/language", &[("lang", "nl"), ("back", "/admin")])
        .await;
    assert_eq!(res.status().as_u16(), 403);
    let res = app
        .post_with(
            &c,
            "/admin/language",
            &[
                ("csrf_token", &csrf),
                ("lang", "nl"),
                ("back", "/admin/failures?status=open&lang=fr"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(header(&res, "location"), "/admin/failures?status=open");
    assert!(header(&res, "set-cookie").contains("lang=nl"));
    // A fresh browser whose own language is French: after this admin logs
    // in the desk speaks Dutch; another admin on it keeps the browser's.
    for (email, want) in [("nl@x.test", "lang=\"nl\""), ("fr@x.test", "lang=\"fr\"")] {
        let c = client();
        let res = app.login_as(&c, email, PASSWORD).await;
        assert_eq!(res.status().as_u16(), 303, "{email}");
        let page = c
            .get(format!("{}/admin", app.base))
            .header("accept-language", "fr-FR,fr;q=0.9")
            .send()
            .await
            .expect("dashboard");
        let html = page.text().await.expect("html");
        assert!(
            html.contains(want),
            "{email}: {}",
            &html[..200.min(html.len())]
        );
    }
    let res = app
        .post_with(
            &c,
            "/admin/language",
            &[("csrf_token", &csrf), ("lang", "de"), ("back", "/admin")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 400);
}
