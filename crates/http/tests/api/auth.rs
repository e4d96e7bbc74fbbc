//! Authentication: the token endpoint (conventions §10, cases 1–14), bearer handling, roles,
//! read-only tokens and the failed-login throttle.

use chrono::Duration;
use serde_json::Value;
use tallyman_store::testing::backends;
use tallyman_store::{OrganizationType, Role};

use crate::common::*;

#[tokio::test]
async fn password_grant_returns_a_bare_oauth2_result() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let body = app.login("admin", ADMIN_PASSWORD).await;
        assert!(body["access_token"].is_string());
        assert!(body["refresh_token"].is_string());
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 3600);
        assert!(body["expires_in"].is_i64());
        assert_eq!(body["mfa_token"], Value::Null);
        assert_eq!(body["encrypted_code"], Value::Null);
        assert!(body.get("data").is_none(), "no envelope on /token");
        // User names are matched ignoring case.
        app.login("ADMIN", ADMIN_PASSWORD).await;
        app.stop().await;
    }
}

async fn token_error(app: &TestApp, form: &[(&str, &str)]) -> Value {
    let r = app
        .http
        .post(app.url("/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error_description"].is_string());
    assert_eq!(body["error_uri"], Value::Null);
    body
}

#[tokio::test]
async fn token_endpoint_errors_use_oauth2_error() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let wrong = token_error(
            &app,
            &[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", "nope"),
            ],
        )
        .await;
        assert_eq!(wrong["error"], "invalid_request");
        let unknown_user = token_error(
            &app,
            &[
                ("grant_type", "password"),
                ("username", "ghost"),
                ("password", "nope"),
            ],
        )
        .await;
        assert_eq!(
            unknown_user["error_description"],
            wrong["error_description"]
        );
        assert_eq!(
            token_error(&app, &[("grant_type", "foo")]).await["error"],
            "unsupported_grant_type"
        );
        assert_eq!(
            token_error(&app, &[("grant_type", "mfa")]).await["error"],
            "unsupported_grant_type"
        );
        assert_eq!(
            token_error(&app, &[("username", "admin"), ("password", ADMIN_PASSWORD)]).await
                ["error"],
            "invalid_request"
        );
        assert_eq!(
            token_error(
                &app,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "garbage")
                ]
            )
            .await["error"],
            "invalid_grant"
        );
        let long = "x".repeat(129);
        assert_eq!(
            token_error(
                &app,
                &[
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", &long)
                ]
            )
            .await["error"],
            "invalid_request"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn empty_fields_multipart_and_refresh_are_accepted() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        // Every key present, the unused ones empty (as form-building clients send them).
        let r = app
            .http
            .post(app.url("/token"))
            .header("Authorization", "Bearer ")
            .header("X-Client-Version", "3.6.1")
            .body(format!(
                "grant_type=password&username=admin&password={ADMIN_PASSWORD}&refresh_token=&mfa_token=&mfa_code=&code=&public_key=&userUid="
            ))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        let form = reqwest::multipart::Form::new()
            .text("grant_type", "password")
            .text("username", "admin")
            .text("password", ADMIN_PASSWORD);
        let r = app
            .http
            .post(app.url("/token"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let first: Value = r.json().await.unwrap();

        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let refreshed: Value = r.json().await.unwrap();
        assert_ne!(refreshed["access_token"], first["access_token"]);
        let about = app
            .get("/about", refreshed["access_token"].as_str().unwrap())
            .await;
        assert_eq!(about.status(), 200);
        app.stop().await;
    }
}

#[tokio::test]
async fn bearer_tokens_are_checked_on_every_route() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let token = app.admin_token().await;

        let r = app.http.get(app.url("/about")).send().await.unwrap();
        let www = r
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(www.starts_with("Bearer"), "{www}");
        let e = error_item(r, 401).await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_i64()),
            (Some("security"), Some(401))
        );

        let e = error_item(app.get("/about", "garbage").await, 401).await;
        assert_eq!(e["type"], "security");

        // Lower-case scheme works.
        let r = app
            .http
            .get(app.url("/about"))
            .header("Authorization", format!("bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // A refresh token is not an access token.
        let pair = app.login("admin", ADMIN_PASSWORD).await;
        let e = error_item(
            app.get("/about", pair["refresh_token"].as_str().unwrap())
                .await,
            401,
        )
        .await;
        assert_eq!(e["code"], 401);

        // Expiry: one hour later the access token is refused, the refresh token still works.
        app.clock.advance(Duration::seconds(3601));
        error_item(app.get("/about", &token).await, 401).await;
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", pair["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // After 48 hours the refresh token is gone too.
        app.clock.advance(Duration::hours(48));
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", pair["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        app.stop().await;
    }
}

