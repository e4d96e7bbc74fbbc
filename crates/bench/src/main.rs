//! `tallyman-bench`: measures Tallyman the way it runs — a real server on 127.0.0.1, a real
//! database (a fresh SQLite file, or PostgreSQL with `--database`), real HTTP requests from a
//! bounded pool of concurrent clients. Prints requests/s and latency percentiles; every loop is
//! bounded by a request count.
//!
//! ```text
//! cargo run --release -p tallyman-bench -- http --servers 100000 --requests 5000
//! cargo run --release -p tallyman-bench -- reports --companies 1000 --servers-per-company 10
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Duration as ChronoDuration, Utc};
use clap::{Parser, Subcommand};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use tallyman_app::credentials::hash_password;
use tallyman_app::reports::generate_month;
use tallyman_app::Month;
use tallyman_app::{InstalledFile, SlotDocument, CONSOLE_TARGET};
use tallyman_domain::{LicenseType, Product};
use tallyman_http::{AppState, HttpConfig, SystemClock};
use tallyman_license::{default_claims, issue, verify, IssuerKey, TrustStore};
use tallyman_store::{
    LicenseEvent, LicenseSlot, ManagedServer, Organization, OrganizationType, Role, Store,
    TargetKind, UsageSample, User,
};
use uuid::Uuid;

/// The same allocator as the `tallyman` binary, so the server under test behaves as deployed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Load and scale benchmarks for Tallyman")]
struct Cli {
    /// Database URL; default: a fresh SQLite file in a temporary directory.
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP throughput and latency of the real server (its own process) beside a hello-world
    /// axum server in the same run: /about, a single license GET, a filtered sorted page,
    /// installs, a list right after a write; the server's memory.
    Http {
        /// Backup servers (with licenses) in the store.
        #[arg(long, default_value_t = 100_000)]
        servers: usize,
        /// Requests per measured operation.
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Requests for the filtered page over the whole fleet.
        #[arg(long, default_value_t = 5_000)]
        page_requests: usize,
    },
    /// (Used by `http`.) The hello-world baseline server; prints `listening ADDR`.
    #[command(hide = true)]
    Hello,
    /// (Used by `http`.) The real server over `--database`; prints `listening ADDR` and stops
    /// when its standard input closes.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        trusted_key: std::path::PathBuf,
    },
    /// Report generation time, CSV export speed and peak memory.
    Reports {
        #[arg(long, default_value_t = 1_000)]
        companies: usize,
        #[arg(long, default_value_t = 10)]
        servers_per_company: usize,
    },
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU time (user + system, every thread) the process used so far, in seconds: on a shared
/// machine it tells the work done apart from the waiting.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at the state field.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime = fields.get(11)?.parse::<f64>().ok()?;
            let stime = fields.get(12)?.parse::<f64>().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

