//! Veeam Backup for Microsoft 365 server licenses: the contract's `/licensing/vb365Servers` operations.

use axum::extract::{Path, State};
use axum::response::Response;
use tallyman_store::TargetKind;

use super::ops;
use super::patch::PatchBody;
use super::resources::Vb365ServerLicense;
use super::upload::LicenseUpload;
use super::SERVER_ROLES;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorResponse};
use crate::extract::parse_uid;
use crate::query::CollectionQuery;
use crate::select::{Select, SelectParam};
use crate::wire::JsonPatch;
use crate::wire::{DataOf, LicenseUploadForm, ListOf};
use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::async_actions::tracked_operation;

const KIND: TargetKind = TargetKind::Vb365Server;

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(tracked_operation(routes!(get_vb365_servers_licenses)))
        .routes(tracked_operation(routes!(get_vb365_server_license)))
        .routes(tracked_operation(routes!(install_vb365_server_license)))
        .routes(tracked_operation(routes!(patch_vb365_server_license)))
        .routes(tracked_operation(routes!(update_vb365_server_license)))
}

#[utoipa::path(
    get, path = "/licensing/vb365Servers", operation_id = "GetVb365ServersLicenses", tag = "Licensing",
    params(crate::query::CollectionParams),
    responses((status = 200, body = ListOf<Vb365ServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_vb365_servers_licenses(
    State(state): State<AppState>,
    caller: Caller,
    query: CollectionQuery<Vb365ServerLicense>,
) -> ApiResult<Response> {
    ops::list(&state, &caller, KIND, SERVER_ROLES, query).await
}

#[utoipa::path(
    get, path = "/licensing/vb365Servers/{vb365ServerUid}", operation_id = "GetVb365ServerLicense", tag = "Licensing",
    params(("vb365ServerUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<Vb365ServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_vb365_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<Vb365ServerLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("vb365ServerUid", &raw)?;
    ops::get(&state, &caller, KIND, SERVER_ROLES, uid, select).await
}

#[utoipa::path(
    put, path = "/licensing/vb365Servers/{vb365ServerUid}", operation_id = "InstallVb365ServerLicense", tag = "Licensing",
    params(("vb365ServerUid" = uuid::Uuid, Path), SelectParam),
    request_body(content = LicenseUploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = DataOf<Vb365ServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn install_vb365_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<Vb365ServerLicense>,
    LicenseUpload(file): LicenseUpload,
) -> ApiResult<Response> {
    let uid = parse_uid("vb365ServerUid", &raw)?;
    ops::install(&state, &caller, KIND, SERVER_ROLES, uid, &file, select).await
}

#[utoipa::path(
    patch, path = "/licensing/vb365Servers/{vb365ServerUid}", operation_id = "PatchVb365ServerLicense", tag = "Licensing",
    params(("vb365ServerUid" = uuid::Uuid, Path), SelectParam),
    request_body = Vec<JsonPatch>,
    responses((status = 200, body = DataOf<Vb365ServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn patch_vb365_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<Vb365ServerLicense>,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    let uid = parse_uid("vb365ServerUid", &raw)?;
    ops::patch(&state, &caller, KIND, SERVER_ROLES, uid, &patch, select).await
}

#[utoipa::path(
    post, path = "/licensing/vb365Servers/{vb365ServerUid}/update", operation_id = "UpdateVb365ServerLicense", tag = "Licensing",
    params(("vb365ServerUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<Vb365ServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn update_vb365_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<Vb365ServerLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("vb365ServerUid", &raw)?;
    ops::update(&state, &caller, KIND, SERVER_ROLES, uid, select).await
}
