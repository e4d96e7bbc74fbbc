//! The `filter` parameter: parsing, compiling and evaluating filter expressions.
//!
//! A filter is a JSON array of expressions, all of which must match (an implicit `and`).
//! An expression is either a *leaf* — `{property, operation, collation?, value}` — or a
//! *group* — `{operation: and|or|not|exclusiveOr, items: [...]}`.
//!
//! Parsing compiles everything that does not depend on the document: property paths are
//! resolved against the [`Schema`] to key lists, comparison values are coerced to the
//! property's type and prepared for the collation (lower-cased once for `ignorecase`).
//! Evaluating a document then only walks keys and compares typed values.
//!
//! Semantics decided here (see `docs/query-language.md` for the user-facing version):
//!
//! * `not` is the negation of the conjunction of its items (with one item: "does not
//!   match"); `exclusiveOr` matches when exactly one item matches; empty groups follow
//!   the usual identities (`and` → true, `or`/`exclusiveOr` → false, `not` → false).
//! * A null or absent property satisfies only `equals null`, `notEquals <anything
//!   non-null>` and `in [..., null, ...]`; every other comparison with it is false.
//!   `notEquals` is always the exact negation of `equals`.
//! * Array properties compare as sets: `equals` means the same set of elements,
//!   `contains` element membership, `in` a non-empty intersection, `subset` /
//!   `superset` set inclusion.

use std::cmp::Ordering;

use serde_json::Value;

use crate::collation::{Collation, Needle};
use crate::error::QueryError;
use crate::json::{self, Json};
use crate::schema::{Field, FieldType, Schema};
use crate::value::{from_client, from_doc, ScalarKind, Val};

/// A compiled filter; see the module documentation for the language.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Top-level expressions, AND-ed.
    items: Vec<Node>,
}

impl Filter {
    /// Parses the decoded text of a `filter` parameter.
    ///
    /// Accepts a JSON array of expressions (the documented form), a single expression
    /// object, or `null` (no filtering).
    ///
    /// # Errors
    ///
    /// A [`QueryError`] on parameter `"filter"` for malformed JSON, an unknown property or
    /// operation, a missing `property`/`operation`/`items`, `items` on a comparison, or a
    /// value that does not suit the operation or cannot be coerced to the property type.
    pub fn parse(text: &str, schema: &Schema) -> Result<Filter, QueryError> {
        let json = json::parse(text).map_err(|e| QueryError::filter(e.to_string()))?;
        let items = match &json {
            Json::Null => Vec::new(),
            Json::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| compile(item, schema, &format!("[{i}]")))
                .collect::<Result<_, _>>()?,
            Json::Object(_) => vec![compile(&json, schema, "[0]")?],
            other => {
                return Err(QueryError::filter(format!(
                    "The filter must be a JSON array of filter expressions, not {}.",
                    other.kind()
                )))
            }
        };
        Ok(Filter { items })
    }

    /// Whether the filter has no expressions (and so matches every document).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether `doc` satisfies the filter.
    pub fn matches(&self, doc: &Value) -> bool {
        self.items.iter().all(|n| n.eval(doc))
    }

    /// The top-level expressions (AND-ed), for evaluators over other representations.
    pub(crate) fn items(&self) -> &[Node] {
        &self.items
    }
}

/// A leaf (comparison) operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    LessThan,
    LessThanOrEqual,
    GreaterThan,
    GreaterThanOrEqual,
    Contains,
    In,
    Subset,
    Superset,
}

/// A group (logical) operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupOp {
    And,
    Or,
    Not,
    ExclusiveOr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Leaf(Op),
    Group(GroupOp),
}

/// Every operation token, spelled as VSPC documents it (matched case-insensitively).
const OPERATIONS: [(Operation, &str); 14] = [
    (Operation::Leaf(Op::Equals), "equals"),
    (Operation::Leaf(Op::NotEquals), "notEquals"),
    (Operation::Leaf(Op::LessThan), "lessThan"),
    (Operation::Leaf(Op::LessThanOrEqual), "lessThanOrEqual"),
    (Operation::Leaf(Op::GreaterThan), "greaterThan"),
    (
        Operation::Leaf(Op::GreaterThanOrEqual),
        "greaterThanOrEqual",
    ),
    (Operation::Leaf(Op::Contains), "contains"),
    (Operation::Leaf(Op::In), "in"),
    (Operation::Leaf(Op::Subset), "subset"),
    (Operation::Leaf(Op::Superset), "superset"),
    (Operation::Group(GroupOp::And), "and"),
    (Operation::Group(GroupOp::Or), "or"),
    (Operation::Group(GroupOp::Not), "not"),
    (Operation::Group(GroupOp::ExclusiveOr), "exclusiveOr"),
];

