//! Records the store persists. These are storage shapes, not wire shapes: the HTTP layer maps
//! them to the VSPC resources.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tallyman_domain::Product;
use uuid::Uuid;

/// Where an organization sits in the provider → reseller → company tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrganizationType {
    Provider,
    Reseller,
    Company,
}

impl OrganizationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "Provider",
            Self::Reseller => "Reseller",
            Self::Company => "Company",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "provider" => Some(Self::Provider),
            "reseller" => Some(Self::Reseller),
            "company" => Some(Self::Company),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub uid: Uuid,
    pub name: String,
    pub kind: OrganizationType,
    /// The managing organization: the provider for resellers and direct companies, a reseller
    /// for its companies, `None` for the provider itself.
    pub parent_uid: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The sixteen VSPC user roles. Which organization type a role belongs to decides what its
/// holder may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    PortalAdministrator,
    PortalOperator,
    ReadOnlyUser,
    SiteAdministrator,
    LocationAdministrator,
    LocationUser,
    CompanyOwner,
    CompanyAdministrator,
    CompanyInvoiceAuditor,
    CompanyTenant,
    Subtenant,
    ServiceProviderGlobalAdministrator,
    ServiceProviderAdministrator,
    ServiceProviderOperator,
    ServiceProviderUser,
    ServiceProviderInvoiceAuditor,
}

