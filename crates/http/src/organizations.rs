//! The read side of the VSPC v3 Organizations chapter that provider scripts call before the
//! licensing operations: `GET /organizations`, `/organizations/companies` and
//! `/organizations/resellers`, each as a collection and by UID, in the `Organization`,
//! `Company` and `Reseller` shapes of VSPC 3.6.1.
//!
//! Tallyman keeps an organization's name, type and managing organization; every other property
//! of those schemas is answered with a fixed, documented default (see `docs/console.md`):
//! contact and address fields are `null`, statuses `Active`, hosted and remote services
//! switched off. A company's `ownerCredentials.userName` is the login name of its first
//! `CompanyOwner` user (or of its first user), and `isRestAccessEnabled` says whether the
//! organization has an enabled user.
//!
//! Callers see their own organization and everything below it; anything else reads as not
//! found, as on the licensing resources.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tallyman_query::{FieldType, Schema};
use tallyman_store::{Organization, OrganizationType, Role, User};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::async_actions::tracked_operation;
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::query::{CollectionParams, CollectionQuery, Resource};
use crate::select::{Select, SelectParam};
use crate::wire::{DataOf, ListOf};
use crate::AppState;

/// Every role may list the organizations in its scope.
pub const ORGANIZATION_ROLES: &[Role] = &Role::ALL;

/// Provider and reseller roles may read resellers (a reseller only itself).
pub const RESELLER_ROLES: &[Role] = &[
    Role::PortalAdministrator,
    Role::PortalOperator,
    Role::ReadOnlyUser,
    Role::SiteAdministrator,
    Role::ServiceProviderGlobalAdministrator,
    Role::ServiceProviderAdministrator,
    Role::ServiceProviderOperator,
    Role::ServiceProviderUser,
    Role::ServiceProviderInvoiceAuditor,
];

/// This module's operations, for the authenticated `/api/v3` router.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(tracked_operation(routes!(get_organizations)))
        .routes(tracked_operation(routes!(get_companies)))
        .routes(tracked_operation(routes!(get_company)))
        .routes(tracked_operation(routes!(get_resellers)))
        .routes(tracked_operation(routes!(get_reseller)))
        .routes(tracked_operation(routes!(get_organization)))
}

/// `Organization` (VSPC v3): the fields every organization type shares.
pub struct OrganizationDoc;

impl Resource for OrganizationDoc {
    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            use FieldType::*;
            Schema::new(&[
                ("instanceUid", Uuid),
                ("name", String),
                ("alias", String),
                ("type", Enum),
                ("taxId", String),
                ("email", String),
                ("phone", String),
                ("country", Integer),
                ("state", Integer),
                ("countryName", String),
                ("regionName", String),
                ("city", String),
                ("street", String),
                ("locationAdmin0Code", String),
                ("locationAdmin1Code", String),
                ("locationAdmin2Code", String),
                ("notes", String),
                ("zipCode", String),
                ("website", String),
                ("veeamTenantId", String),
                ("companyId", String),
            ])
        })
    }
}

/// `Company` (VSPC v3).
pub struct CompanyDoc;

impl Resource for CompanyDoc {
    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            use FieldType::*;
            Schema::new(&[
                ("instanceUid", Uuid),
                ("name", String),
                ("status", Enum),
                ("resellerUid", Uuid),
                ("subscriptionPlanUid", Uuid),
                ("isRestAccessEnabled", Boolean),
                ("isAlarmDetectEnabled", Boolean),
                ("companyServices", Object),
                ("ownerCredentials.userName", String),
                ("ownerCredentials.password", String),
                ("loginUrl", String),
                ("_embedded", Object),
            ])
        })
    }
}

/// `Reseller` (VSPC v3).
pub struct ResellerDoc;

impl Resource for ResellerDoc {
    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            use FieldType::*;
            Schema::new(&[
                ("instanceUid", Uuid),
                ("proPartnerId", String),
                ("name", String),
                ("status", Enum),
                ("isRestAccessEnabled", Boolean),
                ("resellerServices", Object),
                ("_embedded", Object),
            ])
        })
    }
}

