//! The agent API, mounted at `/api/agent/v1`.
//!
//! An agent runs next to a licensed product (a Cloud Connect site, a Backup & Replication, Veeam
//! ONE or Microsoft 365 backup server). It enrolls once with an enrollment token an administrator
//! created for its organization and from then on authenticates with its own bearer token, which
//! the store keeps only as a SHA-256 digest. With it the agent registers the servers it looks
//! after, reports what license state and usage each product really has (heartbeats), downloads
//! whatever an administrator installed for the server through the VSPC API and confirms that it
//! applied it.
//!
//! This API is Tallyman's own, not part of the VSPC contract: bodies are bare JSON objects (no
//! `data` envelope), but errors use the same `ErrorResponse` as the rest of the server. An agent
//! sees only the servers it registered itself; anything else is "not found".
//!
//! Request bodies are validated property by property, so a bad value is answered with a 400 that
//! names it in `propertyName` and nothing is stored. Unknown properties are ignored, so newer
//! agents can send more than this server understands.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use serde_json::{Map, Value};
use tallyman_store::{
    Agent, LicenseEvent, ManagedServer, OrganizationType, StoreError, TargetKind,
};
use uuid::Uuid;

use crate::auth::{new_token, token_digest};
use crate::error::{json_response, ApiError, ApiResult};
use crate::extract::{parse_uid, JsonBody};
use crate::AppState;
use tallyman_app::{ServerReport, SlotDocument, Target};

/// Longest agent or server name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest enrollment token accepted, in characters (real ones are 43).
pub const MAX_ENROLLMENT_TOKEN_CHARS: usize = 512;
/// Most license ids one heartbeat may report (a merged Backup & Replication license has two).
pub const MAX_LICENSE_IDS: usize = 16;
/// Upper bound for `usedUnits` (instances or points).
pub const MAX_USED_UNITS: f64 = 1e9;
/// Upper bound for `usedSockets`.
pub const MAX_USED_SOCKETS: f64 = 1e6;
/// Upper bound for `usedCapacity` (TB).
pub const MAX_USED_CAPACITY: f64 = 1e9;
/// Upper bound for `protectedUsers`.
pub const MAX_PROTECTED_USERS: u64 = 100_000_000;
/// Longest failure message an acknowledgement may carry, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// The license states a heartbeat may report, as stored in [`ServerReport::license_state`].
pub const LICENSE_STATES: [&str; 4] = ["licensed", "community", "unlicensed", "invalid"];

/// Event action written when an agent acknowledges a delivery.
pub const ACK_ACTION: &str = "agent-ack";

/// The agent API's routes, relative to `/api/agent/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/enroll", post(enroll))
        .route("/servers", post(register_server))
        .route("/servers/{serverUid}/heartbeat", post(heartbeat))
        .route("/servers/{serverUid}/license", get(get_license))
        .route("/servers/{serverUid}/license/ack", post(ack_license))
}

// --- authentication -----------------------------------------------------------------------

/// The agent behind a request, from `Authorization: Bearer <agentToken>`.
pub struct AgentCaller(pub Agent);

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "An agent token is required: send Authorization: Bearer <agentToken>.",
            )
        })?;
        let agent = state
            .store
            .agent_by_token(&token_digest(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("The agent token is not valid."))?;
        tracing::Span::current().record("user", format!("agent:{}", agent.uid).as_str());
        Ok(AgentCaller(agent))
    }
}

/// The token of an `Authorization: Bearer …` header; the scheme is matched ignoring case.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// How an agent appears as the actor of license events.
fn actor(agent: &Agent) -> String {
    format!("agent:{}", agent.name)
}

// --- request bodies -------------------------------------------------------------------------

/// A JSON object body, read property by property so every refusal names the property.
struct Fields(Map<String, Value>);

