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
use serde::{Deserialize, Serialize};
use tallyman_store::{StoreError, TargetKind, UsageSample};
use uuid::Uuid;

use crate::agent::AgentCaller;
use crate::error::{json_response, ApiError, ApiResult};
use crate::extract::{parse_uid, JsonBody};
use crate::AppState;

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageBody {
    /// When the counts were taken; defaults to now. At most 5 minutes in the future.
    pub sampled_at: Option<DateTime<Utc>>,
    pub workloads: Vec<UsageLine>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageLine {
    /// Whose workloads these are; defaults to the server's own organization.
    pub organization_uid: Option<Uuid>,
    pub workload_type: String,
    /// Platform type id (`vSphere`, `HyperV`, …); defaults to `Any`.
    pub platform: Option<String>,
    #[serde(default)]
    pub used: i64,
    #[serde(default)]
    pub new: i64,
    #[serde(default)]
    pub rental: i64,
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
    JsonBody(body): JsonBody<UsageBody>,
) -> ApiResult<Response> {
    let uid = parse_uid("serverUid", &raw)?;
    let server = state
        .store
        .server(uid)
        .await?
        .filter(|s| s.agent_uid == Some(agent.uid))
        .ok_or_else(|| ApiError::not_found(format!("Server {uid} was not found.")))?;
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
    let allowed: HashSet<Uuid> = if server.kind == TargetKind::CloudConnectSite {
        let orgs = state.store.organizations().await?;
        let root = agent.organization_uid;
        let mut set = HashSet::from([root]);
        loop {
            let before = set.len();
            for o in &orgs {
                if o.parent_uid.is_some_and(|p| set.contains(&p)) {
                    set.insert(o.uid);
                }
            }
            if set.len() == before {
                break;
            }
        }
        set
    } else {
        HashSet::from([server.organization_uid])
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
        let organization = line.organization_uid.unwrap_or(server.organization_uid);
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
            server_uid: server.uid,
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