#[tokio::test]
async fn revoking_tokens_logs_a_user_out_and_needs_the_right_role() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let admin = app.admin_token().await;
        let reseller = app
            .add_org("Reseller", OrganizationType::Reseller, app.provider.uid)
            .await;
        let bob = app
            .add_user(
                "bob",
                Role::ServiceProviderAdministrator,
                reseller.uid,
                "bob-password",
            )
            .await;
        let bob_token = app.token("bob", "bob-password").await;
        let admin_user = app.store.user_by_name("admin").await.unwrap().unwrap();

        // Bob may not log the admin out.
        let r = app
            .http
            .delete(app.url(&format!("/users/{}/tokens", admin_user.uid)))
            .bearer_auth(&bob_token)
            .send()
            .await
            .unwrap();
        assert_eq!(error_item(r, 403).await["type"], "security");
        assert_eq!(app.get("/about", &admin).await.status(), 200);

        // The admin may log Bob out.
        let r = app
            .http
            .delete(app.url(&format!("/users/{}/tokens?userLoginId=1", bob.uid)))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            serde_json::json!({"data": true})
        );
        error_item(app.get("/about", &bob_token).await, 401).await;
        assert_eq!(app.get("/about", &admin).await.status(), 200);

        let r = app
            .http
            .delete(app.url(&format!("/users/{}/tokens", uuid::Uuid::new_v4())))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        error_item(r, 404).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn read_only_tokens_may_only_read() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("readOnly", "true"),
            ])
            .send()
            .await
            .unwrap();
        let ro: Value = r.json().await.unwrap();
        let ro = ro["access_token"].as_str().unwrap();
        assert_eq!(app.get("/about", ro).await.status(), 200);
        let admin_user = app.store.user_by_name("admin").await.unwrap().unwrap();
        let r = app
            .http
            .delete(app.url(&format!("/users/{}/tokens", admin_user.uid)))
            .bearer_auth(ro)
            .send()
            .await
            .unwrap();
        assert_eq!(error_item(r, 403).await["type"], "security");
        // Nothing was revoked.
        assert_eq!(app.get("/about", ro).await.status(), 200);
        app.stop().await;
    }
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_user_and_address() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        for _ in 0..5 {
            token_error(
                &app,
                &[
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", "wrong"),
                ],
            )
            .await;
        }
        // Now even the right password is refused until the window passes.
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("retry-after").is_some());
        let e = error_item(r, 429).await;
        assert_eq!(e["type"], "transport");
        let retry = e["retryAfter"].as_i64().unwrap();
        assert!(retry > 0 && retry <= 900, "{retry}");

        // Another user from the same address is not affected.
        app.add_user("carol", Role::PortalOperator, app.provider.uid, "carol-pw")
            .await;
        app.login("carol", "carol-pw").await;

        app.clock.advance(Duration::minutes(16));
        app.login("admin", ADMIN_PASSWORD).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn api_keys_authenticate_like_tokens_and_can_be_read_only_or_deleted() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let admin = app.store.user_by_name("admin").await.unwrap().unwrap();
        let mut keys = Vec::new();
        for read_only in [false, true] {
            let key = tallyman_http::auth::new_api_key();
            assert!(!key.contains('.'), "an API key never looks like a JWT");
            let record = tallyman_store::ApiKey {
                id: uuid::Uuid::new_v4(),
                digest: tallyman_http::auth::token_digest(&key),
                user_uid: admin.uid,
                description: "integration".into(),
                read_only,
                created_at: chrono::Utc::now(),
            };
            app.store.insert_api_key(&record).await.unwrap();
            keys.push((key, record.id));
        }
        let (rw, rw_id) = &keys[0];
        let (ro, _) = &keys[1];
        // Conventions case 12: a key lists licenses like a token does.
        assert_eq!(app.get("/licensing/backupServers", rw).await.status(), 200);
        assert_eq!(app.get("/licensing/backupServers", ro).await.status(), 200);
        // Keys do not expire with the clock.
        app.clock.advance(Duration::days(400));
        assert_eq!(app.get("/about", rw).await.status(), 200);
        // Case 13: a read-only key may not write.
        let r = app
            .http
            .patch(app.url(&format!("/licensing/backupServers/{}", uuid::Uuid::new_v4())))
            .bearer_auth(ro)
            .json(&serde_json::json!([{"op": "replace", "path": "/autoUpdateEnabled", "value": true}]))
            .send()
            .await
            .unwrap();
        assert_eq!(error_item(r, 403).await["type"], "security");
        // A deleted key is refused.
        assert!(app.store.delete_api_key(*rw_id).await.unwrap());
        error_item(app.get("/about", rw).await, 401).await;
        assert_eq!(
            app.store.api_keys(admin.uid).await.unwrap().len(),
            1,
            "{backend:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn parallel_failed_logins_cannot_get_past_the_throttle() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let attempts = (0..60).map(|_| {
            let http = app.http.clone();
            let url = app.url("/token");
            tokio::spawn(async move {
                http.post(url)
                    .form(&[
                        ("grant_type", "password"),
                        ("username", "admin"),
                        ("password", "wrong"),
                    ])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        });
        let mut statuses = Vec::new();
        for a in attempts {
            statuses.push(a.await.unwrap().unwrap());
        }
        let checked = statuses.iter().filter(|&&s| s == 400).count();
        let refused = statuses.iter().filter(|&&s| s == 429).count();
        assert_eq!(checked + refused, 60, "{statuses:?}");
        assert!(
            checked <= 5,
            "{checked} passwords checked in one burst: {backend:?}"
        );
        // The burst used up the window: the right password is refused too.
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        let e = error_item(r, 429).await;
        assert!(e["retryAfter"].as_i64().unwrap() > 0);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_successful_login_resets_the_count() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        for _ in 0..4 {
            token_error(
                &app,
                &[
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", "wrong"),
                ],
            )
            .await;
        }
        app.login("admin", ADMIN_PASSWORD).await;
        for _ in 0..5 {
            token_error(
                &app,
                &[
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", "wrong"),
                ],
            )
            .await;
        }
        app.stop().await;
    }
}
