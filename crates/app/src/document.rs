//! The stored license document of a target ([`SlotDocument`]: the installed files verbatim with
//! their claims, the auto-update flag, delivery and update state) and what an agent last reported
//! about its server ([`ServerReport`]), with the conversion from signed claims to the domain's
//! [`LicenseTerms`]. The store versions these documents without knowing their shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tallyman_domain::install::{check_install, InstallTarget};
use tallyman_domain::license::{LicenseTerms, SectionType, UnitType};
use tallyman_domain::product::Product;
use tallyman_license::LicenseClaims;
use tallyman_store::{LicenseSlot, LicenseSlotText, ManagedServer, TargetKind};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// The console's license lives in the slot with the nil UUID.
pub const CONSOLE_TARGET: Uuid = Uuid::nil();

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
    /// Parses a slot read as text (bulk reads), straight into the document.
    pub fn from_text(slot: &LicenseSlotText) -> AppResult<Self> {
        serde_json::from_str(&slot.document).map_err(|e| {
            AppError::Internal(format!("corrupt license slot {}: {e}", slot.target_uid))
        })
    }

    /// Parses a stored slot, consuming it (no copy of the document is made).
    pub fn from_stored(slot: LicenseSlot) -> AppResult<Self> {
        let target = slot.target_uid;
        serde_json::from_value(slot.document)
            .map_err(|e| AppError::Internal(format!("corrupt license slot {target}: {e}")))
    }

    pub fn from_slot(slot: Option<&LicenseSlot>) -> AppResult<Self> {
        match slot {
            Some(s) => serde_json::from_value(s.document.clone()).map_err(|e| {
                AppError::Internal(format!("corrupt license slot {}: {e}", s.target_uid))
            }),
            None => Ok(Self::default()),
        }
    }

    /// The file that names the licensee and ids first: the instance part of a merged license.
    pub fn primary(&self) -> Option<&InstalledFile> {
        self.files
            .iter()
            .find(|f| f.claims.section_types.contains(&SectionType::Instance))
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

/// Domain terms from a verified file's claims. Usage counters are filled in later from the
/// server's report.
pub fn terms_from_claims(c: &LicenseClaims) -> LicenseTerms {
    let mut t = LicenseTerms::new(c.product, c.license_type);
    t.edition = Some(c.edition.clone()).filter(|e| !e.is_empty());
    t.packages = c.packages.clone();
    t.section_types = c.section_types.clone();
    t.cloud_connect = c.cloud_connect;
    t.unit_type = c.unit_type.unwrap_or(UnitType::Unknown);
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
