//! Test harness: each test gets the real server on 127.0.0.1:0 over a fresh database, with a
//! manual clock, a provider organization and an `admin` portal administrator.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use chrono::Utc;
use serde_json::Value;
use tallyman_app::LicensePortal;
use tallyman_http::auth::hash_password;
use tallyman_http::{AppState, HttpConfig, ManualClock};
use tallyman_license::{IssuerPublicKey, TrustStore};
use tallyman_store::testing::{Backend, TestDatabase};
use tallyman_store::{Organization, OrganizationType, Role, Store, User};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub store: Arc<dyn Store>,
    pub provider: Organization,
    pub db: TestDatabase,
    pub backend: Backend,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, HttpConfig::default(), |_| Router::new()).await
    }

    /// Starts a server with `config` and extra authenticated routes built from its state.
    pub async fn spawn_with(
        backend: Backend,
        config: HttpConfig,
        extra: impl FnOnce(&AppState) -> Router<AppState>,
    ) -> Self {
        Self::spawn_trusting(backend, config, None, extra).await
    }

    /// Like [`TestApp::spawn_with`], and the server accepts license files signed by the keys
    /// in `trust`.
    pub async fn spawn_trusting(
        backend: Backend,
        config: HttpConfig,
        trust: Option<TrustStore>,
        extra: impl FnOnce(&AppState) -> Router<AppState>,
    ) -> Self {
        let configure = move |state: AppState| match trust {
            Some(trust) => state.with_trust(trust),
            None => state,
        };
        Self::spawn_configured(backend, config, configure, extra).await
    }

    /// A server that trusts license files signed by `key` and, when `portal` is given, asks it
    /// for newer license files on `update`.
    pub async fn spawn_licensing(
        backend: Backend,
        config: HttpConfig,
        key: IssuerPublicKey,
        portal: Option<Arc<dyn LicensePortal>>,
    ) -> Self {
        let trust: TrustStore = [key].into_iter().collect();
        let configure = move |state: AppState| {
            let state = state.with_trust(trust);
            match portal {
                Some(portal) => state.with_portal(portal),
                None => state,
            }
        };
        Self::spawn_configured(backend, config, configure, |_| Router::new()).await
    }

    /// Like [`TestApp::spawn_with`], with `configure` adjusting the application state (trusted
    /// issuer keys, license portal) before the server starts.
    pub async fn spawn_configured(
        backend: Backend,
        config: HttpConfig,
        configure: impl FnOnce(AppState) -> AppState,
        extra: impl FnOnce(&AppState) -> Router<AppState>,
    ) -> Self {
        let db = TestDatabase::create(backend).await;
        let store = tallyman_store::connect(&db.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let provider = Organization {
            uid: Uuid::new_v4(),
            name: "My Company".into(),
            kind: OrganizationType::Provider,
            parent_uid: None,
            created_at: Utc::now(),
        };
        store.insert_organization(&provider).await.unwrap();
        let clock = ManualClock::new();
        let state = AppState::new(store.clone(), Arc::new(clock.clone()), config)
            .await
            .unwrap();
        let state = configure(state);
        let app = Self {
            base: String::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            store,
            provider,
            db,
            backend,
            shutdown: None,
            server: None,
        };
        app.add_user(
            "admin",
            Role::PortalAdministrator,
            app.provider.uid,
            ADMIN_PASSWORD,
        )
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = tallyman_http::router_with(state.clone(), extra(&state));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(tallyman_http::serve_router(
            listener,
            router,
            state,
            async {
                let _ = rx.await;
            },
        ));
        Self {
            base,
            shutdown: Some(tx),
            server: Some(server),
            ..app
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v3{}", self.base, path)
    }

    pub async fn add_user(&self, name: &str, role: Role, org: Uuid, password: &str) -> User {
        let user = User {
            uid: Uuid::new_v4(),
            name: name.into(),
            role,
            organization_uid: org,
            password_hash: hash_password(password).unwrap(),
            enabled: true,
            created_at: Utc::now(),
        };
        self.store.insert_user(&user).await.unwrap();
        user
    }

    pub async fn add_org(&self, name: &str, kind: OrganizationType, parent: Uuid) -> Organization {
        let org = Organization {
            uid: Uuid::new_v4(),
            name: name.into(),
            kind,
            parent_uid: Some(parent),
            created_at: Utc::now(),
        };
        self.store.insert_organization(&org).await.unwrap();
        org
    }

    /// Logs in with the password grant and returns the whole OAuth2Result.
    pub async fn login(&self, user: &str, password: &str) -> Value {
        let r = self
            .http
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login as {user}");
        r.json().await.unwrap()
    }

    pub async fn token(&self, user: &str, password: &str) -> String {
        self.login(user, password).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// Asserts a VSPC ErrorResponse and returns its first item.
pub async fn error_item(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "unexpected status");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    let body: Value = r.json().await.unwrap();
    let errors = body["errors"].as_array().expect("errors array");
    assert!(!errors.is_empty());
    for e in errors {
        assert!(e["message"].is_string(), "{e}");
        assert!(e["code"].is_i64(), "{e}");
        let kind = e["type"].as_str().unwrap();
        assert!(
            [
                "logical",
                "retryableLogical",
                "security",
                "transport",
                "unspecified"
            ]
            .contains(&kind),
            "{kind}"
        );
    }
    errors[0].clone()
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for JSON query parameters).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
