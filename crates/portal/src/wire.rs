//! JSON bodies of the portal's HTTP API, shared by the server and [`crate::client`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::StoredLicense;

/// Answer of `GET /portal/v1/licenses/{licenseId}/latest` when a newer file exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestLicense {
    /// The license id asked for.
    pub license_id: Uuid,
    /// The file's `iat`.
    pub issued_at: DateTime<Utc>,
    /// The file's expiration (`null` for Perpetual).
    pub expiration_date: Option<DateTime<Utc>>,
    /// The license file, canonical armour.
    pub license: String,
}

impl From<&StoredLicense> for LatestLicense {
    fn from(stored: &StoredLicense) -> Self {
        Self {
            license_id: stored.claims.license_id,
            issued_at: stored.claims.iat,
            expiration_date: stored.claims.expiration_date,
            license: stored.armoured.clone(),
        }
    }
}

/// Answer of `POST /portal/v1/licenses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportedLicense {
    /// The imported file's license id.
    pub license_id: Uuid,
    /// The imported file's `iat`.
    pub issued_at: DateTime<Utc>,
    /// The imported file's expiration (`null` for Perpetual).
    pub expiration_date: Option<DateTime<Utc>>,
    /// Whether it is now the newest file for its license id (an older file is stored but not
    /// served).
    pub newest: bool,
}

/// Answer of `GET /portal/v1/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Always `"ok"`.
    pub status: String,
    /// Id of the portal's signing key (`k4.pid.…`); servers must trust its public key.
    pub key_id: String,
    /// Number of distinct license ids the portal serves.
    pub licenses: usize,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// What went wrong, for a program: one of the `CODE_*` constants. Lets a client tell "this
    /// license id is unknown" from "this URL is not a portal endpoint", which are both 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `code` of a 404 for a license id the portal does not know.
pub const CODE_UNKNOWN_LICENSE: &str = "unknownLicense";
/// `code` of a malformed request or a refused license file (400).
pub const CODE_BAD_REQUEST: &str = "badRequest";
/// `code` of an import that contradicts a held file (409).
pub const CODE_CONFLICT: &str = "conflict";
/// `code` of a request to a path that is not part of the API (404).
pub const CODE_NO_SUCH_ENDPOINT: &str = "noSuchEndpoint";
/// `code` of a known path called with the wrong method (405).
pub const CODE_METHOD_NOT_ALLOWED: &str = "methodNotAllowed";
/// `code` of a request body the portal will not read (too large, unreadable).
pub const CODE_BAD_BODY: &str = "badBody";
/// `code` of a failure inside the portal (500).
pub const CODE_INTERNAL: &str = "internal";
