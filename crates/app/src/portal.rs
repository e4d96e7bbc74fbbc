//! How the server reaches the license portal (the issuer service that `update` asks for newer
//! license files). `serve` plugs in the HTTP client; tests and demo mode plug in an in-process
//! portal.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalFailure {
    /// Connection refused, timed out, DNS failure: worth retrying later.
    Unreachable(String),
    /// The portal has never issued this license id.
    UnknownLicense,
    /// The portal answered something we cannot use.
    Protocol(String),
}

#[async_trait]
pub trait LicensePortal: Send + Sync + 'static {
    /// The armoured text of a file for `license_id` issued after `after`, if there is one.
    async fn latest(
        &self,
        license_id: Uuid,
        after: DateTime<Utc>,
    ) -> Result<Option<String>, PortalFailure>;
}

#[async_trait]
impl LicensePortal for tallyman_portal::client::PortalClient {
    async fn latest(
        &self,
        license_id: Uuid,
        after: DateTime<Utc>,
    ) -> Result<Option<String>, PortalFailure> {
        use tallyman_portal::client::PortalError;
        tallyman_portal::client::PortalClient::latest(self, license_id, after)
            .await
            .map_err(|e| match e {
                PortalError::Unreachable(why) => PortalFailure::Unreachable(why),
                PortalError::UnknownLicense(_) => PortalFailure::UnknownLicense,
                other => PortalFailure::Protocol(other.to_string()),
            })
    }
}
