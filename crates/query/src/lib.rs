//! Tallyman's query engine for VSPC-compatible collection endpoints.
//!
//! Every collection endpoint of the VSPC REST API v3 accepts the same query parameters:
//! `filter`, `sort`, `select`, `limit` and `offset`. This crate parses them from the raw
//! URL query string and evaluates them over in-memory JSON documents, so the storage
//! backends (SQLite, PostgreSQL) only have to hand over documents and every backend
//! gets identical semantics.
//!
//! ```
//! use serde_json::json;
//! use tallyman_query::{Allowed, CollectionQuery, FieldType, QueryOptions, Schema};
//!
//! let schema = Schema::new(&[
//!     ("instanceUid", FieldType::Uuid),
//!     ("status", FieldType::Enum),
//!     ("units", FieldType::Number),
//! ]);
//! let raw = "filter=[{'property':'status','operation':'equals','value':'Valid'}]\
//!            &sort=[{'property':'units','direction':'descending'}]\
//!            &select=[{'propertyPath':'units'}]&limit=1";
//! let query = CollectionQuery::from_query_string(
//!     Some(raw), &schema, &QueryOptions::default(), Allowed::ALL,
//! )?;
//! let docs = vec![
//!     json!({"instanceUid": "00000000-0000-0000-0000-000000000001", "status": "Valid", "units": 5}),
//!     json!({"instanceUid": "00000000-0000-0000-0000-000000000002", "status": "Expired", "units": 9}),
//!     json!({"instanceUid": "00000000-0000-0000-0000-000000000003", "status": "Valid", "units": 7}),
//! ];
//! let page = query.apply(docs);
//! assert_eq!(page.total, 2);
//! assert_eq!(page.items, vec![json!({"units": 7})]);
//! # Ok::<(), tallyman_query::QueryError>(())
//! ```
//!
//! Modules (each one's docs say what it owns):
//! * `params` — decoding the raw query string into parameter values;
//! * `json` — the lenient JSON reader used for `filter`, `sort` and `select`;
//! * `schema` — the properties of a resource and their types;
//! * `value` — typed values and coercions (UUIDs, instants, numbers, booleans);
//! * `collation` — `ordinal`, `ignorecase` and `lexicographic` text comparison;
//! * `filter`, `sort`, `select`, `paging` — one module per parameter;
//! * `query` — [`CollectionQuery`], tying them together and evaluating a page;
//! * [`index`] — typed, incrementally updated columns answering the same queries
//!   without re-reading documents (for lists served from memory).
//!
//! The user-facing description of the language is `docs/query-language.md`.

mod collation;
mod error;
mod filter;
pub mod index;
mod json;
mod paging;
mod params;
mod query;
mod schema;
mod select;
mod sort;
mod value;

pub use collation::Collation;
pub use error::QueryError;
pub use filter::Filter;
pub use json::parse_lenient_json;
pub use paging::{QueryOptions, MAX_OFFSET};
pub use params::MAX_VALUE_CHARS;
pub use query::{parse_select_param, Allowed, CollectionQuery, Page};
pub use schema::{FieldType, Schema};
pub use select::Select;
pub use sort::{parse_sort, Direction, SortKey};
