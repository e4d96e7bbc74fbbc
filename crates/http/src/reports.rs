//! The monthly license usage reports: `/licensing/reports…` (list, latest, by month, CSV,
//! finalization and settings). Each report belongs to a report owner, the provider or a
//! reseller; provider roles see every report, reseller roles their own organization's.

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tallyman_domain::report::{csv_field, ReportLine};
use tallyman_query::{FieldType, Schema};
use tallyman_store::{OrganizationType, ReportRecord, ReportStatus, Role};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::licensing::patch::{apply_flag_patch, PatchBody};
use crate::query::{CollectionParams, CollectionQuery, Resource};
use crate::select::{Select, SelectParam};
use crate::wire::JsonPatch;
use crate::wire::{DataOf, ListOf};
use crate::AppState;
use tallyman_app::reports as reporting;
use tallyman_app::Month;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::async_actions::tracked_operation;

/// Roles the contract admits on every report operation.
pub const REPORT_ROLES: &[Role] = &[
    Role::PortalAdministrator,
    Role::ServiceProviderGlobalAdministrator,
    Role::ServiceProviderAdministrator,
];

/// The report resource as documented (the stored document is already in this shape; these types
/// exist for the OpenAPI document and the query schema).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = SingleLicenseReport, rename_all = "camelCase")]
pub struct SingleLicenseReportDoc {
    report_status: String,
    report_parameters: LicenseReportParameters,
    report_summary: LicenseReportSummary,
    organizations_usage: Vec<OrganizationLicenseUsage>,
    not_collected_cloud_servers: Option<Vec<String>>,
    cloned_cloud_servers: Option<Vec<String>>,
    unsupported_cloud_servers: Option<Vec<String>>,
    usage_details: Vec<OrganizationUsageOfLicensesWithSameSupportId>,
    appendices: Vec<LicenseReportAppendix>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct LicenseReportParameters {
    report_id: i32,
    organization_name: String,
    organization_uid: Uuid,
    license_company_name: String,
    #[schema(value_type = String, format = DateTime)]
    generation_date: String,
    report_interval: LicenseReportInterval,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct LicenseReportInterval {
    #[schema(value_type = String, format = DateTime)]
    start_of_interval: String,
    #[schema(value_type = String, format = DateTime)]
    end_of_interval: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct LicenseReportSummary {
    total_points: f64,
    products_usage: Vec<TotalProductLicenseUsage>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct TotalProductLicenseUsage {
    product_type: String,
    total_points: f64,
    license_edition: String,
    workload_usage: Vec<WorkloadLicenseUsage>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct WorkloadLicenseUsage {
    workload_type: String,
    description: String,
    initial_count: i64,
    reported_count: i64,
    new_count: i64,
    weight: f64,
    used_points: f64,
    workloads_by_platform: Vec<WorkloadLicenseUsageByPlatform>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct WorkloadLicenseUsageByPlatform {
    type_id: String,
    description: String,
    objects_by_weight: Vec<WorkloadLicenseUsageByWeight>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct WorkloadLicenseUsageByWeight {
    weight: f64,
    initial_count: i64,
    reported_count: i64,
    new_count: i64,
    used_points: f64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct OrganizationLicenseUsage {
    organization_type: String,
    organization_name: String,
    organization_uid: Uuid,
    used_points: f64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct OrganizationUsageOfLicensesWithSameSupportId {
    organization_name: String,
    organization_uid: Uuid,
    support_id: Option<String>,
    not_collected_client_servers: Option<Vec<String>>,
    cloned_client_servers: Option<Vec<String>>,
    unsupported_client_servers: Option<Vec<String>>,
    usage_by_license_and_product: Vec<ProductLicenseUsage>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct ProductLicenseUsage {
    license_id: Option<String>,
    product_type: String,
    license_edition: Option<String>,
    used_points: f64,
    workload_usage: Vec<WorkloadLicenseUsage>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct LicenseReportAppendix {
    license_company_name: String,
    appendix_summary: LicenseReportSummary,
    organizations_usage: Vec<OrganizationLicenseUsage>,
    not_collected_cloud_servers: Option<Vec<String>>,
    cloned_cloud_servers: Option<Vec<String>>,
    unsupported_cloud_servers: Option<Vec<String>>,
    usage_details: Vec<OrganizationUsageOfLicensesWithSameSupportId>,
}

impl Resource for SingleLicenseReportDoc {
    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            use FieldType::*;
            Schema::new(&[
                ("reportStatus", Enum),
                ("reportParameters.reportId", Integer),
                ("reportParameters.organizationName", String),
                ("reportParameters.organizationUid", Uuid),
                ("reportParameters.licenseCompanyName", String),
                ("reportParameters.generationDate", DateTime),
                ("reportParameters.reportInterval.startOfInterval", DateTime),
                ("reportParameters.reportInterval.endOfInterval", DateTime),
                ("reportSummary.totalPoints", Number),
                ("reportSummary.productsUsage", Object),
                ("organizationsUsage", Object),
                ("notCollectedCloudServers", StringArray),
                ("clonedCloudServers", StringArray),
                ("unsupportedCloudServers", StringArray),
                ("usageDetails", Object),
                ("appendices", Object),
            ])
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseReportFinalizationStatus {
    pub report_approval_status: String,
    pub message: String,
}

impl Resource for LicenseReportFinalizationStatus {
    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            Schema::new(&[
                ("reportApprovalStatus", FieldType::Enum),
                ("message", FieldType::String),
            ])
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SingleLicenseReportSettings {
    pub auto_approve: bool,
}

impl Resource for SingleLicenseReportSettings {
    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::new(&[("autoApprove", FieldType::Boolean)]))
    }
}

/// The report owner a caller acts for: the provider for provider roles, the caller's reseller
/// otherwise.
async fn owner_of(state: &AppState, caller: &Caller) -> ApiResult<Uuid> {
    if caller.role.organization_type() == OrganizationType::Provider {
        return owner_of_provider(state).await;
    }
    Ok(caller.organization_uid)
}

/// Reports the caller may read, newest month first.
async fn visible_reports(state: &AppState, caller: &Caller) -> ApiResult<Vec<ReportRecord>> {
    caller.require(REPORT_ROLES)?;
    let all = state.store.reports().await?;
    if caller.role.organization_type() == OrganizationType::Provider {
        return Ok(all);
    }
    Ok(all
        .into_iter()
        .filter(|r| r.owner_uid == caller.organization_uid)
        .collect())
}

fn wire(record: &ReportRecord) -> Value {
    record.document.clone()
}

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(tracked_operation(routes!(get_licensing_reports)))
        .routes(tracked_operation(routes!(get_latest_licensing_reports)))
        .routes(tracked_operation(routes!(get_licensing_reports_for_date)))
        .routes(tracked_operation(routes!(download_licensing_report_csv)))
        .routes(tracked_operation(routes!(finalize_licensing_reports)))
        .routes(tracked_operation(routes!(get_licensing_reports_settings)))
        .routes(tracked_operation(routes!(patch_licensing_reports_settings)))
}

#[utoipa::path(
    get, path = "/licensing/reports", operation_id = "GetLicensingReports", tag = "Licensing",
    params(CollectionParams),
    responses((status = 200, body = ListOf<SingleLicenseReportDoc>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_licensing_reports(
    State(state): State<AppState>,
    caller: Caller,
    query: CollectionQuery<SingleLicenseReportDoc>,
) -> ApiResult<Response> {
    let docs = visible_reports(&state, &caller)
        .await?
        .iter()
        .map(wire)
        .collect();
    Ok(query.page(docs).into_response())
}

#[utoipa::path(
    get, path = "/licensing/reports/latest", operation_id = "GetLatestLicensingReports", tag = "Licensing",
    params(CollectionParams),
    responses((status = 200, body = ListOf<SingleLicenseReportDoc>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_latest_licensing_reports(
    State(state): State<AppState>,
    caller: Caller,
    query: CollectionQuery<SingleLicenseReportDoc>,
) -> ApiResult<Response> {
    let mut seen = std::collections::HashSet::new();
    // Newest month first, so the first report seen per owner is its latest.
    let docs = visible_reports(&state, &caller)
        .await?
        .iter()
        .filter(|r| seen.insert(r.owner_uid))
        .map(wire)
        .collect();
    Ok(query.page(docs).into_response())
}

#[utoipa::path(
    get, path = "/licensing/reports/{date}", operation_id = "GetLicensingReportsForDate", tag = "Licensing",
    params(("date" = chrono::NaiveDate, Path, description = "Month of the reports (YYYY-MM; a full date selects its month)."), CollectionParams),
    responses((status = 200, body = ListOf<SingleLicenseReportDoc>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_licensing_reports_for_date(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    query: CollectionQuery<SingleLicenseReportDoc>,
) -> ApiResult<Response> {
    let month = Month::parse(&raw).ok_or_else(|| {
        ApiError::bad_parameter(
            "date",
            "The date must be a month (YYYY-MM) or a date (YYYY-MM-DD).",
        )
    })?;
    let wanted = month.to_string();
    let docs = visible_reports(&state, &caller)
        .await?
        .iter()
        .filter(|r| r.month == wanted)
        .map(wire)
        .collect();
    Ok(query.page(docs).into_response())
}

/// CSV columns, in order; `docs/report-csv.md` describes each.
pub const CSV_HEADER: [&str; 24] = [
    "Report ID",
    "Month",
    "Report Owner",
    "Report Status",
    "Section",
    "Licensee",
    "Organization Type",
    "Organization",
    "Organization UID",
    "Server",
    "Server UID",
    "Product",
    "Edition",
    "License ID",
    "Support ID",
    "Workload Type",
    "Platform",
    "Points Per Workload",
    "Licensed Count",
    "New Count",
    "Reported Count",
    "Points",
    "Note",
    "Generation Date",
];

fn csv_row(fields: &[&str]) -> Bytes {
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 1).sum::<usize>() + 2);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_field(&mut out, f);
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// The CSV export writes rows into buffers of about this size, one response chunk each.
const CSV_BUFFER: usize = 256 * 1024;

/// The columns every row of one report shares: before `Section` and after `Note`.
struct RowFrame {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl RowFrame {
    fn write(&self, out: &mut Vec<u8>, fields: &[u8]) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(fields);
        out.extend_from_slice(&self.tail);
    }
}

#[utoipa::path(
    get, path = "/licensing/reports/{id}/csv", operation_id = "DownloadLicensingReportCsv", tag = "Licensing",
    params(("id" = i32, Path, description = "Report ID.")),
    responses((status = 200, content_type = "application/csv", body = String), (status = "default", body = ErrorResponse)),
)]
pub async fn download_licensing_report_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id: i64 = raw
        .trim()
        .parse::<i32>()
        .map_err(|_| ApiError::bad_parameter("id", "The report id must be an integer."))?
        .into();
    let record = visible_reports(&state, &caller)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Report {id} was not found.")))?;
    let report = wire(&record);
    let owner = report["reportParameters"]["organizationName"]
        .as_str()
        .unwrap_or_default();
    let generated = report["reportParameters"]["generationDate"]
        .as_str()
        .unwrap_or_default();
    let mut head = Vec::new();
    for field in [
        &id.to_string(),
        &record.month,
        owner,
        record.status.as_str(),
    ] {
        csv_field(&mut head, field);
        head.push(b',');
    }
    let mut tail = vec![b','];
    csv_field(&mut tail, generated);
    tail.extend_from_slice(b"\r\n");
    let frame = RowFrame { head, tail };
    let mut first = b"\xEF\xBB\xBF".to_vec();
    first.extend_from_slice(&csv_row(&CSV_HEADER));

    // Rows are rendered a chunk at a time as the body is read, so memory stays flat however
    // large the report.
    let stream = match state.store.report_line_chunks(id).await? {
        Some(chunks) => {
            let store = state.store.clone();
            let first = Bytes::from(first);
            let rows = futures::stream::iter(chunks.order).then(move |seq| {
                let store = store.clone();
                let batch = chunks.batch;
                async move {
                    let body = store
                        .report_line_chunk(id, batch, seq)
                        .await
                        .map_err(std::io::Error::other)?
                        .ok_or_else(|| {
                            std::io::Error::other(format!("report {id} is missing lines"))
                        })?;
                    Ok::<Vec<u8>, std::io::Error>(body)
                }
            });
            let frame = std::sync::Arc::new(frame);
            let rows = rows.map(move |body| {
                let body = body?;
                let mut out = Vec::with_capacity(body.len() + body.len() / 2 + 4096);
                for record in reporting::chunk_records(&body) {
                    let record = record.map_err(std::io::Error::other)?;
                    frame.write(&mut out, record);
                }
                Ok(Bytes::from(out))
            });
            futures::stream::once(async move { Ok(first) })
                .chain(rows)
                .boxed()
        }
        None => {
            // Reports written before lines were stored in chunks keep them as JSON.
            let text = state
                .store
                .report_lines(id)
                .await?
                .unwrap_or_else(|| "[]".into());
            let lines: Vec<ReportLine> = serde_json::from_str(&text).map_err(|e| {
                ApiError::internal(format!("report {id} has unreadable lines: {e}"))
            })?;
            drop(text);
            let mut out = first;
            let mut parts = Vec::new();
            let mut fields = Vec::new();
            for line in &lines {
                fields.clear();
                line.view().write_csv_fields(&mut fields);
                frame.write(&mut out, &fields);
                if out.len() >= CSV_BUFFER {
                    parts.push(Ok(Bytes::from(std::mem::take(&mut out))));
                }
            }
            parts.push(Ok::<Bytes, std::io::Error>(Bytes::from(out)));
            futures::stream::iter(parts).boxed()
        }
    };
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"license-report-{}-id{}.csv\"",
        record.month, id
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[utoipa::path(
    post, path = "/licensing/reports/finalization", operation_id = "FinalizeLicensingReports", tag = "Licensing",
    params(SelectParam),
    responses((status = 200, body = DataOf<LicenseReportFinalizationStatus>), (status = "default", body = ErrorResponse)),
)]
pub async fn finalize_licensing_reports(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<LicenseReportFinalizationStatus>,
) -> ApiResult<Response> {
    caller.require(REPORT_ROLES)?;
    let owner = owner_of(&state, &caller).await?;
    let finalized = reporting::finalize(&state.store, owner, state.clock.now())
        .await
        .map_err(ApiError::internal)?;
    let status = if !finalized.is_empty() {
        tracing::info!(%owner, reports = ?finalized, by = %caller.name, "license usage reports finalized");
        LicenseReportFinalizationStatus {
            report_approval_status: "Finalized".into(),
            message: format!("Finalized {} report(s): {:?}.", finalized.len(), finalized),
        }
    } else {
        let latest = state
            .store
            .reports()
            .await?
            .into_iter()
            .find(|r| r.owner_uid == owner);
        match latest {
            Some(r) if r.status == ReportStatus::Approved => LicenseReportFinalizationStatus {
                report_approval_status: "Approved".into(),
                message: format!("The report for {} is already approved.", r.month),
            },
            _ => LicenseReportFinalizationStatus {
                report_approval_status: "NotApprovable".into(),
                message: "There is no report waiting for approval.".into(),
            },
        }
    };
    select.respond(&status)
}

#[utoipa::path(
    get, path = "/licensing/reports/settings", operation_id = "GetLicensingReportsSettings", tag = "Licensing",
    params(SelectParam),
    responses((status = 200, body = DataOf<SingleLicenseReportSettings>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_licensing_reports_settings(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<SingleLicenseReportSettings>,
) -> ApiResult<Response> {
    caller.require(REPORT_ROLES)?;
    let owner = owner_of(&state, &caller).await?;
    let provider = owner_of_provider(&state).await?;
    let settings = SingleLicenseReportSettings {
        auto_approve: reporting::auto_approve(&state.store, owner, provider)
            .await
            .map_err(ApiError::internal)?,
    };
    select.respond(&settings)
}

async fn owner_of_provider(state: &AppState) -> ApiResult<Uuid> {
    Ok(state
        .store
        .provider()
        .await?
        .ok_or_else(|| ApiError::internal("the provider organization is missing"))?
        .uid)
}

#[utoipa::path(
    patch, path = "/licensing/reports/settings", operation_id = "PatchLicensingReportsSettings", tag = "Licensing",
    params(SelectParam),
    request_body = Vec<JsonPatch>,
    responses((status = 200, body = DataOf<SingleLicenseReportSettings>), (status = "default", body = ErrorResponse)),
)]
pub async fn patch_licensing_reports_settings(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<SingleLicenseReportSettings>,
    PatchBody(patch): PatchBody,
) -> ApiResult<Response> {
    caller.require(REPORT_ROLES)?;
    let owner = owner_of(&state, &caller).await?;
    let provider = owner_of_provider(&state).await?;
    let current = reporting::auto_approve(&state.store, owner, provider)
        .await
        .map_err(ApiError::internal)?;
    let wanted = apply_flag_patch(&patch, "autoApprove", &[], current)?;
    if owner != provider
        && !wanted
        && state
            .store
            .report_auto_approve(provider)
            .await?
            .unwrap_or(false)
    {
        let op = patch.last().cloned().unwrap_or(Value::Null);
        return Err(crate::licensing::patch::patch_failed(
            &op,
            "The provider approves reports automatically for every reseller; only the provider can turn it off.",
        ));
    }
    if wanted != current || state.store.report_auto_approve(owner).await?.is_none() {
        state.store.set_report_auto_approve(owner, wanted).await?;
    }
    let settings = SingleLicenseReportSettings {
        auto_approve: wanted,
    };
    select.respond(&settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says() {
        let row = csv_row(&["plain", "a,b", "say \"hi\"", "two\nlines", ""]);
        assert_eq!(
            &row[..],
            b"plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n"
        );
    }
}
