//! Shapes shared by every VSPC request and response: the `{meta, data, errors}` envelope,
//! paging information, `EmptyResponse`, the `ErrorResponse` body, JSON Patch operations, the
//! documented shapes of generic wrappers and uploads, and VSPC's date-time spelling. A leaf
//! module: everything else may use it, it uses nothing of this crate.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct PagingInformation {
    pub total: i64,
    pub count: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseMetadata {
    pub paging_info: PagingInformation,
}

/// A single resource: `{"data": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Single<T: Serialize> {
    pub data: T,
}

impl<T: Serialize> IntoResponse for Single<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self)
    }
}

/// A page of a collection: `{"meta":{"pagingInfo":{...}},"data":[...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Collection {
    pub meta: ResponseMetadata,
    pub data: Vec<Value>,
}

impl Collection {
    pub fn new(data: Vec<Value>, total: usize, offset: usize) -> Self {
        let count = data.len();
        Self {
            meta: ResponseMetadata {
                paging_info: PagingInformation {
                    total: total as i64,
                    count: count as i64,
                    offset: offset as i64,
                },
            },
            data,
        }
    }
}

impl IntoResponse for Collection {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self)
    }
}

/// `EmptyResponse`: `errors` must be an array and `data`, when present, an object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EmptyResponse {
    pub meta: Option<ResponseMetadata>,
    #[schema(value_type = Object)]
    pub data: Value,
    pub errors: Vec<ResponseError>,
}

impl EmptyResponse {
    pub fn ok() -> Self {
        Self {
            meta: None,
            data: Value::Object(Default::default()),
            errors: Vec::new(),
        }
    }
}

impl IntoResponse for EmptyResponse {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self)
    }
}

/// One RFC 6902 operation as the contract spells it (`JsonPatch`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct JsonPatch {
    pub op: String,
    pub path: String,
    #[schema(value_type = Option<Object>)]
    pub value: Option<Value>,
    pub from: Option<String>,
}

/// VSPC writes date-times with seven fractional digits and an explicit offset
/// (`2023-01-16T16:30:09.4952609+00:00`).
pub fn vspc_datetime(t: DateTime<Utc>) -> String {
    let base = t.to_rfc3339_opts(SecondsFormat::Secs, false);
    // `base` ends in "+00:00"; splice the fraction in before the offset.
    let (head, offset) = base.split_at(base.len() - 6);
    format!("{head}.{:07}{offset}", t.timestamp_subsec_nanos() / 100)
}

/// Serde helper for `DateTime<Utc>` fields in VSPC spelling.
pub mod datetime {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::vspc_datetime(*t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn datetimes_have_seven_fraction_digits_and_an_offset() {
        let t = Utc.timestamp_opt(1_673_886_609, 495_260_900).unwrap();
        assert_eq!(vspc_datetime(t), "2023-01-16T16:30:09.4952609+00:00");
        let whole = Utc.timestamp_opt(1_673_886_609, 0).unwrap();
        assert_eq!(vspc_datetime(whole), "2023-01-16T16:30:09.0000000+00:00");
    }

    #[test]
    fn collections_carry_paging_info() {
        let c = Collection::new(vec![Value::Null, Value::Null], 10, 4);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["meta"]["pagingInfo"]["total"], 10);
        assert_eq!(v["meta"]["pagingInfo"]["count"], 2);
        assert_eq!(v["meta"]["pagingInfo"]["offset"], 4);
    }

    #[test]
    fn empty_response_has_an_errors_array_and_object_data() {
        let v = serde_json::to_value(EmptyResponse::ok()).unwrap();
        assert_eq!(v["errors"], serde_json::json!([]));
        assert!(v["data"].is_object());
    }
}

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
    #[schema(value_type = Option<JsonPatch>)]
    pub failed_json_patch: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    pub errors: Vec<ResponseError>,
}

/// A JSON body already serialized, with the VSPC content type.
pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        bytes,
    )
        .into_response()
}

/// Renders any JSON value with the VSPC content type.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a response");
            (
                StatusCode::from_u16(STATUS_SERVER_FAILURE)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                )],
                SERVER_FAILURE_BODY,
            )
                .into_response()
        }
    }
}

/// HTTP status used for server-side failures, as VSPC does.
pub const STATUS_SERVER_FAILURE: u16 = 520;

/// The body of every server-side failure: the cause goes to the log, never to the client.
pub const SERVER_FAILURE_MESSAGE: &str =
    "An unexpected error occurred on the server. The details are in the server log.";

const SERVER_FAILURE_BODY: &str =
    "{\"errors\":[{\"message\":\"An unexpected error occurred on the \
     server. The details are in the server log.\",\"type\":\"unspecified\",\"code\":500}]}";

/// `{"data": T}` as the contract wraps single resources.
#[derive(Serialize, ToSchema)]
pub struct DataOf<T: ToSchema> {
    pub meta: Option<ResponseMetadata>,
    pub data: T,
    pub errors: Option<Vec<ResponseError>>,
}

/// `{"meta": {"pagingInfo": …}, "data": [T]}` as the contract wraps collections.
#[derive(Serialize, ToSchema)]
pub struct ListOf<T: ToSchema> {
    pub meta: Option<ResponseMetadata>,
    pub data: Vec<T>,
    pub errors: Option<Vec<ResponseError>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectExpression {
    pub property_path: String,
}

/// The multipart body of a license install.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LicenseUploadForm {
    /// License file.
    #[schema(value_type = String, format = Binary)]
    license: Vec<u8>,
}

/// Which part of a Backup & Replication license to remove.
#[derive(Serialize, ToSchema)]
pub enum SectionForDelete {
    Socket,
    Instance,
    All,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SectionForDeleteParam {
    /// Section of the license to remove (default All).
    #[param(rename = "sectionForDelete", value_type = SectionForDelete)]
    section_for_delete: Option<String>,
}
