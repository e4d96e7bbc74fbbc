//! The `tallyman` command: `serve` runs the license server; the other subcommands are the
//! provider's administration verbs.

mod bootstrap;
mod config;
mod demo;
mod inventory;
mod reports_cli;
mod simulate;

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{Duration, Utc};
use clap::{Parser, Subcommand};
use tallyman_http::server::ServerLimits;
use tallyman_http::{AppState, HttpConfig, SystemClock};
use tallyman_store::{OrganizationType, Role, Store, User};
use uuid::Uuid;

use config::{ServeArgs, StoreArgs, DEFAULT_LISTEN};

/// mimalloc returns freed memory to the system and keeps few per-thread arenas, so the
/// server's resident memory follows what it holds rather than its past peaks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tallyman",
    version,
    about = "Self-hosted license server for backup service providers, speaking the VSPC v3 Licensing API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the license server (HTTP API on --listen, default 127.0.0.1:1280).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Write a consistent copy of the SQLite database (safe while `serve` runs).
    Backup {
        /// The file to create; it must not exist yet.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Manage users who log in to the API.
    #[command(subcommand)]
    User(UserCommand),
    /// Create an issuer signing key (FILE) and its public key (FILE.pub).
    Keygen(tallyman_license::cli::KeygenArgs),
    /// Run the license portal: the issuer service `update` asks for newer license files.
    Portal(tallyman_portal::cli::PortalArgs),
    /// Manage organizations (resellers and companies).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Register managed servers by hand (agents register themselves).
    #[command(subcommand)]
    Server(ServerCommand),
    /// Monthly license usage reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The points weights (points per workload) reports are computed with.
    #[command(subcommand)]
    Rates(RatesCommand),
    /// Simulate a fleet against a running server: companies, agents, servers and months of usage.
    Simulate {
        /// Base URL of the running server.
        #[arg(long, default_value = "http://127.0.0.1:1280")]
        url: String,
        #[arg(long, default_value_t = 10)]
        companies: u32,
        #[arg(long, default_value_t = 50)]
        servers: u32,
        /// Months of usage history, the current month included.
        #[arg(long, default_value_t = 12)]
        months: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Generate the reports of the finished simulated months afterwards.
        #[arg(long)]
        generate_reports: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue or inspect signed license files.
    License {
        #[command(subcommand)]
        command: tallyman_license::cli::LicenseCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from standard input.
    Add {
        /// Login name (unique, compared ignoring case).
        name: String,
        /// One of the VSPC roles, e.g. PortalAdministrator, ServiceProviderAdministrator, CompanyOwner.
        #[arg(long)]
        role: String,
        /// Organization UID; required for reseller and company roles, defaults to the provider.
        #[arg(long)]
        organization: Option<Uuid>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create an API key for a user (sent as `Authorization: Bearer KEY`); printed once.
    ApiKey {
        /// The user's login name.
        name: String,
        /// Only GET requests are allowed with this key.
        #[arg(long)]
        read_only: bool,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List a user's API keys (ids and descriptions, never the keys).
    ApiKeys {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete an API key by its id; requests with it are refused from then on.
    DeleteApiKey {
        id: Uuid,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Add a reseller or company; prints its UID.
    Add {
        name: String,
        /// Reseller or Company.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// Managing organization (a reseller for its companies); defaults to the provider.
        #[arg(long)]
        parent: Option<Uuid>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List organizations.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create a token the organization's agents enroll with (POST /api/agent/v1/enroll).
    /// The token is printed once; only its digest is stored.
    EnrollToken {
        /// The organization the enrolled agents (and the servers they register) belong to.
        #[arg(value_name = "ORG_UID")]
        organization: Uuid,
        /// Days until the token stops being accepted (agents enrolled with it keep working).
        #[arg(long, default_value_t = 30)]
        valid_days: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Register a server; prints its UID.
    Add {
        name: String,
        /// cloud-connect-site, backup-server, vone-server or vb365-server.
        #[arg(long = "kind")]
        kind: String,
        /// Owning organization; defaults to the provider.
        #[arg(long)]
        organization: Option<Uuid>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List servers.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Generate (or regenerate) every report owner's report for a finished month; approved
    /// reports are kept as they are.
    Generate {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum RatesCommand {
    /// Print the weights table.
    Show {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set one weight.
    Set {
        /// CloudConnect, BackupAndReplication, VONE, VB365 or VSPC.
        #[arg(long)]
        product: String,
        /// Edition the weight applies to, or * for any.
        #[arg(long, default_value = "*")]
        edition: String,
        /// Workload type as reports spell it, e.g. VBR_VM.
        #[arg(long)]
        workload: String,
        #[arg(long)]
        weight: f64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set weights from a TOML file (see docs/points.md).
    Import {
        file: std::path::PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TALLYMAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes, one line, and no backtrace: this is for the operator.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // Behave like other command-line tools when output is piped into `head`: end quietly.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    init_logging();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Backup { out, store } => backup(&store, &out).await,
        Command::Migrate(args) => {
            let store = open_store(&args).await?;
            tracing::info!(backend = store.backend(), "migrations applied");
            Ok(())
        }
        Command::User(UserCommand::Add {
            name,
            role,
            organization,
            password_stdin: _,
            store,
        }) => add_user(&store, &name, &role, organization).await,
        Command::Keygen(args) => Ok(tallyman_license::cli::run_keygen(&args)?),
        Command::Report(ReportCommand::Generate { month, store }) => {
            let store = open_store(&store).await?;
            bootstrap::ensure_provider(&store, "My Company").await?;
            reports_cli::generate(&store, &month).await
        }
        Command::Simulate {
            url,
            companies,
            servers,
            months,
            seed,
            generate_reports,
            store,
        } => {
            let store = open_store(&store).await?;
            bootstrap::ensure_provider(&store, "My Company").await?;
            simulate::run(
                &store,
                simulate::Options {
                    url,
                    companies,
                    servers,
                    months,
                    seed,
                    generate_reports,
                },
            )
            .await
        }
        Command::Rates(RatesCommand::Show { store }) => {
            reports_cli::show(&open_store(&store).await?).await
        }
        Command::Rates(RatesCommand::Set {
            product,
            edition,
            workload,
            weight,
            store,
        }) => {
            reports_cli::set(
                &open_store(&store).await?,
                &product,
                &edition,
                &workload,
                weight,
            )
            .await
        }
        Command::Rates(RatesCommand::Import { file, store }) => {
            reports_cli::import(&open_store(&store).await?, &file).await
        }
        Command::Portal(args) => tallyman_portal::cli::run(args, shutdown_signal()).await,
        Command::Org(OrgCommand::Add {
            name,
            kind,
            parent,
            store,
        }) => {
            let store = open_store(&store).await?;
            bootstrap::ensure_provider(&store, "My Company").await?;
            let org = inventory::add_organization(&store, &name, &kind, parent).await?;
            println!("{}", org.uid);
            Ok(())
        }
        Command::Org(OrgCommand::List { store }) => {
            let store = open_store(&store).await?;
            for o in store.organizations().await? {
                let parent = o.parent_uid.map(|p| p.to_string()).unwrap_or_default();
                println!("{}\t{}\t{}\t{}", o.uid, o.kind.as_str(), o.name, parent);
            }
            Ok(())
        }
        Command::Org(OrgCommand::EnrollToken {
            organization,
            valid_days,
            store,
        }) => {
            let store = open_store(&store).await?;
            let (token, record) =
                inventory::create_enrollment_token(&store, organization, valid_days).await?;
            println!("{token}");
            eprintln!(
                "enrollment token for organization {} valid until {}; it is shown only once",
                record.organization_uid,
                record.expires_at.to_rfc3339()
            );
            Ok(())
        }
        Command::Server(ServerCommand::Add {
            name,
            kind,
            organization,
            store,
        }) => {
            let store = open_store(&store).await?;
            bootstrap::ensure_provider(&store, "My Company").await?;
            let server = inventory::add_server(&store, &name, &kind, organization).await?;
            println!("{}", server.uid);
            Ok(())
        }
        Command::Server(ServerCommand::List { store }) => {
            let store = open_store(&store).await?;
            for s in store.servers(None).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.uid,
                    s.kind.as_str(),
                    s.name,
                    s.organization_uid
                );
            }
            Ok(())
        }
        Command::License { command } => Ok(tallyman_license::cli::run_license(&command)?),
        Command::User(UserCommand::ApiKey {
            name,
            read_only,
            description,
            store,
        }) => {
            let store = open_store(&store).await?;
            let user = store
                .user_by_name(&name)
                .await?
                .with_context(|| format!("no user named {name}"))?;
            let key = tallyman_app::credentials::new_api_key();
            let record = tallyman_store::ApiKey {
                id: Uuid::new_v4(),
                digest: tallyman_app::credentials::token_digest(&key),
                user_uid: user.uid,
                description,
                read_only,
                created_at: Utc::now(),
            };
            store.insert_api_key(&record).await?;
            eprintln!("API key {} for {} (shown once):", record.id, user.name);
            println!("{key}");
            Ok(())
        }
        Command::User(UserCommand::ApiKeys { name, store }) => {
            let store = open_store(&store).await?;
            let user = store
                .user_by_name(&name)
                .await?
                .with_context(|| format!("no user named {name}"))?;
            for k in store.api_keys(user.uid).await? {
                let access = if k.read_only {
                    "read-only"
                } else {
                    "read-write"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    k.id,
                    access,
                    k.created_at.to_rfc3339(),
                    k.description
                );
            }
            Ok(())
        }
        Command::User(UserCommand::DeleteApiKey { id, store }) => {
            let store = open_store(&store).await?;
            if !store.delete_api_key(id).await? {
                bail!("there is no API key {id}");
            }
            println!("API key {id} deleted");
            Ok(())
        }
        Command::User(UserCommand::List { store }) => {
            let store = open_store(&store).await?;
            for u in store.users().await? {
                println!("{}\t{}\t{}\t{}", u.uid, u.name, u.role, u.organization_uid);
            }
            Ok(())
        }
    }
}

async fn open_store(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    let resolved = args.resolve()?;
    let store = tallyman_store::connect(&resolved.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                tallyman_store::redact_url(&resolved.database_url)
            )
        })?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let resolved = args.store.resolve()?;
    let file = &resolved.file;
    let store = open_store(&args.store).await?;
    bootstrap::ensure_provider_and_admin(
        &store,
        file.provider_name.as_deref().unwrap_or("My Company"),
    )
    .await?;

    let defaults = HttpConfig::default();
    let config = HttpConfig {
        body_limit: args
            .body_limit
            .or(file.body_limit)
            .unwrap_or(defaults.body_limit),
        async_budget: args
            .async_budget_secs
            .or(file.async_budget_secs)
            .map(|s| Duration::seconds(s as i64))
            .unwrap_or(defaults.async_budget),
        force_async: args.force_async.or(file.force_async).unwrap_or(false),
        public_url: args.public_url.clone().or(file.public_url.clone()),
        max_page_size: args
            .max_page_size
            .or(file.max_page_size)
            .unwrap_or(defaults.max_page_size),
        access_token_ttl: file
            .access_token_ttl_secs
            .map(Duration::seconds)
            .unwrap_or(defaults.access_token_ttl),
        refresh_token_ttl: file
            .refresh_token_ttl_secs
            .map(Duration::seconds)
            .unwrap_or(defaults.refresh_token_ttl),
        login_max_failures: file
            .login_max_failures
            .unwrap_or(defaults.login_max_failures),
        login_window: file
            .login_window_secs
            .map(Duration::seconds)
            .unwrap_or(defaults.login_window),
        server: ServerLimits {
            header_read_timeout: args
                .header_read_timeout_secs
                .or(file.header_read_timeout_secs)
                .map(std::time::Duration::from_secs)
                .unwrap_or(defaults.server.header_read_timeout),
            body_read_timeout: args
                .body_read_timeout_secs
                .or(file.body_read_timeout_secs)
                .map(std::time::Duration::from_secs)
                .unwrap_or(defaults.server.body_read_timeout),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(defaults.server.max_connections),
        },
        ..defaults
    };
    if config.server.header_read_timeout.is_zero() || config.server.body_read_timeout.is_zero() {
        anyhow::bail!("read timeouts must be at least one second");
    }
    if config.force_async {
        tracing::warn!("force-async is on: every async-capable operation answers 202");
    }
    let mut trust = load_trust(&args, &resolved)?;
    let mut demo_portal = None;
    if args.demo {
        let key = demo::demo_key(&resolved.data_dir)?;
        trust.add(key.public());
        let portal_dir = resolved.data_dir.join("demo").join("portal");
        if demo::seed(&store, &key, &portal_dir, Utc::now()).await? {
            simulate::backfill(&store, 12, 42, Utc::now()).await?;
            println!(
                "demo: seeded 44 servers in 15 organizations with 12 months of usage and reports"
            );
        }
        let (url, handle) = tallyman_portal::start_local(key, portal_dir).await?;
        tracing::info!(%url, "demo license portal running in this process");
        demo_portal = Some((url, handle));
    }
    tracing::info!(keys = trust.len(), "trusted license issuer keys loaded");
    let mut state = AppState::new(store.clone(), Arc::new(SystemClock), config)
        .await?
        .with_trust(trust);
    let portal_url = demo_portal
        .as_ref()
        .map(|(url, _)| url.clone())
        .or(args.portal_url.clone())
        .or(file.portal_url.clone());
    if let Some(url) = portal_url {
        let client = tallyman_portal::client::PortalClient::new(&url)
            .with_context(|| format!("invalid --portal-url {url}"))?;
        state = state.with_portal(Arc::new(client));
    }
    let listen = args
        .listen
        .clone()
        .or(file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let metrics_listen = args.metrics_listen.clone().or(file.metrics_listen.clone());
    if let Some(addr) = metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        tracing::info!(address = %metrics_listener.local_addr()?, "Prometheus metrics at /metrics");
        let app = tallyman_http::metrics::router(state.metrics.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics_listener, app).await {
                tracing::warn!(error = %e, "the metrics listener stopped");
            }
        });
    }
    // One machine-readable line on stdout, so scripts and tests can use --listen 127.0.0.1:0.
    println!("listening on {}", listener.local_addr()?);
    tracing::info!(
        address = %listener.local_addr()?,
        backend = store.backend(),
        database = %tallyman_store::redact_url(&resolved.database_url),
        "Tallyman is serving the VSPC v3 API under /api/v3"
    );
    tallyman_http::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn backup(args: &StoreArgs, out: &std::path::Path) -> anyhow::Result<()> {
    let resolved = args.resolve()?;
    if !resolved.database_url.starts_with("sqlite:") {
        bail!("backup copies SQLite databases; back up PostgreSQL with its own tools (pg_dump)");
    }
    if out.exists() {
        bail!("{} already exists; choose a new file", out.display());
    }
    let store = tallyman_store::SqliteStore::connect(&resolved.database_url).await?;
    store.migrate().await?;
    let path = out
        .to_str()
        .context("the backup path must be valid UTF-8")?;
    store.backup_to(path).await?;
    println!(
        "backed up {} to {}",
        tallyman_store::redact_url(&resolved.database_url),
        out.display()
    );
    Ok(())
}

/// Issuer keys from --trusted-key, TALLYMAN_TRUSTED_KEYS, the config file and
/// <data-dir>/trusted-keys/*.pub.
fn load_trust(
    args: &ServeArgs,
    resolved: &config::Resolved,
) -> anyhow::Result<tallyman_license::TrustStore> {
    let mut trust = tallyman_license::TrustStore::new();
    let mut files: Vec<std::path::PathBuf> = args.trusted_keys.clone();
    if let Ok(list) = std::env::var("TALLYMAN_TRUSTED_KEYS") {
        files.extend(
            list.split([',', ':'])
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().into()),
        );
    }
    files.extend(resolved.file.trusted_keys.clone().unwrap_or_default());
    for file in files {
        let key = tallyman_license::IssuerPublicKey::read_file(&file)
            .with_context(|| format!("cannot read trusted key {}", file.display()))?;
        trust.add(key);
    }
    let dir = resolved.data_dir.join("trusted-keys");
    if dir.is_dir() {
        trust
            .load_dir(&dir)
            .with_context(|| format!("cannot read trusted keys in {}", dir.display()))?;
    }
    Ok(trust)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn add_user(
    args: &StoreArgs,
    name: &str,
    role: &str,
    organization: Option<Uuid>,
) -> anyhow::Result<()> {
    let role = Role::parse(role).with_context(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role {role:?}; one of: {}", names.join(", "))
    })?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 2048 {
        bail!("the user name must be 1 to 2048 characters");
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() || password.chars().count() > 128 {
        bail!("the password must be 1 to 128 characters");
    }
    let store = open_store(args).await?;
    bootstrap::ensure_provider(&store, "My Company").await?;
    let org =
        match organization {
            Some(uid) => store
                .organization(uid)
                .await?
                .with_context(|| format!("organization {uid} does not exist"))?,
            None if role.organization_type() == OrganizationType::Provider => store
                .provider()
                .await?
                .context("the provider organization is missing")?,
            None => bail!(
                "the role {role} belongs to a {} organization: pass --organization UID",
                role.organization_type().as_str()
            ),
        };
    if org.kind != role.organization_type() {
        bail!(
            "the role {role} needs a {} organization, but {} is a {}",
            role.organization_type().as_str(),
            org.uid,
            org.kind.as_str()
        );
    }
    let user = User {
        uid: Uuid::new_v4(),
        name: name.to_string(),
        role,
        organization_uid: org.uid,
        password_hash: tallyman_app::credentials::hash_password(password)?,
        enabled: true,
        created_at: Utc::now(),
    };
    store
        .insert_user(&user)
        .await
        .with_context(|| format!("cannot add user {name}"))?;
    println!("{}", user.uid);
    Ok(())
}
