//! Unit tests for filter parsing and evaluation.

use serde_json::{json, Value};

use super::Filter;
use crate::schema::{FieldType, Schema};

const U1: &str = "6f1c2d3e-4a5b-4c6d-8e7f-001122334455";
const U2: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const U3: &str = "00000000-0000-0000-0000-000000000003";

fn schema() -> Schema {
    Schema::new(&[
        ("n", FieldType::Integer),
        ("instanceUid", FieldType::Uuid),
        ("status", FieldType::Enum),
        ("company", FieldType::String),
        ("units", FieldType::Number),
        ("expirationDate", FieldType::DateTime),
        ("supportDate", FieldType::Date),
        ("autoUpdate", FieldType::Boolean),
        ("packages", FieldType::StringArray),
        ("editions", FieldType::EnumArray),
        ("siteUids", FieldType::UuidArray),
        ("lastActivation.status", FieldType::Enum),
        ("lastActivation.time", FieldType::DateTime),
        ("settings", FieldType::Object),
    ])
}

fn docs() -> Vec<Value> {
    vec![
        json!({
            "n": 1, "instanceUid": U1, "status": "Valid", "company": "Acme Ltd", "units": 100,
            "expirationDate": "2025-03-01T10:00:00.0000000+01:00", "supportDate": "2025-03-01",
            "autoUpdate": true, "packages": ["Backup", "Replication"], "editions": ["Enterprise"],
            "siteUids": [U2], "lastActivation": {"status": "Error", "time": "2024-01-01T00:00:00Z"},
            "settings": {"x": 1}
        }),
        json!({
            "n": 2, "instanceUid": U2, "status": "Warning", "company": "acme ltd", "units": 50.5,
            "expirationDate": "2025-03-01T09:00:00Z", "supportDate": "2025-02-28",
            "autoUpdate": false, "packages": ["Backup"], "editions": [],
            "siteUids": [U1, U2], "lastActivation": {"status": "Success"}, "settings": null
        }),
        json!({
            "n": 3, "instanceUid": U3, "status": "Expired", "company": "srv10 Corp", "units": 7,
            "expirationDate": "2024-12-31T23:59:59.9999999Z",
            "autoUpdate": "true", "packages": ["Agent", "Backup", "Cloud"],
            "lastActivation": null
        }),
        json!({
            "n": 4, "status": "Valid", "company": "srv2 Corp", "units": "250",
            "expirationDate": null, "packages": null
        }),
    ]
}

/// The `n` of every document the filter keeps.
fn ns(filter: &str) -> Vec<i64> {
    let f = Filter::parse(filter, &schema()).unwrap_or_else(|e| panic!("{filter}: {e}"));
    docs()
        .iter()
        .filter(|d| f.matches(d))
        .filter_map(|d| d["n"].as_i64())
        .collect()
}

/// Shorthand for a one-leaf filter.
fn leaf(property: &str, operation: &str, value: Value) -> String {
    json!([{ "property": property, "operation": operation, "value": value }]).to_string()
}

fn leaf_c(property: &str, operation: &str, collation: &str, value: Value) -> String {
    json!([{ "property": property, "operation": operation, "collation": collation, "value": value }])
        .to_string()
}

fn err(filter: &str) -> String {
    let e = Filter::parse(filter, &schema()).expect_err(filter);
    assert_eq!(e.parameter, "filter", "{filter}");
    e.message
}

// ---- comparison operations -------------------------------------------------------------

#[test]
fn equals_and_not_equals_on_text() {
    assert_eq!(ns(&leaf("status", "equals", json!("Valid"))), [1, 4]);
    assert_eq!(ns(&leaf("status", "notEquals", json!("Valid"))), [2, 3]);
    assert_eq!(
        ns(&leaf("status", "equals", json!("valid"))),
        Vec::<i64>::new()
    );
}

