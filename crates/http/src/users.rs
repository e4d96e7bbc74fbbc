//! `DELETE /api/v3/users/{userUid}/tokens`: revoke every token of a user (the emergency logout).
//! A user may revoke their own tokens; portal administrators may revoke anyone's.

use axum::extract::{Path, State};
use tallyman_store::Role;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::extract::parse_uid;
use crate::wire::Single;
use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::async_actions::tracked_operation;

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(tracked_operation(routes!(revoke_authentication_token)))
}

#[utoipa::path(
    delete, path = "/users/{userUid}/tokens", operation_id = "RevokeAuthenticationToken", tag = "Accounts",
    params(("userUid" = uuid::Uuid, Path, description = "User UID."),
           ("userLoginId" = Option<i32>, Query, description = "Accepted for compatibility; all tokens of the user are revoked.")),
    responses((status = 200, body = crate::wire::DataOf<bool>), (status = "default", body = ErrorResponse)),
)]
pub async fn revoke_authentication_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Single<bool>> {
    let user_uid = parse_uid("userUid", &raw)?;
    if user_uid != caller.user_uid && caller.role != Role::PortalAdministrator {
        return Err(ApiError::forbidden(
            "Only a portal administrator may revoke another user's tokens.",
        ));
    }
    if state.store.user(user_uid).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "User {user_uid} was not found."
        )));
    }
    let revoked = state.store.revoke_user_tokens(user_uid).await?;
    tracing::info!(%user_uid, revoked, by = %caller.name, "tokens revoked");
    Ok(Single { data: true })
}
