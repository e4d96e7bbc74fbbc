//! The Organizations read endpoints (`/organizations`, `/organizations/companies`,
//! `/organizations/resellers`, each by UID too): VSPC shapes, tenant scope, filter/sort/select/
//! paging; the console's session endpoint; and the console's static assets.

use serde_json::Value;
use tallyman_store::testing::backends;
use tallyman_store::{OrganizationType, Role};
use uuid::Uuid;

use crate::common::*;

const PASSWORD: &str = "tenant-password-1";

/// provider → reseller "Northwind" → companies "Acme" and "Zeta"; provider → company "Beta".
struct Tree {
    reseller: Uuid,
    acme: Uuid,
    zeta: Uuid,
    beta: Uuid,
}

async fn tree(app: &TestApp) -> Tree {
    let reseller = app
        .add_org("Northwind", OrganizationType::Reseller, app.provider.uid)
        .await
        .uid;
    let acme = app
        .add_org("Acme Ltd", OrganizationType::Company, reseller)
        .await
        .uid;
    let zeta = app
        .add_org("Zeta GmbH", OrganizationType::Company, reseller)
        .await
        .uid;
    let beta = app
        .add_org("beta cloud", OrganizationType::Company, app.provider.uid)
        .await
        .uid;
    app.add_user("acme-owner", Role::CompanyOwner, acme, PASSWORD)
        .await;
    app.add_user(
        "northwind-admin",
        Role::ServiceProviderAdministrator,
        reseller,
        PASSWORD,
    )
    .await;
    Tree {
        reseller,
        acme,
        zeta,
        beta,
    }
}