impl Fields {
    fn of(body: Value) -> ApiResult<Self> {
        match body {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            )),
        }
    }

    /// A property that is absent or `null` counts as missing.
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> ApiResult<Option<&str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::bad_property(
                name,
                format!("{name} must be a string."),
            )),
        }
    }

    fn required_string(&self, name: &str) -> ApiResult<&str> {
        self.string(name)?
            .ok_or_else(|| ApiError::bad_property(name, format!("{name} is required.")))
    }

    /// A display name: trimmed, not empty, at most [`MAX_NAME_CHARS`], no control characters.
    fn name(&self, name: &str) -> ApiResult<String> {
        let value = self.required_string(name)?.trim();
        if value.is_empty() || value.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::bad_property(
                name,
                format!("{name} must be 1 to {MAX_NAME_CHARS} characters."),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ApiError::bad_property(
                name,
                format!("{name} must not contain control characters."),
            ));
        }
        Ok(value.to_string())
    }

    /// A finite, non-negative number no larger than `max`; `whole` also refuses fractions.
    fn amount(&self, name: &str, max: f64, whole: bool) -> ApiResult<Option<f64>> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let n = value
            .as_f64()
            .filter(|n| n.is_finite())
            .ok_or_else(|| ApiError::bad_property(name, format!("{name} must be a number.")))?;
        if n < 0.0 {
            return Err(ApiError::bad_property(
                name,
                format!("{name} must not be negative."),
            ));
        }
        if n > max {
            return Err(ApiError::bad_property(
                name,
                format!("{name} must not be larger than {max}."),
            ));
        }
        if whole && n.fract() != 0.0 {
            return Err(ApiError::bad_property(
                name,
                format!("{name} must be a whole number."),
            ));
        }
        Ok(Some(n))
    }
}

// --- shared lookups ---------------------------------------------------------------------------

/// A server registered by this agent. Servers of other agents, of no agent and unknown uids all
/// look the same: not found.
async fn owned_server(state: &AppState, agent: &Agent, raw: &str) -> ApiResult<ManagedServer> {
    let uid = parse_uid("serverUid", raw)?;
    state
        .store
        .server(uid)
        .await?
        .filter(|s| s.agent_uid == Some(agent.uid))
        .ok_or_else(|| ApiError::not_found(format!("Server {uid} was not found.")))
}

/// The revision agents see: the license slot's revision, 0 while nothing was ever installed.
fn revision_of(target: &Target) -> i64 {
    target.revision.unwrap_or(0)
}

// --- POST /enroll ---------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub agent_uid: Uuid,
    pub agent_token: String,
    pub organization_uid: Uuid,
}

/// Trades an enrollment token for an agent identity and its bearer token.
pub async fn enroll(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let fields = Fields::of(body)?;
    let presented = fields.required_string("enrollmentToken")?.trim();
    if presented.is_empty() || presented.chars().count() > MAX_ENROLLMENT_TOKEN_CHARS {
        return Err(ApiError::bad_property(
            "enrollmentToken",
            "enrollmentToken must be the token an administrator created with \
             `tallyman org enroll-token`.",
        ));
    }
    let name = fields.name("name")?;
    let now = state.clock.now();
    let token = state
        .store
        .enrollment_token(&token_digest(presented))
        .await?
        .ok_or_else(|| ApiError::unauthorized("The enrollment token is not valid."))?;
    if token.expires_at <= now {
        return Err(ApiError::unauthorized(
            "The enrollment token has expired; ask an administrator for a new one.",
        ));
    }
    let agent_token = new_token();
    let agent = Agent {
        uid: Uuid::new_v4(),
        organization_uid: token.organization_uid,
        name,
        token_digest: token_digest(&agent_token),
        created_at: now,
        last_seen_at: Some(now),
    };
    state.store.insert_agent(&agent).await?;
    tracing::info!(
        agent = %agent.uid,
        organization = %agent.organization_uid,
        name = %agent.name,
        "agent enrolled"
    );
    Ok(json_response(
        StatusCode::CREATED,
        &Enrolled {
            agent_uid: agent.uid,
            agent_token,
            organization_uid: agent.organization_uid,
        },
    ))
}

// --- POST /servers --------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredServer {
    pub server_uid: Uuid,
    pub kind: &'static str,
    pub name: String,
    pub organization_uid: Uuid,
}

impl RegisteredServer {
    fn of(server: &ManagedServer) -> Self {
        Self {
            server_uid: server.uid,
            kind: server.kind.as_str(),
            name: server.name.clone(),
            organization_uid: server.organization_uid,
        }
    }
}