impl Operation {
    fn parse(token: &str) -> Option<Operation> {
        let t = token.trim();
        OPERATIONS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(t))
            .map(|(op, _)| *op)
    }

    fn name(self) -> &'static str {
        OPERATIONS
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("?", |(_, name)| name)
    }
}

impl Op {
    fn name(self) -> &'static str {
        Operation::Leaf(self).name()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    /// Negation of the conjunction of the items.
    Not(Vec<Node>),
    /// Exactly one item matches.
    ExclusiveOr(Vec<Node>),
    Leaf(Box<Leaf>),
}

impl Node {
    fn eval(&self, doc: &Value) -> bool {
        match self {
            Node::And(items) => items.iter().all(|n| n.eval(doc)),
            Node::Or(items) => items.iter().any(|n| n.eval(doc)),
            Node::Not(items) => !items.iter().all(|n| n.eval(doc)),
            Node::ExclusiveOr(items) => {
                let mut matching = items.iter().filter(|n| n.eval(doc));
                matching.next().is_some() && matching.next().is_none()
            }
            Node::Leaf(leaf) => leaf.eval(doc),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    field: Field,
    kind: ScalarKind,
    collation: Collation,
    test: Test,
}

/// A property's value in one document or index row, as the leaf tests see it.
#[derive(Debug, Clone)]
pub(crate) enum Cell<'a> {
    /// Absent or JSON `null`.
    Null,
    /// Present, but not convertible to the property's type.
    Invalid,
    /// The converted value.
    Val(Val<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl OrderOp {
    pub(crate) fn accepts(self, o: Ordering) -> bool {
        match self {
            OrderOp::Lt => o == Ordering::Less,
            OrderOp::Le => o != Ordering::Greater,
            OrderOp::Gt => o == Ordering::Greater,
            OrderOp::Ge => o != Ordering::Less,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// `equals null` (`negate: false`) or `notEquals null`.
    IsNull { negate: bool },
    /// Scalar `equals` / `notEquals`.
    Eq { target: Target, negate: bool },
    /// Scalar ordering comparisons.
    Order { op: OrderOp, target: Target },
    /// Substring test on a text property.
    Substring { needle: Needle },
    /// Scalar `in`.
    In { targets: Vec<Target>, null: bool },
    /// Array `contains`: the value is one of the elements.
    HasElement { target: Target },
    /// Array `equals` / `notEquals`: same set of elements.
    SameSet { targets: Vec<Target>, negate: bool },
    /// Array `in`: some element is one of the values.
    Overlaps { targets: Vec<Target>, null: bool },
    /// Array `subset`: every element is one of the values.
    Subset { targets: Vec<Target> },
    /// Array `superset`: every value is one of the elements.
    Superset { targets: Vec<Target> },
}

impl Test {
    /// Whether this test reads the elements of an array property.
    pub(crate) fn is_array_test(&self) -> bool {
        matches!(
            self,
            Test::HasElement { .. }
                | Test::SameSet { .. }
                | Test::Overlaps { .. }
                | Test::Subset { .. }
                | Test::Superset { .. }
        )
    }

    /// The comparison values of an array test (one for `contains`), by index.
    pub(crate) fn targets(&self) -> &[Target] {
        match self {
            Test::HasElement { target } => std::slice::from_ref(target),
            Test::SameSet { targets, .. }
            | Test::Overlaps { targets, .. }
            | Test::Subset { targets }
            | Test::Superset { targets }
            | Test::In { targets, .. } => targets,
            Test::Eq { target, .. } | Test::Order { target, .. } => std::slice::from_ref(target),
            Test::IsNull { .. } | Test::Substring { .. } => &[],
        }
    }
}

/// A prepared comparison value.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Text(Needle),
    Value(Val<'static>),
}

impl Leaf {
    /// The property this leaf reads.
    pub(crate) fn field(&self) -> &Field {
        &self.field
    }

    /// The prepared test.
    pub(crate) fn test(&self) -> &Test {
        &self.test
    }

    fn eval(&self, doc: &Value) -> bool {
        let value = self.field.lookup(doc).filter(|v| !v.is_null());
        if let Test::IsNull { negate } = self.test {
            return value.is_none() != negate;
        }
        if self.test.is_array_test() {
            let targets = self.test.targets();
            return self.eval_elements(value.is_some(), elements(value), |t, v| {
                targets.get(t).is_some_and(|target| self.eq(target, v))
            });
        }
        let cell = match value {
            None => Cell::Null,
            Some(v) => from_doc(self.kind, v).map_or(Cell::Invalid, Cell::Val),
        };
        self.eval_cell(&cell)
    }

    /// Evaluates a scalar test (or `IsNull`) on a property value. Array tests are false.
    pub(crate) fn eval_cell(&self, cell: &Cell<'_>) -> bool {
        let val = match cell {
            Cell::Val(v) => Some(v),
            Cell::Null | Cell::Invalid => None,
        };
        match &self.test {
            Test::IsNull { negate } => matches!(cell, Cell::Null) != *negate,
            Test::Eq { target, negate } => val.is_some_and(|v| self.val_eq(target, v)) != *negate,
            Test::Order { op, target } => val
                .and_then(|v| self.val_cmp(v, target))
                .is_some_and(|o| op.accepts(o)),
            Test::Substring { needle } => val
                .and_then(Val::as_text)
                .is_some_and(|s| needle.is_in(s, self.collation)),
            Test::In { targets, null } => match cell {
                Cell::Null => *null,
                Cell::Invalid => false,
                Cell::Val(v) => targets.iter().any(|t| self.val_eq(t, v)),
            },
            Test::HasElement { .. }
            | Test::SameSet { .. }
            | Test::Overlaps { .. }
            | Test::Subset { .. }
            | Test::Superset { .. } => false,
        }
    }

    /// Evaluates an array test (or `IsNull`). `present`: the property is there and not
    /// null; `elements`: its elements when it is an array; `eq(t, e)`: whether element
    /// `e` equals target number `t` of [`Test::targets`]. Scalar tests are false.
    pub(crate) fn eval_elements<I>(
        &self,
        present: bool,
        elements: Option<I>,
        eq: impl Fn(usize, I::Item) -> bool,
    ) -> bool
    where
        I: Iterator + Clone,
        I::Item: Clone,
    {
        let any_target = |n: usize, v: &I::Item| (0..n).any(|t| eq(t, v.clone()));
        match &self.test {
            Test::IsNull { negate } => present == *negate,
            Test::HasElement { .. } => elements.is_some_and(|mut e| e.any(|v| eq(0, v))),
            Test::SameSet { targets, negate } => {
                let n = targets.len();
                let same = elements.is_some_and(|e| {
                    e.clone().all(|v| any_target(n, &v))
                        && (0..n).all(|t| e.clone().any(|v| eq(t, v)))
                });
                same != *negate
            }
            Test::Overlaps { targets, null } => match elements {
                None => *null,
                Some(mut e) => e.any(|v| any_target(targets.len(), &v)),
            },
            Test::Subset { targets } => {
                elements.is_some_and(|mut e| e.all(|v| any_target(targets.len(), &v)))
            }
            Test::Superset { targets } => {
                elements.is_some_and(|e| (0..targets.len()).all(|t| e.clone().any(|v| eq(t, v))))
            }
            Test::Eq { .. } | Test::Order { .. } | Test::Substring { .. } | Test::In { .. } => {
                false
            }
        }
    }

    /// Whether the document value `v` equals `target` (false when `v` does not convert).
    fn eq(&self, target: &Target, v: &Value) -> bool {
        from_doc(self.kind, v).is_some_and(|d| self.val_eq(target, &d))
    }

    /// Whether the converted value `v` equals `target` under the leaf's collation.
    pub(crate) fn val_eq(&self, target: &Target, v: &Val<'_>) -> bool {
        match target {
            Target::Text(needle) => v.as_text().is_some_and(|s| needle.eq(s, self.collation)),
            Target::Value(t) => v.cmp_same_kind(t) == Ordering::Equal,
        }
    }

    /// Order of the converted value `v` relative to `target`.
    fn val_cmp(&self, v: &Val<'_>, target: &Target) -> Option<Ordering> {
        match target {
            Target::Text(needle) => v.as_text().map(|s| needle.cmp(s, self.collation)),
            Target::Value(t) => Some(v.cmp_same_kind(t)),
        }
    }
}

/// Elements of an array property; `None` when it is absent, null or not an array.
fn elements(value: Option<&Value>) -> Option<std::slice::Iter<'_, Value>> {
    value.and_then(Value::as_array).map(|a| a.iter())
}

/// Compiles one expression; `loc` says where it is, for error messages.
fn compile(expr: &Json, schema: &Schema, loc: &str) -> Result<Node, QueryError> {
    let err = |msg: String| QueryError::filter(format!("{msg} (filter expression {loc})."));
    if !matches!(expr, Json::Object(_)) {
        return Err(err(format!(
            "A filter expression must be a JSON object, not {}",
            expr.kind()
        )));
    }
    let op = match expr.get_non_null("operation") {
        None => return Err(err("The expression has no 'operation'".to_owned())),
        Some(Json::String(s)) => Operation::parse(s).ok_or_else(|| {
            err(format!(
                "Unknown operation '{}'; expected one of: {}",
                shorten(s),
                OPERATIONS.map(|(_, n)| n).join(", ")
            ))
        })?,
        Some(other) => {
            return Err(err(format!(
                "'operation' must be a string, not {}",
                other.kind()
            )))
        }
    };

    let op = match op {
        Operation::Leaf(op) => op,
        Operation::Group(group) => return compile_group(group, expr, schema, loc),
    };

    if expr.get_non_null("items").is_some() {
        return Err(err(format!(
            "'items' is only allowed with and, or, not and exclusiveOr, not with '{}'",
            op.name()
        )));
    }
    let field = match expr.get_non_null("property") {
        None => {
            return Err(err(format!(
                "The '{}' expression has no 'property'",
                op.name()
            )))
        }
        Some(Json::String(p)) => schema
            .resolve(p)
            .ok_or_else(|| err(format!("Unknown property '{}'", shorten(p))))?,
        Some(other) => {
            return Err(err(format!(
                "'property' must be a string, not {}",
                other.kind()
            )))
        }
    };
    let collation = match expr.get_non_null("collation") {
        None => Collation::Ordinal,
        Some(Json::String(c)) => Collation::parse(c).ok_or_else(|| {
            err(format!(
                "Unknown collation '{}'; expected ordinal, ignorecase or lexicographic",
                shorten(c)
            ))
        })?,
        Some(other) => {
            return Err(err(format!(
                "'collation' must be a string, not {}",
                other.kind()
            )))
        }
    };
    let value = expr.get("value").unwrap_or(&Json::Null);
    let kind = ScalarKind::of(field.ty).unwrap_or(ScalarKind::Text);
    let test = leaf_test(op, field, kind, value).map_err(err)?;
    Ok(Node::Leaf(Box::new(Leaf {
        field: field.clone(),
        kind,
        collation,
        test,
    })))
}

fn compile_group(
    group: GroupOp,
    expr: &Json,
    schema: &Schema,
    loc: &str,
) -> Result<Node, QueryError> {
    let name = Operation::Group(group).name();
    let err = |msg: String| QueryError::filter(format!("{msg} (filter expression {loc})."));
    let items = match expr.get_non_null("items") {
        Some(Json::Array(items)) => items,
        None => {
            return Err(err(format!(
                "The '{name}' expression needs an 'items' array"
            )))
        }
        Some(other) => {
            return Err(err(format!(
                "'items' must be an array, not {}",
                other.kind()
            )))
        }
    };
    let nodes = items
        .iter()
        .enumerate()
        .map(|(i, item)| compile(item, schema, &format!("{loc}.items[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match group {
        GroupOp::And => Node::And(nodes),
        GroupOp::Or => Node::Or(nodes),
        GroupOp::Not => Node::Not(nodes),
        GroupOp::ExclusiveOr => Node::ExclusiveOr(nodes),
    })
}

/// Chooses and prepares the test for a leaf operation on a property.
fn leaf_test(op: Op, field: &Field, kind: ScalarKind, value: &Json) -> Result<Test, String> {
    let path = &field.path;
    let is_array = field.ty.is_array();
    let is_object = field.ty == FieldType::Object;
    let name = op.name();
    let non_null = || -> Result<(), String> {
        if matches!(value, Json::Null) {
            Err(format!("'{name}' needs a non-null 'value'"))
        } else {
            Ok(())
        }
    };
    let list = || -> Result<&Vec<Json>, String> {
        match value {
            Json::Array(items) => Ok(items),
            other => Err(format!(
                "'{name}' needs an array 'value', not {}",
                other.kind()
            )),
        }
    };
    let scalar_only = || -> Result<(), String> {
        if is_object {
            Err(format!(
                "Property '{path}' is an object; it can only be compared with null"
            ))
        } else if is_array {
            Err(format!(
                "'{name}' is not supported on array property '{path}'"
            ))
        } else {
            Ok(())
        }
    };

    Ok(match op {
        Op::Equals | Op::NotEquals => {
            let negate = op == Op::NotEquals;
            if matches!(value, Json::Null) {
                Test::IsNull { negate }
            } else if is_array {
                Test::SameSet {
                    targets: targets(kind, list()?, false)?.0,
                    negate,
                }
            } else {
                scalar_only()?;
                Test::Eq {
                    target: target(kind, value)?,
                    negate,
                }
            }
        }
        Op::LessThan | Op::LessThanOrEqual | Op::GreaterThan | Op::GreaterThanOrEqual => {
            non_null()?;
            scalar_only()?;
            let op = match op {
                Op::LessThan => OrderOp::Lt,
                Op::LessThanOrEqual => OrderOp::Le,
                Op::GreaterThan => OrderOp::Gt,
                _ => OrderOp::Ge,
            };
            Test::Order {
                op,
                target: target(kind, value)?,
            }
        }
        Op::Contains => {
            non_null()?;
            if is_array {
                if matches!(value, Json::Array(_)) {
                    return Err(format!(
                        "'contains' on array property '{path}' takes a single value; \
                         use 'superset' to require several"
                    ));
                }
                Test::HasElement {
                    target: target(kind, value)?,
                }
            } else {
                scalar_only()?;
                match (kind, from_client(kind, value)?) {
                    (ScalarKind::Text, Some(Val::Text(t))) => Test::Substring {
                        needle: Needle::new(&t),
                    },
                    _ => {
                        return Err(format!(
                            "'contains' needs a text or array property; '{path}' is neither"
                        ))
                    }
                }
            }
        }
        Op::In => {
            if is_object {
                scalar_only()?;
            }
            let (targets, null) = targets(kind, list()?, true)?;
            if is_array {
                Test::Overlaps { targets, null }
            } else {
                Test::In { targets, null }
            }
        }
        Op::Subset | Op::Superset => {
            if !is_array {
                return Err(format!(
                    "'{name}' needs an array property; '{path}' is not an array"
                ));
            }
            let targets = targets(kind, list()?, false)?.0;
            if op == Op::Subset {
                Test::Subset { targets }
            } else {
                Test::Superset { targets }
            }
        }
    })
}

fn target(kind: ScalarKind, value: &Json) -> Result<Target, String> {
    match from_client(kind, value)? {
        None => Err("The value must not be null here".to_owned()),
        Some(Val::Text(t)) => Ok(Target::Text(Needle::new(&t))),
        Some(v) => Ok(Target::Value(v)),
    }
}

/// Prepares a list of values; nulls are allowed (and reported) only when `allow_null`.
fn targets(
    kind: ScalarKind,
    items: &[Json],
    allow_null: bool,
) -> Result<(Vec<Target>, bool), String> {
    let mut out = Vec::with_capacity(items.len());
    let mut null = false;
    for item in items {
        if matches!(item, Json::Null) {
            if !allow_null {
                return Err("The value list must not contain null".to_owned());
            }
            null = true;
        } else {
            out.push(target(kind, item)?);
        }
    }
    Ok((out, null))
}

/// Client text echoed in messages, cut to a readable length.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(MAX).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests;
