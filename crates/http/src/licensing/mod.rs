//! The license resources of sites, Backup & Replication, Veeam ONE and Microsoft 365 servers and
//! the console: what is stored per target ([`SlotDocument`]), how a stored license becomes
//! domain terms and a status, and the install / update / modify / delete pipelines every
//! resource shares. The per-resource modules hold the handlers and wire shapes.

pub mod backup_servers;
pub mod console;
pub mod ops;
pub mod patch;
pub mod resources;
pub mod sites;
pub mod upload;
pub mod vb365_servers;
pub mod vone_servers;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tallyman_domain::install::{check_install, InstallAction, InstallTarget};
use tallyman_domain::license::{
    CloudConnect, LicenseTerms, LicenseType, Package, SectionType, UnitType,
};
use tallyman_domain::product::Product;
use tallyman_domain::status::{evaluate, Evaluation, ServerState};
use tallyman_license::{LicenseClaims, VerifiedLicense};
use tallyman_store::{LicenseEvent, LicenseSlot, ManagedServer, Role, StoreError, TargetKind};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorType};
use crate::AppState;

/// The console's license lives in the slot with the nil UUID.
pub const CONSOLE_TARGET: Uuid = Uuid::nil();

/// Roles the contract admits on site licenses.
pub const SITE_ROLES: &[Role] = &[Role::PortalAdministrator, Role::SiteAdministrator];
/// Roles the contract admits on Backup & Replication, Veeam ONE and Microsoft 365 licenses.
pub const SERVER_ROLES: &[Role] = &[
    Role::PortalAdministrator,
    Role::ServiceProviderGlobalAdministrator,
    Role::ServiceProviderAdministrator,
    Role::SiteAdministrator,
];
/// Roles the contract admits on the console license.
pub const CONSOLE_ROLES: &[Role] = &[Role::PortalAdministrator];

pub fn product_of(kind: TargetKind) -> Product {
    match kind {
        TargetKind::CloudConnectSite => Product::CloudConnectSite,
        TargetKind::BackupServer => Product::BackupAndReplication,
        TargetKind::VOneServer => Product::VOne,
        TargetKind::Vb365Server => Product::Vb365,
        TargetKind::Console => Product::Console,
    }
}

/// One installed license file, kept verbatim for delivery to the agent and parsed for reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledFile {
    pub license_id: Uuid,
    pub armoured: String,
    pub key_id: String,
    pub claims: LicenseClaims,
    pub installed_at: DateTime<Utc>,
}

/// The outcome of the last license update attempt (the console shows it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastUpdate {
    pub at: DateTime<Utc>,
    /// `Success`, `Warning` or `Error`.
    pub status: String,
    pub message: String,
}

/// What is installed on one target, as stored in its license slot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotDocument {
    /// One file, or a socket and an instance file merged on a Backup & Replication server.
    #[serde(default)]
    pub files: Vec<InstalledFile>,
    /// The server fell back to Community Edition (a deleted Backup & Replication license).
    #[serde(default)]
    pub community: bool,
    #[serde(default)]
    pub auto_update_enabled: bool,
    /// The agent has not yet confirmed it applied the current files.
    #[serde(default)]
    pub pending_delivery: bool,
    #[serde(default)]
    pub last_update: Option<LastUpdate>,
}

impl SlotDocument {
    pub fn from_slot(slot: Option<&LicenseSlot>) -> ApiResult<Self> {
        match slot {
            Some(s) => serde_json::from_value(s.document.clone()).map_err(|e| {
                ApiError::internal(format!("corrupt license slot {}: {e}", s.target_uid))
            }),
            None => Ok(Self::default()),
        }
    }

    /// The file that names the licensee and ids first: the instance part of a merged license.
    pub fn primary(&self) -> Option<&InstalledFile> {
        self.files
            .iter()
            .find(|f| {
                f.claims
                    .section_types
                    .iter()
                    .any(|s| matches!(s, tallyman_license::SectionType::Instance))
            })
            .or_else(|| self.files.first())
    }

    /// The license terms of the installed files, merged when there are two.
    pub fn terms(&self, target: Product) -> Option<LicenseTerms> {
        let mut files = self.files.iter();
        let first = files.next()?;
        let mut terms = terms_from_claims(&first.claims);
        for more in files {
            let incoming = terms_from_claims(&more.claims);
            terms = merge_terms(target, &terms, &incoming);
        }
        terms.auto_update_enabled = self.auto_update_enabled;
        Some(terms)
    }
}

