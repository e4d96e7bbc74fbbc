//! End-to-end tests through `CollectionQuery::from_query_string`, following the paging,
//! filter, sort and select cases of the VSPC conventions (test cases 21–37) and the
//! real-world client spellings they list.

use serde_json::{json, Value};
use tallyman_query::{
    parse_select_param, Allowed, CollectionQuery, FieldType, Page, QueryError, QueryOptions,
    Schema, MAX_VALUE_CHARS,
};

const STATUSES: [&str; 3] = ["Valid", "Warning", "Expired"];

fn schema() -> Schema {
    Schema::new(&[
        ("instanceUid", FieldType::Uuid),
        ("backupServerUid", FieldType::Uuid),
        ("status", FieldType::Enum),
        ("company", FieldType::String),
        ("units", FieldType::Number),
        ("expirationDate", FieldType::DateTime),
        ("packages", FieldType::StringArray),
        ("lastActivation.status", FieldType::Enum),
        ("lastActivation.message", FieldType::String),
    ])
}

fn uid(prefix: u32, i: usize) -> String {
    format!("{prefix:08x}-0000-4000-8000-{i:012x}")
}

/// 150 backup-server licenses in their default (instanceUid) order.
fn fixtures() -> Vec<Value> {
    (0..150)
        .map(|i| {
            let company = if i == 42 { "Acme Ltd".to_owned() } else { format!("Company {}", i % 17) };
            json!({
                "instanceUid": uid(0xaaaa_0000, i),
                "backupServerUid": uid(0xbbbb_0000, i),
                "status": STATUSES[i % 3],
                "company": company,
                "units": (i * 37) % 250,
                "expirationDate": format!("2025-{:02}-{:02}T12:00:00.0000000+02:00", 1 + i % 12, 1 + i % 28),
                "packages": if i % 2 == 0 { json!(["Backup"]) } else { json!(["Backup", "Replication"]) },
                "lastActivation": {"status": if i % 5 == 0 { "Error" } else { "Success" }, "message": "ok"},
            })
        })
        .collect()
}

fn query(raw: &str) -> Result<CollectionQuery, QueryError> {
    CollectionQuery::from_query_string(Some(raw), &schema(), &QueryOptions::default(), Allowed::ALL)
}

fn run(raw: &str) -> Page {
    let q = query(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
    let owned = q.apply(fixtures());
    let docs = fixtures();
    assert_eq!(
        owned,
        q.apply_ref(&docs),
        "apply and apply_ref agree for {raw}"
    );
    owned
}

fn error(raw: &str) -> QueryError {
    query(raw).expect_err(raw)
}

/// Percent-encodes every byte except unreserved characters, like a careful client.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn field<'a>(page: &'a Page, name: &str) -> Vec<&'a str> {
    page.items
        .iter()
        .map(|d| d[name].as_str().unwrap_or(""))
        .collect()
}

