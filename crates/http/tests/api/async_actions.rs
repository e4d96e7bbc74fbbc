//! Async actions and `X-Request-id` idempotency (conventions §10, cases 38–45), driven through
//! a test operation whose pace the test controls, mounted behind the same tracking layer as
//! every async-capable operation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use chrono::Duration;
use serde_json::{json, Value};
use tallyman_http::{tracked, AppState, HttpConfig};
use tallyman_store::testing::{backends, Backend};
use tallyman_store::Role;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::common::*;

/// An operation that counts its executions and finishes only when the test releases it.
#[derive(Clone)]
struct Gate {
    executions: Arc<AtomicUsize>,
    permits: Arc<Semaphore>,
}

impl Gate {
    fn new() -> Self {
        Self {
            executions: Arc::new(AtomicUsize::new(0)),
            permits: Arc::new(Semaphore::new(0)),
        }
    }
    fn open(&self) {
        self.permits.add_permits(1000);
    }
    fn runs(&self) -> usize {
        self.executions.load(Ordering::SeqCst)
    }
}

async fn spawn_gated(backend: Backend, config: HttpConfig, gate: &Gate) -> TestApp {
    let g = gate.clone();
    TestApp::spawn_with(backend, config, move |state: &AppState| {
        let handler = move || {
            let g = g.clone();
            async move {
                let n = g.executions.fetch_add(1, Ordering::SeqCst) + 1;
                if let Ok(p) = g.permits.acquire().await {
                    p.forget();
                }
                axum::Json(json!({"data": {"executions": n}}))
            }
        };
        Router::new().route(
            "/test/gated",
            tracked(
                state,
                "GatedTestOperation",
                get(handler.clone()).post(handler),
            ),
        )
    })
    .await
}