impl Role {
    pub const ALL: [Role; 16] = [
        Role::PortalAdministrator,
        Role::PortalOperator,
        Role::ReadOnlyUser,
        Role::SiteAdministrator,
        Role::LocationAdministrator,
        Role::LocationUser,
        Role::CompanyOwner,
        Role::CompanyAdministrator,
        Role::CompanyInvoiceAuditor,
        Role::CompanyTenant,
        Role::Subtenant,
        Role::ServiceProviderGlobalAdministrator,
        Role::ServiceProviderAdministrator,
        Role::ServiceProviderOperator,
        Role::ServiceProviderUser,
        Role::ServiceProviderInvoiceAuditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PortalAdministrator => "PortalAdministrator",
            Role::PortalOperator => "PortalOperator",
            Role::ReadOnlyUser => "ReadOnlyUser",
            Role::SiteAdministrator => "SiteAdministrator",
            Role::LocationAdministrator => "LocationAdministrator",
            Role::LocationUser => "LocationUser",
            Role::CompanyOwner => "CompanyOwner",
            Role::CompanyAdministrator => "CompanyAdministrator",
            Role::CompanyInvoiceAuditor => "CompanyInvoiceAuditor",
            Role::CompanyTenant => "CompanyTenant",
            Role::Subtenant => "Subtenant",
            Role::ServiceProviderGlobalAdministrator => "ServiceProviderGlobalAdministrator",
            Role::ServiceProviderAdministrator => "ServiceProviderAdministrator",
            Role::ServiceProviderOperator => "ServiceProviderOperator",
            Role::ServiceProviderUser => "ServiceProviderUser",
            Role::ServiceProviderInvoiceAuditor => "ServiceProviderInvoiceAuditor",
        }
    }

    /// Parses a role name, ignoring case.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The organization type a holder of this role must belong to.
    pub fn organization_type(self) -> OrganizationType {
        match self {
            Role::PortalAdministrator
            | Role::PortalOperator
            | Role::ReadOnlyUser
            | Role::SiteAdministrator => OrganizationType::Provider,
            Role::ServiceProviderGlobalAdministrator
            | Role::ServiceProviderAdministrator
            | Role::ServiceProviderOperator
            | Role::ServiceProviderUser
            | Role::ServiceProviderInvoiceAuditor => OrganizationType::Reseller,
            _ => OrganizationType::Company,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub uid: Uuid,
    pub name: String,
    pub role: Role,
    pub organization_uid: Uuid,
    /// PHC-formatted argon2 hash; never the password itself.
    pub password_hash: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("organization_uid", &self.organization_uid)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// A bearer token as stored: only its SHA-256 digest (hex), never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: String,
    pub user_uid: Uuid,
    pub kind: TokenKind,
    pub read_only: bool,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionStatus {
    Running,
    Succeed,
    Canceled,
    Failed,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Running => "running",
            ActionStatus::Succeed => "succeed",
            ActionStatus::Canceled => "canceled",
            ActionStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "succeed" => Some(Self::Succeed),
            "canceled" => Some(Self::Canceled),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The response an action produced, kept for replay and for `/asyncActions/{id}/result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// One tracked request: both the idempotency record for an `X-Request-id` and the async action
/// clients poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub id: Uuid,
    pub user_uid: Uuid,
    pub action_name: String,
    /// Digest of method, path, query and body: a repeated id must carry the same request.
    pub fingerprint: String,
    pub status: ActionStatus,
    pub request_body: Option<String>,
    /// JSON object of string arrays, as `AsyncActionInfo.queryParameters` shows it.
    pub query_parameters: serde_json::Value,
    pub response: Option<StoredResponse>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// After this the record is gone for every purpose (replay, polling, result).
    pub expires_at: DateTime<Utc>,
}

/// What happened when a new action record was offered to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginAction {
    Started,
    Exists(ActionRecord),
}

/// The kinds of managed server that carry a license, plus the console itself. Each kind is one
/// licensed [`Product`]; the store keys servers and license slots by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TargetKind {
    CloudConnectSite,
    BackupServer,
    VOneServer,
    Vb365Server,
    Console,
}

impl TargetKind {
    /// Every kind: the console first, then the managed servers.
    pub const ALL: [TargetKind; 5] = [
        TargetKind::Console,
        TargetKind::CloudConnectSite,
        TargetKind::BackupServer,
        TargetKind::VOneServer,
        TargetKind::Vb365Server,
    ];

    /// The kinds that are managed servers (everything but the console).
    pub const SERVERS: [TargetKind; 4] = [
        TargetKind::CloudConnectSite,
        TargetKind::BackupServer,
        TargetKind::VOneServer,
        TargetKind::Vb365Server,
    ];

    /// The product whose license this kind of target carries.
    pub const fn product(self) -> Product {
        match self {
            TargetKind::CloudConnectSite => Product::CloudConnectSite,
            TargetKind::BackupServer => Product::BackupAndReplication,
            TargetKind::VOneServer => Product::VOne,
            TargetKind::Vb365Server => Product::Vb365,
            TargetKind::Console => Product::Console,
        }
    }

    /// The kind of target that carries `product`'s license.
    pub const fn of_product(product: Product) -> TargetKind {
        match product {
            Product::CloudConnectSite => TargetKind::CloudConnectSite,
            Product::BackupAndReplication => TargetKind::BackupServer,
            Product::VOne => TargetKind::VOneServer,
            Product::Vb365 => TargetKind::Vb365Server,
            Product::Console => TargetKind::Console,
        }
    }

    /// The name the store (and the CLI) uses for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::CloudConnectSite => "CloudConnectSite",
            TargetKind::BackupServer => "BackupServer",
            TargetKind::VOneServer => "VOneServer",
            TargetKind::Vb365Server => "Vb365Server",
            TargetKind::Console => "Console",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// A license slot with its document as stored JSON text, for callers that parse it straight
/// into their own types (bulk reads skip building a JSON tree first).
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseSlotText {
    pub target_uid: Uuid,
    pub kind: TargetKind,
    pub document: String,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

/// The answer of [`crate::Store::inventory_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryChanges {
    /// The inventory generation the answer is complete up to.
    pub generation: i64,
    /// Targets changed since the generation asked about; `None` when the log was pruned past
    /// it.
    pub targets: Option<Vec<Uuid>>,
}

/// A Cloud Connect site, Backup & Replication, Veeam ONE or Microsoft 365 backup server.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedServer {
    pub uid: Uuid,
    pub kind: TargetKind,
    pub name: String,
    /// The organization the server belongs to; decides who may see and manage it.
    pub organization_uid: Uuid,
    /// The agent that registered it, if any.
    pub agent_uid: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// What the server last reported about itself (license state and counters); its shape is
    /// owned by the HTTP layer. `null` until the first report.
    pub reported: serde_json::Value,
}

/// What is installed on one target (a server, or the console with the nil UUID). The
/// document's shape is owned by the HTTP layer; the store only versions it.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseSlot {
    pub target_uid: Uuid,
    pub kind: TargetKind,
    pub document: serde_json::Value,
    /// Increases by one with every change; writers state the revision they read.
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

/// One entry of a target's license history.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseEvent {
    pub target_uid: Uuid,
    pub at: DateTime<Utc>,
    /// The user or agent that caused it.
    pub actor: String,
    /// `install`, `update`, `patch`, `delete`, `report`, …
    pub action: String,
    pub detail: serde_json::Value,
}

/// An agent on a managed server, enrolled with an organization's enrollment token.
#[derive(Clone, PartialEq)]
pub struct Agent {
    pub uid: Uuid,
    pub organization_uid: Uuid,
    pub name: String,
    /// SHA-256 of the agent's bearer token.
    pub token_digest: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("uid", &self.uid)
            .field("organization_uid", &self.organization_uid)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A token an organization hands to its agents so they can enroll.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentToken {
    pub digest: String,
    pub organization_uid: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// One usage sample: how many workloads of a type an organization had on a server at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSample {
    pub server_uid: Uuid,
    /// The organization whose workloads these are (for a Cloud Connect site: the tenant).
    pub organization_uid: Uuid,
    pub workload_type: String,
    /// Platform type id (`vSphere`, `HyperV`, …; `Any` when the product does not say).
    pub platform: String,
    pub sampled_at: DateTime<Utc>,
    /// Licensed workloads counted against the license.
    pub used: i64,
    /// Workloads first protected this calendar month (free until the 1st).
    pub new: i64,
    /// Tenant workloads running on the tenant's own rental license (never charged).
    pub rental: i64,
}

/// Per server, organization, workload type and platform: a month's maxima or latest counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAggregate {
    pub server_uid: Uuid,
    pub organization_uid: Uuid,
    pub workload_type: String,
    pub platform: String,
    pub used: i64,
    pub new: i64,
    pub rental: i64,
}

/// One row of the points weights table.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightRow {
    pub product: String,
    /// `*` for any edition.
    pub edition: String,
    pub workload_type: String,
    pub weight: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    ApprovalRequired,
    Finalization,
    Approved,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::ApprovalRequired => "ApprovalRequired",
            ReportStatus::Finalization => "Finalization",
            ReportStatus::Approved => "Approved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ApprovalRequired" => Some(Self::ApprovalRequired),
            "Finalization" => Some(Self::Finalization),
            "Approved" => Some(Self::Approved),
            _ => None,
        }
    }
}

