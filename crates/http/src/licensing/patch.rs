//! JSON Patch (RFC 6902) on license resources. Only `autoUpdateEnabled` is writable; paths
//! match ignoring case and with or without the leading slash; `"true"` and `true` are both
//! booleans; a single operation object is taken as a one-element array; all operations apply
//! or none do. Anything else fails with VSPC code 1001 naming the failed operation.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::Value;

use crate::error::{ApiError, ErrorType};

/// The patch document, parsed leniently (trailing commas and single quotes are accepted, as
/// some published scripts send them).
pub struct PatchBody(pub Vec<Value>);

impl<S: Send + Sync> FromRequest<S> for PatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                e.status(),
                ErrorType::Logical,
                e.status().as_u16().into(),
                e.body_text(),
            )
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_request("The JSON Patch body is not UTF-8 text."))?;
        if text.trim().is_empty() {
            return Err(ApiError::bad_request(
                "The request needs a JSON Patch array, e.g. [{\"op\":\"replace\",\"path\":\"/autoUpdateEnabled\",\"value\":true}].",
            ));
        }
        let value = tallyman_query::parse_lenient_json(text).map_err(|e| {
            ApiError::bad_request(format!("The JSON Patch body is not valid JSON: {e}"))
        })?;
        match value {
            Value::Array(ops) => Ok(PatchBody(ops)),
            obj @ Value::Object(_) => Ok(PatchBody(vec![obj])),
            _ => Err(ApiError::bad_request(
                "The JSON Patch body must be an array of operations.",
            )),
        }
    }
}

/// VSPC code 1001 with the failed operation echoed.
pub fn patch_failed(op: &Value, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorType::Logical, 1001, message)
        .with_failed_patch(op.clone())
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Applies the patch to the current value of the one writable flag (`property`, e.g.
/// `autoUpdateEnabled`) of a resource whose other properties are `readable`. Returns the new
/// value, or the error for the first operation that cannot be applied.
pub fn apply_flag_patch(
    ops: &[Value],
    property: &str,
    readable: &[&str],
    current: bool,
) -> Result<bool, ApiError> {
    let mut value = current;
    for op in ops {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        let normalized = path.trim().trim_start_matches('/');
        if !normalized.eq_ignore_ascii_case(property) {
            let message = if readable.iter().any(|r| r.eq_ignore_ascii_case(normalized)) {
                format!(
                    "The property at path '{path}' is read-only; only '{property}' can be changed."
                )
            } else {
                format!("The property at path '{path}' does not exist; only '{property}' can be changed.")
            };
            return Err(patch_failed(op, message));
        }
        match name.as_str() {
            "replace" | "add" => {
                value = op.get("value").and_then(as_bool).ok_or_else(|| {
                    patch_failed(
                        op,
                        format!("The value for '{property}' must be true or false."),
                    )
                })?;
            }
            "test" => {
                let expected = op.get("value").and_then(as_bool).ok_or_else(|| {
                    patch_failed(
                        op,
                        format!("The value for '{property}' must be true or false."),
                    )
                })?;
                if expected != value {
                    return Err(patch_failed(
                        op,
                        format!("Test failed: '{property}' is {value}, not {expected}."),
                    ));
                }
            }
            "remove" | "move" | "copy" => {
                return Err(patch_failed(
                    op,
                    format!("The operation '{name}' cannot be applied to '{property}'."),
                ))
            }
            _ => {
                return Err(patch_failed(
                    op,
                    format!("Unknown JSON Patch operation '{name}'."),
                ))
            }
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const READABLE: &[&str] = &["status", "type"];

    fn code(e: ApiError) -> (i32, Option<Value>) {
        (e.error.code, e.error.failed_json_patch)
    }

    #[test]
    fn accepts_the_spellings_clients_send() {
        let p =
            |path: &str, value: Value| vec![json!({"op": "replace", "path": path, "value": value})];
        assert!(apply_flag_patch(
            &p("/autoUpdateEnabled", json!(true)),
            "autoUpdateEnabled",
            READABLE,
            false
        )
        .unwrap());
        assert!(!apply_flag_patch(
            &p("autoUpdateEnabled", json!("false")),
            "autoUpdateEnabled",
            READABLE,
            true
        )
        .unwrap());
        assert!(apply_flag_patch(
            &p("/AutoUpdateEnabled", json!("True")),
            "autoUpdateEnabled",
            READABLE,
            false
        )
        .unwrap());
        assert!(apply_flag_patch(&[], "autoUpdateEnabled", READABLE, true).unwrap());
    }

    #[test]
    fn refuses_read_only_unknown_paths_bad_values_and_failed_tests() {
        let op = json!({"op": "replace", "path": "/status", "value": "Valid"});
        let (c, failed) = code(
            apply_flag_patch(&[op.clone()], "autoUpdateEnabled", READABLE, false).unwrap_err(),
        );
        assert_eq!((c, failed), (1001, Some(op)));
        let e = apply_flag_patch(
            &[json!({"op": "replace", "path": "/nope", "value": 1})],
            "autoUpdateEnabled",
            READABLE,
            false,
        )
        .unwrap_err();
        assert!(e.error.message.contains("does not exist"));
        let e = apply_flag_patch(
            &[json!({"op": "replace", "path": "/autoUpdateEnabled", "value": "yes"})],
            "autoUpdateEnabled",
            READABLE,
            false,
        )
        .unwrap_err();
        assert_eq!(e.error.code, 1001);
        let ops = [
            json!({"op": "test", "path": "/autoUpdateEnabled", "value": false}),
            json!({"op": "replace", "path": "/autoUpdateEnabled", "value": true}),
        ];
        let e = apply_flag_patch(&ops, "autoUpdateEnabled", READABLE, true).unwrap_err();
        assert_eq!(e.error.failed_json_patch, Some(ops[0].clone()));
        assert!(apply_flag_patch(&ops, "autoUpdateEnabled", READABLE, false).unwrap());
        let e = apply_flag_patch(
            &[json!({"op": "remove", "path": "/autoUpdateEnabled"})],
            "autoUpdateEnabled",
            READABLE,
            true,
        )
        .unwrap_err();
        assert_eq!(e.error.code, 1001);
    }
}
