//! Property-based fuzzing of every parser a stranger or a file reaches: the
//! SAML response (decoding and verification, and the ACS over HTTP), CSV
//! imports, the failure form and the API bodies. Inputs are built from real
//! ones (a minted signed response, a valid CSV file, the form's fields) and
//! mutated; the properties are: no panic, no 5xx, a refusal with a kind or
//! a field error. Each target runs 256 cases from a fixed seed (a few
//! seconds); `PROPTEST_CASES=100000 cargo nextest run -E 'test(/fuzz/)'`
//! runs a long campaign (README, "Fuzzing and floods").

use crate::common::*;
use axum::body::Body;
use axum::http::Request;
use jointure::csv_io::{import, ImportKind, Options};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRng, TestRunner};
use tower::ServiceExt;

mod mutate;
use mutate::{apply, mutation};

/// A runner with a fixed seed (the same cases in CI every time) and no
/// failure files written into the tree; `PROPTEST_CASES` sets the count,
/// `PROPTEST_RNG_SEED` another seed.
fn runner() -> TestRunner {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    match config.rng_seed {
        RngSeed::Fixed(_) => TestRunner::new(config),
        RngSeed::Random => {
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
        }
    }
}

/// The app and a runtime to drive it from the (synchronous) runner.
fn app() -> (tokio::runtime::Runtime, TestApp) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = rt.block_on(TestApp::spawn());
    (rt, app)
}

/// The router without a socket, with the form's rate limits out of the way
/// (they would answer 429 before the parser is reached).
fn router(app: &TestApp) -> axum::Router {
    use jointure::auth::{Limits, RateLimiter};
    let mut st = jointure::web::AppState::new(app.svc.clone(), None);
    let many = || RateLimiter::new(usize::MAX, std::time::Duration::from_secs(1));
    st.limits = std::sync::Arc::new(Limits {
        report_by_ip: many(),
        report_by_failure: many(),
        ..Limits::default()
    });
    jointure::web::router(st)
}

/// Status and body of one request through the router.
async fn send(router: &axum::Router, req: Request<Body>) -> (u16, Vec<u8>) {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body.to_vec())
}

fn form(path: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request")
}

/// Documents built from real minted responses by a few mutations.
fn mutated_response(app: &TestApp) -> impl Strategy<Value = Vec<u8>> {
    let bases = [
        app.mint(&app.ent("sub-fuzz", "Dupont-Martin", "Élodie", "12/04/2011", UAI)),
        app.mint(&app.nobody("sub-fuzz-2")),
    ]
    .map(String::into_bytes);
    (0..bases.len(), prop::collection::vec(mutation(), 1..4)).prop_map(move |(i, ms)| {
        let mut doc = bases[i].clone();
        for m in &ms {
            apply(&mut doc, m);
        }
        doc
    })
}

#[test]
fn fuzz_saml_decoding_and_verification_refuse_with_a_kind_and_never_panic() {
    let (rt, app) = app();
    let strategy = mutated_response(&app);
    let verifier = &app.svc.verifier;
    let _enter = rt.enter();
    runner()
        .run(&strategy, |doc| {
            let encoded = jointure::saml::mint::to_base64(&String::from_utf8_lossy(&doc));
            if let Ok(xml) = jointure::saml::decode_saml_response(&encoded) {
                // A mutated document may still verify (a flipped byte in a
                // comment); anything else is a rejection with its kind.
                if let Err(r) = verifier.verify(&xml, chrono::Utc::now()) {
                    prop_assert!(!r.kind.as_str().is_empty());
                }
            }
            // Raw bytes that are not base64 of XML are refused as well.
            let raw = String::from_utf8_lossy(&doc[..doc.len().min(4096)]).into_owned();
            let _ = jointure::saml::decode_saml_response(&raw);
            Ok(())
        })
        .expect("no panic, a kind for every refusal");
}

/// An ACS body: the mutated response as the binding posts it, with odd
/// RelayStates and extra or repeated fields, or bytes that are no form.
fn acs_body(app: &TestApp) -> impl Strategy<Value = String> {
    let relay = prop_oneof![
        Just(None),
        "\\PC{0,100}".prop_map(Some),
        Just(Some("//evil.test/x".to_string())),
        Just(Some("x".repeat(5000))),
    ];
    prop_oneof![
        4 => (mutated_response(app), relay, 1usize..3).prop_map(|(doc, relay, copies)| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for _ in 0..copies {
                s.append_pair("SAMLResponse", &jointure::saml::mint::to_base64(&String::from_utf8_lossy(&doc)));
            }
            if let Some(r) = relay {
                s.append_pair("RelayState", &r);
            }
            s.finish()
        }),
        1 => "\\PC{0,300}",
        1 => "[A-Za-z0-9+/=%&]{0,2000}".prop_map(|b64| format!("SAMLResponse={b64}")),
    ]
}

