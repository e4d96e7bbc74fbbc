//! The provider's web console: static assets compiled into the binary (`crates/http/web/`),
//! served at `/` and `/assets/…` with their content type, an ETag for revalidation and a strict
//! Content-Security-Policy; and `GET /api/v3/tallyman/session`, which tells the console who is
//! logged in and what that caller may read and change. The console itself is a client of the
//! public `/api/v3` API: it has no other access to the data.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tallyman_store::Role;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::licensing::{CONSOLE_ROLES, SERVER_ROLES, SITE_ROLES};
use crate::organizations::{ORGANIZATION_ROLES, RESELLER_ROLES};
use crate::reports::REPORT_ROLES;
use crate::usage::USAGE_ROLES;
use crate::wire::Single;
use crate::AppState;

/// Only this origin's scripts, styles, images and API; no inline script, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../web/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/api.js"),
    },
    Asset {
        name: "ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/ui.js"),
    },
    Asset {
        name: "pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/pages.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/style.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../web/favicon.svg"),
    },
];

/// Strong ETags of the assets, computed once.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    });
    tags.get(index).map(String::as_str).unwrap_or("\"\"")
}

/// The top-level routes of the console (merged next to `/api/v3`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/favicon.ico", get(favicon))
        .route("/assets/{file}", get(asset))
}

/// Non-VSPC API routes the console needs, for the authenticated `/api/v3` router.
pub fn api_routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(get_session))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn favicon(headers: HeaderMap) -> Response {
    serve("favicon.svg", &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return ApiError::not_found(format!("There is no console asset named {name}."))
            .into_response();
    };
    let asset = &ASSETS[index];
    let tag = etag(index);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, asset.body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time: the ETag makes that a cheap 304, and a new binary is seen at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// What the caller may do with one area of the API.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

/// The areas of the console, keyed like the API paths they use.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAccess {
    pub sites: Access,
    pub backup_servers: Access,
    pub vone_servers: Access,
    pub vb365_servers: Access,
    pub console: Access,
    pub reports: Access,
    pub usage: Access,
    pub organizations: Access,
    pub resellers: Access,
}

/// `GET /api/v3/tallyman/session` (Tallyman's own, outside the VSPC contract).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub user_uid: uuid::Uuid,
    pub user_name: String,
    pub role: String,
    pub read_only: bool,
    pub organization_uid: uuid::Uuid,
    pub organization_name: String,
    pub organization_type: String,
    pub access: SessionAccess,
}

fn access(caller: &Caller, admitted: &[Role]) -> Access {
    let read = admitted.contains(&caller.role);
    Access {
        read,
        write: read && !caller.read_only,
    }
}

#[utoipa::path(
    get, path = "/tallyman/session", operation_id = "GetTallymanSession", tag = "Tallyman",
    responses((status = 200, body = crate::wire::DataOf<Session>), (status = "default", body = crate::error::ErrorResponse)),
)]
pub async fn get_session(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let org = state.store.organization(caller.organization_uid).await?;
    let (organization_name, organization_type) = match org {
        Some(o) => (o.name, o.kind.as_str().to_string()),
        None => (
            String::new(),
            caller.role.organization_type().as_str().into(),
        ),
    };
    let session = Session {
        user_uid: caller.user_uid,
        user_name: caller.name.clone(),
        role: caller.role.as_str().to_string(),
        read_only: caller.read_only,
        organization_uid: caller.organization_uid,
        organization_name,
        organization_type,
        access: SessionAccess {
            sites: access(&caller, SITE_ROLES),
            backup_servers: access(&caller, SERVER_ROLES),
            vone_servers: access(&caller, SERVER_ROLES),
            vb365_servers: access(&caller, SERVER_ROLES),
            console: access(&caller, CONSOLE_ROLES),
            reports: access(&caller, REPORT_ROLES),
            usage: access(&caller, USAGE_ROLES),
            organizations: access(&caller, ORGANIZATION_ROLES),
            resellers: access(&caller, RESELLER_ROLES),
        },
    };
    Ok(Single { data: session }.into_response())
}
