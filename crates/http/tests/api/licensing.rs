//! The license operations end to end (licensing.md §2.1–2.7; conventions §6, §7 and §10 cases
//! 12–13, 47–50): install on every kind, the refusals (each leaving the stored license exactly as
//! it was), the Backup & Replication merge and the deletes, status computed at read time, JSON
//! Patch of `autoUpdateEnabled`, update through a real in-process license portal, and roles and
//! tenant scope. Paging, filter, sort and select are in `paging.rs`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tallyman_app::LicensePortal;
use tallyman_app::{InstalledFile, SlotDocument};
use tallyman_domain::{CloudConnect, LicenseType, Product};
use tallyman_http::auth::hash_password;
use tallyman_http::wire::vspc_datetime;
use tallyman_http::{Clock, HttpConfig};
use tallyman_license::{default_claims, issue, IssuerKey, LicenseClaims};
use tallyman_portal::client::PortalClient;
use tallyman_store::testing::backends;
use tallyman_store::{
    LicenseEvent, LicenseSlot, ManagedServer, OrganizationType, Role, TargetKind, User,
};
use uuid::Uuid;

use crate::common::*;

// ------------------------------------------------------------------------------------------------
// Fixtures shared with `paging.rs`
// ------------------------------------------------------------------------------------------------

/// Password of every user made with [`user_token`].
pub const USER_PASSWORD: &str = "user-password-1";

/// An issuer signing key, reproducible from its seed so a portal can hold its own copy.
pub struct Issuer {
    seed: [u8; 32],
    pub key: IssuerKey,
}

impl Issuer {
    pub fn new() -> Self {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        Self {
            seed,
            key: IssuerKey::from_seed(&seed),
        }
    }

    /// A second handle on the same key (the portal takes ownership of one).
    pub fn copy(&self) -> IssuerKey {
        IssuerKey::from_seed(&self.seed)
    }

    /// The armoured license file for `claims`.
    pub fn sign(&self, claims: &LicenseClaims) -> String {
        issue(claims, &self.key).expect("fixture claims are well formed")
    }
}

