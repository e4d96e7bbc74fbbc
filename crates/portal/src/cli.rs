//! `tallyman portal`: the arguments and the function that runs the portal as its own process.
//!
//! Mount it in the binary like this:
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//! use tallyman_portal::cli::{run, PortalArgs};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Run the license portal
//!     Portal(PortalArgs),
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     match Cli::parse().command {
//!         Command::Portal(args) => run(args, async {
//!             let _ = tokio::signal::ctrl_c().await;
//!         })
//!         .await,
//!     }
//! }
//! ```

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Duration;
use clap::Args;
use tallyman_domain::SystemClock;
use tallyman_license::IssuerKey;

use crate::renewal::{RenewalPolicy, DEFAULT_RENTAL_WINDOW_DAYS, DEFAULT_SUBSCRIPTION_WINDOW_DAYS};
use crate::server::{self, PortalOptions, PortalState};

/// Default listen address of the portal (one above `tallyman serve`'s 1280).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1281";

/// Arguments of `tallyman portal`.
#[derive(Debug, Clone, Args)]
pub struct PortalArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, env = "TALLYMAN_PORTAL_LISTEN")]
    pub listen: String,
    /// The issuer signing key (PKCS#8 PEM, as written by `tallyman keygen`).
    #[arg(long, value_name = "FILE", env = "TALLYMAN_PORTAL_KEY")]
    pub key: PathBuf,
    /// Directory of issued license files (`*.lic`); created if missing. Renewed and imported
    /// files are written here.
    #[arg(long, value_name = "DIR", env = "TALLYMAN_PORTAL_LICENSES")]
    pub licenses: PathBuf,
    /// Renew a Rental license this many days before it expires.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_RENTAL_WINDOW_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub rental_renewal_days: i64,
    /// Renew a Subscription license this many days before it expires.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_SUBSCRIPTION_WINDOW_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub subscription_renewal_days: i64,
}

impl PortalArgs {
    /// The renewal windows these arguments ask for.
    pub fn renewal_policy(&self) -> RenewalPolicy {
        RenewalPolicy {
            rental_window: Duration::days(self.rental_renewal_days),
            subscription_window: Duration::days(self.subscription_renewal_days),
        }
    }
}

/// Runs the portal until `shutdown` resolves: reads the key, indexes the licenses directory,
/// binds, prints `portal listening on ADDR` (the bound address) as the one line on stdout, and
/// serves, finishing requests in flight when shut down.
pub async fn run(
    args: PortalArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let key = IssuerKey::read_file(&args.key)
        .with_context(|| format!("cannot read the issuer key {}", args.key.display()))?;
    let options = PortalOptions {
        clock: Arc::new(SystemClock),
        renewal: args.renewal_policy(),
    };
    let dir = args.licenses.clone();
    let (state, _report) =
        tokio::task::spawn_blocking(move || PortalState::open_with(key, dir, options))
            .await
            .context("the directory scan did not finish")?
            .with_context(|| {
                format!(
                    "cannot use the licenses directory {}",
                    args.licenses.display()
                )
            })?;

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    // The single machine-readable line, so scripts and tests can pass --listen 127.0.0.1:0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "portal listening on {address}")?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(
        %address,
        key_id = state.key_id(),
        licenses = state.license_count(),
        "license portal serving /portal/v1"
    );

    server::serve(listener, state, shutdown)
        .await
        .context("the portal server failed")?;
    tracing::info!("license portal stopped");
    Ok(())
}