struct Run {
    store: Arc<dyn Store>,
    url: String,
    _dir: Option<tempdir::TempDir>,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn open(database: Option<String>) -> anyhow::Result<Run> {
    let (url, dir) = match database {
        Some(url) => (url, None),
        None => {
            let dir = std::env::temp_dir().join(format!("tallyman-bench-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&dir)?;
            (
                format!("sqlite://{}", dir.join("bench.db").display()),
                Some(tempdir::TempDir(dir)),
            )
        }
    };
    let store = tallyman_store::connect(&url).await?;
    store.migrate().await?;
    Ok(Run {
        store,
        url,
        _dir: dir,
    })
}

async fn provider(store: &Arc<dyn Store>) -> anyhow::Result<Organization> {
    if let Some(p) = store.provider().await? {
        return Ok(p);
    }
    let p = Organization {
        uid: Uuid::new_v4(),
        name: "Bench Provider".into(),
        kind: OrganizationType::Provider,
        parent_uid: None,
        created_at: Utc::now(),
    };
    store.insert_organization(&p).await?;
    Ok(p)
}

/// A process of this binary serving something on 127.0.0.1, stopped when dropped.
struct Child {
    process: std::process::Child,
    addr: String,
}

impl Child {
    /// Starts `tallyman-bench <args>` and waits for the `listening <addr>` line it prints.
    fn spawn(args: &[&str]) -> anyhow::Result<Child> {
        use std::io::BufRead;
        let mut process = std::process::Command::new(std::env::current_exe()?)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::piped())
            .spawn()?;
        let stdout = process.stdout.take().context("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .with_context(|| format!("unexpected first line from {args:?}: {line:?}"))?
            .to_string();
        Ok(Child { process, addr })
    }

    /// (current, peak) resident memory of the process in MiB.
    fn rss_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
                .unwrap_or(0.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The benchmark's administrator's password.
const ADMIN_PASSWORD: &str = "bench-password";

/// Adds the `admin` portal administrator the benchmarks log in as.
async fn add_admin(store: &Arc<dyn Store>, provider: &Organization) -> anyhow::Result<()> {
    store
        .insert_user(&User {
            uid: Uuid::new_v4(),
            name: "admin".into(),
            role: Role::PortalAdministrator,
            organization_uid: provider.uid,
            password_hash: hash_password(ADMIN_PASSWORD)?,
            enabled: true,
            created_at: Utc::now(),
        })
        .await?;
    Ok(())
}

/// Logs in as `admin` at `base` (`…/api/v3`); returns the access token.
async fn login(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let token: Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(token["access_token"]
        .as_str()
        .context("no token")?
        .to_string())
}

/// Requests/s and latency of one measured operation.
struct Measured {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    count: usize,
}

/// Runs `n` requests built by `make(i)` with `concurrency` clients; every answer must be 2xx.
async fn measure<F>(n: usize, concurrency: usize, make: F) -> anyhow::Result<Measured>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    let start = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = stream::iter(0..n)
        .map(|i| {
            let req = make(i);
            async move {
                let t = Instant::now();
                let resp = req.send().await?;
                let status = resp.status();
                let _ = resp.bytes().await?;
                anyhow::ensure!(status.is_success(), "status {status}");
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = start.elapsed();
    let mut lat = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    Ok(Measured {
        rate: lat.len() as f64 / wall.as_secs_f64(),
        p50: ms(pct(0.5)),
        p99: ms(pct(0.99)),
        max: lat.last().map(|d| ms(*d)).unwrap_or(0.0),
        count: lat.len(),
    })
}

fn row(name: &str, m: &Measured, baseline: f64) {
    println!(
        "| {name} | {} | {:.0} | {:.1} % | {:.2} | {:.2} | {:.2} |",
        m.count,
        m.rate,
        100.0 * m.rate / baseline,
        m.p50,
        m.p99,
        m.max
    );
}

/// Seeds `servers` licensed Backup & Replication servers; returns their uids.
async fn seed_fleet(
    store: &Arc<dyn Store>,
    provider: &Organization,
    key: &IssuerKey,
    trust: &TrustStore,
    servers: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let now = Utc::now();
    let kinds = [
        LicenseType::Rental,
        LicenseType::Subscription,
        LicenseType::Perpetual,
    ];
    let templates: Vec<InstalledFile> = (0..30)
        .map(|i| {
            let mut c = default_claims(
                Product::BackupAndReplication,
                kinds[i % 3],
                now - ChronoDuration::days(60),
            );
            c.company = format!("Licensee {:02}", i % 7);
            if c.expiration_date.is_some() {
                c.expiration_date = Some(now + ChronoDuration::days((i as i64 * 9) - 40));
                c.support_expiration_date = c.expiration_date;
            }
            let text = issue(&c, key)?;
            let v = verify(text.as_bytes(), trust)?;
            Ok(InstalledFile {
                license_id: c.license_id,
                armoured: v.armoured,
                key_id: v.key_id,
                claims: v.claims,
                installed_at: now,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut uids = Vec::with_capacity(servers);
    for chunk in (0..servers).collect::<Vec<_>>().chunks(5_000) {
        let batch: Vec<ManagedServer> = chunk
            .iter()
            .map(|i| ManagedServer {
                uid: Uuid::new_v4(),
                kind: TargetKind::BackupServer,
                name: format!("vbr-{i:06}"),
                organization_uid: provider.uid,
                agent_uid: None,
                created_at: now,
                last_seen_at: Some(now),
                reported: json!({"licenseState": "licensed", "usedUnits": (i % 120) as f64}),
            })
            .collect();
        store.insert_servers(&batch).await?;
        for (j, s) in batch.iter().enumerate() {
            let doc = SlotDocument {
                files: vec![templates[(chunk[j]) % templates.len()].clone()],
                ..SlotDocument::default()
            };
            let slot = LicenseSlot {
                target_uid: s.uid,
                kind: TargetKind::BackupServer,
                document: serde_json::to_value(&doc)?,
                revision: 0,
                updated_at: now,
            };
            let event = LicenseEvent {
                target_uid: s.uid,
                at: now,
                actor: "bench".into(),
                action: "install".into(),
                detail: json!({}),
            };
            store.save_license_slot(&slot, None, &event).await?;
            uids.push(s.uid);
        }
    }
    Ok(uids)
}

async fn http_bench(
    run: Run,
    url: String,
    servers: usize,
    requests: usize,
    connections: usize,
    page_requests: usize,
) -> anyhow::Result<()> {
    let store = run.store.clone();
    let provider = provider(&store).await?;
    add_admin(&store, &provider).await?;
    let key = IssuerKey::generate();
    let mut trust = TrustStore::new();
    trust.add(key.public());
    let key_file = std::env::temp_dir().join(format!("tallyman-bench-{}.pub", Uuid::new_v4()));
    std::fs::write(&key_file, key.public().to_pem())?;

    let seed_start = Instant::now();
    let uids = seed_fleet(&store, &provider, &key, &trust, servers).await?;
    println!(
        "seeded {servers} licensed backup servers in {:.1} s",
        seed_start.elapsed().as_secs_f64()
    );
    drop(store);
    drop(run.store);

    // The server under test and the baseline each run in a process of their own, so their
    // memory is their own; the load comes from this process over loopback.
    let hello = Child::spawn(&["hello"])?;
    let started = Instant::now();
    let server = Child::spawn(&[
        "--database",
        &url,
        "serve",
        "--trusted-key",
        &key_file.display().to_string(),
    ])?;
    let ready = started.elapsed();
    let base = format!("http://{}/api/v3", server.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let token = login(&http, &base).await?;
    let filter = "filter=%5B%7B%22property%22%3A%22status%22%2C%22operation%22%3A%22equals%22%2C%22value%22%3A%22Valid%22%7D%5D&sort=%5B%7B%22property%22%3A%22expirationDate%22%2C%22direction%22%3A%22descending%22%7D%5D&limit=100";
    let page_url = format!("{base}/licensing/backupServers?{filter}");

    let cold = Instant::now();
    let first = http.get(&page_url).bearer_auth(&token).send().await?;
    anyhow::ensure!(first.status().is_success(), "cold list: {}", first.status());
    let _ = first.bytes().await?;
    let cold = cold.elapsed();
    let (rss_built, _) = server.rss_mib();

    let hello_url = format!("http://{}/hello", hello.addr);
    let baseline = measure(requests, connections, |_| http.get(&hello_url)).await?;
    println!();
    println!(
        "server ready {:.0} ms after start; first filtered list {:.0} ms after that (cold); \
         {rss_built:.0} MiB resident with the list built",
        ready.as_secs_f64() * 1000.0,
        cold.as_secs_f64() * 1000.0
    );
    println!();
    println!("{connections} connections; ratio = requests/s relative to the hello-world server in the same run.");
    println!();
    println!("| operation | requests | requests/s | ratio | p50 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    row(
        "hello-world JSON (axum, baseline)",
        &baseline,
        baseline.rate,
    );
    let about = measure(requests, connections, |_| {
        http.get(format!("{base}/about")).bearer_auth(&token)
    })
    .await?;
    row("`GET /about`", &about, baseline.rate);
    let single = measure(requests, connections, |i| {
        http.get(format!(
            "{base}/licensing/backupServers/{}",
            uids[(i * 7919) % uids.len()]
        ))
        .bearer_auth(&token)
    })
    .await?;
    row(
        "`GET /licensing/backupServers/{uid}`",
        &single,
        baseline.rate,
    );
    let page = measure(page_requests, connections, |_| {
        http.get(&page_url).bearer_auth(&token)
    })
    .await?;
    row(
        "`GET /licensing/backupServers` filtered (status equals Valid), sorted (expirationDate desc), limit 100",
        &page,
        baseline.rate,
    );
    let (rss_read, _) = server.rss_mib();
    // Installs: each a fresh rental file for a distinct server.
    let files: Vec<String> = (0..requests.min(uids.len()))
        .map(|_| {
            issue(
                &default_claims(
                    Product::BackupAndReplication,
                    LicenseType::Rental,
                    Utc::now(),
                ),
                &key,
            )
            .map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<_>>()?;
    let install = measure(files.len(), connections, |i| {
        let form = reqwest::multipart::Form::new().part(
            "license",
            reqwest::multipart::Part::text(files[i].clone()).file_name("license.lic"),
        );
        http.put(format!("{base}/licensing/backupServers/{}", uids[i]))
            .bearer_auth(&token)
            .multipart(form)
    })
    .await?;
    row(
        "`PUT /licensing/backupServers/{uid}` (install, multipart)",
        &install,
        baseline.rate,
    );
    // A list right after each single write: the write must not make the list rebuild.
    let after_write = {
        let mut lat = Vec::new();
        let n = page_requests.min(200);
        let start = Instant::now();
        for i in 0..n {
            let form = reqwest::multipart::Form::new().part(
                "license",
                reqwest::multipart::Part::text(files[i % files.len()].clone())
                    .file_name("license.lic"),
            );
            let put = http
                .put(format!(
                    "{base}/licensing/backupServers/{}",
                    uids[(i + 1) % uids.len()]
                ))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await?;
            let _ = put.bytes().await?;
            let t = Instant::now();
            let list = http.get(&page_url).bearer_auth(&token).send().await?;
            anyhow::ensure!(list.status().is_success(), "list: {}", list.status());
            let _ = list.bytes().await?;
            lat.push(t.elapsed());
        }
        lat.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Measured {
            rate: n as f64 / start.elapsed().as_secs_f64(),
            p50: ms(lat[lat.len() / 2]),
            p99: ms(lat[((lat.len() as f64 * 0.99).ceil() as usize).clamp(1, lat.len()) - 1]),
            max: lat.last().map(|d| ms(*d)).unwrap_or(0.0),
            count: n,
        }
    };
    println!(
        "| filtered list right after a single install (sequential pairs; latency of the list) | {} | – | – | {:.2} | {:.2} | {:.2} |",
        after_write.count, after_write.p50, after_write.p99, after_write.max
    );
    let (rss, peak) = server.rss_mib();
    let (hello_rss, _) = hello.rss_mib();
    println!();
    println!(
        "server process memory: {rss_built:.0} MiB resident after the cold list, {rss_read:.0} MiB \
         after the reads, {rss:.0} MiB after the installs too, {peak:.0} MiB peak (hello-world \
         server: {hello_rss:.0} MiB)"
    );
    let _ = std::fs::remove_file(&key_file);
    Ok(())
}

/// The baseline: the smallest axum server answering a JSON document, on the same runtime
/// settings as the real server.
async fn hello_server() -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { axum::Json(json!({"data": {"hello": "world"}})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The real server over an existing database, as `tallyman serve` runs it.
async fn api_server(run: Run, trusted_key: std::path::PathBuf) -> anyhow::Result<()> {
    // Events of the list builds and anything worse than info go to standard error.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| "warn,tallyman_http::licensing=info".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let mut trust = TrustStore::new();
    trust.add(tallyman_license::IssuerPublicKey::read_file(&trusted_key)?);
    let state = AppState::new(
        run.store.clone(),
        Arc::new(SystemClock),
        HttpConfig::default(),
    )
    .await?
    .with_trust(trust);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    // Stops when the parent closes our standard input (or kills us).
    let stop = async {
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        })
        .await;
    };
    tallyman_http::serve(listener, state, stop).await?;
    Ok(())
}

async fn reports_bench(run: Run, companies: usize, per_company: usize) -> anyhow::Result<()> {
    let store = run.store.clone();
    let provider = provider(&store).await?;
    let now = Utc::now();
    let month = Month::of(now).previous();
    let seed_start = Instant::now();
    let mut servers_total = 0;
    let mut samples_total = 0;
    for c in 0..companies {
        let org = Organization {
            uid: Uuid::new_v4(),
            name: format!("Company {c:05}"),
            kind: OrganizationType::Company,
            parent_uid: Some(provider.uid),
            created_at: now,
        };
        store.insert_organization(&org).await?;
        let batch: Vec<ManagedServer> = (0..per_company)
            .map(|s| ManagedServer {
                uid: Uuid::new_v4(),
                kind: TargetKind::BackupServer,
                name: format!("vbr-{c:05}-{s:03}"),
                organization_uid: org.uid,
                agent_uid: None,
                created_at: month.start(),
                last_seen_at: Some(now),
                reported: Value::Null,
            })
            .collect();
        store.insert_servers(&batch).await?;
        let mut samples = Vec::with_capacity(per_company * 4);
        for (s, server) in batch.iter().enumerate() {
            for (day, used) in [(2i64, 10 + s as i64 % 7), (16, 14 + s as i64 % 5)] {
                for (wt, platform) in [("VBR_VM", "vSphere"), ("VBR_Server_Agent", "Windows")] {
                    samples.push(UsageSample {
                        server_uid: server.uid,
                        organization_uid: org.uid,
                        workload_type: wt.into(),
                        platform: platform.into(),
                        sampled_at: month.start() + ChronoDuration::days(day),
                        used,
                        new: (s % 3) as i64,
                        rental: 0,
                    });
                }
            }
        }
        samples_total += samples.len();
        servers_total += batch.len();
        store.insert_usage_samples(&samples).await?;
    }
    let _ = CONSOLE_TARGET;
    println!(
        "seeded {companies} companies, {servers_total} servers, {samples_total} samples in {:.1} s",
        seed_start.elapsed().as_secs_f64()
    );
    let rss_before = peak_rss_mib();
    let cpu_before = cpu_seconds();
    let t = Instant::now();
    let written = generate_month(&store, month, now, &|_, _| {}).await?;
    let generation = t.elapsed();
    let generation_cpu = cpu_seconds() - cpu_before;
    let rss_after = peak_rss_mib();

    // CSV export through the real server.
    let state = AppState::new(store.clone(), Arc::new(SystemClock), HttpConfig::default()).await?;
    add_admin(&store, &provider).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v3", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tallyman_http::serve(listener, state, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();
    let token = login(&http, &base).await?;
    let id = match written.first().map(|w| w.1) {
        Some(
            tallyman_store::ReportWrite::Created(id)
            | tallyman_store::ReportWrite::Replaced(id)
            | tallyman_store::ReportWrite::KeptApproved(id),
        ) => id,
        None => anyhow::bail!("no report generated"),
    };
    let t = Instant::now();
    let mut resp = http
        .get(format!("{base}/licensing/reports/{id}/csv"))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "csv status {}", resp.status());
    let mut bytes = 0usize;
    let mut rows = 0usize;
    while let Some(chunk) = resp.chunk().await? {
        bytes += chunk.len();
        rows += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let csv_time = t.elapsed();
    let _ = tx.send(());
    server.await??;

    println!();
    println!("| companies | servers | samples | report generation s | generation CPU s | CSV rows | CSV MB | CSV MB/s | peak RSS MiB (before → after generation) |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {companies} | {servers_total} | {samples_total} | {:.2} | {:.2} | {rows} | {:.1} | {:.1} | {:.0} → {:.0} |",
        generation.as_secs_f64(),
        generation_cpu,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / csv_time.as_secs_f64(),
        rss_before,
        rss_after,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Hello => return hello_server().await,
        Command::Serve { trusted_key } => {
            let url = cli.database.context("serve needs --database")?;
            return api_server(open(Some(url)).await?, trusted_key).await;
        }
        _ => {}
    }
    let run = open(cli.database).await?;
    match cli.command {
        Command::Http {
            servers,
            requests,
            connections,
            page_requests,
        } => {
            let url = run.url.clone();
            http_bench(run, url, servers, requests, connections, page_requests).await
        }
        Command::Hello | Command::Serve { .. } => Ok(()),
        Command::Reports {
            companies,
            servers_per_company,
        } => reports_bench(run, companies, servers_per_company).await,
    }
}
