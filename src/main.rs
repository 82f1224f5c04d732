//! The `jointure` command: parses the command line and calls the library.
//! Exit codes: 0 success, 1 user error (one line naming file, row, field),
//! 2 internal error.

use clap::{Parser, Subcommand, ValueEnum};
use jointure::config::Config;
use jointure::csv_io::export::{ExportKind, Exporter};
use jointure::csv_io::{self, ImportKind, Options};
use jointure::flow::{self, Context, Outcome};
use jointure::{Application, Service};
use sqlx::{SqliteConnection, SqlitePool};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "jointure",
    version,
    about = "SAML front door and identity resolution desk for school services"
)]
struct Cli {
    /// Configuration file (TOML); every key can be overridden by JOINTURE_* variables.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Add the demo IdP, schools, accounts and a demo admin.
        #[arg(long)]
        demo: bool,
    },
    /// Create or update the database schema.
    Migrate,
    /// Import a CSV file (all-or-nothing).
    Import {
        what: ImportWhat,
        file: PathBuf,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The file is the whole truth for --school: its accounts missing from
        /// the file are deactivated (kept, and reactivated if they come back).
        #[arg(long, requires = "school")]
        replace: bool,
        #[arg(long, value_name = "CODE", requires = "replace")]
        school: Option<String>,
    },
    /// Export a CSV file (stdout by default).
    Export {
        what: ExportWhat,
        /// Failures only: open, resolved or dismissed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_name = "CODE")]
        school: Option<String>,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// UTF-8 with BOM and `;`, for French and Dutch spreadsheet programs.
        #[arg(long)]
        excel: bool,
    },
    /// Record SAMLResponse files (XML or base64) as if posted to the ACS.
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Manage admins.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// IdP and federation metadata.
    Metadata {
        #[command(subcommand)]
        action: MetadataAction,
    },
}

#[derive(Subcommand)]
enum MetadataAction {
    /// Print what would be trusted from a metadata file or URL: each IdP,
    /// its keys and endpoints; with --signing-cert, the document's
    /// signature and validity are checked as for `metadata_url`.
    Check {
        /// A file, or an https:// URL (which needs --signing-cert).
        source: String,
        /// The federation's certificate (PEM) that signs the metadata.
        #[arg(long, value_name = "CERT")]
        signing_cert: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportWhat {
    Schools,
    Accounts,
    Mappings,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportWhat {
    Failures,
    Mappings,
    Accounts,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token; it is printed once, alone on stdout, and stored hashed.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["superadmin", "school_admin"])]
        role: String,
        #[arg(long = "school", value_name = "CODE")]
        schools: Vec<String>,
    },
    /// Revoke a token by name; it answers 401 from then on.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Add (or update) an admin; the password is read from stdin.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["superadmin", "school_admin"])]
        role: String,
        #[arg(long = "school", value_name = "CODE")]
        schools: Vec<String>,
    },
}

/// An error and its exit code.
enum Failure {
    User(String),
    Internal(String),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Internal(format!("database: {e}"))
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JOINTURE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: in a log file or a
        // journal they are noise that breaks grep.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jointure: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::User(m)) => {
            eprintln!("jointure: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Internal(m)) => {
            eprintln!("jointure: internal error: {m}");
            ExitCode::from(2)
        }
    }
}

/// The service of the configured IdPs (keys, metadata, database), for `ingest`.
async fn service(config: Config) -> Result<Service, Failure> {
    Service::build(config, Vec::new())
        .await
        .map_err(|e| Failure::User(e.to_string()))
}

/// Loads the configuration and runs the subcommand.
async fn run(cli: Cli) -> Result<(), Failure> {
    let config = Config::load(cli.config.as_deref()).map_err(|e| Failure::User(e.to_string()))?;
    match cli.command {
        Command::Serve { demo } => serve(config, demo).await,
        Command::Migrate => migrate(&config).await,
        Command::Import {
            what,
            file,
            dry_run,
            replace,
            school,
        } => import(&config, what, &file, dry_run, replace, school).await,
        Command::Export {
            what,
            status,
            school,
            out,
            excel,
        } => export(&config, what, status, school, out, excel).await,
        Command::Ingest { files } => ingest(config, files).await,
        Command::Token { action } => token(&config, action).await,
        Command::Metadata {
            action:
                MetadataAction::Check {
                    source,
                    signing_cert,
                },
        } => {
            let report = jointure::feeds::check(&source, signing_cert.as_deref())
                .await
                .map_err(Failure::User)?;
            print!("{report}");
            Ok(())
        }
        Command::Admin {
            action:
                AdminAction::Add {
                    email,
                    role,
                    schools,
                },
        } => admin_add(&config, &email, &role, &schools).await,
    }
}

