//! Glue between axum and the query engine (`tallyman-query`): each VSPC resource type names its
//! queryable properties once ([`Resource`]), and the [`CollectionQuery`] extractor parses
//! `filter`, `sort`, `select`, `limit` and `offset` against them, answering bad input with a
//! VSPC error that names the parameter.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde_json::Value;
use tallyman_query::{Allowed, QueryError, QueryOptions, Schema};

use crate::config::HttpConfig;
use crate::error::ApiError;
use crate::wire::Collection;

/// A resource the query engine can filter, sort and project.
pub trait Resource: Send + Sync + 'static {
    fn schema() -> &'static Schema;

    /// Which collection parameters the resource's list operation declares; the others are
    /// ignored like any unknown query parameter.
    fn collection_params() -> Allowed {
        Allowed::ALL
    }
}

pub fn query_error(e: QueryError) -> ApiError {
    ApiError::bad_parameter(e.parameter, e.message)
}

/// For the OpenAPI document: the paging, filter, sort and select parameters of a collection.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CollectionParams {
    /// Filter expressions (JSON array), e.g. `[{"property":"status","operation":"equals","value":"Valid"}]`.
    #[param(value_type = Option<Vec<Object>>)]
    filter: Option<String>,
    /// Sort expressions (JSON array), e.g. `[{"property":"expirationDate","direction":"descending"}]`.
    #[param(value_type = Option<Vec<Object>>)]
    sort: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i32>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i32>,
    /// Returns explicitly requested properties.
    #[param(value_type = Option<Vec<crate::wire::SelectExpression>>)]
    select: Option<String>,
}

/// A parsed collection query for resource `R` with every parameter enabled.
pub struct CollectionQuery<R> {
    pub query: tallyman_query::CollectionQuery,
    _resource: PhantomData<R>,
}

impl<R> CollectionQuery<R> {
    /// Filters, sorts, pages and projects `docs` (given in their default order).
    pub fn page(&self, docs: Vec<Value>) -> Collection {
        let page = self.query.apply(docs);
        Collection::new(page.items, page.total, page.offset)
    }

    /// Like [`CollectionQuery::page`] over borrowed documents; only the page is cloned.
    pub fn page_refs<'a>(&self, docs: impl IntoIterator<Item = &'a Value>) -> Collection {
        let page = self.query.apply_ref(docs);
        Collection::new(page.items, page.total, page.offset)
    }
}

impl<R: Resource, S> FromRequestParts<S> for CollectionQuery<R>
where
    S: Send + Sync,
    Arc<HttpConfig>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let config = Arc::<HttpConfig>::from_ref(state);
        let options = QueryOptions {
            default_limit: 100,
            max_limit: config.max_page_size,
        };
        let allowed = R::collection_params();
        let query = tallyman_query::CollectionQuery::from_query_string(
            parts.uri.query(),
            R::schema(),
            &options,
            allowed,
        )
        .map_err(query_error)?;
        Ok(Self {
            query,
            _resource: PhantomData,
        })
    }
}
