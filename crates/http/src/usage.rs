//! `GET /licensing/usage/organizations`: this month's live license usage, organization →
//! server → workload type → platform, from the latest usage sample of each, in points (count ×
//! weight). Used for chargeback between the monthly reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tallyman_domain::points::lookup;
use tallyman_domain::report::describe;
use tallyman_query::{FieldType, Schema};
use tallyman_store::{OrganizationType, Role, TargetKind};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::licensing::CONSOLE_TARGET;
use crate::openapi::ListOf;
use crate::query::{CollectionParams, CollectionQuery, Resource};
use crate::reporting::{self, product_type, Month};
use crate::AppState;

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

#[derive(Default)]
struct Filters {
    organization_uid: Option<Uuid>,
    organization_type: Option<String>,
    provider_uid: Option<Uuid>,
    server_uid: Option<Uuid>,
    server_type: Option<String>,
}

fn parse_filters(query: Option<&str>) -> ApiResult<Filters> {
    let mut f = Filters::default();
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
    let filters = parse_filters(raw.as_deref())?;
    let scope = caller.scope(&state).await?;
    let month = Month::of(state.clock.now());
    let samples = state.store.usage_latest(month.start(), month.end()).await?;
    let weights = reporting::weights(&state.store)
        .await
        .map_err(ApiError::internal)?;
    let orgs: HashMap<Uuid, tallyman_store::Organization> = state
        .store
        .organizations()
        .await?
        .into_iter()
        .map(|o| (o.uid, o))
        .collect();
    let servers: HashMap<Uuid, tallyman_store::ManagedServer> = state
        .store
        .servers(None)
        .await?
        .into_iter()
        .map(|s| (s.uid, s))
        .collect();
    let mut editions: HashMap<Uuid, (String, String)> = HashMap::new();
    for kind in [
        TargetKind::Console,
        TargetKind::CloudConnectSite,
        TargetKind::BackupServer,
        TargetKind::VOneServer,
        TargetKind::Vb365Server,
    ] {
        for (uid, (_, doc)) in crate::licensing::slot_documents(&state, kind).await? {
            if let Some(f) = doc.primary() {
                let unit = match f.claims.unit_type {
                    Some(tallyman_license::UnitType::Instances) => "Instances",
                    _ => "Points",
                };
                editions.insert(uid, (f.claims.edition.clone(), unit.to_string()));
            }
        }
    }

    // organization → server → workload type → platform → counts
    type Counts = (i64, i64, i64);
    let mut tree: BTreeMap<Uuid, BTreeMap<Uuid, BTreeMap<String, BTreeMap<String, Counts>>>> =
        BTreeMap::new();
    for s in samples {
        if !scope.contains(s.organization_uid) {
            continue;
        }
        tree.entry(s.organization_uid)
            .or_default()
            .entry(s.server_uid)
            .or_default()
            .entry(s.workload_type)
            .or_default()
            .insert(s.platform, (s.used, s.new, s.rental));
    }

    let mut docs = Vec::new();
    for (org_uid, by_server) in tree {
        let Some(org) = orgs.get(&org_uid) else {
            continue;
        };
        let org_type = org.kind.as_str().to_string();
        if filters.organization_uid.is_some_and(|u| u != org_uid)
            || filters
                .organization_type
                .as_ref()
                .is_some_and(|t| *t != org_type)
            || filters
                .provider_uid
                .is_some_and(|p| org.parent_uid != Some(p))
        {
            continue;
        }
        let mut server_list = Vec::new();
        for (server_uid, workloads) in by_server {
            let server_type = if server_uid == CONSOLE_TARGET {
                "VSPC".to_string()
            } else {
                match servers.get(&server_uid) {
                    Some(s) => product_type(s.kind).to_string(),
                    None => continue,
                }
            };
            if filters.server_uid.is_some_and(|u| u != server_uid)
                || filters
                    .server_type
                    .as_ref()
                    .is_some_and(|t| *t != server_type)
            {
                continue;
            }
            let (edition, unit_type) = editions
                .get(&server_uid)
                .cloned()
                .unwrap_or_else(|| (String::new(), "Points".into()));
            let workloads = workloads
                .into_iter()
                .map(|(workload_type, platforms)| {
                    let weight =
                        lookup(&weights, &server_type, &edition, &workload_type).unwrap_or(0.0);
                    let by_platform: Vec<CurrentLicenseUsageWorkloadByPlatform> = platforms
                        .into_iter()
                        .map(|(platform, (used, new, rental))| {
                            CurrentLicenseUsageWorkloadByPlatform {
                                description: platform.replace('_', " "),
                                type_id: platform,
                                weight,
                                rental_units: rental as f64 * weight,
                                new_units: new as f64 * weight,
                                used_units: used as f64 * weight,
                                rental_count: rental,
                                new_count: new,
                                used_count: used,
                            }
                        })
                        .collect();
                    CurrentLicenseUsageWorkload {
                        id: workload_id(server_uid, org_uid, &workload_type),
                        description: format!("{} ({workload_type})", describe(&workload_type)),
                        unit_type: unit_type.clone(),
                        rental_units: by_platform.iter().map(|p| p.rental_units).sum(),
                        new_units: by_platform.iter().map(|p| p.new_units).sum(),
                        used_units: by_platform.iter().map(|p| p.used_units).sum(),
                        rental_count: by_platform.iter().map(|p| p.rental_count).sum(),
                        new_count: by_platform.iter().map(|p| p.new_count).sum(),
                        used_count: by_platform.iter().map(|p| p.used_count).sum(),
                        workloads_by_platform: by_platform,
                    }
                })
                .collect();
            server_list.push(ServerCurrentLicenseUsage {
                server_uid,
                server_type,
                workloads,
            });
        }
        // A filter that removes every server of an organization removes the organization.
        if server_list.is_empty() {
            continue;
        }
        let entry = OrganizationCurrentLicenseUsage {
            organization_uid: org_uid,
            organization_type: org_type,
            provider_uid: if org.kind == OrganizationType::Provider {
                None
            } else {
                org.parent_uid
            },
            servers: server_list,
        };
        docs.push(serde_json::to_value(entry).map_err(ApiError::internal)?);
    }
    Ok(query.page(docs).into_response())
}
