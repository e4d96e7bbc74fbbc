//! The generated OpenAPI document must agree with the committed VSPC 3.6.1 contract for every
//! operation both contain: methods, parameters, and the property names and types of request and
//! response schemas. Drift in either direction fails here.

use std::collections::BTreeSet;

use serde_json::Value;

fn contract() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contract/licensing-3.6.1.openapi.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("contract file")).unwrap()
}

const DOCUMENTED_ERROR_EXTRAS: [&str; 2] = ["parameterName", "propertyName"];

/// Follows `$ref`s within one document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    'outer: for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                s = &doc["components"]["schemas"][name];
            }
            None => {
                // A single-member allOf/anyOf/oneOf wrapper is the same schema.
                for key in ["allOf", "anyOf", "oneOf"] {
                    if let Some(list) = s.get(key).and_then(Value::as_array) {
                        let non_null: Vec<&Value> = list
                            .iter()
                            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
                            .filter(|v| v.get("enum") != Some(&Value::Array(vec![Value::Null])))
                            .collect();
                        if non_null.len() == 1 {
                            s = non_null[0];
                            continue 'outer;
                        }
                    }
                }
                return s;
            }
        }
    }
    s
}

/// The JSON type of a schema, ignoring nullability (3.0 `nullable` vs 3.1 type arrays).
fn kind(doc: &Value, schema: &Value) -> String {
    let s = resolve(doc, schema);
    match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_string(),
        _ if s.get("properties").is_some() => "object".into(),
        _ if s.get("enum").is_some() => "string".into(),
        _ => "any".into(),
    }
}

/// Compares two schemas' shapes down to `depth` levels; returns differences.
fn compare(
    a_doc: &Value,
    a: &Value,
    b_doc: &Value,
    b: &Value,
    at: &str,
    depth: u32,
    out: &mut Vec<String>,
) {
    let (ka, kb) = (kind(a_doc, a), kind(b_doc, b));
    if ka != kb && ka != "any" && kb != "any" {
        // Integers are numbers, and vice versa is a drift worth reporting.
        out.push(format!("{at}: type {ka} vs {kb}"));
        return;
    }
    if depth == 0 {
        return;
    }
    let (ra, rb) = (resolve(a_doc, a), resolve(b_doc, b));
    if ka == "array" {
        compare(
            a_doc,
            &ra["items"],
            b_doc,
            &rb["items"],
            &format!("{at}[]"),
            depth - 1,
            out,
        );
        return;
    }
    let props = |s: &Value| -> BTreeSet<String> {
        s.get("properties")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (mut pa, pb) = (props(ra), props(rb));
    // Error items may name the offending parameter or body property (conventions §2.2); the
    // contract's ResponseError schema leaves these two documented extras out.
    if at.ends_with(".errors[]") {
        pa.retain(|p| pb.contains(p) || !DOCUMENTED_ERROR_EXTRAS.contains(&p.as_str()));
    }
    if pa != pb {
        out.push(format!(
            "{at}: properties differ: only ours {:?}, only contract {:?}",
            pa.difference(&pb).collect::<Vec<_>>(),
            pb.difference(&pa).collect::<Vec<_>>()
        ));
    }
    for p in pa.intersection(&pb) {
        compare(
            a_doc,
            &ra["properties"][p],
            b_doc,
            &rb["properties"][p],
            &format!("{at}.{p}"),
            depth - 1,
            out,
        );
    }
}

fn params(doc: &Value, op: &Value) -> BTreeSet<String> {
    op.get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| match p.get("$ref").and_then(Value::as_str) {
                    Some(r) => &doc["components"]["parameters"][r.rsplit('/').next().unwrap_or("")],
                    None => p,
                })
                .filter(|p| p["in"] != "header")
                .map(|p| {
                    format!(
                        "{}:{}",
                        p["in"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn request_schema(op: &Value) -> Option<&Value> {
    op.get("requestBody")?
        .get("content")?
        .as_object()?
        .values()
        .next()?
        .get("schema")
}

fn ok_schema(op: &Value) -> Option<&Value> {
    op.get("responses")?
        .get("200")?
        .get("content")?
        .get("application/json")?
        .get("schema")
}

#[test]
fn generated_document_matches_the_contract_for_shared_operations() {
    let ours = tallyman_http::openapi::document();
    let theirs = contract();
    let mut shared = 0;
    let mut problems = Vec::new();
    for (path, item) in ours["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(contract_op) = theirs["paths"].get(path).and_then(|p| p.get(method)) else {
                continue;
            };
            shared += 1;
            let at = format!("{} {path}", method.to_uppercase());
            assert_eq!(op["operationId"], contract_op["operationId"], "{at}");
            let (po, pc) = (params(&ours, op), params(&theirs, contract_op));
            if po != pc {
                problems.push(format!("{at}: parameters {po:?} vs contract {pc:?}"));
            }
            match (request_schema(op), request_schema(contract_op)) {
                (Some(a), Some(b)) => compare(
                    &ours,
                    a,
                    &theirs,
                    b,
                    &format!("{at} request"),
                    3,
                    &mut problems,
                ),
                (None, None) => {}
                (a, b) => problems.push(format!(
                    "{at}: request body ours={} contract={}",
                    a.is_some(),
                    b.is_some()
                )),
            }
            if let (Some(a), Some(b)) = (ok_schema(op), ok_schema(contract_op)) {
                compare(&ours, a, &theirs, b, &format!("{at} 200"), 4, &mut problems);
            }
        }
    }
    assert!(
        shared >= 8,
        "only {shared} operations shared with the contract"
    );
    assert!(
        problems.is_empty(),
        "OpenAPI drift:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_contract_operation_we_serve_is_documented() {
    let ours = tallyman_http::openapi::document();
    let ids: BTreeSet<&str> = ours["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for id in [
        "OAuth2IssueToken",
        "GetAsyncActionsInfo",
        "GetAsyncActionsConfig",
        "GetAsyncActionInfo",
        "CancelAsyncAction",
        "AttachRequestDataToAsyncAction",
        "GetAsyncActionResult",
        "ClearAsyncActionResult",
    ] {
        assert!(ids.contains(id), "{id} missing from the generated document");
    }
}
