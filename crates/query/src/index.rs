//! [`Index`]: typed, compact, incrementally updated columns for answering collection
//! queries without re-reading JSON documents.
//!
//! [`CollectionQuery::apply_ref`] walks every document's `serde_json` tree on every
//! request, which costs tens of milliseconds at 100,000 documents (see `BENCH.md`).
//! An index owns, per row, every property of its [`Schema`] already converted to the
//! engine's typed values — the same conversions (`value::from_doc`) the engine applies
//! when it reads a document — laid out as one column per property:
//!
//! * text and enum properties: a `u32` per row into a per-column dictionary of
//!   reference-counted strings, so a few enum values over many rows cost 4 bytes a row
//!   and every distinct string is kept once;
//! * UUIDs, instants (dates, date-times), numbers, booleans: a state byte (absent or
//!   `null` / present but unconvertible / value) and the value's order-preserving code
//!   (`Val::code`: 16 bytes, 1 for booleans), which compares exactly as the engine
//!   compares the values (`Val::cmp_same_kind`), so equality, ordering and `in` tests
//!   and sorting are integer comparisons;
//! * string, enum and UUID arrays: per row the dictionary ids of the elements (or
//!   "absent" / "not an array");
//! * objects (declared or implied parents of nested paths): whether they are present.
//!
//! Rows are the caller's [`RowId`]s (dense `u32` handles, used directly as column
//! positions) with a caller-given default-order key: rows are listed in ascending
//! `(order_key, row)` order when unsorted, and that order breaks sort ties.
//! [`Index::upsert`] and [`Index::remove`] update one row in place.
//!
//! [`Index::query`] returns the same `total` and the same rows, in the same order, as
//! `apply_ref` over the documents in default order; the caller projects (`select`) the
//! returned rows from its own documents. Identical semantics come from sharing the
//! engine's code rather than re-deriving it: filter leaves are evaluated by the same
//! `Leaf::eval_cell` / `Leaf::eval_elements` the engine uses on documents (on text
//! columns once per distinct dictionary string rather than once per row, then per row
//! by table lookup; on typed columns as code comparisons, with the null and
//! unconvertible cases from `eval_cell`), groups combine per-row bitsets, and sorting
//! orders rows by the codes and by `Collation` ranks of the distinct strings. `tests/index_equivalence.rs` checks all of it against
//! `apply_ref` on random documents, queries and updates.
//!
//! Sorted pages come from cached *permutations*: all live rows in the order of one sort
//! key list, built on first use and then walked, skipping rows the filter rejects,
//! until the page is complete. A single write patches every cached permutation by
//! binary search (O(log n) comparisons plus one `memmove`); after many writes without
//! a query in between (a bulk load), caches are dropped instead and rebuilt lazily.
//! Without a cached permutation, a selective filter is answered by partial selection
//! (`select_nth_unstable_by`) over the matches only, and nothing is cached.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::collation::Collation;
use crate::filter::{Cell, Leaf, Node, Target, Test};
use crate::query::{sort_range, CollectionQuery};
use crate::schema::{Field, FieldType, Schema};
use crate::sort::{Direction, SortKey};
use crate::value::{from_doc, ScalarKind, Val};

/// The caller's handle for one row. Handles index the columns directly, so keep them
/// dense (for example reuse the handles of removed rows).
pub type RowId = u32;

/// One page of an index query: which rows to render, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPage {
    /// Number of rows that matched the filter and the visibility predicate.
    pub total: usize,
    /// The requested offset, echoed.
    pub offset: usize,
    /// The rows on this page, in result order.
    pub rows: Vec<RowId>,
}

/// A query the index cannot answer: it names a property the index does not hold (the
/// query was parsed against another schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexError {
    /// The property's canonical path.
    pub property: String,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "property '{}' is not indexed with this type; parse queries with the index's schema",
            self.property
        )
    }
}

impl std::error::Error for IndexError {}

/// Approximate heap use of an index, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexMemory {
    /// Row columns, dictionary bookkeeping, order keys and the live set.
    pub columns: usize,
    /// Distinct strings held by the dictionaries (text plus allocation headers).
    pub strings: usize,
    /// Cached sort permutations.
    pub sort_cache: usize,
}

/// Cached permutations kept at most (each is 4 bytes per row).
const MAX_CACHED: usize = 16;
/// Writes without a query in between after which caches are dropped, not patched.
const PATCH_WRITES: usize = 64;
/// Without a cached permutation, filters matching at most 1/SELECTIVE of the rows are
/// answered by partial selection over the matches instead of building one.
const SELECTIVE: usize = 8;

/// Ids below this are not dictionary entries.
const NULL_ID: u32 = 0;
const INVALID_ID: u32 = 1;
const FIRST_ID: u32 = 2;

/// Reference-counted interning of column values.
#[derive(Debug)]
struct Dict<K> {
    entries: Vec<Option<K>>,
    refs: Vec<u32>,
    ids: HashMap<K, u32>,
    free: Vec<u32>,
}

impl<K: Hash + Eq + Clone> Dict<K> {
    fn new() -> Self {
        Dict {
            entries: Vec::new(),
            refs: Vec::new(),
            ids: HashMap::new(),
            free: Vec::new(),
        }
    }

