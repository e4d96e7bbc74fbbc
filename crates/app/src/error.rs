//! What can go wrong in an application operation, in terms the wire layer maps to its own
//! errors (the VSPC `ErrorResponse` for the REST API, a message for the CLI).

use tallyman_store::StoreError;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing asked for does not exist, or the caller may not see it.
    #[error("{0}")]
    NotFound(String),
    /// A licensing rule refused the operation (VSPC code 1300).
    #[error("{0}")]
    LicenseFailed(String),
    /// Another license operation on the same target won the race (VSPC code 1301).
    #[error("Another license operation on this target is in progress; try again.")]
    Busy,
    /// The license portal could not be reached or answered nonsense; worth retrying later.
    #[error("{0}")]
    PortalUnavailable(String),
    /// The operation needs something this server is not configured with.
    #[error("{0}")]
    NotConfigured(String),
    /// A value sent by the caller is not acceptable.
    #[error("{0}")]
    Invalid(String),
    #[error("storage failed: {0}")]
    Store(StoreError),
    /// Anything else: logged, never shown to a client.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => AppError::NotFound(m),
            other => AppError::Store(other),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(format!("{e:#}"))
    }
}