#[test]
fn ordering_operations_on_numbers() {
    assert_eq!(ns(&leaf("units", "lessThan", json!(50.5))), [3]);
    assert_eq!(ns(&leaf("units", "lessThanOrEqual", json!(50.5))), [2, 3]);
    assert_eq!(ns(&leaf("units", "greaterThan", json!(100))), [4]);
    assert_eq!(ns(&leaf("units", "greaterThanOrEqual", json!(100))), [1, 4]);
}

#[test]
fn ordering_operations_on_text_use_collation() {
    assert_eq!(ns(&leaf("company", "lessThan", json!("B"))), [1]);
    assert_eq!(
        ns(&leaf_c("company", "lessThan", "ignorecase", json!("B"))),
        [1, 2]
    );
    // Natural order: "srv10 Corp" > "srv9", "srv2 Corp" < "srv9".
    assert_eq!(
        ns(&leaf_c(
            "company",
            "greaterThan",
            "lexicographic",
            json!("srv9")
        )),
        [3]
    );
    assert_eq!(
        ns(&leaf_c("company", "greaterThan", "ordinal", json!("srv9"))),
        Vec::<i64>::new()
    );
}

#[test]
fn contains_on_text_with_each_collation() {
    assert_eq!(ns(&leaf("company", "contains", json!("Acme"))), [1]);
    assert_eq!(
        ns(&leaf_c("company", "contains", "ignorecase", json!("ACME"))),
        [1, 2]
    );
    assert_eq!(
        ns(&leaf_c(
            "company",
            "contains",
            "lexicographic",
            json!("Corp")
        )),
        [3, 4]
    );
    assert_eq!(ns(&leaf("company", "contains", json!(""))), [1, 2, 3, 4]);
}

#[test]
fn contains_on_arrays_is_membership() {
    assert_eq!(
        ns(&leaf("packages", "contains", json!("Backup"))),
        [1, 2, 3]
    );
    assert_eq!(
        ns(&leaf("packages", "contains", json!("backup"))),
        Vec::<i64>::new()
    );
    assert_eq!(
        ns(&leaf_c(
            "packages",
            "contains",
            "ignorecase",
            json!("backup")
        )),
        [1, 2, 3]
    );
    // Not a substring test on elements.
    assert_eq!(
        ns(&leaf("packages", "contains", json!("Back"))),
        Vec::<i64>::new()
    );
    assert_eq!(
        ns(&leaf("siteUids", "contains", json!(U1.to_uppercase()))),
        [2]
    );
}

#[test]
fn in_on_scalars_and_arrays() {
    assert_eq!(
        ns(&leaf("status", "in", json!(["Valid", "Warning"]))),
        [1, 2, 4]
    );
    assert_eq!(ns(&leaf("status", "in", json!([]))), Vec::<i64>::new());
    assert_eq!(ns(&leaf("units", "in", json!(["7", 250]))), [3, 4]);
    assert_eq!(
        ns(&leaf("lastActivation.status", "in", json!(["Error", null]))),
        [1, 3, 4]
    );
    // Arrays: some element is listed.
    assert_eq!(
        ns(&leaf("packages", "in", json!(["Cloud", "Replication"]))),
        [1, 3]
    );
    assert_eq!(ns(&leaf("packages", "in", json!([null]))), [4]);
}

#[test]
fn subset_and_superset() {
    assert_eq!(
        ns(&leaf(
            "packages",
            "subset",
            json!(["Backup", "Replication"])
        )),
        [1, 2]
    );
    assert_eq!(
        ns(&leaf(
            "packages",
            "superset",
            json!(["Backup", "Replication"])
        )),
        [1]
    );
    assert_eq!(
        ns(&leaf("packages", "superset", json!(["Backup"]))),
        [1, 2, 3]
    );
    // The empty array is a subset of everything; missing arrays match neither.
    assert_eq!(
        ns(&leaf("editions", "subset", json!(["Enterprise"]))),
        [1, 2]
    );
    assert_eq!(ns(&leaf("packages", "superset", json!([]))), [1, 2, 3]);
    assert_eq!(
        ns(&leaf_c(
            "packages",
            "superset",
            "ignorecase",
            json!(["BACKUP", "agent"])
        )),
        [3]
    );
}