    fn intern<Q>(&mut self, q: &Q, make: impl FnOnce(&Q) -> K) -> u32
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(&id) = self.ids.get(q) {
            if let Some(r) = self.refs.get_mut((id - FIRST_ID) as usize) {
                *r += 1;
            }
            return id;
        }
        let key = make(q);
        let slot = match self.free.pop() {
            Some(s) => {
                self.entries[s as usize] = Some(key.clone());
                self.refs[s as usize] = 1;
                s
            }
            None => {
                self.entries.push(Some(key.clone()));
                self.refs.push(1);
                (self.entries.len() - 1) as u32
            }
        };
        let id = slot + FIRST_ID;
        self.ids.insert(key, id);
        id
    }

    fn release(&mut self, id: u32) {
        let Some(slot) = id.checked_sub(FIRST_ID).map(|s| s as usize) else {
            return;
        };
        let Some(r) = self.refs.get_mut(slot) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r == 0 {
            if let Some(k) = self.entries[slot].take() {
                self.ids.remove(&k);
                self.free.push(slot as u32);
            }
        }
    }

    fn get(&self, id: u32) -> Option<&K> {
        let slot = id.checked_sub(FIRST_ID)? as usize;
        self.entries.get(slot)?.as_ref()
    }

    /// One past the largest id.
    fn id_bound(&self) -> usize {
        self.entries.len() + FIRST_ID as usize
    }

    fn heap_bytes(&self) -> usize {
        let per_key = std::mem::size_of::<K>();
        self.entries.capacity() * std::mem::size_of::<Option<K>>()
            + self.refs.capacity() * 4
            + self.free.capacity() * 4
            + self.ids.capacity() * (per_key + 4 + 1)
    }
}

const ABSENT: u8 = 0;
const INVALID: u8 = 1;
const PRESENT: u8 = 2;

/// A fixed-size typed column: a state byte and the value's order-preserving code
/// (`Val::code`) per row. Every scalar test on these types is a comparison, so codes
/// are all the filter and the sort need.
#[derive(Debug)]
struct Typed<T> {
    state: Vec<u8>,
    vals: Vec<T>,
}

impl<T: Copy> Typed<T> {
    fn new() -> Self {
        Typed {
            state: Vec::new(),
            vals: Vec::new(),
        }
    }

    fn resize(&mut self, n: usize, fill: T) {
        self.state.resize(n, ABSENT);
        self.vals.resize(n, fill);
    }

    fn set(&mut self, slot: usize, v: Option<Option<T>>) {
        let (state, val) = match v {
            None => (ABSENT, None),
            Some(None) => (INVALID, None),
            Some(Some(v)) => (PRESENT, Some(v)),
        };
        self.state[slot] = state;
        if let Some(v) = val {
            self.vals[slot] = v;
        }
    }

    fn get(&self, slot: usize) -> Option<T> {
        (self.state.get(slot) == Some(&PRESENT))
            .then(|| self.vals.get(slot).copied())
            .flatten()
    }

    fn heap_bytes(&self) -> usize {
        self.state.capacity() + self.vals.capacity() * std::mem::size_of::<T>()
    }
}

/// An array property's value in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elems {
    /// Absent or `null`.
    Null,
    /// Present but not an array.
    NotArray,
    /// Dictionary ids of the elements (`INVALID_ID` for unconvertible ones).
    Ids(Box<[u32]>),
}

#[derive(Debug)]
enum Data {
    Object(Vec<bool>),
    Text {
        ids: Vec<u32>,
        dict: Dict<Arc<str>>,
    },
    /// UUIDs, instants and numbers, as codes.
    Wide(Typed<u128>),
    /// Booleans, as 0 or 1.
    Bool(Typed<u8>),
    TextArray {
        cells: Vec<Elems>,
        dict: Dict<Arc<str>>,
    },
    UuidArray {
        cells: Vec<Elems>,
        dict: Dict<u128>,
    },
}

/// One property's values for every row.
#[derive(Debug)]
struct Column {
    field: Field,
    data: Data,
}

fn text_of(v: &Value) -> Option<Cow<'_, str>> {
    match from_doc(ScalarKind::Text, v) {
        Some(Val::Text(t)) => Some(t),
        _ => None,
    }
}

fn uuid_of(v: &Value) -> Option<u128> {
    match from_doc(ScalarKind::Uuid, v) {
        Some(Val::Uuid(u)) => Some(u),
        _ => None,
    }
}

impl Column {
    fn new(field: Field) -> Column {
        let data = match field.ty {
            FieldType::Object => Data::Object(Vec::new()),
            FieldType::String | FieldType::Enum => Data::Text {
                ids: Vec::new(),
                dict: Dict::new(),
            },
            FieldType::Uuid
            | FieldType::DateTime
            | FieldType::Date
            | FieldType::Integer
            | FieldType::Number => Data::Wide(Typed::new()),
            FieldType::Boolean => Data::Bool(Typed::new()),
            FieldType::StringArray | FieldType::EnumArray => Data::TextArray {
                cells: Vec::new(),
                dict: Dict::new(),
            },
            FieldType::UuidArray => Data::UuidArray {
                cells: Vec::new(),
                dict: Dict::new(),
            },
        };
        Column { field, data }
    }