/// The organization resources as documented (the handlers build the same shapes as JSON; these
/// types exist for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = Organization, rename_all = "camelCase")]
pub struct OrganizationSchema {
    instance_uid: Uuid,
    name: String,
    alias: Option<String>,
    /// Company, Provider, Reseller or Unknown.
    #[schema(rename = "type")]
    kind: String,
    tax_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    country: Option<i32>,
    state: Option<i32>,
    country_name: Option<String>,
    region_name: Option<String>,
    city: Option<String>,
    street: Option<String>,
    location_admin0_code: Option<String>,
    location_admin1_code: Option<String>,
    location_admin2_code: Option<String>,
    notes: Option<String>,
    zip_code: Option<String>,
    website: Option<String>,
    veeam_tenant_id: Option<String>,
    company_id: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct OwnerCredentials {
    user_name: String,
    password: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct EmbeddedForOrganizationChildren {
    organization: OrganizationSchema,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = Company, rename_all = "camelCase")]
pub struct CompanySchema {
    instance_uid: Uuid,
    name: String,
    /// Active (Tallyman does not disable companies).
    status: String,
    reseller_uid: Option<Uuid>,
    subscription_plan_uid: Option<Uuid>,
    is_rest_access_enabled: bool,
    is_alarm_detect_enabled: bool,
    #[schema(value_type = Object)]
    company_services: Value,
    owner_credentials: OwnerCredentials,
    login_url: Option<String>,
    #[schema(rename = "_embedded")]
    embedded: Option<EmbeddedForOrganizationChildren>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = Reseller, rename_all = "camelCase")]
pub struct ResellerSchema {
    instance_uid: Uuid,
    pro_partner_id: Option<String>,
    name: String,
    status: String,
    is_rest_access_enabled: bool,
    #[schema(value_type = Object)]
    reseller_services: Value,
    #[schema(rename = "_embedded")]
    embedded: Option<EmbeddedForOrganizationChildren>,
}

/// `expand` on companies and resellers.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExpandParam {
    /// `Organization` embeds the organization (`_embedded.organization`).
    #[param(value_type = Option<Vec<String>>)]
    expand: Option<String>,
}

/// The schemas of these operations (the operations come from the route table).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    OrganizationSchema,
    CompanySchema,
    ResellerSchema,
    OwnerCredentials,
    EmbeddedForOrganizationChildren
)))]
pub struct OrganizationsDoc;

/// What the handlers need to render organizations for one caller.
struct View {
    orgs: Vec<Organization>,
    users: Vec<User>,
    scope: Scope,
}

impl View {
    async fn load(state: &AppState, caller: &Caller) -> ApiResult<Self> {
        let scope = caller.scope(state).await?;
        let orgs = state.store.organizations().await?;
        let users = state.store.users().await?;
        Ok(Self { orgs, users, scope })
    }

    fn visible(&self, kind: Option<OrganizationType>) -> impl Iterator<Item = &Organization> {
        self.orgs
            .iter()
            .filter(move |o| self.scope.contains(o.uid) && kind.is_none_or(|k| o.kind == k))
    }

    /// The organization `raw` names, when it exists, is of `kind` and is in scope.
    fn find(
        &self,
        raw: &str,
        kind: Option<OrganizationType>,
        what: &str,
    ) -> ApiResult<&Organization> {
        let not_found = || ApiError::not_found(format!("The {what} {} was not found.", raw.trim()));
        let uid = Uuid::parse_str(raw.trim()).map_err(|_| not_found())?;
        self.visible(kind)
            .find(|o| o.uid == uid)
            .ok_or_else(not_found)
    }

    fn users_of(&self, org: Uuid) -> impl Iterator<Item = &User> {
        self.users
            .iter()
            .filter(move |u| u.organization_uid == org && u.enabled)
    }
}

/// The `Organization` document of one organization.
pub fn organization_doc(org: &Organization) -> Value {
    json!({
        "instanceUid": org.uid,
        "name": org.name,
        "alias": null,
        "type": org.kind.as_str(),
        "taxId": null,
        "email": null,
        "phone": null,
        "country": null,
        "state": null,
        "countryName": null,
        "regionName": null,
        "city": null,
        "street": null,
        "locationAdmin0Code": null,
        "locationAdmin1Code": null,
        "locationAdmin2Code": null,
        "notes": null,
        "zipCode": null,
        "website": null,
        "veeamTenantId": null,
        "companyId": null,
    })
}

