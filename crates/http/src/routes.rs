//! The route table of `/api/v3`: every operation, registered from its handler's
//! `#[utoipa::path]` annotation, so each path, method and operationId is written once, there.
//! The same table serves requests and generates the OpenAPI document.

use utoipa_axum::router::OpenApiRouter;

use crate::async_actions;
use crate::licensing::{backup_servers, console, sites, vb365_servers, vone_servers};
use crate::{about, reports, usage, users, AppState};

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
        .merge(crate::organizations::routes())
        .merge(crate::web::api_routes())
}