    fn resize(&mut self, n: usize) {
        match &mut self.data {
            Data::Object(v) => v.resize(n, false),
            Data::Text { ids, .. } => ids.resize(n, NULL_ID),
            Data::Wide(t) => t.resize(n, 0),
            Data::Bool(t) => t.resize(n, 0),
            Data::TextArray { cells, .. } | Data::UuidArray { cells, .. } => {
                cells.resize(n, Elems::Null)
            }
        }
    }

    /// Stores the row's value from `doc` (`None`: clears the row).
    fn set(&mut self, slot: usize, doc: Option<&Value>) {
        let value = doc
            .and_then(|d| self.field.lookup(d))
            .filter(|v| !v.is_null());
        let typed = |kind: ScalarKind| value.map(|v| from_doc(kind, v));
        match &mut self.data {
            Data::Object(present) => present[slot] = value.is_some(),
            Data::Text { ids, dict } => {
                let new = match value {
                    None => NULL_ID,
                    Some(v) => match text_of(v) {
                        Some(t) => dict.intern(t.as_ref(), |s: &str| Arc::from(s)),
                        None => INVALID_ID,
                    },
                };
                let old = std::mem::replace(&mut ids[slot], new);
                dict.release(old);
            }
            Data::Wide(t) => {
                let kind = ScalarKind::of(self.field.ty).unwrap_or(ScalarKind::Text);
                t.set(slot, typed(kind).map(|v| v.and_then(|v| v.code())));
            }
            Data::Bool(t) => t.set(
                slot,
                typed(ScalarKind::Boolean).map(|v| match v {
                    Some(Val::Bool(b)) => Some(u8::from(b)),
                    _ => None,
                }),
            ),
            Data::TextArray { cells, dict } => {
                let new = match value {
                    None => Elems::Null,
                    Some(Value::Array(items)) => Elems::Ids(
                        items
                            .iter()
                            .map(|e| match text_of(e) {
                                Some(t) => dict.intern(t.as_ref(), |s: &str| Arc::from(s)),
                                None => INVALID_ID,
                            })
                            .collect(),
                    ),
                    Some(_) => Elems::NotArray,
                };
                if let Elems::Ids(old) = std::mem::replace(&mut cells[slot], new) {
                    old.iter().for_each(|&id| dict.release(id));
                }
            }
            Data::UuidArray { cells, dict } => {
                let new = match value {
                    None => Elems::Null,
                    Some(Value::Array(items)) => Elems::Ids(
                        items
                            .iter()
                            .map(|e| match uuid_of(e) {
                                Some(u) => dict.intern(&u, |u| *u),
                                None => INVALID_ID,
                            })
                            .collect(),
                    ),
                    Some(_) => Elems::NotArray,
                };
                if let Elems::Ids(old) = std::mem::replace(&mut cells[slot], new) {
                    old.iter().for_each(|&id| dict.release(id));
                }
            }
        }
    }

    /// The text of a text column's row, if it has one.
    fn text(&self, slot: usize) -> Option<&str> {
        match &self.data {
            Data::Text { ids, dict } => ids
                .get(slot)
                .and_then(|&id| dict.get(id))
                .map(|s| s.as_ref()),
            _ => None,
        }
    }

    /// Order-preserving code of a non-text scalar row (`None`: sorts as null).
    fn code(&self, slot: usize) -> Option<u128> {
        match &self.data {
            Data::Wide(t) => t.get(slot),
            Data::Bool(t) => t.get(slot).map(u128::from),
            _ => None,
        }
    }

