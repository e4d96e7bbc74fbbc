//! Veeam Backup & Replication server licenses: the contract's `/licensing/backupServers` operations.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use tallyman_store::TargetKind;

use super::ops;
use super::patch::PatchBody;
use super::resources::BackupServerLicense;
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

const KIND: TargetKind = TargetKind::BackupServer;

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(tracked_operation(routes!(get_backup_servers_licenses)))
        .routes(tracked_operation(routes!(get_backup_server_license)))
        .routes(tracked_operation(routes!(install_backup_server_license)))
        .routes(tracked_operation(routes!(delete_backup_server_license)))
        .routes(tracked_operation(routes!(patch_backup_server_license)))
        .routes(tracked_operation(routes!(update_backup_server_license)))
}

#[utoipa::path(
    get, path = "/licensing/backupServers", operation_id = "GetBackupServersLicenses", tag = "Licensing",
    params(crate::query::CollectionParams),
    responses((status = 200, body = ListOf<BackupServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_backup_servers_licenses(
    State(state): State<AppState>,
    caller: Caller,
    query: CollectionQuery<BackupServerLicense>,
) -> ApiResult<Response> {
    ops::list(&state, &caller, KIND, SERVER_ROLES, query).await
}

#[utoipa::path(
    get, path = "/licensing/backupServers/{backupServerUid}", operation_id = "GetBackupServerLicense", tag = "Licensing",
    params(("backupServerUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<BackupServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_backup_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<BackupServerLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("backupServerUid", &raw)?;
    ops::get(&state, &caller, KIND, SERVER_ROLES, uid, select).await
}

#[utoipa::path(
    put, path = "/licensing/backupServers/{backupServerUid}", operation_id = "InstallBackupServerLicense", tag = "Licensing",
    params(("backupServerUid" = uuid::Uuid, Path), SelectParam),
    request_body(content = LicenseUploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = DataOf<BackupServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn install_backup_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<BackupServerLicense>,
    LicenseUpload(file): LicenseUpload,
) -> ApiResult<Response> {
    let uid = parse_uid("backupServerUid", &raw)?;
    ops::install(&state, &caller, KIND, SERVER_ROLES, uid, &file, select).await
}

#[utoipa::path(
    delete, path = "/licensing/backupServers/{backupServerUid}", operation_id = "DeleteBackupServerLicense", tag = "Licensing",
    params(("backupServerUid" = uuid::Uuid, Path), crate::wire::SectionForDeleteParam),
    responses((status = 200, body = EmptyResponse), (status = "default", body = ErrorResponse)),
)]
pub async fn delete_backup_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<EmptyResponse> {
    let uid = parse_uid("backupServerUid", &raw)?;
    let section = ops::section_for_delete(query.as_deref())?;
    ops::delete(&state, &caller, KIND, SERVER_ROLES, uid, section).await
}

#[utoipa::path(
    patch, path = "/licensing/backupServers/{backupServerUid}", operation_id = "PatchBackupServerLicense", tag = "Licensing",
    params(("backupServerUid" = uuid::Uuid, Path), SelectParam),
    request_body = Vec<JsonPatch>,
    responses((status = 200, body = DataOf<BackupServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn patch_backup_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<BackupServerLicense>,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    let uid = parse_uid("backupServerUid", &raw)?;
    ops::patch(&state, &caller, KIND, SERVER_ROLES, uid, &patch, select).await
}

#[utoipa::path(
    post, path = "/licensing/backupServers/{backupServerUid}/update", operation_id = "UpdateBackupServerLicense", tag = "Licensing",
    params(("backupServerUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<BackupServerLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn update_backup_server_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<BackupServerLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("backupServerUid", &raw)?;
    ops::update(&state, &caller, KIND, SERVER_ROLES, uid, select).await
}
