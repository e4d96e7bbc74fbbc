//! The `sort` parameter: sort keys, their parsing, and how documents are ordered.
//!
//! `sort` is a JSON array of `{property, direction?, collation?}`. Earlier keys take
//! priority; a missing `direction` means ascending; a missing `collation` means ordinal.
//! Null, absent and unconvertible values sort before every value when ascending (and so
//! after every value when descending, since descending reverses the whole order). Only
//! scalar properties can be sort keys; arrays and objects are rejected.
//!
//! For speed, each document's key values are extracted once ([`SortKey::key`]) and then
//! compared many times; for `ignorecase` the lower-cased text is computed at extraction.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::collation::{fold, natural_cmp, Collation};
use crate::error::QueryError;
use crate::filter::shorten;
use crate::json::{self, Json};
use crate::schema::{Field, Schema};
use crate::value::{from_doc, ScalarKind, Val};

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Smallest first (nulls first).
    #[default]
    Ascending,
    /// Largest first (nulls last).
    Descending,
}

impl Direction {
    /// Parses `ascending` / `descending` (or `asc` / `desc`), any letter case.
    pub fn parse(token: &str) -> Option<Direction> {
        let t = token.trim();
        if t.eq_ignore_ascii_case("ascending") || t.eq_ignore_ascii_case("asc") {
            Some(Direction::Ascending)
        } else if t.eq_ignore_ascii_case("descending") || t.eq_ignore_ascii_case("desc") {
            Some(Direction::Descending)
        } else {
            None
        }
    }
}

/// One sort criterion: a scalar property, a direction and a collation.
#[derive(Debug, Clone)]
pub struct SortKey {
    field: Field,
    kind: ScalarKind,
    direction: Direction,
    collation: Collation,
}

/// A document's extracted value for one sort key.
#[derive(Debug, Clone)]
pub(crate) enum Key<'a> {
    Null,
    Val(Val<'a>),
    /// Lower-cased text (`ignorecase`).
    Folded(Cow<'a, str>),
    /// Lower-cased and original text (`lexicographic`).
    Natural {
        folded: Cow<'a, str>,
        original: Cow<'a, str>,
    },
}

impl Key<'_> {
    fn rank(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::Val(_) => 1,
            Key::Folded(_) => 2,
            Key::Natural { .. } => 3,
        }
    }
}

impl SortKey {
    /// Builds a sort key for `path` (matched case-insensitively).
    ///
    /// # Errors
    ///
    /// A [`QueryError`] on parameter `"sort"` when the path is unknown or names an array
    /// or object property.
    pub fn new(
        schema: &Schema,
        path: &str,
        direction: Direction,
        collation: Collation,
    ) -> Result<SortKey, QueryError> {
        let field = schema
            .resolve(path)
            .ok_or_else(|| QueryError::sort(format!("Unknown property '{}'.", shorten(path))))?;
        let kind = match ScalarKind::of(field.ty) {
            Some(kind) if !field.ty.is_array() => kind,
            _ => {
                return Err(QueryError::sort(format!(
                    "Property '{}' is an {} and cannot be used for sorting.",
                    field.path,
                    if field.ty.is_array() {
                        "array"
                    } else {
                        "object"
                    }
                )))
            }
        };
        Ok(SortKey {
            field: field.clone(),
            kind,
            direction,
            collation,
        })
    }

    /// The resolved property.
    pub(crate) fn field(&self) -> &Field {
        &self.field
    }

    /// The canonical property path.
    pub fn path(&self) -> &str {
        &self.field.path
    }

    /// The direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The collation (only meaningful for text properties).
    pub fn collation(&self) -> Collation {
        self.collation
    }

    /// Orders two documents by this key alone (direction applied).
    pub fn compare(&self, a: &Value, b: &Value) -> Ordering {
        self.cmp_keys(&self.key(a), &self.key(b))
    }

    /// Extracts this key's value from a document.
    pub(crate) fn key<'a>(&self, doc: &'a Value) -> Key<'a> {
        let Some(val) = self.field.lookup(doc).and_then(|v| from_doc(self.kind, v)) else {
            return Key::Null;
        };
        match (val, self.collation) {
            (Val::Text(text), Collation::IgnoreCase) => Key::Folded(fold_cow(text)),
            (Val::Text(text), Collation::Lexicographic) => Key::Natural {
                folded: fold_cow(text.clone()),
                original: text,
            },
            (val, _) => Key::Val(val),
        }
    }

    /// Orders two extracted keys (direction applied). A total order.
    pub(crate) fn cmp_keys(&self, a: &Key<'_>, b: &Key<'_>) -> Ordering {
        let o = match (a, b) {
            (Key::Val(x), Key::Val(y)) => x.cmp_same_kind(y),
            (Key::Folded(x), Key::Folded(y)) => x.cmp(y),
            (
                Key::Natural {
                    folded: fx,
                    original: ox,
                },
                Key::Natural {
                    folded: fy,
                    original: oy,
                },
            ) => natural_cmp(fx, fy).then_with(|| ox.cmp(oy)),
            // Nulls first; other mixes cannot happen for one key but stay total.
            (x, y) => x.rank().cmp(&y.rank()),
        };
        match self.direction {
            Direction::Ascending => o,
            Direction::Descending => o.reverse(),
        }
    }
}