    /// Orders two rows by this column (ascending, nulls first).
    fn cmp_slots(&self, a: usize, b: usize, collation: Collation) -> Ordering {
        match &self.data {
            Data::Text { .. } => match (self.text(a), self.text(b)) {
                (Some(x), Some(y)) => collation.compare(x, y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            },
            _ => self.code(a).cmp(&self.code(b)),
        }
    }

    /// Evaluates a filter leaf on every row slot.
    fn eval(&self, leaf: &Leaf, slots: usize) -> Vec<u64> {
        match &self.data {
            Data::Object(present) => {
                let (absent, there) = (leaf.eval_cell(&Cell::Null), leaf.eval_cell(&Cell::Invalid));
                bits_from(slots, |i| if present[i] { there } else { absent })
            }
            Data::Text { ids, dict } => {
                let table: Vec<bool> = (0..dict.id_bound() as u32)
                    .map(|id| match id {
                        NULL_ID => leaf.eval_cell(&Cell::Null),
                        INVALID_ID => leaf.eval_cell(&Cell::Invalid),
                        _ => dict.get(id).is_some_and(|s| {
                            leaf.eval_cell(&Cell::Val(Val::Text(Cow::Borrowed(s.as_ref()))))
                        }),
                    })
                    .collect();
                pack(ids, slots, |&id| {
                    table.get(id as usize).copied().unwrap_or(false)
                })
            }
            Data::Wide(t) => eval_typed(leaf, t, slots),
            Data::Bool(t) => eval_typed(leaf, t, slots),
            Data::TextArray { cells, dict } => {
                let table = element_table(leaf, dict.id_bound(), |id| {
                    dict.get(id).map(|s| Val::Text(Cow::Borrowed(s.as_ref())))
                });
                eval_arrays(leaf, cells, &table, slots)
            }
            Data::UuidArray { cells, dict } => {
                let table = element_table(leaf, dict.id_bound(), |id| {
                    dict.get(id).map(|u| Val::Uuid(*u))
                });
                eval_arrays(leaf, cells, &table, slots)
            }
        }
    }

    fn heap_bytes(&self) -> (usize, usize) {
        let text_bytes = |dict: &Dict<Arc<str>>| -> usize {
            dict.entries
                .iter()
                .flatten()
                .map(|s| s.len() + 2 * std::mem::size_of::<usize>())
                .sum()
        };
        let cells_bytes = |cells: &Vec<Elems>| -> usize {
            cells.capacity() * std::mem::size_of::<Elems>()
                + cells
                    .iter()
                    .map(|c| match c {
                        Elems::Ids(ids) => ids.len() * 4,
                        _ => 0,
                    })
                    .sum::<usize>()
        };
        match &self.data {
            Data::Object(v) => (v.capacity(), 0),
            Data::Text { ids, dict } => (ids.capacity() * 4 + dict.heap_bytes(), text_bytes(dict)),
            Data::Wide(t) => (t.heap_bytes(), 0),
            Data::Bool(t) => (t.heap_bytes(), 0),
            Data::TextArray { cells, dict } => {
                (cells_bytes(cells) + dict.heap_bytes(), text_bytes(dict))
            }
            Data::UuidArray { cells, dict } => (cells_bytes(cells) + dict.heap_bytes(), 0),
        }
    }
}

/// What a leaf gives for a present value of a typed column, by its code.
enum OnCode {
    /// Accepted orderings of the value relative to the target (Less, Equal, Greater).
    Cmp(u128, [bool; 3]),
    /// One of these codes.
    AnyOf(Vec<u128>),
    /// The same for every value.
    Always(bool),
}

/// Evaluates a leaf on a typed column by comparing codes, which order exactly like
/// the values (`Val::code`). Scalar tests on these types are equality, ordering,
/// `in` and null tests; null and unconvertible rows get what `Leaf::eval_cell` gives.
fn eval_typed<C: Copy + Into<u128>>(leaf: &Leaf, col: &Typed<C>, slots: usize) -> Vec<u64> {
    let code = |t: &Target| match t {
        Target::Value(v) => v.code(),
        Target::Text(_) => None,
    };
    let on_code = match leaf.test() {
        Test::Order { op, target } => code(target).map_or(OnCode::Always(false), |tc| {
            OnCode::Cmp(
                tc,
                [Ordering::Less, Ordering::Equal, Ordering::Greater].map(|o| op.accepts(o)),
            )
        }),
        Test::Eq { target, negate } => code(target).map_or(OnCode::Always(*negate), |tc| {
            OnCode::Cmp(tc, [*negate, !*negate, *negate])
        }),
        Test::In { targets, .. } => OnCode::AnyOf(targets.iter().filter_map(code).collect()),
        // Any present value: not null.
        Test::IsNull { .. } => OnCode::Always(leaf.eval_cell(&Cell::Invalid)),
        _ => OnCode::Always(false),
    };
    let null = leaf.eval_cell(&Cell::Null);
    let invalid = leaf.eval_cell(&Cell::Invalid);
    match on_code {
        OnCode::Cmp(tc, accepts) => typed_bits(col, slots, null, invalid, |c| {
            accepts[(c.cmp(&tc) as i8 + 1) as usize]
        }),
        OnCode::AnyOf(codes) => typed_bits(col, slots, null, invalid, |c| codes.contains(&c)),
        OnCode::Always(b) => typed_bits(col, slots, null, invalid, |_| b),
    }
}

/// Packs, per row: `present(code)`, or `invalid` / `null` by the row's state.
fn typed_bits<C: Copy + Into<u128>>(
    col: &Typed<C>,
    slots: usize,
    null: bool,
    invalid: bool,
    present: impl Fn(u128) -> bool,
) -> Vec<u64> {
    let n = slots.min(col.state.len()).min(col.vals.len());
    let mut out: Vec<u64> = col.state[..n]
        .chunks(64)
        .zip(col.vals[..n].chunks(64))
        .map(|(states, vals)| {
            states
                .iter()
                .zip(vals)
                .enumerate()
                .fold(0u64, |acc, (j, (&s, &v))| {
                    let hit = match s {
                        PRESENT => present(v.into()),
                        INVALID => invalid,
                        _ => null,
                    };
                    acc | u64::from(hit) << j
                })
        })
        .collect();
    out.resize(words(slots), 0);
    out
}

/// `table[id * targets + t]`: whether dictionary entry `id` equals target `t` of the
/// leaf's array test.
fn element_table<'d>(
    leaf: &Leaf,
    id_bound: usize,
    value: impl Fn(u32) -> Option<Val<'d>>,
) -> Vec<bool> {
    let targets = leaf.test().targets();
    let mut table = Vec::with_capacity(id_bound * targets.len());
    for id in 0..id_bound as u32 {
        let v = value(id);
        table.extend(
            targets
                .iter()
                .map(|t| v.as_ref().is_some_and(|v| leaf.val_eq(t, v))),
        );
    }
    table
}