fn company_doc(
    view: &View,
    parents: &HashMap<Uuid, OrganizationType>,
    org: &Organization,
    embed: bool,
) -> Value {
    let mut users: Vec<&User> = view.users_of(org.uid).collect();
    users.sort_by_key(|u| (u.role != Role::CompanyOwner, u.created_at));
    let owner = users.first().map(|u| u.name.clone()).unwrap_or_default();
    // Only a reseller parent is a `resellerUid`; companies of the provider have none.
    let reseller = org
        .parent_uid
        .filter(|p| parents.get(p) == Some(&OrganizationType::Reseller));
    let mut doc = json!({
        "instanceUid": org.uid,
        "name": org.name,
        "status": "Active",
        "resellerUid": reseller,
        "subscriptionPlanUid": null,
        "isRestAccessEnabled": !users.is_empty(),
        "isAlarmDetectEnabled": false,
        "companyServices": {
            "hostedServices": {"isVbPublicCloudManagementEnabled": false},
            "remoteServices": {
                "isBackupResourcesEnabled": false,
                "backupAgentsManagement": null,
                "backupServersManagement": null,
                "vb365ServersManagement": null,
                "isVbPublicCloudManagementEnabled": false,
            },
        },
        "ownerCredentials": {"userName": owner, "password": null},
        "loginUrl": null,
    });
    if embed {
        doc["_embedded"] = json!({"organization": organization_doc(org)});
    }
    doc
}

fn reseller_doc(view: &View, org: &Organization, embed: bool) -> Value {
    let mut doc = json!({
        "instanceUid": org.uid,
        "proPartnerId": null,
        "name": org.name,
        "status": "Active",
        "isRestAccessEnabled": view.users_of(org.uid).next().is_some(),
        "resellerServices": {
            "hostedServices": {
                "backupResourcesEnabled": false,
                "vb365ManagementEnabled": false,
                "vbPublicCloudManagementEnabled": false,
            },
            "remoteServices": {
                "vb365ManagementEnabled": false,
                "backupServersManagementEnabled": false,
                "vbPublicCloudManagementEnabled": false,
            },
            "cloudConnectManagementEnabled": false,
            "isFileLevelRestoreEnabled": false,
        },
    });
    if embed {
        doc["_embedded"] = json!({"organization": organization_doc(org)});
    }
    doc
}

/// Whether `expand` asks for the embedded `Organization`. The parameter arrives as repeated
/// keys (`expand=Organization`) or as a JSON array (`expand=["Organization"]`).
fn expand_organization(query: Option<&str>) -> ApiResult<bool> {
    let mut embed = false;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !k.eq_ignore_ascii_case("expand") {
            continue;
        }
        let v = v.trim();
        let values: Vec<String> = if v.starts_with('[') {
            serde_json::from_str::<Vec<String>>(&v.replace('\'', "\"")).map_err(|_| {
                ApiError::bad_parameter("expand", "expand must be a list of Organization.")
            })?
        } else {
            v.split(',').map(|s| s.trim().to_string()).collect()
        };
        for value in values.iter().filter(|s| !s.is_empty()) {
            if value.eq_ignore_ascii_case("Organization") {
                embed = true;
            } else {
                return Err(ApiError::bad_parameter(
                    "expand",
                    format!("The expand value {value} is not known; use Organization."),
                ));
            }
        }
    }
    Ok(embed)
}

fn parents(view: &View) -> HashMap<Uuid, OrganizationType> {
    view.orgs.iter().map(|o| (o.uid, o.kind)).collect()
}

