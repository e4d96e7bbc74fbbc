//! The console's own license: `/licensing/console` and its settings. The console is the one
//! target that is not a managed server; its license lives in the slot with the nil UUID.

use axum::extract::State;
use axum::response::Response;
use tallyman_store::TargetKind;

use super::ops;
use super::resources::{ConsoleLicense, LicenseSettings};
use super::upload::LicenseUpload;
use super::CONSOLE_ROLES;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorResponse};
use crate::select::{Select, SelectParam};
use crate::wire::{DataOf, LicenseUploadForm};
use crate::AppState;
use tallyman_app::CONSOLE_TARGET;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::async_actions::tracked_operation;

const KIND: TargetKind = TargetKind::Console;

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(tracked_operation(routes!(get_console_license_information)))
        .routes(tracked_operation(routes!(install_console_license)))
        .routes(tracked_operation(routes!(update_console_license)))
        .routes(tracked_operation(routes!(get_console_license_settings)))
}

#[utoipa::path(
    get, path = "/licensing/console", operation_id = "GetConsoleLicenseInformation", tag = "Licensing",
    params(SelectParam),
    responses((status = 200, body = DataOf<ConsoleLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_console_license_information(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<ConsoleLicense>,
) -> ApiResult<Response> {
    ops::get(&state, &caller, KIND, CONSOLE_ROLES, CONSOLE_TARGET, select).await
}

#[utoipa::path(
    put, path = "/licensing/console", operation_id = "InstallConsoleLicense", tag = "Licensing",
    params(SelectParam),
    request_body(content = LicenseUploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = DataOf<ConsoleLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn install_console_license(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<ConsoleLicense>,
    LicenseUpload(file): LicenseUpload,
) -> ApiResult<Response> {
    ops::install(
        &state,
        &caller,
        KIND,
        CONSOLE_ROLES,
        CONSOLE_TARGET,
        &file,
        select,
    )
    .await
}

#[utoipa::path(
    post, path = "/licensing/console/update", operation_id = "UpdateConsoleLicense", tag = "Licensing",
    params(SelectParam),
    responses((status = 200, body = DataOf<ConsoleLicense>), (status = "default", body = ErrorResponse)),
)]
pub async fn update_console_license(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<ConsoleLicense>,
) -> ApiResult<Response> {
    ops::update(&state, &caller, KIND, CONSOLE_ROLES, CONSOLE_TARGET, select).await
}

#[utoipa::path(
    get, path = "/licensing/console/settings", operation_id = "GetConsoleLicenseSettings", tag = "Licensing",
    params(SelectParam),
    responses((status = 200, body = DataOf<LicenseSettings>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_console_license_settings(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<LicenseSettings>,
) -> ApiResult<Response> {
    caller.require(CONSOLE_ROLES)?;
    let target = state.console_target().await?;
    let settings = LicenseSettings {
        is_auto_update_enabled: target.doc.auto_update_enabled,
    };
    select.respond(&settings)
}