#[test]
fn equals_on_arrays_is_set_equality() {
    assert_eq!(
        ns(&leaf(
            "packages",
            "equals",
            json!(["Replication", "Backup"])
        )),
        [1]
    );
    assert_eq!(
        ns(&leaf(
            "packages",
            "notEquals",
            json!(["Replication", "Backup"])
        )),
        [2, 3, 4]
    );
    assert_eq!(ns(&leaf("editions", "equals", json!([]))), [2]);
}

// ---- null handling ----------------------------------------------------------------------

#[test]
fn null_value_tests_presence() {
    assert_eq!(ns(&leaf("expirationDate", "equals", json!(null))), [4]);
    assert_eq!(
        ns(&leaf("expirationDate", "notEquals", json!(null))),
        [1, 2, 3]
    );
    assert_eq!(ns(&leaf("supportDate", "equals", json!(null))), [3, 4]);
    assert_eq!(ns(&leaf("lastActivation", "equals", json!(null))), [3, 4]);
    assert_eq!(
        ns(&leaf("lastActivation.status", "equals", json!(null))),
        [3, 4]
    );
    assert_eq!(ns(&leaf("settings", "notEquals", json!(null))), [1]);
    assert_eq!(ns(&leaf("packages", "equals", json!(null))), [4]);
    // An absent "value" key means null.
    assert_eq!(
        ns(r#"[{"property":"supportDate","operation":"equals"}]"#),
        [3, 4]
    );
}

#[test]
fn comparisons_with_missing_values_are_false_except_not_equals() {
    assert_eq!(
        ns(&leaf("supportDate", "lessThan", json!("2030-01-01"))),
        [1, 2]
    );
    assert_eq!(
        ns(&leaf("supportDate", "greaterThan", json!("1990-01-01"))),
        [1, 2]
    );
    assert_eq!(ns(&leaf("supportDate", "equals", json!("2025-03-01"))), [1]);
    assert_eq!(
        ns(&leaf("supportDate", "notEquals", json!("2025-03-01"))),
        [2, 3, 4]
    );
    assert_eq!(
        ns(&leaf(
            "packages",
            "subset",
            json!(["Backup", "Agent", "Cloud", "Replication"])
        )),
        [1, 2, 3]
    );
}

// ---- groups -----------------------------------------------------------------------------

#[test]
fn top_level_expressions_are_anded() {
    let f = r#"[{"property":"status","operation":"equals","value":"Valid"},
               {"property":"units","operation":"lessThan","value":200}]"#;
    assert_eq!(ns(f), [1]);
    assert_eq!(ns("[]"), [1, 2, 3, 4]);
    assert_eq!(ns("null"), [1, 2, 3, 4]);
}

#[test]
fn and_or_groups_nest() {
    let f = r#"[{"operation":"or","items":[
        {"property":"status","operation":"equals","value":"Expired"},
        {"operation":"and","items":[
            {"property":"status","operation":"equals","value":"Valid"},
            {"property":"units","operation":"greaterThan","value":200}]}]}]"#;
    assert_eq!(ns(f), [3, 4]);
}

