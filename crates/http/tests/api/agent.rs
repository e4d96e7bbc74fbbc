//! The agent API (`/api/agent/v1`): enrollment, server registration, heartbeats and the
//! install → deliver → acknowledge cycle, and that an agent never reaches another agent's server.

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use tallyman_domain::{LicenseType, Product};
use tallyman_http::auth::{new_token, token_digest};
use tallyman_http::HttpConfig;
use tallyman_license::{default_claims, issue, IssuerKey, TrustStore};
use tallyman_store::testing::{backends, Backend};
use tallyman_store::{EnrollmentToken, ManagedServer, Organization, OrganizationType, TargetKind};
use uuid::Uuid;

use crate::common::*;

fn agent_url(app: &TestApp, path: &str) -> String {
    format!("{}/api/agent/v1{path}", app.base)
}

/// Stores an enrollment token for `org` that expires `valid` from now and returns the token.
async fn enrollment_token(app: &TestApp, org: Uuid, valid: Duration) -> String {
    let token = new_token();
    let now = Utc::now();
    app.store
        .insert_enrollment_token(&EnrollmentToken {
            digest: token_digest(&token),
            organization_uid: org,
            created_at: now,
            expires_at: now + valid,
        })
        .await
        .unwrap();
    token
}

async fn enroll(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.http
        .post(agent_url(app, "/enroll"))
        .json(&json!({"enrollmentToken": token, "name": name}))
        .send()
        .await
        .unwrap()
}

