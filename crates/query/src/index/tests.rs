//! Unit tests for the index: incremental updates, cache patching, interning.

use serde_json::{json, Value};

use super::{Data, Index, IndexError, RowId};
use crate::query::{Allowed, CollectionQuery};
use crate::schema::{FieldType, Schema};
use crate::QueryOptions;

fn schema() -> Schema {
    Schema::new(&[
        ("name", FieldType::String),
        ("status", FieldType::Enum),
        ("units", FieldType::Number),
        ("tags", FieldType::StringArray),
        ("last.at", FieldType::DateTime),
    ])
}

fn q(raw: &str) -> CollectionQuery {
    CollectionQuery::from_query_string(Some(raw), &schema(), &QueryOptions::default(), Allowed::ALL)
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
}

fn rows(index: &Index, raw: &str) -> Vec<RowId> {
    index.query_all(&q(raw)).expect("indexed").rows
}

fn doc(name: &str, status: &str, units: f64) -> Value {
    json!({"name": name, "status": status, "units": units, "tags": [status]})
}

fn cached_orders(index: &Index) -> usize {
    index.cache.lock().map(|c| c.perms.len()).unwrap_or(0)
}

fn text_dict_len(index: &Index, path: &str) -> usize {
    let col = index.by_path.get(path).copied().expect("column");
    match &index.cols[col].data {
        Data::Text { dict, .. } | Data::TextArray { dict, .. } => dict.ids.len(),
        _ => panic!("{path} is not text"),
    }
}

#[test]
fn default_order_is_the_order_key_then_the_row() {
    let mut index = Index::new(&schema());
    index.upsert(5, 30, &doc("a", "Valid", 1.0));
    index.upsert(1, 20, &doc("b", "Valid", 1.0));
    index.upsert(9, 20, &doc("c", "Valid", 1.0));
    index.upsert(2, 10, &doc("d", "Valid", 1.0));
    assert_eq!(rows(&index, "limit=10"), vec![2, 1, 9, 5]);
    // Ties on the sort key keep the default order, in both directions.
    assert_eq!(
        rows(&index, "sort=[{'property':'units'}]"),
        vec![2, 1, 9, 5]
    );
    assert_eq!(
        rows(
            &index,
            "sort=[{'property':'units','direction':'descending'}]"
        ),
        vec![2, 1, 9, 5]
    );
    // Moving a row in the default order.
    index.upsert(5, 0, &doc("a", "Valid", 1.0));
    assert_eq!(rows(&index, "limit=10"), vec![5, 2, 1, 9]);
    assert_eq!(
        rows(&index, "sort=[{'property':'units'}]"),
        vec![5, 2, 1, 9]
    );
}

#[test]
fn single_writes_patch_cached_sort_orders() {
    let mut index = Index::new(&schema());
    for i in 0..50u32 {
        index.upsert(
            i,
            u128::from(i),
            &doc(&format!("srv{i}"), "Valid", f64::from(i)),
        );
    }
    let by_units = "sort=[{'property':'units','direction':'descending'}]&limit=3";
    let by_name = "sort=[{'property':'name','collation':'lexicographic'}]&limit=3";
    assert_eq!(rows(&index, by_units), vec![49, 48, 47]);
    assert_eq!(rows(&index, by_name), vec![0, 1, 2]);
    assert_eq!(cached_orders(&index), 2);

    index.upsert(7, 7, &doc("srv0a", "Valid", 1000.0)); // update
    index.upsert(60, 60, &doc("SRV1", "Valid", 48.5)); // insert
    assert!(index.remove(48));
    assert!(!index.remove(48));
    // Still cached (patched, not dropped), and correct.
    assert_eq!(cached_orders(&index), 2);
    assert_eq!(rows(&index, by_units), vec![7, 49, 60]);
    // Natural order, ties broken ordinally: "SRV1" before "srv1".
    assert_eq!(rows(&index, by_name), vec![0, 7, 60]);
    let cache = index.cache.lock().expect("lock");
    assert!(cache.perms.values().all(|e| e.perm.len() == 50));
}

#[test]
fn bursts_of_writes_drop_cached_orders() {
    let mut index = Index::new(&schema());
    for i in 0..10u32 {
        index.upsert(i, u128::from(i), &doc("x", "Valid", f64::from(i)));
    }
    assert_eq!(rows(&index, "sort=[{'property':'units'}]&limit=1"), vec![0]);
    assert_eq!(cached_orders(&index), 1);
    for i in 0..200u32 {
        index.upsert(
            i % 10,
            u128::from(i % 10),
            &doc("x", "Valid", f64::from(100 - i % 10)),
        );
    }
    assert_eq!(cached_orders(&index), 0);
    assert_eq!(rows(&index, "sort=[{'property':'units'}]&limit=1"), vec![9]);
}

