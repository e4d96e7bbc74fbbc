//! [`CollectionQuery`]: the parsed query of one collection request, and its evaluation.
//!
//! Parsing takes the raw query string, keeps the parameters the operation declares
//! ([`Allowed`]) and validates them in a fixed order — `limit`, `offset`, `filter`,
//! `sort`, `select` — reporting the first problem found (a value over the length limit
//! is reported while the query string is split, before the others).
//!
//! Evaluation ([`CollectionQuery::apply`]) filters, sorts stably, pages, then projects.
//! Sorting extracts every matching document's key values once. When the requested page
//! is only part of the matches, the page is found by partial selection
//! (`select_nth_unstable_by`) instead of a full sort; ties are broken by the document's
//! position in the input, which makes the comparator a strict total order and the
//! result identical to a stable full sort followed by slicing.

use std::borrow::Borrow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::error::{Param, QueryError};
use crate::filter::Filter;
use crate::paging::{parse_limit, parse_offset, QueryOptions};
use crate::params::{extract, RawParams};
use crate::schema::Schema;
use crate::select::Select;
use crate::sort::{parse_sort, Key, SortKey};

/// Which collection parameters an operation declares. Undeclared ones are ignored, like
/// any unknown query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// `limit` and `offset`.
    pub paging: bool,
    /// `filter`.
    pub filter: bool,
    /// `sort`.
    pub sort: bool,
    /// `select`.
    pub select: bool,
}

impl Allowed {
    /// Every parameter (a typical VSPC collection GET).
    pub const ALL: Allowed = Allowed {
        paging: true,
        filter: true,
        sort: true,
        select: true,
    };
    /// No parameter.
    pub const NONE: Allowed = Allowed {
        paging: false,
        filter: false,
        sort: false,
        select: false,
    };

    fn params(self) -> Vec<Param> {
        let mut out = Vec::with_capacity(5);
        if self.paging {
            out.extend([Param::Limit, Param::Offset]);
        }
        if self.filter {
            out.push(Param::Filter);
        }
        if self.sort {
            out.push(Param::Sort);
        }
        if self.select {
            out.push(Param::Select);
        }
        out
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Number of documents that matched the filter (before paging).
    pub total: usize,
    /// The requested offset, echoed.
    pub offset: usize,
    /// The documents on this page, projected by `select`.
    pub items: Vec<Value>,
}

impl Page {
    /// Number of items on this page (`meta.pagingInfo.count`).
    pub fn count(&self) -> usize {
        self.items.len()
    }
}

/// The parsed collection parameters of one request.
#[derive(Debug, Clone)]
pub struct CollectionQuery {
    /// `None` keeps every document.
    pub filter: Option<Filter>,
    /// Sort keys, most significant first; empty keeps the input order.
    pub sort: Vec<SortKey>,
    /// `None` returns documents whole.
    pub select: Option<Select>,
    /// Page size; `usize::MAX` when the operation is not paged.
    pub limit: usize,
    /// Documents to skip.
    pub offset: usize,
}

impl Default for CollectionQuery {
    /// No filter, sort or select; the first 100 documents.
    fn default() -> Self {
        CollectionQuery {
            filter: None,
            sort: Vec::new(),
            select: None,
            limit: QueryOptions::default().default_limit,
            offset: 0,
        }
    }
}

impl CollectionQuery {
    /// Parses the raw (still percent-encoded) URL query string of a collection request.
    ///
    /// When `allowed.paging` is false, `limit`/`offset` are ignored and the query
    /// returns every match (`limit == usize::MAX`, `offset == 0`).
    ///
    /// # Errors
    ///
    /// The first invalid declared parameter, checked in the order `limit`, `offset`,
    /// `filter`, `sort`, `select`; see each parameter's parser.
    pub fn from_query_string(
        raw: Option<&str>,
        schema: &Schema,
        opts: &QueryOptions,
        allowed: Allowed,
    ) -> Result<Self, QueryError> {
        let params = extract(raw, &allowed.params())?;
        let (limit, offset) = if allowed.paging {
            (
                parse_limit(params.get(Param::Limit), opts)?,
                parse_offset(params.get(Param::Offset))?,
            )
        } else {
            (usize::MAX, 0)
        };
        let filter = match non_empty(&params, Param::Filter) {
            Some(text) => Some(Filter::parse(text, schema)?).filter(|f| !f.is_empty()),
            None => None,
        };
        let sort = match non_empty(&params, Param::Sort) {
            Some(text) => parse_sort(text, schema)?,
            None => Vec::new(),
        };
        let select = parse_select(&params, schema)?;
        Ok(CollectionQuery {
            filter,
            sort,
            select,
            limit,
            offset,
        })
    }

    /// Filters, stable-sorts, pages and projects `docs`.
    ///
    /// Pass documents in a deterministic default order (e.g. by `instanceUid`): it is
    /// the order of unsorted results and breaks ties between equal sort keys.
    pub fn apply(&self, docs: Vec<Value>) -> Page {
        let (total, picks) = self.plan(&docs);
        let mut docs = docs;
        let items = picks
            .into_iter()
            .map(|i| {
                let doc = std::mem::take(&mut docs[i]);
                match &self.select {
                    Some(select) => select.project_owned(doc),
                    None => doc,
                }
            })
            .collect();
        Page {
            total,
            offset: self.offset,
            items,
        }
    }

