//! The listener under hostile clients: requests hyper refuses before routing still get VSPC
//! errors, slow and idle connections are closed, the connection cap holds and recovers, and a
//! broken chunked body is a 400.

use std::time::Duration;

use axum::Router;
use serde_json::Value;
use tallyman_http::server::ServerLimits;
use tallyman_http::HttpConfig;
use tallyman_store::testing::backends;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Sends `raw` on a fresh connection and reads until the server closes it (bounded).
async fn exchange(app: &TestApp, raw: &[u8]) -> (u16, String, Value) {
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(raw).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status: u16 = head[9..12].parse().unwrap();
    let body: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, head.to_ascii_lowercase(), body)
}

fn assert_vspc_error(status: u16, head: &str, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let e = &body["errors"][0];
    assert_eq!(e["code"], i64::from(expected), "{body}");
    assert!(e["message"].is_string() && e["type"].is_string(), "{body}");
}

#[tokio::test]
async fn requests_refused_before_routing_get_vspc_errors() {
    let app = TestApp::spawn(backends()[0]).await;
    let long = format!(
        "GET /api/v3/about?filter={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let (s, h, b) = exchange(&app, long.as_bytes()).await;
    assert_vspc_error(s, &h, &b, 414);

    let (s, h, b) = exchange(&app, b"NOT A REQUEST\r\n\r\n").await;
    assert_vspc_error(s, &h, &b, 400);

    let bad_length = b"POST /api/v3/token HTTP/1.1\r\nHost: x\r\nContent-Length: twelve\r\n\r\nabc";
    let (s, h, b) = exchange(&app, bad_length).await;
    assert_vspc_error(s, &h, &b, 400);

    let huge_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    let (s, h, b) = exchange(&app, huge_header.as_bytes()).await;
    assert_vspc_error(s, &h, &b, 431);

    let broken_chunks = b"POST /api/v3/token HTTP/1.1\r\nHost: x\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
        zz\r\ngrant_type=password\r\n0\r\n\r\n";
    let (s, h, b) = exchange(&app, broken_chunks).await;
    assert_vspc_error(s, &h, &b, 400);
    app.stop().await;
}

/// hyper reads request targets up to 65,534 bytes (a fixed limit); anything within it reaches
/// the router and its query validation.
#[tokio::test]
async fn long_filters_within_the_uri_limit_reach_the_query_engine() {
    let app = TestApp::spawn(backends()[0]).await;
    let token = app.admin_token().await;
    let long = "a".repeat(65_000);
    let r = app
        .http
        .get(app.url("/licensing/backupServers"))
        .query(&[("filter", long.as_str())])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let e = error_item(r, 400).await;
    assert_eq!(e["parameterName"], "filter");
    app.stop().await;
}

/// Past hyper's URI limit, an over-long collection parameter still gets the documented 400 on
/// that parameter (clients built on the `http` crate cannot even send such a URI; others can).
#[tokio::test]
async fn a_filter_value_over_the_limit_is_a_400_on_that_parameter() {
    let app = TestApp::spawn(backends()[0]).await;
    let token = app.admin_token().await;
    let long = "a".repeat(tallyman_query::MAX_VALUE_CHARS + 1);
    let request = format!(
        "GET /api/v3/licensing/backupServers?limit=5&filter={long} HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    let (s, h, b) = exchange(&app, request.as_bytes()).await;
    assert_vspc_error(s, &h, &b, 400);
    assert_eq!(b["errors"][0]["parameterName"], "filter");
    // Over-long, but no parameter over the limit: the URI limit itself.
    let request = format!("GET /api/v3/about?x={long} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (s, h, b) = exchange(&app, request.as_bytes()).await;
    assert_vspc_error(s, &h, &b, 414);
    app.stop().await;
}

fn short_limits(max_connections: usize) -> HttpConfig {
    HttpConfig {
        server: ServerLimits {
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(1),
            max_connections,
        },
        ..HttpConfig::default()
    }
}

#[tokio::test]
async fn half_sent_requests_are_not_held() {
    let app = TestApp::spawn_with(backends()[0], short_limits(64), |_| Router::new()).await;
    let addr = app.base.trim_start_matches("http://").to_string();

    // A head that never ends: the connection is closed.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "a half-sent head kept its connection");

    // A body that never completes: 408 as a VSPC error.
    let (s, h, b) = exchange(
        &app,
        b"POST /api/v3/token HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant",
    )
    .await;
    assert_vspc_error(s, &h, &b, 408);
    app.stop().await;
}

#[tokio::test]
async fn idle_connections_cannot_lock_out_health() {
    let app = TestApp::spawn_with(backends()[0], short_limits(8), |_| Router::new()).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Every slot is taken by a silent client; they time out and /health answers.
    let health = tokio::time::timeout(
        Duration::from_secs(20),
        app.http.get(format!("{}/health", app.base)).send(),
    )
    .await
    .expect("/health answered once idle connections timed out")
    .unwrap();
    assert_eq!(health.status(), 200);
    drop(idle);
    app.stop().await;
}
