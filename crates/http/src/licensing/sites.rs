//! Cloud Connect site licenses: the contract's `/licensing/sites` operations.

use axum::extract::{Path, State};
use axum::response::Response;
use tallyman_store::TargetKind;

use super::ops;
use super::patch::PatchBody;
use super::resources::SiteLicense;
use super::upload::LicenseUpload;
use super::SITE_ROLES;
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

const KIND: TargetKind = TargetKind::CloudConnectSite;

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(tracked_operation(routes!(get_site_licenses)))
        .routes(tracked_operation(routes!(get_site_license)))
        .routes(tracked_operation(routes!(install_site_license)))
        .routes(tracked_operation(routes!(patch_site_license)))
        .routes(tracked_operation(routes!(update_site_license)))
}

#[utoipa::path(
    get, path = "/licensing/sites", operation_id = "GetSiteLicenses", tag = "Licensing",
    params(SelectParam),
    responses((status = 200, body = ListOf<SiteLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_site_licenses(
    State(state): State<AppState>,
    caller: Caller,
    query: CollectionQuery<SiteLicense>,
) -> ApiResult<Response> {
    ops::list(&state, &caller, KIND, SITE_ROLES, query).await
}

#[utoipa::path(
    get, path = "/licensing/sites/{siteUid}", operation_id = "GetSiteLicense", tag = "Licensing",
    params(("siteUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<SiteLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_site_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<SiteLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("siteUid", &raw)?;
    ops::get(&state, &caller, KIND, SITE_ROLES, uid, select).await
}

#[utoipa::path(
    put, path = "/licensing/sites/{siteUid}", operation_id = "InstallSiteLicense", tag = "Licensing",
    params(("siteUid" = uuid::Uuid, Path), SelectParam),
    request_body(content = LicenseUploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = DataOf<SiteLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn install_site_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<SiteLicense>,
    LicenseUpload(file): LicenseUpload,
) -> ApiResult<Response> {
    let uid = parse_uid("siteUid", &raw)?;
    ops::install(&state, &caller, KIND, SITE_ROLES, uid, &file, select).await
}

#[utoipa::path(
    patch, path = "/licensing/sites/{siteUid}", operation_id = "PatchSiteLicense", tag = "Licensing",
    params(("siteUid" = uuid::Uuid, Path), SelectParam),
    request_body = Vec<JsonPatch>,
    responses((status = 200, body = DataOf<SiteLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn patch_site_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<SiteLicense>,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    let uid = parse_uid("siteUid", &raw)?;
    ops::patch(&state, &caller, KIND, SITE_ROLES, uid, &patch, select).await
}

#[utoipa::path(
    post, path = "/licensing/sites/{siteUid}/update", operation_id = "UpdateSiteLicense", tag = "Licensing",
    params(("siteUid" = uuid::Uuid, Path), SelectParam),
    responses((status = 200, body = DataOf<SiteLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn update_site_license(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<SiteLicense>,
) -> ApiResult<Response> {
    let uid = parse_uid("siteUid", &raw)?;
    ops::update(&state, &caller, KIND, SITE_ROLES, uid, select).await
}
