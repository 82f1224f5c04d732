//! The login benchmark over HTTP, driven by `scripts/bench-http`:
//! `prepare` writes a bench folder (an IdP key pair and its metadata, the
//! config, the schools, accounts and mappings CSV files), `mint` signs
//! responses with unique IDs, `load` posts them to a running `jointure serve`
//! (closed loop, then open loop at fixed rates), reads the server's CPU time
//! and peak RSS from /proc, and checks every outcome in the database.
//! Nothing here asserts a speed; `load` fails only when an outcome is wrong.

mod load;
mod measure;

use jointure::saml::mint::{to_base64, MintingIdp, ResponseSpec};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The bench IdP's entity ID.
const IDP: &str = "https://idp.bench.test/saml";
/// The one school of the bench accounts (a UAI).
const SCHOOL: &str = "0751234J";
/// The school-code attribute of the minted assertions.
const SCHOOL_ATTRIBUTE: &str = "ENTStructureUAI";

/// `--name value` pairs; `cargo bench` adds a lone `--bench`, ignored.
pub struct Args(HashMap<String, String>);

impl Args {
    fn parse(raw: impl Iterator<Item = String>) -> Self {
        let mut map = HashMap::new();
        let mut raw = raw.peekable();
        while let Some(a) = raw.next() {
            if let Some(name) = a.strip_prefix("--") {
                match raw.peek() {
                    Some(v) if !v.starts_with("--") => {
                        map.insert(name.to_string(), raw.next().unwrap_or_default());
                    }
                    _ => {
                        map.insert(name.to_string(), String::new());
                    }
                }
            }
        }
        Args(map)
    }

    /// The value of `--name`, or `default`.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.0
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// A required value.
    pub fn need(&self, name: &str) -> Result<String, String> {
        self.0.get(name).cloned().ok_or(format!("--{name} missing"))
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn public_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The bench folder: key pair, metadata, config, CSV files.
fn prepare(args: &Args) -> Result<(), String> {
    let dir = PathBuf::from(args.need("dir")?);
    let accounts: usize = args.get("accounts", 50_000);
    let port: u16 = args.get("port", 18_080);
    let idp = MintingIdp::generate(IDP)?;
    let (key, cert) = idp.pem_pair()?;
    std::fs::write(dir.join("idp.key"), key).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("idp.crt"), cert).map_err(|e| e.to_string())?;
    write(
        &dir.join("idp.xml"),
        &idp.metadata_xml("https://idp.bench.test/sso"),
    )?;
    let abs = std::fs::canonicalize(&dir).map_err(|e| e.to_string())?;
    write(
        &dir.join("config.toml"),
        &format!(
            "public_url = \"{url}\"\nlisten = \"127.0.0.1:{port}\"\ndatabase_url = \"sqlite://{db}\"\nsp_key = \"sp.key\"\nsp_cert = \"sp.crt\"\n\n[[idp]]\nmetadata = \"idp.xml\"\n",
            url = public_url(port),
            db = abs.join("bench.db").display(),
        ),
    )?;
    write(
        &dir.join("schools.csv"),
        &format!("school_code,name,idp_entity_ids\n{SCHOOL},Collège du banc d'essai,{IDP}\n"),
    )?;
    let mut csv = String::from("account_id,school_code,last_name,first_name,birth_date,role\n");
    let mut maps = String::from("idp_entity_id,subject,account_id\n");
    for i in 0..accounts {
        let _ = writeln!(
            csv,
            "B{i:07},{SCHOOL},Nom{i},Prénom{},2010-{:02}-{:02},student",
            i % 977,
            i % 12 + 1,
            i % 28 + 1
        );
        let _ = writeln!(maps, "{IDP},subject-{i},B{i:07}");
    }
    write(&dir.join("accounts.csv"), &csv)?;
    write(&dir.join("mappings.csv"), &maps)?;
    println!("prepared {} ({accounts} accounts)", dir.display());
    Ok(())
}

/// Signs `--count` responses (signed assertion, RSA-2048, SHA-256, unique
/// response and assertion IDs, mapped subjects spread over the accounts) on
/// every core, one base64 response a line in `responses.txt`.
fn mint(args: &Args) -> Result<(), String> {
    let dir = PathBuf::from(args.need("dir")?);
    let count: usize = args.get("count", 10_000);
    let accounts: usize = args.get("accounts", 50_000).max(1);
    let url = public_url(args.get("port", 18_080));
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{f}: {e}"));
    let idp = MintingIdp::from_pem(IDP, &read("idp.key")?, &read("idp.crt")?)?;
    let (sp, acs) = (format!("{url}/saml/metadata"), format!("{url}/saml/acs"));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let start = Instant::now();
    let parts: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (idp, sp, acs) = (&idp, &sp, &acs);
                s.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            // A multiplicative spread: consecutive posts are
                            // different accounts, as real logins are.
                            let subject = format!("subject-{}", (i * 7_919) % accounts);
                            let spec = ResponseSpec::new(IDP, sp, acs, &subject)
                                .attr(SCHOOL_ATTRIBUTE, SCHOOL);
                            idp.response(&spec).map(|x| to_base64(&x))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("minting thread".into())))
            .collect()
    });
    let mut out = String::new();
    for p in parts {
        for line in p? {
            out.push_str(&line);
            out.push('\n');
        }
    }
    write(&dir.join("responses.txt"), &out)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "minted {count} responses in {secs:.1} s ({:.0}/s, {threads} threads)",
        count as f64 / secs
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut raw = std::env::args().skip(1).filter(|a| a != "--bench");
    let command = raw.next().unwrap_or_default();
    let args = Args::parse(raw);
    let result = match command.as_str() {
        "prepare" => prepare(&args),
        "mint" => mint(&args),
        "load" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(load::run(&args))),
        _ => Err("usage: http prepare|mint|load --dir DIR [...] (see scripts/bench-http)".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-http: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