    /// Like [`CollectionQuery::apply`] over borrowed documents; only the page is cloned.
    pub fn apply_ref<'a>(&self, docs: impl IntoIterator<Item = &'a Value>) -> Page {
        let docs: Vec<&Value> = docs.into_iter().collect();
        let (total, picks) = self.plan(&docs);
        let items = picks
            .into_iter()
            .map(|i| match &self.select {
                Some(select) => select.project(docs[i]),
                None => docs[i].clone(),
            })
            .collect();
        Page {
            total,
            offset: self.offset,
            items,
        }
    }

    /// Whether `doc` passes the filter.
    pub fn matches(&self, doc: &Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(doc))
    }

    /// Orders two documents by the sort keys alone (`Equal` when they tie on all keys).
    pub fn compare_docs(&self, a: &Value, b: &Value) -> Ordering {
        self.sort
            .iter()
            .map(|k| k.compare(a, b))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// Returns the number of matches and the input positions of the page, in order.
    fn plan<T: Borrow<Value>>(&self, docs: &[T]) -> (usize, Vec<usize>) {
        let matched: Vec<usize> = match &self.filter {
            Some(filter) => (0..docs.len())
                .filter(|&i| filter.matches(docs[i].borrow()))
                .collect(),
            None => (0..docs.len()).collect(),
        };
        let total = matched.len();
        let start = self.offset.min(total);
        let end = self.offset.saturating_add(self.limit).min(total);
        if start >= end {
            return (total, Vec::new());
        }
        if self.sort.is_empty() {
            return (total, matched[start..end].to_vec());
        }

        let width = self.sort.len();
        let keys: Vec<Key<'_>> = matched
            .iter()
            .flat_map(|&i| self.sort.iter().map(move |k| k.key(docs[i].borrow())))
            .collect();
        // Positions into `matched`; comparing them last keeps the input order for ties.
        let cmp = |a: &usize, b: &usize| -> Ordering {
            let (ka, kb) = (&keys[a * width..][..width], &keys[b * width..][..width]);
            self.sort
                .iter()
                .zip(ka.iter().zip(kb))
                .map(|(k, (x, y))| k.cmp_keys(x, y))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| a.cmp(b))
        };
        let mut order: Vec<usize> = (0..total).collect();
        sort_range(&mut order, start, end, cmp);
        let page = order[start..end].iter().map(|&p| matched[p]).collect();
        (total, page)
    }
}

/// Puts into `v[start..end]` exactly the elements a full sort would put there, in order.
/// `cmp` must be a strict total order (no two distinct elements equal).
pub(crate) fn sort_range<T, F>(v: &mut [T], start: usize, end: usize, mut cmp: F)
where
    F: FnMut(&T, &T) -> Ordering,
{
    if start == 0 && end == v.len() {
        v.sort_unstable_by(cmp);
        return;
    }
    if start > 0 {
        // Everything before `start` is now smaller than everything from `start` on.
        v.select_nth_unstable_by(start, &mut cmp);
    }
    let tail = &mut v[start..];
    let len = end - start;
    if len < tail.len() {
        tail.select_nth_unstable_by(len - 1, &mut cmp);
    }
    tail[..len].sort_unstable_by(cmp);
}

fn non_empty(params: &RawParams, param: Param) -> Option<&str> {
    params.get(param).filter(|t| !t.trim().is_empty())
}

fn parse_select(params: &RawParams, schema: &Schema) -> Result<Option<Select>, QueryError> {
    match non_empty(params, Param::Select) {
        Some(text) => Ok(Some(Select::parse(text, schema)?).filter(|s| !s.is_empty())),
        None => Ok(None),
    }
}

/// Parses only `select` from a raw query string, for single-resource endpoints (which
/// ignore `filter`, `sort`, `limit` and `offset`). `Ok(None)` when absent or empty.
///
/// # Errors
///
/// A [`QueryError`] on parameter `"select"` for an overlong or malformed value or an
/// unknown property path.
pub fn parse_select_param(
    raw: Option<&str>,
    schema: &Schema,
) -> Result<Option<Select>, QueryError> {
    let params = extract(raw, &[Param::Select])?;
    parse_select(&params, schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_queries_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CollectionQuery>();
        assert_send_sync::<Select>();
        assert_send_sync::<Schema>();
    }

    #[test]
    fn sort_range_matches_full_sort() {
        let data: Vec<u32> = (0..200).map(|i| (i * 7919) % 211).collect();
        let mut full = data.clone();
        full.sort_unstable();
        for (start, end) in [
            (0, 200),
            (0, 1),
            (0, 10),
            (5, 6),
            (50, 150),
            (199, 200),
            (100, 200),
            (0, 199),
        ] {
            let mut v = data.clone();
            sort_range(&mut v, start, end, |a, b| a.cmp(b));
            assert_eq!(&v[start..end], &full[start..end], "{start}..{end}");
        }
    }
}