/// Enrolls a new agent of `org` and returns its bearer token.
async fn agent_of(app: &TestApp, org: Uuid) -> String {
    let token = enrollment_token(app, org, Duration::days(1)).await;
    let r = enroll(app, &token, "agent").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    body["agentToken"].as_str().unwrap().to_string()
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(agent_url(app, path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.http
        .get(agent_url(app, path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Registers a Backup & Replication server and returns its uid.
async fn backup_server(app: &TestApp, token: &str) -> Uuid {
    let r = post(
        app,
        token,
        "/servers",
        &json!({"kind": "BackupServer", "name": "vbr-01"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    body["serverUid"].as_str().unwrap().parse().unwrap()
}

async fn heartbeat(app: &TestApp, token: &str, server: Uuid, body: &Value) -> reqwest::Response {
    post(app, token, &format!("/servers/{server}/heartbeat"), body).await
}

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "unexpected status");
    r.json().await.unwrap()
}

/// A server whose trust store holds one issuer key, and that key.
async fn trusting_app(backend: Backend) -> (TestApp, IssuerKey) {
    let key = IssuerKey::generate();
    let mut trust = TrustStore::new();
    trust.add(key.public());
    let app = TestApp::spawn_trusting(backend, HttpConfig::default(), Some(trust), |_| {
        axum::Router::new()
    })
    .await;
    (app, key)
}

/// A fresh Backup & Replication rental license file signed by `key`, and its license id.
fn vbr_license(key: &IssuerKey) -> (String, Uuid) {
    let claims = default_claims(
        Product::BackupAndReplication,
        LicenseType::Rental,
        Utc::now(),
    );
    (issue(&claims, key).unwrap(), claims.license_id)
}

/// An administrator installs `file` on the server through the VSPC API.
async fn admin_install(app: &TestApp, admin: &str, server: Uuid, file: &str) -> Value {
    let part = reqwest::multipart::Part::text(file.to_string()).file_name("server.lic");
    let form = reqwest::multipart::Form::new().part("license", part);
    let r = app
        .http
        .put(app.url(&format!("/licensing/backupServers/{server}")))
        .bearer_auth(admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    json_of(r, 200).await
}

async fn admin_view(app: &TestApp, admin: &str, server: Uuid) -> Value {
    let r = app
        .get(&format!("/licensing/backupServers/{server}"), admin)
        .await;
    json_of(r, 200).await["data"].clone()
}

async fn company(app: &TestApp) -> Organization {
    app.add_org("Northwind", OrganizationType::Company, app.provider.uid)
        .await
}

#[tokio::test]
async fn enrollment_needs_a_live_token() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let org = company(&app).await;

        let good = enrollment_token(&app, org.uid, Duration::days(30)).await;
        let body = json_of(enroll(&app, &good, "vbr-agent").await, 201).await;
        assert_eq!(body["organizationUid"], org.uid.to_string());
        let agent_token = body["agentToken"].as_str().unwrap();
        let agent_uid: Uuid = body["agentUid"].as_str().unwrap().parse().unwrap();
        // Only the digest is kept, and it leads back to this agent.
        let stored = app
            .store
            .agent_by_token(&token_digest(agent_token))
            .await
            .unwrap()
            .expect("agent stored by digest");
        assert_eq!(stored.uid, agent_uid);
        assert_eq!(stored.organization_uid, org.uid);
        assert_eq!(stored.name, "vbr-agent");
        assert_ne!(stored.token_digest, agent_token);
        assert!(app
            .store
            .agent_by_token(agent_token)
            .await
            .unwrap()
            .is_none());
        // The token works for the rest of the API.
        backup_server(&app, agent_token).await;
        // An enrollment token serves a fleet until it expires; each agent gets its own token.
        let second = json_of(enroll(&app, &good, "vone-agent").await, 201).await;
        assert_ne!(second["agentToken"], body["agentToken"]);
        assert_ne!(second["agentUid"], body["agentUid"]);

        let unknown = enroll(&app, &new_token(), "x").await;
        assert!(unknown.headers().contains_key("www-authenticate"));
        let e = error_item(unknown, 401).await;
        assert_eq!(e["type"], "security");

        let expired = enrollment_token(&app, org.uid, Duration::seconds(-1)).await;
        error_item(enroll(&app, &expired, "x").await, 401).await;
        // Expiry follows the server's clock.
        let short = enrollment_token(&app, org.uid, Duration::hours(1)).await;
        app.clock.advance(Duration::hours(2));
        error_item(enroll(&app, &short, "x").await, 401).await;

        let e = error_item(enroll(&app, &good, "  ").await, 400).await;
        assert_eq!(e["propertyName"], "name");
        let r = app
            .http
            .post(agent_url(&app, "/enroll"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_item(r, 400).await["propertyName"], "enrollmentToken");
        app.stop().await;
    }
}

#[tokio::test]
async fn agent_endpoints_take_only_agent_tokens() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let body = json!({"kind": "BackupServer", "name": "vbr"});
        let r = app
            .http
            .post(agent_url(&app, "/servers"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.headers().contains_key("www-authenticate"));
        error_item(r, 401).await;
        error_item(post(&app, &new_token(), "/servers", &body).await, 401).await;
        // A VSPC access token is not an agent token, and the other way round.
        let admin = app.admin_token().await;
        error_item(post(&app, &admin, "/servers", &body).await, 401).await;
        let agent = agent_of(&app, app.provider.uid).await;
        error_item(app.get("/about", &agent).await, 401).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn servers_register_once_per_agent() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let org = company(&app).await;
        let agent = agent_of(&app, org.uid).await;
        let uid = Uuid::new_v4();
        let request = json!({"kind": "BackupServer", "name": "vbr-01", "serverUid": uid});
        let first = json_of(post(&app, &agent, "/servers", &request).await, 201).await;
        assert_eq!(first["serverUid"], uid.to_string());
        assert_eq!(first["kind"], "BackupServer");
        assert_eq!(first["name"], "vbr-01");
        assert_eq!(first["organizationUid"], org.uid.to_string());
        let stored = app.store.server(uid).await.unwrap().unwrap();
        assert_eq!(stored.organization_uid, org.uid);
        assert!(stored.agent_uid.is_some());
        // Registering again is harmless.
        let again = json_of(post(&app, &agent, "/servers", &request).await, 200).await;
        assert_eq!(again, first);
        // The same uid as another kind, or by another agent, is a conflict.
        let as_vone = json!({"kind": "VOneServer", "name": "vbr-01", "serverUid": uid});
        error_item(post(&app, &agent, "/servers", &as_vone).await, 409).await;
        let other = agent_of(&app, org.uid).await;
        error_item(post(&app, &other, "/servers", &request).await, 409).await;

        for (body, property) in [
            (json!({"kind": "Console", "name": "c"}), "kind"),
            (json!({"kind": "Toaster", "name": "c"}), "kind"),
            (json!({"name": "c"}), "kind"),
            (json!({"kind": "BackupServer"}), "name"),
            (
                json!({"kind": "BackupServer", "name": "x".repeat(300)}),
                "name",
            ),
            (
                json!({"kind": "BackupServer", "name": "c", "serverUid": "nope"}),
                "serverUid",
            ),
            (
                json!({"kind": "BackupServer", "name": "c", "serverUid": Uuid::nil()}),
                "serverUid",
            ),
        ] {
            let e = error_item(post(&app, &agent, "/servers", &body).await, 400).await;
            assert_eq!(e["propertyName"], property, "{body}");
        }

        // Cloud Connect sites belong to the provider.
        let site = json!({"kind": "CloudConnectSite", "name": "cc"});
        error_item(post(&app, &agent, "/servers", &site).await, 403).await;
        let provider_agent = agent_of(&app, app.provider.uid).await;
        let body = json_of(post(&app, &provider_agent, "/servers", &site).await, 201).await;
        assert_eq!(body["kind"], "CloudConnectSite");
        assert_eq!(app.store.servers(None).await.unwrap().len(), 2);
        app.stop().await;
    }
}

#[tokio::test]
async fn heartbeats_are_stored_and_touch_the_agent() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let agent = agent_of(&app, app.provider.uid).await;
        let server = backup_server(&app, &agent).await;
        let enrolled = app
            .store
            .agent_by_token(&token_digest(&agent))
            .await
            .unwrap()
            .unwrap();
        app.clock.advance(Duration::hours(1));
        let license_id = Uuid::new_v4();
        let body = json_of(
            heartbeat(
                &app,
                &agent,
                server,
                &json!({
                    "licenseState": "licensed",
                    "licenseIds": [license_id],
                    "usedUnits": 12.5,
                    "usedSockets": 2,
                    "usedCapacity": 0.75,
                    "protectedUsers": 40,
                    "someFutureField": true,
                }),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(body, json!({"pendingLicense": false, "revision": 0}));
        let stored = app.store.server(server).await.unwrap().unwrap();
        assert_eq!(stored.reported["licenseState"], "licensed");
        assert_eq!(stored.reported["licenseIds"], json!([license_id]));
        assert_eq!(stored.reported["usedUnits"], 12.5);
        assert_eq!(stored.reported["usedSockets"], 2.0);
        assert_eq!(stored.reported["usedCapacity"], 0.75);
        assert_eq!(stored.reported["protectedUsers"], 40);
        assert!(stored.last_seen_at.is_some());
        let touched = app
            .store
            .agent_by_token(&token_digest(&agent))
            .await
            .unwrap()
            .unwrap();
        assert!(
            touched.last_seen_at.unwrap() >= enrolled.last_seen_at.unwrap() + Duration::minutes(59),
            "last_seen moved forward"
        );
        // The optional counters may be left out.
        let r = heartbeat(
            &app,
            &agent,
            server,
            &json!({"licenseState": "community", "licenseIds": []}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let stored = app.store.server(server).await.unwrap().unwrap();
        assert_eq!(stored.reported["licenseState"], "community");
        assert_eq!(stored.reported["usedUnits"], Value::Null);
        app.stop().await;
    }
}

#[tokio::test]
async fn reported_counters_show_in_the_vspc_resource() {
    for backend in backends() {
        let (app, key) = trusting_app(backend).await;
        let admin = app.admin_token().await;
        let agent = agent_of(&app, app.provider.uid).await;
        let server = backup_server(&app, &agent).await;
        let (file, _) = vbr_license(&key);
        admin_install(&app, &admin, server, &file).await;
        assert_eq!(admin_view(&app, &admin, server).await["usedUnits"], 0.0);

        let r = heartbeat(
            &app,
            &agent,
            server,
            &json!({"licenseState": "licensed", "licenseIds": [], "usedUnits": 42, "usedCapacity": 1.5}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let view = admin_view(&app, &admin, server).await;
        assert_eq!(view["usedUnits"], 42.0);
        assert_eq!(view["usedCapacity"], 1.5);
        app.stop().await;
    }
}

#[tokio::test]
async fn installed_licenses_are_delivered_and_acknowledged() {
    for backend in backends() {
        let (app, key) = trusting_app(backend).await;
        let admin = app.admin_token().await;
        let agent = agent_of(&app, app.provider.uid).await;
        let server = backup_server(&app, &agent).await;
        let license_path = format!("/servers/{server}/license");
        let ack_path = format!("/servers/{server}/license/ack");
        let idle = json!({"licenseState": "unlicensed", "licenseIds": []});

        // Nothing installed yet.
        let nothing = json_of(get(&app, &agent, &license_path).await, 200).await;
        assert_eq!(
            nothing,
            json!({"revision": 0, "pending": false, "files": [], "community": false})
        );

        let (file, license_id) = vbr_license(&key);
        admin_install(&app, &admin, server, &file).await;

        let beat = json_of(heartbeat(&app, &agent, server, &idle).await, 200).await;
        assert_eq!(beat["pendingLicense"], true);
        let revision = beat["revision"].as_i64().unwrap();
        assert!(revision >= 1);

        let delivery = json_of(get(&app, &agent, &license_path).await, 200).await;
        assert_eq!(delivery["revision"], revision);
        assert_eq!(delivery["pending"], true);
        assert_eq!(delivery["community"], false);
        assert_eq!(delivery["files"].as_array().unwrap().len(), 1);
        assert_eq!(delivery["files"][0]["licenseId"], license_id.to_string());
        assert_eq!(delivery["files"][0]["license"], file);

        // A revision the server never had is stale.
        let stale = json!({"revision": revision + 5, "status": "applied"});
        error_item(post(&app, &agent, &ack_path, &stale).await, 409).await;
        let huge = json!({"revision": i64::MAX, "status": "applied"});
        error_item(post(&app, &agent, &ack_path, &huge).await, 409).await;
        for (bad, property) in [
            (json!({"revision": revision, "status": "maybe"}), "status"),
            (json!({"status": "applied"}), "revision"),
            (json!({"revision": -1, "status": "applied"}), "revision"),
            (json!({"revision": 1.5, "status": "applied"}), "revision"),
            (
                json!({"revision": revision, "status": "failed", "message": "x".repeat(5000)}),
                "message",
            ),
        ] {
            let e = error_item(post(&app, &agent, &ack_path, &bad).await, 400).await;
            assert_eq!(e["propertyName"], property, "{bad}");
        }

        // A failure is recorded and the license stays pending, at a new revision.
        let failed = json!({"revision": revision, "status": "failed", "message": "disk full"});
        let answer = json_of(post(&app, &agent, &ack_path, &failed).await, 200).await;
        assert_eq!(answer["pending"], true);
        let after_failure = answer["revision"].as_i64().unwrap();
        assert_eq!(after_failure, revision + 1);
        let events = app.store.license_events(server).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.action, "agent-ack");
        assert_eq!(last.detail["status"], "failed");
        assert_eq!(last.detail["message"], "disk full");
        // The pre-failure revision can no longer be confirmed.
        let old = json!({"revision": revision, "status": "applied"});
        error_item(post(&app, &agent, &ack_path, &old).await, 409).await;

        let delivery = json_of(get(&app, &agent, &license_path).await, 200).await;
        assert_eq!(delivery["revision"], after_failure);
        assert_eq!(delivery["pending"], true);
        let applied = json!({"revision": after_failure, "status": "applied"});
        let answer = json_of(post(&app, &agent, &ack_path, &applied).await, 200).await;
        assert_eq!(answer["pending"], false);
        let settled = answer["revision"].as_i64().unwrap();
        // A retried acknowledgement gets the same answer and changes nothing.
        let again = json_of(post(&app, &agent, &ack_path, &applied).await, 200).await;
        assert_eq!(again, answer);
        let events_now = app.store.license_events(server).await.unwrap();
        assert_eq!(events_now.len(), events.len() + 1);
        assert_eq!(events_now.last().unwrap().detail["status"], "applied");

        let delivery = json_of(get(&app, &agent, &license_path).await, 200).await;
        assert_eq!(delivery["pending"], false);
        assert_eq!(delivery["revision"], settled);
        let beat = json_of(heartbeat(&app, &agent, server, &idle).await, 200).await;
        assert_eq!(beat, json!({"pendingLicense": false, "revision": settled}));

        // Deleting the license sends the server back to Community Edition, pending again.
        let r = app
            .http
            .delete(app.url(&format!("/licensing/backupServers/{server}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let delivery = json_of(get(&app, &agent, &license_path).await, 200).await;
        assert_eq!(delivery["pending"], true);
        assert_eq!(delivery["community"], true);
        assert_eq!(delivery["files"], json!([]));
        app.stop().await;
    }
}

#[tokio::test]
async fn agents_never_reach_other_servers() {
    for backend in backends() {
        let (app, key) = trusting_app(backend).await;
        let admin = app.admin_token().await;
        let owner = agent_of(&app, app.provider.uid).await;
        let server = backup_server(&app, &owner).await;
        let (file, _) = vbr_license(&key);
        admin_install(&app, &admin, server, &file).await;
        let revision = json_of(
            get(&app, &owner, &format!("/servers/{server}/license")).await,
            200,
        )
        .await["revision"]
            .clone();

        let org = company(&app).await;
        let stranger = agent_of(&app, org.uid).await;
        let beat = json!({"licenseState": "invalid", "licenseIds": [], "usedUnits": 999});
        let ack = json!({"revision": revision, "status": "applied"});
        let unknown = Uuid::new_v4();
        for uid in [server, unknown] {
            error_item(heartbeat(&app, &stranger, uid, &beat).await, 404).await;
            error_item(
                get(&app, &stranger, &format!("/servers/{uid}/license")).await,
                404,
            )
            .await;
            error_item(
                post(
                    &app,
                    &stranger,
                    &format!("/servers/{uid}/license/ack"),
                    &ack,
                )
                .await,
                404,
            )
            .await;
        }
        // Nothing the stranger sent reached the server.
        let stored = app.store.server(server).await.unwrap().unwrap();
        assert_eq!(stored.reported, Value::Null);
        let delivery = json_of(
            get(&app, &owner, &format!("/servers/{server}/license")).await,
            200,
        )
        .await;
        assert_eq!(delivery["pending"], true);

        // Servers added by hand have no agent, so no agent reaches them either.
        let manual = ManagedServer {
            uid: Uuid::new_v4(),
            kind: TargetKind::BackupServer,
            name: "manual".into(),
            organization_uid: app.provider.uid,
            agent_uid: None,
            created_at: Utc::now(),
            last_seen_at: None,
            reported: Value::Null,
        };
        app.store.insert_server(&manual).await.unwrap();
        error_item(heartbeat(&app, &owner, manual.uid, &beat).await, 404).await;
        error_item(
            get(&app, &owner, &format!("/servers/{}/license", manual.uid)).await,
            404,
        )
        .await;
        let e = error_item(get(&app, &owner, "/servers/not-a-uid/license").await, 400).await;
        assert_eq!(e["parameterName"], "serverUid");
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_heartbeats_are_refused_and_nothing_is_stored() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let agent = agent_of(&app, app.provider.uid).await;
        let server = backup_server(&app, &agent).await;
        let many: Vec<Uuid> = (0..17).map(|_| Uuid::new_v4()).collect();
        for (body, property) in [
            (
                json!({"licenseState": "licensed", "licenseIds": [], "usedUnits": -1}),
                "usedUnits",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "usedUnits": "12"}),
                "usedUnits",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "usedUnits": 1e12}),
                "usedUnits",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "usedSockets": 1.5}),
                "usedSockets",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "usedSockets": -2}),
                "usedSockets",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "usedCapacity": -0.1}),
                "usedCapacity",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "usedCapacity": 1e300}),
                "usedCapacity",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "protectedUsers": -3}),
                "protectedUsers",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "protectedUsers": 4.5}),
                "protectedUsers",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": [], "protectedUsers": 1e10}),
                "protectedUsers",
            ),
            (
                json!({"licenseState": "great", "licenseIds": []}),
                "licenseState",
            ),
            (json!({"licenseState": 1, "licenseIds": []}), "licenseState"),
            (json!({"licenseIds": []}), "licenseState"),
            (json!({"licenseState": "licensed"}), "licenseIds"),
            (
                json!({"licenseState": "licensed", "licenseIds": "x"}),
                "licenseIds",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": ["nope"]}),
                "licenseIds",
            ),
            (
                json!({"licenseState": "licensed", "licenseIds": many}),
                "licenseIds",
            ),
        ] {
            let e = error_item(heartbeat(&app, &agent, server, &body).await, 400).await;
            assert_eq!(e["propertyName"], property, "{body}");
        }
        // JSON has no NaN; a body that tries is not JSON at all.
        let r = app
            .http
            .post(agent_url(&app, &format!("/servers/{server}/heartbeat")))
            .bearer_auth(&agent)
            .header("content-type", "application/json")
            .body(r#"{"licenseState":"licensed","licenseIds":[],"usedUnits":NaN}"#)
            .send()
            .await
            .unwrap();
        error_item(r, 400).await;
        let e = error_item(heartbeat(&app, &agent, server, &json!([1, 2])).await, 400).await;
        assert!(e["message"].as_str().unwrap().contains("object"));

        let stored = app.store.server(server).await.unwrap().unwrap();
        assert_eq!(stored.reported, Value::Null);
        assert_eq!(stored.last_seen_at, None);
        app.stop().await;
    }
}

