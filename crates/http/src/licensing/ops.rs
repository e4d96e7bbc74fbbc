//! The operations every license resource shares, parameterised by target kind: list, get,
//! install, modify (JSON Patch), update (through the license portal) and delete. Each checks the
//! caller's role, loads the target in the caller's scope, asks the application layer to do the
//! work and renders the result. The per-resource modules wrap these in handlers named after the
//! contract's operationIds.

use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tallyman_app::{AppError, Target};
use tallyman_domain::delete::DeleteSection;
use tallyman_store::{Role, TargetKind};
use uuid::Uuid;

use super::patch::{apply_flag_patch, patch_failed};
use super::resources::render_json;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::query::{CollectionQuery, Resource};
use crate::select::Select;
use crate::wire::{json_bytes, EmptyResponse, Single};
use crate::AppState;

fn respond<R>(state: &AppState, target: &Target, select: &Select<R>) -> Response {
    Single {
        data: select.project(render_json(target, state.clock.now())),
    }
    .into_response()
}

/// `{"data": <json>}` around an already rendered resource.
fn single_raw(json: &str) -> Response {
    let mut body = Vec::with_capacity(json.len() + 10);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(json.as_bytes());
    body.push(b'}');
    json_bytes(axum::http::StatusCode::OK, body)
}

/// The target `uid` of `kind`, after checking the caller's role; out of scope is not found.
async fn load(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    uid: Uuid,
) -> ApiResult<Target> {
    caller.require(roles)?;
    let scope = caller.scope(state).await?;
    Ok(state.target(kind, uid, &scope).await?)
}

pub async fn list<R: Resource>(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    query: CollectionQuery<R>,
) -> ApiResult<Response> {
    caller.require(roles)?;
    let scope = caller.scope(state).await?;
    let list = state
        .lists
        .of(kind)
        .ok_or_else(|| ApiError::internal(format!("{} has no list", kind.as_str())))?;
    list.page(&state.app, &scope, &query.query).await
}

pub async fn get<R>(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    uid: Uuid,
    select: Select<R>,
) -> ApiResult<Response> {
    // A built list holds every target of its kind already rendered and kept current.
    if let Some(list) = state.lists.of(kind).filter(|l| l.built()) {
        caller.require(roles)?;
        let scope = caller.scope(state).await?;
        if let Some(json) = list.rendered(&state.app, &scope, uid).await? {
            if select.is_whole() {
                return Ok(single_raw(&json));
            }
            let doc: Value = serde_json::from_str(&json).map_err(ApiError::internal)?;
            return Ok(Single {
                data: select.project(doc),
            }
            .into_response());
        }
    }
    let target = load(state, caller, kind, roles, uid).await?;
    Ok(respond(state, &target, &select))
}

pub async fn install<R>(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    uid: Uuid,
    file: &[u8],
    select: Select<R>,
) -> ApiResult<Response> {
    let target = load(state, caller, kind, roles, uid).await?;
    let written = state.install(&target, file, &caller.name).await?;
    Ok(respond(state, &written, &select))
}

pub async fn patch<R: Resource>(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    uid: Uuid,
    ops: &[Value],
    select: Select<R>,
) -> ApiResult<Response> {
    let target = load(state, caller, kind, roles, uid).await?;
    let current = target.doc.auto_update_enabled;
    // Every other property of the resource exists but is read-only.
    let readable: Vec<&str> = R::schema().paths().map(|(path, _)| path).collect();
    let wanted = apply_flag_patch(ops, "autoUpdateEnabled", &readable, current)?;
    let written = match state.set_auto_update(&target, wanted, &caller.name).await {
        Ok(written) => written,
        Err(AppError::LicenseFailed(refusal)) => {
            let op = ops.last().cloned().unwrap_or(Value::Null);
            return Err(patch_failed(&op, refusal));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(respond(state, written.as_ref().unwrap_or(&target), &select))
}

/// Parses `sectionForDelete` (default `All`), matching the parameter name and value ignoring case.
pub fn section_for_delete(query: Option<&str>) -> ApiResult<Option<DeleteSection>> {
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k.eq_ignore_ascii_case("sectionForDelete") {
            let section = DeleteSection::ALL
                .iter()
                .copied()
                .find(|s| s.as_wire().eq_ignore_ascii_case(v.trim()))
                .ok_or_else(|| {
                    ApiError::bad_parameter(
                        "sectionForDelete",
                        "sectionForDelete must be Socket, Instance or All.",
                    )
                })?;
            return Ok(Some(section));
        }
    }
    Ok(None)
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    uid: Uuid,
    section: Option<DeleteSection>,
) -> ApiResult<EmptyResponse> {
    let target = load(state, caller, kind, roles, uid).await?;
    state.delete_license(&target, section, &caller.name).await?;
    Ok(EmptyResponse::ok())
}

/// Asks the license portal for newer files of the installed licenses and installs them.
pub async fn update<R>(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    uid: Uuid,
    select: Select<R>,
) -> ApiResult<Response> {
    let target = load(state, caller, kind, roles, uid).await?;
    let (written, _) = state.update(&target, &caller.name).await?;
    Ok(respond(state, &written, &select))
}
