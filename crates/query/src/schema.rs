//! The properties a resource exposes to `filter`, `sort` and `select`.
//!
//! A [`Schema`] maps camelCase dot paths (`status`, `lastActivation.status`) to a
//! [`FieldType`]. Client paths are matched case-insensitively and resolved once, at parse
//! time, to the canonical spelling and its list of keys; documents are then read with
//! exactly those keys. Every proper prefix of a declared path is implied as an
//! [`FieldType::Object`] property, so declaring `lastActivation.status` also makes
//! `lastActivation` selectable.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

/// The type of a resource property, which decides how filter values are coerced and how
/// values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Free text; compared with the requested collation.
    String,
    /// A string enumeration (`"Valid"`, `"Expired"`…); compared like `String`.
    Enum,
    /// A UUID; compared by value, so letter case and braces do not matter.
    Uuid,
    /// An RFC 3339 date-time; compared as an instant.
    DateTime,
    /// A date (`YYYY-MM-DD`, or a date-time on the wire); compared as an instant, a bare
    /// date meaning midnight UTC.
    Date,
    /// An integral number.
    Integer,
    /// Any number.
    Number,
    /// `true` / `false`.
    Boolean,
    /// An array of strings.
    StringArray,
    /// An array of enumeration strings.
    EnumArray,
    /// An array of UUIDs.
    UuidArray,
    /// A sub-object: selectable, and testable against `null` only.
    Object,
}

impl FieldType {
    /// Whether the property holds an array.
    pub fn is_array(self) -> bool {
        matches!(
            self,
            FieldType::StringArray | FieldType::EnumArray | FieldType::UuidArray
        )
    }
}

/// A resolved property: canonical path, its keys, and its type.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) path: Arc<str>,
    pub(crate) keys: Arc<[Box<str>]>,
    pub(crate) ty: FieldType,
    explicit: bool,
}

impl Field {
    /// The value at this path in `doc`; `None` when a key is missing or an intermediate
    /// value is not an object.
    pub(crate) fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        let mut cur = doc;
        for key in self.keys.iter() {
            cur = get_key(cur.as_object()?, key)?;
        }
        Some(cur)
    }
}

/// Looks `key` up in a JSON object.
///
/// Scanning the entries and comparing lengths before bytes is markedly faster than
/// `Map::get` on large document sets: a tree or hash lookup dereferences several key
/// strings scattered over the heap (one cache miss each), while the scan reads the
/// lengths stored inline in the map's nodes and dereferences only same-length keys.
fn get_key<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.len() == key.len() && k.as_str() == key)
        .map(|(_, v)| v)
}

/// The known properties of one resource type.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Keyed by the lower-cased path.
    fields: HashMap<String, Field>,
}

impl Schema {
    /// Builds a schema from `(path, type)` pairs.
    ///
    /// # Panics
    ///
    /// On programmer errors in the declaration: an empty path or path segment, the same
    /// path declared twice with different types or spellings, or a path declared with a
    /// non-object type while other paths use it as a parent.
    pub fn new(fields: &[(&str, FieldType)]) -> Schema {
        let mut schema = Schema::default();
        for &(path, ty) in fields {
            let keys: Vec<&str> = path.split('.').collect();
            assert!(
                keys.iter().all(|k| !k.is_empty()),
                "schema path {path:?} has an empty segment"
            );
            for depth in 1..keys.len() {
                schema.insert(&keys[..depth], FieldType::Object, false);
            }
            schema.insert(&keys, ty, true);
        }
        schema
    }

    fn insert(&mut self, keys: &[&str], ty: FieldType, explicit: bool) {
        let path = keys.join(".");
        let field = Field {
            path: Arc::from(path.as_str()),
            keys: keys.iter().map(|k| Box::from(*k)).collect(),
            ty,
            explicit,
        };
        match self.fields.get_mut(&path.to_lowercase()) {
            None => {
                self.fields.insert(path.to_lowercase(), field);
            }
            Some(existing) => {
                assert!(
                    *existing.path == *path,
                    "schema path {path:?} is also spelled {:?}",
                    existing.path
                );
                let compatible = if explicit && existing.explicit {
                    existing.ty == ty
                } else {
                    // An implied parent must be (or become) an object.
                    existing.ty == ty || (explicit && ty == FieldType::Object)
                };
                assert!(
                    compatible,
                    "schema path {path:?} is declared as {ty:?} and as {:?} (or used as a parent)",
                    existing.ty
                );
                existing.explicit |= explicit;
            }
        }
    }

