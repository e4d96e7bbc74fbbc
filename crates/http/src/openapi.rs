//! The OpenAPI document of what this server implements, generated from the handlers' own
//! annotations and served at `/api/v3/openapi.json`. A test compares it with the committed
//! VSPC 3.6.1 Licensing contract so the two cannot drift apart unnoticed.

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::{ErrorResponse, ErrorType, ResponseError};
use crate::licensing::resources;
use crate::wire::{EmptyResponse, JsonPatch, PagingInformation, ResponseMetadata};
use crate::{about, async_actions, reports, token, usage};

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

/// The generated document: the fixed parts above plus every operation of the route table.
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::routes::public_routes().into_openapi());
    doc.merge(crate::routes::api_routes().into_openapi());
    serde_json::to_value(doc).unwrap_or_default()
}

pub async fn serve_openapi() -> Response {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOC.get_or_init(document).clone()).into_response()
}
