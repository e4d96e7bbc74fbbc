//! Randomized equivalence: `Index::query` returns exactly what `CollectionQuery::apply_ref`
//! returns over the same documents in default order, across random documents (every
//! field type, nulls, missing and unconvertible values, arrays, mixed-case and Unicode
//! text, dates with different offsets and precisions), random filters (every operation,
//! nested groups, every collation), multi-key sorts, paging, a visibility predicate, and
//! interleaved inserts, updates and removals.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tallyman_query::index::{Index, RowId};
use tallyman_query::{parse_sort, CollectionQuery, FieldType, Filter, Schema};

fn schema() -> Schema {
    Schema::new(&[
        ("uid", FieldType::Uuid),
        ("status", FieldType::Enum),
        ("name", FieldType::String),
        ("created", FieldType::DateTime),
        ("day", FieldType::Date),
        ("count", FieldType::Integer),
        ("score", FieldType::Number),
        ("flag", FieldType::Boolean),
        ("tags", FieldType::StringArray),
        ("kinds", FieldType::EnumArray),
        ("sites", FieldType::UuidArray),
        ("meta", FieldType::Object),
        ("last.status", FieldType::Enum),
        ("last.at", FieldType::DateTime),
    ])
}

/// SplitMix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const TEXTS: [&str; 18] = [
    "srv1", "srv10", "Srv2", "SRV2", "srv02", "alpha", "Alpha", "ÉCOLE", "école", "straße",
    "STRASSE", "", "a b", "ΟΔΟΣ", "οδοσ", "x-1", "x01", "Acme Ltd",
];
const UUIDS: [&str; 6] = [
    "6f1c2d3e-4a5b-4c6d-8e7f-001122334455",
    "6F1C2D3E-4A5B-4C6D-8E7F-001122334455",
    "{a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d}",
    "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d",
    "00000000-0000-0000-0000-000000000003",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
];
const DATES: [&str; 9] = [
    "2024-01-01T00:00:00Z",
    "2024-01-01T01:00:00+01:00",
    "2024-01-01",
    "2024-06-01T12:30:00.5Z",
    "2024-06-01T12:30:00.5000000+00:00",
    "2024-06-01T12:30:00.4999999999Z",
    "2023-12-31T23:59:59.9999999-05:00",
    "2024-01-01 00:00",
    "2024-02-29T10:00:00+0200",
];

fn text_value(r: &mut Rng) -> Value {
    match r.below(12) {
        0 => json!(17),
        1 => json!(true),
        _ => json!(r.pick(&TEXTS)),
    }
}

fn number_value(r: &mut Rng) -> Value {
    match r.below(10) {
        0 => json!("2"),
        1 => json!("2.5"),
        2 => json!(9_007_199_254_740_993i64),
        3 => json!(-0.0),
        4 => json!(1e19),
        5 => json!(u64::MAX),
        6 => json!(r.below(7) as f64 / 2.0 - 1.5),
        _ => json!(r.below(7) as i64 - 3),
    }
}

/// A stored value: usually valid, sometimes of the wrong type.
fn stored(r: &mut Rng, ty: FieldType) -> Value {
    if r.chance(8) {
        return match r.below(4) {
            0 => json!("garbage"),
            1 => json!({"x": 1}),
            2 => json!([1, 2]),
            _ => json!(3.5),
        };
    }
    match ty {
        FieldType::String | FieldType::Enum => text_value(r),
        FieldType::Uuid => json!(r.pick(&UUIDS)),
        FieldType::DateTime | FieldType::Date => json!(r.pick(&DATES)),
        FieldType::Integer | FieldType::Number => number_value(r),
        FieldType::Boolean => r.pick(&[json!(true), json!(false), json!("TRUE"), json!("false")]),
        FieldType::StringArray | FieldType::EnumArray | FieldType::UuidArray => {
            let len = r.below(4);
            let items: Vec<Value> = (0..len)
                .map(|_| match r.below(10) {
                    0 => Value::Null,
                    1 => json!({"o": 1}),
                    _ if ty == FieldType::UuidArray => json!(r.pick(&UUIDS)),
                    _ => text_value(r),
                })
                .collect();
            Value::Array(items)
        }
        FieldType::Object => r.pick(&[json!({}), json!({"a": 1})]),
    }
}

const FIELDS: [(&str, FieldType); 13] = [
    ("uid", FieldType::Uuid),
    ("status", FieldType::Enum),
    ("name", FieldType::String),
    ("created", FieldType::DateTime),
    ("day", FieldType::Date),
    ("count", FieldType::Integer),
    ("score", FieldType::Number),
    ("flag", FieldType::Boolean),
    ("tags", FieldType::StringArray),
    ("kinds", FieldType::EnumArray),
    ("sites", FieldType::UuidArray),
    ("meta", FieldType::Object),
    ("last.status", FieldType::Enum),
];