fn eval_arrays(leaf: &Leaf, cells: &[Elems], table: &[bool], slots: usize) -> Vec<u64> {
    let n = leaf.test().targets().len();
    bits_from(slots, |i| {
        let (present, elems) = match &cells[i] {
            Elems::Null => (false, None),
            Elems::NotArray => (true, None),
            Elems::Ids(ids) => (true, Some(ids.iter().copied())),
        };
        leaf.eval_elements(present, elems, |t, id| {
            table.get(id as usize * n + t).copied().unwrap_or(false)
        })
    })
}

fn words(slots: usize) -> usize {
    slots.div_ceil(64)
}

fn bits_from(slots: usize, f: impl Fn(usize) -> bool) -> Vec<u64> {
    let mut out = vec![0u64; words(slots)];
    for (w, word) in out.iter_mut().enumerate() {
        let base = w * 64;
        let end = (base + 64).min(slots);
        let mut acc = 0u64;
        for i in base..end {
            acc |= u64::from(f(i)) << (i - base);
        }
        *word = acc;
    }
    out
}

/// Like [`bits_from`] over a per-row slice (no per-row bounds checks).
fn pack<T>(rows: &[T], slots: usize, f: impl Fn(&T) -> bool) -> Vec<u64> {
    let rows = &rows[..slots.min(rows.len())];
    let mut out: Vec<u64> = rows
        .chunks(64)
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .fold(0u64, |acc, (j, v)| acc | u64::from(f(v)) << j)
        })
        .collect();
    out.resize(words(slots), 0);
    out
}

fn bit(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
}

fn ones(bits: &[u64]) -> Vec<u32> {
    let mut out = Vec::new();
    for (w, &word) in bits.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            let b = word.trailing_zeros() as usize;
            out.push((w * 64 + b) as u32);
            word &= word - 1;
        }
    }
    out
}

fn count(bits: &[u64]) -> usize {
    bits.iter().map(|w| w.count_ones() as usize).sum()
}

/// A resolved sort key: column, direction, and collation (always `Ordinal` for
/// non-text columns, so equivalent key lists share one cached permutation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    col: usize,
    desc: bool,
    collation: Collation,
}

/// Orders two rows by `keys`, then by default order. A strict total order on rows.
fn cmp_rows(cols: &[Column], order: &[u128], keys: &[Key], a: usize, b: usize) -> Ordering {
    for k in keys {
        let o = cols[k.col].cmp_slots(a, b, k.collation);
        let o = if k.desc { o.reverse() } else { o };
        if o.is_ne() {
            return o;
        }
    }
    (order[a], a).cmp(&(order[b], b))
}

#[derive(Debug)]
struct CacheEntry {
    perm: Arc<Vec<u32>>,
    used: u64,
}

#[derive(Debug, Default)]
struct Cache {
    perms: HashMap<Vec<Key>, CacheEntry>,
    clock: u64,
    writes: usize,
}

/// Typed columns over a set of rows, answering [`CollectionQuery`]s; see the module
/// documentation.
#[derive(Debug)]
pub struct Index {
    schema: Schema,
    cols: Vec<Column>,
    by_path: HashMap<Arc<str>, usize>,
    order: Vec<u128>,
    live: Vec<u64>,
    live_count: usize,
    cache: Mutex<Cache>,
}

impl Index {
    /// An empty index holding every property (declared or implied) of `schema`.
    pub fn new(schema: &Schema) -> Index {
        let mut fields: Vec<Field> = schema.fields().cloned().collect();
        fields.sort_by(|a, b| a.path.cmp(&b.path));
        let by_path = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (Arc::clone(&f.path), i))
            .collect();
        Index {
            schema: schema.clone(),
            cols: fields.into_iter().map(Column::new).collect(),
            by_path,
            order: Vec::new(),
            live: Vec::new(),
            live_count: 0,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The schema the index was built for; parse queries against it.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.live_count
    }

    /// Whether the index has no rows.
    pub fn is_empty(&self) -> bool {
        self.live_count == 0
    }

    /// Whether `row` is in the index.
    pub fn contains(&self, row: RowId) -> bool {
        bit(&self.live, row as usize)
    }

    /// Inserts or replaces `row`: reads every property of the schema from `doc` once.
    /// `order_key` places the row in the default order (ascending; equal keys by row).
    pub fn upsert(&mut self, row: RowId, order_key: u128, doc: &Value) {
        let slot = row as usize;
        self.grow(slot + 1);
        self.note_write();
        let was_live = self.contains(row);
        if was_live {
            self.unplace(slot);
        }
        for col in &mut self.cols {
            col.set(slot, Some(doc));
        }
        self.order[slot] = order_key;
        if !was_live {
            self.live[slot / 64] |= 1 << (slot % 64);
            self.live_count += 1;
        }
        self.place(slot);
    }

