//! Usage samples from agents: `POST /api/agent/v1/servers/{serverUid}/usage`.
//!
//! A sample says, at one instant, how many workloads of each type each organization has on the
//! server: licensed (`used`), new this month (`new`) and tenant workloads on the tenant's own
//! rental license (`rental`). Samples are idempotent: resending one changes nothing, and the same
//! instant with other counts is refused. Reports use each month's largest counts; live usage uses
//! the latest sample.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tallyman_store::{StoreError, TargetKind, UsageSample};
use uuid::Uuid;

use crate::agent::AgentCaller;
use crate::error::{json_response, ApiError, ApiResult};
use crate::extract::{parse_uid, JsonBody};
use crate::AppState;
use tallyman_app::CONSOLE_TARGET;

/// Workload types a sample may carry (the report's `workloadType` values).
pub const WORKLOAD_TYPES: [&str; 28] = [
    "CC_Server_Backup",
    "CC_VM_Backup",
    "CC_VM_Replica",
    "CC_Workstation_Backup",
    "VAC_Server_Agent",
    "VAC_Workstation_Agent",
    "VB365_User",
    "VBR_Application_Plugins",
    "VBR_Cloud_Database",
    "VBR_Cloud_File_Share",
    "VBR_Cloud_VM",
    "VBR_NAS_Backup",
    "VBR_NAS_Server",
    "VBR_Server_Agent",
    "VBR_Tape_Backup",
    "VBR_Tape_Server",
    "VBR_VM",
    "VBR_Workstation_Agent",
    "VONE_Cloud_Database",
    "VONE_Cloud_File_Share",
    "VONE_Cloud_VM",
    "VONE_Nas_Backup",
    "VONE_Server_Agent",
    "VONE_Tape_Backup",
    "VONE_User",
    "VONE_VM",
    "VONE_Workstation_Agent",
    "Dynamic",
];

/// Largest count one workload line may carry.
pub const MAX_COUNT: i64 = 10_000_000;
/// Most workload lines in one sample.
pub const MAX_LINES: usize = 10_000;

/// A sample as sent: `{sampledAt?, workloads: [{organizationUid?, workloadType, platform?,
/// used?, new?, rental?}]}`. Read property by property so a bad value is named in the error.
pub struct UsageBody {
    /// When the counts were taken; defaults to now. At most 5 minutes in the future.
    pub sampled_at: Option<DateTime<Utc>>,
    pub workloads: Vec<UsageLine>,
}

pub struct UsageLine {
    /// Whose workloads these are; defaults to the server's own organization.
    pub organization_uid: Option<Uuid>,
    pub workload_type: String,
    /// Platform type id (`vSphere`, `HyperV`, …); defaults to `Any`.
    pub platform: Option<String>,
    pub used: i64,
    pub new: i64,
    pub rental: i64,
}

fn bad(property: &str, message: &str) -> ApiError {
    ApiError::bad_property(property, message)
}

/// A property that is absent or null reads as `None`.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn count(obj: &Map<String, Value>, name: &str, at: &str) -> ApiResult<i64> {
    match field(obj, name) {
        None => Ok(0),
        Some(v) => v
            .as_i64()
            .filter(|n| (0..=MAX_COUNT).contains(n))
            .ok_or_else(|| {
                bad(
                    at,
                    &format!("Counts must be whole numbers from 0 to {MAX_COUNT}."),
                )
            }),
    }
}

impl UsageBody {
    pub fn parse(body: &Value) -> ApiResult<Self> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::bad_request("The body must be a JSON object."))?;
        let sampled_at = match field(obj, "sampledAt") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(|| bad("sampledAt", "sampledAt must be an RFC 3339 date-time."))?,
            ),
        };
        let lines = field(obj, "workloads")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("workloads", "workloads must be an array."))?;
        if lines.len() > MAX_LINES {
            return Err(bad(
                "workloads",
                &format!("A sample may carry at most {MAX_LINES} lines."),
            ));
        }
        let mut workloads = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let at = |f: &str| format!("workloads[{i}].{f}");
            let line = line
                .as_object()
                .ok_or_else(|| bad(&format!("workloads[{i}]"), "Each line must be an object."))?;
            let organization_uid = match field(line, "organizationUid") {
                None => None,
                Some(v) => Some(
                    v.as_str()
                        .and_then(|s| Uuid::parse_str(s.trim()).ok())
                        .ok_or_else(|| {
                            bad(&at("organizationUid"), "organizationUid must be a UUID.")
                        })?,
                ),
            };
            let workload_type = field(line, "workloadType")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&at("workloadType"), "workloadType is required."))?
                .to_string();
            let platform = match field(line, "platform") {
                None => None,
                Some(v) => Some(
                    v.as_str()
                        .ok_or_else(|| bad(&at("platform"), "platform must be a string."))?
                        .to_string(),
                ),
            };
            workloads.push(UsageLine {
                organization_uid,
                workload_type,
                platform,
                used: count(line, "used", &at("used"))?,
                new: count(line, "new", &at("new"))?,
                rental: count(line, "rental", &at("rental"))?,
            });
        }
        Ok(UsageBody {
            sampled_at,
            workloads,
        })
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageAnswer {
    stored: u64,
    unchanged: u64,
    sampled_at: DateTime<Utc>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/servers/{serverUid}/usage", post(report_usage))
}