fn document(r: &mut Rng, row: RowId) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("_row".into(), json!(row));
    for (path, ty) in FIELDS {
        if path.contains('.') {
            continue;
        }
        match r.below(10) {
            0 => {}
            1 => {
                doc.insert(path.into(), Value::Null);
            }
            _ => {
                doc.insert(path.into(), stored(r, ty));
            }
        }
    }
    let last = match r.below(6) {
        0 => None,
        1 => Some(Value::Null),
        2 => Some(json!("not an object")),
        _ => {
            let mut m = serde_json::Map::new();
            if !r.chance(15) {
                m.insert("status".into(), stored(r, FieldType::Enum));
            }
            if !r.chance(15) {
                m.insert("at".into(), stored(r, FieldType::DateTime));
            }
            Some(Value::Object(m))
        }
    };
    if let Some(last) = last {
        doc.insert("last".into(), last);
    }
    Value::Object(doc)
}

/// A client value that converts to the type.
fn client(r: &mut Rng, ty: FieldType) -> Value {
    match ty {
        FieldType::String | FieldType::Enum | FieldType::StringArray | FieldType::EnumArray => {
            match r.below(15) {
                0 => json!(17),
                1 => json!(false),
                2 => json!("SRV"),
                3 => json!("o"),
                _ => json!(r.pick(&TEXTS)),
            }
        }
        FieldType::Uuid | FieldType::UuidArray => json!(r.pick(&UUIDS)),
        FieldType::DateTime | FieldType::Date => json!(r.pick(&DATES)),
        FieldType::Integer => r.pick(&[json!(2), json!("-1"), json!(0), json!(3), json!(1e3)]),
        FieldType::Number => r.pick(&[json!(2.5), json!("2"), json!(-0.5), json!(0), json!(1e19)]),
        FieldType::Boolean => r.pick(&[json!(true), json!(false), json!("TRUE")]),
        FieldType::Object => Value::Null,
    }
}

const COLLATIONS: [Option<&str>; 4] = [
    None,
    Some("ordinal"),
    Some("ignorecase"),
    Some("lexicographic"),
];

fn leaf(r: &mut Rng) -> Value {
    let (path, ty) = r.pick(&FIELDS);
    let path = if path == "last.status" && r.chance(30) {
        "last.at"
    } else {
        path
    };
    let ty = if path == "last.at" {
        FieldType::DateTime
    } else {
        ty
    };
    let list = |r: &mut Rng, nulls: bool| -> Value {
        let n = r.below(4);
        Value::Array(
            (0..n)
                .map(|_| {
                    if nulls && r.chance(15) {
                        Value::Null
                    } else {
                        client(r, ty)
                    }
                })
                .collect(),
        )
    };
    let (op, value) = if r.chance(10) || ty == FieldType::Object {
        (r.pick(&["equals", "notEquals"]), Value::Null)
    } else if ty.is_array() {
        match r.below(6) {
            0 => ("equals", list(r, false)),
            1 => ("notEquals", list(r, false)),
            2 => ("contains", client(r, ty)),
            3 => ("in", list(r, true)),
            4 => ("subset", list(r, false)),
            _ => ("superset", list(r, false)),
        }
    } else {
        let text = matches!(ty, FieldType::String | FieldType::Enum);
        match r.below(if text { 8 } else { 7 }) {
            0 => ("equals", client(r, ty)),
            1 => ("notEquals", client(r, ty)),
            2 => ("lessThan", client(r, ty)),
            3 => ("lessThanOrEqual", client(r, ty)),
            4 => ("greaterThan", client(r, ty)),
            5 => ("greaterThanOrEqual", client(r, ty)),
            6 => ("in", list(r, true)),
            _ => ("contains", client(r, ty)),
        }
    };
    let mut e = json!({"property": path, "operation": op, "value": value});
    if let Some(c) = r.pick(&COLLATIONS) {
        e["collation"] = json!(c);
    }
    e
}

fn expr(r: &mut Rng, depth: usize) -> Value {
    if depth == 0 || r.chance(55) {
        return leaf(r);
    }
    let op = r.pick(&["and", "or", "not", "exclusiveOr"]);
    let n = r.below(4);
    let items: Vec<Value> = (0..n).map(|_| expr(r, depth - 1)).collect();
    json!({"operation": op, "items": items})
}

