//! Tallyman's application layer: what the license server *does*, between the wire layers (the
//! VSPC REST API, the agent API, the command line) and storage. It owns the stored license
//! documents and the one way targets are loaded, the install / auto-update / delete / update
//! operations, tenancy scopes, monthly report generation, live usage aggregation and the
//! background jobs. Rules come from `tallyman-domain`; persistence goes through
//! `tallyman_store::Store`. Nothing here knows HTTP.
//!
//! * [`document`]: the stored license document of a target and an agent's server report;
//! * [`target`]: [`Target`] and the loader ([`App::target`], [`App::targets`], …);
//! * [`licenses`]: install, auto-update, delete, update, and the guarded write ([`App::save`]);
//! * [`tenancy`]: [`Scope`], who sees which organizations;
//! * [`credentials`]: password hashes, bearer tokens and API keys at rest;
//! * [`reports`]: monthly report generation, finalization and points weights;
//! * [`usage`]: the month's live usage by organization and server;
//! * [`jobs`]: the auto-update and monthly report jobs;
//! * [`portal`]: how updates reach the license portal.

pub mod credentials;
pub mod document;
pub mod error;
pub mod jobs;
pub mod licenses;
pub mod portal;
pub mod reports;
pub mod target;
pub mod tenancy;
pub mod usage;

use std::sync::{Arc, RwLock};

use tallyman_license::TrustStore;
use tallyman_store::Store;

pub use document::{InstalledFile, LastUpdate, ServerReport, SlotDocument, CONSOLE_TARGET};
pub use error::{AppError, AppResult};
pub use portal::{LicensePortal, PortalFailure};
pub use tallyman_domain::{Clock, ManualClock, Month, SystemClock};
pub use target::{StoredTarget, Target};
pub use tenancy::Scope;

/// The application: storage, time, trusted issuers, the license portal and the per-node caches
/// every operation shares. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Issuer keys whose license files this server accepts.
    pub trust: Arc<RwLock<TrustStore>>,
    /// Where `update` asks for newer license files; `None` when no portal is configured.
    pub portal: Option<Arc<dyn LicensePortal>>,
    /// Parsed license documents by target and revision (bounded).
    doc_cache: Arc<target::DocCache>,
    /// License editions by target and revision, for live usage.
    edition_cache: Arc<usage::EditionCache>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            trust: Arc::new(RwLock::new(TrustStore::new())),
            portal: None,
            doc_cache: Arc::default(),
            edition_cache: Arc::default(),
        }
    }

    pub fn with_trust(mut self, trust: TrustStore) -> Self {
        self.trust = Arc::new(RwLock::new(trust));
        self
    }

    pub fn with_portal(mut self, portal: Arc<dyn LicensePortal>) -> Self {
        self.portal = Some(portal);
        self
    }
}