/// What an existing server with the requested uid means for this registration: the same
/// registration again (200), or someone else's server (409).
fn reregistration(
    agent: &Agent,
    existing: &ManagedServer,
    kind: TargetKind,
) -> ApiResult<Response> {
    if existing.agent_uid != Some(agent.uid) {
        return Err(ApiError::conflict(format!(
            "Server {} is already registered by another agent.",
            existing.uid
        )));
    }
    if existing.kind != kind {
        return Err(ApiError::conflict(format!(
            "Server {} is already registered as a {}.",
            existing.uid,
            existing.kind.as_str()
        )));
    }
    Ok(json_response(
        StatusCode::OK,
        &RegisteredServer::of(existing),
    ))
}

/// Registers a server for the agent's organization; repeating a registration is harmless.
pub async fn register_server(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let fields = Fields::of(body)?;
    let kind = fields.required_string("kind")?;
    let kind = TargetKind::parse(kind.trim())
        .filter(|k| *k != TargetKind::Console)
        .ok_or_else(|| {
            ApiError::bad_property(
                "kind",
                "kind must be CloudConnectSite, BackupServer, VOneServer or Vb365Server.",
            )
        })?;
    let name = fields.name("name")?;
    let requested = match fields.string("serverUid")? {
        None => None,
        Some(raw) => {
            let uid = Uuid::parse_str(raw.trim().trim_start_matches('{').trim_end_matches('}'))
                .map_err(|_| ApiError::bad_property("serverUid", "serverUid must be a UUID."))?;
            if uid.is_nil() {
                // The nil uid names the console's own license.
                return Err(ApiError::bad_property(
                    "serverUid",
                    "serverUid must not be the nil UUID.",
                ));
            }
            Some(uid)
        }
    };

    if kind == TargetKind::CloudConnectSite {
        let org = state.store.organization(agent.organization_uid).await?;
        if org.map(|o| o.kind) != Some(OrganizationType::Provider) {
            return Err(ApiError::forbidden(
                "Only agents of the provider organization may register Cloud Connect sites.",
            ));
        }
    }

    if let Some(uid) = requested {
        if let Some(existing) = state.store.server(uid).await? {
            return reregistration(&agent, &existing, kind);
        }
    }

    let now = state.clock.now();
    let server = ManagedServer {
        uid: requested.unwrap_or_else(Uuid::new_v4),
        kind,
        name,
        organization_uid: agent.organization_uid,
        agent_uid: Some(agent.uid),
        created_at: now,
        last_seen_at: None,
        reported: Value::Null,
    };
    match state.store.insert_server(&server).await {
        Ok(()) => {}
        // Another request registered the same uid in the meantime: judge it like a repeat.
        Err(StoreError::Conflict(_)) => {
            return match state.store.server(server.uid).await? {
                Some(existing) => reregistration(&agent, &existing, kind),
                None => Err(ApiError::internal(format!(
                    "server {} conflicted on insert but does not exist",
                    server.uid
                ))),
            };
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(
        server = %server.uid,
        kind = kind.as_str(),
        agent = %agent.uid,
        "server registered by its agent"
    );
    Ok(json_response(
        StatusCode::CREATED,
        &RegisteredServer::of(&server),
    ))
}

// --- POST /servers/{serverUid}/heartbeat ----------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAnswer {
    /// An administrator changed the server's license and the agent has not confirmed it yet.
    pub pending_license: bool,
    pub revision: i64,
}

/// Reads a heartbeat body into the report the licensing resources evaluate.
fn parse_report(fields: &Fields) -> ApiResult<ServerReport> {
    let state = fields
        .required_string("licenseState")?
        .trim()
        .to_ascii_lowercase();
    if !LICENSE_STATES.contains(&state.as_str()) {
        return Err(ApiError::bad_property(
            "licenseState",
            "licenseState must be licensed, community, unlicensed or invalid.",
        ));
    }
    let ids = match fields.get("licenseIds") {
        None => {
            return Err(ApiError::bad_property(
                "licenseIds",
                "licenseIds is required (an empty array when no license is installed).",
            ))
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::bad_property(
                "licenseIds",
                "licenseIds must be an array of UUIDs.",
            ))
        }
    };
    if ids.len() > MAX_LICENSE_IDS {
        return Err(ApiError::bad_property(
            "licenseIds",
            format!("licenseIds may hold at most {MAX_LICENSE_IDS} ids."),
        ));
    }
    let mut license_ids: Vec<Uuid> = Vec::with_capacity(ids.len());
    for item in ids {
        let id = item
            .as_str()
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .ok_or_else(|| {
                ApiError::bad_property("licenseIds", "licenseIds must be an array of UUIDs.")
            })?;
        if !license_ids.contains(&id) {
            license_ids.push(id);
        }
    }
    let protected_users = fields
        .amount("protectedUsers", MAX_PROTECTED_USERS as f64, true)?
        // Whole and within bounds, so the conversion is exact.
        .map(|n| n as u32);
    let short_text = |name: &str, max: usize| -> ApiResult<Option<String>> {
        match fields.string(name)?.map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
                Err(ApiError::bad_property(
                    name,
                    format!("{name} must be at most {max} printable characters."),
                ))
            }
            Some(v) => Ok(Some(v.to_string())),
        }
    };
    let managed_by_enterprise_manager = match fields.get("managedByEnterpriseManager") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::bad_property(
                "managedByEnterpriseManager",
                "managedByEnterpriseManager must be true or false.",
            ))
        }
    };
    Ok(ServerReport {
        license_state: Some(state),
        license_ids,
        used_units: fields.amount("usedUnits", MAX_USED_UNITS, false)?,
        used_sockets: fields.amount("usedSockets", MAX_USED_SOCKETS, true)?,
        used_capacity: fields.amount("usedCapacity", MAX_USED_CAPACITY, false)?,
        protected_users,
        installation_id: short_text("installationId", 128)?,
        managed_by_enterprise_manager,
        product_version: short_text("productVersion", 64)?,
    })
}

