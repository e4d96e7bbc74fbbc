//! The OpenAPI document of what this server implements, generated from the handlers' own
//! annotations and served at `/api/v3/openapi.json`. A test compares it with the committed
//! VSPC 3.6.1 Licensing contract so the two cannot drift apart unnoticed.

use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::licensing::resources;
use crate::wire::{
    EmptyResponse, ErrorResponse, ErrorType, JsonPatch, LicenseUploadForm, PagingInformation,
    ResponseError, ResponseMetadata, SectionForDelete, SelectExpression,
};
use crate::{about, async_actions, reports, token, usage, web};

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
        web::Session, web::SessionAccess, web::Access,
    )),
    modifiers(&BearerAuth),
    security(("bearerAuth" = [])),
)]
pub struct ApiDoc;

/// The generated document: the fixed parts above plus every operation of the route table.
pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::organizations::OrganizationsDoc::openapi());
    doc.merge(crate::routes::public_routes().into_openapi());
    doc.merge(crate::routes::api_routes().into_openapi());
    serde_json::to_value(doc).unwrap_or_default()
}

pub async fn serve_openapi() -> Response {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    axum::Json(DOC.get_or_init(document).clone()).into_response()
}
