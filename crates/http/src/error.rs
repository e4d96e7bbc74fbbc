//! The one error type every handler returns. It renders VSPC's `ErrorResponse`
//! (`{"errors":[{message,type,code,...}]}`), keeps client errors at their 4xx status and sends
//! every server-side failure as HTTP 520 with an opaque message; the cause goes to the log only.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use crate::wire::{
    json_response, ErrorResponse, ErrorType, ResponseError, SERVER_FAILURE_MESSAGE,
    STATUS_SERVER_FAILURE,
};

/// The request body did not arrive within the server's body read timeout.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body not received within {:?}", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed so results carrying an `ApiError` stay small.
    pub error: Box<ResponseError>,
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: ErrorType, code: i32, message: impl Into<String>) -> Self {
        Self {
            status,
            error: Box::new(ResponseError {
                message: message.into(),
                kind,
                code,
                property_name: None,
                parameter_name: None,
                failed_json_patch: None,
                retry_after: None,
            }),
            www_authenticate: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::Logical, 400, message)
    }

    /// A bad query-string or header parameter.
    pub fn bad_parameter(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::bad_request(message);
        e.error.parameter_name = Some(parameter.into());
        e
    }

    /// A bad property in the request body.
    pub fn bad_property(property: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::bad_request(message);
        e.error.property_name = Some(property.into());
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, ErrorType::Security, 401, message);
        e.www_authenticate = true;
        e
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorType::Security, 403, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorType::Logical, 404, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorType::Logical, 409, message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorType::Logical,
            415,
            message,
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::Logical,
            413,
            format!("The request body is larger than the {limit} bytes this server accepts."),
        )
    }

    /// A request body that could not be read: over `limit` (413), too slow (408), or cut
    /// short or malformed on the wire, e.g. broken chunked encoding (400).
    pub fn unreadable_body(error: &(dyn std::error::Error + 'static), limit: usize) -> Self {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = cause {
            if e.is::<http_body_util::LengthLimitError>() {
                return Self::payload_too_large(limit);
            }
            if let Some(timeout) = e.downcast_ref::<BodyTimeout>() {
                return Self::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorType::Transport,
                    408,
                    format!(
                        "The request body did not arrive within {} seconds.",
                        timeout.0.as_secs()
                    ),
                );
            }
            cause = e.source();
        }
        Self::bad_request("The request body could not be read: it is malformed or was cut short.")
    }

    pub fn too_many_requests(retry_after_secs: i64, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::Transport,
            429,
            message,
        );
        e.error.retry_after = Some(retry_after_secs.max(1));
        e
    }

    /// A request that cannot be carried out now (VSPC code 1000).
    pub fn not_possible(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::Logical, 1000, message)
    }

    /// A part of the product that is not built yet: said plainly, never faked.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            ErrorType::Logical,
            1000,
            format!("{what} is not available in this version of Tallyman yet."),
        )
    }

    /// A server-side failure. The cause is logged here and never sent to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed on the server side");
        Self::new(
            StatusCode::from_u16(STATUS_SERVER_FAILURE)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            ErrorType::Unspecified,
            500,
            SERVER_FAILURE_MESSAGE,
        )
    }

    pub fn with_parameter(mut self, parameter: impl Into<String>) -> Self {
        self.error.parameter_name = Some(parameter.into());
        self
    }

    pub fn with_code(mut self, code: i32) -> Self {
        self.error.code = code;
        self
    }

    pub fn with_failed_patch(mut self, op: Value) -> Self {
        self.error.failed_json_patch = Some(op);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error.message, self.status)
    }
}

impl From<tallyman_store::StoreError> for ApiError {
    fn from(e: tallyman_store::StoreError) -> Self {
        use tallyman_store::StoreError;
        match e {
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::NotFound(m) => ApiError::not_found(m),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.error.retry_after;
        let mut response = json_response(
            self.status,
            &ErrorResponse {
                errors: vec![*self.error],
            },
        );
        if self.www_authenticate {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        if let Some(secs) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<tallyman_app::AppError> for ApiError {
    fn from(e: tallyman_app::AppError) -> Self {
        use tallyman_app::AppError;
        match e {
            AppError::NotFound(m) => ApiError::not_found(m),
            AppError::LicenseFailed(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorType::Logical, 1300, m)
            }
            busy @ AppError::Busy => ApiError::new(
                StatusCode::CONFLICT,
                ErrorType::Logical,
                1301,
                busy.to_string(),
            ),
            AppError::PortalUnavailable(m) => ApiError::new(
                StatusCode::from_u16(STATUS_SERVER_FAILURE).unwrap_or(StatusCode::BAD_GATEWAY),
                ErrorType::RetryableLogical,
                1300,
                m,
            ),
            AppError::NotConfigured(m) => ApiError::not_possible(m),
            AppError::Invalid(m) => ApiError::bad_request(m),
            AppError::Store(e) => e.into(),
            AppError::Internal(m) => ApiError::internal(m),
        }
    }
}