#[test]
fn fuzz_acs_posts_never_answer_5xx() {
    let (rt, app) = app();
    let router = router(&app);
    let strategy = acs_body(&app);
    runner()
        .run(&strategy, |body| {
            let (status, _) = rt.block_on(send(&router, form("/saml/acs", body)));
            // A login (303 to /me), a failure page (303), or a 4xx.
            prop_assert!(status < 500, "ACS answered {status}");
            Ok(())
        })
        .expect("never 5xx");
}

/// Pieces CSV files are made of, good and bad.
fn csv_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop_oneof![
            Just("A-1"), Just("0751234J"), Just("12AB"), Just("student"), Just("élève"),
            Just("2011-04-12"), Just("31/02/2011"), Just("Dupont"), Just("O\"Brien"),
            Just("=SUM(A1)"), Just("'=x"), Just("oui"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
        8 => prop_oneof![Just(","), Just(";"), Just("\t"), Just("\n"), Just("\r\n"), Just("\r"), Just("\""), Just("\"\"")]
            .prop_map(|s| s.as_bytes().to_vec()),
        3 => "\\PC{0,12}".prop_map(String::into_bytes),
        2 => prop_oneof![
            Just(b"\xEF\xBB\xBF".to_vec()), Just(b"\xFF\xFE".to_vec()), Just(b"\xFE\xFF".to_vec()),
            Just(b"\0".to_vec()), Just(b"\xE9".to_vec()), Just(b"\xC3".to_vec()), Just(b"\xED\xA0\x80".to_vec()),
        ],
        1 => (1usize..3000).prop_map(|n| "x".repeat(n).into_bytes()),
    ]
}

/// A CSV file: a real header (or not) and random pieces, sometimes as
/// UTF-16 with its BOM.
fn csv_file() -> impl Strategy<Value = (ImportKind, Vec<u8>)> {
    let kind = prop_oneof![
        Just(ImportKind::Accounts),
        Just(ImportKind::Schools),
        Just(ImportKind::Mappings)
    ];
    let header = prop_oneof![
        Just(
            "account_id,school_code,last_name,first_name,birth_date,role,class_name,email,active\n"
        ),
        Just("account_id;school_code;last_name;first_name;role\r\n"),
        Just("school_code\tname\tidp_entity_ids\tsupport_email\tsupport_phone\tsupport_url\r"),
        Just("idp_entity_id,subject,account_id\n"),
        Just(""),
    ];
    (
        kind,
        header,
        prop::collection::vec(csv_piece(), 0..60),
        0u8..4,
    )
        .prop_map(|(kind, header, pieces, utf16)| {
            let mut bytes = header.as_bytes().to_vec();
            bytes.extend(pieces.concat());
            if utf16 == 0 {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                bytes = [0xFF, 0xFE]
                    .into_iter()
                    .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
                    .collect();
            }
            (kind, bytes)
        })
}

#[test]
fn fuzz_csv_imports_refuse_with_a_line_and_short_messages_and_never_panic() {
    let (rt, app) = app();
    let idps = app.svc.known_idps();
    let opts = Options {
        dry_run: true,
        ..Options::new("fuzz")
    };
    runner()
        .run(&csv_file(), |(kind, bytes)| {
            let _ = jointure::csv_io::decode_text(&bytes);
            let r = rt
                .block_on(import(&app.svc.pool, &idps, kind, "f.csv", &bytes, &opts))
                .map_err(|e| TestCaseError::fail(format!("database error: {e}")))?;
            let lines = bytes.iter().filter(|b| matches!(b, b'\n' | b'\r')).count() as u64 + 2;
            for e in &r.errors {
                prop_assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                let shown = e.to_string();
                prop_assert!(shown.chars().count() < 400, "long error: {shown}");
            }
            Ok(())
        })
        .expect("no panic, bounded errors");
}

/// Odd text for a form field.
fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,30}",
        1 => any::<String>(),
        1 => prop_oneof![
            Just("\u{202e}nimda".to_string()),
            Just("e\u{301}\u{301}\u{301}".to_string()),
            Just("\u{200b}\u{feff}".to_string()),
            Just("\0".to_string()),
            Just("31/02/2011".to_string()),
            Just("élève".to_string()),
            Just("x@y".to_string()),
            Just("+33 (0)1 23 45 67 89".to_string()),
        ],
        1 => (1usize..70_000).prop_map(|n| "ß".repeat(n)),
    ]
}

fn form_pairs() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let name = prop_oneof![
        Just("last_name"),
        Just("first_name"),
        Just("birth_date"),
        Just("role"),
        Just("class_name"),
        Just("email"),
        Just("phone"),
        Just("message"),
        Just("child_last_name[]"),
        Just("child_first_name[]"),
        Just("child_birth_date[]"),
        Just("child_class_name[]"),
        Just("add_child"),
        Just("remove_child"),
        Just("csrf_token"),
        Just("unknown"),
    ];
    prop::collection::vec((name, odd_text()), 0..14)
}