fn fold_cow(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(s) => fold(s),
        Cow::Owned(s) => Cow::Owned(fold(&s).into_owned()),
    }
}

/// Parses the decoded text of a `sort` parameter.
///
/// Accepts a JSON array of sort expressions, a single expression object, or `null`
/// (no sorting).
///
/// # Errors
///
/// A [`QueryError`] on parameter `"sort"` for malformed JSON, a missing or unknown
/// property, an array/object property, or an unknown direction or collation.
pub fn parse_sort(text: &str, schema: &Schema) -> Result<Vec<SortKey>, QueryError> {
    let json = json::parse(text).map_err(|e| QueryError::sort(e.to_string()))?;
    let exprs: Vec<&Json> = match &json {
        Json::Null => Vec::new(),
        Json::Array(items) => items.iter().collect(),
        Json::Object(_) => vec![&json],
        other => {
            return Err(QueryError::sort(format!(
                "The sort must be a JSON array of sort expressions, not {}.",
                other.kind()
            )))
        }
    };
    exprs
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            sort_key(e, schema)
                .map_err(|m| QueryError::sort(format!("{m} (sort expression [{i}]).")))
        })
        .collect()
}

fn sort_key(expr: &Json, schema: &Schema) -> Result<SortKey, String> {
    if !matches!(expr, Json::Object(_)) {
        return Err(format!(
            "A sort expression must be a JSON object, not {}",
            expr.kind()
        ));
    }
    let path = match expr.get_non_null("property") {
        Some(Json::String(p)) => p,
        Some(other) => return Err(format!("'property' must be a string, not {}", other.kind())),
        None => return Err("The sort expression has no 'property'".to_owned()),
    };
    let direction = match expr.get_non_null("direction") {
        None => Direction::Ascending,
        Some(Json::String(d)) => Direction::parse(d).ok_or_else(|| {
            format!(
                "Unknown direction '{}'; expected ascending or descending",
                shorten(d)
            )
        })?,
        Some(other) => {
            return Err(format!(
                "'direction' must be a string, not {}",
                other.kind()
            ))
        }
    };
    let collation = match expr.get_non_null("collation") {
        None => Collation::Ordinal,
        Some(Json::String(c)) => Collation::parse(c).ok_or_else(|| {
            format!(
                "Unknown collation '{}'; expected ordinal, ignorecase or lexicographic",
                shorten(c)
            )
        })?,
        Some(other) => {
            return Err(format!(
                "'collation' must be a string, not {}",
                other.kind()
            ))
        }
    };
    SortKey::new(schema, path, direction, collation)
        .map_err(|e| e.message.strip_suffix('.').unwrap_or(&e.message).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldType;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(&[
            ("name", FieldType::String),
            ("units", FieldType::Number),
            ("uid", FieldType::Uuid),
            ("at", FieldType::DateTime),
            ("ok", FieldType::Boolean),
            ("tags", FieldType::StringArray),
            ("sub.x", FieldType::Integer),
        ])
    }

    fn key(text: &str) -> Vec<SortKey> {
        parse_sort(text, &schema()).expect("valid sort")
    }

    fn sorted(keys: &[SortKey], docs: &[Value]) -> Vec<Value> {
        let mut v = docs.to_vec();
        v.sort_by(|a, b| {
            keys.iter()
                .map(|k| k.compare(a, b))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        v
    }

    #[test]
    fn parses_directions_and_defaults() {
        let k = key(
            r#"[{"property":"NAME"},{"property":"units","direction":"DESCENDING","collation":"IgnoreCase"}]"#,
        );
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].path(), "name");
        assert_eq!(k[0].direction(), Direction::Ascending);
        assert_eq!(k[0].collation(), Collation::Ordinal);
        assert_eq!(k[1].direction(), Direction::Descending);
        assert_eq!(k[1].collation(), Collation::IgnoreCase);
        assert_eq!(
            key("{'property':'name','direction':'desc'}")[0].direction(),
            Direction::Descending
        );
        assert!(key("null").is_empty());
        assert!(key("[]").is_empty());
        assert_eq!(
            key("[{property:'sub.x',direction:null,collation:null}]")[0].path(),
            "sub.x"
        );
    }

    #[test]
    fn errors_name_sort() {
        for bad in [
            r#"[{"property":"nope"}]"#,
            r#"[{"direction":"ascending"}]"#,
            r#"[{"property":"name","direction":"up"}]"#,
            r#"[{"property":"name","collation":"klingon"}]"#,
            r#"[{"property":"tags"}]"#,
            r#"[{"property":"sub"}]"#,
            r#"[{"property":5}]"#,
            r#"["name"]"#,
            r#"[{"#,
            r#""name""#,
        ] {
            let e = parse_sort(bad, &schema()).expect_err(bad);
            assert_eq!(e.parameter, "sort", "{bad}");
        }
        let e =
            parse_sort(r#"[{"property":"name"},{"property":"nope"}]"#, &schema()).expect_err("x");
        assert!(
            e.message.contains("nope") && e.message.contains("[1]"),
            "{}",
            e.message
        );
    }

    #[test]
    fn nulls_first_ascending_last_descending() {
        let docs = vec![
            json!({"units": 2}),
            json!({}),
            json!({"units": null}),
            json!({"units": 1}),
            json!({"units": "not a number"}),
        ];
        let asc = sorted(&key("[{'property':'units'}]"), &docs);
        assert_eq!(
            asc,
            vec![
                json!({}),
                json!({"units": null}),
                json!({"units": "not a number"}),
                json!({"units": 1}),
                json!({"units": 2})
            ]
        );
        let desc = sorted(
            &key("[{'property':'units','direction':'descending'}]"),
            &docs,
        );
        assert_eq!(
            desc,
            vec![
                json!({"units": 2}),
                json!({"units": 1}),
                json!({}),
                json!({"units": null}),
                json!({"units": "not a number"})
            ]
        );
    }

    #[test]
    fn typed_orders() {
        let docs = vec![
            json!({"at": "2024-01-01T10:00:00+02:00", "units": 10, "ok": true}),
            json!({"at": "2024-01-01T09:00:00Z", "units": 9.5, "ok": false}),
            json!({"at": "2024-01-01", "units": "100", "ok": true}),
        ];
        let by = |s: &str| sorted(&key(s), &docs);
        assert_eq!(
            by("[{'property':'at'}]"),
            vec![docs[2].clone(), docs[0].clone(), docs[1].clone()]
        );
        assert_eq!(
            by("[{'property':'units'}]"),
            vec![docs[1].clone(), docs[0].clone(), docs[2].clone()]
        );
        assert_eq!(
            by("[{'property':'ok'},{'property':'units','direction':'descending'}]"),
            vec![docs[1].clone(), docs[2].clone(), docs[0].clone()]
        );
        let uids = vec![
            json!({"uid": "B0000000-0000-0000-0000-000000000000"}),
            json!({"uid": "a0000000-0000-0000-0000-000000000000"}),
        ];
        assert_eq!(
            sorted(&key("[{'property':'uid'}]"), &uids),
            vec![uids[1].clone(), uids[0].clone()]
        );
    }

    #[test]
    fn text_collations() {
        let docs: Vec<Value> = ["srv10", "Srv2", "srv1", "SRV3", "alpha"]
            .iter()
            .map(|n| json!({ "name": n }))
            .collect();
        let names = |s: &str| -> Vec<String> {
            sorted(&key(s), &docs)
                .iter()
                .map(|d| d["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(
            names("[{'property':'name'}]"),
            ["SRV3", "Srv2", "alpha", "srv1", "srv10"]
        );
        assert_eq!(
            names("[{'property':'name','collation':'ignorecase'}]"),
            ["alpha", "srv1", "srv10", "Srv2", "SRV3"]
        );
        assert_eq!(
            names("[{'property':'name','collation':'lexicographic'}]"),
            ["alpha", "srv1", "Srv2", "SRV3", "srv10"]
        );
    }

    #[test]
    fn ignorecase_ties_stay_ties() {
        let k = &key("[{'property':'name','collation':'ignorecase'}]")[0];
        assert_eq!(
            k.compare(&json!({"name":"ABC"}), &json!({"name":"abc"})),
            Ordering::Equal
        );
        let k = &key("[{'property':'name','collation':'lexicographic'}]")[0];
        assert_ne!(
            k.compare(&json!({"name":"ABC"}), &json!({"name":"abc"})),
            Ordering::Equal
        );
    }
}
