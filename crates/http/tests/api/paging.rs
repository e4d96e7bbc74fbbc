//! Paging, filter, sort and select over HTTP on `GET /licensing/backupServers` with 150 licensed
//! servers (conventions §3 and §10 cases 16, 17, 21–37), forced async on the same collection
//! (cases 38–39), and the unpaged site list.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Value};
use tallyman_domain::{LicenseType, Product};
use tallyman_http::{AppState, Clock, HttpConfig};
use tallyman_store::testing::backends;
use tallyman_store::TargetKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::common::*;
use crate::licensing::{add_server, claims_expiring, store_license, Issuer};

const COMPANIES: [&str; 5] = [
    "Acme Ltd",
    "Globex Corp",
    "Initech",
    "Umbrella Plc",
    "Wayne Enterprises",
];

/// Registers `n` backup servers with licenses whose status cycles Valid / Warning / Expired,
/// licensee cycles through [`COMPANIES`] (every fifth is `Acme Ltd`) and units cycle 0..180.
async fn licensed_backup_servers(app: &TestApp, issuer: &Issuer, n: usize) {
    let now = app.clock.now();
    for i in 0..n {
        let uid = add_server(
            app,
            TargetKind::BackupServer,
            app.provider.uid,
            &format!("vbr-{i}"),
        )
        .await;
        let minutes = Duration::minutes(i as i64);
        let mut claims = match i % 3 {
            // Valid: a subscription ending in over 200 days.
            0 => claims_expiring(
                Product::BackupAndReplication,
                LicenseType::Subscription,
                now,
                now + Duration::days(200) + minutes,
            ),
            // Warning: a rental ending in two days.
            1 => claims_expiring(
                Product::BackupAndReplication,
                LicenseType::Rental,
                now - Duration::days(20),
                now + Duration::days(2) + minutes,
            ),
            // Expired, inside the 30-day grace.
            _ => claims_expiring(
                Product::BackupAndReplication,
                LicenseType::Subscription,
                now - Duration::days(100),
                now - Duration::days(5) - minutes,
            ),
        };
        claims.company = COMPANIES[i % 5].into();
        claims.units = Some(((i % 7) * 30) as f64);
        store_license(app, TargetKind::BackupServer, uid, issuer, &claims).await;
    }
}

const LIST: &str = "/licensing/backupServers";

async fn list(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let r = app.get(&format!("{LIST}?{query}"), token).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn list_ok(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, body) = list(app, token, query).await;
    assert_eq!(status, 200, "?{query}: {body}");
    body
}

async fn filtered(app: &TestApp, token: &str, filter: &str) -> Value {
    list_ok(app, token, &format!("limit=500&filter={}", enc(filter))).await
}

fn items(body: &Value) -> &Vec<Value> {
    body["data"].as_array().expect("data is an array")
}

fn uids(body: &Value) -> Vec<String> {
    items(body)
        .iter()
        .map(|x| x["backupServerUid"].as_str().unwrap().to_string())
        .collect()
}

fn uid_set(items: &[&Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|x| x["backupServerUid"].as_str().unwrap().to_string())
        .collect()
}

fn paging(body: &Value) -> (i64, i64, i64) {
    let p = &body["meta"]["pagingInfo"];
    (
        p["total"].as_i64().expect("total is an integer"),
        p["count"].as_i64().expect("count is an integer"),
        p["offset"].as_i64().expect("offset is an integer"),
    )
}

async fn bad_parameter(app: &TestApp, token: &str, query: &str, parameter: &str) {
    let r = app.get(&format!("{LIST}?{query}"), token).await;
    let e = error_item(r, 400).await;
    assert_eq!(e["type"], "logical", "?{query}: {e}");
    assert_eq!(e["code"], 400, "?{query}: {e}");
    assert_eq!(e["parameterName"], parameter, "?{query}: {e}");
}

