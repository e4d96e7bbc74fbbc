//! Shapes shared by every VSPC response: the `{meta, data, errors}` envelope, paging
//! information, `EmptyResponse`, and VSPC's date-time spelling.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::json_response;

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
    pub errors: Vec<crate::error::ResponseError>,
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
