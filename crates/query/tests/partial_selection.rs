//! Property test: `apply` (which uses partial selection when the page is a small part
//! of the matches) returns exactly what filtering, a full *stable* sort and slicing
//! would return.

use proptest::prelude::*;
use serde_json::{json, Value};
use tallyman_query::{Allowed, CollectionQuery, FieldType, QueryOptions, Schema};

fn schema() -> Schema {
    Schema::new(&[
        ("id", FieldType::Integer),
        ("group", FieldType::Enum),
        ("name", FieldType::String),
        ("score", FieldType::Number),
        ("at", FieldType::DateTime),
        ("flag", FieldType::Boolean),
        ("uid", FieldType::Uuid),
    ])
}

const GROUPS: [&str; 5] = ["a", "B", "b", "A10", "a2"];
const NAMES: [&str; 6] = ["srv1", "srv10", "Srv2", "SRV2", "alpha", "beta"];
const TIMES: [&str; 4] = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T01:00:00+01:00",
    "2024-06-01T12:30:00.5Z",
    "2023-12-31",
];

/// A small document; small value domains make ties, nulls and missing keys common.
fn doc() -> impl Strategy<Value = Value> {
    (
        prop::option::of(0..GROUPS.len()),
        prop::option::of(0..NAMES.len()),
        prop::option::of(prop_oneof![
            (-3i64..4).prop_map(|v| json!(v)),
            (-30i64..40).prop_map(|v| json!(v as f64 / 10.0))
        ]),
        prop::option::of(0..TIMES.len()),
        prop::option::of(any::<bool>()),
        prop::option::of(0u8..4),
        any::<bool>(),
    )
        .prop_map(|(g, n, s, t, f, u, explicit_null)| {
            let mut m = serde_json::Map::new();
            let mut put = |k: &str, v: Option<Value>| match v {
                Some(v) => {
                    m.insert(k.to_owned(), v);
                }
                None if explicit_null => {
                    m.insert(k.to_owned(), Value::Null);
                }
                None => {}
            };
            put("group", g.map(|i| json!(GROUPS[i])));
            put("name", n.map(|i| json!(NAMES[i])));
            put("score", s);
            put("at", t.map(|i| json!(TIMES[i])));
            put("flag", f.map(|b| json!(b)));
            put(
                "uid",
                u.map(|i| json!(format!("0000000{i}-0000-0000-0000-00000000000{i}"))),
            );
            Value::Object(m)
        })
}

fn sort_expr() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["group", "name", "score", "at", "flag", "uid"]),
        prop::sample::select(vec![None, Some("ascending"), Some("descending")]),
        prop::sample::select(vec![
            None,
            Some("ordinal"),
            Some("ignorecase"),
            Some("lexicographic"),
        ]),
    )
        .prop_map(|(p, d, c)| {
            let mut e = json!({ "property": p });
            if let Some(d) = d {
                e["direction"] = json!(d);
            }
            if let Some(c) = c {
                e["collation"] = json!(c);
            }
            e.to_string()
        })
}

fn filter_expr() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        (-3i64..4).prop_map(|v| format!(r#"{{"property":"score","operation":"greaterThan","value":{v}}}"#)),
        Just(r#"{"property":"group","operation":"in","collation":"ignorecase","value":["a","b"]}"#.to_owned()),
        Just(r#"{"operation":"not","items":[{"property":"flag","operation":"equals","value":true}]}"#.to_owned()),
        Just(r#"{"property":"name","operation":"contains","collation":"ignorecase","value":"srv"}"#.to_owned()),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn apply_equals_filter_full_stable_sort_and_slice(
        raw_docs in prop::collection::vec(doc(), 0..120),
        sorts in prop::collection::vec(sort_expr(), 0..4),
        filter in filter_expr(),
        offset in 0usize..140,
        limit in 1usize..140,
    ) {
        let docs: Vec<Value> = raw_docs
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| {
                d["id"] = json!(i);
                d
            })
            .collect();
        let mut raw = format!("offset={offset}&limit={limit}");
        if !sorts.is_empty() {
            raw.push_str(&format!("&sort=[{}]", sorts.join(",")));
        }
        if let Some(f) = &filter {
            raw.push_str(&format!("&filter=[{f}]"));
        }
        let opts = QueryOptions { default_limit: 100, max_limit: 1000 };
        let q = CollectionQuery::from_query_string(Some(&raw), &schema(), &opts, Allowed::ALL)
            .map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;

        let mut expected: Vec<Value> = docs.iter().filter(|d| q.matches(d)).cloned().collect();
        let total = expected.len();
        expected.sort_by(|a, b| q.compare_docs(a, b)); // stable
        let expected: Vec<Value> = expected.into_iter().skip(offset).take(limit).collect();

        let page = q.apply(docs.clone());
        prop_assert_eq!(page.total, total);
        prop_assert_eq!(page.offset, offset);
        prop_assert_eq!(&page.items, &expected, "query: {}", raw);
        let by_ref = q.apply_ref(&docs);
        prop_assert_eq!(by_ref, page);
    }
}
