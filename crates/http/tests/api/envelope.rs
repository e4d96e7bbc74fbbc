//! The envelope, error shapes and transport behaviour every operation shares
//! (conventions §10, cases 15, 18, 19, 46 and the size and routing rules).

use serde_json::Value;
use tallyman_store::testing::backends;

use crate::common::*;

#[tokio::test]
async fn about_reports_a_9_1_server_version_for_any_client_version() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let token = app.admin_token().await;
        let mut installation = None;
        for version in [
            None,
            Some("3.6.1"),
            Some("3.6"),
            Some("3.5.1"),
            Some("3.4"),
            Some("3.6.2"),
            Some("junk"),
        ] {
            let mut req = app.http.get(app.url("/about")).bearer_auth(&token);
            if let Some(v) = version {
                req = req.header("X-Client-Version", v);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{version:?}");
            let body: Value = r.json().await.unwrap();
            let v = body["data"]["serverVersion"].as_str().unwrap();
            let parts: Vec<&str> = v.split('.').collect();
            assert_eq!(&parts[..3], ["9", "1", "0"]);
            assert!(parts[3].parse::<u32>().is_ok());
            let id = body["data"]["installationId"].as_str().unwrap().to_string();
            assert_eq!(installation.get_or_insert(id.clone()), &id);
            let date = body["data"]["installationDate"].as_str().unwrap();
            // Seven fractional digits and an explicit offset.
            assert!(
                date.ends_with("+00:00") && date.split('.').nth(1).unwrap().len() == 13,
                "{date}"
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let token = app.admin_token().await;
        let e = error_item(app.get("/no/such/thing", &token).await, 404).await;
        assert_eq!(e["type"], "logical");
        let r = app
            .http
            .get(format!("{}/elsewhere", app.base))
            .send()
            .await
            .unwrap();
        error_item(r, 404).await;
        let r = app
            .http
            .post(app.url("/about"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        error_item(r, 405).await;
        let r = app.http.get(app.url("/token")).send().await.unwrap();
        error_item(r, 405).await;
        // Trailing slashes are the same resource, never a redirect.
        let r = app.get("/about/", &token).await;
        assert_eq!(r.status(), 200);
        let r = app.get("/asyncActions/not-a-uuid", &token).await;
        assert_eq!(error_item(r, 400).await["parameterName"], "actionId");
        app.stop().await;
    }
}

#[tokio::test]
async fn get_bodies_are_ignored_and_oversized_bodies_refused() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let token = app.admin_token().await;
        let r = app
            .http
            .get(app.url("/about"))
            .bearer_auth(&token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=password&username=admin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        let big = vec![b'a'; 5 * 1024 * 1024];
        let r = app
            .http
            .post(app.url("/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(big)
            .send()
            .await
            .unwrap();
        error_item(r, 413).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn server_side_failures_are_520_unspecified_without_internals() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let token = app.admin_token().await;
        app.db.execute("DROP TABLE async_actions").await.unwrap();
        let r = app.get("/asyncActions", &token).await;
        let e = error_item(r, 520).await;
        assert_eq!(e["type"], "unspecified");
        let message = e["message"].as_str().unwrap().to_lowercase();
        assert!(
            !message.contains("async_actions") && !message.contains("sql"),
            "{message}"
        );
        app.stop().await;
    }
}