    /// Removes `row`; returns whether it was there.
    pub fn remove(&mut self, row: RowId) -> bool {
        if !self.contains(row) {
            return false;
        }
        let slot = row as usize;
        self.note_write();
        self.unplace(slot);
        for col in &mut self.cols {
            col.set(slot, None);
        }
        self.order[slot] = 0;
        self.live[slot / 64] &= !(1 << (slot % 64));
        self.live_count -= 1;
        true
    }

    /// Answers `q` over the rows for which `visible` holds (a tenant filter): the
    /// number of matches and the page's rows, exactly as [`CollectionQuery::apply_ref`]
    /// would over the visible documents in default order. `select` is not applied.
    ///
    /// # Errors
    ///
    /// [`IndexError`] when `q` names a property the index does not hold.
    pub fn query(
        &self,
        q: &CollectionQuery,
        visible: impl Fn(RowId) -> bool,
    ) -> Result<IndexPage, IndexError> {
        self.run(q, Some(&visible))
    }

    /// [`Index::query`] over every row.
    ///
    /// # Errors
    ///
    /// [`IndexError`] when `q` names a property the index does not hold.
    pub fn query_all(&self, q: &CollectionQuery) -> Result<IndexPage, IndexError> {
        self.run(q, None)
    }

    /// Forgets every cached sort order (they are rebuilt on demand).
    pub fn clear_sort_cache(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.perms.clear();
    }

    /// Approximate heap use.
    pub fn memory(&self) -> IndexMemory {
        let mut m = IndexMemory {
            columns: self.order.capacity() * 16 + self.live.capacity() * 8,
            ..IndexMemory::default()
        };
        for col in &self.cols {
            let (c, s) = col.heap_bytes();
            m.columns += c;
            m.strings += s;
        }
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        m.sort_cache = cache.perms.values().map(|e| e.perm.capacity() * 4).sum();
        m
    }

    fn slots(&self) -> usize {
        self.order.len()
    }

    fn grow(&mut self, n: usize) {
        if n <= self.slots() {
            return;
        }
        // Amortised growth; columns are sized together.
        let n = n.max(self.slots() * 5 / 4);
        for col in &mut self.cols {
            col.resize(n);
        }
        self.order.resize(n, 0);
        self.live.resize(words(n), 0);
    }

    /// Counts a write; after a burst of writes without queries, drops the caches.
    fn note_write(&mut self) {
        let cache = self.cache.get_mut().unwrap_or_else(PoisonError::into_inner);
        cache.writes += 1;
        if cache.writes > PATCH_WRITES {
            cache.perms.clear();
        }
    }

    /// Takes `slot` out of every cached permutation (columns still hold its values).
    fn unplace(&mut self, slot: usize) {
        let cache = self.cache.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (cols, order) = (&self.cols, &self.order);
        cache.perms.retain(|keys, entry| {
            let perm = Arc::make_mut(&mut entry.perm);
            let found = perm
                .binary_search_by(|&x| cmp_rows(cols, order, keys, x as usize, slot))
                .ok()
                .filter(|&p| perm[p] as usize == slot)
                .or_else(|| perm.iter().position(|&x| x as usize == slot));
            match found {
                Some(p) => {
                    perm.remove(p);
                    true
                }
                None => false,
            }
        });
    }

    /// Puts `slot` into every cached permutation (columns hold its new values).
    fn place(&mut self, slot: usize) {
        let cache = self.cache.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (cols, order) = (&self.cols, &self.order);
        cache.perms.retain(|keys, entry| {
            let perm = Arc::make_mut(&mut entry.perm);
            match perm.binary_search_by(|&x| cmp_rows(cols, order, keys, x as usize, slot)) {
                Err(p) => {
                    perm.insert(p, slot as u32);
                    true
                }
                // Already there: the cache is inconsistent; drop it.
                Ok(_) => false,
            }
        });
    }

    fn column(&self, field: &Field) -> Result<usize, IndexError> {
        self.by_path
            .get(&field.path)
            .copied()
            .filter(|&c| self.cols[c].field.ty == field.ty)
            .ok_or_else(|| IndexError {
                property: field.path.to_string(),
            })
    }

    fn resolve_sort(&self, sort: &[SortKey]) -> Result<Vec<Key>, IndexError> {
        sort.iter()
            .map(|k| {
                let col = self.column(k.field())?;
                let text = matches!(self.cols[col].data, Data::Text { .. });
                Ok(Key {
                    col,
                    desc: k.direction() == Direction::Descending,
                    collation: if text {
                        k.collation()
                    } else {
                        Collation::Ordinal
                    },
                })
            })
            .collect()
    }

    fn run(
        &self,
        q: &CollectionQuery,
        visible: Option<&dyn Fn(RowId) -> bool>,
    ) -> Result<IndexPage, IndexError> {
        let keys = self.resolve_sort(&q.sort)?;
        let mut bits = match &q.filter {
            Some(f) => {
                let mut b = self.eval_all(f.items())?;
                and_assign(&mut b, &self.live);
                Some(b)
            }
            None => None,
        };
        if let Some(visible) = visible {
            let b = bits.get_or_insert_with(|| self.live.clone());
            for (w, word) in b.iter_mut().enumerate() {
                let mut rest = *word;
                while rest != 0 {
                    let j = rest.trailing_zeros();
                    rest &= rest - 1;
                    if !visible((w * 64) as u32 + j) {
                        *word &= !(1 << j);
                    }
                }
            }
        }
        let total = bits.as_deref().map_or(self.live_count, count);
        let start = q.offset.min(total);
        let end = q.offset.saturating_add(q.limit).min(total);
        let rows = if start >= end {
            Vec::new()
        } else {
            self.page(&keys, bits.as_deref(), total, start, end)
        };
        Ok(IndexPage {
            total,
            offset: q.offset,
            rows,
        })
    }

