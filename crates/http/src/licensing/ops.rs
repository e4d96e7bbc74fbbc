//! The operations every license resource shares, parameterised by target kind: list, get,
//! install, modify (JSON Patch), update (through the license portal) and delete. The
//! per-resource modules wrap these in handlers named after the contract's operationIds.

use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tallyman_domain::delete::{plan_delete, DeleteOutcome, DeleteSection};
use tallyman_domain::patch::decide_auto_update;
use tallyman_store::{Role, TargetKind};
use uuid::Uuid;

use super::patch::{apply_flag_patch, patch_failed};
use super::resources::render_json;
use super::{
    install_verified, license_failed, load_target, save, verify_upload, LastUpdate, SlotDocument,
    Target,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorType};
use crate::portal::PortalFailure;
use crate::query::{CollectionQuery, Resource};
use crate::select::Select;
use crate::wire::{EmptyResponse, Single};
use crate::AppState;

fn respond<R>(state: &AppState, target: &Target, select: &Select<R>) -> Response {
    Single {
        data: select.project(render_json(target, state.clock.now())),
    }
    .into_response()
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
    let items = super::rendered_list(state, kind).await?;
    let visible = items
        .iter()
        .filter(|(org, _)| scope.contains(*org))
        .map(|(_, doc)| doc);
    Ok(query.page_refs(visible).into_response())
}

pub async fn get<R>(
    state: &AppState,
    caller: &Caller,
    kind: TargetKind,
    roles: &[Role],
    uid: Uuid,
    select: Select<R>,
) -> ApiResult<Response> {
    caller.require(roles)?;
    let target = load_target(state, caller, kind, uid).await?;
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
    caller.require(roles)?;
    let target = load_target(state, caller, kind, uid).await?;
    let verified = verify_upload(state, file)?;
    install_verified(state, &target, verified, &caller.name, "install").await?;
    let fresh = super::reload(state, caller, &target).await?;
    tracing::info!(target = %uid, kind = kind.as_str(), by = %caller.name, "license installed");
    Ok(respond(state, &fresh, &select))
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
    caller.require(roles)?;
    let target = load_target(state, caller, kind, uid).await?;
    let current = target.doc.auto_update_enabled;
    // Every other property of the resource exists but is read-only.
    let readable: Vec<&str> = R::schema().paths().map(|(path, _)| path).collect();
    let wanted = apply_flag_patch(ops, "autoUpdateEnabled", &readable, current)?;
    if wanted == current {
        return Ok(respond(state, &target, &select));
    }
    let terms = target.terms();
    decide_auto_update(target.product(), terms.as_ref(), wanted).map_err(|refusal| {
        let op = ops.last().cloned().unwrap_or(Value::Null);
        patch_failed(&op, refusal.to_string())
    })?;
    let mut doc = SlotDocument::clone(&target.doc);
    doc.auto_update_enabled = wanted;
    save(
        state,
        &target,
        &doc,
        &caller.name,
        "patch",
        serde_json::json!({"autoUpdateEnabled": wanted}),
    )
    .await?;
    let fresh = super::reload(state, caller, &target).await?;
    Ok(respond(state, &fresh, &select))
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
    caller.require(roles)?;
    let target = load_target(state, caller, kind, uid).await?;
    let terms = target.terms().filter(|_| !target.doc.community);
    let outcome = plan_delete(target.product(), terms.as_ref(), section)
        .map_err(|refusal| license_failed(refusal.to_string()))?;
    let mut doc = SlotDocument::clone(&target.doc);
    let removed = section.unwrap_or_default();
    match &outcome {
        DeleteOutcome::PartRemoved { .. } => {
            let gone = removed.as_wire();
            doc.files.retain(|f| {
                !f.claims.section_types.iter().any(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(|x| x == gone))
                        .unwrap_or(false)
                })
            });
        }
        DeleteOutcome::DroppedToCommunity => {
            doc.files.clear();
            doc.community = true;
            doc.auto_update_enabled = false;
        }
        DeleteOutcome::Unlicensed => {
            doc.files.clear();
            doc.auto_update_enabled = false;
        }
    }
    doc.pending_delivery = true;
    save(
        state,
        &target,
        &doc,
        &caller.name,
        "delete",
        serde_json::json!({"sectionForDelete": removed.as_wire()}),
    )
    .await?;
    tracing::info!(target = %uid, kind = kind.as_str(), by = %caller.name, section = removed.as_wire(), "license deleted");
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
    caller.require(roles)?;
    let target = load_target(state, caller, kind, uid).await?;
    run_update(state, &target, &caller.name).await?;
    let fresh = load_target(state, caller, kind, uid).await?;
    Ok(respond(state, &fresh, &select))
}

