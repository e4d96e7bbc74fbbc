//! Tallyman's license portal: the issuer service.
//!
//! It holds an issuer signing key and a directory of license files that key signed, and answers
//! one question for Tallyman's `update` operations and auto-update job: "is there a newer license
//! file for license id X?". Rental and Subscription contracts are renewed on the way: when the
//! newest file of such a license is close to expiry (or past it), the portal signs a renewed file
//! and serves that. The HTTP API and the renewal rules are described in `docs/portal.md`.
//!
//! * [`server`]: the state and axum router (run it yourself, or through [`cli::run`]);
//! * [`client`]: [`PortalClient`], what Tallyman uses to ask;
//! * [`cli`]: `tallyman portal` arguments and runner;
//! * [`spawn_in_process`] / [`start_local`]: the portal inside another process (demo mode).

pub mod catalog;
pub mod cli;
pub mod client;
pub mod renewal;
pub mod server;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tallyman_domain::Clock;
use tallyman_license::IssuerKey;

pub use client::{PortalClient, PortalError};
pub use renewal::RenewalPolicy;
pub use server::{router, ApiError, ImportOutcome, PortalOptions, PortalState};
pub use wire::{Health, ImportedLicense, LatestLicense};

/// The portal as a [`Router`] to merge into a host process's own router (its paths all start
/// with `/portal/v1/`), with default renewal windows and the given clock. Indexes `dir` (created if
/// missing) before returning, so call it at start-up, not from a request.
pub fn spawn_in_process(
    key: IssuerKey,
    dir: impl Into<PathBuf>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Router> {
    let dir = dir.into();
    let options = PortalOptions {
        clock,
        ..PortalOptions::default()
    };
    let (state, _) = PortalState::open_with(key, &dir, options)
        .map_err(|e| anyhow::anyhow!("cannot open the portal's licenses directory: {e}"))?;
    Ok(server::router(state))
}

/// Starts a portal on `127.0.0.1` at a free port, with the system clock and default renewal
/// windows, and returns its base URL (`http://127.0.0.1:PORT`) and the server task. Aborting the
/// task stops the portal.
pub async fn start_local(
    key: IssuerKey,
    dir: PathBuf,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let (state, _) = tokio::task::spawn_blocking(move || {
        PortalState::open_with(key, dir, PortalOptions::default())
    })
    .await?
    .map_err(|e| anyhow::anyhow!("cannot open the portal's licenses directory: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let handle = tokio::spawn(async move {
        if let Err(e) = server::serve(listener, state, std::future::pending()).await {
            tracing::error!(error = %e, "the in-process license portal stopped");
        }
    });
    Ok((url, handle))
}
