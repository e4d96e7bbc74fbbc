//! `GET /licensing/usage/organizations`: this month's live license usage, organization →
//! server → workload type → platform, from the latest usage sample of each, in points (count ×
//! weight). Used for chargeback between the monthly reports.

use std::sync::OnceLock;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tallyman_app::usage::{UsageFilter, WorkloadUsage};
use tallyman_domain::report::describe;
use tallyman_query::{FieldType, Schema};
use tallyman_store::Role;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::query::{CollectionParams, CollectionQuery, Resource};
use crate::wire::ListOf;
use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::async_actions::tracked_operation;

pub const USAGE_ROLES: &[Role] = &[
    Role::PortalAdministrator,
    Role::ServiceProviderGlobalAdministrator,
    Role::ServiceProviderAdministrator,
    Role::SiteAdministrator,
];

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentLicenseUsageWorkloadByPlatform {
    pub type_id: String,
    pub description: String,
    pub weight: f64,
    pub rental_units: f64,
    pub new_units: f64,
    pub used_units: f64,
    pub rental_count: i64,
    pub new_count: i64,
    pub used_count: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentLicenseUsageWorkload {
    pub id: Uuid,
    pub description: String,
    pub unit_type: String,
    pub rental_units: f64,
    pub new_units: f64,
    pub used_units: f64,
    pub rental_count: i64,
    pub new_count: i64,
    pub used_count: i64,
    pub workloads_by_platform: Vec<CurrentLicenseUsageWorkloadByPlatform>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerCurrentLicenseUsage {
    pub server_uid: Uuid,
    pub server_type: String,
    pub workloads: Vec<CurrentLicenseUsageWorkload>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationCurrentLicenseUsage {
    pub organization_uid: Uuid,
    pub organization_type: String,
    pub provider_uid: Option<Uuid>,
    pub servers: Vec<ServerCurrentLicenseUsage>,
}

impl Resource for OrganizationCurrentLicenseUsage {
    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            Schema::new(&[
                ("organizationUid", FieldType::Uuid),
                ("organizationType", FieldType::Enum),
                ("providerUid", FieldType::Uuid),
                ("servers", FieldType::Object),
            ])
        })
    }
}

/// The dedicated query parameters of this operation.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct UsageFilters {
    /// Only this organization.
    #[param(value_type = Option<Uuid>, rename = "organizationUid")]
    organization_uid: Option<String>,
    /// Only organizations of this type (Company, Provider, Reseller).
    #[param(value_type = Option<String>, rename = "organizationType")]
    organization_type: Option<String>,
    /// Only organizations managed by this organization.
    #[param(value_type = Option<Uuid>, rename = "providerUid")]
    provider_uid: Option<String>,
    /// Only this server.
    #[param(value_type = Option<Uuid>, rename = "serverUid")]
    server_uid: Option<String>,
    /// Only servers of this type (BackupAndReplication, CloudConnect, VSPC, VONE, VB365).
    #[param(value_type = Option<String>, rename = "serverType")]
    server_type: Option<String>,
}

fn parse_filters(query: Option<&str>) -> ApiResult<UsageFilter> {
    let mut f = UsageFilter::default();
    let uid = |name: &str, v: &str| {
        Uuid::parse_str(v.trim())
            .map_err(|_| ApiError::bad_parameter(name, format!("{name} must be a UUID.")))
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if v.trim().is_empty() {
            continue;
        }
        match k.to_ascii_lowercase().as_str() {
            "organizationuid" => f.organization_uid = Some(uid("organizationUid", &v)?),
            "provideruid" => f.provider_uid = Some(uid("providerUid", &v)?),
            "serveruid" => f.server_uid = Some(uid("serverUid", &v)?),
            "organizationtype" => {
                let allowed = ["Unknown", "Company", "Provider", "Reseller"];
                let value = allowed
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(v.trim()))
                    .ok_or_else(|| {
                        ApiError::bad_parameter(
                            "organizationType",
                            "organizationType must be Company, Provider, Reseller or Unknown.",
                        )
                    })?;
                f.organization_type = Some(value.to_string());
            }
            "servertype" => {
                let allowed = [
                    "Unknown",
                    "BackupAndReplication",
                    "CloudConnect",
                    "VSPC",
                    "VONE",
                    "VB365",
                ];
                let value = allowed.iter().find(|a| a.eq_ignore_ascii_case(v.trim())).ok_or_else(|| {
                    ApiError::bad_parameter("serverType", "serverType must be BackupAndReplication, CloudConnect, VSPC, VONE, VB365 or Unknown.")
                })?;
                f.server_type = Some(value.to_string());
            }
            _ => {}
        }
    }
    Ok(f)
}

