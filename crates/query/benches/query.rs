//! Query-engine benchmarks over 100,000 generated license documents.
//!
//! Run: `cargo bench --bench query -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tallyman_query::index::Index;
use tallyman_query::{Allowed, CollectionQuery, FieldType, QueryOptions, Schema};

const DOCS: usize = 100_000;

fn schema() -> Schema {
    Schema::new(&[
        ("instanceUid", FieldType::Uuid),
        ("status", FieldType::Enum),
        ("company", FieldType::String),
        ("units", FieldType::Number),
        ("expirationDate", FieldType::DateTime),
        ("packages", FieldType::StringArray),
        ("autoUpdateEnabled", FieldType::Boolean),
        ("lastActivation.status", FieldType::Enum),
    ])
}

/// Deterministic pseudo-random documents (64-bit LCG), in instanceUid order.
fn documents() -> Vec<Value> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    const STATUSES: [&str; 3] = ["Valid", "Warning", "Expired"];
    const PACKAGES: [&str; 4] = ["Backup", "Replication", "CloudConnect", "Agents"];
    (0..DOCS)
        .map(|i| {
            let r = next();
            let packages: Vec<&str> = PACKAGES
                .iter()
                .enumerate()
                .filter(|(bit, _)| r >> bit & 1 == 1)
                .map(|(_, p)| *p)
                .collect();
            json!({
                "instanceUid": format!("{:08x}-{:04x}-4000-8000-{:012x}", i, r & 0xffff, r),
                "status": STATUSES[(r % 3) as usize],
                "company": format!("Company {} {}", ["Acme", "Globex", "Initech", "Umbrella", "Hooli"][(r % 5) as usize], r % 1000),
                "units": (r % 5000) as f64 / 4.0,
                "expirationDate": format!(
                    "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}+02:00",
                    24 + r % 6, 1 + (r >> 3) % 12, 1 + (r >> 7) % 28,
                    (r >> 11) % 24, (r >> 16) % 60, (r >> 22) % 60, (r >> 5) % 10_000_000
                ),
                "packages": packages,
                "autoUpdateEnabled": r % 2 == 0,
                "lastActivation": {"status": if r % 7 == 0 { "Error" } else { "Success" }, "message": "ok"},
            })
        })
        .collect()
}

fn query(raw: &str) -> CollectionQuery {
    CollectionQuery::from_query_string(Some(raw), &schema(), &QueryOptions::default(), Allowed::ALL)
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
}

fn benches(c: &mut Criterion) {
    let docs = documents();
    let mut group = c.benchmark_group("query_100k");
    group.sample_size(20);

    let a = query(
        "filter=[{'property':'status','operation':'equals','value':'Valid'}]\
         &sort=[{'property':'expirationDate','direction':'descending'}]&limit=100",
    );
    group.bench_function("a_filter_status_sort_expiration_desc_limit100", |b| {
        b.iter(|| black_box(a.apply_ref(black_box(&docs))))
    });

    let b_query = query(
        "filter=[{'property':'status','operation':'equals','value':'Valid'},\
         {'property':'company','operation':'contains','collation':'ignorecase','value':'ACME'}]\
         &sort=[{'property':'expirationDate','direction':'descending'}]&limit=100",
    );
    group.bench_function("b_plus_company_contains_ignorecase", |b| {
        b.iter(|| black_box(b_query.apply_ref(black_box(&docs))))
    });

    let c_query = query(
        "sort=[{'property':'expirationDate','direction':'descending'}]&offset=50000&limit=100",
    );
    group.bench_function("c_sort_expiration_desc_offset50000", |b| {
        b.iter(|| black_box(c_query.apply_ref(black_box(&docs))))
    });

    let unsorted = query("offset=50000&limit=100");
    group.bench_function("d_unsorted_offset50000", |b| {
        b.iter(|| black_box(unsorted.apply_ref(black_box(&docs))))
    });

    let full = query("sort=[{'property':'company','collation':'lexicographic'}]&offset=0&limit=500&select=[{'propertyPath':'company'},{'propertyPath':'lastActivation.status'}]");
    group.bench_function("e_sort_company_lexicographic_select_limit500", |b| {
        b.iter(|| black_box(full.apply_ref(black_box(&docs))))
    });
    group.finish();

    let f = query(
        "filter=[{'property':'expirationDate','operation':'lessThan','value':'2026-06-01T00:00:00Z'},\
         {'property':'units','operation':'greaterThanOrEqual','value':500}]\
         &sort=[{'property':'status'},{'property':'units','direction':'descending'}]&limit=100",
    );
    index_benches(c, &docs, [&a, &b_query, &c_query, &unsorted, &full, &f]);

    c.bench_function("parse_query_string", |b| {
        let raw = "filter=%5B%7B%22property%22%3A%22company%22%2C%22items%22%3Anull%2C%22operation%22%3A%22equals%22%2C%22collation%22%3A%22ordinal%22%2C%22value%22%3A%22Acme+Ltd%22%7D%5D\
                   &sort=[{'property':'expirationDate','direction':'descending'}]&limit=500&offset=1000";
        let schema = schema();
        let opts = QueryOptions::default();
        b.iter(|| {
            black_box(CollectionQuery::from_query_string(Some(black_box(raw)), &schema, &opts, Allowed::ALL))
        })
    });
}