/// Counters and state a server reported about itself (through its agent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerReport {
    /// `licensed`, `community`, `unlicensed` or `invalid`.
    #[serde(default)]
    pub license_state: Option<String>,
    #[serde(default)]
    pub license_ids: Vec<Uuid>,
    #[serde(default)]
    pub used_units: Option<f64>,
    #[serde(default)]
    pub used_sockets: Option<f64>,
    #[serde(default)]
    pub used_capacity: Option<f64>,
    #[serde(default)]
    pub protected_users: Option<u32>,
    /// The product's installation id; two servers sharing one are clones, left out of reports
    /// until the id is regenerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<String>,
    /// Governed by Veeam Backup Enterprise Manager, which pushes its own license.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub managed_by_enterprise_manager: bool,
    /// The product's version, e.g. `12.3.1.1139`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
}

/// The oldest major version of each product whose usage reports can be trusted; older servers
/// are listed as unsupported in reports instead of being counted.
pub fn minimum_supported_major(kind: TargetKind) -> u32 {
    match kind {
        TargetKind::CloudConnectSite | TargetKind::BackupServer | TargetKind::VOneServer => 12,
        TargetKind::Vb365Server => 7,
        TargetKind::Console => 0,
    }
}

impl ServerReport {
    /// Whether the reported product version is older than the oldest supported one.
    pub fn unsupported(&self, kind: TargetKind) -> bool {
        self.product_version
            .as_deref()
            .and_then(|v| v.trim().split('.').next())
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major < minimum_supported_major(kind))
    }

    pub fn of(server: &ManagedServer) -> Self {
        serde_json::from_value(server.reported.clone()).unwrap_or_default()
    }
}

/// The terms a merge of two files results in, as the install rules compute them.
fn merge_terms(target: Product, current: &LicenseTerms, incoming: &LicenseTerms) -> LicenseTerms {
    // The merge rules live in the domain's install check; evaluate it at the incoming file's
    // own issue time so expiry never blocks recomputing a stored merge.
    match check_install(
        &InstallTarget::new(target),
        incoming,
        Some(current),
        DateTime::<Utc>::MIN_UTC,
    ) {
        Ok(plan) => plan.resulting,
        Err(_) => incoming.clone(),
    }
}

fn wire_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn license_product(p: tallyman_license::Product) -> Product {
    match p {
        tallyman_license::Product::CloudConnect => Product::CloudConnectSite,
        tallyman_license::Product::BackupAndReplication => Product::BackupAndReplication,
        tallyman_license::Product::VOne => Product::VOne,
        tallyman_license::Product::Vb365 => Product::Vb365,
        tallyman_license::Product::Console => Product::Console,
    }
}

/// Domain terms from a verified file's claims. Usage counters are filled in later from the
/// server's report.
pub fn terms_from_claims(c: &LicenseClaims) -> LicenseTerms {
    let mut t = LicenseTerms::new(
        license_product(c.product),
        LicenseType::from_wire(&wire_of(&c.license_type)).unwrap_or(LicenseType::Unknown),
    );
    t.edition = Some(c.edition.clone()).filter(|e| !e.is_empty());
    t.packages = c
        .packages
        .iter()
        .filter_map(|p| Package::from_wire(&wire_of(p)).ok())
        .collect();
    t.section_types = c
        .section_types
        .iter()
        .filter_map(|s| SectionType::from_wire(&wire_of(s)).ok())
        .collect();
    t.cloud_connect =
        CloudConnect::from_wire(&wire_of(&c.cloud_connect)).unwrap_or(CloudConnect::Unknown);
    t.unit_type = c
        .unit_type
        .as_ref()
        .and_then(|u| UnitType::from_wire(&wire_of(u)).ok())
        .unwrap_or(UnitType::Unknown);
    t.units = c.units.or(c.instances);
    t.sockets = c.sockets.map(f64::from);
    t.capacity = c.capacity;
    t.licensed_users = c.licensed_users;
    t.expiration = c.expiration_date;
    t.support_expiration = c.support_expiration_date;
    t.has_license_id = true;
    t.licensee_company = Some(c.company.clone()).filter(|s| !s.is_empty());
    t
}

/// A target as a request sees it: the server (absent for the console), what is installed and
/// the computed status.
pub struct Target {
    pub kind: TargetKind,
    pub uid: Uuid,
    pub server: Option<ManagedServer>,
    /// The slot as read (its revision guards the next write); `None` when nothing was ever
    /// installed. Its `document` may be left `null` when `doc` came from the cache.
    pub slot: Option<LicenseSlot>,
    pub doc: Arc<SlotDocument>,
    /// `terms()` computed once per request.
    terms: OnceLock<Option<LicenseTerms>>,
    /// `evaluate()` for the instant it was first asked for (one instant per request).
    evaluation: OnceLock<(DateTime<Utc>, Evaluation)>,
}

