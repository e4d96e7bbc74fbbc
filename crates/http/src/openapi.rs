//! The OpenAPI document of what this server implements, generated from the handlers' own
//! annotations and served at `/api/v3/openapi.json`. A test compares it with the committed
//! VSPC 3.6.1 Licensing contract so the two cannot drift apart unnoticed.

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::{ErrorResponse, ErrorType, ResponseError};
use crate::licensing::{backup_servers, console, resources, sites, vb365_servers, vone_servers};
use crate::wire::{EmptyResponse, JsonPatch, PagingInformation, ResponseMetadata};
use crate::{about, async_actions, reports, token, usage, users};

/// `{"data": T}` as the contract wraps single resources.
#[derive(Serialize, ToSchema)]
pub struct DataOf<T: ToSchema> {
    pub meta: Option<ResponseMetadata>,
    pub data: T,
    pub errors: Option<Vec<ResponseError>>,
}

/// `{"meta": {"pagingInfo": …}, "data": [T]}` as the contract wraps collections.
#[derive(Serialize, ToSchema)]
pub struct ListOf<T: ToSchema> {
    pub meta: Option<ResponseMetadata>,
    pub data: Vec<T>,
    pub errors: Option<Vec<ResponseError>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectExpression {
    pub property_path: String,
}

/// The multipart body of a license install.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LicenseUploadForm {
    /// License file.
    #[schema(value_type = String, format = Binary)]
    license: Vec<u8>,
}

/// Which part of a Backup & Replication license to remove.
#[derive(Serialize, ToSchema)]
pub enum SectionForDelete {
    Socket,
    Instance,
    All,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SectionForDeleteParam {
    /// Section of the license to remove (default All).
    #[param(rename = "sectionForDelete", value_type = SectionForDelete)]
    section_for_delete: Option<String>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tallyman",
        description = "Self-hosted license server, wire-compatible with the Licensing resource of \
                       the Veeam Service Provider Console REST API v3 (3.6.1)."
    ),
    servers((url = "/api/v3")),
    paths(
        token::o_auth_2_issue_token,
        about::get_about_information,
        async_actions::get_async_actions_info,
        async_actions::get_async_actions_config,
        async_actions::get_async_action_info,
        async_actions::cancel_async_action,
        async_actions::attach_request_data_to_async_action,
        async_actions::get_async_action_result,
        async_actions::clear_async_action_result,
        users::revoke_authentication_token,
        sites::get_site_licenses,
        sites::get_site_license,
        sites::install_site_license,
        sites::patch_site_license,
        sites::update_site_license,
        backup_servers::get_backup_servers_licenses,
        backup_servers::get_backup_server_license,
        backup_servers::install_backup_server_license,
        backup_servers::delete_backup_server_license,
        backup_servers::patch_backup_server_license,
        backup_servers::update_backup_server_license,
        vone_servers::get_v_one_servers_licenses,
        vone_servers::get_v_one_server_license,
        vone_servers::install_v_one_server_license,
        vone_servers::delete_v_one_server_license,
        vone_servers::patch_v_one_server_license,
        vone_servers::update_v_one_server_license,
        vb365_servers::get_vb365_servers_licenses,
        vb365_servers::get_vb365_server_license,
        vb365_servers::install_vb365_server_license,
        vb365_servers::patch_vb365_server_license,
        vb365_servers::update_vb365_server_license,
        console::get_console_license_information,
        console::install_console_license,
        console::update_console_license,
        console::get_console_license_settings,
        reports::get_licensing_reports,
        reports::get_latest_licensing_reports,
        reports::download_licensing_report_csv,
        reports::get_licensing_reports_for_date,
        reports::finalize_licensing_reports,
        reports::get_licensing_reports_settings,
        reports::patch_licensing_reports_settings,
        usage::get_organizations_license_usage,
    ),
    components(schemas(
        ErrorResponse, ResponseError, ErrorType, EmptyResponse, PagingInformation, ResponseMetadata,
        SelectExpression, JsonPatch, token::OAuth2Result, token::OAuth2Error, token::OAuth2ErrorCode,
        async_actions::AsyncActionInfo, async_actions::AsyncActionStatus,
        async_actions::AsyncActionsConfig, async_actions::AsyncActionRequestData, about::About,
        resources::SiteLicense, resources::BackupServerLicense, resources::VOneServerLicense,
        resources::Vb365ServerLicense, resources::ConsoleLicense, resources::LicenseSettings,
        LicenseUploadForm, SectionForDelete, reports::SingleLicenseReportDoc,
        reports::LicenseReportFinalizationStatus, reports::SingleLicenseReportSettings,
        usage::OrganizationCurrentLicenseUsage, usage::ServerCurrentLicenseUsage,
        usage::CurrentLicenseUsageWorkload, usage::CurrentLicenseUsageWorkloadByPlatform,
    )),
    modifiers(&BearerAuth),
    security(("bearerAuth" = [])),
)]
pub struct ApiDoc;

/// The generated document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::to_value(
        ApiDoc::openapi().merge_from(crate::organizations::OrganizationsDoc::openapi()),
    )
    .unwrap_or_default()
}

pub async fn serve_openapi() -> Response {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOC.get_or_init(document).clone()).into_response()
}