fn expected_uids(pred: impl Fn(&Value) -> bool) -> Vec<String> {
    fixtures()
        .into_iter()
        .filter(|d| pred(d))
        .map(|d| d["instanceUid"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn all(raw_filter: &str) -> Vec<String> {
    let page = run(&format!("{raw_filter}&limit=500"));
    assert_eq!(page.total, page.items.len());
    field(&page, "instanceUid")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

// ---- paging (21-27) ---------------------------------------------------------------------

#[test]
fn case21_limit_above_max() {
    let e = error("limit=501");
    assert_eq!(e.parameter, "limit");
    assert_eq!(e.message, "Property value must be between 1 and 500.");
}

#[test]
fn case22_limit_zero_or_not_a_number() {
    for raw in ["limit=0", "limit=abc", "limit=-5", "limit=1.5"] {
        assert_eq!(error(raw).parameter, "limit", "{raw}");
    }
}

#[test]
fn case23_negative_offset() {
    let e = error("offset=-1");
    assert_eq!(e.parameter, "offset");
    assert_eq!(e.message, "Property value must be larger or equal to 0.");
    assert_eq!(error("offset=2147483648").parameter, "offset");
    assert_eq!(error("offset=x").parameter, "offset");
}

#[test]
fn case24_default_page() {
    let page = run("");
    assert_eq!((page.count(), page.total, page.offset), (100, 150, 0));
    let none =
        CollectionQuery::from_query_string(None, &schema(), &QueryOptions::default(), Allowed::ALL)
            .expect("no query string");
    assert_eq!(none.apply(fixtures()), page);
}

#[test]
fn case25_parameter_order_does_not_matter() {
    let a = run("limit=2&offset=1");
    let b = run("offset=1&limit=2");
    assert_eq!(a, b);
    assert_eq!((a.count(), a.offset, a.total), (2, 1, 150));
    let f = fixtures();
    assert_eq!(a.items, vec![f[1].clone(), f[2].clone()]);
}

#[test]
fn case26_offset_past_the_end() {
    let page = run("offset=10000");
    assert_eq!((page.count(), page.total, page.offset), (0, 150, 10000));
    let page = run("offset=2147483647&limit=500");
    assert_eq!((page.count(), page.total), (0, 150));
    let page = run("offset=150");
    assert_eq!((page.count(), page.total), (0, 150));
    let page = run("offset=149");
    assert_eq!(page.count(), 1);
}

#[test]
fn case27_walking_pages_sees_every_item_once_in_a_stable_order() {
    let walk = || -> Vec<String> {
        [0, 100]
            .iter()
            .flat_map(|o| {
                let p = run(&format!("limit=100&offset={o}"));
                field(&p, "instanceUid")
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let first = walk();
    assert_eq!(first.len(), 150);
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 150);
    assert_eq!(first, walk());
    // The same holds for a sorted walk with many ties.
    let sorted_walk = |o: usize| {
        run(&format!(
            "sort=[{{'property':'status'}}]&limit=100&offset={o}"
        ))
    };
    let mut uids: Vec<String> = [0, 100]
        .iter()
        .flat_map(|&o| {
            field(&sorted_walk(o), "instanceUid")
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 150);
}

// ---- filter (28-35) ---------------------------------------------------------------------

const VALID: &str = r#"[{"property":"status","operation":"equals","value":"Valid"}]"#;

#[test]
fn case28_percent_encoded_filter() {
    let page = run(&format!("filter={}", enc(VALID)));
    assert_eq!(page.total, 50);
    assert!(page.items.iter().all(|d| d["status"] == "Valid"));
    assert_eq!(
        all(&format!("filter={}", enc(VALID))),
        expected_uids(|d| d["status"] == "Valid")
    );
}

#[test]
fn case29_single_quotes_and_raw_brackets() {
    let raw = "filter=[{'property':'status','operation':'equals','value':'Valid'}]";
    assert_eq!(run(raw), run(&format!("filter={}", enc(VALID))));
}

#[test]
fn case30_default_collation_is_case_sensitive() {
    let lower = r#"[{"property":"status","operation":"equals","value":"valid"}]"#;
    assert_eq!(run(&format!("filter={}", enc(lower))).total, 0);
    let ignore =
        r#"[{"property":"status","operation":"equals","collation":"ignorecase","value":"valid"}]"#;
    assert_eq!(
        run(&format!("filter={}", enc(ignore))),
        run(&format!("filter={}", enc(VALID)))
    );
}

#[test]
fn case31_or_and_not() {
    let or = r#"[{"operation":"or","items":[{"property":"status","operation":"equals","value":"Valid"},{"property":"status","operation":"equals","value":"Warning"}]}]"#;
    assert_eq!(
        all(&format!("filter={}", enc(or))),
        expected_uids(|d| d["status"] != "Expired")
    );
    let not = r#"[{"operation":"not","items":[{"property":"status","operation":"equals","value":"Valid"}]}]"#;
    assert_eq!(
        all(&format!("filter={}", enc(not))),
        expected_uids(|d| d["status"] != "Valid")
    );
}

#[test]
fn case32_in_equals_or() {
    let in_ = r#"[{"property":"status","operation":"in","value":["Valid","Warning"]}]"#;
    assert_eq!(
        all(&format!("filter={}", enc(in_))),
        expected_uids(|d| d["status"] != "Expired")
    );
}

#[test]
fn case33_php_style_number_as_string() {
    let php = r#"[{"property":"units","items":null,"operation":"greaterThanOrEqual","collation":"ordinal","value":"100"}]"#;
    let got = all(&format!("filter={}", enc(php)));
    assert!(!got.is_empty());
    assert_eq!(
        got,
        expected_uids(|d| d["units"].as_u64().unwrap_or(0) >= 100)
    );
}

#[test]
fn case34_plus_means_space() {
    // Exactly what PHP's http_build_query sends.
    let raw = "filter=%5B%7B%22property%22%3A%22company%22%2C%22items%22%3Anull%2C%22operation%22%3A%22equals%22%2C%22collation%22%3A%22ordinal%22%2C%22value%22%3A%22Acme+Ltd%22%7D%5D";
    let page = run(raw);
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0]["company"], "Acme Ltd");
}

#[test]
fn case35_unknown_property_and_malformed_json() {
    let e = error(&format!(
        "filter={}",
        enc(r#"[{"property":"noSuchField","operation":"equals","value":1}]"#)
    ));
    assert_eq!(e.parameter, "filter");
    assert!(e.message.contains("noSuchField"));
    assert_eq!(error("filter=[{").parameter, "filter");
    assert_eq!(error("filter=%5B%7B").parameter, "filter");
}

#[test]
fn real_world_spellings_from_scripts() {
    // PS-CSV: notEquals + ignorecase, with a trailing limit.
    let raw = "filter=[{'property':'status','operation':'notEquals','collation':'ignorecase','value':'VALID'}]&limit=500";
    assert_eq!(run(raw).total, 100);
    // PS-HOSTED: a UUID compared with ignorecase, next to an unrelated `expand`.
    let target = uid(0xbbbb_0000, 7).to_uppercase();
    let raw = format!(
        r#"filter=[{{"property":"backupServerUid","operation":"equals","collation":"ignorecase","value":"{target}"}}]&expand=BackupServer"#
    );
    let page = run(&raw);
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0]["instanceUid"], uid(0xaaaa_0000, 7));
    // PRTG: double-quoted JSON, not URL-encoded at all.
    let raw = format!(
        r#"filter=[{{"property":"backupServerUid","operation":"equals","value":"{}"}}]"#,
        uid(0xbbbb_0000, 9)
    );
    assert_eq!(run(&raw).total, 1);
    // PS-USAGE: numbers as numbers inside an `or`.
    let raw = "filter=[{'operation':'or','items':[{'property':'units','operation':'equals','value':0},{'property':'units','operation':'equals','value':37}]}]";
    assert_eq!(
        run(raw).total,
        expected_uids(|d| d["units"] == 0 || d["units"] == 37).len()
    );
}

// ---- sort (36) --------------------------------------------------------------------------

fn instants(page: &Page) -> Vec<String> {
    // Fixtures share one offset, so text order equals instant order here.
    field(page, "expirationDate")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn case36_sorting() {
    let desc = run(&format!(
        "sort={}&limit=500",
        enc(r#"[{"property":"expirationDate","direction":"descending"}]"#)
    ));
    let d = instants(&desc);
    assert!(d.windows(2).all(|w| w[0] >= w[1]));
    let asc = run("sort=[{'property':'expirationDate'}]&limit=500");
    let a = instants(&asc);
    assert!(a.windows(2).all(|w| w[0] <= w[1]));
    assert_ne!(a, d);
    // Two keys: ties on status are ordered by units (descending), then by input order.
    let two =
        run("sort=[{'property':'status'},{'property':'units','direction':'descending'}]&limit=500");
    let pairs: Vec<(String, i64)> = two
        .items
        .iter()
        .map(|x| {
            (
                x["status"].as_str().unwrap_or("").to_owned(),
                x["units"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    for w in pairs.windows(2) {
        assert!(
            w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 >= w[1].1),
            "{w:?}"
        );
    }
    assert_eq!(pairs[0].0, "Expired");
}

#[test]
fn sort_ties_keep_the_input_order() {
    let page = run("sort=[{'property':'status'}]&limit=500");
    let expired: Vec<&str> = page
        .items
        .iter()
        .filter(|d| d["status"] == "Expired")
        .map(|d| d["instanceUid"].as_str().unwrap_or(""))
        .collect();
    let expected = expected_uids(|d| d["status"] == "Expired");
    assert_eq!(expired, expected);
    // Same ordering when the page is cut out of the middle (partial selection path).
    let middle = run("sort=[{'property':'status'}]&offset=40&limit=30");
    assert_eq!(middle.items, page.items[40..70].to_vec());
}

#[test]
fn sort_errors() {
    assert_eq!(error("sort=[{'property':'nope'}]").parameter, "sort");
    assert_eq!(error("sort=[{'property':'packages'}]").parameter, "sort");
    assert_eq!(
        error("sort=[{'property':'status','direction':'sideways'}]").parameter,
        "sort"
    );
    assert_eq!(error("sort=[").parameter, "sort");
}

// ---- select (37) ------------------------------------------------------------------------

#[test]
fn case37_select_keeps_exactly_the_listed_keys() {
    let raw = format!(
        "select={}",
        enc(r#"[{"propertyPath":"backupServerUid"},{"propertyPath":"status"}]"#)
    );
    let page = run(&raw);
    let plain = run("");
    assert_eq!(
        (page.total, page.offset, page.count()),
        (plain.total, plain.offset, plain.count())
    );
    for item in &page.items {
        let keys: Vec<&String> = item
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 2, "{item}");
        assert!(item.get("backupServerUid").is_some() && item.get("status").is_some());
    }
}

#[test]
fn select_nested_paths_and_filters_on_unselected_fields() {
    let raw = "select=[{'propertyPath':'lastActivation.status'}]&filter=[{'property':'status','operation':'equals','value':'Expired'}]&sort=[{'property':'units'}]&limit=3";
    let page = run(raw);
    assert_eq!(page.total, 50);
    assert_eq!(page.count(), 3);
    for item in &page.items {
        assert_eq!(item.as_object().map(|o| o.len()), Some(1));
        assert!(item["lastActivation"]
            .as_object()
            .is_some_and(|o| o.len() == 1 && o.contains_key("status")));
    }
    assert_eq!(
        error("select=[{'propertyPath':'nope'}]").parameter,
        "select"
    );
}

#[test]
fn parse_select_param_for_single_resources() {
    let s = parse_select_param(
        Some("select=[{'propertyPath':'status'}]&filter=garbage&limit=0"),
        &schema(),
    )
    .expect("filter and limit are not read")
    .expect("a selection");
    assert_eq!(s.project(&fixtures()[0]), json!({"status": "Valid"}));
    assert!(parse_select_param(None, &schema()).expect("ok").is_none());
    assert!(parse_select_param(Some("select=[]"), &schema())
        .expect("ok")
        .is_none());
    assert!(parse_select_param(Some("select="), &schema())
        .expect("ok")
        .is_none());
    assert_eq!(
        parse_select_param(Some("select=[{'propertyPath':'x'}]"), &schema())
            .expect_err("bad")
            .parameter,
        "select"
    );
}

// ---- query-string handling ----------------------------------------------------------------

#[test]
fn parameter_names_are_case_insensitive() {
    assert_eq!(run("LIMIT=2&Offset=1"), run("limit=2&offset=1"));
    let page = run("Filter=[{'property':'status','operation':'equals','value':'Valid'}]");
    assert_eq!(page.total, 50);
}

#[test]
fn repeated_parameters_use_the_first() {
    assert_eq!(run("limit=2&limit=5").count(), 2);
    assert_eq!(run("limit=2&limit=abc").count(), 2);
    assert_eq!(error("limit=abc&limit=2").parameter, "limit");
}

#[test]
fn empty_values_count_as_absent() {
    let page = run("limit=&offset=&filter=&sort=&select=");
    assert_eq!((page.count(), page.total), (100, 150));
    assert_eq!(page, run(""));
}

#[test]
fn first_error_is_reported_in_a_fixed_order() {
    assert_eq!(
        error("select=[{'propertyPath':'x'}]&filter=[{&limit=0").parameter,
        "limit"
    );
    assert_eq!(
        error("select=[{'propertyPath':'x'}]&filter=[{&offset=-1").parameter,
        "offset"
    );
    assert_eq!(
        error("select=[{'propertyPath':'x'}]&sort=[&filter=[{").parameter,
        "filter"
    );
    assert_eq!(
        error("select=[{'propertyPath':'x'}]&sort=[").parameter,
        "sort"
    );
}

#[test]
fn undeclared_parameters_are_ignored() {
    let opts = QueryOptions::default();
    let raw = "filter=[{&sort=[&select=x&limit=0&offset=-1";
    let q = CollectionQuery::from_query_string(Some(raw), &schema(), &opts, Allowed::NONE)
        .expect("nothing read");
    let page = q.apply(fixtures());
    assert_eq!(
        (page.total, page.count(), page.offset),
        (150, 150, 0),
        "unpaged: everything"
    );
    let only_select = Allowed {
        select: true,
        ..Allowed::NONE
    };
    let e = CollectionQuery::from_query_string(Some(raw), &schema(), &opts, only_select)
        .expect_err("select read");
    assert_eq!(e.parameter, "select");
    let only_sort = Allowed {
        sort: true,
        ..Allowed::NONE
    };
    let e = CollectionQuery::from_query_string(Some(raw), &schema(), &opts, only_sort)
        .expect_err("sort read");
    assert_eq!(e.parameter, "sort");
}

#[test]
fn configurable_page_size() {
    let opts = QueryOptions {
        default_limit: 20,
        max_limit: 1000,
    };
    let q = CollectionQuery::from_query_string(Some("limit=1000"), &schema(), &opts, Allowed::ALL)
        .expect("ok");
    assert_eq!(q.limit, 1000);
    let q = CollectionQuery::from_query_string(None, &schema(), &opts, Allowed::ALL).expect("ok");
    assert_eq!(q.apply(fixtures()).count(), 20);
    let e = CollectionQuery::from_query_string(Some("limit=1001"), &schema(), &opts, Allowed::ALL)
        .expect_err("too big");
    assert_eq!(e.message, "Property value must be between 1 and 1000.");
}

#[test]
fn overlong_values_are_rejected() {
    let long = format!("filter={}", " ".repeat(MAX_VALUE_CHARS + 1));
    assert_eq!(error(&long).parameter, "filter");
}

#[test]
fn filter_sort_page_select_compose() {
    let raw = "filter=[{'property':'packages','operation':'contains','value':'Replication'}]\
               &sort=[{'property':'units','direction':'descending'},{'property':'company','collation':'lexicographic'}]\
               &offset=5&limit=10&select=[{'propertyPath':'units'},{'propertyPath':'packages'}]";
    let page = run(raw);
    assert_eq!(page.total, 75);
    assert_eq!(page.count(), 10);
    let units: Vec<i64> = page
        .items
        .iter()
        .map(|d| d["units"].as_i64().unwrap_or(-1))
        .collect();
    assert!(units.windows(2).all(|w| w[0] >= w[1]));
    let mut all_units: Vec<i64> = fixtures()
        .iter()
        .filter(|d| d["packages"].as_array().is_some_and(|p| p.len() == 2))
        .map(|d| d["units"].as_i64().unwrap_or(-1))
        .collect();
    all_units.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(units, all_units[5..15].to_vec());
}