    /// Rows `start..end` of the matches (`bits`; `None`: every row) in `keys` order.
    fn page(
        &self,
        keys: &[Key],
        bits: Option<&[u64]>,
        total: usize,
        start: usize,
        end: usize,
    ) -> Vec<u32> {
        if let Some(perm) = self.cached(keys) {
            return walk(&perm, bits, start, end);
        }
        if let Some(b) = bits {
            if total.saturating_mul(SELECTIVE) <= self.live_count {
                return self.order_rows(keys, &ones(b), start, end);
            }
        }
        let rows = ones(&self.live);
        let perm = Arc::new(self.order_rows(keys, &rows, 0, rows.len()));
        self.store(keys, Arc::clone(&perm));
        walk(&perm, bits, start, end)
    }

    fn cached(&self, keys: &[Key]) -> Option<Arc<Vec<u32>>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.writes = 0;
        cache.clock += 1;
        let clock = cache.clock;
        let entry = cache.perms.get_mut(keys)?;
        entry.used = clock;
        Some(Arc::clone(&entry.perm))
    }

    fn store(&self, keys: &[Key], perm: Arc<Vec<u32>>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.perms.len() >= MAX_CACHED {
            let oldest = cache
                .perms
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                cache.perms.remove(&k);
            }
        }
        let used = cache.clock;
        cache.perms.insert(keys.to_vec(), CacheEntry { perm, used });
    }

    /// Positions `start..end` of `rows` sorted by `keys` then default order.
    fn order_rows(&self, keys: &[Key], rows: &[u32], start: usize, end: usize) -> Vec<u32> {
        let end = end.min(rows.len());
        if start >= end {
            return Vec::new();
        }
        let width = keys.len();
        // Per row and key: an order-preserving code, `None` sorting as null.
        let mut codes: Vec<Option<u128>> = vec![None; rows.len() * width];
        for (j, key) in keys.iter().enumerate() {
            let col = &self.cols[key.col];
            match &col.data {
                Data::Text { ids, dict } => {
                    let ranks = text_ranks(ids, dict, rows, key.collation);
                    for (i, &r) in rows.iter().enumerate() {
                        codes[i * width + j] = ids
                            .get(r as usize)
                            .and_then(|&id| ranks.get(id as usize).copied().flatten())
                            .map(u128::from);
                    }
                }
                _ => {
                    for (i, &r) in rows.iter().enumerate() {
                        codes[i * width + j] = col.code(r as usize);
                    }
                }
            }
        }
        let order = &self.order;
        if width <= 1 {
            return self.order_one(keys.first(), &codes, rows, start, end);
        }
        // Several keys: dense ranks per key (nulls 0, direction applied), then one
        // packed integer per row when they fit.
        let n = rows.len();
        let mut ranks = vec![0u32; n * width];
        for (j, key) in keys.iter().enumerate() {
            let mut present: Vec<(u128, u32)> = (0..n)
                .filter_map(|i| codes[i * width + j].map(|c| (c, i as u32)))
                .collect();
            present.sort_unstable();
            let mut rank = 0u32;
            let mut prev = None;
            for &(c, i) in &present {
                if prev != Some(c) {
                    rank += 1;
                    prev = Some(c);
                }
                ranks[i as usize * width + j] = rank;
            }
            if key.desc {
                let last = rank + 1;
                for i in 0..n {
                    ranks[i * width + j] = last - ranks[i * width + j];
                }
            }
        }
        if width <= 4 {
            let mut packed: Vec<(u128, u128, u32)> = rows
                .iter()
                .enumerate()
                .map(|(i, &r)| {
                    let key = ranks[i * width..(i + 1) * width]
                        .iter()
                        .fold(0u128, |acc, &x| (acc << 32) | u128::from(x));
                    (key, order[r as usize], r)
                })
                .collect();
            sort_range(&mut packed, start, end, |a, b| a.cmp(b));
            return packed[start..end].iter().map(|p| p.2).collect();
        }
        let cmp = |&a: &u32, &b: &u32| -> Ordering {
            let (a, b) = (a as usize, b as usize);
            ranks[a * width..(a + 1) * width]
                .cmp(&ranks[b * width..(b + 1) * width])
                .then_with(|| {
                    let (ra, rb) = (rows[a] as usize, rows[b] as usize);
                    (order[ra], ra).cmp(&(order[rb], rb))
                })
        };
        let mut idx: Vec<u32> = (0..n as u32).collect();
        sort_range(&mut idx, start, end, cmp);
        idx[start..end].iter().map(|&i| rows[i as usize]).collect()
    }
}