/// The configured database, opened (and migrated).
async fn database(config: &Config) -> Result<SqlitePool, Failure> {
    Ok(jointure::store::open(&config.database_path).await?)
}

/// `serve`: runs the server until it stops.
async fn serve(config: Config, demo: bool) -> Result<(), Failure> {
    let public_url = config.public_url.clone();
    let app = Application::build(config, demo)
        .await
        .map_err(|e| Failure::User(e.to_string()))?;
    if demo {
        if let Some(pw) = app.demo_admin_password() {
            println!("Demo IdP:    {public_url}/demo/idp");
            println!("Demo admin:  {} / {pw}", jointure::demo::ADMIN_EMAIL);
        }
    }
    println!("jointure listening on port {} — {public_url}", app.port());
    app.run()
        .await
        .map_err(|e| Failure::Internal(e.to_string()))
}

/// `migrate`: creates or updates the database schema.
async fn migrate(config: &Config) -> Result<(), Failure> {
    let path = &config.database_path;
    jointure::store::open(path)
        .await
        .map_err(|e| Failure::User(format!("{}: {e}", path.display())))?;
    println!("{}: migrated", path.display());
    Ok(())
}

/// `import`: imports a CSV file, all or nothing.
async fn import(
    config: &Config,
    what: ImportWhat,
    file: &Path,
    dry_run: bool,
    replace: bool,
    school: Option<String>,
) -> Result<(), Failure> {
    let name = file.display().to_string();
    let bytes =
        std::fs::read(file).map_err(|e| Failure::User(format!("{name}: cannot read: {e}")))?;
    let idps = jointure::known_idps(config).map_err(|e| Failure::User(e.to_string()))?;
    let pool = database(config).await?;
    let kind = match what {
        ImportWhat::Schools => ImportKind::Schools,
        ImportWhat::Accounts => ImportKind::Accounts,
        ImportWhat::Mappings => ImportKind::Mappings,
    };
    let replace_school = match (replace, school) {
        (true, Some(s)) => Some(school_code(&s)?),
        _ => None,
    };
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let opts = Options {
        dry_run,
        replace_school,
        progress: Some(progress.clone()),
        ..Options::new("cli")
    };
    let bar = progress_bar(progress, jointure::csv_io::import::estimate_rows(&bytes));
    let report = csv_io::import(&pool, &idps, kind, &name, &bytes, &opts).await;
    if let Some(bar) = bar {
        bar.abort();
        eprintln!();
    }
    let report = report?;
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("{e}");
        }
        if report.more_errors > 0 {
            eprintln!("{name}: … and {} more bad rows", report.more_errors);
        }
        return Err(Failure::User(format!(
            "{name}: {} bad row(s); nothing was imported",
            report.errors.len() as u64 + report.more_errors
        )));
    }
    println!("{name}: {}", report.summary());
    Ok(())
}

/// `export`: writes a CSV export to `out`, or to stdout.
async fn export(
    config: &Config,
    what: ExportWhat,
    status: Option<String>,
    school: Option<String>,
    out: Option<PathBuf>,
    excel: bool,
) -> Result<(), Failure> {
    let pool = database(config).await?;
    let kind = match what {
        ExportWhat::Failures => ExportKind::Failures,
        ExportWhat::Mappings => ExportKind::Mappings,
        ExportWhat::Accounts => ExportKind::Accounts,
    };
    let status = status
        .map(|s| {
            jointure::resolve::FailureStatus::parse(&s).ok_or_else(|| {
                Failure::User(format!("--status {s:?}: open, resolved or dismissed"))
            })
        })
        .transpose()?;
    let school = school.as_deref().map(school_code).transpose()?;
    let filter = jointure::store::failures::Filter {
        status,
        school,
        ..Default::default()
    };
    let mut exporter = Exporter::new(pool, kind, jointure::store::Scope::All, filter, excel);
    let mut sink = export_sink(out.as_deref())?;
    while let Some(chunk) = exporter.next_chunk().await? {
        sink.write_all(&chunk)
            .map_err(|e| Failure::User(format!("writing the export: {e}")))?;
    }
    sink.flush()
        .map_err(|e| Failure::User(format!("writing the export: {e}")))?;
    Ok(())
}