/// A stored monthly report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRecord {
    pub id: i64,
    pub owner_uid: Uuid,
    /// `YYYY-MM`.
    pub month: String,
    pub status: ReportStatus,
    pub generated_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    /// The `SingleLicenseReport` document.
    pub document: serde_json::Value,
    /// The report's flat lines as JSON text, written with the report; reads leave it `None`
    /// (see `Store::report_lines`).
    pub lines: Option<String>,
}

/// What storing a generated report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportWrite {
    Created(i64),
    Replaced(i64),
    /// The month's report is approved and stays as it is.
    KeptApproved(i64),
}

/// An API key: a bearer credential of a user that does not expire; revoked by deleting it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    /// SHA-256 of the key; the key itself is shown once and never stored.
    pub digest: String,
    pub user_uid: Uuid,
    pub description: String,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("user_uid", &self.user_uid)
            .field("description", &self.description)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// The login attempts of one (user name, address) in the current throttle window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempts {
    /// Attempts in this window, the one just reserved included.
    pub count: u32,
    pub window_start: DateTime<Utc>,
}

/// A managed server as the monthly report reads it: only the columns and reported fields the
/// report needs, with the primary license of its slot (never the whole documents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportServer {
    pub uid: Uuid,
    pub kind: TargetKind,
    pub name: String,
    pub organization_uid: Uuid,
    pub created_at: DateTime<Utc>,
    /// `installationId` of the server's reported document, when it is a string.
    pub installation_id: Option<String>,
    /// `productVersion` of the server's reported document, when it is a string.
    pub product_version: Option<String>,
    /// Of the slot's primary file: the first with an `Instance` section, else the first.
    pub license: Option<ReportLicense>,
}

/// The fields of a license file the monthly report reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLicense {
    pub license_id: Uuid,
    pub support_id: String,
    pub edition: String,
    /// The licensee company.
    pub company: String,
}

/// Where a generated report's lines are: chunks staged under `batch`, read in `order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLineChunks {
    pub batch: i64,
    pub order: Vec<i64>,
}