fn build(docs: &[Value]) -> Index {
    let mut index = Index::new(&schema());
    for (i, doc) in docs.iter().enumerate() {
        index.upsert(i as u32, i as u128, doc);
    }
    index
}

/// The same queries answered by `Index` (rows only: rendering the page is the caller's).
fn index_benches(c: &mut Criterion, docs: &[Value], queries: [&CollectionQuery; 6]) {
    let names = ["a", "b", "c", "d", "e", "f"];
    let index = build(docs);
    let m = index.memory();
    eprintln!(
        "index over {} docs: columns {} B ({} B/row), strings {} B, sort cache {} B",
        docs.len(),
        m.columns,
        m.columns / docs.len(),
        m.strings,
        m.sort_cache
    );

    let mut group = c.benchmark_group("index_100k");
    group.sample_size(20);
    group.bench_function("build_100k", |b| {
        b.iter(|| black_box(build(black_box(docs))))
    });
    for (name, q) in names.iter().zip(queries) {
        // Cold: a fresh clone of the index has no cached sort order.
        group.bench_function(format!("{name}_cold"), |b| {
            b.iter(|| {
                index.clear_sort_cache();
                black_box(index.query_all(black_box(q)))
            })
        });
        let _ = index.query_all(q);
        group.bench_function(format!("{name}_warm"), |b| {
            b.iter(|| black_box(index.query_all(black_box(q))))
        });
        group.bench_function(format!("{name}_warm_visible"), |b| {
            b.iter(|| black_box(index.query(black_box(q), |row| row % 10 != 3)))
        });
    }
    // One write with every query's sort order cached, then the next (warm) query.
    let mut index = index;
    let mut i = 0usize;
    // Writes are measured with a query after each (as in service): a long run of
    // writes without queries drops the caches instead of patching them.
    group.bench_function("upsert_one_then_d", |b| {
        b.iter(|| {
            i = (i + 7919) % docs.len();
            let mut doc = docs[i].clone();
            doc["units"] = json!(i as f64);
            doc["expirationDate"] = json!("2031-01-01T00:00:00Z");
            index.upsert(i as u32, i as u128, black_box(&doc));
            black_box(index.query_all(queries[3]))
        })
    });
    group.bench_function("upsert_one_then_a", |b| {
        b.iter(|| {
            i = (i + 7919) % docs.len();
            let mut doc = docs[i].clone();
            doc["expirationDate"] = json!("2031-01-01T00:00:00Z");
            index.upsert(i as u32, i as u128, black_box(&doc));
            black_box(index.query_all(queries[0]))
        })
    });
    group.finish();
}

criterion_group!(query_benches, benches);
criterion_main!(query_benches);