impl Index {
    /// [`Index::order_rows`] for at most one key: sorts compact inline tuples (no
    /// indirection), nulls apart from values.
    fn order_one(
        &self,
        key: Option<&Key>,
        codes: &[Option<u128>],
        rows: &[u32],
        start: usize,
        end: usize,
    ) -> Vec<u32> {
        let desc = key.is_some_and(|k| k.desc);
        let mut vals: Vec<(u128, u128, u32)> = Vec::new();
        let mut nulls: Vec<(u128, u32)> = Vec::new();
        for (i, &r) in rows.iter().enumerate() {
            let o = self.order[r as usize];
            match codes.get(i).copied().flatten() {
                // Descending reverses the key only; ties stay in default order.
                Some(c) => vals.push((if desc { !c } else { c }, o, r)),
                None => nulls.push((o, r)),
            }
        }
        let mut out = Vec::with_capacity(end - start);
        if desc {
            let nv = vals.len();
            emit(&mut vals, 0, start, end, &mut out, |v| v.2);
            emit(&mut nulls, nv, start, end, &mut out, |v| v.1);
        } else {
            let nn = nulls.len();
            emit(&mut nulls, 0, start, end, &mut out, |v| v.1);
            emit(&mut vals, nn, start, end, &mut out, |v| v.2);
        }
        out
    }
}

/// Appends the rows at overall positions `start..end` that fall in `part`, which
/// occupies positions `offset..offset + part.len()` of the result once sorted.
fn emit<T: Ord>(
    part: &mut [T],
    offset: usize,
    start: usize,
    end: usize,
    out: &mut Vec<u32>,
    row: impl Fn(&T) -> u32,
) {
    let s = start.saturating_sub(offset).min(part.len());
    let e = end.saturating_sub(offset).min(part.len());
    if s < e {
        sort_range(part, s, e, T::cmp);
        out.extend(part[s..e].iter().map(row));
    }
}

/// Ranks (by `collation`) of the dictionary entries used by `rows`, indexed by id;
/// `None` for ids that are not strings.
fn text_ranks(
    ids: &[u32],
    dict: &Dict<Arc<str>>,
    rows: &[u32],
    collation: Collation,
) -> Vec<Option<u32>> {
    let mut used = vec![false; dict.id_bound()];
    for &r in rows {
        if let Some(u) = ids
            .get(r as usize)
            .and_then(|&id| used.get_mut(id as usize))
        {
            *u = true;
        }
    }
    let mut entry_ids = Vec::new();
    let mut texts = Vec::new();
    for (id, _) in used.iter().enumerate().filter(|(_, &u)| u) {
        if let Some(s) = dict.get(id as u32) {
            entry_ids.push(id);
            texts.push(s.as_ref());
        }
    }
    let mut out = vec![None; dict.id_bound()];
    for (id, rank) in entry_ids.into_iter().zip(collation.ranks(&texts)) {
        out[id] = Some(rank);
    }
    out
}

/// Walks a permutation of all rows, keeping those in `bits`, and returns matches
/// `start..end`.
fn walk(perm: &[u32], bits: Option<&[u64]>, start: usize, end: usize) -> Vec<u32> {
    let Some(bits) = bits else {
        return perm
            .get(start..end.min(perm.len()))
            .map(<[u32]>::to_vec)
            .unwrap_or_default();
    };
    let mut out = Vec::with_capacity(end - start);
    let mut seen = 0usize;
    for &r in perm {
        if bit(bits, r as usize) {
            if seen >= start {
                out.push(r);
                if out.len() == end - start {
                    break;
                }
            }
            seen += 1;
        }
    }
    out
}

fn and_assign(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b.iter().chain(std::iter::repeat(&0))) {
        *x &= y;
    }
}

impl Index {
    /// The conjunction of `nodes` (true for none), on every row slot.
    fn eval_all(&self, nodes: &[Node]) -> Result<Vec<u64>, IndexError> {
        let mut acc = vec![u64::MAX; words(self.slots())];
        for n in nodes {
            let b = self.eval_node(n)?;
            and_assign(&mut acc, &b);
        }
        Ok(acc)
    }

    fn eval_node(&self, node: &Node) -> Result<Vec<u64>, IndexError> {
        let n = words(self.slots());
        Ok(match node {
            Node::And(items) => self.eval_all(items)?,
            Node::Or(items) => {
                let mut acc = vec![0u64; n];
                for item in items {
                    for (x, y) in acc.iter_mut().zip(self.eval_node(item)?) {
                        *x |= y;
                    }
                }
                acc
            }
            Node::Not(items) => {
                let mut acc = self.eval_all(items)?;
                acc.iter_mut().for_each(|x| *x = !*x);
                acc
            }
            Node::ExclusiveOr(items) => {
                let (mut one, mut many) = (vec![0u64; n], vec![0u64; n]);
                for item in items {
                    let b = self.eval_node(item)?;
                    for ((o, m), y) in one.iter_mut().zip(many.iter_mut()).zip(b) {
                        *m |= *o & y;
                        *o = (*o | y) & !*m;
                    }
                }
                one
            }
            Node::Leaf(leaf) => {
                let col = self.column(leaf.field())?;
                self.cols[col].eval(leaf, self.slots())
            }
        })
    }
}

#[cfg(test)]
mod tests;
