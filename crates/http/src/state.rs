//! The state every handler shares ([`AppState`]) and the wire layer's settings
//! ([`HttpConfig`]). Kept apart from the router so resource modules depend on it, not on each
//! other.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tallyman_app::{App, Clock, LicensePortal};
use tallyman_license::TrustStore;
use tallyman_store::Store;
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::auth;

/// HTTP-layer settings. `serve` builds them from flags, environment and the config file.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted; larger ones get 413.
    pub body_limit: usize,
    /// How long an async-capable operation may run before the caller gets 202.
    pub async_budget: Duration,
    /// Answer every async-capable operation with 202 (for testing client polling loops).
    pub force_async: bool,
    /// How long a successful action's result (and its idempotency record) is kept.
    pub result_retention: Duration,
    /// How long a failed or cancelled action's result is kept.
    pub failure_retention: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Failed logins per (user name, address) within `login_window` before 429.
    pub login_max_failures: u32,
    pub login_window: Duration,
    /// Largest page a collection returns (`limit` upper bound).
    pub max_page_size: usize,
    /// Base URL clients reach this server at, for `Location` headers; the request's Host
    /// header is used when unset.
    pub public_url: Option<String>,
    /// Day of the month from which reports still waiting for approval are finalized
    /// automatically.
    pub report_finalize_day: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 4 * 1024 * 1024,
            async_budget: Duration::seconds(30),
            force_async: false,
            result_retention: Duration::minutes(5),
            failure_retention: Duration::hours(1),
            access_token_ttl: auth::default_access_ttl(),
            refresh_token_ttl: auth::default_refresh_ttl(),
            login_max_failures: 5,
            login_window: Duration::minutes(15),
            max_page_size: 500,
            public_url: None,
            report_finalize_day: 3,
        }
    }
}

/// Everything handlers share, passed through axum's `State`: the application (storage, clock,
/// trusted issuers, portal; reached through `Deref`) plus what only the wire layer needs.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub config: Arc<HttpConfig>,
    /// Installation id and date, for `/about`.
    pub installation: (Uuid, DateTime<Utc>),
    /// Actions still running on this node, so a cancel can stop them.
    pub running: Arc<Mutex<HashMap<(Uuid, Uuid), AbortHandle>>>,
    /// The indexed license lists of every server kind (see `licensing::list`).
    pub lists: Arc<crate::licensing::list::Lists>,
    /// Request metrics, exposed on the metrics listener.
    pub metrics: crate::metrics::Metrics,
}

impl AppState {
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: HttpConfig,
    ) -> anyhow::Result<Self> {
        let installation = store.installation(clock.now()).await?;
        Ok(Self {
            app: App::new(store, clock),
            config: Arc::new(config),
            installation,
            running: Arc::default(),
            lists: Arc::default(),
            metrics: crate::metrics::Metrics::default(),
        })
    }

    pub fn with_trust(mut self, trust: TrustStore) -> Self {
        self.app = self.app.with_trust(trust);
        self
    }

    pub fn with_portal(mut self, portal: Arc<dyn LicensePortal>) -> Self {
        self.app = self.app.with_portal(portal);
        self
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}
