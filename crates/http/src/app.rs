//! The application: shared state, the router with its layers, and `serve`, which takes a bound
//! listener and a shutdown signal so tests can start the real server on port 0.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use tallyman_license::TrustStore;
use tallyman_store::Store;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::licensing::{
    backup_servers as bs, console, sites, vb365_servers as vb365, vone_servers as vone,
};
use crate::portal::LicensePortal;
use crate::{about, agent, async_actions, auth, openapi, reports, token, usage, users};

/// HTTP-layer settings. `serve` builds them from flags, environment and the config file.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted; larger ones get 413.
    pub body_limit: usize,
    /// How long an async-capable operation may run before the caller gets 202.
    pub async_budget: Duration,
    /// Answer every async-capable operation with 202 (for testing client polling loops).
    pub force_async: bool,
    /// How long a successful action's result (and its idempotency record) is kept.
    pub result_retention: Duration,
    /// How long a failed or cancelled action's result is kept.
    pub failure_retention: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Failed logins per (user name, address) within `login_window` before 429.
    pub login_max_failures: u32,
    pub login_window: Duration,
    /// Largest page a collection returns (`limit` upper bound).
    pub max_page_size: usize,
    /// Base URL clients reach this server at, for `Location` headers; the request's Host
    /// header is used when unset.
    pub public_url: Option<String>,
    /// Day of the month from which reports still waiting for approval are finalized
    /// automatically.
    pub report_finalize_day: u32,
    /// Connection limits and read timeouts of the listener.
    pub server: crate::server::ServerLimits,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 4 * 1024 * 1024,
            async_budget: Duration::seconds(30),
            force_async: false,
            result_retention: Duration::minutes(5),
            failure_retention: Duration::hours(1),
            access_token_ttl: auth::default_access_ttl(),
            refresh_token_ttl: auth::default_refresh_ttl(),
            login_max_failures: 5,
            login_window: Duration::minutes(15),
            max_page_size: 500,
            public_url: None,
            report_finalize_day: 3,
            server: crate::server::ServerLimits::default(),
        }
    }
}

/// Everything handlers share, passed through axum's `State`.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<HttpConfig>,
    /// Installation id and date, for `/about`.
    pub installation: (Uuid, DateTime<Utc>),
    /// Actions still running on this node, so a cancel can stop them.
    pub running: Arc<Mutex<HashMap<(Uuid, Uuid), AbortHandle>>>,
    /// Issuer keys whose license files this server accepts.
    pub trust: Arc<RwLock<TrustStore>>,
    /// Where `update` asks for newer license files; `None` when no portal is configured.
    pub portal: Option<Arc<dyn LicensePortal>>,
    /// Parsed license slot documents by target and revision (see `licensing::cached_doc`).
    pub slot_cache: Arc<RwLock<HashMap<Uuid, (i64, Arc<crate::licensing::SlotDocument>)>>>,
    /// Rendered license lists by kind (see `licensing::rendered_list`).
    pub list_cache: Arc<Mutex<HashMap<tallyman_store::TargetKind, crate::licensing::ListView>>>,
    /// Serializes rebuilds of `list_cache`.
    pub list_rebuild: Arc<tokio::sync::Mutex<()>>,
    /// Request metrics, exposed on the metrics listener.
    pub metrics: crate::metrics::Metrics,
    /// Bounds concurrent password verification (see `auth::HashGate`).
    pub hash_gate: Arc<auth::HashGate>,
}

impl AppState {
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: HttpConfig,
    ) -> anyhow::Result<Self> {
        let installation = store.installation(clock.now()).await?;
        Ok(Self {
            store,
            clock,
            config: Arc::new(config),
            installation,
            running: Arc::default(),
            trust: Arc::new(RwLock::new(TrustStore::new())),
            portal: None,
            slot_cache: Arc::default(),
            list_cache: Arc::default(),
            list_rebuild: Arc::default(),
            metrics: crate::metrics::Metrics::default(),
            hash_gate: Arc::new(auth::HashGate::per_core()),
        })
    }

    pub fn with_trust(mut self, trust: TrustStore) -> Self {
        self.trust = Arc::new(RwLock::new(trust));
        self
    }

    pub fn with_portal(mut self, portal: Arc<dyn LicensePortal>) -> Self {
        self.portal = Some(portal);
        self
    }
}

