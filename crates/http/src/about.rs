//! `GET /api/v3/about`: what this server is. Clients use it as their connection check and map
//! the first two parts of `serverVersion` to the API version, so it reads `9.1.0.<build>`
//! (VSPC 9.1 = REST API 3.6.1); the build number is derived from Tallyman's own version.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorResponse};
use crate::wire::Single;
use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::async_actions::tracked_operation;

/// `9.1.0.<build>`, with build = major·10000 + minor·100 + patch of Tallyman's version.
pub fn server_version() -> String {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    let build = part(env!("CARGO_PKG_VERSION_MAJOR")) * 10_000
        + part(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + part(env!("CARGO_PKG_VERSION_PATCH"));
    format!("9.1.0.{build}")
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct About {
    pub installation_id: Uuid,
    #[serde(with = "crate::wire::datetime")]
    #[schema(value_type = String, format = DateTime)]
    pub installation_date: DateTime<Utc>,
    /// Tallyman manages no backup agents itself, so it knows no current agent versions.
    pub actual_vaw_version: Option<String>,
    pub actual_val_version: Option<String>,
    pub actual_vam_version: Option<String>,
    pub server_version: String,
    pub windows_management_agent_version: String,
    pub linux_management_agent_version: String,
    pub mac_management_agent_version: String,
}

/// This module's operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(tracked_operation(routes!(get_about_information)))
}

#[utoipa::path(
    get, path = "/about", operation_id = "GetAboutInformation", tag = "About",
    responses((status = 200, body = crate::wire::DataOf<About>), (status = "default", body = ErrorResponse)),
)]
pub async fn get_about_information(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Single<About>> {
    let version = server_version();
    Ok(Single {
        data: About {
            installation_id: state.installation.0,
            installation_date: state.installation.1,
            actual_vaw_version: None,
            actual_val_version: None,
            actual_vam_version: None,
            server_version: version.clone(),
            windows_management_agent_version: version.clone(),
            linux_management_agent_version: version.clone(),
            mac_management_agent_version: version,
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_version_maps_to_api_3_6_1() {
        let v = super::server_version();
        assert!(v.starts_with("9.1.0."), "{v}");
        assert!(v.rsplit('.').next().unwrap().parse::<u32>().is_ok());
    }
}
