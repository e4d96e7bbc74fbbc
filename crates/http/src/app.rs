//! The router with its layers, and `serve`, which takes a bound listener and a shutdown signal
//! so tests can start the real server on port 0. The routes themselves are in `routes`.

use std::future::Future;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;

use crate::async_actions::TrackedOperation;
use crate::error::ApiError;
use crate::{agent, async_actions, auth, openapi, routes, AppState};

/// Wraps a route so it can become an async action and honours `X-Request-id`, recorded under
/// `operation_id`. The API's own operations get this from their annotations (see `routes`);
/// this is for routes added from outside, through [`router_with`].
pub fn tracked(
    state: &AppState,
    operation_id: &'static str,
    route: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    route.route_layer(middleware::from_fn_with_state(
        TrackedOperation {
            state: Some(state.clone()),
            operation_id: operation_id.into(),
        },
        async_actions::track,
    ))
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The router with `extra` routes mounted under `/api/v3` behind authentication, for
/// embedding Tallyman's API in tests or tools.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let (authenticated, _) = routes::api_routes().split_for_parts();
    let authenticated = authenticated
        .merge(extra)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));
    let (public, _) = routes::public_routes().split_for_parts();
    let public = public.route("/openapi.json", get(openapi::serve_openapi));

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
        // The web console: static pages that use the API above.
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Tracked operations find the application state here.
        .layer(Extension(state.clone()))
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
    let warmup = spawn_list_warmup(state.clone());
    let monthly = tallyman_app::jobs::spawn_monthly_reports(
        state.app.clone(),
        state.config.report_finalize_day,
    );
    let auto_update = tallyman_app::jobs::spawn_auto_update(state.app.clone());
    // Trailing slashes are trimmed before routing, so `/x/` and `/x` are the same resource
    // (no redirects: some clients refuse to follow them).
    let app = NormalizePathLayer::trim_trailing_slash().layer(app);
    let result = crate::server::serve(listener, app, state.config.server, shutdown).await;
    janitor.abort();
    warmup.abort();
    auto_update.abort();
    monthly.abort();
    result
}

/// Inventory change-log entries kept: a node whose lists are older than this many changes
/// rebuilds them instead of applying the changes one by one.
const INVENTORY_CHANGES_KEPT: i64 = 1_000_000;

/// Purges expired tokens, action records, login failures and old inventory change-log entries
/// once a minute.
fn spawn_janitor(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = async_actions::purge_expired(&state, state.clock.now()).await {
                tracing::warn!(error = %e, "purging expired records failed");
            }
            if let Err(e) = state
                .store
                .prune_inventory_changes(INVENTORY_CHANGES_KEPT)
                .await
            {
                tracing::warn!(error = %e, "pruning the inventory change log failed");
            }
        }
    })
}

/// Builds every license list right after start, so the first requests find them ready
/// (requests arriving sooner wait for the build in progress, never start a second one).
fn spawn_list_warmup(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = state.lists.warm(&state.app).await {
            tracing::warn!(error = %e, "building the license lists at start failed");
        }
    })
}