async fn ok(app: &TestApp, path: &str, token: &str) -> Value {
    let r = app.get(path, token).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

fn names(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn organizations_companies_and_resellers_have_the_vspc_shapes() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = tree(&app).await;
        let token = app.admin_token().await;

        let all = ok(&app, "/organizations", &token).await;
        assert_eq!(
            names(&all),
            [
                "My Company",
                "Northwind",
                "Acme Ltd",
                "Zeta GmbH",
                "beta cloud"
            ]
        );
        assert_eq!(all["meta"]["pagingInfo"]["total"], 5);
        let first = &all["data"][0];
        assert_eq!(first["type"], "Provider");
        assert_eq!(first["instanceUid"], app.provider.uid.to_string());
        for key in ["alias", "taxId", "email", "country", "zipCode", "companyId"] {
            assert!(first[key].is_null(), "{key}");
        }

        let one = ok(&app, &format!("/organizations/{}", t.acme), &token).await;
        assert_eq!(one["data"]["name"], "Acme Ltd");
        assert_eq!(one["data"]["type"], "Company");

        let companies = ok(&app, "/organizations/companies", &token).await;
        assert_eq!(names(&companies), ["Acme Ltd", "Zeta GmbH", "beta cloud"]);
        let acme = &companies["data"][0];
        assert_eq!(acme["resellerUid"], t.reseller.to_string());
        assert_eq!(acme["status"], "Active");
        assert_eq!(acme["ownerCredentials"]["userName"], "acme-owner");
        assert_eq!(acme["isRestAccessEnabled"], true);
        assert!(acme["companyServices"]["remoteServices"].is_object());
        assert!(acme.get("_embedded").is_none());
        // A company of the provider has no reseller, and no user yet.
        let beta = &companies["data"][2];
        assert!(beta["resellerUid"].is_null());
        assert_eq!(beta["ownerCredentials"]["userName"], "");
        assert_eq!(beta["isRestAccessEnabled"], false);

        let embedded = ok(
            &app,
            &format!("/organizations/companies/{}?expand=Organization", t.beta),
            &token,
        )
        .await;
        assert_eq!(
            embedded["data"]["_embedded"]["organization"]["name"],
            "beta cloud"
        );
        assert_eq!(
            embedded["data"]["_embedded"]["organization"]["type"],
            "Company"
        );
        let listed = ok(
            &app,
            &format!(
                "/organizations/companies?expand={}",
                enc("[\"Organization\"]")
            ),
            &token,
        )
        .await;
        assert!(listed["data"][1]["_embedded"]["organization"].is_object());
        let r = app
            .get("/organizations/companies?expand=Everything", &token)
            .await;
        assert_eq!(error_item(r, 400).await["parameterName"], "expand");

        let resellers = ok(&app, "/organizations/resellers", &token).await;
        assert_eq!(names(&resellers), ["Northwind"]);
        let northwind = &resellers["data"][0];
        assert_eq!(northwind["instanceUid"], t.reseller.to_string());
        assert_eq!(northwind["isRestAccessEnabled"], true);
        assert!(northwind["proPartnerId"].is_null());
        assert!(northwind["resellerServices"]["hostedServices"].is_object());
        let one = ok(
            &app,
            &format!("/organizations/resellers/{}", t.reseller),
            &token,
        )
        .await;
        assert_eq!(one["data"]["name"], "Northwind");

        // By UID under the wrong collection, unknown, or not a UUID: not found.
        for path in [
            format!("/organizations/companies/{}", t.reseller),
            format!("/organizations/resellers/{}", t.acme),
            format!("/organizations/{}", Uuid::new_v4()),
            "/organizations/companies/not-a-uid".to_string(),
        ] {
            let r = app.get(&path, &token).await;
            assert_eq!(error_item(r, 404).await["code"], 404, "{path}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_organizations() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let t = tree(&app).await;

        let reseller = app.token("northwind-admin", PASSWORD).await;
        let all = ok(&app, "/organizations", &reseller).await;
        assert_eq!(names(&all), ["Northwind", "Acme Ltd", "Zeta GmbH"]);
        let companies = ok(&app, "/organizations/companies", &reseller).await;
        assert_eq!(names(&companies), ["Acme Ltd", "Zeta GmbH"]);
        assert_eq!(
            names(&ok(&app, "/organizations/resellers", &reseller).await),
            ["Northwind"]
        );
        ok(
            &app,
            &format!("/organizations/companies/{}", t.zeta),
            &reseller,
        )
        .await;
        // Outside the reseller's tree: not found, never forbidden.
        for path in [
            format!("/organizations/companies/{}", t.beta),
            format!("/organizations/{}", app.provider.uid),
        ] {
            let r = app.get(&path, &reseller).await;
            error_item(r, 404).await;
        }

        let company = app.token("acme-owner", PASSWORD).await;
        assert_eq!(
            names(&ok(&app, "/organizations", &company).await),
            ["Acme Ltd"]
        );
        assert_eq!(
            names(&ok(&app, "/organizations/companies", &company).await),
            ["Acme Ltd"]
        );
        let r = app
            .get(&format!("/organizations/companies/{}", t.zeta), &company)
            .await;
        error_item(r, 404).await;
        // Company roles have no reseller to read.
        let r = app.get("/organizations/resellers", &company).await;
        assert_eq!(error_item(r, 403).await["type"], "security");
        let _ = t.acme;
        app.stop().await;
    }
}

#[tokio::test]
async fn organizations_filter_sort_select_and_page() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        tree(&app).await;
        let token = app.admin_token().await;

        let filter = enc(r#"[{"property":"type","operation":"equals","value":"Company"}]"#);
        let body = ok(&app, &format!("/organizations?filter={filter}"), &token).await;
        assert_eq!(names(&body), ["Acme Ltd", "Zeta GmbH", "beta cloud"]);
        assert_eq!(body["meta"]["pagingInfo"]["total"], 3);

        let filter = enc(
            r#"[{"property":"name","operation":"contains","value":"CLOUD","collation":"ignorecase"}]"#,
        );
        let body = ok(
            &app,
            &format!("/organizations/companies?filter={filter}"),
            &token,
        )
        .await;
        assert_eq!(names(&body), ["beta cloud"]);

        let sort =
            enc(r#"[{"property":"name","direction":"descending","collation":"ignorecase"}]"#);
        let body = ok(&app, &format!("/organizations?sort={sort}"), &token).await;
        assert_eq!(
            names(&body),
            [
                "Zeta GmbH",
                "Northwind",
                "My Company",
                "beta cloud",
                "Acme Ltd"
            ]
        );

        let body = ok(
            &app,
            &format!("/organizations?sort={sort}&limit=2&offset=1"),
            &token,
        )
        .await;
        assert_eq!(names(&body), ["Northwind", "My Company"]);
        assert_eq!(body["meta"]["pagingInfo"]["total"], 5);
        assert_eq!(body["meta"]["pagingInfo"]["count"], 2);
        assert_eq!(body["meta"]["pagingInfo"]["offset"], 1);

        let select =
            enc(r#"[{"propertyPath":"name"},{"propertyPath":"ownerCredentials.userName"}]"#);
        let body = ok(
            &app,
            &format!("/organizations/companies?select={select}&limit=1"),
            &token,
        )
        .await;
        let item = body["data"][0].as_object().unwrap();
        assert_eq!(item.len(), 2, "{item:?}");
        assert_eq!(item["ownerCredentials"]["userName"], "acme-owner");

        let bad = enc(r#"[{"property":"noSuchField","operation":"equals","value":1}]"#);
        for (query, parameter) in [
            (format!("filter={bad}"), "filter"),
            ("filter=%5B%7B".to_string(), "filter"),
            ("limit=501".to_string(), "limit"),
            ("offset=-1".to_string(), "offset"),
        ] {
            let r = app.get(&format!("/organizations?{query}"), &token).await;
            assert_eq!(
                error_item(r, 400).await["parameterName"],
                parameter,
                "{query}"
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn the_session_says_who_is_logged_in_and_what_they_may_change() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        tree(&app).await;
        let token = app.admin_token().await;
        let s = ok(&app, "/tallyman/session", &token).await["data"].clone();
        assert_eq!(s["userName"], "admin");
        assert_eq!(s["role"], "PortalAdministrator");
        assert_eq!(s["readOnly"], false);
        assert_eq!(s["organizationType"], "Provider");
        assert_eq!(s["organizationName"], "My Company");
        assert_eq!(s["access"]["backupServers"]["write"], true);
        assert_eq!(s["access"]["console"]["read"], true);

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
        let read_only: Value = r.json().await.unwrap();
        let read_only = read_only["access_token"].as_str().unwrap();
        let s = ok(&app, "/tallyman/session", read_only).await["data"].clone();
        assert_eq!(s["readOnly"], true);
        for area in ["sites", "backupServers", "console", "reports"] {
            assert_eq!(s["access"][area]["read"], true, "{area}");
            assert_eq!(s["access"][area]["write"], false, "{area}");
        }

        let reseller = app.token("northwind-admin", PASSWORD).await;
        let s = ok(&app, "/tallyman/session", &reseller).await["data"].clone();
        assert_eq!(s["organizationName"], "Northwind");
        assert_eq!(s["access"]["backupServers"]["write"], true);
        assert_eq!(s["access"]["console"]["read"], false);
        assert_eq!(s["access"]["sites"]["read"], false);

        let company = app.token("acme-owner", PASSWORD).await;
        let s = ok(&app, "/tallyman/session", &company).await["data"].clone();
        assert_eq!(s["access"]["backupServers"]["read"], false);
        assert_eq!(s["access"]["organizations"]["read"], true);

        let r = app
            .http
            .get(app.url("/tallyman/session"))
            .send()
            .await
            .unwrap();
        error_item(r, 401).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn the_console_is_served_with_types_etags_and_a_strict_policy() {
    let app = TestApp::spawn(backends()[0]).await;
    let r = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].to_str().unwrap().to_string();
    let html = r.text().await.unwrap();
    assert!(html.contains("/assets/app.js"));

    let r = app
        .http
        .get(format!("{}/", app.base))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());

    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("pages.js", "text/javascript"),
        ("ui.js", "text/javascript"),
        ("style.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let r = app
            .http
            .get(format!("{}/assets/{asset}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{asset}: {ct}");
        assert!(r.headers().contains_key("etag"), "{asset}");
        assert_eq!(r.headers()["cache-control"], "no-cache");
    }
    // Unknown assets and unknown API paths still get the JSON error.
    for path in ["/assets/nope.js", "/api/v3/nope", "/nope"] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        error_item(r, 404).await;
    }
    app.stop().await;
}

#[test]
fn the_openapi_document_lists_the_organizations_operations() {
    let doc = tallyman_http::openapi::document();
    for (path, id) in [
        ("/organizations", "GetOrganizations"),
        ("/organizations/{organizationUid}", "GetOrganization"),
        ("/organizations/companies", "GetCompanies"),
        ("/organizations/companies/{companyUid}", "GetCompany"),
        ("/organizations/resellers", "GetResellers"),
        ("/organizations/resellers/{resellerUid}", "GetReseller"),
        ("/tallyman/session", "GetTallymanSession"),
    ] {
        assert_eq!(doc["paths"][path]["get"]["operationId"], id, "{path}");
    }
    let company = &doc["components"]["schemas"]["Company"]["properties"];
    for key in [
        "instanceUid",
        "resellerUid",
        "ownerCredentials",
        "_embedded",
    ] {
        assert!(company.get(key).is_some(), "Company.{key}");
    }
    assert!(doc["components"]["schemas"]["Organization"]["properties"]["type"].is_object());
    // The licensing operations are still there.
    assert!(doc["paths"]["/licensing/backupServers"]["get"].is_object());
}
