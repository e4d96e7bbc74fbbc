//! Reading a license upload: `multipart/form-data` with the file in a part named `license`
//! (older clients call it `file`; any single file part is taken when `license` is absent).

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use bytes::Bytes;

use crate::error::{ApiError, ApiResult};

/// Largest license file accepted.
pub const MAX_LICENSE_BYTES: usize = 1024 * 1024;

/// The uploaded license file's bytes.
pub struct LicenseUpload(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for LicenseUpload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
        if !is_multipart {
            return Err(ApiError::unsupported_media_type(
                "Upload the license file as multipart/form-data with a part named 'license'.",
            ));
        }
        let mut multipart = Multipart::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("The multipart body is not valid: {e}")))?;
        read_license(&mut multipart).await.map(LicenseUpload)
    }
}

async fn read_license(multipart: &mut Multipart) -> ApiResult<Bytes> {
    let mut named: Option<Bytes> = None;
    let mut others: Vec<Bytes> = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("The multipart body is not valid: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some();
        let data = field.bytes().await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(MAX_LICENSE_BYTES)
            } else {
                ApiError::bad_request(format!("The multipart body is not valid: {e}"))
            }
        })?;
        if data.len() > MAX_LICENSE_BYTES {
            return Err(ApiError::payload_too_large(MAX_LICENSE_BYTES));
        }
        if name.eq_ignore_ascii_case("license") {
            if named.is_some() {
                return Err(ApiError::bad_property(
                    "license",
                    "Send exactly one license file.",
                ));
            }
            named = Some(data);
        } else if is_file || name.eq_ignore_ascii_case("file") {
            others.push(data);
        }
    }
    match (named, others.len()) {
        (Some(bytes), _) => Ok(bytes),
        (None, 1) => Ok(others.remove(0)),
        (None, 0) => Err(ApiError::bad_property(
            "license",
            "The request has no license file; send it in a multipart part named 'license'.",
        )),
        (None, _) => Err(ApiError::bad_property(
            "license",
            "The request has several files; send the license in a part named 'license'.",
        )),
    }
}
