//! End-to-end tests: each starts the real portal on 127.0.0.1:0 over a temporary licenses
//! directory, with a generated key and a manual clock, and talks to it over HTTP, mostly through
//! `PortalClient`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use serde_json::Value;
use tallyman_domain::ManualClock;
use tallyman_domain::{LicenseType, Product};
use tallyman_license::{default_claims, issue, verify, IssuerKey, LicenseClaims, TrustStore};
use tallyman_portal::server::{self, PortalOptions, PortalState};
use tallyman_portal::{PortalClient, PortalError, RenewalPolicy};
use tokio::sync::oneshot;
use uuid::Uuid;

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("valid test time")
}

fn trusting(key: &IssuerKey) -> TrustStore {
    [key.public()].into_iter().collect()
}

/// Signs `claims` with `key` and drops the file into `dir` as `name`.
fn drop_file(dir: &Path, name: &str, claims: &LicenseClaims, key: &IssuerKey) -> String {
    let file = issue(claims, key).expect("issue");
    std::fs::write(dir.join(name), &file).expect("write license");
    file
}

fn license_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lic"))
        .collect();
    files.sort();
    files
}

/// A running portal; dropping it shuts the server down.
struct Portal {
    url: String,
    client: PortalClient,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Portal {
    async fn start(key: &IssuerKey, dir: &Path, clock: &ManualClock) -> Portal {
        let options = PortalOptions {
            clock: Arc::new(clock.clone()),
            renewal: RenewalPolicy::default(),
        };
        let (state, _) = PortalState::open_with(key.clone(), dir, options).expect("open portal");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state, async {
            let _ = rx.await;
        }));
        let client = PortalClient::new(&url).expect("client");
        Portal {
            url,
            client,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    key: IssuerKey,
    clock: ManualClock,
}

fn setup(now: DateTime<Utc>) -> Setup {
    Setup {
        dir: tempfile::tempdir().expect("temp dir"),
        key: IssuerKey::generate(),
        clock: ManualClock::at(now),
    }
}

impl Setup {
    async fn start(&self) -> Portal {
        Portal::start(&self.key, self.dir.path(), &self.clock).await
    }
}

#[tokio::test]
async fn a_newer_file_is_returned() {
    let s = setup(at(2026, 6, 1, 12));
    let first = default_claims(Product::Vb365, LicenseType::Subscription, at(2026, 5, 1, 9));
    let mut second = first.clone();
    second.iat = at(2026, 5, 20, 9);
    second.licensed_users = Some(250);
    drop_file(s.dir.path(), "a.lic", &first, &s.key);
    let newer = drop_file(s.dir.path(), "b.lic", &second, &s.key);
    let portal = s.start().await;

    let got = portal
        .client
        .latest(first.license_id, first.iat)
        .await
        .expect("latest")
        .expect("a newer file");
    assert_eq!(got, newer);
    let license = verify(got.as_bytes(), &trusting(&s.key)).expect("verifies");
    assert_eq!(license.claims.licensed_users, Some(250));

    let details = portal
        .client
        .latest_license(first.license_id, Some(first.iat))
        .await
        .expect("latest")
        .expect("a newer file");
    assert_eq!(details.issued_at, second.iat);
    assert_eq!(details.expiration_date, second.expiration_date);
}

#[tokio::test]
async fn nothing_newer_is_none() {
    let s = setup(at(2026, 6, 1, 12));
    let claims = default_claims(
        Product::Console,
        LicenseType::Subscription,
        at(2026, 5, 1, 9),
    );
    drop_file(s.dir.path(), "console.lic", &claims, &s.key);
    let portal = s.start().await;

    let got = portal
        .client
        .latest(claims.license_id, claims.iat)
        .await
        .expect("latest");
    assert_eq!(got, None);
    // A caller that somehow holds a file from the future is not offered an older one either.
    let got = portal
        .client
        .latest(claims.license_id, claims.iat + Duration::days(3))
        .await
        .expect("latest");
    assert_eq!(got, None);
    // One second before the file's iat, it is newer.
    let got = portal
        .client
        .latest(claims.license_id, claims.iat - Duration::seconds(1))
        .await
        .expect("latest");
    assert!(got.is_some());
}

#[tokio::test]
async fn an_unknown_license_id_is_reported() {
    let s = setup(at(2026, 6, 1, 12));
    let known = default_claims(Product::Vb365, LicenseType::Rental, at(2026, 6, 1, 9));
    drop_file(s.dir.path(), "known.lic", &known, &s.key);
    let portal = s.start().await;
    let unknown = Uuid::new_v4();

    let err = portal
        .client
        .latest(unknown, at(2026, 1, 1, 0))
        .await
        .expect_err("unknown");
    assert_eq!(err, PortalError::UnknownLicense(unknown));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn files_signed_by_another_key_are_ignored() {
    let s = setup(at(2026, 6, 1, 12));
    let other_key = IssuerKey::generate();
    let mine = default_claims(Product::Vb365, LicenseType::Subscription, at(2026, 5, 1, 9));
    // The same license id, "renewed" by someone else's key: must not be served.
    let mut forged = mine.clone();
    forged.iat = at(2026, 5, 25, 9);
    forged.licensed_users = Some(100_000);
    let theirs = default_claims(Product::VOne, LicenseType::Subscription, at(2026, 5, 1, 9));
    drop_file(s.dir.path(), "mine.lic", &mine, &s.key);
    drop_file(s.dir.path(), "forged.lic", &forged, &other_key);
    drop_file(s.dir.path(), "theirs.lic", &theirs, &other_key);
    std::fs::write(s.dir.path().join("garbage.lic"), "not a license").expect("write");
    let portal = s.start().await;

    let got = portal
        .client
        .latest(mine.license_id, mine.iat)
        .await
        .expect("latest");
    assert_eq!(got, None, "the foreign-key file was served");
    let err = portal
        .client
        .latest(theirs.license_id, at(2026, 1, 1, 0))
        .await
        .expect_err("foreign license");
    assert_eq!(err, PortalError::UnknownLicense(theirs.license_id));
    let health = portal.client.health().await.expect("health");
    assert_eq!(health.licenses, 1);
    assert_eq!(health.key_id, s.key.key_id());
}

#[tokio::test]
async fn a_rental_near_expiry_is_renewed_and_persisted() {
    // Issued 2 November: expires 30 November 23:59:59. On the 27th it is within 7 days.
    let s = setup(at(2026, 11, 27, 10));
    let original = default_claims(
        Product::CloudConnectSite,
        LicenseType::Rental,
        at(2026, 11, 2, 9),
    );
    drop_file(s.dir.path(), "site.lic", &original, &s.key);
    let portal = s.start().await;

    let renewed = portal
        .client
        .latest(original.license_id, original.iat)
        .await
        .expect("latest")
        .expect("a renewal");
    let license = verify(renewed.as_bytes(), &trusting(&s.key)).expect("renewal verifies");
    let c = &license.claims;
    assert_eq!(c.license_id, original.license_id);
    assert_eq!(c.support_id, original.support_id);
    assert_eq!(c.product, original.product);
    assert_eq!(c.license_type, LicenseType::Rental);
    assert_eq!(c.units, original.units);
    assert_eq!(c.company, original.company);
    assert_eq!(c.iat, at(2026, 11, 27, 10));
    assert!(c.iat > original.iat);
    let new_expiry = Utc
        .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
        .single()
        .expect("time");
    assert_eq!(c.expiration_date, Some(new_expiry));
    assert!(c.expiration_date > original.expiration_date);
    assert_eq!(c.support_expiration_date, Some(new_expiry));

    // Written next to the original...
    let files = license_files(s.dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let on_disk: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    assert!(on_disk.contains(&renewed), "renewal not in the directory");
    // ...served as up to date to a caller that has it...
    let again = portal
        .client
        .latest(original.license_id, c.iat)
        .await
        .expect("latest");
    assert_eq!(again, None);
    portal.stop().await;

    // ...and served by a restarted portal without minting another one.
    let restarted = s.start().await;
    let served = restarted
        .client
        .latest(original.license_id, original.iat)
        .await
        .expect("latest")
        .expect("the renewal");
    assert_eq!(served, renewed);
    assert_eq!(license_files(s.dir.path()).len(), 2);
}

#[tokio::test]
async fn a_rental_outside_its_window_is_not_renewed() {
    let s = setup(at(2026, 11, 20, 10));
    let original = default_claims(
        Product::CloudConnectSite,
        LicenseType::Rental,
        at(2026, 11, 2, 9),
    );
    drop_file(s.dir.path(), "site.lic", &original, &s.key);
    let portal = s.start().await;

    let got = portal
        .client
        .latest(original.license_id, original.iat)
        .await
        .expect("latest");
    assert_eq!(got, None);
    assert_eq!(license_files(s.dir.path()).len(), 1);

    // A week later the same question renews it.
    s.clock.advance(Duration::days(7));
    let got = portal
        .client
        .latest(original.license_id, original.iat)
        .await
        .expect("latest");
    assert!(got.is_some());
    assert_eq!(license_files(s.dir.path()).len(), 2);
}

#[tokio::test]
async fn a_subscription_is_renewed_for_a_year() {
    let s = setup(at(2027, 4, 20, 0));
    let original = default_claims(
        Product::BackupAndReplication,
        LicenseType::Subscription,
        at(2026, 5, 14, 10),
    );
    drop_file(s.dir.path(), "vbr.lic", &original, &s.key);
    let portal = s.start().await;

    let renewed = portal
        .client
        .latest_license(original.license_id, Some(original.iat))
        .await
        .expect("latest")
        .expect("a renewal");
    let expected = Utc
        .with_ymd_and_hms(2028, 5, 14, 23, 59, 59)
        .single()
        .expect("time");
    assert_eq!(renewed.expiration_date, Some(expected));
}

#[tokio::test]
async fn evaluation_nfr_and_perpetual_are_never_renewed() {
    let s = setup(at(2026, 1, 1, 9));
    let mut ids = Vec::new();
    for (i, lt) in [
        LicenseType::Evaluation,
        LicenseType::Nfr,
        LicenseType::Perpetual,
    ]
    .into_iter()
    .enumerate()
    {
        let claims = default_claims(Product::BackupAndReplication, lt, at(2026, 1, 1, 9));
        drop_file(s.dir.path(), &format!("{i}.lic"), &claims, &s.key);
        ids.push((lt, claims));
    }
    let portal = s.start().await;

    // Two years on, every one of them is expired (or, Perpetual, out of support).
    s.clock.set(at(2028, 1, 1, 9));
    for (lt, claims) in &ids {
        let got = portal
            .client
            .latest(claims.license_id, claims.iat)
            .await
            .expect("latest");
        assert_eq!(got, None, "{lt:?} was renewed");
    }
    assert_eq!(license_files(s.dir.path()).len(), 3);
}

#[tokio::test]
async fn concurrent_requests_renew_once() {
    let s = setup(at(2026, 11, 29, 10));
    let original = default_claims(Product::Console, LicenseType::Rental, at(2026, 11, 2, 9));
    drop_file(s.dir.path(), "console.lic", &original, &s.key);
    let portal = s.start().await;

    let calls: Vec<_> = (0..16)
        .map(|_| {
            let client = portal.client.clone();
            let id = original.license_id;
            let after = original.iat;
            tokio::spawn(async move { client.latest(id, after).await })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(
            call.await
                .expect("task")
                .expect("latest")
                .expect("a renewal"),
        );
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "callers got different renewals"
    );
    assert_eq!(license_files(s.dir.path()).len(), 2);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let client =
        PortalClient::with_timeout(&format!("http://{address}"), StdDuration::from_secs(2))
            .expect("client");

    let result = tokio::time::timeout(
        StdDuration::from_secs(20),
        client.latest(Uuid::new_v4(), Utc::now()),
    )
    .await
    .expect("the client gave up within its timeout");
    let err = result.expect_err("nothing listens there");
    assert!(matches!(err, PortalError::Unreachable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_portal_that_never_answers_times_out_as_unreachable() {
    // Accepted by the kernel's backlog, never read: connects, then silence.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let client =
        PortalClient::with_timeout(&format!("http://{address}"), StdDuration::from_millis(300))
            .expect("client");

    let result = tokio::time::timeout(
        StdDuration::from_secs(20),
        client.latest(Uuid::new_v4(), Utc::now()),
    )
    .await
    .expect("the client gave up within its timeout");
    let err = result.expect_err("no answer");
    assert!(matches!(err, PortalError::Unreachable(_)), "{err:?}");
    drop(listener);
}

#[tokio::test]
async fn a_url_that_is_not_a_portal_is_not_an_unknown_license() {
    let s = setup(at(2026, 6, 1, 12));
    let portal = s.start().await;
    // Right host, wrong prefix: the portal's own 404 for an unknown route.
    let client = PortalClient::new(&format!("{}/somewhere-else", portal.url)).expect("client");
    let err = client
        .latest(Uuid::new_v4(), Utc::now())
        .await
        .expect_err("wrong URL");
    assert!(matches!(err, PortalError::Protocol(_)), "{err:?}");
}

fn tamper(file: &str) -> String {
    // Change one character in the middle of the first body line (inside the signed claims), keeping
    // it valid base64url so the damage is caught by the signature, not the decoder.
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    let line = &mut lines[1];
    let mut chars: Vec<char> = line.chars().collect();
    chars[30] = if chars[30] == 'A' { 'B' } else { 'A' };
    *line = chars.into_iter().collect();
    lines.join("\n") + "\n"
}

#[tokio::test]
async fn import_stores_and_serves_portal_signed_files() {
    let s = setup(at(2026, 6, 1, 12));
    let first = default_claims(Product::Vb365, LicenseType::Subscription, at(2026, 5, 1, 9));
    drop_file(s.dir.path(), "first.lic", &first, &s.key);
    let portal = s.start().await;
    let http = reqwest::Client::new();

    // A brand-new license id, with the CRLF line ends a mail client might add.
    let fresh = default_claims(Product::VOne, LicenseType::Subscription, at(2026, 5, 30, 9));
    let fresh_file = issue(&fresh, &s.key).expect("issue");
    let response = http
        .post(format!("{}/portal/v1/licenses", portal.url))
        .header("content-type", "text/plain")
        .body(fresh_file.replace('\n', "\r\n"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(format!("/portal/v1/licenses/{}/latest", fresh.license_id).as_str())
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["licenseId"], fresh.license_id.to_string());
    assert_eq!(body["newest"], true);

    let served = portal
        .client
        .latest(fresh.license_id, fresh.iat - Duration::days(1))
        .await
        .expect("latest")
        .expect("the imported file");
    assert_eq!(served, fresh_file, "not served in canonical armour");

    // The same file again changes nothing.
    let response = http
        .post(format!("{}/portal/v1/licenses", portal.url))
        .body(fresh_file.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert_eq!(license_files(s.dir.path()).len(), 2);

    // A newer file for a known id takes over.
    let mut update = first.clone();
    update.iat = at(2026, 5, 31, 9);
    update.licensed_users = Some(500);
    let update_file = issue(&update, &s.key).expect("issue");
    let response = http
        .post(format!("{}/portal/v1/licenses", portal.url))
        .body(update_file.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
    let served = portal
        .client
        .latest(first.license_id, first.iat)
        .await
        .expect("latest");
    assert_eq!(served, Some(update_file));
    assert_eq!(license_files(s.dir.path()).len(), 3);
}

#[tokio::test]
async fn import_rejects_tampered_and_foreign_files() {
    let s = setup(at(2026, 6, 1, 12));
    let portal = s.start().await;
    let http = reqwest::Client::new();
    let claims = default_claims(Product::Vb365, LicenseType::Subscription, at(2026, 5, 1, 9));
    let genuine = issue(&claims, &s.key).expect("issue");
    let foreign = issue(&claims, &IssuerKey::generate()).expect("issue");

    for (what, body) in [
        ("tampered", tamper(&genuine)),
        ("foreign", foreign),
        ("garbage", "hello".to_string()),
    ] {
        let response = http
            .post(format!("{}/portal/v1/licenses", portal.url))
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 400, "{what}");
        let body: Value = response.json().await.expect("json error body");
        assert_eq!(body["code"], "badRequest", "{what}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}"
        );
    }
    assert!(license_files(s.dir.path()).is_empty());
    let err = portal
        .client
        .latest(claims.license_id, at(2026, 1, 1, 0))
        .await
        .expect_err("nothing was imported");
    assert_eq!(err, PortalError::UnknownLicense(claims.license_id));

    // The untampered file is accepted, which shows the 400 was about the damage.
    let response = http
        .post(format!("{}/portal/v1/licenses", portal.url))
        .body(genuine)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn import_refuses_a_different_file_with_the_same_iat() {
    let s = setup(at(2026, 6, 1, 12));
    let claims = default_claims(Product::Vb365, LicenseType::Subscription, at(2026, 5, 1, 9));
    drop_file(s.dir.path(), "held.lic", &claims, &s.key);
    let portal = s.start().await;
    let mut rival = claims.clone();
    rival.licensed_users = Some(1);
    let response = reqwest::Client::new()
        .post(format!("{}/portal/v1/licenses", portal.url))
        .body(issue(&rival, &s.key).expect("issue"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 409);
    assert_eq!(license_files(s.dir.path()).len(), 1);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let s = setup(at(2026, 6, 1, 12));
    let claims = default_claims(Product::Vb365, LicenseType::Subscription, at(2026, 5, 1, 9));
    drop_file(s.dir.path(), "held.lic", &claims, &s.key);
    let portal = s.start().await;
    let http = reqwest::Client::new();
    let base = &portal.url;
    let id = claims.license_id;

    let cases = [
        (
            format!("{base}/portal/v1/licenses/not-a-uuid/latest"),
            400,
            "badRequest",
        ),
        (
            format!("{base}/portal/v1/licenses/{id}/latest?after=yesterday"),
            400,
            "badRequest",
        ),
        (
            format!("{base}/portal/v1/nothing-here"),
            404,
            "noSuchEndpoint",
        ),
        (
            format!("{base}/portal/v1/licenses/{}/latest", Uuid::new_v4()),
            404,
            "unknownLicense",
        ),
    ];
    for (url, status, code) in cases {
        let response = http.get(&url).send().await.expect("get");
        assert_eq!(response.status(), status, "{url}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], code, "{url}");
    }
    let response = http
        .delete(format!("{base}/portal/v1/licenses/{id}/latest"))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 405);

    // An offset whose '+' was not percent-encoded still parses; without `after` the newest file
    // is returned whatever its date.
    let response = http
        .get(format!(
            "{base}/portal/v1/licenses/{id}/latest?after=2026-04-01T09:00:00+02:00"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    let response = http
        .get(format!("{base}/portal/v1/licenses/{id}/latest"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["issuedAt"], "2026-05-01T09:00:00Z");
    assert!(body["license"]
        .as_str()
        .is_some_and(|l| l.starts_with("-----BEGIN TALLYMAN LICENSE-----\n")));
}

#[tokio::test]
async fn start_local_serves_the_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = IssuerKey::generate();
    // Far from expiry under the real clock, so nothing renews.
    let claims = default_claims(Product::Console, LicenseType::Subscription, Utc::now());
    drop_file(dir.path(), "console.lic", &claims, &key);

    let (url, task) = tallyman_portal::start_local(key.clone(), dir.path().to_path_buf())
        .await
        .expect("start");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let client = PortalClient::new(&url).expect("client");
    let health = client.health().await.expect("health");
    assert_eq!(health.key_id, key.key_id());
    assert_eq!(health.licenses, 1);
    let got = client
        .latest(claims.license_id, claims.iat - Duration::seconds(1))
        .await
        .expect("latest");
    assert!(got.is_some());
    task.abort();
}

#[tokio::test]
async fn the_in_process_router_mounts_next_to_other_routes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = IssuerKey::generate();
    let clock = ManualClock::at(at(2026, 11, 28, 0));
    let claims = default_claims(Product::Vb365, LicenseType::Rental, at(2026, 11, 1, 0));
    drop_file(dir.path(), "m365.lic", &claims, &key);

    let portal = tallyman_portal::spawn_in_process(key.clone(), dir.path(), Arc::new(clock))
        .expect("router");
    let app = axum::Router::new()
        .route("/host", axum::routing::get(|| async { "host" }))
        .merge(portal);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = PortalClient::new(&url).expect("client");
    let renewed = client
        .latest(claims.license_id, claims.iat)
        .await
        .expect("latest")
        .expect("renewal under the injected clock");
    let license = verify(renewed.as_bytes(), &trusting(&key)).expect("verifies");
    assert_eq!(license.claims.iat, at(2026, 11, 28, 0));
    let host = reqwest::get(format!("{url}/host"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert_eq!(host, "host");
    task.abort();
}

#[tokio::test]
async fn run_refuses_a_missing_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = tallyman_portal::cli::PortalArgs {
        listen: "127.0.0.1:0".into(),
        key: dir.path().join("no-such.key"),
        licenses: dir.path().join("licenses"),
        rental_renewal_days: 7,
        subscription_renewal_days: 30,
    };
    let err = tallyman_portal::cli::run(args, async {})
        .await
        .expect_err("no key");
    assert!(format!("{err:#}").contains("no-such.key"), "{err:#}");
}
