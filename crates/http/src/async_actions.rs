//! Async actions and `X-Request-id` idempotency.
//!
//! Every async-capable operation runs behind [`track`]: the operation executes in its own task;
//! if it finishes within the budget its answer goes straight back, otherwise the caller gets
//! `202 Accepted` with a `Location` of `/api/v3/asyncActions/{id}` and the task carries on,
//! storing its answer in the database when done. A request that carries an `X-Request-id` is
//! recorded under (user, id) from the start, which makes repeats within the retention window
//! replays of the first answer rather than second executions. Records live in the database, so
//! this holds across restarts and across nodes.
//!
//! The seven `/asyncActions` endpoints read and manage those records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tallyman_store::{ActionRecord, ActionStatus, BeginAction, StoredResponse};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{json_response, ApiError, ApiResult, ErrorResponse};
use crate::extract::{parse_uid, JsonBody};
use crate::query::Resource;
use crate::select::{Select, SelectParam};
use crate::wire::{Collection, EmptyResponse, Single};
use crate::AppState;

/// Longest request body kept on an action record (the contract's limit).
const MAX_RECORDED_BODY: usize = 2_000_000;
/// Largest answer of a read (GET/HEAD) kept for replay. Reads are safe to run again, so a
/// larger answer is not stored: its record keeps the status only and a repeat of the request
/// runs the read again. Writes keep their whole answer, which is what makes a retried write
/// safe.
const MAX_REPLAYED_READ: usize = 64 * 1024;
/// A running action is forgotten after this long even if nobody finished it (node crash).
fn max_running_time() -> Duration {
    Duration::hours(24)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AsyncActionStatus {
    Running,
    Succeed,
    Canceled,
    Failed,
}

impl From<ActionStatus> for AsyncActionStatus {
    fn from(s: ActionStatus) -> Self {
        match s {
            ActionStatus::Running => Self::Running,
            ActionStatus::Succeed => Self::Succeed,
            ActionStatus::Canceled => Self::Canceled,
            ActionStatus::Failed => Self::Failed,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AsyncActionInfo {
    pub id: Uuid,
    pub initiator_uid: Uuid,
    pub action_name: String,
    pub status: AsyncActionStatus,
    pub request_body: Option<String>,
    #[schema(value_type = BTreeMap<String, Vec<String>>)]
    pub query_parameters: Value,
}

impl From<&ActionRecord> for AsyncActionInfo {
    fn from(r: &ActionRecord) -> Self {
        Self {
            id: r.id,
            initiator_uid: r.user_uid,
            action_name: r.action_name.clone(),
            status: r.status.into(),
            request_body: r.request_body.clone(),
            query_parameters: r.query_parameters.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AsyncActionsConfig {
    pub result_retention_time: i32,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AsyncActionRequestData {
    pub request_body: Option<String>,
    pub query_parameters: Option<BTreeMap<String, Vec<String>>>,
}

impl Resource for AsyncActionInfo {
    fn schema() -> &'static tallyman_query::Schema {
        use tallyman_query::FieldType::*;
        static SCHEMA: std::sync::OnceLock<tallyman_query::Schema> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| {
            tallyman_query::Schema::new(&[
                ("id", Uuid),
                ("initiatorUid", Uuid),
                ("actionName", String),
                ("status", Enum),
                ("requestBody", String),
                ("queryParameters", Object),
            ])
        })
    }
}

impl Resource for AsyncActionsConfig {
    fn schema() -> &'static tallyman_query::Schema {
        static SCHEMA: std::sync::OnceLock<tallyman_query::Schema> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| {
            tallyman_query::Schema::new(&[(
                "resultRetentionTime",
                tallyman_query::FieldType::Integer,
            )])
        })
    }
}

/// The `X-Request-id` header, if any; it must be a UUID.
pub fn request_id(headers: &HeaderMap) -> ApiResult<Option<Uuid>> {
    match headers.get("x-request-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_parameter("X-Request-id", "The X-Request-id header must be a UUID.")
            }),
    }
}

/// Query parameters as `AsyncActionInfo.queryParameters` shows them: name → values.
fn query_map(query: Option<&str>) -> Value {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        map.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    serde_json::to_value(map).unwrap_or(Value::Object(Default::default()))
}

/// A multipart body with its boundary replaced by a fixed marker: clients pick a new random
/// boundary on every retry, which must not make the retry a "different request".
fn without_multipart_boundary<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
) -> std::borrow::Cow<'a, [u8]> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| ct.to_ascii_lowercase().starts_with("multipart/"))
        .and_then(|ct| {
            ct.split(';').map(str::trim).find_map(|p| {
                p.strip_prefix("boundary=")
                    .or_else(|| p.strip_prefix("BOUNDARY="))
            })
        })
        .map(|b| b.trim_matches('"').as_bytes().to_vec());
    match boundary {
        Some(b) if !b.is_empty() => {
            let mut out = Vec::with_capacity(body.len());
            let mut i = 0;
            while i < body.len() {
                if body[i..].starts_with(&b) {
                    out.extend_from_slice(b"<boundary>");
                    i += b.len();
                } else {
                    out.push(body[i]);
                    i += 1;
                }
            }
            std::borrow::Cow::Owned(out)
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}

/// What makes two requests "the same request" for idempotency.
fn fingerprint(method: &Method, path: &str, query: &Value, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(query.to_string().as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The absolute URL clients poll, built from the configured public URL or the request's host.
fn location(state: &AppState, headers: &HeaderMap, id: Uuid) -> String {
    let base = match &state.config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            format!("{scheme}://{host}")
        }
    };
    format!("{base}/api/v3/asyncActions/{id}")
}

fn accepted(state: &AppState, headers: &HeaderMap, record: &ActionRecord) -> Response {
    let mut response = json_response(
        StatusCode::ACCEPTED,
        &Single {
            data: AsyncActionInfo::from(record),
        },
    );
    if let Ok(v) = HeaderValue::from_str(&location(state, headers, record.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn stored_to_response(stored: &StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body.clone()).into_response();
    if let Some(ct) = stored
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
}

fn canceled_error() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        crate::error::ErrorType::Logical,
        1050,
        "The action was cancelled by a user.",
    )
}

/// Collects a response into a storable form.
async fn buffer(response: Response) -> StoredResponse {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match axum::body::to_bytes(response.into_body(), usize::MAX).await {
        Ok(body) => StoredResponse {
            status,
            content_type,
            body: body.to_vec(),
        },
        Err(e) => {
            to_stored(ApiError::internal(format!(
                "cannot read response body: {e}"
            )))
            .await
        }
    }
}

async fn to_stored(e: ApiError) -> StoredResponse {
    Box::pin(buffer(e.into_response())).await
}

fn outcome(stored: &StoredResponse) -> ActionStatus {
    if stored.status < 400 {
        ActionStatus::Succeed
    } else {
        ActionStatus::Failed
    }
}

fn retention(state: &AppState, status: ActionStatus) -> Duration {
    match status {
        ActionStatus::Succeed => state.config.result_retention,
        _ => state.config.failure_retention,
    }
}

/// Records the outcome of an action; `keep` says whether its answer is stored for replay.
async fn finish(state: &AppState, user: Uuid, id: Uuid, stored: &StoredResponse, keep: bool) {
    let status = outcome(stored);
    let now = state.clock.now();
    if let Err(e) = state
        .store
        .finish_action(
            user,
            id,
            status,
            keep.then_some(stored),
            now,
            now + retention(state, status),
        )
        .await
    {
        tracing::error!(%id, error = %e, "cannot store the result of an action");
    }
}

/// The operation a [`track`] layer wraps: its `operationId`, recorded as the action name, and
/// the application state when the layer was built with one (otherwise the state the router
/// put in the request's extensions).
#[derive(Clone)]
pub struct TrackedOperation {
    pub state: Option<AppState>,
    pub operation_id: Arc<str>,
}

/// Per-route middleware making an operation async-capable and idempotent.
pub async fn track(
    State(operation): State<TrackedOperation>,
    request: Request,
    next: Next,
) -> Response {
    let state = operation
        .state
        .or_else(|| request.extensions().get::<AppState>().cloned());
    let Some(state) = state else {
        return ApiError::internal("the router did not provide the application state")
            .into_response();
    };
    match track_inner(state, &operation.operation_id, request, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn track_inner(
    state: AppState,
    action_name: &str,
    request: Request,
    next: Next,
) -> ApiResult<Response> {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("Authorization is required."))?;
    let request_id = request_id(request.headers())?;
    let (parts, body) = request.into_parts();
    let limit = state.config.body_limit;
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| ApiError::unreadable_body(&e, limit))?;
    // Bodies on GET and DELETE are ignored (some scripts send leftovers there).
    let meaningful_body: &[u8] = if matches!(parts.method, Method::GET | Method::DELETE) {
        &[]
    } else {
        &bytes
    };
    let query = query_map(parts.uri.query());
    let normalized = without_multipart_boundary(&parts.headers, meaningful_body);
    let fingerprint = fingerprint(&parts.method, parts.uri.path(), &query, &normalized);
    let now = state.clock.now();
    let record = ActionRecord {
        id: request_id.unwrap_or_else(Uuid::new_v4),
        user_uid: caller.user_uid,
        action_name: action_name.to_string(),
        fingerprint,
        status: ActionStatus::Running,
        request_body: (!meaningful_body.is_empty())
            .then(|| {
                let cut = &meaningful_body[..meaningful_body.len().min(MAX_RECORDED_BODY)];
                String::from_utf8(cut.to_vec()).ok()
            })
            .flatten(),
        query_parameters: query,
        response: None,
        created_at: now,
        finished_at: None,
        expires_at: now + max_running_time(),
    };

    let is_read = matches!(parts.method, Method::GET | Method::HEAD);
    // Whether this request's record was created here (and is ours to finish).
    let mut recording = request_id.is_some();
    if request_id.is_some() {
        if let BeginAction::Exists(existing) = state.store.begin_action(&record, now).await? {
            if existing.fingerprint != record.fingerprint {
                return Err(ApiError::conflict(
                    "This X-Request-id was already used for a different request.",
                )
                .with_parameter("X-Request-id"));
            }
            let unstored_read = is_read
                && existing.response.is_none()
                && matches!(
                    existing.status,
                    ActionStatus::Succeed | ActionStatus::Failed
                );
            if !unstored_read {
                return Ok(replay(&state, &parts.headers, &existing));
            }
            // A read whose answer was too large to keep: run it again.
            recording = false;
        }
    }

    let headers = parts.headers.clone();
    let forward = Request::from_parts(parts, Body::from(bytes));
    let mut task = tokio::spawn(async move { next.run(forward).await });
    if request_id.is_some() && !recording {
        // A repeated read run again: its record is already finished, so no 202 here.
        return task
            .await
            .map_err(|e| ApiError::internal(format!("operation task failed: {e}")));
    }

    if !state.config.force_async {
        let budget = state
            .config
            .async_budget
            .to_std()
            .unwrap_or(StdDuration::from_secs(30));
        if let Ok(joined) = tokio::time::timeout(budget, &mut task).await {
            let response = match joined {
                Ok(response) => response,
                Err(e) => ApiError::internal(format!("operation task failed: {e}")).into_response(),
            };
            if !recording {
                // Nothing to record: the answer goes out as produced, streaming bodies included.
                return Ok(response);
            }
            // Recorded for replay; the caller still gets every header of the original answer.
            let (head, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .map_err(|e| ApiError::internal(format!("cannot read response body: {e}")))?;
            let stored = StoredResponse {
                status: head.status.as_u16(),
                content_type: head
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                body: body.to_vec(),
            };
            // A large read keeps its record (the id is taken, its status readable) but not
            // its answer.
            let keep = !(is_read && stored.body.len() > MAX_REPLAYED_READ);
            finish(&state, record.user_uid, record.id, &stored, keep).await;
            return Ok(Response::from_parts(head, Body::from(body)));
        }
    }

    // Still running: hand the caller an action to poll.
    if request_id.is_none() {
        state.store.begin_action(&record, now).await?;
    }
    let key = (record.user_uid, record.id);
    state
        .running
        .lock()
        .map_err(ApiError::internal)?
        .insert(key, task.abort_handle());
    let finisher_state = state.clone();
    tokio::spawn(async move {
        let stored = match task.await {
            Ok(response) => Some(buffer(response).await),
            Err(e) if e.is_cancelled() => None,
            Err(e) => {
                Some(to_stored(ApiError::internal(format!("operation task failed: {e}"))).await)
            }
        };
        if let Some(stored) = stored {
            finish(&finisher_state, key.0, key.1, &stored, true).await;
        }
        if let Ok(mut running) = finisher_state.running.lock() {
            running.remove(&key);
        }
    });
    Ok(accepted(&state, &headers, &record))
}

/// The answer to a repeated `X-Request-id`: the first request's answer, or 202 while it runs.
fn replay(state: &AppState, headers: &HeaderMap, existing: &ActionRecord) -> Response {
    match (existing.status, &existing.response) {
        (ActionStatus::Running, _) => accepted(state, headers, existing),
        (ActionStatus::Canceled, _) => canceled_error().into_response(),
        (_, Some(stored)) => stored_to_response(stored),
        (_, None) => ApiError::not_possible(
            "The result of this request was discarded; send it again with a new X-Request-id.",
        )
        .into_response(),
    }
}

async fn live_action(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<ActionRecord> {
    state
        .store
        .action(caller.user_uid, id, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Async action {id} was not found.")))
}

/// The `errors` of a failed action's stored answer, for `GET /asyncActions/{id}`.
fn stored_errors(record: &ActionRecord) -> Option<Value> {
    let stored = record.response.as_ref()?;
    if record.status != ActionStatus::Failed {
        return None;
    }
    serde_json::from_slice::<Value>(&stored.body)
        .ok()
        .and_then(|v| v.get("errors").cloned())
        .filter(Value::is_array)
}

/// An operation that may become an async action and honours `X-Request-id`: its handler is
/// wrapped in the tracking middleware under the operationId its annotation declares.
pub fn tracked_operation(
    (schemas, paths, route): utoipa_axum::router::UtoipaMethodRouter<AppState>,
) -> utoipa_axum::router::UtoipaMethodRouter<AppState> {
    let operation_id: Arc<str> = paths
        .paths
        .values()
        .flat_map(|item| {
            [
                &item.get,
                &item.put,
                &item.post,
                &item.delete,
                &item.patch,
                &item.head,
                &item.options,
                &item.trace,
            ]
        })
        .flatten()
        .find_map(|operation| operation.operation_id.clone())
        .unwrap_or_default()
        .into();
    let route = route.route_layer(axum::middleware::from_fn_with_state(
        TrackedOperation {
            state: None,
            operation_id,
        },
        track,
    ));
    (schemas, paths, route)
}

/// The `/asyncActions` operations. They are not themselves tracked: polling an action must
/// never become another action.
pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(get_async_actions_info))
        .routes(routes!(get_async_actions_config))
        .routes(routes!(get_async_action_info))
        .routes(routes!(cancel_async_action))
        .routes(routes!(attach_request_data_to_async_action))
        .routes(routes!(get_async_action_result))
        .routes(routes!(clear_async_action_result))
}

#[utoipa::path(
    get, path = "/asyncActions", operation_id = "GetAsyncActionsInfo", tag = "AsyncActions",
    params(SelectParam),
    responses((status = 200, body = crate::wire::ListOf<AsyncActionInfo>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_async_actions_info(
    State(state): State<AppState>,
    caller: Caller,
    select: Select<AsyncActionInfo>,
) -> ApiResult<Response> {
    let records = state
        .store
        .actions(caller.user_uid, state.clock.now())
        .await?;
    let items: Vec<Value> = records
        .iter()
        .map(|r| select.project(serde_json::to_value(AsyncActionInfo::from(r)).unwrap_or_default()))
        .collect();
    let total = items.len();
    Ok(Collection::new(items, total, 0).into_response())
}

#[utoipa::path(
    get, path = "/asyncActions/config", operation_id = "GetAsyncActionsConfig", tag = "AsyncActions",
    params(SelectParam),
    responses((status = 200, body = crate::wire::DataOf<AsyncActionsConfig>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_async_actions_config(
    State(state): State<AppState>,
    _caller: Caller,
    select: Select<AsyncActionsConfig>,
) -> ApiResult<Response> {
    let config = AsyncActionsConfig {
        result_retention_time: i32::try_from(state.config.result_retention.num_seconds())
            .unwrap_or(i32::MAX),
    };
    select.respond(&config)
}

#[utoipa::path(
    get, path = "/asyncActions/{actionId}", operation_id = "GetAsyncActionInfo", tag = "AsyncActions",
    params(("actionId" = Uuid, Path, description = "Async action UID."), SelectParam),
    responses((status = 200, body = crate::wire::DataOf<AsyncActionInfo>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_async_action_info(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<AsyncActionInfo>,
) -> ApiResult<Response> {
    let record = live_action(&state, &caller, parse_uid("actionId", &raw)?).await?;
    let mut body = serde_json::json!({
        "data": select.project(serde_json::to_value(AsyncActionInfo::from(&record)).map_err(ApiError::internal)?),
    });
    if let Some(errors) = stored_errors(&record) {
        body["errors"] = errors;
    }
    Ok(json_response(StatusCode::OK, &body))
}

#[utoipa::path(
    delete, path = "/asyncActions/{actionId}", operation_id = "CancelAsyncAction", tag = "AsyncActions",
    params(("actionId" = Uuid, Path, description = "Async action UID.")),
    responses((status = 200, body = EmptyResponse), (status = "default", body = ErrorResponse)),
)]
pub async fn cancel_async_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<EmptyResponse> {
    let id = parse_uid("actionId", &raw)?;
    let record = live_action(&state, &caller, id).await?;
    if record.status != ActionStatus::Running {
        return Err(ApiError::not_possible(format!(
            "Async action {id} has already finished ({}).",
            record.status.as_str()
        )));
    }
    let now = state.clock.now();
    let cancelled = state
        .store
        .cancel_action(
            caller.user_uid,
            id,
            now,
            now + state.config.failure_retention,
        )
        .await?;
    if !cancelled {
        return Err(ApiError::not_possible(format!(
            "Async action {id} has already finished."
        )));
    }
    if let Some(handle) = state
        .running
        .lock()
        .map_err(ApiError::internal)?
        .remove(&(caller.user_uid, id))
    {
        handle.abort();
    }
    Ok(EmptyResponse::ok())
}

#[utoipa::path(
    put, path = "/asyncActions/{actionId}/requestData", operation_id = "AttachRequestDataToAsyncAction", tag = "AsyncActions",
    params(("actionId" = Uuid, Path, description = "Async action UID."), SelectParam),
    request_body = AsyncActionRequestData,
    responses((status = 200, body = crate::wire::DataOf<AsyncActionInfo>), (status = "default", body = ErrorResponse)),
)]
pub async fn attach_request_data_to_async_action(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    select: Select<AsyncActionInfo>,
    JsonBody(data): JsonBody<AsyncActionRequestData>,
) -> ApiResult<Response> {
    let id = parse_uid("actionId", &raw)?;
    if data
        .request_body
        .as_ref()
        .is_some_and(|b| b.chars().count() > MAX_RECORDED_BODY)
    {
        return Err(ApiError::bad_property(
            "requestBody",
            "requestBody must not be longer than 2,000,000 characters.",
        ));
    }
    if data
        .query_parameters
        .as_ref()
        .is_some_and(|q| q.values().flatten().any(|v| v.chars().count() > 100_000))
    {
        return Err(ApiError::bad_property(
            "queryParameters",
            "A query parameter value must not be longer than 100,000 characters.",
        ));
    }
    let record = live_action(&state, &caller, id).await?;
    let query = match &data.query_parameters {
        Some(q) => serde_json::to_value(q).map_err(ApiError::internal)?,
        None => record.query_parameters.clone(),
    };
    let body = data
        .request_body
        .as_deref()
        .or(record.request_body.as_deref());
    state
        .store
        .attach_action_request_data(caller.user_uid, id, body, &query)
        .await?;
    let updated = live_action(&state, &caller, id).await?;
    select.respond(&AsyncActionInfo::from(&updated))
}

#[utoipa::path(
    get, path = "/asyncActions/{actionId}/result", operation_id = "GetAsyncActionResult", tag = "AsyncActions",
    params(("actionId" = Uuid, Path, description = "Async action UID."), SelectParam),
    responses((status = 200, body = Object), (status = "default", body = ErrorResponse)),
)]
pub async fn get_async_action_result(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let id = parse_uid("actionId", &raw)?;
    let record = live_action(&state, &caller, id).await?;
    match (record.status, &record.response) {
        (ActionStatus::Running, _) => Err(ApiError::not_possible(format!(
            "Async action {id} is still running; poll /api/v3/asyncActions/{id} until it has finished."
        ))),
        (ActionStatus::Canceled, _) => Err(canceled_error()),
        (_, Some(stored)) => Ok(stored_to_response(stored)),
        (_, None) => Err(ApiError::not_found(format!(
            "The result of async action {id} was cleared."
        ))),
    }
}

#[utoipa::path(
    delete, path = "/asyncActions/{actionId}/result", operation_id = "ClearAsyncActionResult", tag = "AsyncActions",
    params(("actionId" = Uuid, Path, description = "Async action UID.")),
    responses((status = 200, body = EmptyResponse), (status = "default", body = ErrorResponse)),
)]
pub async fn clear_async_action_result(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<EmptyResponse> {
    let id = parse_uid("actionId", &raw)?;
    let record = live_action(&state, &caller, id).await?;
    if record.status == ActionStatus::Running {
        return Err(ApiError::not_possible(format!(
            "Async action {id} is still running; its result cannot be cleared yet."
        )));
    }
    state.store.clear_action_result(caller.user_uid, id).await?;
    Ok(EmptyResponse::ok())
}

/// Drops expired action records, tokens and login failures; run periodically by `serve`.
pub async fn purge_expired(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    let actions = state.store.purge_expired_actions(now).await?;
    let tokens = state.store.purge_expired_tokens(now).await?;
    let failures = state
        .store
        .purge_login_failures(now - state.config.login_window)
        .await?;
    if actions + tokens + failures > 0 {
        tracing::debug!(actions, tokens, failures, "purged expired records");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_uuids() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h).unwrap(), None);
        h.insert("X-Request-Id", HeaderValue::from_static("not-a-uuid"));
        let e = request_id(&h).unwrap_err();
        assert_eq!(e.error.parameter_name.as_deref(), Some("X-Request-id"));
        let id = Uuid::new_v4();
        h.insert(
            "x-request-id",
            HeaderValue::from_str(&id.to_string()).unwrap(),
        );
        assert_eq!(request_id(&h).unwrap(), Some(id));
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let q = query_map(Some("limit=2&offset=1"));
        let a = fingerprint(&Method::GET, "/x", &q, b"");
        assert_eq!(
            a,
            fingerprint(
                &Method::GET,
                "/x",
                &query_map(Some("offset=1&limit=2")),
                b""
            )
        );
        assert_ne!(a, fingerprint(&Method::GET, "/y", &q, b""));
        assert_ne!(a, fingerprint(&Method::PATCH, "/x", &q, b""));
        assert_ne!(a, fingerprint(&Method::GET, "/x", &q, b"body"));
    }

    #[test]
    fn multipart_retries_with_a_new_boundary_are_the_same_request() {
        let mut a = HeaderMap::new();
        a.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=AAA"),
        );
        let mut b = HeaderMap::new();
        b.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=\"BBB\""),
        );
        let body_a = b"--AAA\r\nx\r\n--AAA--";
        let body_b = b"--BBB\r\nx\r\n--BBB--";
        assert_eq!(
            without_multipart_boundary(&a, body_a),
            without_multipart_boundary(&b, body_b)
        );
        assert_ne!(
            without_multipart_boundary(&a, body_a),
            without_multipart_boundary(&b, b"--BBB\r\ny\r\n--BBB--")
        );
    }

    #[test]
    fn query_parameters_are_string_arrays() {
        let q = query_map(Some("limit=100&expand=a&expand=b&filter=%5B%5D"));
        assert_eq!(q["limit"], serde_json::json!(["100"]));
        assert_eq!(q["expand"], serde_json::json!(["a", "b"]));
        assert_eq!(q["filter"], serde_json::json!(["[]"]));
    }
}
