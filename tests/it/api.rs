//! The JSON API (SPEC §6): bearer tokens, the same scoping as admins,
//! assertions handed over by services, failures and mappings.

use crate::common::*;
use serde_json::{json, Value};

async fn token(app: &TestApp, name: &str, role: &str, schools: &[&str]) -> String {
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    let schools: Vec<String> = schools.iter().map(|s| s.to_string()).collect();
    jointure::store::tokens::create(
        &mut conn,
        name,
        jointure::resolve::AdminRole::parse(role).expect("role"),
        &schools,
    )
    .await
    .expect("db")
    .expect("created")
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1{path}", app.base);
    let mut req = match method {
        "GET" => c.get(url),
        "DELETE" => c.delete(url),
        _ => c.post(url),
    };
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        },
    )
}

#[tokio::test]
async fn tokens_are_required_checked_and_revocable() {
    let app = TestApp::spawn().await;
    let (s, body) = call(&app, "GET", "/failures", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"].is_string());
    assert_eq!(
        call(&app, "GET", "/failures", Some("jnt_forged"), None)
            .await
            .0,
        401
    );
    let t = token(&app, "sis", "superadmin", &[]).await;
    assert!(t.starts_with("jnt_") && t.len() > 40);
    assert_eq!(call(&app, "GET", "/failures", Some(&t), None).await.0, 200);
    let mut conn = app.svc.pool.acquire().await.expect("conn");
    assert!(jointure::store::tokens::revoke(&mut conn, "sis")
        .await
        .expect("revoke"));
    drop(conn);
    assert_eq!(
        call(&app, "GET", "/failures", Some(&t), None).await.0,
        401,
        "revoked"
    );
    // Only a hash is stored.
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&app.svc.pool)
        .await
        .expect("hash");
    assert!(!stored.contains(&t[4..]));
}