/// Stores what the product reports about its license and usage, and tells the agent whether a
/// license is waiting for it.
pub async fn heartbeat(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let server = owned_server(&state, &agent, &raw).await?;
    let report = parse_report(&Fields::of(body)?)?;
    let now = state.clock.now();
    let reported = serde_json::to_value(&report).map_err(ApiError::internal)?;
    state
        .store
        .record_server_report(server.uid, &reported, now)
        .await?;
    state.store.touch_agent(agent.uid, now).await?;
    let target = state.target_of(server).await?;
    Ok(json_response(
        StatusCode::OK,
        &HeartbeatAnswer {
            pending_license: target.doc.pending_delivery,
            revision: revision_of(&target),
        },
    ))
}

// --- GET /servers/{serverUid}/license -------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredFile {
    pub license_id: Uuid,
    /// The license file exactly as it was installed (armoured text).
    pub license: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub revision: i64,
    pub pending: bool,
    pub files: Vec<DeliveredFile>,
    /// The product should run as Community Edition (its license was deleted).
    pub community: bool,
}

/// What an administrator installed on the server, for the agent to apply.
pub async fn get_license(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let server = owned_server(&state, &agent, &raw).await?;
    let target = state.target_of(server).await?;
    let delivery = Delivery {
        revision: revision_of(&target),
        pending: target.doc.pending_delivery,
        files: target
            .doc
            .files
            .iter()
            .map(|f| DeliveredFile {
                license_id: f.license_id,
                license: f.armoured.clone(),
            })
            .collect(),
        community: target.doc.community,
    };
    Ok(json_response(StatusCode::OK, &delivery))
}

// --- POST /servers/{serverUid}/license/ack --------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckStatus {
    Applied,
    Failed,
}

impl AckStatus {
    fn as_str(self) -> &'static str {
        match self {
            AckStatus::Applied => "applied",
            AckStatus::Failed => "failed",
        }
    }
}

struct Ack {
    revision: i64,
    status: AckStatus,
    message: Option<String>,
}