/// A stable id for a workload line, so clients can follow it from one call to the next.
fn workload_id(server: Uuid, organization: Uuid, workload_type: &str) -> Uuid {
    let digest = Sha256::digest(format!("{server}/{organization}/{workload_type}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(tracked_operation(routes!(get_organizations_license_usage)))
}

#[utoipa::path(
    get, path = "/licensing/usage/organizations", operation_id = "GetOrganizationsLicenseUsage", tag = "Licensing",
    params(UsageFilters, CollectionParams),
    responses((status = 200, body = ListOf<OrganizationCurrentLicenseUsage>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_organizations_license_usage(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    query: CollectionQuery<OrganizationCurrentLicenseUsage>,
) -> ApiResult<Response> {
    caller.require(USAGE_ROLES)?;
    let filter = parse_filters(raw.as_deref())?;
    let scope = caller.scope(&state).await?;
    let usage = state.live_usage(&scope, &filter).await?;
    let mut docs = Vec::with_capacity(usage.len());
    for org in usage {
        let org_uid = org.organization.uid;
        let servers = org
            .servers
            .into_iter()
            .map(|server| ServerCurrentLicenseUsage {
                server_uid: server.server_uid,
                server_type: server.server_type.to_string(),
                workloads: server
                    .workloads
                    .into_iter()
                    .map(|w| render_workload(server.server_uid, org_uid, server.unit_type, w))
                    .collect(),
            })
            .collect();
        let entry = OrganizationCurrentLicenseUsage {
            organization_uid: org_uid,
            organization_type: org.organization.kind.as_str().to_string(),
            provider_uid: org.provider_uid,
            servers,
        };
        docs.push(serde_json::to_value(entry).map_err(ApiError::internal)?);
    }
    Ok(query.page(docs).into_response())
}

fn render_workload(
    server_uid: Uuid,
    org_uid: Uuid,
    unit_type: &str,
    w: WorkloadUsage,
) -> CurrentLicenseUsageWorkload {
    let weight = w.weight;
    let by_platform: Vec<CurrentLicenseUsageWorkloadByPlatform> = w
        .platforms
        .into_iter()
        .map(|p| CurrentLicenseUsageWorkloadByPlatform {
            description: p.platform.replace('_', " "),
            type_id: p.platform,
            weight,
            rental_units: p.rental as f64 * weight,
            new_units: p.new as f64 * weight,
            used_units: p.used as f64 * weight,
            rental_count: p.rental,
            new_count: p.new,
            used_count: p.used,
        })
        .collect();
    CurrentLicenseUsageWorkload {
        id: workload_id(server_uid, org_uid, &w.workload_type),
        description: format!("{} ({})", describe(&w.workload_type), w.workload_type),
        unit_type: unit_type.to_string(),
        rental_units: by_platform.iter().map(|p| p.rental_units).sum(),
        new_units: by_platform.iter().map(|p| p.new_units).sum(),
        used_units: by_platform.iter().map(|p| p.used_units).sum(),
        rental_count: by_platform.iter().map(|p| p.rental_count).sum(),
        new_count: by_platform.iter().map(|p| p.new_count).sum(),
        used_count: by_platform.iter().map(|p| p.used_count).sum(),
        workloads_by_platform: by_platform,
    }
}
