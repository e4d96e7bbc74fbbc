//! Two Tallyman nodes over one database (what several nodes on one PostgreSQL look like; the
//! same holds on one SQLite file): a token from one works on the other, an `X-Request-id` sent to
//! the second node replays the first node's answer, and a license change made through one node
//! shows at once in the other's cached license list.

use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;
use tallyman_domain::{LicenseType, Product};
use tallyman_http::{AppState, Clock, HttpConfig, SystemClock};
use tallyman_license::TrustStore;
use tallyman_store::testing::backends;
use tallyman_store::TargetKind;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::common::*;
use crate::licensing::{add_server, claims_expiring, put_file, Issuer};

/// A second node: its own store connection and state over the first node's database.
struct Node {
    base: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    async fn start(app: &TestApp, trust: TrustStore) -> Node {
        let store = tallyman_store::connect(&app.db.url).await.unwrap();
        let state = AppState::new(store, Arc::new(SystemClock), HttpConfig::default())
            .await
            .unwrap()
            .with_trust(trust);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api/v3", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(tallyman_http::serve(listener, state, async {
            let _ = rx.await;
        }));
        Node {
            base,
            shutdown: Some(tx),
            server,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn two_nodes_share_tokens_idempotency_and_license_state() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let node2 = Node::start(&app, [issuer.key.public()].into_iter().collect()).await;
        let token = app.admin_token().await;

        // A token issued by node 1 authorizes node 2.
        let r = app
            .http
            .get(format!("{}/about", node2.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");

        // Node 2 renders (and caches) the list first.
        let server = add_server(
            &app,
            TargetKind::BackupServer,
            app.provider.uid,
            "vbr-shared",
        )
        .await;
        let list = |base: String| {
            let http = app.http.clone();
            let token = token.clone();
            async move {
                let body: Value = http
                    .get(format!("{base}/licensing/backupServers"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                body["data"][0].clone()
            }
        };
        assert_eq!(list(node2.base.clone()).await["status"], "Unknown");

        // Install through node 1, with an X-Request-id.
        let now = app.clock.now();
        let claims = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now - Duration::days(1),
            now + Duration::days(200),
        );
        let file = issuer.sign(&claims).into_bytes();
        let request_id = Uuid::new_v4().to_string();
        let form = || {
            reqwest::multipart::Form::new().part(
                "license",
                reqwest::multipart::Part::bytes(file.clone()).file_name("a.lic"),
            )
        };
        let first = app
            .http
            .put(app.url(&format!("/licensing/backupServers/{server}")))
            .bearer_auth(&token)
            .header("X-Request-id", &request_id)
            .multipart(form())
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 200);
        let first = first.bytes().await.unwrap();

        // Node 2's cached list sees the change at once.
        let seen = list(node2.base.clone()).await;
        assert_eq!(seen["status"], "Valid", "{backend:?}: {seen}");
        assert_eq!(seen["licenseIds"][0], claims.license_id.to_string());

        // The same request sent to node 2 (a retry through another node, with a fresh
        // multipart boundary) replays node 1's answer and installs nothing new.
        let replay = app
            .http
            .put(format!("{}/licensing/backupServers/{server}", node2.base))
            .bearer_auth(&token)
            .header("X-Request-id", &request_id)
            .multipart(form())
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 200);
        assert_eq!(replay.bytes().await.unwrap(), first, "{backend:?}");
        let installs = app
            .store
            .license_events(server)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "install")
            .count();
        assert_eq!(installs, 1, "{backend:?}: installed once");

        // A second install through node 2 is also seen by node 1.
        let r = put_file(
            &app,
            &token,
            &format!("/licensing/backupServers/{server}"),
            "license",
            file.clone(),
        )
        .await;
        assert_eq!(r.status(), 200);
        let r = app
            .http
            .get(format!("{}/licensing/backupServers/{server}", node2.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        node2.stop().await;
        app.stop().await;
    }
}