#[tokio::test]
async fn an_invalid_license_state_turns_the_status_to_error() {
    for backend in backends() {
        let (app, key) = trusting_app(backend).await;
        let admin = app.admin_token().await;
        let agent = agent_of(&app, app.provider.uid).await;
        let server = backup_server(&app, &agent).await;
        let (file, license_id) = vbr_license(&key);
        admin_install(&app, &admin, server, &file).await;

        let licensed = json!({"licenseState": "licensed", "licenseIds": [license_id]});
        assert_eq!(
            heartbeat(&app, &agent, server, &licensed).await.status(),
            200
        );
        let before = admin_view(&app, &admin, server).await;
        assert_ne!(before["status"], "Error", "{before}");

        let invalid = json!({"licenseState": "invalid", "licenseIds": [license_id]});
        assert_eq!(
            heartbeat(&app, &agent, server, &invalid).await.status(),
            200
        );
        assert_eq!(admin_view(&app, &admin, server).await["status"], "Error");

        // The next good heartbeat clears it.
        assert_eq!(
            heartbeat(&app, &agent, server, &licensed).await.status(),
            200
        );
        assert_eq!(
            admin_view(&app, &admin, server).await["status"],
            before["status"]
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn provider_agents_report_console_managed_agents() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let admin = app.admin_token().await;
        let provider_agent = agent_of(&app, app.provider.uid).await;
        let acme = company(&app).await;
        let company_agent = agent_of(&app, acme.uid).await;
        let console = Uuid::nil();
        let sample = json!({"workloads": [
            {"organizationUid": acme.uid, "workloadType": "VAC_Server_Agent", "platform": "Windows", "used": 4},
            {"organizationUid": acme.uid, "workloadType": "VAC_Workstation_Agent", "platform": "Windows", "used": 10}
        ]});
        let r = post(
            &app,
            &provider_agent,
            &format!("/servers/{console}/usage"),
            &sample,
        )
        .await;
        assert_eq!(json_of(r, 200).await["stored"], 2);
        // A company's agent cannot speak for the console.
        let r = post(
            &app,
            &company_agent,
            &format!("/servers/{console}/usage"),
            &sample,
        )
        .await;
        assert_eq!(r.status(), 404);

        let r = app
            .get(
                &format!(
                    "/licensing/usage/organizations?serverType=VSPC&organizationUid={}",
                    acme.uid
                ),
                &admin,
            )
            .await;
        let body = json_of(r, 200).await;
        let servers = &body["data"][0]["servers"];
        assert_eq!(servers[0]["serverType"], "VSPC", "{body}");
        assert_eq!(servers[0]["serverUid"], console.to_string());
        // Default weights: 4 × 11 + 10 × 4.
        let units: f64 = servers[0]["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["usedUnits"].as_f64().unwrap())
            .sum();
        assert_eq!(units, 84.0, "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test]
async fn clones_old_versions_and_enterprise_manager_are_reported_and_respected() {
    use tallyman_app::reports::generate_month;
    use tallyman_app::Month;
    use tallyman_http::Clock;

    for backend in backends() {
        let (app, key) = trusting_app(backend).await;
        let admin = app.admin_token().await;
        let acme = company(&app).await;
        let agent = agent_of(&app, acme.uid).await;
        let mut uids = Vec::new();
        for name in ["vbr-a", "vbr-b", "vbr-old", "vbr-fine"] {
            let r = post(
                &app,
                &agent,
                "/servers",
                &json!({"kind": "BackupServer", "name": name}),
            )
            .await;
            uids.push(
                json_of(r, 201).await["serverUid"]
                    .as_str()
                    .unwrap()
                    .parse::<Uuid>()
                    .unwrap(),
            );
        }
        let (a, b, old, fine) = (uids[0], uids[1], uids[2], uids[3]);
        let beat = |installation: &str, version: &str| json!({"licenseState": "community", "licenseIds": [], "installationId": installation, "productVersion": version});
        for (server, body) in [
            (a, beat("INST-1", "12.3.1")),
            (b, beat("INST-1", "12.3.1")),
            (old, beat("INST-2", "11.0.1")),
            (fine, beat("INST-3", "13.0.0")),
        ] {
            let r = heartbeat(&app, &agent, server, &body).await;
            assert_eq!(r.status(), 200);
        }
        // Bad values are named.
        let r = heartbeat(&app, &agent, a, &json!({"licenseState": "community", "licenseIds": [], "managedByEnterpriseManager": "yes"})).await;
        let e = error_item(r, 400).await;
        assert_eq!(e["propertyName"], "managedByEnterpriseManager");

        // Last month's usage on all four.
        let month = Month::of(app.clock.now()).previous();
        for server in [a, b, old, fine] {
            let r = post(
                &app,
                &agent,
                &format!("/servers/{server}/usage"),
                &json!({"sampledAt": month.start() + Duration::days(3), "workloads": [{"workloadType": "VBR_VM", "used": 10}]}),
            )
            .await;
            assert_eq!(r.status(), 200);
        }
        generate_month(&app.store, month, app.clock.now(), &|_, _| {})
            .await
            .unwrap();
        let r = app
            .get(&format!("/licensing/reports/{month}"), &admin)
            .await;
        let reports = json_of(r, 200).await;
        let report = &reports["data"][0];
        let detail = &report["usageDetails"][0];
        let mut cloned: Vec<String> = detail["clonedClientServers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        cloned.sort();
        assert_eq!(cloned, ["vbr-a", "vbr-b"], "{backend:?}: {detail}");
        assert_eq!(detail["unsupportedClientServers"], json!(["vbr-old"]));
        // Only the healthy server is counted: 10 VMs × 11.
        assert_eq!(report["reportSummary"]["totalPoints"], 110.0, "{report}");

        // A server governed by Enterprise Manager refuses licenses installed here.
        let r = heartbeat(&app, &agent, fine, &json!({"licenseState": "licensed", "licenseIds": [], "managedByEnterpriseManager": true})).await;
        assert_eq!(r.status(), 200);
        let (file, _) = vbr_license(&key);
        let part = reqwest::multipart::Part::text(file).file_name("server.lic");
        let r = app
            .http
            .put(app.url(&format!("/licensing/backupServers/{fine}")))
            .bearer_auth(&admin)
            .multipart(reqwest::multipart::Form::new().part("license", part))
            .send()
            .await
            .unwrap();
        let e = error_item(r, 400).await;
        assert_eq!(e["code"], 1300);
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("Enterprise Manager"),
            "{e}"
        );
        app.stop().await;
    }
}