#[test]
fn fuzz_failure_form_posts_answer_a_page_or_field_errors_never_5xx() {
    let (rt, app) = app();
    let router = router(&app);
    // A failure, and the cookie that lets this browser see its page.
    let (path, cookie, page) = rt.block_on(async {
        let xml = app.mint(&app.nobody("sub-form-fuzz"));
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &jointure::saml::mint::to_base64(&xml))
            .finish();
        let res = router
            .clone()
            .oneshot(form("/saml/acs", body))
            .await
            .expect("infallible");
        let header = |n: &str| {
            res.headers()
                .get_all(n)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        let (location, cookie) = (header("location").concat(), header("set-cookie").join("; "));
        let get = Request::get(&location)
            .header("cookie", &cookie)
            .body(Body::empty())
            .expect("get");
        // The failure page answers with its kind's status (403 here).
        let (_, page) = send(&router, get).await;
        (format!("{location}/report"), cookie, page)
    });
    let csrf = csrf_from(&String::from_utf8_lossy(&page));
    // How many posts the parser and the checks saw (past the CSRF check).
    let checked = std::sync::atomic::AtomicU64::new(0);
    runner()
        .run(&(form_pairs(), any::<bool>()), |(pairs, with_token)| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            if with_token {
                s.append_pair("csrf_token", &csrf);
            }
            for (k, v) in &pairs {
                s.append_pair(k, v);
            }
            let mut req = form(&path, s.finish());
            req.headers_mut()
                .insert("cookie", cookie.parse().expect("cookie"));
            let (status, _) = rt.block_on(send(&router, req));
            // Saved (303), re-shown (200), field errors (422), a refused
            // token (403), a closed form (409) or a body too large (400/413).
            prop_assert!(status < 500, "form answered {status}");
            if matches!(status, 200 | 303 | 422) {
                checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .expect("never 5xx");
    assert!(
        checked.into_inner() > 10,
        "the cases reach the form's checks"
    );
}

/// An API call: a route, and a body that is JSON of the right shape with
/// odd values, JSON of another shape, or no JSON at all.
fn api_call() -> impl Strategy<Value = (&'static str, String, Vec<u8>)> {
    let route = prop_oneof![
        Just(("POST", "/api/v1/assertions")),
        Just(("POST", "/api/v1/mappings")),
        Just(("POST", "/api/v1/failures/REF/resolve")),
        Just(("POST", "/api/v1/failures/REF/dismiss")),
        Just(("GET", "/api/v1/resolve?idp=Q&subject=Q")),
        Just((
            "GET",
            "/api/v1/failures?status=Q&kind=Q&school=Q&cursor=Q&limit=9999999999999"
        )),
        Just(("GET", "/api/v1/mappings?q=Q&cursor=Q")),
        Just(("DELETE", "/api/v1/mappings/Q")),
    ];
    let value = prop_oneof![
        odd_text().prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        Just(serde_json::json!([[[[[[[[[[]]]]]]]]]])),
    ];
    let keys = prop_oneof![
        Just("saml_response"),
        Just("relay_state"),
        Just("idp_entity_id"),
        Just("subject"),
        Just("account_id"),
        Just("reason"),
        Just("other"),
    ];
    let body = prop_oneof![
        3 => prop::collection::btree_map(keys, value, 0..6)
            .prop_map(|m| serde_json::to_vec(&m).unwrap_or_default()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => (1usize..2000).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes()),
    ];
    (route, "[A-Za-z0-9%._~-]{0,40}", body).prop_map(|((method, path), q, body)| {
        (method, path.replace("REF", &q).replace('Q', &q), body)
    })
}

#[test]
fn fuzz_api_bodies_answer_the_error_envelope_never_5xx() {
    let (rt, app) = app();
    let router = router(&app);
    let token = rt.block_on(async {
        let mut conn = app.svc.pool.acquire().await.expect("conn");
        jointure::store::tokens::create(
            &mut conn,
            "fuzz",
            jointure::resolve::AdminRole::parse("superadmin").expect("role"),
            &[],
        )
        .await
        .expect("db")
        .expect("created")
    });
    runner()
        .run(&api_call(), |(method, path, body)| {
            let req = Request::builder()
                .method(method)
                .uri(&path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request");
            let (status, body) = rt.block_on(send(&router, req));
            prop_assert!(status < 500, "{method} {path} answered {status}");
            if status >= 400 {
                let v: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
                prop_assert!(v["error"]["code"].is_string(), "no error envelope: {v}");
            }
            Ok(())
        })
        .expect("never 5xx, always the envelope");
}
