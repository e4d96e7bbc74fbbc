//! Tallyman's HTTP layer: the VSPC REST API v3 wire format (envelope, errors, query
//! parameters), OAuth2-style tokens, roles and tenant scope, `X-Request-id` idempotency and
//! async actions. It knows HTTP and nothing about SQL; storage is behind `tallyman_store::Store`.

pub mod about;
pub mod agent;
pub mod agent_usage;
pub mod app;
pub mod async_actions;
pub mod auth;
pub mod clock;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod licensing;
pub mod metrics;
pub mod openapi;
pub mod portal;
pub mod query;
pub mod reporting;
pub mod reports;
pub mod select;
pub mod server;
pub mod token;
pub mod usage;
pub mod users;
pub mod wire;

pub use app::{router, router_with, serve, serve_router, tracked, AppState, HttpConfig};
pub use clock::{Clock, ManualClock, SystemClock};
