//! End-to-end tests of the HTTP API: the real server on a loopback port over a fresh database,
//! once per backend (SQLite always, PostgreSQL with TALLYMAN_TEST_PG).

mod agent;
mod async_actions;
mod auth;
mod common;
mod envelope;
mod hardening;
mod licensing;
mod list_index;
mod multinode;
mod openapi;
mod organizations;
mod paging;
mod reports;