/// Claims for `product` / `license_type` issued at `issued`, expiring at `expires` (support
/// ends with the license).
pub fn claims_expiring(
    product: Product,
    license_type: LicenseType,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> LicenseClaims {
    let mut c = default_claims(product, license_type, issued);
    c.expiration_date = Some(expires);
    c.support_expiration_date = Some(expires);
    c
}

/// Registers a managed server of `kind` owned by `org`.
pub async fn add_server(app: &TestApp, kind: TargetKind, org: Uuid, name: &str) -> Uuid {
    let uid = Uuid::new_v4();
    app.store
        .insert_server(&ManagedServer {
            uid,
            kind,
            name: name.into(),
            organization_uid: org,
            agent_uid: None,
            created_at: Utc::now(),
            last_seen_at: None,
            reported: Value::Null,
        })
        .await
        .unwrap();
    uid
}

/// Writes a license straight into the store, the way the install pipeline stores it (for
/// fixtures that would take too long to build through PUT).
pub async fn store_license(
    app: &TestApp,
    kind: TargetKind,
    uid: Uuid,
    issuer: &Issuer,
    claims: &LicenseClaims,
) {
    let now = app.clock.now();
    let doc = SlotDocument {
        files: vec![InstalledFile {
            license_id: claims.license_id,
            armoured: issuer.sign(claims),
            key_id: issuer.key.key_id().to_string(),
            claims: claims.clone(),
            installed_at: now,
        }],
        ..SlotDocument::default()
    };
    let existing = app.store.license_slot(uid).await.unwrap();
    app.store
        .save_license_slot(
            &LicenseSlot {
                target_uid: uid,
                kind,
                document: serde_json::to_value(&doc).unwrap(),
                revision: 0,
                updated_at: now,
            },
            existing.map(|s| s.revision),
            &LicenseEvent {
                target_uid: uid,
                at: now,
                actor: "fixture".into(),
                action: "install".into(),
                detail: json!({}),
            },
        )
        .await
        .unwrap();
}

/// Adds a user (the password hash is computed once per test binary) and logs in.
pub async fn user_token(app: &TestApp, name: &str, role: Role, org: Uuid) -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    let hash = HASH
        .get_or_init(|| hash_password(USER_PASSWORD).unwrap())
        .clone();
    app.store
        .insert_user(&User {
            uid: Uuid::new_v4(),
            name: name.into(),
            role,
            organization_uid: org,
            password_hash: hash,
            enabled: true,
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    app.token(name, USER_PASSWORD).await
}

/// The resource path of a target (`/licensing/console` for the console).
pub fn license_path(kind: TargetKind, uid: Uuid) -> String {
    match kind {
        TargetKind::CloudConnectSite => format!("/licensing/sites/{uid}"),
        TargetKind::BackupServer => format!("/licensing/backupServers/{uid}"),
        TargetKind::VOneServer => format!("/licensing/voneServers/{uid}"),
        TargetKind::Vb365Server => format!("/licensing/vb365Servers/{uid}"),
        TargetKind::Console => "/licensing/console".into(),
    }
}

/// `PUT` of a multipart body with one file part named `part`.
pub async fn put_file(
    app: &TestApp,
    token: &str,
    path: &str,
    part: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let form = Form::new().part(
        part.to_string(),
        Part::bytes(bytes)
            .file_name("veeam_license.lic")
            .mime_str("application/octet-stream")
            .unwrap(),
    );
    app.http
        .put(app.url(path))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// Asserts 200 and returns `data`.
pub async fn ok_data(r: reqwest::Response) -> Value {
    let status = r.status();
    let url = r.url().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{url}: {body}");
    body["data"].clone()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::Response {
    app.http
        .request(method, app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, token: &str, path: &str, body: &str) -> reqwest::Response {
    app.http
        .patch(app.url(path))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn post_update(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("{path}/update")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn events(app: &TestApp, uid: Uuid) -> usize {
    app.store.license_events(uid).await.unwrap().len()
}

/// What a target looks like from outside: the resource as GET returns it and its history length.
async fn snapshot(app: &TestApp, token: &str, kind: TargetKind, uid: Uuid) -> (Value, usize) {
    let data = ok_data(app.get(&license_path(kind, uid), token).await).await;
    (data, events(app, uid).await)
}

/// Re-reads the target and asserts it is exactly as `before`.
async fn assert_unchanged(
    app: &TestApp,
    token: &str,
    kind: TargetKind,
    uid: Uuid,
    before: &(Value, usize),
    what: &str,
) {
    let after = snapshot(app, token, kind, uid).await;
    assert_eq!(after.0, before.0, "{what}: the resource changed");
    assert_eq!(after.1, before.1, "{what}: the license history grew");
}

/// `YYYY-MM-DDTHH:MM:SS.fffffff+HH:MM` (conventions §2.1: 7 fractional digits and an offset).
pub fn assert_vspc_datetime(s: &str) {
    let b = s.as_bytes();
    assert_eq!(b.len(), 33, "not a VSPC date-time: {s}");
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 | 30 => *c == b':',
            19 => *c == b'.',
            27 => *c == b'+' || *c == b'-',
            _ => c.is_ascii_digit(),
        };
        assert!(ok, "not a VSPC date-time (position {i}): {s}");
    }
}

fn when(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a date: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tallyman-{tag}-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ------------------------------------------------------------------------------------------------
// Install (§2.4, conventions §7, case 50)
// ------------------------------------------------------------------------------------------------

/// Checks that a rendered resource of `kind` shows what `claims` say.
fn assert_reflects(kind: TargetKind, uid: Uuid, data: &Value, claims: &LicenseClaims) {
    let id = claims.license_id.to_string();
    let exp = vspc_datetime(claims.expiration_date.unwrap());
    assert_vspc_datetime(data["expirationDate"].as_str().unwrap());
    assert_eq!(data["expirationDate"], exp.as_str(), "{data}");
    assert_eq!(data["type"], claims.license_type.as_wire(), "{data}");
    if kind != TargetKind::Console {
        assert_eq!(data["autoUpdateEnabled"], false, "{data}");
    }
    let uid = uid.to_string();
    match kind {
        TargetKind::CloudConnectSite => {
            assert_eq!(data["siteUid"], uid.as_str());
            assert_eq!(data["licenseIds"], json!([id]));
            assert_eq!(data["supportIds"], json!([claims.support_id]));
            assert_eq!(data["company"], claims.company.as_str());
            assert_eq!(data["email"], claims.email.as_str());
            assert_eq!(num(&data["units"]), claims.units.unwrap());
            assert_eq!(data["unitType"], claims.unit_type.unwrap().as_wire());
            assert_eq!(data["cloudConnect"], "Yes");
            assert_eq!(data["packages"], json!(["Suite"]));
            assert_eq!(data["edition"], claims.edition.as_str());
            assert_eq!(data["status"], "Valid", "{data}");
        }
        TargetKind::BackupServer => {
            assert_eq!(data["backupServerUid"], uid.as_str());
            assert_eq!(data["licenseIds"], json!([id]));
            assert_eq!(data["supportIds"], json!([claims.support_id]));
            assert_eq!(data["company"], claims.company.as_str());
            assert_eq!(num(&data["units"]), claims.units.unwrap());
            assert_eq!(data["unitType"], "Instances");
            assert_eq!(data["sectionTypes"], json!(["Instance"]));
            assert_eq!(data["cloudConnect"], "No");
            assert_eq!(data["status"], "Valid", "{data}");
        }
        TargetKind::VOneServer => {
            assert_eq!(data["vOneServerUid"], uid.as_str());
            assert_eq!(data["licenseId"], id.as_str());
            assert_eq!(data["supportId"], claims.support_id.as_str());
            assert_eq!(data["company"], claims.company.as_str());
            assert_eq!(num(&data["units"]), claims.units.unwrap());
            assert_eq!(data["status"], "Valid", "{data}");
            assert!(data["statusMessage"].is_string());
        }
        TargetKind::Vb365Server => {
            assert_eq!(data["vb365ServerUid"], uid.as_str());
            assert_eq!(data["licenseId"], id.as_str());
            assert_eq!(data["supportId"], claims.support_id.as_str());
            assert_eq!(data["company"], claims.company.as_str());
            assert_eq!(
                data["licensedUsers"].as_i64(),
                claims.licensed_users.map(i64::from)
            );
            assert_eq!(data["status"], "Valid", "{data}");
        }
        TargetKind::Console => {
            assert_eq!(data["licenseId"], id.as_str());
            assert_eq!(data["supportId"], claims.support_id.as_str());
            assert_eq!(data["licenseeCompany"], claims.company.as_str());
            assert_eq!(data["licenseeEmail"], claims.email.as_str());
            assert_eq!(num(&data["instances"]), claims.instances.unwrap());
            assert_eq!(data["package"], "Suite");
            assert_eq!(data["status"], "Valid", "{data}");
        }
    }
}

#[tokio::test]
async fn install_on_every_kind_reflects_the_file_and_get_agrees() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        let now = app.clock.now();
        let cases = [
            (
                TargetKind::CloudConnectSite,
                Product::CloudConnectSite,
                LicenseType::Rental,
            ),
            (
                TargetKind::BackupServer,
                Product::BackupAndReplication,
                LicenseType::Subscription,
            ),
            (
                TargetKind::VOneServer,
                Product::VOne,
                LicenseType::Subscription,
            ),
            (
                TargetKind::Vb365Server,
                Product::Vb365,
                LicenseType::Subscription,
            ),
            (
                TargetKind::Console,
                Product::Console,
                LicenseType::Subscription,
            ),
        ];
        // Before any install the console reports no license (it has no `Unlicensed`).
        let bare = ok_data(app.get("/licensing/console", &token).await).await;
        assert_eq!(bare["type"], "NotInstalled", "{bare}");
        assert_eq!(bare["status"], "Error", "{bare}");

        let mut backup_server = Uuid::nil();
        for (kind, product, license_type) in cases {
            let uid = if kind == TargetKind::Console {
                Uuid::nil()
            } else {
                add_server(&app, kind, app.provider.uid, "server").await
            };
            if kind == TargetKind::BackupServer {
                backup_server = uid;
            }
            let path = license_path(kind, uid);
            // Forty days out: clear of every warning window, whatever today's date is.
            let mut claims = claims_expiring(product, license_type, now, now + Duration::days(40));
            claims.company = format!("Licensee of {product}");
            let r = put_file(&app, &token, &path, "license", issuer.sign(&claims).into()).await;
            let data = ok_data(r).await;
            assert_reflects(kind, uid, &data, &claims);
            let read = ok_data(app.get(&path, &token).await).await;
            assert_eq!(read, data, "GET {path} disagrees with the PUT answer");
            assert_eq!(events(&app, uid).await, 1, "one history entry for {path}");
        }

        // Case 50: the part may be named `file` (older Veeam docs), on a server and the console.
        for (kind, uid, product) in [
            (
                TargetKind::BackupServer,
                backup_server,
                Product::BackupAndReplication,
            ),
            (TargetKind::Console, Uuid::nil(), Product::Console),
        ] {
            let path = license_path(kind, uid);
            let claims = claims_expiring(
                product,
                LicenseType::Subscription,
                now,
                now + Duration::days(50),
            );
            let r = put_file(&app, &token, &path, "file", issuer.sign(&claims).into()).await;
            let data = ok_data(r).await;
            assert_reflects(kind, uid, &data, &claims);
        }

        // No file part → 400 naming `license`; JSON body → 415; oversized file → 413. Nothing
        // changes in any of them.
        let path = license_path(TargetKind::BackupServer, backup_server);
        let before = snapshot(&app, &token, TargetKind::BackupServer, backup_server).await;
        let r = app
            .http
            .put(app.url(&path))
            .bearer_auth(&token)
            .multipart(Form::new().text("comment", "no file here"))
            .send()
            .await
            .unwrap();
        let e = error_item(r, 400).await;
        assert_eq!(e["propertyName"], "license", "{e}");
        assert_eq!(e["type"], "logical");
        assert_unchanged(
            &app,
            &token,
            TargetKind::BackupServer,
            backup_server,
            &before,
            "no file part",
        )
        .await;

        let r = app
            .http
            .put(app.url(&path))
            .bearer_auth(&token)
            .json(&json!({"license": "not multipart"}))
            .send()
            .await
            .unwrap();
        let e = error_item(r, 415).await;
        assert_eq!(e["code"], 415);
        assert_unchanged(
            &app,
            &token,
            TargetKind::BackupServer,
            backup_server,
            &before,
            "JSON body",
        )
        .await;

        let big = vec![b'A'; 2 * 1024 * 1024];
        let e = error_item(put_file(&app, &token, &path, "license", big).await, 413).await;
        assert_eq!(e["code"], 413);
        assert_unchanged(
            &app,
            &token,
            TargetKind::BackupServer,
            backup_server,
            &before,
            "oversized file",
        )
        .await;

        // An unknown server, and a server addressed through another kind's path: 404.
        let claims = default_claims(Product::VOne, LicenseType::Subscription, now);
        let file = issuer.sign(&claims);
        let r = put_file(
            &app,
            &token,
            &license_path(TargetKind::VOneServer, Uuid::new_v4()),
            "license",
            file.clone().into(),
        )
        .await;
        assert_eq!(error_item(r, 404).await["code"], 404);
        let r = put_file(
            &app,
            &token,
            &license_path(TargetKind::VOneServer, backup_server),
            "license",
            file.into(),
        )
        .await;
        error_item(r, 404).await;
        assert_unchanged(
            &app,
            &token,
            TargetKind::BackupServer,
            backup_server,
            &before,
            "PUT through the Veeam ONE path",
        )
        .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn invalid_files_are_refused_with_1300_and_change_nothing() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        let now = app.clock.now();
        let org = app.provider.uid;
        let later = now + Duration::days(90);

        // Every target starts with a valid license, so "unchanged" means something.
        let bs = add_server(&app, TargetKind::BackupServer, org, "vbr").await;
        let vone = add_server(&app, TargetKind::VOneServer, org, "vone").await;
        let site = add_server(&app, TargetKind::CloudConnectSite, org, "site").await;
        for (kind, uid, product) in [
            (TargetKind::BackupServer, bs, Product::BackupAndReplication),
            (TargetKind::VOneServer, vone, Product::VOne),
            (
                TargetKind::CloudConnectSite,
                site,
                Product::CloudConnectSite,
            ),
            (TargetKind::Console, Uuid::nil(), Product::Console),
        ] {
            let claims = claims_expiring(product, LicenseType::Subscription, now, later);
            let r = put_file(
                &app,
                &token,
                &license_path(kind, uid),
                "license",
                issuer.sign(&claims).into(),
            )
            .await;
            ok_data(r).await;
        }

        let vbr = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now,
            later,
        );
        let good = issuer.sign(&vbr);

        // A byte flipped inside the signed token.
        let start = good.find("v4.public.").unwrap() + "v4.public.".len() + 40;
        let mut tampered = good.clone().into_bytes();
        tampered[start] = if tampered[start] == b'A' { b'B' } else { b'A' };
        // Signed by an issuer this server does not trust.
        let stranger = Issuer::new().sign(&vbr);
        // Expired long ago: far past the 30-day subscription grace.
        let expired = issuer.sign(&claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now - Duration::days(400),
            now - Duration::days(100),
        ));
        // A Backup & Replication file (package Backup, no Veeam ONE) on a Veeam ONE server, and
        // one without Cloud Connect on a site.
        let mut no_cc = vbr.clone();
        no_cc.license_id = Uuid::new_v4();
        assert_eq!(no_cc.cloud_connect, CloudConnect::No);
        let no_cc = issuer.sign(&no_cc);
        // A Microsoft 365 license on the console.
        let m365 = issuer.sign(&claims_expiring(
            Product::Vb365,
            LicenseType::Subscription,
            now,
            later,
        ));

        let refusals: Vec<(&str, TargetKind, Uuid, Vec<u8>)> = vec![
            ("tampered file", TargetKind::BackupServer, bs, tampered),
            (
                "unknown issuer",
                TargetKind::BackupServer,
                bs,
                stranger.into(),
            ),
            (
                "expired past grace",
                TargetKind::BackupServer,
                bs,
                expired.into(),
            ),
            (
                "not a license at all",
                TargetKind::BackupServer,
                bs,
                b"hello, I am a text file".to_vec(),
            ),
            (
                "Backup & Replication file on Veeam ONE",
                TargetKind::VOneServer,
                vone,
                good.clone().into(),
            ),
            (
                "cloudConnect No on a site",
                TargetKind::CloudConnectSite,
                site,
                no_cc.into(),
            ),
            (
                "Microsoft 365 file on the console",
                TargetKind::Console,
                Uuid::nil(),
                m365.into(),
            ),
        ];
        for (what, kind, uid, file) in refusals {
            let before = snapshot(&app, &token, kind, uid).await;
            let r = put_file(&app, &token, &license_path(kind, uid), "license", file).await;
            let e = error_item(r, 400).await;
            assert_eq!(e["code"], 1300, "{what}: {e}");
            assert_eq!(e["type"], "logical", "{what}: {e}");
            assert_unchanged(&app, &token, kind, uid, &before, what).await;
        }

        // The untampered file still installs: the refusals were about the files.
        ok_data(
            put_file(
                &app,
                &token,
                &license_path(TargetKind::BackupServer, bs),
                "license",
                good.into(),
            )
            .await,
        )
        .await;
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Backup & Replication merge and deletes (§2.4 step 2, §2.7)
// ------------------------------------------------------------------------------------------------

fn ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn backup_server_merge_replace_and_delete_sections() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        let now = app.clock.now();
        let org = app.provider.uid;
        let merged_uid = add_server(&app, TargetKind::BackupServer, org, "merged").await;
        let replaced_uid = add_server(&app, TargetKind::BackupServer, org, "replaced").await;
        let merged_path = license_path(TargetKind::BackupServer, merged_uid);
        let replaced_path = license_path(TargetKind::BackupServer, replaced_uid);

        let socket = default_claims(Product::BackupAndReplication, LicenseType::Perpetual, now);
        let instance = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now,
            now + Duration::days(200),
        );
        assert_eq!(socket.company, instance.company);
        let mut other_licensee = instance.clone();
        other_licensee.license_id = Uuid::new_v4();
        other_licensee.company = "Other Licensee Ltd".into();

        for path in [&merged_path, &replaced_path] {
            let data =
                ok_data(put_file(&app, &token, path, "license", issuer.sign(&socket).into()).await)
                    .await;
            assert_eq!(data["type"], "Perpetual", "{data}");
            assert_eq!(data["sectionTypes"], json!(["Socket"]), "{data}");
            assert_eq!(num(&data["sockets"]), 4.0);
            assert!(data["expirationDate"].is_null(), "{data}");
        }

        // Same licensee: perpetual socket + subscription instance merge.
        let merged = ok_data(
            put_file(
                &app,
                &token,
                &merged_path,
                "license",
                issuer.sign(&instance).into(),
            )
            .await,
        )
        .await;
        let mut both = vec![
            socket.license_id.to_string(),
            instance.license_id.to_string(),
        ];
        both.sort();
        assert_eq!(ids(&merged["licenseIds"]), both, "{merged}");
        assert_eq!(
            ids(&merged["sectionTypes"]),
            vec!["Instance".to_string(), "Socket".to_string()],
            "{merged}"
        );
        assert_eq!(num(&merged["sockets"]), 4.0);
        assert_eq!(num(&merged["units"]), 100.0);
        assert_eq!(merged["type"], "Subscription");
        assert_eq!(
            merged["expirationDate"],
            vspc_datetime(instance.expiration_date.unwrap()).as_str()
        );
        assert_eq!(
            ok_data(app.get(&merged_path, &token).await).await,
            merged,
            "GET agrees with the merge"
        );

        // A different licensee: the instance file replaces the socket license.
        let replaced = ok_data(
            put_file(
                &app,
                &token,
                &replaced_path,
                "license",
                issuer.sign(&other_licensee).into(),
            )
            .await,
        )
        .await;
        assert_eq!(
            ids(&replaced["licenseIds"]),
            vec![other_licensee.license_id.to_string()],
            "{replaced}"
        );
        assert_eq!(replaced["sectionTypes"], json!(["Instance"]));
        assert_eq!(replaced["company"], "Other Licensee Ltd");
        assert!(replaced["sockets"].is_null(), "{replaced}");

        // Delete refusals change nothing: an unknown section (400 naming the parameter) and a
        // section the license does not have.
        let before = snapshot(&app, &token, TargetKind::BackupServer, merged_uid).await;
        let r = send(
            &app,
            reqwest::Method::DELETE,
            &format!("{merged_path}?sectionForDelete=bogus"),
            &token,
        )
        .await;
        let e = error_item(r, 400).await;
        assert_eq!(e["parameterName"], "sectionForDelete", "{e}");
        assert_unchanged(
            &app,
            &token,
            TargetKind::BackupServer,
            merged_uid,
            &before,
            "sectionForDelete=bogus",
        )
        .await;
        let before_replaced = snapshot(&app, &token, TargetKind::BackupServer, replaced_uid).await;
        let r = send(
            &app,
            reqwest::Method::DELETE,
            &format!("{replaced_path}?sectionForDelete=Socket"),
            &token,
        )
        .await;
        assert_eq!(error_item(r, 400).await["type"], "logical");
        assert_unchanged(
            &app,
            &token,
            TargetKind::BackupServer,
            replaced_uid,
            &before_replaced,
            "sectionForDelete=Socket without a socket section",
        )
        .await;

        // Removing the socket part leaves the instance part.
        let r = send(
            &app,
            reqwest::Method::DELETE,
            &format!("{merged_path}?sectionForDelete=Socket"),
            &token,
        )
        .await;
        assert_eq!(r.status(), 200);
        let empty: Value = r.json().await.unwrap();
        assert_eq!(empty["errors"], json!([]), "{empty}");
        assert!(empty["data"].is_object(), "{empty}");
        let left = ok_data(app.get(&merged_path, &token).await).await;
        assert_eq!(
            ids(&left["licenseIds"]),
            vec![instance.license_id.to_string()],
            "{left}"
        );
        assert_eq!(left["sectionTypes"], json!(["Instance"]), "{left}");
        assert_eq!(left["type"], "Subscription");
        assert_eq!(left["status"], "Valid");
        assert_eq!(events(&app, merged_uid).await, before.1 + 1);

        // Removing everything drops the server to Community Edition.
        let r = send(&app, reqwest::Method::DELETE, &merged_path, &token).await;
        assert_eq!(r.status(), 200);
        let gone = ok_data(app.get(&merged_path, &token).await).await;
        assert_eq!(gone["type"], "Community", "{gone}");
        assert_eq!(gone["status"], "Unlicensed", "{gone}");
        assert_eq!(gone["licenseIds"], json!([]), "{gone}");
        // Nothing to patch on a Community server.
        let before = snapshot(&app, &token, TargetKind::BackupServer, merged_uid).await;
        let r = patch(
            &app,
            &token,
            &merged_path,
            r#"[{"op":"replace","path":"/autoUpdateEnabled","value":true}]"#,
        )
        .await;
        assert_eq!(error_item(r, 400).await["code"], 1001);
        assert_unchanged(
            &app,
            &token,
            TargetKind::BackupServer,
            merged_uid,
            &before,
            "PATCH on Community",
        )
        .await;
        // A new file licenses it again.
        let again = ok_data(
            put_file(
                &app,
                &token,
                &merged_path,
                "license",
                issuer.sign(&instance).into(),
            )
            .await,
        )
        .await;
        assert_eq!(again["type"], "Subscription");
        assert_eq!(again["status"], "Valid");

        // Veeam ONE: delete leaves the server unlicensed.
        let vone = add_server(&app, TargetKind::VOneServer, org, "vone").await;
        let vone_path = license_path(TargetKind::VOneServer, vone);
        let claims = claims_expiring(
            Product::VOne,
            LicenseType::Subscription,
            now,
            now + Duration::days(90),
        );
        ok_data(
            put_file(
                &app,
                &token,
                &vone_path,
                "license",
                issuer.sign(&claims).into(),
            )
            .await,
        )
        .await;
        let r = send(&app, reqwest::Method::DELETE, &vone_path, &token).await;
        assert_eq!(r.status(), 200);
        let gone = ok_data(app.get(&vone_path, &token).await).await;
        assert_eq!(gone["status"], "Unlicensed", "{gone}");
        assert!(gone["licenseId"].is_null(), "{gone}");

        // Sites, Microsoft 365 servers and the console have no DELETE.
        let site = add_server(&app, TargetKind::CloudConnectSite, org, "site").await;
        let m365 = add_server(&app, TargetKind::Vb365Server, org, "m365").await;
        for path in [
            license_path(TargetKind::CloudConnectSite, site),
            license_path(TargetKind::Vb365Server, m365),
            license_path(TargetKind::Console, Uuid::nil()),
        ] {
            let r = send(&app, reqwest::Method::DELETE, &path, &token).await;
            error_item(r, 405).await;
        }
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Status computed at read time (§2.1, §2.2)
// ------------------------------------------------------------------------------------------------

async fn status_in_list(app: &TestApp, token: &str, uid: Uuid) -> Value {
    let list: Value = app
        .get("/licensing/backupServers?limit=500", token)
        .await
        .json()
        .await
        .unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["backupServerUid"] == uid.to_string().as_str())
        .map(|x| x["status"].clone())
        .unwrap()
}

#[tokio::test]
async fn status_follows_the_clock_through_warning_grace_and_error() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let mut token = app.admin_token().await;
        let now = app.clock.now();
        let org = app.provider.uid;
        // A subscription ending in 60 days (30-day warning window and grace) and a rental
        // ending in 3 days (7-day warning window, 60-day grace).
        let sub = add_server(&app, TargetKind::BackupServer, org, "subscription").await;
        let rent = add_server(&app, TargetKind::BackupServer, org, "rental").await;
        let sub_claims = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now,
            now + Duration::days(60),
        );
        let rent_claims = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Rental,
            now - Duration::days(20),
            now + Duration::days(3),
        );
        for (uid, claims) in [(sub, &sub_claims), (rent, &rent_claims)] {
            let path = license_path(TargetKind::BackupServer, uid);
            ok_data(put_file(&app, &token, &path, "license", issuer.sign(claims).into()).await)
                .await;
        }

        let status = |uid: Uuid, token: String| {
            let app = &app;
            async move {
                let one = ok_data(
                    app.get(&license_path(TargetKind::BackupServer, uid), &token)
                        .await,
                )
                .await;
                let listed = status_in_list(app, &token, uid).await;
                assert_eq!(one["status"], listed, "list and GET agree");
                one["status"].as_str().unwrap().to_string()
            }
        };
        assert_eq!(status(sub, token.clone()).await, "Valid");
        assert_eq!(status(rent, token.clone()).await, "Warning");

        // 61 days later: both past expiry, both inside grace.
        app.clock.advance(Duration::days(61));
        token = app.admin_token().await;
        assert_eq!(status(sub, token.clone()).await, "Expired");
        assert_eq!(status(rent, token.clone()).await, "Expired");

        // 31 more days: the subscription's 30-day grace is over, the rental's 60 days too.
        app.clock.advance(Duration::days(31));
        token = app.admin_token().await;
        assert_eq!(status(sub, token.clone()).await, "Error");
        assert_eq!(status(rent, token.clone()).await, "Error");

        // Reads never wrote anything: one install event each.
        assert_eq!(events(&app, sub).await, 1);
        assert_eq!(events(&app, rent).await, 1);
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// JSON Patch (§2.6, conventions §6, cases 47–49 and 43)
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn json_patch_of_auto_update_enabled() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        let now = app.clock.now();
        let org = app.provider.uid;
        let kind = TargetKind::BackupServer;
        let uid = add_server(&app, kind, org, "vbr").await;
        let path = license_path(kind, uid);
        let claims = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now,
            now + Duration::days(200),
        );
        let installed =
            ok_data(put_file(&app, &token, &path, "license", issuer.sign(&claims).into()).await)
                .await;
        assert_eq!(installed["autoUpdateEnabled"], false);

        let flag = |expected: bool, what: &'static str| {
            let (app, token, path) = (&app, &token, &path);
            async move {
                let read = ok_data(app.get(path, token).await).await;
                assert_eq!(read["autoUpdateEnabled"], expected, "{what}: GET disagrees");
            }
        };
        let ok_patch = |body: &'static str, expected: bool| {
            let (app, token, path) = (&app, &token, &path);
            async move {
                let data = ok_data(patch(app, token, path, body).await).await;
                assert_eq!(data["autoUpdateEnabled"], expected, "{body}: {data}");
                assert_eq!(data["backupServerUid"], uid.to_string().as_str());
            }
        };

        // Case 47.
        ok_patch(
            r#"[{"op":"replace","path":"/autoUpdateEnabled","value":true}]"#,
            true,
        )
        .await;
        flag(true, "case 47").await;
        // Case 48: no leading slash, PascalCase, value as a string.
        ok_patch(
            r#"[{"op":"replace","path":"autoUpdateEnabled","value":"false"}]"#,
            false,
        )
        .await;
        flag(false, "no leading slash").await;
        ok_patch(
            r#"[{"op":"replace","path":"/AutoUpdateEnabled","value":"true"}]"#,
            true,
        )
        .await;
        ok_patch(
            r#"[{"op":"replace","path":"/AutoUpdateEnabled","value":"false"}]"#,
            false,
        )
        .await;
        flag(false, "PascalCase").await;
        // A single operation object, and trailing commas (Veeam's own samples).
        ok_patch(
            r#"{"op":"replace","path":"/autoUpdateEnabled","value":true}"#,
            true,
        )
        .await;
        flag(true, "single object").await;
        ok_patch(
            r#"[{"op":"replace","path":"/autoUpdateEnabled","value":false,},]"#,
            false,
        )
        .await;
        flag(false, "trailing comma").await;
        // `application/json-patch+json` is accepted as well.
        let r = app
            .http
            .patch(app.url(&path))
            .bearer_auth(&token)
            .header("Content-Type", "application/json-patch+json")
            .body(r#"[{"op":"replace","path":"/autoUpdateEnabled","value":true}]"#)
            .send()
            .await
            .unwrap();
        assert_eq!(ok_data(r).await["autoUpdateEnabled"], true);

        // An empty patch changes nothing and answers the resource.
        let before = snapshot(&app, &token, kind, uid).await;
        let data = ok_data(patch(&app, &token, &path, "[]").await).await;
        assert_eq!(data, before.0);
        assert_unchanged(&app, &token, kind, uid, &before, "empty patch").await;

        // Case 49 and the other refusals: 400, code 1001, the failed op echoed, nothing changed.
        let test_op = json!({"op":"test","path":"/autoUpdateEnabled","value":false});
        let refusals: Vec<(&str, Value, Value)> = vec![
            (
                "failed test",
                json!([test_op, {"op":"replace","path":"/autoUpdateEnabled","value":true}]),
                test_op.clone(),
            ),
            (
                "unknown path",
                json!([{"op":"replace","path":"/noSuchField","value":1}]),
                json!({"op":"replace","path":"/noSuchField","value":1}),
            ),
            (
                "read-only path",
                json!([{"op":"replace","path":"/status","value":"Valid"}]),
                json!({"op":"replace","path":"/status","value":"Valid"}),
            ),
            (
                "all or nothing",
                json!([
                    {"op":"replace","path":"/autoUpdateEnabled","value":false},
                    {"op":"replace","path":"/units","value":5}
                ]),
                json!({"op":"replace","path":"/units","value":5}),
            ),
        ];
        for (what, body, failed) in refusals {
            let before = snapshot(&app, &token, kind, uid).await;
            assert_eq!(before.0["autoUpdateEnabled"], true);
            let r = patch(&app, &token, &path, &body.to_string()).await;
            let e = error_item(r, 400).await;
            assert_eq!(e["code"], 1001, "{what}: {e}");
            assert_eq!(e["type"], "logical", "{what}: {e}");
            assert_eq!(e["failedJsonPatch"], failed, "{what}: {e}");
            assert_unchanged(&app, &token, kind, uid, &before, what).await;
        }

        // Case 43: the same X-Request-id twice → byte-identical answers, one change. Another
        // write in between shows the repeat is replayed, not executed again.
        let before = events(&app, uid).await;
        let request_id = Uuid::new_v4().to_string();
        let off = r#"[{"op":"replace","path":"/autoUpdateEnabled","value":false}]"#;
        let on = r#"[{"op":"replace","path":"/autoUpdateEnabled","value":true}]"#;
        let mut bodies = Vec::new();
        for round in 0..2 {
            let r = app
                .http
                .patch(app.url(&path))
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .header("X-Request-id", &request_id)
                .body(off)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            bodies.push(r.bytes().await.unwrap());
            if round == 0 {
                flag(false, "first request").await;
                ok_data(patch(&app, &token, &path, on).await).await;
            }
        }
        assert_eq!(bodies[0], bodies[1], "replayed body differs");
        assert_eq!(
            events(&app, uid).await,
            before + 2,
            "the repeat was executed again"
        );
        flag(true, "the repeat must not switch it off again").await;
        ok_data(patch(&app, &token, &path, off).await).await;

        // Evaluation licenses keep auto-update on.
        let eval_uid = add_server(&app, kind, org, "evaluation").await;
        let eval_path = license_path(kind, eval_uid);
        let eval = default_claims(Product::BackupAndReplication, LicenseType::Evaluation, now);
        let data = ok_data(
            put_file(
                &app,
                &token,
                &eval_path,
                "license",
                issuer.sign(&eval).into(),
            )
            .await,
        )
        .await;
        assert_eq!(data["type"], "Evaluation");
        assert_eq!(data["autoUpdateEnabled"], true, "forced on: {data}");
        let before = snapshot(&app, &token, kind, eval_uid).await;
        let off = r#"[{"op":"replace","path":"/autoUpdateEnabled","value":false}]"#;
        let e = error_item(patch(&app, &token, &eval_path, off).await, 400).await;
        assert_eq!(e["code"], 1001, "{e}");
        assert!(e["failedJsonPatch"].is_object(), "{e}");
        assert_unchanged(&app, &token, kind, eval_uid, &before, "Evaluation off").await;
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Update through the license portal (§2.5)
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn update_installs_the_renewal_a_real_portal_issues() {
    for backend in backends() {
        let issuer = Issuer::new();
        let now = Utc::now();
        // A rental contract that ends in three days (the portal renews it) and a console
        // subscription far from its end (nothing newer).
        let rental = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Rental,
            now - Duration::days(20),
            now + Duration::days(3),
        );
        let console = claims_expiring(
            Product::Console,
            LicenseType::Subscription,
            now,
            now + Duration::days(300),
        );
        let dir = temp_dir("portal");
        std::fs::write(dir.join("rental.lic"), issuer.sign(&rental)).unwrap();
        std::fs::write(dir.join("console.lic"), issuer.sign(&console)).unwrap();
        let (url, portal_task) = tallyman_portal::start_local(issuer.copy(), dir.clone())
            .await
            .unwrap();
        let portal: Arc<dyn LicensePortal> = Arc::new(PortalClient::new(&url).unwrap());
        let app = TestApp::spawn_licensing(
            backend,
            HttpConfig::default(),
            issuer.key.public(),
            Some(portal),
        )
        .await;
        let token = app.admin_token().await;

        let uid = add_server(&app, TargetKind::BackupServer, app.provider.uid, "vbr").await;
        let path = license_path(TargetKind::BackupServer, uid);
        let installed =
            ok_data(put_file(&app, &token, &path, "license", issuer.sign(&rental).into()).await)
                .await;
        assert_eq!(installed["status"], "Warning", "expires in 3 days");

        let renewed = ok_data(post_update(&app, &token, &path).await).await;
        assert!(
            when(&renewed["expirationDate"]) > when(&installed["expirationDate"]),
            "not renewed: {renewed}"
        );
        assert_vspc_datetime(renewed["expirationDate"].as_str().unwrap());
        assert_eq!(
            renewed["licenseIds"],
            json!([rental.license_id.to_string()])
        );
        assert_eq!(renewed["type"], "Rental");
        assert_eq!(renewed["status"], "Valid", "{renewed}");
        assert_eq!(ok_data(app.get(&path, &token).await).await, renewed);

        // Nothing newer for the console: 200, the license as it was, and the attempt recorded.
        let console_path = license_path(TargetKind::Console, Uuid::nil());
        let before = ok_data(
            put_file(
                &app,
                &token,
                &console_path,
                "license",
                issuer.sign(&console).into(),
            )
            .await,
        )
        .await;
        // Action POSTs take no body; clients may still send an empty JSON one (conventions §9).
        let r = app
            .http
            .post(app.url(&format!("{console_path}/update")))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .send()
            .await
            .unwrap();
        let after = ok_data(r).await;
        assert_eq!(after["lastUpdateStatus"], "Success", "{after}");
        assert!(after["lastUpdateMessage"].is_string(), "{after}");
        assert_vspc_datetime(after["lastUpdateDate"].as_str().unwrap());
        for key in ["licenseId", "expirationDate", "type", "instances", "status"] {
            assert_eq!(
                after[key], before[key],
                "{key} changed without a newer file"
            );
        }
        let read = ok_data(app.get(&console_path, &token).await).await;
        assert_eq!(read["lastUpdateStatus"], "Success");

        app.stop().await;
        portal_task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn update_without_a_portal_or_with_an_unreachable_one() {
    for backend in backends() {
        let issuer = Issuer::new();
        let now = Utc::now();
        let console = claims_expiring(
            Product::Console,
            LicenseType::Subscription,
            now,
            now + Duration::days(300),
        );
        let console_path = license_path(TargetKind::Console, Uuid::nil());

        // No portal configured: 400 that says so; nothing changes.
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let token = app.admin_token().await;
        ok_data(
            put_file(
                &app,
                &token,
                &console_path,
                "license",
                issuer.sign(&console).into(),
            )
            .await,
        )
        .await;
        let before = snapshot(&app, &token, TargetKind::Console, Uuid::nil()).await;
        let e = error_item(post_update(&app, &token, &console_path).await, 400).await;
        assert_eq!(e["type"], "logical");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("portal"),
            "the message should say no portal is configured: {e}"
        );
        assert_unchanged(
            &app,
            &token,
            TargetKind::Console,
            Uuid::nil(),
            &before,
            "update without a portal",
        )
        .await;
        app.stop().await;

        // A portal URL on a closed port: 520 retryableLogical; the license stays, the failed
        // attempt shows in lastUpdateStatus.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let portal: Arc<dyn LicensePortal> =
            Arc::new(PortalClient::new(&format!("http://127.0.0.1:{closed}")).unwrap());
        let app = TestApp::spawn_licensing(
            backend,
            HttpConfig::default(),
            issuer.key.public(),
            Some(portal),
        )
        .await;
        let token = app.admin_token().await;
        let installed = ok_data(
            put_file(
                &app,
                &token,
                &console_path,
                "license",
                issuer.sign(&console).into(),
            )
            .await,
        )
        .await;
        let e = error_item(post_update(&app, &token, &console_path).await, 520).await;
        assert_eq!(e["type"], "retryableLogical", "{e}");
        let read = ok_data(app.get(&console_path, &token).await).await;
        for key in ["licenseId", "expirationDate", "type", "instances"] {
            assert_eq!(
                read[key], installed[key],
                "{key} changed by a failed update"
            );
        }
        assert_eq!(read["lastUpdateStatus"], "Error", "{read}");
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Roles and tenant scope (§6 of licensing.md; conventions §10 cases 12–13)
// ------------------------------------------------------------------------------------------------

/// The 26 license operations on one target of each kind, as (method, path, body).
enum Body {
    None,
    File,
    Patch,
}

fn operations(
    site: Uuid,
    bs: Uuid,
    vone: Uuid,
    m365: Uuid,
) -> Vec<(reqwest::Method, String, Body)> {
    use reqwest::Method as M;
    let mut ops = Vec::new();
    let per_kind = [
        ("sites", site, false),
        ("backupServers", bs, true),
        ("voneServers", vone, true),
        ("vb365Servers", m365, false),
    ];
    for (name, uid, deletable) in per_kind {
        let one = format!("/licensing/{name}/{uid}");
        ops.push((M::GET, format!("/licensing/{name}"), Body::None));
        ops.push((M::GET, one.clone(), Body::None));
        ops.push((M::PUT, one.clone(), Body::File));
        if deletable {
            ops.push((M::DELETE, one.clone(), Body::None));
        }
        ops.push((M::PATCH, one.clone(), Body::Patch));
        ops.push((M::POST, format!("{one}/update"), Body::None));
    }
    ops.push((M::GET, "/licensing/console".into(), Body::None));
    ops.push((M::PUT, "/licensing/console".into(), Body::File));
    ops.push((M::POST, "/licensing/console/update".into(), Body::None));
    ops.push((M::GET, "/licensing/console/settings".into(), Body::None));
    assert_eq!(ops.len(), 26);
    ops
}

async fn call(
    app: &TestApp,
    token: &str,
    method: &reqwest::Method,
    path: &str,
    body: &Body,
    file: &str,
) -> reqwest::Response {
    match body {
        Body::File => put_file(app, token, path, "license", file.as_bytes().to_vec()).await,
        Body::Patch => {
            patch(
                app,
                token,
                path,
                r#"[{"op":"replace","path":"/autoUpdateEnabled","value":true}]"#,
            )
            .await
        }
        Body::None => send(app, method.clone(), path, token).await,
    }
}

/// The history lengths of `targets`.
async fn history(app: &TestApp, targets: &[(TargetKind, Uuid)]) -> Vec<usize> {
    let mut n = Vec::new();
    for (_, uid) in targets {
        n.push(events(app, *uid).await);
    }
    n
}

#[tokio::test]
async fn roles_and_tenant_scope() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, HttpConfig::default(), issuer.key.public(), None)
                .await;
        let admin = app.admin_token().await;
        let now = app.clock.now();
        let later = now + Duration::days(200);
        let provider = app.provider.uid;
        let reseller_a = app
            .add_org("Reseller A", OrganizationType::Reseller, provider)
            .await;
        let reseller_b = app
            .add_org("Reseller B", OrganizationType::Reseller, provider)
            .await;
        let a1 = app
            .add_org("A One", OrganizationType::Company, reseller_a.uid)
            .await;
        let a2 = app
            .add_org("A Two", OrganizationType::Company, reseller_a.uid)
            .await;
        let b1 = app
            .add_org("B One", OrganizationType::Company, reseller_b.uid)
            .await;

        let bs_claims = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now,
            later,
        );
        let mut servers = Vec::new();
        for (org, name) in [
            (a1.uid, "a1-1"),
            (a1.uid, "a1-2"),
            (a2.uid, "a2-1"),
            (b1.uid, "b1-1"),
            (provider, "hosted"),
        ] {
            let uid = add_server(&app, TargetKind::BackupServer, org, name).await;
            store_license(&app, TargetKind::BackupServer, uid, &issuer, &bs_claims).await;
            servers.push(uid);
        }
        let (a_servers, b_server, hosted) = (&servers[..3], servers[3], servers[4]);
        // One target of every kind, owned by company A1.
        let site = add_server(&app, TargetKind::CloudConnectSite, a1.uid, "site").await;
        let vone = add_server(&app, TargetKind::VOneServer, a1.uid, "vone").await;
        let m365 = add_server(&app, TargetKind::Vb365Server, a1.uid, "m365").await;
        let bs = a_servers[0];
        let site_claims = claims_expiring(
            Product::CloudConnectSite,
            LicenseType::Subscription,
            now,
            later,
        );
        store_license(
            &app,
            TargetKind::CloudConnectSite,
            site,
            &issuer,
            &site_claims,
        )
        .await;
        let console_claims =
            claims_expiring(Product::Console, LicenseType::Subscription, now, later);
        let file = issuer.sign(&bs_claims);

        let targets = [
            (TargetKind::CloudConnectSite, site),
            (TargetKind::BackupServer, bs),
            (TargetKind::VOneServer, vone),
            (TargetKind::Vb365Server, m365),
            (TargetKind::Console, Uuid::nil()),
        ];
        let ops = operations(site, bs, vone, m365);

        // Company owners and portal operators: 403 on every license operation, nothing changes.
        let owner = user_token(&app, "owner-a1", Role::CompanyOwner, a1.uid).await;
        let operator = user_token(&app, "operator", Role::PortalOperator, provider).await;
        let start = history(&app, &targets).await;
        for (who, token) in [("CompanyOwner", &owner), ("PortalOperator", &operator)] {
            for (method, path, body) in &ops {
                let r = call(&app, token, method, path, body, &file).await;
                let e = error_item(r, 403).await;
                assert_eq!(e["type"], "security", "{who} {method} {path}: {e}");
            }
        }
        assert_eq!(
            history(&app, &targets).await,
            start,
            "a refused call changed a license"
        );

        // Read-only token of the portal administrator: reads work (case 12 analogue), every
        // write is 403 `security` (case 13).
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
        let ro = ro["access_token"].as_str().unwrap().to_string();
        for (method, path, body) in &ops {
            let r = call(&app, &ro, method, path, body, &file).await;
            if *method == reqwest::Method::GET {
                assert_eq!(r.status(), 200, "read-only GET {path}");
            } else {
                let e = error_item(r, 403).await;
                assert_eq!(e["type"], "security", "read-only {method} {path}: {e}");
            }
        }
        assert_eq!(
            history(&app, &targets).await,
            start,
            "a read-only call changed a license"
        );

        // A service provider administrator of reseller A: A's companies' servers only.
        let spa = user_token(
            &app,
            "spa-a",
            Role::ServiceProviderAdministrator,
            reseller_a.uid,
        )
        .await;
        let list: Value = app
            .get("/licensing/backupServers", &spa)
            .await
            .json()
            .await
            .unwrap();
        let mut seen = ids(&Value::Array(
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["backupServerUid"].clone())
                .collect(),
        ));
        seen.sort();
        let mut expected: Vec<String> = a_servers.iter().map(|u| u.to_string()).collect();
        expected.sort();
        assert_eq!(seen, expected, "{list}");
        assert_eq!(list["meta"]["pagingInfo"]["total"], 3, "{list}");
        ok_data(
            app.get(&license_path(TargetKind::BackupServer, a_servers[2]), &spa)
                .await,
        )
        .await;
        for other in [b_server, hosted] {
            let path = license_path(TargetKind::BackupServer, other);
            error_item(app.get(&path, &spa).await, 404).await;
            let before = snapshot(&app, &admin, TargetKind::BackupServer, other).await;
            let r = put_file(&app, &spa, &path, "license", file.clone().into()).await;
            error_item(r, 404).await;
            let r = patch(
                &app,
                &spa,
                &path,
                r#"[{"op":"replace","path":"/autoUpdateEnabled","value":true}]"#,
            )
            .await;
            error_item(r, 404).await;
            error_item(send(&app, reqwest::Method::DELETE, &path, &spa).await, 404).await;
            assert_unchanged(
                &app,
                &admin,
                TargetKind::BackupServer,
                other,
                &before,
                "out of scope",
            )
            .await;
        }
        // Inside the scope it may install; sites and the console are not for it.
        let fresh = claims_expiring(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now,
            later + Duration::days(1),
        );
        let data = ok_data(
            put_file(
                &app,
                &spa,
                &license_path(TargetKind::BackupServer, a_servers[1]),
                "license",
                issuer.sign(&fresh).into(),
            )
            .await,
        )
        .await;
        assert_eq!(data["licenseIds"], json!([fresh.license_id.to_string()]));
        for path in [
            "/licensing/sites".to_string(),
            license_path(TargetKind::CloudConnectSite, site),
            "/licensing/console".to_string(),
            "/licensing/console/settings".to_string(),
        ] {
            assert_eq!(
                error_item(app.get(&path, &spa).await, 403).await["type"],
                "security"
            );
        }

        // A site administrator may use site licenses, not the console.
        let site_admin = user_token(&app, "site-admin", Role::SiteAdministrator, provider).await;
        let site_path = license_path(TargetKind::CloudConnectSite, site);
        let sites: Value = app
            .get("/licensing/sites", &site_admin)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            sites["data"][0]["siteUid"],
            site.to_string().as_str(),
            "{sites}"
        );
        let new_site = claims_expiring(
            Product::CloudConnectSite,
            LicenseType::Subscription,
            now,
            later + Duration::days(2),
        );
        let data = ok_data(
            put_file(
                &app,
                &site_admin,
                &site_path,
                "license",
                issuer.sign(&new_site).into(),
            )
            .await,
        )
        .await;
        assert_eq!(data["licenseIds"], json!([new_site.license_id.to_string()]));
        let data = ok_data(
            patch(
                &app,
                &site_admin,
                &site_path,
                r#"[{"op":"replace","path":"/autoUpdateEnabled","value":true}]"#,
            )
            .await,
        )
        .await;
        assert_eq!(data["autoUpdateEnabled"], true);
        let console_before = events(&app, Uuid::nil()).await;
        for (method, path, body) in ops
            .iter()
            .filter(|(_, p, _)| p.starts_with("/licensing/console"))
        {
            let r = call(
                &app,
                &site_admin,
                method,
                path,
                body,
                &issuer.sign(&console_claims),
            )
            .await;
            assert_eq!(
                error_item(r, 403).await["type"],
                "security",
                "{method} {path}"
            );
        }
        assert_eq!(events(&app, Uuid::nil()).await, console_before);

        // Only the portal administrator touches the console.
        let data = ok_data(
            put_file(
                &app,
                &admin,
                "/licensing/console",
                "license",
                issuer.sign(&console_claims).into(),
            )
            .await,
        )
        .await;
        assert_eq!(
            data["licenseId"],
            console_claims.license_id.to_string().as_str()
        );
        let settings = ok_data(app.get("/licensing/console/settings", &admin).await).await;
        assert!(settings["isAutoUpdateEnabled"].is_boolean(), "{settings}");
        app.stop().await;
    }
}