/// `GET /organizations`: every organization in the caller's scope.
#[utoipa::path(
    get, path = "/organizations", operation_id = "GetOrganizations", tag = "Organizations",
    params(CollectionParams),
    responses((status = 200, body = ListOf<OrganizationSchema>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_organizations(
    State(state): State<AppState>,
    caller: Caller,
    query: CollectionQuery<OrganizationDoc>,
) -> ApiResult<Response> {
    caller.require(ORGANIZATION_ROLES)?;
    let view = View::load(&state, &caller).await?;
    let docs = view.visible(None).map(organization_doc).collect();
    Ok(query.page(docs).into_response())
}

/// `GET /organizations/{organizationUid}`.
#[utoipa::path(
    get, path = "/organizations/{organizationUid}", operation_id = "GetOrganization", tag = "Organizations",
    params(("organizationUid" = Uuid, Path, description = "Organization UID."), SelectParam),
    responses((status = 200, body = DataOf<OrganizationSchema>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_organization(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<OrganizationDoc>,
) -> ApiResult<Response> {
    caller.require(ORGANIZATION_ROLES)?;
    let view = View::load(&state, &caller).await?;
    let org = view.find(&raw, None, "organization")?;
    select.respond(&organization_doc(org))
}

/// `GET /organizations/companies`.
#[utoipa::path(
    get, path = "/organizations/companies", operation_id = "GetCompanies", tag = "Organizations",
    params(ExpandParam, CollectionParams),
    responses((status = 200, body = ListOf<CompanySchema>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_companies(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    query: CollectionQuery<CompanyDoc>,
) -> ApiResult<Response> {
    caller.require(ORGANIZATION_ROLES)?;
    let embed = expand_organization(raw.as_deref())?;
    let view = View::load(&state, &caller).await?;
    let parents = parents(&view);
    let docs = view
        .visible(Some(OrganizationType::Company))
        .map(|o| company_doc(&view, &parents, o, embed))
        .collect();
    Ok(query.page(docs).into_response())
}

/// `GET /organizations/companies/{companyUid}`.
#[utoipa::path(
    get, path = "/organizations/companies/{companyUid}", operation_id = "GetCompany", tag = "Organizations",
    params(("companyUid" = Uuid, Path, description = "Company UID."), SelectParam),
    responses((status = 200, body = DataOf<CompanySchema>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_company(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    select: Select<CompanyDoc>,
) -> ApiResult<Response> {
    caller.require(ORGANIZATION_ROLES)?;
    let embed = expand_organization(query.as_deref())?;
    let view = View::load(&state, &caller).await?;
    let org = view.find(&raw, Some(OrganizationType::Company), "company")?;
    select.respond(&company_doc(&view, &parents(&view), org, embed))
}

/// `GET /organizations/resellers`.
#[utoipa::path(
    get, path = "/organizations/resellers", operation_id = "GetResellers", tag = "Organizations",
    params(ExpandParam, CollectionParams),
    responses((status = 200, body = ListOf<ResellerSchema>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_resellers(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    query: CollectionQuery<ResellerDoc>,
) -> ApiResult<Response> {
    caller.require(RESELLER_ROLES)?;
    let embed = expand_organization(raw.as_deref())?;
    let view = View::load(&state, &caller).await?;
    let docs = view
        .visible(Some(OrganizationType::Reseller))
        .map(|o| reseller_doc(&view, o, embed))
        .collect();
    Ok(query.page(docs).into_response())
}

/// `GET /organizations/resellers/{resellerUid}`.
#[utoipa::path(
    get, path = "/organizations/resellers/{resellerUid}", operation_id = "GetReseller", tag = "Organizations",
    params(("resellerUid" = Uuid, Path, description = "Reseller UID."), SelectParam),
    responses((status = 200, body = DataOf<ResellerSchema>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_reseller(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    select: Select<ResellerDoc>,
) -> ApiResult<Response> {
    caller.require(RESELLER_ROLES)?;
    let embed = expand_organization(query.as_deref())?;
    let view = View::load(&state, &caller).await?;
    let org = view.find(&raw, Some(OrganizationType::Reseller), "reseller")?;
    select.respond(&reseller_doc(&view, org, embed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_accepts_repeated_keys_and_json_arrays() {
        assert!(!expand_organization(None).unwrap());
        assert!(expand_organization(Some("expand=Organization")).unwrap());
        assert!(expand_organization(Some("expand=organization&limit=5")).unwrap());
        assert!(expand_organization(Some("expand=%5B%22Organization%22%5D")).unwrap());
        assert!(expand_organization(Some("expand=['Organization']")).unwrap());
        assert!(expand_organization(Some("expand=")).is_ok_and(|e| !e));
        assert!(expand_organization(Some("expand=Nope")).is_err());
        assert!(expand_organization(Some("expand=[1")).is_err());
    }

    #[test]
    fn organization_doc_has_the_vspc_shape() {
        let org = Organization {
            uid: Uuid::nil(),
            name: "Acme".into(),
            kind: OrganizationType::Company,
            parent_uid: None,
            created_at: chrono::Utc::now(),
        };
        let doc = organization_doc(&org);
        assert_eq!(doc["type"], "Company");
        assert_eq!(doc["name"], "Acme");
        assert!(doc["country"].is_null());
        assert_eq!(doc.as_object().map(|o| o.len()), Some(21));
    }
}
