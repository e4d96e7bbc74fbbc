//! The route table of `/api/v3`: every operation, registered from its handler's
//! `#[utoipa::path]` annotation, so each path, method and operationId is written once, there.
//! The same table serves requests and generates the OpenAPI document.

use std::sync::Arc;

use axum::middleware;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::async_actions::{self, TrackedOperation};
use crate::licensing::{backup_servers, console, sites, vb365_servers, vone_servers};
use crate::{about, reports, usage, users, AppState};

/// An operation that may become an async action and honours `X-Request-id`: its handler is
/// wrapped in the tracking middleware under the operationId its annotation declares.
pub fn tracked_operation(
    (schemas, paths, route): UtoipaMethodRouter<AppState>,
) -> UtoipaMethodRouter<AppState> {
    let operation_id: Arc<str> = paths
        .paths
        .values()
        .flat_map(|item| {
            [
                &item.get,
                &item.put,
                &item.post,
                &item.delete,
                &item.patch,
                &item.head,
                &item.options,
                &item.trace,
            ]
        })
        .flatten()
        .find_map(|operation| operation.operation_id.clone())
        .unwrap_or_default()
        .into();
    let route = route.route_layer(middleware::from_fn_with_state(
        TrackedOperation {
            state: None,
            operation_id,
        },
        async_actions::track,
    ));
    (schemas, paths, route)
}

/// The operations of `/api/v3` that need no authentication.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(utoipa_axum::routes!(crate::token::o_auth_2_issue_token))
}

/// Every authenticated operation of `/api/v3` (the caller adds authentication).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(about::routes())
        .merge(users::routes())
        .merge(sites::routes())
        .merge(backup_servers::routes())
        .merge(vone_servers::routes())
        .merge(vb365_servers::routes())
        .merge(console::routes())
        .merge(reports::routes())
        .merge(usage::routes())
        .merge(async_actions::routes())
}