fn parse_ack(fields: &Fields) -> ApiResult<Ack> {
    let revision = match fields.get("revision") {
        None => return Err(ApiError::bad_property("revision", "revision is required.")),
        Some(v) => v.as_i64().filter(|r| *r >= 0).ok_or_else(|| {
            ApiError::bad_property("revision", "revision must be a non-negative integer.")
        })?,
    };
    let status = match fields
        .required_string("status")?
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "applied" => AckStatus::Applied,
        "failed" => AckStatus::Failed,
        _ => {
            return Err(ApiError::bad_property(
                "status",
                "status must be applied or failed.",
            ))
        }
    };
    let message = match fields.string("message")? {
        Some(m) if m.chars().count() > MAX_MESSAGE_CHARS => {
            return Err(ApiError::bad_property(
                "message",
                format!("message must be at most {MAX_MESSAGE_CHARS} characters."),
            ))
        }
        Some(m) => Some(m.trim().to_string()).filter(|m| !m.is_empty()),
        None => None,
    };
    Ok(Ack {
        revision,
        status,
        message,
    })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AckAnswer {
    /// The revision after the acknowledgement (a recorded failure advances it).
    pub revision: i64,
    pub pending: bool,
}

fn ack_answer(target: &Target) -> Response {
    json_response(
        StatusCode::OK,
        &AckAnswer {
            revision: revision_of(target),
            pending: target.doc.pending_delivery,
        },
    )
}

/// Whether `event` is this agent's acknowledgement of `ack`: a retry whose first attempt went
/// through but whose answer never reached the agent.
fn is_same_ack(event: &LicenseEvent, agent: &Agent, ack: &Ack) -> bool {
    event.action == ACK_ACTION
        && event.detail.get("revision").and_then(Value::as_i64) == Some(ack.revision)
        && event.detail.get("status").and_then(Value::as_str) == Some(ack.status.as_str())
        && event.detail.get("agentUid").and_then(Value::as_str)
            == Some(agent.uid.to_string().as_str())
}

/// The agent's answer to a delivery: `applied` clears the pending flag, `failed` is recorded and
/// leaves the license pending.
pub async fn ack_license(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let server = owned_server(&state, &agent, &raw).await?;
    let ack = parse_ack(&Fields::of(body)?)?;
    let target = state.target_of(server).await?;
    let current = revision_of(&target);

    if ack.revision != current {
        // A retried acknowledgement that already went through moved the revision on by one;
        // answer it as the first attempt was answered.
        if ack.revision.checked_add(1) == Some(current) {
            let events = state.store.license_events(target.uid).await?;
            if events.last().is_some_and(|e| is_same_ack(e, &agent, &ack)) {
                return Ok(ack_answer(&target));
            }
        }
        return Err(ApiError::conflict(format!(
            "Revision {} is not the current revision of this server's license ({current}); \
             fetch the license again and apply that.",
            ack.revision
        )));
    }

    if target.revision.is_none() {
        // Revision 0: nothing was ever installed, so there is nothing to confirm or record.
        if ack.status == AckStatus::Failed {
            tracing::warn!(server = %target.uid, agent = %agent.uid, message = ?ack.message,
                "agent reported a failure for a server with no installed license");
        }
        return Ok(ack_answer(&target));
    }
    if ack.status == AckStatus::Applied && !target.doc.pending_delivery {
        // Already confirmed: nothing changes.
        return Ok(ack_answer(&target));
    }

    let mut doc = SlotDocument::clone(&target.doc);
    if ack.status == AckStatus::Applied {
        doc.pending_delivery = false;
    }
    let mut detail = serde_json::json!({
        "revision": ack.revision,
        "status": ack.status.as_str(),
        "agentUid": agent.uid,
        "licenseIds": doc.files.iter().map(|f| f.license_id).collect::<Vec<_>>(),
    });
    if let (Some(message), Some(map)) = (&ack.message, detail.as_object_mut()) {
        map.insert("message".into(), Value::String(message.clone()));
    }
    let fresh = state
        .save(&target, doc, &actor(&agent), ACK_ACTION, detail)
        .await?;
    match ack.status {
        AckStatus::Applied => tracing::info!(
            server = %target.uid, agent = %agent.uid, revision = ack.revision,
            "agent applied the license"
        ),
        AckStatus::Failed => tracing::warn!(
            server = %target.uid, agent = %agent.uid, revision = ack.revision,
            message = ?ack.message, "agent could not apply the license"
        ),
    }
    Ok(ack_answer(&fresh))
}