#[tokio::test]
async fn paging_over_150_backup_server_licenses() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        licensed_backup_servers(&app, &issuer, 150).await;
        let all = list_ok(&app, &token, "limit=500").await;
        let order = uids(&all);
        assert_eq!(order.len(), 150);
        assert_eq!(paging(&all), (150, 150, 0));

        // 16: the envelope.
        let body = list_ok(&app, &token, "").await;
        assert!(body["data"].is_array());
        // 24: default page of 100.
        assert_eq!(paging(&body), (150, 100, 0));
        assert_eq!(items(&body).len(), 100);
        assert_eq!(uids(&body), order[..100], "default order is the same order");

        // 17: an unknown server.
        let r = app.get(&format!("{LIST}/{}", Uuid::new_v4()), &token).await;
        let e = error_item(r, 404).await;
        assert_eq!(
            (e["code"].clone(), e["type"].clone()),
            (json!(404), json!("logical"))
        );

        // 21–23: bad limit / offset.
        bad_parameter(&app, &token, "limit=501", "limit").await;
        bad_parameter(&app, &token, "limit=0", "limit").await;
        bad_parameter(&app, &token, "limit=abc", "limit").await;
        bad_parameter(&app, &token, "offset=-1", "offset").await;

        // 25: offset before limit whatever their order.
        let a = app.get(&format!("{LIST}?limit=2&offset=1"), &token).await;
        let b = app.get(&format!("{LIST}?offset=1&limit=2"), &token).await;
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
        let (a, b) = (a.bytes().await.unwrap(), b.bytes().await.unwrap());
        assert_eq!(a, b, "parameter order changed the body");
        let page: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(uids(&page), order[1..3]);
        assert_eq!(paging(&page), (150, 2, 1));

        // Query parameter names match ignoring case (conventions §3.5).
        let body = list_ok(&app, &token, "Limit=2&OFFSET=1").await;
        assert_eq!(paging(&body), (150, 2, 1));

        // 26: past the end.
        let body = list_ok(&app, &token, "offset=10000").await;
        assert_eq!(body["data"], json!([]));
        assert_eq!(paging(&body), (150, 0, 10000));

        // 27: two walks with fresh X-Request-ids return every uid once, in the same order.
        let mut walks = Vec::new();
        for _ in 0..2 {
            let mut walk = Vec::new();
            for offset in [0, 100] {
                let r = app
                    .http
                    .get(app.url(&format!("{LIST}?limit=100&offset={offset}")))
                    .bearer_auth(&token)
                    .header("X-Request-id", Uuid::new_v4().to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let body: Value = r.json().await.unwrap();
                assert_eq!(paging(&body).2, offset);
                walk.extend(uids(&body));
            }
            walks.push(walk);
        }
        assert_eq!(walks[0].len(), 150);
        assert_eq!(
            walks[0].iter().collect::<BTreeSet<_>>().len(),
            150,
            "a uid came twice"
        );
        assert_eq!(walks[0], walks[1], "the order moved between walks");
        assert_eq!(walks[0], order);
        app.stop().await;
    }
}