impl Target {
    pub fn new(
        kind: TargetKind,
        uid: Uuid,
        server: Option<ManagedServer>,
        slot: Option<LicenseSlot>,
        doc: Arc<SlotDocument>,
    ) -> Self {
        Target {
            kind,
            uid,
            server,
            slot,
            doc,
            terms: OnceLock::new(),
            evaluation: OnceLock::new(),
        }
    }

    pub fn product(&self) -> Product {
        product_of(self.kind)
    }

    /// Current terms with the server's reported usage.
    pub fn terms(&self) -> Option<LicenseTerms> {
        self.terms.get_or_init(|| self.compute_terms()).clone()
    }

    fn compute_terms(&self) -> Option<LicenseTerms> {
        let mut terms = self.doc.terms(self.product())?;
        if let Some(server) = &self.server {
            let report = ServerReport::of(server);
            terms.used_units = report.used_units;
            terms.used_sockets = report.used_sockets;
            terms.used_capacity = report.used_capacity;
            terms.protected_users = report.protected_users;
        }
        Some(terms)
    }

    /// Status and message, computed from the stored license and the time now.
    pub fn evaluate(&self, now: DateTime<Utc>) -> Evaluation {
        if let Some((at, evaluation)) = self.evaluation.get() {
            if *at == now {
                return evaluation.clone();
            }
        }
        let evaluation = self.compute_evaluation(now);
        let _ = self.evaluation.set((now, evaluation.clone()));
        evaluation
    }

    fn compute_evaluation(&self, now: DateTime<Utc>) -> Evaluation {
        let report = self
            .server
            .as_ref()
            .map(ServerReport::of)
            .unwrap_or_default();
        let reported = self
            .server
            .as_ref()
            .is_some_and(|s| s.last_seen_at.is_some());
        let state = ServerState {
            target: self.product(),
            license_info_collected: self.slot.is_some()
                || reported
                || self.kind == TargetKind::Console,
            license_file_invalid: report.license_state.as_deref() == Some("invalid"),
            auto_update_failing: self.doc.auto_update_enabled
                && self
                    .doc
                    .last_update
                    .as_ref()
                    .is_some_and(|u| u.status == "Error"),
            usage_report_submitted_recently: false,
        };
        evaluate(self.terms().as_ref(), &state, now)
    }
}

/// Loads a target the caller may see; anything outside the caller's scope is "not found".
pub async fn load_target(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    uid: Uuid,
) -> ApiResult<Target> {
    let not_found = || {
        ApiError::not_found(format!(
            "{} {uid} was not found.",
            product_of(kind).display_name()
        ))
    };
    let server = if kind == TargetKind::Console {
        None
    } else {
        let server = state
            .store
            .server(uid)
            .await?
            .filter(|s| s.kind == kind)
            .ok_or_else(not_found)?;
        if !caller.scope(state).await?.contains(server.organization_uid) {
            return Err(not_found());
        }
        Some(server)
    };
    let slot = state.store.license_slot(uid).await?;
    let doc = cached_doc(state, slot.as_ref())?;
    Ok(Target::new(kind, uid, server, slot, doc))
}

/// The parsed document of a slot, from the per-node cache when the revision matches. Documents
/// are immutable per revision, so a cached parse is always the stored one; the revision itself
/// is always read from the database, so every node sees every write.
pub fn cached_doc(state: &AppState, slot: Option<&LicenseSlot>) -> ApiResult<Arc<SlotDocument>> {
    let Some(slot) = slot else {
        return Ok(Arc::new(SlotDocument::default()));
    };
    if let Ok(cache) = state.slot_cache.read() {
        if let Some((rev, doc)) = cache.get(&slot.target_uid) {
            if *rev == slot.revision {
                return Ok(doc.clone());
            }
        }
    }
    let doc = Arc::new(SlotDocument::from_slot(Some(slot))?);
    if let Ok(mut cache) = state.slot_cache.write() {
        cache.insert(slot.target_uid, (slot.revision, doc.clone()));
    }
    Ok(doc)
}