/// Wraps an operation so it can become an async action and honours `X-Request-id`.
pub fn tracked(
    state: &AppState,
    operation_id: &'static str,
    route: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    route.route_layer(middleware::from_fn_with_state(
        (state.clone(), operation_id),
        async_actions::track,
    ))
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The router with `extra` routes mounted under `/api/v3` behind authentication, for
/// embedding Tallyman's API in tests or tools.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let authenticated = Router::new()
        .route(
            "/about",
            tracked(
                &state,
                "GetAboutInformation",
                get(about::get_about_information),
            ),
        )
        .route("/asyncActions", get(async_actions::get_async_actions_info))
        .route(
            "/asyncActions/config",
            get(async_actions::get_async_actions_config),
        )
        .route(
            "/asyncActions/{actionId}",
            get(async_actions::get_async_action_info).delete(async_actions::cancel_async_action),
        )
        .route(
            "/asyncActions/{actionId}/requestData",
            put(async_actions::attach_request_data_to_async_action),
        )
        .route(
            "/asyncActions/{actionId}/result",
            get(async_actions::get_async_action_result)
                .delete(async_actions::clear_async_action_result),
        )
        .route(
            "/users/{userUid}/tokens",
            tracked(
                &state,
                "RevokeAuthenticationToken",
                delete(users::revoke_authentication_token),
            ),
        )
        .route(
            "/licensing/sites",
            tracked(&state, "GetSiteLicenses", get(sites::get_site_licenses)),
        )
        .route(
            "/licensing/sites/{siteUid}",
            tracked(&state, "GetSiteLicense", get(sites::get_site_license))
                .merge(tracked(
                    &state,
                    "InstallSiteLicense",
                    put(sites::install_site_license),
                ))
                .merge(tracked(
                    &state,
                    "PatchSiteLicense",
                    patch(sites::patch_site_license),
                )),
        )
        .route(
            "/licensing/sites/{siteUid}/update",
            tracked(
                &state,
                "UpdateSiteLicense",
                post(sites::update_site_license),
            ),
        )
        .route(
            "/licensing/backupServers",
            tracked(
                &state,
                "GetBackupServersLicenses",
                get(bs::get_backup_servers_licenses),
            ),
        )
        .route(
            "/licensing/backupServers/{backupServerUid}",
            tracked(
                &state,
                "GetBackupServerLicense",
                get(bs::get_backup_server_license),
            )
            .merge(tracked(
                &state,
                "InstallBackupServerLicense",
                put(bs::install_backup_server_license),
            ))
            .merge(tracked(
                &state,
                "DeleteBackupServerLicense",
                delete(bs::delete_backup_server_license),
            ))
            .merge(tracked(
                &state,
                "PatchBackupServerLicense",
                patch(bs::patch_backup_server_license),
            )),
        )
        .route(
            "/licensing/backupServers/{backupServerUid}/update",
            tracked(
                &state,
                "UpdateBackupServerLicense",
                post(bs::update_backup_server_license),
            ),
        )
        .route(
            "/licensing/voneServers",
            tracked(
                &state,
                "GetVOneServersLicenses",
                get(vone::get_v_one_servers_licenses),
            ),
        )
        .route(
            "/licensing/voneServers/{vOneServerUid}",
            tracked(
                &state,
                "GetVOneServerLicense",
                get(vone::get_v_one_server_license),
            )
            .merge(tracked(
                &state,
                "InstallVOneServerLicense",
                put(vone::install_v_one_server_license),
            ))
            .merge(tracked(
                &state,
                "DeleteVOneServerLicense",
                delete(vone::delete_v_one_server_license),
            ))
            .merge(tracked(
                &state,
                "PatchVOneServerLicense",
                patch(vone::patch_v_one_server_license),
            )),
        )
        .route(
            "/licensing/voneServers/{vOneServerUid}/update",
            tracked(
                &state,
                "UpdateVOneServerLicense",
                post(vone::update_v_one_server_license),
            ),
        )
        .route(
            "/licensing/vb365Servers",
            tracked(
                &state,
                "GetVb365ServersLicenses",
                get(vb365::get_vb365_servers_licenses),
            ),
        )
        .route(
            "/licensing/vb365Servers/{vb365ServerUid}",
            tracked(
                &state,
                "GetVb365ServerLicense",
                get(vb365::get_vb365_server_license),
            )
            .merge(tracked(
                &state,
                "InstallVb365ServerLicense",
                put(vb365::install_vb365_server_license),
            ))
            .merge(tracked(
                &state,
                "PatchVb365ServerLicense",
                patch(vb365::patch_vb365_server_license),
            )),
        )
        .route(
            "/licensing/vb365Servers/{vb365ServerUid}/update",
            tracked(
                &state,
                "UpdateVb365ServerLicense",
                post(vb365::update_vb365_server_license),
            ),
        )
        .route(
            "/licensing/console",
            tracked(
                &state,
                "GetConsoleLicenseInformation",
                get(console::get_console_license_information),
            )
            .merge(tracked(
                &state,
                "InstallConsoleLicense",
                put(console::install_console_license),
            )),
        )
        .route(
            "/licensing/console/update",
            tracked(
                &state,
                "UpdateConsoleLicense",
                post(console::update_console_license),
            ),
        )
        .route(
            "/licensing/console/settings",
            tracked(
                &state,
                "GetConsoleLicenseSettings",
                get(console::get_console_license_settings),
            ),
        )
        .route(
            "/licensing/reports",
            tracked(
                &state,
                "GetLicensingReports",
                get(reports::get_licensing_reports),
            ),
        )
        .route(
            "/licensing/reports/latest",
            tracked(
                &state,
                "GetLatestLicensingReports",
                get(reports::get_latest_licensing_reports),
            ),
        )
        .route(
            "/licensing/reports/finalization",
            tracked(
                &state,
                "FinalizeLicensingReports",
                post(reports::finalize_licensing_reports),
            ),
        )
        .route(
            "/licensing/reports/settings",
            tracked(
                &state,
                "GetLicensingReportsSettings",
                get(reports::get_licensing_reports_settings),
            )
            .merge(tracked(
                &state,
                "PatchLicensingReportsSettings",
                patch(reports::patch_licensing_reports_settings),
            )),
        )
        .route(
            "/licensing/reports/{date}",
            tracked(
                &state,
                "GetLicensingReportsForDate",
                get(reports::get_licensing_reports_for_date),
            ),
        )
        .route(
            "/licensing/reports/{id}/csv",
            tracked(
                &state,
                "DownloadLicensingReportCsv",
                get(reports::download_licensing_report_csv),
            ),
        )
        .route(
            "/licensing/usage/organizations",
            tracked(
                &state,
                "GetOrganizationsLicenseUsage",
                get(usage::get_organizations_license_usage),
            ),
        )
        .merge(extra)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));

    let public = Router::new()
        .route("/token", post(token::o_auth_2_issue_token))
        .route("/openapi.json", get(openapi::serve_openapi));

    let limit = state.config.body_limit;
    Router::new()
        .nest("/api/v3", public.merge(authenticated))
        // Agents authenticate with their own tokens, so their API sits outside the VSPC
        // bearer middleware.
        .nest(
            "/api/agent/v1",
            agent::router().merge(crate::agent_usage::routes()),
        )
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::record,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            reject_oversized,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                    user = tracing::field::Empty,
                )
            }),
        )
        .with_state(state)
}