#[test]
fn strings_are_interned_and_released() {
    let mut index = Index::new(&schema());
    for i in 0..1000u32 {
        let status = ["Valid", "Warning", "Expired"][i as usize % 3];
        index.upsert(i, u128::from(i), &doc("same", status, 1.0));
    }
    assert_eq!(text_dict_len(&index, "status"), 3);
    assert_eq!(text_dict_len(&index, "name"), 1);
    assert_eq!(text_dict_len(&index, "tags"), 3);
    index.upsert(0, 0, &doc("other", "Renamed", 1.0));
    assert_eq!(text_dict_len(&index, "status"), 4);
    index.remove(0);
    assert_eq!(text_dict_len(&index, "status"), 3);
    assert_eq!(text_dict_len(&index, "name"), 1);
    for i in (0..1000u32).filter(|i| i % 3 == 1) {
        index.remove(i);
    }
    assert_eq!(text_dict_len(&index, "status"), 2, "Warning is gone");
    let page = index
        .query_all(&q(
            "filter=[{'property':'status','operation':'equals','value':'Warning'}]",
        ))
        .expect("indexed");
    assert_eq!(page.total, 0);
    let m = index.memory();
    assert!(m.columns > 0 && m.strings > 0, "{m:?}");
}

#[test]
fn updates_change_filter_results() {
    let mut index = Index::new(&schema());
    index.upsert(0, 0, &doc("a", "Valid", 1.0));
    index.upsert(
        1,
        1,
        &json!({"name": "b", "last": {"at": "2024-01-01T00:00:00+01:00"}}),
    );
    let valid = "filter=[{'property':'status','operation':'equals','value':'Valid'}]";
    let early = "filter=[{'property':'last.at','operation':'lessThan','value':'2024-01-01'}]";
    assert_eq!(rows(&index, valid), vec![0]);
    assert_eq!(rows(&index, early), vec![1]);
    index.upsert(1, 1, &doc("b", "Valid", 2.0));
    assert_eq!(rows(&index, valid), vec![0, 1]);
    assert_eq!(rows(&index, early), Vec::<RowId>::new());
    index.upsert(0, 0, &json!({"status": null}));
    assert_eq!(rows(&index, valid), vec![1]);
    let null = "filter=[{'property':'status','operation':'equals','value':null}]";
    assert_eq!(rows(&index, null), vec![0]);
}

#[test]
fn visibility_and_paging() {
    let mut index = Index::new(&schema());
    for i in 0..20u32 {
        index.upsert(i, u128::from(i), &doc("x", "Valid", f64::from(i % 4)));
    }
    let query = q("sort=[{'property':'units'}]&offset=2&limit=3");
    let page = index.query(&query, |row| row % 2 == 0).expect("indexed");
    // Even rows by units: 0,4,8,12,16 (units 0) then 2,6,10,14,18 (units 2).
    assert_eq!(page.total, 10);
    assert_eq!(page.offset, 2);
    assert_eq!(page.rows, vec![8, 12, 16]);
    let past = q("offset=30");
    let page = index.query(&past, |_| true).expect("indexed");
    assert_eq!((page.total, page.rows.len()), (20, 0));
}

#[test]
fn queries_from_another_schema_are_refused() {
    let index = Index::new(&schema());
    let other = Schema::new(&[("units", FieldType::Integer), ("zone", FieldType::String)]);
    let parse = |raw: &str| {
        CollectionQuery::from_query_string(
            Some(raw),
            &other,
            &QueryOptions::default(),
            Allowed::ALL,
        )
        .expect("valid for the other schema")
    };
    let unknown = parse("filter=[{'property':'zone','operation':'equals','value':'x'}]");
    assert_eq!(
        index.query_all(&unknown),
        Err(IndexError {
            property: "zone".to_owned()
        })
    );
    // Same path, different type.
    let retyped = parse("sort=[{'property':'units'}]");
    assert!(index.query_all(&retyped).is_err());
}

#[test]
fn sparse_row_ids_grow_the_columns() {
    let mut index = Index::new(&schema());
    index.upsert(1000, 2, &doc("far", "Valid", 1.0));
    index.upsert(3, 1, &doc("near", "Valid", 1.0));
    assert_eq!(index.len(), 2);
    assert!(index.contains(1000) && !index.contains(999));
    assert_eq!(rows(&index, "sort=[{'property':'name'}]"), vec![1000, 3]);
}

#[test]
fn an_index_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
}