/// Every target of one kind, whoever owns it.
pub async fn load_all_targets(state: &AppState, kind: TargetKind) -> ApiResult<Vec<Target>> {
    let servers = state.store.servers(Some(kind)).await?;
    let mut docs = slot_documents(state, kind).await?;
    Ok(servers
        .into_iter()
        .map(|server| match docs.remove(&server.uid) {
            Some((slot, doc)) => Target::new(kind, server.uid, Some(server), Some(slot), doc),
            None => Target::new(
                kind,
                server.uid,
                Some(server),
                None,
                Arc::new(SlotDocument::default()),
            ),
        })
        .collect())
}

/// Every license slot of one kind with its parsed document. Only the revisions are read in bulk;
/// documents come from the cache, and changed ones from the database (all in one query when the
/// cache is cold). The returned slots carry a `null` document: the parsed one is beside them.
pub async fn slot_documents(
    state: &AppState,
    kind: TargetKind,
) -> ApiResult<HashMap<Uuid, (LicenseSlot, Arc<SlotDocument>)>> {
    let revisions = state.store.license_slot_revisions(kind).await?;
    let mut out = HashMap::with_capacity(revisions.len());
    let mut missing = Vec::new();
    {
        // The read guard ends here, before `cached_doc` takes the write lock below.
        let cache = state.slot_cache.read().ok();
        for (uid, revision, updated_at) in revisions {
            let hit = cache.as_ref().and_then(|c| {
                c.get(&uid)
                    .filter(|(r, _)| *r == revision)
                    .map(|(_, d)| d.clone())
            });
            match hit {
                Some(doc) => {
                    let slot = LicenseSlot {
                        target_uid: uid,
                        kind,
                        document: Value::Null,
                        revision,
                        updated_at,
                    };
                    out.insert(uid, (slot, doc));
                }
                None => missing.push(uid),
            }
        }
    }
    if missing.len() > 64 {
        for slot in state.store.license_slots(kind).await? {
            if out.contains_key(&slot.target_uid) {
                continue;
            }
            let doc = cached_doc(state, Some(&slot))?;
            out.insert(
                slot.target_uid,
                (
                    LicenseSlot {
                        document: Value::Null,
                        ..slot
                    },
                    doc,
                ),
            );
        }
    } else {
        for uid in missing {
            if let Some(slot) = state.store.license_slot(uid).await? {
                let doc = cached_doc(state, Some(&slot))?;
                out.insert(
                    uid,
                    (
                        LicenseSlot {
                            document: Value::Null,
                            ..slot
                        },
                        doc,
                    ),
                );
            }
        }
    }
    Ok(out)
}

/// Every target of one kind rendered as its resource, with the organization that owns it,
/// reused by later requests until the inventory changes (on any node) or a status could change
/// with time.
pub struct ListView {
    generation: i64,
    valid_until: DateTime<Utc>,
    items: Arc<Vec<(Uuid, Value)>>,
}

impl Target {
    /// The next instant the computed status or message of this target can change by time alone:
    /// day counts change once a day relative to each date the rules count from.
    pub fn next_change(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let day = chrono::Duration::days(1);
        let mut next = now + chrono::Duration::hours(1);
        let eval = self.evaluate(now);
        let anchors = self
            .terms()
            .map(|t| vec![t.expiration, t.support_expiration, eval.grace_ends_at])
            .unwrap_or_default();
        for anchor in anchors.into_iter().flatten() {
            let ms = (anchor - now)
                .num_milliseconds()
                .rem_euclid(day.num_milliseconds());
            let step = if ms == 0 {
                day
            } else {
                chrono::Duration::milliseconds(ms)
            };
            next = next.min(now + step);
        }
        next
    }
}

/// The rendered list of every target of `kind` (all organizations), from the cache when it is
/// current.
pub async fn rendered_list(
    state: &AppState,
    kind: TargetKind,
) -> ApiResult<Arc<Vec<(Uuid, Value)>>> {
    let generation = state.store.inventory_generation().await?;
    let now = state.clock.now();
    if let Ok(cache) = state.list_cache.lock() {
        if let Some(view) = cache.get(&kind) {
            if view.generation == generation && now < view.valid_until {
                return Ok(view.items.clone());
            }
        }
    }
    // One rebuild at a time; requests that waited find the fresh list in the cache.
    let _rebuilding = state.list_rebuild.lock().await;
    if let Ok(cache) = state.list_cache.lock() {
        if let Some(view) = cache.get(&kind) {
            if view.generation == generation && now < view.valid_until {
                return Ok(view.items.clone());
            }
        }
    }
    let targets = load_all_targets(state, kind).await?;
    let mut valid_until = now + chrono::Duration::hours(1);
    let items: Vec<(Uuid, Value)> = targets
        .iter()
        .map(|t| {
            valid_until = valid_until.min(t.next_change(now));
            let org = t
                .server
                .as_ref()
                .map(|s| s.organization_uid)
                .unwrap_or_default();
            (org, resources::render_json(t, now))
        })
        .collect();
    let items = Arc::new(items);
    if let Ok(mut cache) = state.list_cache.lock() {
        cache.insert(
            kind,
            ListView {
                generation,
                valid_until,
                items: items.clone(),
            },
        );
    }
    Ok(items)
}