#[test]
fn not_negates_the_conjunction_of_its_items() {
    let valid = r#"{"property":"status","operation":"equals","value":"Valid"}"#;
    let big = r#"{"property":"units","operation":"greaterThanOrEqual","value":100}"#;
    assert_eq!(
        ns(&format!(r#"[{{"operation":"not","items":[{valid}]}}]"#)),
        [2, 3]
    );
    // Valid AND big holds for 1 and 4, so `not` keeps the others.
    assert_eq!(
        ns(&format!(
            r#"[{{"operation":"not","items":[{valid},{big}]}}]"#
        )),
        [2, 3]
    );
    let small = r#"{"property":"units","operation":"lessThan","value":100}"#;
    // Valid AND small holds for no document (doc 1 has 100 units, doc 4 has 250).
    assert_eq!(
        ns(&format!(
            r#"[{{"operation":"not","items":[{valid},{small}]}}]"#
        )),
        [1, 2, 3, 4]
    );
    assert_eq!(ns(r#"[{"operation":"not","items":[]}]"#), Vec::<i64>::new());
}

#[test]
fn exclusive_or_needs_exactly_one() {
    let valid = r#"{"property":"status","operation":"equals","value":"Valid"}"#;
    let big = r#"{"property":"units","operation":"greaterThan","value":60}"#;
    // valid: 1,4 ; big: 1,4 -> no document matches exactly one.
    assert_eq!(
        ns(&format!(
            r#"[{{"operation":"exclusiveOr","items":[{valid},{big}]}}]"#
        )),
        Vec::<i64>::new()
    );
    let acme =
        r#"{"property":"company","operation":"contains","collation":"ignorecase","value":"acme"}"#;
    // valid: 1,4 ; acme: 1,2 -> exactly one: 2, 4.
    assert_eq!(
        ns(&format!(
            r#"[{{"operation":"exclusiveOr","items":[{valid},{acme}]}}]"#
        )),
        [2, 4]
    );
    let three = format!(r#"[{{"operation":"exclusiveOr","items":[{valid},{acme},{big}]}}]"#);
    // counts: 1 -> 3, 2 -> 1, 3 -> 0, 4 -> 2.
    assert_eq!(ns(&three), [2]);
}

#[test]
fn empty_groups_follow_identities() {
    assert_eq!(ns(r#"[{"operation":"and","items":[]}]"#), [1, 2, 3, 4]);
    assert_eq!(ns(r#"[{"operation":"or","items":[]}]"#), Vec::<i64>::new());
    assert_eq!(
        ns(r#"[{"operation":"exclusiveOr","items":[]}]"#),
        Vec::<i64>::new()
    );
}

// ---- coercions --------------------------------------------------------------------------

#[test]
fn numbers_given_as_strings() {
    assert_eq!(
        ns(&leaf("units", "greaterThanOrEqual", json!("100"))),
        [1, 4]
    );
    assert_eq!(ns(&leaf("n", "equals", json!("3"))), [3]);
    assert_eq!(ns(&leaf("n", "equals", json!(3.0))), [3]);
    assert_eq!(ns(&leaf("units", "equals", json!("50.50"))), [2]);
}

#[test]
fn booleans_given_as_strings() {
    assert_eq!(ns(&leaf("autoUpdate", "equals", json!("true"))), [1, 3]);
    assert_eq!(ns(&leaf("autoUpdate", "equals", json!(true))), [1, 3]);
    assert_eq!(ns(&leaf("autoUpdate", "equals", json!("FALSE"))), [2]);
}

#[test]
fn uuids_compare_by_value() {
    assert_eq!(
        ns(&leaf("instanceUid", "equals", json!(U2.to_uppercase()))),
        [2]
    );
    assert_eq!(
        ns(&leaf_c("instanceUid", "equals", "ignorecase", json!(U2))),
        [2]
    );
    assert_eq!(
        ns(&leaf("instanceUid", "equals", json!(format!("{{{U1}}}")))),
        [1]
    );
    assert_eq!(
        ns(&leaf("instanceUid", "equals", json!(U1.replace('-', "")))),
        [1]
    );
    assert_eq!(ns(&leaf("instanceUid", "in", json!([U1, U3]))), [1, 3]);
    assert_eq!(
        ns(&leaf(
            "siteUids",
            "superset",
            json!([U2.to_uppercase(), U1])
        )),
        [2]
    );
}

#[test]
fn dates_compare_as_instants() {
    // Doc 1 is 09:00Z written with +01:00; doc 2 is 09:00Z.
    assert_eq!(
        ns(&leaf(
            "expirationDate",
            "equals",
            json!("2025-03-01T09:00:00Z")
        )),
        [1, 2]
    );
    assert_eq!(
        ns(&leaf(
            "expirationDate",
            "equals",
            json!("2025-03-01T10:00:00+01:00")
        )),
        [1, 2]
    );
    assert_eq!(
        ns(&leaf("expirationDate", "lessThan", json!("2025-01-01"))),
        [3]
    );
    assert_eq!(
        ns(&leaf(
            "expirationDate",
            "greaterThan",
            json!("2024-12-31T23:59:59.9999998Z")
        )),
        [1, 2, 3]
    );
    assert_eq!(
        ns(&leaf(
            "supportDate",
            "equals",
            json!("2025-03-01T00:00:00.000Z")
        )),
        [1]
    );
    assert_eq!(
        ns(&leaf(
            "lastActivation.time",
            "lessThan",
            json!("2024-01-01T00:00:01+00:00")
        )),
        [1]
    );
}

#[test]
fn collation_is_ignored_for_non_text() {
    assert_eq!(
        ns(&leaf_c("units", "equals", "lexicographic", json!(7))),
        [3]
    );
    assert_eq!(
        ns(&leaf_c("autoUpdate", "equals", "ignorecase", json!("True"))),
        [1, 3]
    );
}

#[test]
fn nested_properties_and_case_insensitive_names() {
    assert_eq!(
        ns(&leaf("lastActivation.status", "equals", json!("Error"))),
        [1]
    );
    assert_eq!(
        ns(&leaf("LASTACTIVATION.Status", "equals", json!("Error"))),
        [1]
    );
    assert_eq!(
        ns(&leaf_c(
            "lastactivation.status",
            "equals",
            "ignorecase",
            json!("error")
        )),
        [1]
    );
}

// ---- lenient spellings ------------------------------------------------------------------

#[test]
fn single_quotes_and_php_style_leaves() {
    assert_eq!(
        ns("[{'property':'units','operation':'equals','value':7}]"),
        [3]
    );
    assert_eq!(
        ns(
            r#"[{"property":"units","items":null,"operation":"greaterThanOrEqual","collation":"ordinal","value":"100"}]"#
        ),
        [1, 4]
    );
    assert_eq!(
        ns(
            r#"[{"operation":"or","property":null,"value":null,"items":[{"property":"n","operation":"equals","value":"1"},]},]"#
        ),
        [1]
    );
    assert_eq!(
        ns("[{'PROPERTY':'status','Operation':'EQUALS','Collation':'IGNORECASE','VALUE':'VALID'}]"),
        [1, 4]
    );
    assert_eq!(ns("{'property':'n','operation':'equals','value':2}"), [2]);
    assert_eq!(
        ns("[{'property':'status','operation':'equals','value':'Valid','unknownKey':[1,2]}]"),
        [1, 4]
    );
}

// ---- errors -----------------------------------------------------------------------------

#[test]
fn error_cases() {
    let cases: &[(&str, &str)] = &[
        (
            r#"[{"property":"noSuchField","operation":"equals","value":1}]"#,
            "Unknown property 'noSuchField'",
        ),
        (
            r#"[{"property":"status","operation":"like","value":"x"}]"#,
            "Unknown operation 'like'",
        ),
        ("[{", "Invalid JSON"),
        (r#"[{"operation":"equals","value":"x"}]"#, "no 'property'"),
        (r#"[{"property":"status","value":"x"}]"#, "no 'operation'"),
        (
            r#"[{"property":"status","operation":"equals","value":"x","items":[]}]"#,
            "'items' is only allowed",
        ),
        (r#"[{"operation":"or"}]"#, "needs an 'items' array"),
        (
            r#"[{"operation":"and","items":null}]"#,
            "needs an 'items' array",
        ),
        (
            r#"[{"operation":"and","items":{}}]"#,
            "'items' must be an array",
        ),
        (
            r#"[{"property":"status","operation":"in","value":"Valid"}]"#,
            "needs an array",
        ),
        (
            r#"[{"property":"packages","operation":"subset","value":"Backup"}]"#,
            "needs an array",
        ),
        (
            r#"[{"property":"status","operation":"subset","value":["Valid"]}]"#,
            "needs an array property",
        ),
        (
            r#"[{"property":"status","operation":"equals","collation":"klingon","value":"x"}]"#,
            "Unknown collation",
        ),
        (
            r#"[{"property":"units","operation":"equals","value":"lots"}]"#,
            "is not a number",
        ),
        (
            r#"[{"property":"n","operation":"equals","value":1.5}]"#,
            "is not an integer",
        ),
        (
            r#"[{"property":"autoUpdate","operation":"equals","value":"yes"}]"#,
            "is not a boolean",
        ),
        (
            r#"[{"property":"instanceUid","operation":"equals","value":"abc"}]"#,
            "is not a UUID",
        ),
        (
            r#"[{"property":"expirationDate","operation":"lessThan","value":"tomorrow"}]"#,
            "date-time",
        ),
        (
            r#"[{"property":"status","operation":"equals","value":["Valid"]}]"#,
            "is not a string",
        ),
        (
            r#"[{"property":"units","operation":"lessThan","value":null}]"#,
            "non-null",
        ),
        (
            r#"[{"property":"status","operation":"contains","value":null}]"#,
            "non-null",
        ),
        (
            r#"[{"property":"units","operation":"contains","value":1}]"#,
            "text or array",
        ),
        (
            r#"[{"property":"packages","operation":"contains","value":["Backup"]}]"#,
            "single value",
        ),
        (
            r#"[{"property":"packages","operation":"lessThan","value":"x"}]"#,
            "not supported on array",
        ),
        (
            r#"[{"property":"settings","operation":"equals","value":{"x":1}}]"#,
            "object",
        ),
        (
            r#"[{"property":"settings","operation":"in","value":[1]}]"#,
            "object",
        ),
        (
            r#"[{"property":"packages","operation":"superset","value":["a",null]}]"#,
            "must not contain null",
        ),
        (
            r#"[{"property":5,"operation":"equals","value":1}]"#,
            "'property' must be a string",
        ),
        (
            r#"[{"property":"n","operation":5,"value":1}]"#,
            "'operation' must be a string",
        ),
        (
            r#"[{"property":"n","operation":"equals","collation":1,"value":1}]"#,
            "'collation' must be a string",
        ),
        (r#"["status"]"#, "must be a JSON object"),
        (r#""status""#, "must be a JSON array"),
        (
            r#"[{"operation":"or","items":[{"property":"n","operation":"equals","value":1},{"property":"zzz","operation":"equals","value":1}]}]"#,
            "[0].items[1]",
        ),
    ];
    for (filter, expected) in cases {
        let message = err(filter);
        assert!(
            message.contains(expected),
            "{filter}: {message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn error_messages_shorten_echoed_text() {
    let long = "x".repeat(5000);
    let message = err(&leaf(&long, "equals", json!(1)));
    assert!(message.len() < 200, "{}", message.len());
}

#[test]
fn unconvertible_document_values_never_match() {
    let f = Filter::parse(&leaf("units", "lessThan", json!(1000)), &schema()).expect("valid");
    assert!(!f.matches(&json!({"units": "lots"})));
    assert!(!f.matches(&json!({"units": [1]})));
    let f = Filter::parse(&leaf("status", "equals", json!("5")), &schema()).expect("valid");
    assert!(
        f.matches(&json!({"status": 5})),
        "numbers read as their text for text properties"
    );
    let f = Filter::parse(&leaf("packages", "contains", json!("a")), &schema()).expect("valid");
    assert!(
        !f.matches(&json!({"packages": "a"})),
        "a scalar is not an array"
    );
    assert!(!f.matches(&json!({"packages": [null, 1]})));
}

#[test]
fn is_empty_reports_no_expressions() {
    assert!(Filter::parse("[]", &schema()).expect("valid").is_empty());
    assert!(!Filter::parse(&leaf("n", "equals", json!(1)), &schema())
        .expect("valid")
        .is_empty());
}
