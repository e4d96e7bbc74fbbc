//! The HTTP client Tallyman's `update` operations and auto-update job use to ask the portal for
//! a newer license file.
//!
//! Errors are sorted by what the caller should do about them: [`PortalError::Unreachable`]
//! (network trouble; retry later), [`PortalError::UnknownLicense`] (the portal has no such
//! contract; retrying will not help) and [`PortalError::Protocol`] (the portal answered, but not
//! as this client expects).
//!
//! The client does not verify the license it receives: the caller installs it through the same
//! path as an uploaded file, which checks it against the server's trusted keys.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{StatusCode, Url};
use uuid::Uuid;

use crate::wire::{ErrorBody, Health, LatestLicense, CODE_UNKNOWN_LICENSE};

/// Default limit for one call, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a portal call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortalError {
    /// No answer: the connection failed or the call timed out, or a proxy in front of the portal
    /// reported it unavailable (502/503/504). Worth retrying.
    #[error("the license portal cannot be reached: {0}")]
    Unreachable(String),
    /// The portal does not know this license id.
    #[error("the license portal does not know license {0}")]
    UnknownLicense(Uuid),
    /// The portal answered something this client does not understand or did not expect.
    #[error("unexpected answer from the license portal: {0}")]
    Protocol(String),
    /// The configured portal URL cannot be used.
    #[error("invalid license portal URL: {0}")]
    InvalidUrl(String),
}

impl PortalError {
    /// Whether the same call may succeed later without any change on this side: network trouble
    /// and odd answers may pass, an unknown license or a bad URL will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PortalError::Unreachable(_) | PortalError::Protocol(_))
    }
}

/// A client for one portal.
#[derive(Debug, Clone)]
pub struct PortalClient {
    base_url: String,
    http: reqwest::Client,
}

impl PortalClient {
    /// A client for the portal at `base_url` (e.g. `http://127.0.0.1:1281`) with the default
    /// 30-second limit per call.
    pub fn new(base_url: &str) -> Result<Self, PortalError> {
        Self::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    /// Like [`PortalClient::new`] with another limit; it bounds connecting and the whole call.
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, PortalError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let url =
            Url::parse(trimmed).map_err(|e| PortalError::InvalidUrl(format!("{base_url}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(PortalError::InvalidUrl(format!(
                "{base_url}: expected an http:// URL such as http://127.0.0.1:1281"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(PortalError::InvalidUrl(format!(
                "{base_url}: the base URL cannot carry a query or fragment"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!(
                "tallyman-portal-client/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| PortalError::InvalidUrl(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base_url: trimmed.to_string(),
            http,
        })
    }

    /// The portal's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The armoured newest license file for `license_id` if it was issued after `after` (the
    /// `iat` of the caller's current file); `None` if there is nothing newer.
    pub async fn latest(
        &self,
        license_id: Uuid,
        after: DateTime<Utc>,
    ) -> Result<Option<String>, PortalError> {
        Ok(self
            .latest_license(license_id, Some(after))
            .await?
            .map(|latest| latest.license))
    }

    /// The full answer of the `latest` endpoint; with `after` = `None` the portal returns its
    /// newest file whatever its date.
    pub async fn latest_license(
        &self,
        license_id: Uuid,
        after: Option<DateTime<Utc>>,
    ) -> Result<Option<LatestLicense>, PortalError> {
        let url = format!("{}/portal/v1/licenses/{license_id}/latest", self.base_url);
        let mut request = self.http.get(&url);
        if let Some(after) = after {
            request = request.query(&[("after", after.to_rfc3339_opts(SecondsFormat::Secs, true))]);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        match status {
            StatusCode::OK => {
                let latest: LatestLicense = serde_json::from_slice(&body).map_err(|e| {
                    PortalError::Protocol(format!("the answer is not a license document: {e}"))
                })?;
                if latest.license_id != license_id {
                    return Err(PortalError::Protocol(format!(
                        "asked for license {license_id}, got license {}",
                        latest.license_id
                    )));
                }
                if after.is_some_and(|after| latest.issued_at <= after) {
                    return Err(PortalError::Protocol(format!(
                        "the returned file (issued {}) is not newer than the one asked about",
                        latest.issued_at
                    )));
                }
                Ok(Some(latest))
            }
            StatusCode::NO_CONTENT => Ok(None),
            StatusCode::NOT_FOUND if error_code(&body).as_deref() == Some(CODE_UNKNOWN_LICENSE) => {
                Err(PortalError::UnknownLicense(license_id))
            }
            other => Err(unexpected_status(other, &body)),
        }
    }

    /// The portal's health answer (its key id and how many licenses it serves).
    pub async fn health(&self) -> Result<Health, PortalError> {
        let url = format!("{}/portal/v1/health", self.base_url);
        let response = self.http.get(&url).send().await.map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if status != StatusCode::OK {
            return Err(unexpected_status(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| PortalError::Protocol(format!("the answer is not a health document: {e}")))
    }
}

/// Sorts a reqwest failure: anything that went wrong on the way (connect, timeout, a connection
/// dropped mid-call) is `Unreachable`; a request that could not even be built is `InvalidUrl`.
fn transport_error(e: reqwest::Error) -> PortalError {
    let detail = error_chain(&e);
    if e.is_builder() {
        PortalError::InvalidUrl(detail)
    } else if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() {
        PortalError::Unreachable(detail)
    } else {
        PortalError::Protocol(detail)
    }
}

/// reqwest's own message is terse ("error sending request"); the causes say what happened.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.code)
}

fn unexpected_status(status: StatusCode, body: &[u8]) -> PortalError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(200).collect());
    let text = format!("HTTP {status}: {message}");
    match status {
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            PortalError::Unreachable(text)
        }
        _ => PortalError::Protocol(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_normalised() {
        let client = PortalClient::new("http://127.0.0.1:1281/").expect("valid");
        assert_eq!(client.base_url(), "http://127.0.0.1:1281");
        let client = PortalClient::new("http://portal.example/prefix//").expect("valid");
        assert_eq!(client.base_url(), "http://portal.example/prefix");
        for bad in [
            "",
            "127.0.0.1:1281",
            "ftp://portal.example",
            "http://x/?a=1",
        ] {
            assert!(
                matches!(PortalClient::new(bad), Err(PortalError::InvalidUrl(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn only_network_trouble_and_odd_answers_are_retryable() {
        assert!(PortalError::Unreachable("x".into()).is_retryable());
        assert!(PortalError::Protocol("x".into()).is_retryable());
        assert!(!PortalError::UnknownLicense(Uuid::nil()).is_retryable());
        assert!(!PortalError::InvalidUrl("x".into()).is_retryable());
    }

    #[test]
    fn proxy_failures_count_as_unreachable() {
        let body = br#"{"error":"boom","code":"internal"}"#;
        assert!(matches!(
            unexpected_status(StatusCode::BAD_GATEWAY, b"<html>"),
            PortalError::Unreachable(_)
        ));
        match unexpected_status(StatusCode::INTERNAL_SERVER_ERROR, body) {
            PortalError::Protocol(m) => assert!(m.contains("boom"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