pub async fn report_usage(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(raw): Path<String>,
    JsonBody(raw_body): JsonBody<Value>,
) -> ApiResult<Response> {
    let uid = parse_uid("serverUid", &raw)?;
    let body = UsageBody::parse(&raw_body)?;
    // The console itself (the nil UUID) counts the backup agents it manages; only agents of the
    // provider may report for it.
    let console = uid == CONSOLE_TARGET;
    let (server_uid, server_kind, server_org) = if console {
        let provider = state
            .store
            .provider()
            .await?
            .ok_or_else(|| ApiError::internal("the provider organization is missing"))?;
        if agent.organization_uid != provider.uid {
            return Err(ApiError::not_found(format!("Server {uid} was not found.")));
        }
        (CONSOLE_TARGET, TargetKind::Console, provider.uid)
    } else {
        let server = state
            .store
            .server(uid)
            .await?
            .filter(|s| s.agent_uid == Some(agent.uid))
            .ok_or_else(|| ApiError::not_found(format!("Server {uid} was not found.")))?;
        (server.uid, server.kind, server.organization_uid)
    };
    let now = state.clock.now();
    let sampled_at = body.sampled_at.unwrap_or(now);
    if sampled_at > now + Duration::minutes(5) {
        return Err(ApiError::bad_property(
            "sampledAt",
            "sampledAt must not be in the future.",
        ));
    }
    if body.workloads.len() > MAX_LINES {
        return Err(ApiError::bad_property(
            "workloads",
            format!("A sample may carry at most {MAX_LINES} lines."),
        ));
    }

    // Which organizations this server may report for: its own, and for a Cloud Connect site the
    // tenants inside the agent's organization.
    let allowed: HashSet<Uuid> = if matches!(
        server_kind,
        TargetKind::CloudConnectSite | TargetKind::Console
    ) {
        tallyman_app::tenancy::subtree(&state.store.organizations().await?, agent.organization_uid)
    } else {
        HashSet::from([server_org])
    };

    let mut seen = HashSet::new();
    let mut samples = Vec::with_capacity(body.workloads.len());
    for (i, line) in body.workloads.iter().enumerate() {
        let at = |field: &str| format!("workloads[{i}].{field}");
        if !WORKLOAD_TYPES.contains(&line.workload_type.as_str()) {
            return Err(ApiError::bad_property(
                at("workloadType"),
                format!("Unknown workload type {:?}.", line.workload_type),
            ));
        }
        let organization = line.organization_uid.unwrap_or(server_org);
        if !allowed.contains(&organization) {
            return Err(ApiError::bad_property(
                at("organizationUid"),
                "This server cannot report usage for that organization.",
            ));
        }
        for (field, v) in [
            ("used", line.used),
            ("new", line.new),
            ("rental", line.rental),
        ] {
            if !(0..=MAX_COUNT).contains(&v) {
                return Err(ApiError::bad_property(
                    at(field),
                    format!("Counts must be from 0 to {MAX_COUNT}."),
                ));
            }
        }
        let platform = line
            .platform
            .clone()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "Any".into());
        if platform.chars().count() > 64 {
            return Err(ApiError::bad_property(
                at("platform"),
                "The platform must be at most 64 characters.",
            ));
        }
        if !seen.insert((organization, line.workload_type.clone(), platform.clone())) {
            return Err(ApiError::bad_property(
                at("workloadType"),
                "The same workload type, organization and platform appear twice.",
            ));
        }
        samples.push(UsageSample {
            server_uid,
            organization_uid: organization,
            workload_type: line.workload_type.clone(),
            platform,
            sampled_at,
            used: line.used,
            new: line.new,
            rental: line.rental,
        });
    }
    let stored = match state.store.insert_usage_samples(&samples).await {
        Ok(n) => n,
        Err(StoreError::Conflict(m)) => {
            return Err(
                ApiError::conflict(format!("{m}; a sample cannot be changed once stored."))
                    .with_parameter("sampledAt"),
            )
        }
        Err(e) => return Err(e.into()),
    };
    state.store.touch_agent(agent.uid, now).await?;
    Ok(json_response(
        StatusCode::OK,
        &UsageAnswer {
            stored,
            unchanged: samples.len() as u64 - stored,
            sampled_at,
        },
    ))
}
