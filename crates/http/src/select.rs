//! The `select` query parameter on single resources and on collections that declare no other
//! query parameters: `?select=[{"propertyPath":"id"}]` keeps only the named properties.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::Value;

use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::query::{query_error, Resource};
use crate::wire::Single;

/// Parsed `select` for the resource type `R`; unknown property paths are refused with 400.
pub struct Select<R> {
    select: Option<tallyman_query::Select>,
    _resource: PhantomData<R>,
}

impl<R> Select<R> {
    /// Whether the whole resource is returned (no `select` given).
    pub fn is_whole(&self) -> bool {
        self.select.is_none()
    }

    pub fn project(&self, value: Value) -> Value {
        match &self.select {
            Some(s) => s.project(&value),
            None => value,
        }
    }

    /// `{"data": resource}` with the selection applied.
    pub fn respond(&self, resource: &impl Serialize) -> ApiResult<Response> {
        let value = serde_json::to_value(resource).map_err(ApiError::internal)?;
        Ok(Single {
            data: self.project(value),
        }
        .into_response())
    }
}

impl<S: Send + Sync, R: Resource> FromRequestParts<S> for Select<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let select = tallyman_query::parse_select_param(parts.uri.query(), R::schema())
            .map_err(query_error)?;
        Ok(Select {
            select,
            _resource: PhantomData,
        })
    }
}

/// For the OpenAPI document: the `select` parameter as the contract declares it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SelectParam {
    /// Returns explicitly requested properties.
    #[param(value_type = Option<Vec<crate::wire::SelectExpression>>)]
    select: Option<String>,
}