    /// The type of `path` (matched case-insensitively), if it is known.
    pub fn field_type(&self, path: &str) -> Option<FieldType> {
        self.resolve(path).map(|f| f.ty)
    }

    /// The canonical spelling of `path` (matched case-insensitively), if it is known.
    pub fn canonical_path(&self, path: &str) -> Option<&str> {
        self.resolve(path).map(|f| f.path.as_ref())
    }

    /// Every known path, declared or implied, in no particular order.
    pub fn paths(&self) -> impl Iterator<Item = (&str, FieldType)> + '_ {
        self.fields.values().map(|f| (f.path.as_ref(), f.ty))
    }

    /// Every known property, declared or implied, in no particular order.
    pub(crate) fn fields(&self) -> impl Iterator<Item = &Field> + '_ {
        self.fields.values()
    }

    pub(crate) fn resolve(&self, path: &str) -> Option<&Field> {
        self.fields.get(&path.trim().to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(&[
            ("status", FieldType::Enum),
            ("lastActivation.status", FieldType::Enum),
            ("lastActivation.time", FieldType::DateTime),
            ("a.b.c", FieldType::Integer),
        ])
    }

    #[test]
    fn paths_resolve_case_insensitively() {
        let s = schema();
        assert_eq!(s.field_type("STATUS"), Some(FieldType::Enum));
        assert_eq!(
            s.canonical_path("lastactivation.STATUS"),
            Some("lastActivation.status")
        );
        assert_eq!(s.canonical_path(" status "), Some("status"));
        assert_eq!(s.field_type("nope"), None);
        assert_eq!(s.field_type("lastActivation.status.x"), None);
    }

    #[test]
    fn parents_are_implied_objects() {
        let s = schema();
        assert_eq!(s.field_type("lastActivation"), Some(FieldType::Object));
        assert_eq!(s.field_type("a.b"), Some(FieldType::Object));
        assert_eq!(s.field_type("a"), Some(FieldType::Object));
        assert_eq!(s.paths().count(), 7);
    }

    #[test]
    fn explicit_object_parent_is_fine() {
        let s = Schema::new(&[("x", FieldType::Object), ("x.y", FieldType::String)]);
        assert_eq!(s.field_type("x"), Some(FieldType::Object));
        let s = Schema::new(&[("x.y", FieldType::String), ("x", FieldType::Object)]);
        assert_eq!(s.field_type("x"), Some(FieldType::Object));
    }

    #[test]
    #[should_panic(expected = "declared as")]
    fn scalar_parent_conflicts() {
        Schema::new(&[("x", FieldType::String), ("x.y", FieldType::String)]);
    }

    #[test]
    #[should_panic(expected = "declared as")]
    fn scalar_parent_conflicts_in_either_order() {
        Schema::new(&[("x.y", FieldType::String), ("x", FieldType::String)]);
    }

    #[test]
    #[should_panic(expected = "also spelled")]
    fn spelling_conflicts() {
        Schema::new(&[("name", FieldType::String), ("Name", FieldType::String)]);
    }

    #[test]
    #[should_panic(expected = "empty segment")]
    fn empty_segment_panics() {
        Schema::new(&[("a..b", FieldType::String)]);
    }

    #[test]
    fn lookup_finds_keys_in_large_objects() {
        let s = Schema::new(&[("k17", FieldType::Integer), ("k3", FieldType::Integer)]);
        let mut map = serde_json::Map::new();
        for i in 0..40 {
            map.insert(format!("k{i}"), json!(i));
        }
        let doc = Value::Object(map);
        assert_eq!(
            s.resolve("k17").and_then(|f| f.lookup(&doc)),
            Some(&json!(17))
        );
        assert_eq!(
            s.resolve("k3").and_then(|f| f.lookup(&doc)),
            Some(&json!(3))
        );
        let missing = Schema::new(&[("k99", FieldType::Integer)]);
        assert_eq!(missing.resolve("k99").and_then(|f| f.lookup(&doc)), None);
    }

    #[test]
    fn lookup_walks_objects_only() {
        let s = schema();
        let f = s.resolve("lastActivation.status").expect("known");
        assert_eq!(
            f.lookup(&json!({"lastActivation": {"status": "Error"}})),
            Some(&json!("Error"))
        );
        assert_eq!(f.lookup(&json!({"lastActivation": null})), None);
        assert_eq!(f.lookup(&json!({"lastActivation": [1]})), None);
        assert_eq!(f.lookup(&json!({})), None);
        // Document keys are read with the canonical spelling only.
        assert_eq!(f.lookup(&json!({"LastActivation": {"status": "x"}})), None);
    }
}
