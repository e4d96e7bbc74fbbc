//! Our own extractors, so a malformed body, path or query gets the same VSPC `ErrorResponse` as
//! any other error instead of axum's plain-text rejection.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Parses a path segment that must be a UUID. Ids are compared by value, so case and braces
/// don't matter.
pub fn parse_uid(name: &str, raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw.trim().trim_start_matches('{').trim_end_matches('}')).map_err(|_| {
        ApiError::bad_parameter(name, format!("The {name} path parameter must be a UUID."))
    })
}

/// A JSON request body whose rejections are VSPC errors.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::unsupported_media_type(
            "The request body must be JSON (Content-Type: application/json).",
        ),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                crate::error::ErrorType::Logical,
                413,
                "The request body is too large.",
            )
        }
        other => {
            let text = other.body_text();
            let mut error = ApiError::bad_request(format!("The request body is not valid: {text}"));
            error.error.property_name = property_path(&text);
            error
        }
    }
}

/// The property a JSON rejection names (`…: workloads[1].used: invalid type …`), if any.
fn property_path(text: &str) -> Option<String> {
    let rest = text.split_once(": ")?.1;
    let (path, _) = rest.split_once(": ")?;
    let looks_like_path = !path.is_empty()
        && path != "."
        && path
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '[' | ']' | '_' | '-'));
    looks_like_path.then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_property() {
        assert_eq!(
            property_path("Failed to parse the request body as JSON: workloads[1].rental: number out of range at line 1").as_deref(),
            Some("workloads[1].rental")
        );
        assert_eq!(
            property_path("Failed to parse the request body as JSON: EOF while parsing"),
            None
        );
    }

    #[test]
    fn uids_parse_by_value() {
        let id = Uuid::new_v4();
        assert_eq!(parse_uid("x", &id.to_string().to_uppercase()).unwrap(), id);
        assert_eq!(parse_uid("x", &format!("{{{id}}}")).unwrap(), id);
        let e = parse_uid("actionId", "nope").unwrap_err();
        assert_eq!(e.error.parameter_name.as_deref(), Some("actionId"));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