/// VSPC code 1300: a license operation failed.
pub fn license_failed(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorType::Logical, 1300, message)
}

/// VSPC code 1301: another license operation on the same target won the race.
pub fn license_busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorType::Logical,
        1301,
        "Another license operation on this target is in progress; try again.",
    )
}

/// Writes the target's new document with the revision it was read at, plus a history event.
pub async fn save(
    state: &AppState,
    target: &Target,
    doc: &SlotDocument,
    actor: &str,
    action: &str,
    detail: Value,
) -> ApiResult<()> {
    let now = state.clock.now();
    let slot = LicenseSlot {
        target_uid: target.uid,
        kind: target.kind,
        document: serde_json::to_value(doc).map_err(ApiError::internal)?,
        revision: 0,
        updated_at: now,
    };
    let event = LicenseEvent {
        target_uid: target.uid,
        at: now,
        actor: actor.to_string(),
        action: action.to_string(),
        detail,
    };
    match state
        .store
        .save_license_slot(&slot, target.slot.as_ref().map(|s| s.revision), &event)
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(license_busy()),
        Err(e) => Err(e.into()),
    }
}

/// Verifies an uploaded file against the trusted issuer keys.
pub fn verify_upload(state: &AppState, bytes: &[u8]) -> ApiResult<VerifiedLicense> {
    let trust = state.trust.read().map_err(ApiError::internal)?;
    tallyman_license::verify(bytes, &trust).map_err(|e| match e {
        tallyman_license::LicenseError::UnknownIssuer { key_id } => license_failed(format!(
            "The license file was signed by issuer key {key_id}, which this server does not \
             trust. Add the issuer's public key to the trusted keys."
        )),
        other => license_failed(format!("The license file is not valid: {other}")),
    })
}

/// Installs a verified file on a target: product fit, expiry, merge-or-replace, then one
/// atomic write. Used by manual installs and by updates.
pub async fn install_verified(
    state: &AppState,
    target: &Target,
    verified: VerifiedLicense,
    actor: &str,
    action: &str,
) -> ApiResult<SlotDocument> {
    let now = state.clock.now();
    let incoming = terms_from_claims(&verified.claims);
    let current = target.doc.terms(target.product());
    let install_target = InstallTarget {
        product: target.product(),
        managed_by_enterprise_manager: target
            .server
            .as_ref()
            .is_some_and(|s| ServerReport::of(s).managed_by_enterprise_manager),
    };
    let plan = check_install(
        &install_target,
        &incoming,
        current.as_ref().filter(|_| !target.doc.community),
        now,
    )
    .map_err(|refusal| license_failed(refusal.to_string()))?;
    let file = InstalledFile {
        license_id: verified.claims.license_id,
        armoured: verified.armoured.clone(),
        key_id: verified.key_id.clone(),
        claims: verified.claims.clone(),
        installed_at: now,
    };
    let mut doc = SlotDocument::clone(&target.doc);
    let merged = matches!(plan.action, InstallAction::Merge);
    if merged {
        // Keep the other section's file; the incoming one replaces any file of its own kind.
        let incoming_sections = &verified.claims.section_types;
        doc.files.retain(|f| {
            !f.claims
                .section_types
                .iter()
                .any(|s| incoming_sections.contains(s))
        });
        doc.files.push(file);
    } else {
        doc.files = vec![file];
    }
    doc.community = false;
    doc.auto_update_enabled = plan.resulting.auto_update_enabled;
    doc.pending_delivery = target.kind != TargetKind::Console;
    let detail = serde_json::json!({
        "licenseId": verified.claims.license_id,
        "keyId": verified.key_id,
        "type": wire_of(&verified.claims.license_type),
        "expirationDate": verified.claims.expiration_date,
        "merged": merged,
    });
    save(state, target, &doc, actor, action, detail).await?;
    Ok(doc)
}

/// Reloads a target after a write, so the response shows what is stored.
pub async fn reload(state: &AppState, caller: &Caller, target: &Target) -> ApiResult<Target> {
    load_target(state, caller, target.kind, target.uid).await
}