#[tokio::test]
async fn openapi_needs_no_token_and_describes_every_route() {
    let app = TestApp::spawn().await;
    let (s, doc) = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/assertions",
        "/resolve",
        "/failures",
        "/failures/{reference}",
        "/failures/{reference}/resolve",
        "/failures/{reference}/dismiss",
        "/mappings",
        "/mappings/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[tokio::test]
async fn assertions_are_processed_as_at_the_acs() {
    let app = TestApp::spawn().await;
    let t = token(&app, "pronote", "superadmin", &[]).await;
    app.map("sub-api", "A-1").await;
    let ok = jointure::saml::mint::to_base64(&app.mint(&app.ent("sub-api", "a", "b", "", UAI)));
    let (s, body) = call(
        &app,
        "POST",
        "/assertions",
        Some(&t),
        Some(json!({"saml_response": ok, "relay_state": "/x"})),
    )
    .await;
    assert_eq!(
        (s, body["outcome"].as_str(), body["account_id"].as_str()),
        (200, Some("resolved"), Some("A-1"))
    );
    // The same one again is a replay, reported with a 200 and an absolute URL.
    let (s, body) = call(
        &app,
        "POST",
        "/assertions",
        Some(&t),
        Some(json!({"saml_response": ok})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["outcome"], "failed");
    assert_eq!(body["kind"], "replayed");
    let url = body["failure_url"].as_str().expect("url");
    assert!(url.starts_with("https://sp.test/failures/"), "{url}");
    assert!(body["support_code"]
        .as_str()
        .is_some_and(|c| c.starts_with("JNT-")));
    let (s, body) = call(
        &app,
        "POST",
        "/assertions",
        Some(&t),
        Some(json!({"saml_response": "%%%"})),
    )
    .await;
    assert_eq!((s, body["kind"].as_str()), (200, Some("malformed_request")));
    let (s, body) = call(
        &app,
        "POST",
        "/assertions",
        Some(&t),
        Some(json!({"nope": 1})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
}

#[tokio::test]
async fn a_school_token_sees_and_changes_only_its_school() {
    let app = TestApp::spawn().await;
    let t = token(&app, "college-a", "school_admin", &[UAI]).await;
    app.map("sub-b", "B-1").await;
    app.map("sub-a", "A-1").await;
    let a = app.fail(&app.nobody("api-a")).await;
    let b = app
        .fail(&app.ent("api-b", "X", "Y", "01/01/2012", BRIN))
        .await;
    let (_, list) = call(&app, "GET", "/failures?status=open", Some(&t), None).await;
    let refs: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|f| f["reference"].as_str())
        .collect();
    assert_eq!(refs, [a.as_str()]);
    assert_eq!(
        call(&app, "GET", &format!("/failures/{b}"), Some(&t), None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            &app,
            "GET",
            &format!(
                "/resolve?idp={}&subject=sub-b",
                url::form_urlencoded::byte_serialize(app.idp.entity_id.as_bytes())
                    .collect::<String>()
            ),
            Some(&t),
            None
        )
        .await
        .0,
        404
    );
    let (s, body) = call(
        &app,
        "GET",
        &format!(
            "/resolve?idp={}&subject=sub-a",
            url::form_urlencoded::byte_serialize(app.idp.entity_id.as_bytes()).collect::<String>()
        ),
        Some(&t),
        None,
    )
    .await;
    assert_eq!((s, body["account_id"].as_str()), (200, Some("A-1")));
    let (s, body) = call(
        &app,
        "POST",
        &format!("/failures/{a}/resolve"),
        Some(&t),
        Some(json!({"account_id": "B-1"})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("account_not_allowed"))
    );
    assert_eq!(
        call(
            &app,
            "POST",
            &format!("/failures/{b}/dismiss"),
            Some(&t),
            Some(json!({"reason": "x"}))
        )
        .await
        .0,
        404
    );
    let (s, body) = call(
        &app,
        "POST",
        &format!("/failures/{a}/resolve"),
        Some(&t),
        Some(json!({"account_id": "A-5"})),
    )
    .await;
    assert_eq!(
        (s, body["status"].as_str(), body["resolved_by"].as_str()),
        (200, Some("resolved"), Some("api:college-a"))
    );
    let (s, body) = call(
        &app,
        "POST",
        &format!("/failures/{a}/resolve"),
        Some(&t),
        Some(json!({"account_id": "A-5"})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("already_handled"))
    );
}

#[tokio::test]
async fn failures_page_by_cursor() {
    let app = TestApp::spawn().await;
    let t = token(&app, "root", "superadmin", &[]).await;
    for i in 0..7 {
        app.fail(&app.nobody(&format!("p-{i}"))).await;
    }
    let (_, first) = call(&app, "GET", "/failures?limit=5", Some(&t), None).await;
    assert_eq!(first["items"].as_array().expect("items").len(), 5);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = call(
        &app,
        "GET",
        &format!(
            "/failures?limit=5&cursor={}",
            url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
        ),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(second["items"].as_array().expect("items").len(), 2);
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        call(&app, "GET", "/failures?limit=0", Some(&t), None)
            .await
            .0,
        400
    );
    assert_eq!(
        call(&app, "GET", "/failures?kind=nonsense", Some(&t), None)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn mappings_are_created_listed_and_deleted_in_scope() {
    let app = TestApp::spawn().await;
    let t = token(&app, "college-a", "school_admin", &[UAI]).await;
    let idp = app.idp.entity_id.clone();
    let (s, m) = call(
        &app,
        "POST",
        "/mappings",
        Some(&t),
        Some(json!({"idp_entity_id": idp, "subject": "new-sub", "account_id": "A-1"})),
    )
    .await;
    assert_eq!(
        (s, m["source"].as_str(), m["account_id"].as_str()),
        (201, Some("admin"), Some("A-1"))
    );
    let (s, body) = call(
        &app,
        "POST",
        "/mappings",
        Some(&t),
        Some(json!({"idp_entity_id": idp, "subject": "new-sub", "account_id": "A-5"})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("already_mapped"))
    );
    assert_eq!(
        call(
            &app,
            "POST",
            "/mappings",
            Some(&t),
            Some(json!({"idp_entity_id": idp, "subject": "x", "account_id": "B-1"}))
        )
        .await
        .0,
        403
    );
    let (_, list) = call(&app, "GET", "/mappings", Some(&t), None).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    app.map("sub-b", "B-1").await;
    let b_id: i64 = sqlx::query_scalar("SELECT id FROM mappings WHERE subject = 'sub-b'")
        .fetch_one(&app.svc.pool)
        .await
        .expect("id");
    assert_eq!(
        call(&app, "DELETE", &format!("/mappings/{b_id}"), Some(&t), None)
            .await
            .0,
        404
    );
    let id = m["id"].as_i64().expect("id");
    assert_eq!(
        call(&app, "DELETE", &format!("/mappings/{id}"), Some(&t), None)
            .await
            .0,
        204
    );
    assert_eq!(app.mapping("new-sub").await, None);
}

#[tokio::test]
async fn an_assertion_of_another_school_reveals_no_reference_or_account() {
    let app = TestApp::spawn().await;
    let t = token(&app, "college-a", "school_admin", &[UAI]).await;
    // School B's pupil has an open failure with a report on it.
    let b_ref = app
        .fail(&app.ent("b-pupil", "X", "Y", "01/01/2012", BRIN))
        .await;
    let again = jointure::saml::mint::to_base64(&app.mint(&app.ent(
        "b-pupil",
        "X",
        "Y",
        "01/01/2012",
        BRIN,
    )));
    let (s, body) = call(
        &app,
        "POST",
        "/assertions",
        Some(&t),
        Some(json!({"saml_response": again})),
    )
    .await;
    assert_eq!(
        (s, body["outcome"].as_str(), body["kind"].as_str()),
        (200, Some("failed"), Some("identity_mismatch"))
    );
    assert!(
        body["reference"].is_null()
            && body["failure_url"].is_null()
            && body["support_code"].is_null(),
        "{body}"
    );
    assert!(!body.to_string().contains(&b_ref));
    app.map("b-mapped", "B-1").await;
    let ok = jointure::saml::mint::to_base64(&app.mint(&app.ent("b-mapped", "X", "Y", "", BRIN)));
    let (s, body) = call(
        &app,
        "POST",
        "/assertions",
        Some(&t),
        Some(json!({"saml_response": ok})),
    )
    .await;
    assert_eq!((s, body["outcome"].as_str()), (200, Some("resolved")));
    assert!(body["account_id"].is_null(), "{body}");
}

#[tokio::test]
async fn bad_queries_paths_and_methods_answer_in_json() {
    let app = TestApp::spawn().await;
    let t = token(&app, "root", "superadmin", &[]).await;
    let (s, body) = call(&app, "GET", "/resolve?idp=x", Some(&t), None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (s, body) = call(&app, "GET", "/failures?limit=abc", Some(&t), None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let (s, body) = call(&app, "DELETE", "/mappings/abc", Some(&t), None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (s, body) = call(&app, "GET", "/nothing/here", Some(&t), None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (s, body) = call(&app, "DELETE", "/failures", Some(&t), None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // The scheme name is case-insensitive.
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/failures", app.base))
        .header("authorization", format!("bearer {t}"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status().as_u16(), 200);
}
