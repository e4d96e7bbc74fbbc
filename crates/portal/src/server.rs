//! The portal's HTTP service: [`PortalState`] (signing key, index of issued files, clock,
//! renewal policy) and the axum [`router`] over it.
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/portal/v1/licenses/{licenseId}/latest?after=<RFC 3339>` | 200 [`LatestLicense`], 204, 404 |
//! | `POST` | `/portal/v1/licenses` (armoured license body) | 201 (stored), 200 (already held) [`ImportedLicense`], 400, 409 |
//! | `GET` | `/portal/v1/health` | 200 [`Health`] |
//!
//! Errors are JSON `{"error": "…", "code": "…"}` on every path, including unknown routes and malformed
//! requests. Work that touches the disk runs on the blocking pool.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tallyman_domain::{Clock, SystemClock};
use tallyman_license::armour::MAX_FILE_LEN;
use tallyman_license::{issue, verify, IssuerKey, LicenseError, TrustStore};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::catalog::{Catalog, ScanReport};
use crate::renewal::RenewalPolicy;
use crate::wire::{
    ErrorBody, Health, ImportedLicense, LatestLicense, CODE_BAD_BODY, CODE_BAD_REQUEST,
    CODE_CONFLICT, CODE_INTERNAL, CODE_METHOD_NOT_ALLOWED, CODE_NO_SUCH_ENDPOINT,
    CODE_UNKNOWN_LICENSE,
};

/// Largest request body accepted by the import endpoint: a license file's size limit plus room
/// for whatever a mail client wrapped around it.
pub const MAX_IMPORT_BYTES: usize = MAX_FILE_LEN + 4096;

/// How a portal is set up besides its key and directory.
#[derive(Clone)]
pub struct PortalOptions {
    /// Source of "now" for renewal decisions and new `iat`s.
    pub clock: Arc<dyn Clock>,
    /// Renewal windows.
    pub renewal: RenewalPolicy,
}

impl Default for PortalOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            renewal: RenewalPolicy::default(),
        }
    }
}

/// Everything the portal's handlers share. Cheap to clone.
#[derive(Clone)]
pub struct PortalState {
    inner: Arc<Inner>,
}

struct Inner {
    key: IssuerKey,
    trust: TrustStore,
    clock: Arc<dyn Clock>,
    renewal: RenewalPolicy,
    /// One lock over the whole index: renewals and imports are rare and quick, and holding it
    /// from "is it due?" to "indexed" is what keeps two racing requests from minting two files.
    catalog: Mutex<Catalog>,
}

/// Result of an import.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportOutcome {
    /// The file was new and has been written to the directory.
    Stored(ImportedLicense),
    /// The portal already held exactly this file; nothing was written.
    AlreadyPresent(ImportedLicense),
}

/// Why a portal request failed. Renders as [`ErrorBody`] with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The portal has never seen this license id (404).
    #[error("license {0} is not known to this portal")]
    UnknownLicense(Uuid),
    /// The request itself is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// The import contradicts a file the portal holds (409).
    #[error("{0}")]
    Conflict(String),
    /// Any other client-side status (unknown route, wrong method, unreadable body).
    #[error("{message}")]
    Status {
        /// The HTTP status to answer with.
        status: StatusCode,
        /// The `code` member of the body.
        code: &'static str,
        /// The message for the body.
        message: String,
    },
    /// The portal failed (500). The detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiError::UnknownLicense(_) => (
                StatusCode::NOT_FOUND,
                CODE_UNKNOWN_LICENSE,
                self.to_string(),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, CODE_BAD_REQUEST, m.clone()),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, CODE_CONFLICT, m.clone()),
            ApiError::Status {
                status,
                code,
                message,
            } => (*status, *code, message.clone()),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "portal request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    CODE_INTERNAL,
                    "the license portal failed to process the request; see its log".to_string(),
                )
            }
        };
        let body = ErrorBody {
            error: message,
            code: Some(code.to_string()),
        };
        (status, Json(body)).into_response()
    }
}

impl PortalState {
    /// Opens a portal over `dir` (created if missing) with the system clock and default renewal
    /// windows. See [`PortalState::open_with`].
    pub fn open(key: IssuerKey, dir: impl Into<PathBuf>) -> io::Result<Self> {
        Self::open_with(key, dir, PortalOptions::default()).map(|(state, _)| state)
    }

    /// Opens a portal over `dir`: scans it for `*.lic` files, verifies each against `key`'s
    /// public key and indexes those that pass. Files that fail are logged and listed in the
    /// report, not fatal; an unreadable directory is.
    ///
    /// Blocks on file I/O; from async code call it on the blocking pool.
    pub fn open_with(
        key: IssuerKey,
        dir: impl Into<PathBuf>,
        options: PortalOptions,
    ) -> io::Result<(Self, ScanReport)> {
        let dir = dir.into();
        let trust: TrustStore = [key.public()].into_iter().collect();
        let (catalog, report) = Catalog::scan(&dir, &trust)?;
        tracing::info!(
            dir = %dir.display(),
            loaded = report.loaded,
            skipped = report.skipped.len(),
            licenses = catalog.license_count(),
            key_id = key.key_id(),
            "license portal indexed its directory"
        );
        let state = PortalState {
            inner: Arc::new(Inner {
                key,
                trust,
                clock: options.clock,
                renewal: options.renewal,
                catalog: Mutex::new(catalog),
            }),
        };
        Ok((state, report))
    }

    /// Id of the portal's signing key.
    pub fn key_id(&self) -> &str {
        self.inner.key.key_id()
    }

    /// Number of distinct license ids served.
    pub fn license_count(&self) -> usize {
        self.catalog().license_count()
    }

    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        // The index is only changed after a file is safely written, so it is consistent even if
        // a thread panicked while holding the lock.
        self.inner
            .catalog
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The newest file for `license_id` if it was issued strictly after `after` (any file when
    /// `after` is `None`), renewing the contract first when it is due. `Ok(None)`: nothing newer.
    ///
    /// Blocks on file I/O when it renews.
    pub fn latest(
        &self,
        license_id: Uuid,
        after: Option<DateTime<Utc>>,
    ) -> Result<Option<LatestLicense>, ApiError> {
        let inner = &self.inner;
        let mut catalog = self.catalog();
        let now = inner.clock.now();
        let current = catalog
            .newest(license_id)
            .ok_or(ApiError::UnknownLicense(license_id))?;
        let renewal = inner.renewal.renew(&current.claims, now);

        let newest = match renewal {
            None => current,
            Some(claims) => {
                let previous_expiry = current.claims.expiration_date;
                let armoured = issue(&claims, &inner.key).map_err(|e| {
                    ApiError::Internal(format!("cannot sign the renewal of {license_id}: {e}"))
                })?;
                let stored = catalog.add(claims, armoured).map_err(|e| {
                    ApiError::Internal(format!("cannot store the renewal of {license_id}: {e}"))
                })?;
                tracing::info!(
                    %license_id,
                    license_type = stored.claims.license_type.as_wire(),
                    previous_expiry = ?previous_expiry,
                    new_expiry = ?stored.claims.expiration_date,
                    file = %stored.path.display(),
                    "renewed license"
                );
                stored
            }
        };

        if after.is_some_and(|after| newest.claims.iat <= after) {
            return Ok(None);
        }
        Ok(Some(LatestLicense::from(newest)))
    }

    /// Verifies `file` against the portal's key and stores it in the directory.
    ///
    /// Blocks on file I/O.
    pub fn import(&self, file: &[u8]) -> Result<ImportOutcome, ApiError> {
        let inner = &self.inner;
        let verified = verify(file, &inner.trust).map_err(|e| match e {
            LicenseError::UnknownIssuer { key_id } => ApiError::BadRequest(format!(
                "the license was signed by issuer key {key_id}; this portal only accepts \
                 licenses signed with its own key {}",
                inner.key.key_id()
            )),
            other => ApiError::BadRequest(other.to_string()),
        })?;
        let claims = verified.claims;
        let mut catalog = self.catalog();

        let summary = |newest: bool| ImportedLicense {
            license_id: claims.license_id,
            issued_at: claims.iat,
            expiration_date: claims.expiration_date,
            newest,
        };
        if catalog.holds(&verified.armoured) {
            let newest = catalog
                .newest(claims.license_id)
                .is_some_and(|n| n.armoured == verified.armoured);
            return Ok(ImportOutcome::AlreadyPresent(summary(newest)));
        }
        if catalog.same_instant(&claims).is_some() {
            return Err(ApiError::Conflict(format!(
                "the portal already holds a different file for license {} issued at {}; a newer \
                 file must have a later iat",
                claims.license_id,
                claims
                    .iat
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }

        let stored = catalog
            .add(claims.clone(), verified.armoured)
            .map_err(|e| ApiError::Internal(format!("cannot store an imported license: {e}")))?;
        let path = stored.path.clone();
        let newest = catalog
            .newest(claims.license_id)
            .is_some_and(|n| n.path == path);
        tracing::info!(
            license_id = %claims.license_id,
            file = %path.display(),
            newest,
            "imported license"
        );
        Ok(ImportOutcome::Stored(summary(newest)))
    }
}

/// The portal's routes over `state`. Mountable into another router: every path starts with
/// `/portal/v1/`.
pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/portal/v1/health", get(get_health))
        .route("/portal/v1/licenses", post(import_license))
        .route(
            "/portal/v1/licenses/{license_id}/latest",
            get(get_latest_license),
        )
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves [`router`] on an already bound `listener` until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: PortalState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[derive(Debug, Deserialize)]
struct LatestQuery {
    after: Option<String>,
}

async fn get_latest_license(
    State(state): State<PortalState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LatestQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(raw_id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let license_id = Uuid::parse_str(&raw_id)
        .map_err(|_| ApiError::BadRequest(format!("\"{raw_id}\" is not a license id (a UUID)")))?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let after = query.after.as_deref().map(parse_instant).transpose()?;

    let latest = tokio::task::spawn_blocking(move || state.latest(license_id, after))
        .await
        .map_err(|e| ApiError::Internal(format!("lookup task failed: {e}")))??;
    Ok(match latest {
        Some(license) => (StatusCode::OK, Json(license)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Parses the `after` parameter. A `+` in an offset that the caller forgot to percent-encode
/// arrives as a space; it is put back rather than refused.
fn parse_instant(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
    parse(raw)
        .or_else(|e| {
            if raw.contains(' ') {
                parse(&raw.replace(' ', "+"))
            } else {
                Err(e)
            }
        })
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "\"after\" must be an RFC 3339 instant such as 2026-11-30T01:33:24Z: {e}"
            ))
        })
}

async fn import_license(
    State(state): State<PortalState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError::Status {
        status: e.status(),
        code: CODE_BAD_BODY,
        message: format!(
            "the body must be one armoured license file of at most {MAX_FILE_LEN} bytes: {}",
            e.body_text()
        ),
    })?;
    let outcome = tokio::task::spawn_blocking(move || state.import(&body))
        .await
        .map_err(|e| ApiError::Internal(format!("import task failed: {e}")))??;
    let (status, imported) = match outcome {
        ImportOutcome::Stored(imported) => (StatusCode::CREATED, imported),
        ImportOutcome::AlreadyPresent(imported) => (StatusCode::OK, imported),
    };
    let location = format!("/portal/v1/licenses/{}/latest", imported.license_id);
    Ok((status, [(header::LOCATION, location)], Json(imported)).into_response())
}

async fn get_health(State(state): State<PortalState>) -> Result<Json<Health>, ApiError> {
    // The index lock may be held by a renewal that is writing to disk; wait for it off the
    // async workers.
    let licenses = tokio::task::spawn_blocking({
        let state = state.clone();
        move || state.license_count()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("health task failed: {e}")))?;
    Ok(Json(Health {
        status: "ok".into(),
        key_id: state.key_id().to_string(),
        licenses,
    }))
}

async fn no_such_route() -> ApiError {
    ApiError::Status {
        status: StatusCode::NOT_FOUND,
        code: CODE_NO_SUCH_ENDPOINT,
        message: "no such endpoint; the portal API is under /portal/v1/".into(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::Status {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: CODE_METHOD_NOT_ALLOWED,
        message: "method not allowed on this endpoint".into(),
    }
}
