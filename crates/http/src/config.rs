//! The wire layer's settings ([`HttpConfig`]) and their defaults. `serve` builds them from
//! flags, environment and the config file.

use chrono::Duration;

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
            access_token_ttl: default_access_ttl(),
            refresh_token_ttl: default_refresh_ttl(),
            login_max_failures: 5,
            login_window: Duration::minutes(15),
            max_page_size: 500,
            public_url: None,
            report_finalize_day: 3,
            server: crate::server::ServerLimits::default(),
        }
    }
}

/// How long an access token lives.
pub fn default_access_ttl() -> Duration {
    Duration::seconds(3600)
}

/// How long a refresh token lives.
pub fn default_refresh_ttl() -> Duration {
    Duration::hours(48)
}
