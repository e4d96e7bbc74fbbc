//! Veeam ONE server licenses: the contract's `/licensing/voneServers` operations.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use tallyman_store::TargetKind;

use super::ops;
use super::patch::PatchBody;
use super::resources::VOneServerLicense;
use super::upload::LicenseUpload;
use super::SERVER_ROLES;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorResponse};
use crate::extract::parse_uid;
use crate::query::CollectionQuery;
use crate::select::{Select, SelectParam};
use crate::wire::{DataOf, LicenseUploadForm, ListOf};
use crate::wire::{EmptyResponse, JsonPatch};
use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::async_actions::tracked_operation;

const KIND: TargetKind = TargetKind::VOneServer;

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(tracked_operation(routes!(get_v_one_servers_licenses)))
        .routes(tracked_operation(routes!(get_v_one_server_license)))
        .routes(tracked_operation(routes!(install_v_one_server_license)))
        .routes(tracked_operation(routes!(delete_v_one_server_license)))
        .routes(tracked_operation(routes!(patch_v_one_server_license)))
        .routes(tracked_operation(routes!(update_v_one_server_license)))
}

#[utoipa::path(
    get, path = "/licensing/voneServers", operation_id = "GetVOneServersLicenses", tag = "Licensing",
    params(crate::query::CollectionParams),
    responses((status = 200, body = ListOf<VOneServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_v_one_servers_licenses(
    State(state): State<AppState>,
    caller: Caller,
    query: CollectionQuery<VOneServerLicense>,
) -> ApiResult<Response> {
    ops::list(&state, &caller, KIND, SERVER_ROLES, query).await
}

#[utoipa::path(
    get, path = "/licensing/voneServers/{vOneServerUid}", operation_id = "GetVOneServerLicense", tag = "Licensing",
    params(("vOneServerUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<VOneServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_v_one_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<VOneServerLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("vOneServerUid", &raw)?;
    ops::get(&state, &caller, KIND, SERVER_ROLES, uid, select).await
}

#[utoipa::path(
    put, path = "/licensing/voneServers/{vOneServerUid}", operation_id = "InstallVOneServerLicense", tag = "Licensing",
    params(("vOneServerUid" = uuid::Uuid, Path), SelectParam),
    request_body(content = LicenseUploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = DataOf<VOneServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn install_v_one_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<VOneServerLicense>,
    LicenseUpload(file): LicenseUpload,
) -> ApiResult<Response> {
    let uid = parse_uid("vOneServerUid", &raw)?;
    ops::install(&state, &caller, KIND, SERVER_ROLES, uid, &file, select).await
}

#[utoipa::path(
    delete, path = "/licensing/voneServers/{vOneServerUid}", operation_id = "DeleteVOneServerLicense", tag = "Licensing",
    params(("vOneServerUid" = uuid::Uuid, Path)),
    responses((status = 200, body = EmptyResponse), (status = "default", body = ErrorResponse)),
)]
pub async fn delete_v_one_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<EmptyResponse> {
    let uid = parse_uid("vOneServerUid", &raw)?;
    let section = {
        let _ = query;
        None
    };
    ops::delete(&state, &caller, KIND, SERVER_ROLES, uid, section).await
}

#[utoipa::path(
    patch, path = "/licensing/voneServers/{vOneServerUid}", operation_id = "PatchVOneServerLicense", tag = "Licensing",
    params(("vOneServerUid" = uuid::Uuid, Path), SelectParam),
    request_body = Vec<JsonPatch>,
    responses((status = 200, body = DataOf<VOneServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn patch_v_one_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<VOneServerLicense>,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    let uid = parse_uid("vOneServerUid", &raw)?;
    ops::patch(&state, &caller, KIND, SERVER_ROLES, uid, &patch, select).await
}

#[utoipa::path(
    post, path = "/licensing/voneServers/{vOneServerUid}/update", operation_id = "UpdateVOneServerLicense", tag = "Licensing",
    params(("vOneServerUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<VOneServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn update_v_one_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<VOneServerLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("vOneServerUid", &raw)?;
    ops::update(&state, &caller, KIND, SERVER_ROLES, uid, select).await
}