/// `GET` with a request target written byte for byte (reqwest would percent-encode `'`).
async fn raw_get(app: &TestApp, target: &str, token: &str) -> (u16, Value) {
    let host = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn filter_sort_and_select_over_150_backup_server_licenses() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        licensed_backup_servers(&app, &issuer, 150).await;
        let all_body = list_ok(&app, &token, "limit=500").await;
        let all: Vec<&Value> = items(&all_body).iter().collect();
        let with = |pred: &dyn Fn(&Value) -> bool| -> Vec<&Value> {
            all.iter().copied().filter(|x| pred(x)).collect()
        };
        let valid = with(&|x| x["status"] == "Valid");
        let warning = with(&|x| x["status"] == "Warning");
        let expired = with(&|x| x["status"] == "Expired");
        assert_eq!((valid.len(), warning.len(), expired.len()), (50, 50, 50));

        // 28.
        let eq_valid = r#"[{"property":"status","operation":"equals","value":"Valid"}]"#;
        let body = filtered(&app, &token, eq_valid).await;
        assert_eq!(
            uid_set(&items(&body).iter().collect::<Vec<_>>()),
            uid_set(&valid)
        );
        assert_eq!(paging(&body).0, valid.len() as i64);
        // The same on the default page: the total still counts the whole subset.
        let page = list_ok(&app, &token, &format!("filter={}", enc(eq_valid))).await;
        assert_eq!(paging(&page).0, 50);

        // 29: single quotes and raw brackets, quotes, colons and commas in the URL.
        let target = format!(
            "/api/v3{LIST}?limit=500&filter=[%7B'property':'status','operation':'equals','value':'Valid'%7D]"
        );
        let (status, raw) = raw_get(&app, &target, &token).await;
        assert_eq!(status, 200, "{raw}");
        assert_eq!(raw, body, "single-quoted filter differs");

        // 30: ordinal is case-sensitive; ignorecase is not.
        let lower = filtered(
            &app,
            &token,
            r#"[{"property":"status","operation":"equals","value":"valid"}]"#,
        )
        .await;
        assert_eq!(paging(&lower).0, 0);
        let ignore = filtered(
            &app,
            &token,
            r#"[{"property":"status","operation":"equals","collation":"ignorecase","value":"valid"}]"#,
        )
        .await;
        assert_eq!(ignore, body);

        // 31: or / not.
        let or = filtered(
            &app,
            &token,
            r#"[{"operation":"or","items":[{"property":"status","operation":"equals","value":"Valid"},{"property":"status","operation":"equals","value":"Warning"}]}]"#,
        )
        .await;
        let union: BTreeSet<String> = uid_set(&valid).union(&uid_set(&warning)).cloned().collect();
        assert_eq!(uid_set(&items(&or).iter().collect::<Vec<_>>()), union);
        assert_eq!(paging(&or).0, 100);
        let not = filtered(
            &app,
            &token,
            r#"[{"operation":"not","items":[{"property":"status","operation":"equals","value":"Valid"}]}]"#,
        )
        .await;
        let complement = with(&|x| x["status"] != "Valid");
        assert_eq!(
            uid_set(&items(&not).iter().collect::<Vec<_>>()),
            uid_set(&complement)
        );

        // 32: in = the or above.
        let in_ = filtered(
            &app,
            &token,
            r#"[{"property":"status","operation":"in","value":["Valid","Warning"]}]"#,
        )
        .await;
        assert_eq!(in_, or);

        // 33: the PHP SDK's shape, number as a string.
        let php = filtered(
            &app,
            &token,
            r#"[{"property":"units","items":null,"operation":"greaterThanOrEqual","collation":"ordinal","value":"100"}]"#,
        )
        .await;
        let big = with(&|x| x["units"].as_f64().unwrap() >= 100.0);
        assert!(!big.is_empty() && big.len() < 150);
        assert_eq!(
            uid_set(&items(&php).iter().collect::<Vec<_>>()),
            uid_set(&big)
        );

        // 34: form-encoded by http_build_query, `+` for the space.
        let acme = list_ok(
            &app,
            &token,
            "limit=500&filter=%5B%7B%22property%22%3A%22company%22%2C%22items%22%3Anull%2C%22operation%22%3A%22equals%22%2C%22collation%22%3A%22ordinal%22%2C%22value%22%3A%22Acme+Ltd%22%7D%5D",
        )
        .await;
        assert_eq!(paging(&acme).0, 30, "{}", acme["meta"]);
        assert!(items(&acme).iter().all(|x| x["company"] == "Acme Ltd"));

        // 35: unknown property and malformed JSON.
        bad_parameter(
            &app,
            &token,
            &format!(
                "filter={}",
                enc(r#"[{"property":"noSuchField","operation":"equals","value":"x"}]"#)
            ),
            "filter",
        )
        .await;
        bad_parameter(&app, &token, "filter=%5B%7B", "filter").await;

        // Unknown sort and select properties name their parameter (conventions §3.3, §3.4).
        bad_parameter(
            &app,
            &token,
            &format!("sort={}", enc(r#"[{"property":"noSuchField"}]"#)),
            "sort",
        )
        .await;
        bad_parameter(
            &app,
            &token,
            &format!("select={}", enc(r#"[{"propertyPath":"noSuchField"}]"#)),
            "select",
        )
        .await;

        // 36: sort.
        let dates = |body: &Value| -> Vec<String> {
            items(body)
                .iter()
                .map(|x| x["expirationDate"].as_str().unwrap().to_string())
                .collect()
        };
        let desc = list_ok(
            &app,
            &token,
            &format!(
                "limit=500&sort={}",
                enc(r#"[{"property":"expirationDate","direction":"descending"}]"#)
            ),
        )
        .await;
        let d = dates(&desc);
        assert_eq!(d.len(), 150);
        assert!(d.windows(2).all(|w| w[0] >= w[1]), "not descending");
        let asc = list_ok(
            &app,
            &token,
            &format!(
                "limit=500&sort={}",
                enc(r#"[{"property":"expirationDate"}]"#)
            ),
        )
        .await;
        let a = dates(&asc);
        assert!(a.windows(2).all(|w| w[0] <= w[1]), "not ascending");
        assert_ne!(a, d);
        let two = list_ok(
            &app,
            &token,
            &format!(
                "limit=500&sort={}",
                enc(r#"[{"property":"company","direction":"ascending"},{"property":"units","direction":"descending"}]"#)
            ),
        )
        .await;
        let keys: Vec<(String, f64)> = items(&two)
            .iter()
            .map(|x| {
                (
                    x["company"].as_str().unwrap().to_string(),
                    x["units"].as_f64().unwrap(),
                )
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0].0 <= w[1].0), "first key");
        assert!(
            keys.windows(2)
                .all(|w| w[0].0 != w[1].0 || w[0].1 >= w[1].1),
            "second key does not order ties"
        );
        assert!(
            keys.windows(2).any(|w| w[0].0 == w[1].0 && w[0].1 > w[1].1),
            "the fixture has ties the second key must order"
        );

        // 37: select keeps exactly those keys; paging is untouched.
        let select = list_ok(
            &app,
            &token,
            &format!(
                "limit=20&offset=5&select={}",
                enc(r#"[{"propertyPath":"backupServerUid"},{"propertyPath":"status"}]"#)
            ),
        )
        .await;
        let plain = list_ok(&app, &token, "limit=20&offset=5").await;
        assert_eq!(select["meta"], plain["meta"]);
        for (s, p) in items(&select).iter().zip(items(&plain)) {
            let keys: BTreeSet<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["backupServerUid", "status"]), "{s}");
            assert_eq!(s["backupServerUid"], p["backupServerUid"]);
            assert_eq!(s["status"], p["status"]);
        }
        app.stop().await;
    }
}

/// Another server over the same database, without forced async, for the synchronous reference.
async fn synchronous_twin(app: &TestApp) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let state = AppState::new(
        app.store.clone(),
        Arc::new(app.clock.clone()),
        HttpConfig::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(tallyman_http::serve(
        listener,
        state,
        std::future::pending(),
    ));
    (base, task)
}

#[tokio::test]
async fn forced_async_list_result_is_the_synchronous_envelope() {
    for backend in backends() {
        let issuer = Issuer::new();
        let config = HttpConfig {
            force_async: true,
            ..HttpConfig::default()
        };
        let app = TestApp::spawn_licensing(backend, config, issuer.key.public(), None).await;
        let token = app.admin_token().await;
        licensed_backup_servers(&app, &issuer, 12).await;

        // 38.
        let id = Uuid::new_v4().to_string();
        let query = "limit=5&offset=2";
        let r = app
            .http
            .get(app.url(&format!("{LIST}?{query}")))
            .bearer_auth(&token)
            .header("X-Request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.ends_with(&format!("/api/v3/asyncActions/{id}")),
            "{location}"
        );
        let mut info = Value::Null;
        for _ in 0..200 {
            let r = app.get(&format!("/asyncActions/{id}"), &token).await;
            assert_eq!(r.status(), 200);
            info = r.json().await.unwrap();
            let status = info["data"]["status"].as_str().unwrap().to_string();
            assert!(["running", "succeed"].contains(&status.as_str()), "{info}");
            if status == "succeed" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(info["data"]["status"], "succeed", "{info}");
        assert_eq!(info["data"]["id"], id.as_str());
        assert_eq!(info["data"]["actionName"], "GetBackupServersLicenses");
        assert_eq!(
            info["data"]["queryParameters"],
            json!({"limit": ["5"], "offset": ["2"]})
        );

        // 39: the result is what the synchronous call answers.
        let r = app.get(&format!("/asyncActions/{id}/result"), &token).await;
        assert_eq!(r.status(), 200);
        let result: Value = r.json().await.unwrap();
        let (twin, task) = synchronous_twin(&app).await;
        let sync: Value = app
            .http
            .get(format!("{twin}/api/v3{LIST}?{query}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        task.abort();
        assert_eq!(paging(&sync), (12, 5, 2));
        assert_eq!(result, sync);
        app.stop().await;
    }
}

/// The 3.6.1 site list has no paging parameters (licensing.md §2.8, open question 16: "returning
/// everything is compatible — keep it"), so a provider with more than 100 sites must get them
/// all.
#[tokio::test]
async fn site_list_is_not_paged() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        for i in 0..105 {
            add_server(
                &app,
                TargetKind::CloudConnectSite,
                app.provider.uid,
                &format!("site-{i}"),
            )
            .await;
        }
        let body: Value = app
            .get("/licensing/sites", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["data"].as_array().map(Vec::len),
            Some(105),
            "site list truncated: meta {}",
            body["meta"]
        );
        // Paging parameters are not part of this operation: ignored like any unknown parameter.
        let body: Value = app
            .get("/licensing/sites?limit=5&offset=3", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["data"].as_array().map(Vec::len), Some(105));
        app.stop().await;
    }
}