/// Where an export goes: the file `out` (created), or stdout.
fn export_sink(out: Option<&Path>) -> Result<Box<dyn Write>, Failure> {
    Ok(match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| Failure::User(format!("{}: cannot create: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// `ingest`: records SAMLResponse files as if posted to the ACS, a line each on stdout.
async fn ingest(config: Config, files: Vec<PathBuf>) -> Result<(), Failure> {
    let svc = service(config).await?;
    let mut user_error = None;
    for file in files {
        let name = file.display().to_string();
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                user_error = Some(format!("{name}: cannot read: {e}"));
                eprintln!("jointure: {name}: cannot read: {e}");
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_start_matches('\u{feff}').trim();
        let ctx = Context {
            user_agent: Some("jointure ingest".into()),
            ..Default::default()
        };
        let outcome = if text.starts_with('<') {
            flow::process_xml(&svc, text.to_string(), &ctx).await?
        } else {
            flow::process_encoded(&svc, text, &ctx).await?
        };
        match outcome {
            Outcome::Resolved { account_id, .. } => {
                println!("{name}\tresolved\t{account_id}")
            }
            Outcome::Failed {
                kind, reference, ..
            } => println!("{name}\t{kind}\t{reference}"),
        }
    }
    match user_error {
        Some(e) => Err(Failure::User(e)),
        None => Ok(()),
    }
}

/// `token add` and `token revoke`.
async fn token(config: &Config, action: TokenAction) -> Result<(), Failure> {
    let pool = database(config).await?;
    let mut conn = pool.acquire().await?;
    match action {
        TokenAction::Add {
            name,
            role,
            schools,
        } => token_add(&mut conn, &name, &role, &schools).await,
        TokenAction::Revoke { name } => token_revoke(&mut conn, &name).await,
    }
}

/// `token add`: creates a token and prints it, alone, on stdout.
async fn token_add(
    conn: &mut SqliteConnection,
    name: &str,
    role: &str,
    schools: &[String],
) -> Result<(), Failure> {
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(Failure::User("--name: must not be empty".into()));
    }
    let codes = school_codes(schools)?;
    let role = admin_role(role, codes.len())?;
    let token = jointure::store::tokens::create(conn, &name, role, &codes)
        .await?
        .map_err(Failure::User)?;
    println!("{token}");
    Ok(())
}

/// `token revoke`: revokes the active token of that name.
async fn token_revoke(conn: &mut SqliteConnection, name: &str) -> Result<(), Failure> {
    if jointure::store::tokens::revoke(conn, name.trim()).await? {
        eprintln!("token {name} revoked");
        Ok(())
    } else {
        Err(Failure::User(format!(
            "--name {name:?}: no active token of that name"
        )))
    }
}

/// `admin add`: adds or updates an admin, with the password read from stdin.
async fn admin_add(
    config: &Config,
    email: &str,
    role: &str,
    schools: &[String],
) -> Result<(), Failure> {
    let email = email.trim().to_string();
    if !email.contains('@') {
        return Err(Failure::User(format!(
            "--email {email:?}: not an e-mail address"
        )));
    }
    let codes = school_codes(schools)?;
    let role = admin_role(role, codes.len())?;
    let password = read_password()?;
    let hash = jointure::store::admins::hash_password(&password).map_err(Failure::Internal)?;
    let pool = database(config).await?;
    let mut conn = pool.acquire().await?;
    jointure::store::admins::upsert(&mut conn, &email, &hash, role, &codes).await?;
    println!("admin {email} ({}) saved", role.as_str());
    Ok(())
}

/// The new admin password, read from stdin (one trailing newline dropped).
fn read_password() -> Result<String, Failure> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| Failure::User(format!("stdin: {e}")))?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.chars().count() < 12 {
        return Err(Failure::User(
            "password (stdin): at least 12 characters".into(),
        ));
    }
    Ok(password.to_string())
}

/// A school code given on the command line, canonical.
fn school_code(s: &str) -> Result<String, Failure> {
    jointure::resolve::parse_school_code(s)
        .map(|c| c.as_str().to_string())
        .ok_or_else(|| Failure::User(format!("--school {s:?}: neither a BRIN nor a valid UAI")))
}

/// A progress bar on stderr for imports of more than a few thousand rows,
/// when stderr is a terminal.
fn progress_bar(
    done: std::sync::Arc<std::sync::atomic::AtomicU64>,
    total: u64,
) -> Option<tokio::task::JoinHandle<()>> {
    if total < 5000 || !std::io::stderr().is_terminal() {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            let n = done.load(std::sync::atomic::Ordering::Relaxed).min(total);
            let filled = (n * 30 / total.max(1)) as usize;
            eprint!(
                "\r[{}{}] {n}/{total} rows",
                "#".repeat(filled),
                " ".repeat(30 - filled)
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }))
}

/// The `--school` codes given on the command line, canonical.
fn school_codes(schools: &[String]) -> Result<Vec<String>, Failure> {
    schools.iter().map(|s| school_code(s)).collect()
}

/// `--role` (clap allows only the two names) checked against the schools.
fn admin_role(role: &str, schools: usize) -> Result<jointure::resolve::AdminRole, Failure> {
    let role = jointure::resolve::AdminRole::parse(role)
        .ok_or_else(|| Failure::User(format!("--role {role:?}: superadmin or school_admin")))?;
    role.check_schools(schools)
        .map_err(|e| Failure::User(e.to_string()))?;
    Ok(role)
}
