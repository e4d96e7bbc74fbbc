//! The `select` parameter: which properties of each returned item to keep.
//!
//! `select` is a JSON array of `{propertyPath}` objects. The selected paths form a tree;
//! projecting a document keeps exactly the selected keys, rebuilding enclosing objects
//! for dotted paths (`lastActivation.status` → `{"lastActivation":{"status":…}}`).
//! Selecting a parent object keeps it whole. Keys that are not selected are dropped (no
//! nulls are invented); a selected key the document lacks is simply absent; an enclosing
//! object appears only if something inside it was kept. Output keys keep the document's
//! order. Items that are not JSON objects are returned unchanged.

use serde_json::{Map, Value};

use crate::error::QueryError;
use crate::filter::shorten;
use crate::json::{self, Json};
use crate::schema::Schema;

/// A compiled `select`: a tree of selected keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Select {
    root: Node,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    /// The whole value at this node is kept.
    whole: bool,
    children: Vec<(Box<str>, Node)>,
}

impl Node {
    fn child(&self, key: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, n)| n)
    }
}

impl Select {
    /// Builds a selection from property paths (matched case-insensitively).
    ///
    /// # Errors
    ///
    /// A [`QueryError`] on parameter `"select"` for an unknown path.
    pub fn from_paths<S: AsRef<str>>(schema: &Schema, paths: &[S]) -> Result<Select, QueryError> {
        let mut select = Select::default();
        for path in paths {
            select.add(schema, path.as_ref())?;
        }
        Ok(select)
    }

    /// Parses the decoded text of a `select` parameter.
    ///
    /// Accepts a JSON array whose items are `{"propertyPath": "..."}` objects or plain
    /// strings, a single such object, `null`, or — as a convenience — a comma-separated
    /// list of paths (`name,status`). An empty selection keeps everything.
    ///
    /// # Errors
    ///
    /// A [`QueryError`] on parameter `"select"` for malformed JSON, an item without a
    /// string `propertyPath`, or an unknown path.
    pub fn parse(text: &str, schema: &Schema) -> Result<Select, QueryError> {
        let trimmed = text.trim();
        if !trimmed.starts_with(['[', '{', '"', '\'']) && !trimmed.eq_ignore_ascii_case("null") {
            let paths: Vec<&str> = trimmed
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            return Select::from_paths(schema, &paths);
        }
        let json = json::parse(text).map_err(|e| QueryError::select(e.to_string()))?;
        let items: Vec<&Json> = match &json {
            Json::Null => Vec::new(),
            Json::Array(items) => items.iter().collect(),
            Json::Object(_) | Json::String(_) => vec![&json],
            other => {
                return Err(QueryError::select(format!(
                    "The select must be a JSON array of select expressions, not {}.",
                    other.kind()
                )))
            }
        };
        let mut select = Select::default();
        for (i, item) in items.into_iter().enumerate() {
            let path = match item {
                Json::String(p) => p,
                Json::Object(_) => match item.get_non_null("propertyPath") {
                    Some(Json::String(p)) => p,
                    Some(other) => {
                        return Err(QueryError::select(format!(
                            "'propertyPath' must be a string, not {} (select expression [{i}]).",
                            other.kind()
                        )))
                    }
                    None => {
                        return Err(QueryError::select(format!(
                            "The select expression has no 'propertyPath' (select expression [{i}])."
                        )))
                    }
                },
                other => {
                    return Err(QueryError::select(format!(
                    "A select expression must be a JSON object, not {} (select expression [{i}]).",
                    other.kind()
                )))
                }
            };
            select.add(schema, path)?;
        }
        Ok(select)
    }

