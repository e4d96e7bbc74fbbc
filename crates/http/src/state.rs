//! The state every handler shares ([`AppState`]). Kept apart from the router so resource
//! modules depend on it, not on each other.

use std::collections::HashMap;
use std::ops::Deref;

use axum::extract::FromRef;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tallyman_app::{App, Clock, LicensePortal};
use tallyman_license::TrustStore;
use tallyman_store::Store;
use tokio::task::AbortHandle;
use uuid::Uuid;

pub use crate::config::HttpConfig;

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
    /// Bounds concurrent password verification (see `password_gate::HashGate`).
    pub hash_gate: Arc<crate::password_gate::HashGate>,
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
            hash_gate: Arc::new(crate::password_gate::HashGate::per_core()),
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

impl FromRef<AppState> for Arc<HttpConfig> {
    fn from_ref(state: &AppState) -> Self {
        state.config.clone()
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}