/// Polls an action until it leaves `running` (bounded: 200 × 25 ms).
async fn wait_done(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..200 {
        let r = app.get(&format!("/asyncActions/{id}"), token).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        if body["data"]["status"] != "running" {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("action {id} did not finish");
}

#[tokio::test]
async fn forced_async_answers_202_and_the_result_is_the_synchronous_envelope() {
    for backend in backends() {
        let config = HttpConfig {
            force_async: true,
            ..HttpConfig::default()
        };
        let app = TestApp::spawn_with(backend, config, |_| Router::new()).await;
        let token = app.admin_token().await;
        let id = Uuid::new_v4().to_string();
        let r = app
            .http
            .get(app.url("/about?limit=5"))
            .bearer_auth(&token)
            .header("X-Request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with("http://"), "absolute: {location}");
        assert!(
            location.ends_with(&format!("/api/v3/asyncActions/{id}")),
            "{location}"
        );
        let accepted: Value = r.json().await.unwrap();
        assert_eq!(accepted["data"]["id"], id.as_str());

        let info = wait_done(&app, &token, &id).await;
        assert_eq!(info["data"]["status"], "succeed");
        assert_eq!(info["data"]["actionName"], "GetAboutInformation");
        assert_eq!(info["data"]["queryParameters"], json!({"limit": ["5"]}));
        assert!(info["data"]["initiatorUid"].is_string());

        let r = app.get(&format!("/asyncActions/{id}/result"), &token).await;
        assert_eq!(r.status(), 200);
        let result: Value = r.json().await.unwrap();
        assert!(result["data"]["serverVersion"]
            .as_str()
            .unwrap()
            .starts_with("9.1."));

        // The action list shows it; select trims it.
        let list: Value = app.get("/asyncActions", &token).await.json().await.unwrap();
        assert_eq!(list["meta"]["pagingInfo"]["total"], 1);
        assert_eq!(list["data"][0]["id"], id.as_str());

        // Clearing the result leaves an EmptyResponse and no result.
        let r = app
            .http
            .delete(app.url(&format!("/asyncActions/{id}/result")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let empty: Value = r.json().await.unwrap();
        assert_eq!(empty["errors"], json!([]));
        assert!(empty["data"].is_object());
        error_item(
            app.get(&format!("/asyncActions/{id}/result"), &token).await,
            404,
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn actions_are_private_to_their_user_and_config_is_readable() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let token = app.admin_token().await;
        let id = Uuid::new_v4().to_string();
        let r = app
            .http
            .get(app.url("/about"))
            .bearer_auth(&token)
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Recorded even though it answered synchronously.
        assert_eq!(
            app.get(&format!("/asyncActions/{id}"), &token)
                .await
                .status(),
            200
        );
        error_item(
            app.get(&format!("/asyncActions/{}", Uuid::new_v4()), &token)
                .await,
            404,
        )
        .await;

        app.add_user(
            "operator",
            Role::PortalOperator,
            app.provider.uid,
            "op-password",
        )
        .await;
        let other = app.token("operator", "op-password").await;
        error_item(app.get(&format!("/asyncActions/{id}"), &other).await, 404).await;
        error_item(
            app.get(&format!("/asyncActions/{id}/result"), &other).await,
            404,
        )
        .await;

        let config: Value = app
            .get("/asyncActions/config", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(config, json!({"data": {"resultRetentionTime": 300}}));
        app.stop().await;
    }
}

#[tokio::test]
async fn a_slow_operation_becomes_an_action_that_can_be_cancelled() {
    for backend in backends() {
        let gate = Gate::new();
        let config = HttpConfig {
            async_budget: Duration::milliseconds(100),
            ..HttpConfig::default()
        };
        let app = spawn_gated(backend, config, &gate).await;
        let token = app.admin_token().await;
        let id = Uuid::new_v4().to_string();
        let send = || {
            app.http
                .get(app.url("/test/gated"))
                .bearer_auth(&token)
                .header("X-Request-id", &id)
                .send()
        };
        let r = send().await.unwrap();
        assert_eq!(r.status(), 202);
        // A repeat while it runs points at the same action and runs nothing new.
        let again = send().await.unwrap();
        assert_eq!(again.status(), 202);
        assert!(again.headers()["location"].to_str().unwrap().ends_with(&id));
        assert_eq!(gate.runs(), 1);

        let r = app
            .http
            .delete(app.url(&format!("/asyncActions/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let empty: Value = r.json().await.unwrap();
        assert_eq!(empty["errors"], json!([]));
        gate.open();
        let info: Value = app
            .get(&format!("/asyncActions/{id}"), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(info["data"]["status"], "canceled");
        let e = error_item(
            app.get(&format!("/asyncActions/{id}/result"), &token).await,
            400,
        )
        .await;
        assert_eq!(e["code"], 1050);
        // Cancelling a finished action is refused.
        let r = app
            .http
            .delete(app.url(&format!("/asyncActions/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(error_item(r, 400).await["code"], 1000);
        app.stop().await;
    }
}

#[tokio::test]
async fn without_a_request_id_a_slow_operation_still_gets_an_action() {
    for backend in backends() {
        let gate = Gate::new();
        let config = HttpConfig {
            async_budget: Duration::milliseconds(100),
            ..HttpConfig::default()
        };
        let app = spawn_gated(backend, config, &gate).await;
        let token = app.admin_token().await;
        let r = app.get("/test/gated", &token).await;
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let id = location.rsplit('/').next().unwrap().to_string();
        assert!(Uuid::parse_str(&id).is_ok());
        let e = error_item(
            app.get(&format!("/asyncActions/{id}/result"), &token).await,
            400,
        )
        .await;
        assert_eq!(e["code"], 1000, "not finished yet");
        gate.open();
        let info = wait_done(&app, &token, &id).await;
        assert_eq!(info["data"]["status"], "succeed");
        let result: Value = app
            .get(&format!("/asyncActions/{id}/result"), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(result, json!({"data": {"executions": 1}}));

        // Request data can be attached to a known action.
        let r = app
            .http
            .put(app.url(&format!("/asyncActions/{id}/requestData")))
            .bearer_auth(&token)
            .json(&json!({"requestBody": "{}", "queryParameters": {"limit": ["10"]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let info: Value = r.json().await.unwrap();
        assert_eq!(info["data"]["requestBody"], "{}");
        assert_eq!(info["data"]["queryParameters"], json!({"limit": ["10"]}));
        let r = app
            .http
            .put(app.url(&format!("/asyncActions/{id}/requestData")))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        error_item(r, 400).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn a_repeated_request_id_replays_the_first_answer_once() {
    for backend in backends() {
        let gate = Gate::new();
        gate.open();
        let app = spawn_gated(backend, HttpConfig::default(), &gate).await;
        let token = app.admin_token().await;
        let id = Uuid::new_v4().to_string();
        let post = |body: &'static str| {
            app.http
                .post(app.url("/test/gated"))
                .bearer_auth(&token)
                .header("X-Request-id", &id)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
        };
        let first = post("[1]").await.unwrap();
        assert_eq!(first.status(), 200);
        let first = first.bytes().await.unwrap();
        let second = post("[1]").await.unwrap();
        assert_eq!(second.status(), 200);
        assert_eq!(
            second.bytes().await.unwrap(),
            first,
            "byte-identical replay"
        );
        assert_eq!(gate.runs(), 1, "executed once");

        // Same id, different request.
        let e = error_item(post("[2]").await.unwrap(), 409).await;
        assert_eq!(e["parameterName"], "X-Request-id");
        assert_eq!(gate.runs(), 1);

        // Not a UUID.
        let r = app
            .http
            .get(app.url("/test/gated"))
            .bearer_auth(&token)
            .header("X-Request-id", "12345")
            .send()
            .await
            .unwrap();
        assert_eq!(error_item(r, 400).await["parameterName"], "X-Request-id");
        assert_eq!(gate.runs(), 1);

        // Another user may use the same id independently.
        app.add_user("op", Role::PortalOperator, app.provider.uid, "op-password")
            .await;
        let other = app.token("op", "op-password").await;
        let r = app
            .http
            .post(app.url("/test/gated"))
            .bearer_auth(&other)
            .header("X-Request-id", &id)
            .body("[2]")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(gate.runs(), 2);

        // After the five-minute window the id is free again.
        app.clock.advance(Duration::minutes(6));
        let token = app.admin_token().await;
        let r = app
            .http
            .post(app.url("/test/gated"))
            .bearer_auth(&token)
            .header("X-Request-id", &id)
            .body("[2]")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(gate.runs(), 3);
        app.stop().await;
    }
}

/// Large reads with fresh X-Request-ids keep their records but not their answers, so they do
/// not grow the database; a repeat runs the read again and gives the same answer.
#[tokio::test]
async fn large_read_answers_are_not_kept_for_replay() {
    for backend in backends() {
        let executions = Arc::new(AtomicUsize::new(0));
        let counted = executions.clone();
        let app = TestApp::spawn_with(backend, HttpConfig::default(), move |state: &AppState| {
            Router::new().route(
                "/big",
                tracked(
                    state,
                    "GetBig",
                    get(move || {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async { axum::Json(json!({"data": "x".repeat(200_000)})) }
                    }),
                ),
            )
        })
        .await;
        let token = app.admin_token().await;
        let admin = app.store.user_by_name("admin").await.unwrap().unwrap();
        let id = Uuid::new_v4();
        let send = || {
            app.http
                .get(app.url("/big"))
                .bearer_auth(&token)
                .header("X-Request-id", id.to_string())
                .send()
        };
        let first = send().await.unwrap();
        assert_eq!(first.status(), 200);
        let first = first.bytes().await.unwrap();
        let record = app
            .store
            .action(admin.uid, id, chrono::Utc::now())
            .await
            .unwrap()
            .expect("the read is still an action");
        assert_eq!(record.status, tallyman_store::ActionStatus::Succeed);
        assert!(
            record.response.is_none(),
            "{backend:?}: the answer was kept"
        );

        let again = send().await.unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.bytes().await.unwrap(), first);
        assert_eq!(
            executions.load(Ordering::SeqCst),
            2,
            "the repeat runs again"
        );

        // A small read keeps its answer and replays it without running again.
        let small = Uuid::new_v4();
        let r = app
            .http
            .get(app.url("/about"))
            .bearer_auth(&token)
            .header("X-Request-id", small.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let kept = app
            .store
            .action(admin.uid, small, chrono::Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert!(kept.response.is_some());
        app.stop().await;
    }
}