    fn add(&mut self, schema: &Schema, path: &str) -> Result<(), QueryError> {
        let field = schema
            .resolve(path)
            .ok_or_else(|| QueryError::select(format!("Unknown property '{}'.", shorten(path))))?;
        let mut node = &mut self.root;
        for key in field.keys.iter() {
            if node.whole {
                return Ok(()); // an enclosing object is already kept whole
            }
            let pos = match node.children.iter().position(|(k, _)| k == key) {
                Some(pos) => pos,
                None => {
                    node.children.push((key.clone(), Node::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[pos].1;
        }
        node.whole = true;
        node.children.clear();
        Ok(())
    }

    /// Whether nothing is selected (projection then keeps every property).
    pub fn is_empty(&self) -> bool {
        !self.root.whole && self.root.children.is_empty()
    }

    /// Returns a copy of `doc` with only the selected properties.
    pub fn project(&self, doc: &Value) -> Value {
        match doc {
            Value::Object(map) if !self.is_empty() => Value::Object(project_ref(&self.root, map)),
            other => other.clone(),
        }
    }

    /// Like [`Select::project`], but consumes the document (no cloning of kept values).
    pub fn project_owned(&self, doc: Value) -> Value {
        match doc {
            Value::Object(map) if !self.is_empty() => Value::Object(project_owned(&self.root, map)),
            other => other,
        }
    }
}

fn project_ref(node: &Node, map: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        let Some(child) = node.child(key) else {
            continue;
        };
        if child.whole {
            out.insert(key.clone(), value.clone());
        } else if let Value::Object(inner) = value {
            let sub = project_ref(child, inner);
            if !sub.is_empty() {
                out.insert(key.clone(), Value::Object(sub));
            }
        }
    }
    out
}

fn project_owned(node: &Node, map: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        let Some(child) = node.child(&key) else {
            continue;
        };
        if child.whole {
            out.insert(key, value);
        } else if let Value::Object(inner) = value {
            let sub = project_owned(child, inner);
            if !sub.is_empty() {
                out.insert(key, Value::Object(sub));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldType;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(&[
            ("instanceUid", FieldType::Uuid),
            ("status", FieldType::Enum),
            ("lastActivation.status", FieldType::Enum),
            ("lastActivation.time", FieldType::DateTime),
            ("a.b.c", FieldType::Integer),
            ("a.b.d", FieldType::Integer),
            ("a.e", FieldType::Integer),
        ])
    }

    fn doc() -> Value {
        json!({
            "instanceUid": "u1",
            "status": "Valid",
            "lastActivation": {"status": "Error", "time": "2024-01-01T00:00:00Z", "extra": 1},
            "a": {"b": {"c": 1, "d": 2}, "e": 3},
            "unlisted": true
        })
    }

    fn sel(text: &str) -> Select {
        Select::parse(text, &schema()).expect("valid select")
    }

    fn both(s: &Select, d: &Value) -> Value {
        let a = s.project(d);
        assert_eq!(
            a,
            s.project_owned(d.clone()),
            "borrowed and owned projections agree"
        );
        a
    }

    #[test]
    fn keeps_only_selected_top_level_keys() {
        let s = sel(r#"[{"propertyPath":"instanceUid"},{"propertyPath":"STATUS"}]"#);
        assert_eq!(
            both(&s, &doc()),
            json!({"instanceUid": "u1", "status": "Valid"})
        );
    }

    #[test]
    fn dotted_paths_keep_nesting() {
        let s = sel("[{'propertyPath':'lastActivation.status'}]");
        assert_eq!(
            both(&s, &doc()),
            json!({"lastActivation": {"status": "Error"}})
        );
        let s = sel("[{'propertyPath':'a.b.c'},{'propertyPath':'a.e'}]");
        assert_eq!(both(&s, &doc()), json!({"a": {"b": {"c": 1}, "e": 3}}));
    }

    #[test]
    fn parent_path_keeps_whole_object() {
        let s = sel("[{'propertyPath':'lastActivation'}]");
        assert_eq!(
            both(&s, &doc()),
            json!({"lastActivation": doc()["lastActivation"]})
        );
        // Parent and child in either order: the parent wins.
        for text in [
            "[{'propertyPath':'a.b.c'},{'propertyPath':'a'}]",
            "[{'propertyPath':'a'},{'propertyPath':'a.b.c'}]",
        ] {
            assert_eq!(both(&sel(text), &doc()), json!({"a": doc()["a"]}));
        }
    }

    #[test]
    fn missing_values_are_omitted_not_nulled() {
        let s = sel("[{'propertyPath':'status'},{'propertyPath':'lastActivation.status'}]");
        assert_eq!(both(&s, &json!({"instanceUid": "x"})), json!({}));
        assert_eq!(both(&s, &json!({"lastActivation": null})), json!({}));
        assert_eq!(
            both(&s, &json!({"lastActivation": {"time": "t"}})),
            json!({})
        );
        // A null that is present in the document is kept.
        assert_eq!(both(&s, &json!({"status": null})), json!({"status": null}));
    }

    #[test]
    fn non_objects_pass_through() {
        let s = sel("[{'propertyPath':'status'}]");
        assert_eq!(both(&s, &json!([1, 2])), json!([1, 2]));
        assert_eq!(both(&s, &json!("x")), json!("x"));
    }

    #[test]
    fn lenient_forms() {
        let expected = json!({"instanceUid": "u1", "status": "Valid"});
        for text in [
            "['instanceUid','status']",
            "instanceUid, status",
            "[{propertyPath:'instanceUid'},{'PROPERTYPATH':'status'},]",
        ] {
            assert_eq!(both(&sel(text), &doc()), expected, "{text}");
        }
        assert_eq!(
            both(&sel("{'propertyPath':'status'}"), &doc()),
            json!({"status": "Valid"})
        );
    }

    #[test]
    fn empty_selection_keeps_everything() {
        for text in ["[]", "null", ""] {
            let s = sel(text);
            assert!(s.is_empty(), "{text}");
            assert_eq!(both(&s, &doc()), doc());
        }
    }

    #[test]
    fn errors_name_select() {
        for bad in [
            "[{'propertyPath':'nope'}]",
            "[{'property':'status'}]",
            "[{'propertyPath':5}]",
            "[5]",
            "[{",
            "nope",
            "status,nope",
            "42",
        ] {
            let e = Select::parse(bad, &schema()).expect_err(bad);
            assert_eq!(e.parameter, "select", "{bad}");
        }
    }
}