const SORTABLE: [&str; 10] = [
    "uid",
    "status",
    "name",
    "created",
    "day",
    "count",
    "score",
    "flag",
    "last.status",
    "last.at",
];

fn random_query(r: &mut Rng, schema: &Schema, n: usize) -> CollectionQuery {
    let filter = if r.chance(25) {
        None
    } else {
        let items: Vec<Value> = (0..1 + r.below(3)).map(|_| expr(r, 3)).collect();
        let text = Value::Array(items).to_string();
        let f = Filter::parse(&text, schema).unwrap_or_else(|e| panic!("{text}: {e}"));
        Some(f).filter(|f| !f.is_empty())
    };
    let width = if r.chance(10) {
        5 + r.below(2)
    } else {
        r.below(4)
    };
    let keys: Vec<Value> = (0..width)
        .map(|_| {
            let mut k = json!({"property": r.pick(&SORTABLE)});
            if r.chance(50) {
                k["direction"] = json!("descending");
            }
            if let Some(c) = r.pick(&COLLATIONS) {
                k["collation"] = json!(c);
            }
            k
        })
        .collect();
    let sort =
        parse_sort(&Value::Array(keys).to_string(), schema).unwrap_or_else(|e| panic!("{e}"));
    let mut q = CollectionQuery {
        filter,
        sort,
        ..CollectionQuery::default()
    };
    q.offset = if r.chance(60) { 0 } else { r.below(n + 3) };
    q.limit = if r.chance(15) {
        usize::MAX
    } else {
        1 + r.below(n + 3)
    };
    q
}

/// Checks one query against the oracle.
fn check(
    index: &Index,
    model: &BTreeMap<RowId, (u128, Value)>,
    q: &CollectionQuery,
    visible: Option<fn(RowId) -> bool>,
) {
    let mut docs: Vec<(u128, RowId, &Value)> = model
        .iter()
        .filter(|(row, _)| visible.is_none_or(|v| v(**row)))
        .map(|(row, (key, doc))| (*key, *row, doc))
        .collect();
    docs.sort_by_key(|(key, row, _)| (*key, *row));
    let expected = q.apply_ref(docs.iter().map(|(_, _, d)| *d));
    let page = match visible {
        Some(v) => index.query(q, v),
        None => index.query_all(q),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    let expected_rows: Vec<RowId> = expected
        .items
        .iter()
        .map(|d| d["_row"].as_u64().unwrap_or(u64::MAX) as RowId)
        .collect();
    assert_eq!(
        (page.total, page.offset, &page.rows),
        (expected.total, expected.offset, &expected_rows),
        "query {q:?}"
    );
}

fn hidden(row: RowId) -> bool {
    row % 3 != 1
}

#[test]
fn index_answers_like_apply_ref() {
    let schema = schema();
    let mut queries = 0;
    for seed in 0..60u64 {
        let mut r = Rng(seed.wrapping_mul(0x1234_5678_9abc_def1) ^ 0x5eed);
        let mut index = Index::new(&schema);
        let mut model: BTreeMap<RowId, (u128, Value)> = BTreeMap::new();
        let max_rows = if seed % 10 == 0 { 300 } else { 1 + r.below(70) };
        // A few queries are repeated, so cached sort orders are reused across writes.
        let mut saved: Vec<CollectionQuery> = Vec::new();
        for _ in 0..220 {
            match r.below(10) {
                0..=3 => {
                    let row = r.below(max_rows) as RowId;
                    let key = if r.chance(20) {
                        7
                    } else {
                        u128::from(r.next())
                    };
                    let key = if r.chance(30) {
                        model.get(&row).map_or(key, |m| m.0)
                    } else {
                        key
                    };
                    let doc = document(&mut r, row);
                    index.upsert(row, key, &doc);
                    model.insert(row, (key, doc));
                }
                4 => {
                    let row = r.below(max_rows) as RowId;
                    assert_eq!(index.remove(row), model.remove(&row).is_some());
                }
                _ => {
                    let q = if !saved.is_empty() && r.chance(50) {
                        r.pick(&saved)
                    } else {
                        let q = random_query(&mut r, &schema, model.len());
                        if saved.len() < 6 {
                            saved.push(q.clone());
                        }
                        q
                    };
                    let visible = if r.chance(25) {
                        Some(hidden as fn(RowId) -> bool)
                    } else {
                        None
                    };
                    check(&index, &model, &q, visible);
                    queries += 1;
                }
            }
            assert_eq!(index.len(), model.len());
        }
    }
    assert!(queries > 5000, "{queries}");
}