/// One update attempt on a target, recorded in its `lastUpdate*` fields. Shared by the
/// `update` operations and the auto-update job.
pub async fn run_update(state: &AppState, target: &Target, actor: &str) -> ApiResult<bool> {
    let Some(portal) = state.portal.clone() else {
        return Err(ApiError::not_possible(
            "No license portal is configured on this server; start it with --portal-url \
             (or TALLYMAN_PORTAL_URL) to update licenses.",
        ));
    };
    if target.doc.files.is_empty() {
        return Err(license_failed(
            "No license is installed, so there is nothing to update.",
        ));
    }
    let mut newer = Vec::new();
    for file in &target.doc.files {
        match portal.latest(file.license_id, file.claims.iat).await {
            Ok(Some(text)) => newer.push(text),
            Ok(None) => {}
            Err(failure) => {
                let (message, retryable) = match failure {
                    PortalFailure::Unreachable(why) => (
                        format!(
                            "The license portal could not be reached ({why}); try again later."
                        ),
                        true,
                    ),
                    PortalFailure::UnknownLicense => (
                        format!(
                            "The license portal does not know license {}.",
                            file.license_id
                        ),
                        false,
                    ),
                    PortalFailure::Protocol(why) => (
                        format!("The license portal answered unexpectedly: {why}"),
                        true,
                    ),
                };
                record_attempt(state, target, actor, "Error", &message).await;
                return Err(if retryable {
                    ApiError::new(
                        axum::http::StatusCode::from_u16(crate::error::STATUS_SERVER_FAILURE)
                            .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
                        ErrorType::RetryableLogical,
                        1300,
                        message,
                    )
                } else {
                    license_failed(message)
                });
            }
        }
    }
    if newer.is_empty() {
        record_attempt(
            state,
            target,
            actor,
            "Success",
            "The license is up to date.",
        )
        .await;
        return Ok(false);
    }
    let mut current = load_target_unscoped(state, target).await?;
    for text in newer {
        let verified = verify_upload(state, text.as_bytes()).inspect_err(|e| {
            tracing::warn!(target = %target.uid, error = %e, "the portal sent a file this server cannot verify");
        })?;
        let mut doc = install_verified(state, &current, verified, actor, "update").await?;
        doc.last_update = Some(LastUpdate {
            at: state.clock.now(),
            status: "Success".into(),
            message: "The license was updated from the license portal.".into(),
        });
        current = load_target_unscoped(state, target).await?;
        save(
            state,
            &current,
            &doc,
            actor,
            "update-status",
            serde_json::json!({"status": "Success"}),
        )
        .await?;
        current = load_target_unscoped(state, target).await?;
    }
    Ok(true)
}

async fn load_target_unscoped(state: &AppState, target: &Target) -> ApiResult<Target> {
    let slot = state.store.license_slot(target.uid).await?;
    let doc = super::cached_doc(state, slot.as_ref())?;
    let server = match target.kind {
        TargetKind::Console => None,
        _ => state.store.server(target.uid).await?,
    };
    Ok(Target::new(target.kind, target.uid, server, slot, doc))
}

/// Records an update attempt's outcome; a failure to record is logged, not returned, so the
/// caller sees the attempt's own result.
async fn record_attempt(
    state: &AppState,
    target: &Target,
    actor: &str,
    status: &str,
    message: &str,
) {
    let result = async {
        let current = load_target_unscoped(state, target).await?;
        let mut doc = SlotDocument::clone(&current.doc);
        doc.last_update = Some(LastUpdate {
            at: state.clock.now(),
            status: status.into(),
            message: message.into(),
        });
        save(
            state,
            &current,
            &doc,
            actor,
            "update-status",
            serde_json::json!({"status": status, "message": message}),
        )
        .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(target = %target.uid, error = %e, "cannot record the license update attempt");
    }
}
