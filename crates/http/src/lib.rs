//! Tallyman's HTTP layer: the VSPC REST API v3 wire format (envelope, errors, query
//! parameters), OAuth2-style tokens, roles and tenant scope, `X-Request-id` idempotency and
//! async actions. It knows HTTP and nothing about SQL: the operations are the application layer's
//! (`tallyman_app`), storage is behind `tallyman_store::Store`.

pub mod about;
pub mod agent;
pub mod agent_usage;
pub mod app;
pub mod async_actions;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod licensing;
pub mod metrics;
pub mod openapi;
pub mod organizations;
pub mod password_gate;
pub mod query;
pub mod reports;
pub mod routes;
pub mod select;
pub mod server;
pub mod state;
pub mod token;
pub mod usage;
pub mod users;
pub mod web;
pub mod wire;

pub use app::{router, router_with, serve, serve_router, tracked};
pub use config::HttpConfig;
pub use state::AppState;
pub use tallyman_app::{App, Clock, ManualClock, SystemClock};