/// `ok` only when the database takes a write (a one-row probe), so a full disk or a read-only
/// data directory shows as 503.
async fn health(State(state): State<AppState>) -> Response {
    match state.store.probe_write(state.clock.now()).await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health: the database does not take writes");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::error::ErrorType::RetryableLogical,
                503,
                "The database does not accept writes; the details are in the server log.",
            )
            .into_response()
        }
    }
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("There is no resource at {method} {}.", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::error::ErrorType::Logical,
        405,
        format!("The method {method} is not allowed on {}.", uri.path()),
    )
}

/// Refuses bodies whose declared length is over the limit before reading them.
async fn reject_oversized(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.config.body_limit) {
        return ApiError::payload_too_large(state.config.body_limit).into_response();
    }
    next.run(request).await
}

/// Serves until `shutdown` resolves; requests in flight are allowed to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    serve_router(listener, app, state, shutdown).await
}

/// Like [`serve`], for a router built with [`router_with`].
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let janitor = spawn_janitor(state.clone());
    let monthly =
        crate::jobs::spawn_monthly_reports(state.clone(), state.config.report_finalize_day);
    let auto_update = crate::jobs::spawn_auto_update(state.clone());
    // Trailing slashes are trimmed before routing, so `/x/` and `/x` are the same resource
    // (no redirects: some clients refuse to follow them).
    let app = NormalizePathLayer::trim_trailing_slash().layer(app);
    let result = crate::server::serve(listener, app, state.config.server, shutdown).await;
    janitor.abort();
    auto_update.abort();
    monthly.abort();
    result
}

/// Purges expired tokens, action records and login failures once a minute.
fn spawn_janitor(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = async_actions::purge_expired(&state, state.clock.now()).await {
                tracing::warn!(error = %e, "purging expired records failed");
            }
        }
    })
}
