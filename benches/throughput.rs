//! Throughput benchmarks, run with `cargo bench --bench throughput`
//! (release build). Numbers go to BENCHMARKS.md; nothing here asserts a
//! time. Set `JOINTURE_BENCH_ROWS` to change the import size (default
//! 1,000,000), `JOINTURE_BENCH_SWAP=0` to apply it the one-transaction way
//! (before/after figures for the large-import swap).

use jointure::config::{Config, IdpConfig};
use jointure::csv_io::export::{ExportKind, Exporter};
use jointure::csv_io::import::{import, import_from, Source};
use jointure::csv_io::{ImportKind, Options};
use jointure::flow::{self, Context, Outcome};
use jointure::saml::mint::{MintingIdp, ResponseSpec};
use jointure::store::failures::Filter;
use jointure::store::Scope;
use std::time::Instant;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn report(name: &str, n: usize, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<44} {n:>9} ops  {:>10.1} µs/op  {:>10.0} ops/s",
        secs * 1e6 / n as f64,
        n as f64 / secs
    );
}

/// The floor under verification: one strict parse of the document, one
/// SHA-256 of the signed bytes (the canonical Assertion and SignedInfo),
/// one RSA-2048 signature check. Printed beside the measured verification.
fn floor(docs: &[String], verify_us: f64) {
    use openssl::hash::MessageDigest;
    let n = docs.len();
    let start = Instant::now();
    for d in docs {
        std::hint::black_box(jointure::saml::xml::parse_strict(d).expect("parse"));
    }
    let parse_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let signed: Vec<Vec<u8>> = docs
        .iter()
        .map(|d| {
            let doc = jointure::saml::xml::parse_strict(d).expect("parse");
            let a = doc
                .descendants()
                .find(|n| n.tag_name().name() == "Assertion")
                .expect("assertion");
            let m = jointure::saml::c14n::Method::Exclusive {
                inclusive_prefixes: vec![],
            };
            jointure::saml::c14n::canonicalize(a, None, &m)
        })
        .collect();
    let start = Instant::now();
    for b in &signed {
        std::hint::black_box(openssl::hash::hash(MessageDigest::sha256(), b).expect("sha"));
    }
    let sha_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa"))
        .expect("pkey");
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &key).expect("signer");
    signer.update(b"signed info").expect("update");
    let sig = signer.sign_to_vec().expect("sign");
    let public = openssl::pkey::PKey::public_key_from_der(&key.public_key_to_der().expect("der"))
        .expect("public");
    let start = Instant::now();
    for _ in 0..n {
        let mut v = openssl::sign::Verifier::new(MessageDigest::sha256(), &public).expect("v");
        v.update(b"signed info").expect("update");
        assert!(v.verify(&sig).expect("verify"));
    }
    let rsa_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let floor_us = parse_us + sha_us + rsa_us;
    println!(
        "  floor: parse {parse_us:.1} µs + SHA-256 of {} bytes {sha_us:.1} µs + RSA-2048 verify {rsa_us:.1} µs = {floor_us:.1} µs; verify is {:.2}x the floor",
        signed.first().map(Vec::len).unwrap_or(0),
        verify_us / floor_us
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("dir");
    let idp = MintingIdp::generate("https://idp.bench/saml").expect("idp");
    std::fs::write(
        dir.path().join("idp.xml"),
        idp.metadata_xml("https://idp.bench/sso"),
    )
    .expect("metadata");
    let mut c = Config::defaults();
    c.public_url = "https://sp.bench".into();
    c.database_path = dir.path().join("bench.db");
    c.sp_key = dir.path().join("sp.key");
    c.sp_cert = dir.path().join("sp.crt");
    c.idps = vec![IdpConfig::with_metadata(dir.path().join("idp.xml"))];
    let svc = jointure::Service::build(c, Vec::new())
        .await
        .expect("service");
    let sp = svc.config.sp_entity_id();
    let acs = svc.config.acs_url();
    println!(
        "jointure benchmarks ({} cores)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    // 1. Verification alone: strict parse, structure checks, c14n, digest,
    //    RSA, claims; and its floor.
    let n = 2000;
    let docs: Vec<String> = (0..n)
        .map(|i| {
            idp.response(
                &ResponseSpec::new(&idp.entity_id, &sp, &acs, &format!("bench-{i}"))
                    .attr("ENTStructureUAI", "0751234J"),
            )
            .expect("mint")
        })
        .collect();
    let start = Instant::now();
    for d in &docs {
        svc.verifier.verify(d, chrono::Utc::now()).expect("valid");
    }
    let verify_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    report("verify (signed assertion, 1 thread)", n, start);
    floor(&docs, verify_us);

    // 2. The whole login through the flow: verify + replay record +
    //    school + mapping lookup, on SQLite (one write transaction each).
    {
        let mut conn = svc.pool.acquire().await.expect("conn");
        jointure::store::schools::upsert(
            &mut conn,
            &jointure::store::schools::School {
                code: "0751234J".into(),
                name: "B".into(),
            },
        )
        .await
        .expect("school");
    }
    import(
        &svc.pool,
        &svc.known_idps(),
        ImportKind::Accounts,
        "a.csv",
        b"account_id,school_code,last_name,first_name,role\nB-1,0751234J,A,B,student\n",
        &Options::new("bench"),
    )
    .await
    .expect("account");
    let m = 1000;
    let mut conn = svc.pool.acquire().await.expect("conn");
    for i in 0..m {
        jointure::store::mappings::insert(
            &mut conn,
            &idp.entity_id,
            &format!("flow-{i}"),
            "B-1",
            jointure::store::mappings::Source::Admin,
            None,
        )
        .await
        .expect("map");
    }
    drop(conn);
    let docs: Vec<String> = (0..m)
        .map(|i| {
            idp.response(
                &ResponseSpec::new(&idp.entity_id, &sp, &acs, &format!("flow-{i}"))
                    .attr("ENTStructureUAI", "0751234J"),
            )
            .expect("mint")
        })
        .collect();
    let start = Instant::now();
    for d in docs {
        let o = flow::process_xml(&svc, d, &Context::default())
            .await
            .expect("flow");
        assert!(matches!(o, Outcome::Resolved { .. }));
    }
    report("login flow (verify + SQLite, sequential)", m, start);

    // 3. A large accounts import in one transaction, then its export.
    let rows: usize = std::env::var("JOINTURE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut file = String::with_capacity(rows * 80);
    file.push_str("account_id,school_code,last_name,first_name,birth_date,role,class_name,email\n");
    for i in 0..rows {
        file.push_str(&format!(
            "L-{i:08},0751234J,Nom{i},Prénom{},2010-{:02}-{:02},student,6{},e{i}@school.test\n",
            i % 977,
            i % 12 + 1,
            i % 28 + 1,
            i % 7
        ));
    }
    // On disk, imported from there as the import page does (read in
    // pieces); the file's text is dropped before the import starts.
    let big = dir.path().join("big.csv");
    std::fs::write(&big, &file).expect("file");
    let file_len = file.len();
    drop(file);
    let rss_before = rss_kib("VmRSS:");
    // Logins go on during the import: one every 20 ms, each timed.
    let svc = std::sync::Arc::new(svc);
    let logins: Vec<String> = (0..5000)
        .map(|i| {
            let spec = ResponseSpec::new(&idp.entity_id, &sp, &acs, &format!("flow-{}", i % m))
                .attr("ENTStructureUAI", "0751234J");
            idp.response(&spec).expect("mint")
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (svc, stop) = (svc.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut times, mut refused) = (Vec::new(), 0usize);
            for d in logins {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let t = Instant::now();
                // A login that waits past `db_wait_ms` for the writer is
                // refused (the server answers 503): counted, and timed.
                if flow::process_xml(&svc, d, &Context::default())
                    .await
                    .is_err()
                {
                    refused += 1;
                }
                times.push(t.elapsed());
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            times.sort();
            (times, refused)
        })
    };
    let start = Instant::now();
    let r = import_from(
        &svc.pool,
        &svc.known_idps(),
        ImportKind::Accounts,
        "big.csv",
        Source::File(&big),
        &Options {
            writer: Some(svc.writer.clone()),
            // JOINTURE_BENCH_SWAP=0: the one-transaction upsert, for
            // before/after figures.
            swap_from_rows: match std::env::var("JOINTURE_BENCH_SWAP").as_deref() {
                Ok("0") => u64::MAX,
                _ => jointure::csv_io::import::SWAP_FROM_ROWS,
            },
            ..Options::new("bench")
        },
    )
    .await
    .expect("import");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (times, refused) = prober.await.expect("prober");
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len().max(1)) - 1;
        times.get(i).map(|d| d.as_millis()).unwrap_or(0)
    };
    assert!(r.errors.is_empty() && r.created as usize == rows);
    report(
        &format!("accounts import, {} MB file, per row", file_len / 1_000_000),
        rows,
        start,
    );
    println!(
        "    {} logins during the import ({refused} refused after waiting db_wait_ms): p50 {} ms, p99 {} ms, slowest {} ms",
        times.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
    println!(
        "    peak RSS {} MiB (file on disk: {} MiB, RSS before: {} MiB)",
        rss_kib("VmHWM:") / 1024,
        file_len / (1024 * 1024),
        rss_before / 1024
    );
    let start = Instant::now();
    let again = import_from(
        &svc.pool,
        &svc.known_idps(),
        ImportKind::Accounts,
        "big.csv",
        Source::File(&big),
        &Options::new("bench"),
    )
    .await
    .expect("import");
    assert_eq!(again.unchanged as usize, rows);
    report("same file again (all unchanged), per row", rows, start);

    let mut e = Exporter::new(
        svc.pool.clone(),
        ExportKind::Accounts,
        Scope::All,
        Filter::default(),
        false,
    );
    let start = Instant::now();
    let (mut bytes, mut max_rss, base_rss) = (0usize, 0u64, rss_kib("VmRSS:"));
    while let Some(chunk) = e.next_chunk().await.expect("export") {
        bytes += chunk.len();
        max_rss = max_rss.max(rss_kib("VmRSS:"));
    }
    report(
        &format!(
            "accounts export, {} MB streamed, per row",
            bytes / 1_000_000
        ),
        rows + 1,
        start,
    );
    println!(
        "    RSS during export: {} → at most {} MiB",
        base_rss / 1024,
        max_rss / 1024
    );
}
