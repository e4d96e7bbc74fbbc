//! The one error type every handler returns. It renders VSPC's `ErrorResponse`
//! (`{"errors":[{message,type,code,...}]}`), keeps client errors at their 4xx status and sends
//! every server-side failure as HTTP 520 with an opaque message; the cause goes to the log only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// VSPC's error categories, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ErrorType {
    Logical,
    RetryableLogical,
    Security,
    Transport,
    Unspecified,
}

/// One item of `ErrorResponse.errors`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::wire::JsonPatch>)]
    pub failed_json_patch: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    pub errors: Vec<ResponseError>,
}

/// HTTP status used for server-side failures, as VSPC does.
pub const STATUS_SERVER_FAILURE: u16 = 520;

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
            if let Some(timeout) = e.downcast_ref::<crate::server::BodyTimeout>() {
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
            "An unexpected error occurred on the server. The details are in the server log.",
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

/// Renders any JSON value with the VSPC content type.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
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
