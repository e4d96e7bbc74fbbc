//! Usage and the monthly reports end to end (licensing.md §3, §4, §5.2; docs/report-csv.md,
//! docs/points.md): usage samples from agents (validation, idempotency, who may report for whom,
//! concurrent senders), live usage by organization, report generation over a fleet (one report
//! per owner, high-water marks, new workloads free, reseller roll-up, appendices, not-collected
//! servers, totals), the report life cycle (finalization, regeneration, auto-approve, the monthly
//! job), the read operations and scope, the CSV, and the totals invariant over random fleets.
//!
//! The server's monthly job generates last month's reports when it starts; every test waits for
//! that first run (see [`spawn`]) before it builds anything, and auto-finalization is switched
//! off so nothing moves under it. Samples go into finished months (`months_ago`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tallyman_app::reports::{self as reporting, generate_month};
use tallyman_app::Month;
use tallyman_domain::points::lookup;
use tallyman_domain::{LicenseType, Product};
use tallyman_http::auth::{new_token, token_digest};
use tallyman_http::{Clock, HttpConfig};
use tallyman_store::testing::{backends, Backend};
use tallyman_store::{
    EnrollmentToken, ManagedServer, Organization, OrganizationType, ReportWrite, Role, TargetKind,
    WeightRow,
};
use uuid::Uuid;

use crate::common::*;
use crate::licensing::{
    assert_vspc_datetime, claims_expiring, ok_data, put_file, store_license, user_token, Issuer,
};

// ------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------

/// A server whose monthly job never finalizes on its own. (Its start-up run generates nothing:
/// the installation is newer than last month.)
async fn spawn(backend: Backend, issuer: Option<&Issuer>) -> TestApp {
    let config = HttpConfig {
        report_finalize_day: 32,
        ..HttpConfig::default()
    };
    let app = match issuer {
        Some(i) => TestApp::spawn_licensing(backend, config, i.key.public(), None).await,
        None => TestApp::spawn_with(backend, config, |_| axum::Router::new()).await,
    };
    app
}

/// The month `n` months before the current one.
fn months_ago(app: &TestApp, n: u32) -> Month {
    let mut m = Month::of(app.clock.now());
    for _ in 0..n {
        m = m.previous();
    }
    m
}

/// Noon on day `d` of `month`.
fn day(month: Month, d: i64) -> DateTime<Utc> {
    month.start() + Duration::days(d - 1) + Duration::hours(12)
}

fn agent_url(app: &TestApp, path: &str) -> String {
    format!("{}/api/agent/v1{path}", app.base)
}

/// Enrolls an agent of `org`; returns its bearer token and uid.
async fn enroll(app: &TestApp, org: Uuid) -> (String, Uuid) {
    let token = new_token();
    let now = Utc::now();
    app.store
        .insert_enrollment_token(&EnrollmentToken {
            digest: token_digest(&token),
            organization_uid: org,
            created_at: now,
            expires_at: now + Duration::days(1),
        })
        .await
        .unwrap();
    let r = app
        .http
        .post(agent_url(app, "/enroll"))
        .json(&json!({"enrollmentToken": token, "name": "agent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    (
        body["agentToken"].as_str().unwrap().to_string(),
        body["agentUid"].as_str().unwrap().parse().unwrap(),
    )
}

/// Registers a server of `kind` (`BackupServer`, `CloudConnectSite`, …) through the agent API.
async fn register(app: &TestApp, agent: &str, kind: &str, name: &str) -> Uuid {
    let r = app
        .http
        .post(agent_url(app, "/servers"))
        .bearer_auth(agent)
        .json(&json!({"kind": kind, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "register {kind} {name}");
    let body: Value = r.json().await.unwrap();
    body["serverUid"].as_str().unwrap().parse().unwrap()
}

async fn post_usage(app: &TestApp, agent: &str, server: Uuid, body: &Value) -> reqwest::Response {
    app.http
        .post(agent_url(app, &format!("/servers/{server}/usage")))
        .bearer_auth(agent)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Sends one sample and asserts it was accepted; returns the answer.
async fn sample(
    app: &TestApp,
    agent: &str,
    server: Uuid,
    at: DateTime<Utc>,
    workloads: Value,
) -> Value {
    let body = json!({"sampledAt": at, "workloads": workloads});
    let r = post_usage(app, agent, server, &body).await;
    let status = r.status();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body} -> {answer}");
    answer
}

/// A workload line of a sample.
fn line(org: Option<Uuid>, workload: &str, platform: Option<&str>, used: i64, new: i64) -> Value {
    let mut l = json!({"workloadType": workload, "used": used, "new": new});
    if let Some(o) = org {
        l["organizationUid"] = json!(o);
    }
    if let Some(p) = platform {
        l["platform"] = json!(p);
    }
    l
}

/// A server that never sends anything, registered (by hand) at `created`.
async fn silent_server(
    app: &TestApp,
    kind: TargetKind,
    org: Uuid,
    name: &str,
    created: DateTime<Utc>,
) -> Uuid {
    let uid = Uuid::new_v4();
    app.store
        .insert_server(&ManagedServer {
            uid,
            kind,
            name: name.into(),
            organization_uid: org,
            agent_uid: None,
            created_at: created,
            last_seen_at: None,
            reported: Value::Null,
        })
        .await
        .unwrap();
    uid
}

async fn generate(app: &TestApp, month: Month) -> Vec<(Uuid, ReportWrite)> {
    generate_month(&app.store, month, app.clock.now(), &|_, _| {})
        .await
        .unwrap()
}

/// `GET` that must answer 200; returns the whole body.
async fn get_ok(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.get(path, token).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn items(body: &Value) -> Vec<Value> {
    body["data"].as_array().expect("data is an array").clone()
}

async fn month_reports(app: &TestApp, token: &str, month: Month) -> Vec<Value> {
    items(&get_ok(app, token, &format!("/licensing/reports/{month}?limit=500")).await)
}

fn owner(report: &Value) -> String {
    report["reportParameters"]["organizationUid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn report_of(reports: &[Value], org: Uuid) -> Value {
    let found: Vec<&Value> = reports
        .iter()
        .filter(|r| owner(r) == org.to_string())
        .collect();
    assert_eq!(found.len(), 1, "one report of {org}");
    found[0].clone()
}

fn report_id(report: &Value) -> i64 {
    report["reportParameters"]["reportId"].as_i64().unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: {a} != {b}");
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// The points of a workload list, checked bottom-up: bucket points = reported count × weight,
/// workload points = Σ buckets.
fn workload_points(workloads: &Value) -> f64 {
    let mut total = 0.0;
    for w in arr(workloads) {
        let mut sum = 0.0;
        for p in arr(&w["workloadsByPlatform"]) {
            for b in arr(&p["objectsByWeight"]) {
                let points = num(&b["reportedCount"]) * num(&b["weight"]);
                close(num(&b["usedPoints"]), points, "bucket points");
                sum += points;
            }
        }
        close(num(&w["usedPoints"]), sum, "workload points");
        total += sum;
    }
    total
}

/// Σ of usage details, checking each license line against its workloads.
fn details_points(details: &Value) -> f64 {
    let mut total = 0.0;
    for d in arr(details) {
        for u in arr(&d["usageByLicenseAndProduct"]) {
            close(
                num(&u["usedPoints"]),
                workload_points(&u["workloadUsage"]),
                "license line points",
            );
            total += num(&u["usedPoints"]);
        }
    }
    total
}

fn summary_points(summary: &Value) -> f64 {
    let mut total = 0.0;
    for p in arr(&summary["productsUsage"]) {
        close(
            num(&p["totalPoints"]),
            workload_points(&p["workloadUsage"]),
            "product points",
        );
        total += num(&p["totalPoints"]);
    }
    close(num(&summary["totalPoints"]), total, "summary total");
    total
}

fn orgs_points(orgs: &Value) -> f64 {
    arr(orgs).iter().map(|o| num(&o["usedPoints"])).sum()
}

/// The totals invariant: summary total = Σ organizations = Σ usage details, for the main part and
/// for each appendix.
fn assert_totals(report: &Value) {
    let total = num(&report["reportSummary"]["totalPoints"]);
    let what = format!("report {}", report_id(report));
    close(summary_points(&report["reportSummary"]), total, &what);
    close(orgs_points(&report["organizationsUsage"]), total, &what);
    close(details_points(&report["usageDetails"]), total, &what);
    for a in arr(&report["appendices"]) {
        let total = num(&a["appendixSummary"]["totalPoints"]);
        let what = format!("{what}, appendix {}", a["licenseCompanyName"]);
        close(summary_points(&a["appendixSummary"]), total, &what);
        close(orgs_points(&a["organizationsUsage"]), total, &what);
        close(details_points(&a["usageDetails"]), total, &what);
    }
}

fn org_line(report: &Value, org: Uuid) -> Option<Value> {
    arr(&report["organizationsUsage"])
        .iter()
        .find(|o| o["organizationUid"] == org.to_string())
        .cloned()
}

/// The CSV columns docs/report-csv.md documents, in order.
const CSV_COLUMNS: [&str; 24] = [
    "Report ID",
    "Month",
    "Report Owner",
    "Report Status",
    "Section",
    "Licensee",
    "Organization Type",
    "Organization",
    "Organization UID",
    "Server",
    "Server UID",
    "Product",
    "Edition",
    "License ID",
    "Support ID",
    "Workload Type",
    "Platform",
    "Points Per Workload",
    "Licensed Count",
    "New Count",
    "Reported Count",
    "Points",
    "Note",
    "Generation Date",
];

/// A downloaded CSV: its raw bytes and its rows as column → value maps.
struct Csv {
    raw: Vec<u8>,
    rows: Vec<BTreeMap<String, String>>,
}

impl Csv {
    fn points(&self, section: &str, licensee: Option<&str>) -> f64 {
        self.rows
            .iter()
            .filter(|r| r["Section"] == section)
            .filter(|r| licensee.is_none_or(|l| r["Licensee"] == l))
            .map(|r| r["Points"].parse::<f64>().unwrap())
            .sum()
    }
}

async fn download_csv(app: &TestApp, token: &str, id: i64) -> Csv {
    let r = app
        .http
        .get(app.url(&format!("/licensing/reports/{id}/csv")))
        .bearer_auth(token)
        .header("Accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "CSV of report {id}");
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/csv"), "content type {ct}");
    let raw = r.bytes().await.unwrap().to_vec();
    assert!(raw.starts_with(b"\xEF\xBB\xBF"), "UTF-8 byte-order mark");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(&raw[3..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, CSV_COLUMNS, "header row");
    let rows = reader
        .records()
        .map(|rec| {
            let rec = rec.expect("a well-formed CSV record");
            assert_eq!(rec.len(), CSV_COLUMNS.len());
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect();
    Csv { raw, rows }
}

// ------------------------------------------------------------------------------------------------
// The report fleet
// ------------------------------------------------------------------------------------------------

const NORTHWIND_POINTS: f64 = 25.0 * 11.0 + 2.0 * 11.0 + 3.0 * 5.0; // 312
const FABRIKAM_POINTS: f64 = 4.0 * 11.0 + 2.0 * 10.0; // 64
const TAILSPIN_POINTS: f64 = 5.0 * 4.0 + 3.0; // 23
const RESELLER_POINTS: f64 = FABRIKAM_POINTS + TAILSPIN_POINTS; // 87
const HOSTED_POINTS: f64 = 6.0 * 5.0; // Standard edition: 5 per VM
const MAIN_POINTS: f64 = NORTHWIND_POINTS + RESELLER_POINTS + HOSTED_POINTS; // 429
const CONTOSO_POINTS: f64 = 8.0 * 9.0; // Enterprise edition: 9 per VM
const CONTOSO_LICENSEE: &str = "Contoso Ltd";

/// Provider "My Company" with a Cloud Connect site and a hosted server licensed to itself;
/// reseller "Resale Partners" with companies "Fabrikam, Inc." and "Tailspin"; direct company
/// "Northwind" with a server and a server that never reports; company "Contoso" whose server runs
/// a license of its own (licensee "Contoso Ltd").
struct Fleet {
    reseller: Organization,
    fabrikam: Organization,
    tailspin: Organization,
    northwind: Organization,
    contoso: Organization,
    provider_agent: String,
    site: Uuid,
    hosted: Uuid,
    northwind_agent: String,
    vbr_northwind: Uuid,
    fabrikam_agent: String,
    vbr_fabrikam: Uuid,
    tailspin_agent: String,
    vbr_tailspin: Uuid,
    contoso_agent: String,
    vbr_contoso: Uuid,
}

impl Fleet {
    /// Builds the fleet; the silent server counts as registered at `silent_since`.
    async fn build(app: &TestApp, issuer: &Issuer, silent_since: DateTime<Utc>) -> Fleet {
        let p = app.provider.uid;
        let reseller = app
            .add_org("Resale Partners", OrganizationType::Reseller, p)
            .await;
        let fabrikam = app
            .add_org("Fabrikam, Inc.", OrganizationType::Company, reseller.uid)
            .await;
        let tailspin = app
            .add_org("Tailspin", OrganizationType::Company, reseller.uid)
            .await;
        let northwind = app.add_org("Northwind", OrganizationType::Company, p).await;
        let contoso = app.add_org("Contoso", OrganizationType::Company, p).await;

        let (provider_agent, _) = enroll(app, p).await;
        let site = register(app, &provider_agent, "CloudConnectSite", "cc-site").await;
        let hosted = register(app, &provider_agent, "BackupServer", "vbr-hosted").await;
        let (northwind_agent, _) = enroll(app, northwind.uid).await;
        let vbr_northwind = register(app, &northwind_agent, "BackupServer", "vbr-northwind").await;
        let (fabrikam_agent, _) = enroll(app, fabrikam.uid).await;
        let vbr_fabrikam = register(app, &fabrikam_agent, "BackupServer", "vbr-fabrikam").await;
        let (tailspin_agent, _) = enroll(app, tailspin.uid).await;
        let vbr_tailspin = register(app, &tailspin_agent, "BackupServer", "vbr-tailspin").await;
        let (contoso_agent, _) = enroll(app, contoso.uid).await;
        let vbr_contoso = register(app, &contoso_agent, "BackupServer", "vbr-contoso").await;
        silent_server(
            app,
            TargetKind::BackupServer,
            northwind.uid,
            "vbr-silent",
            silent_since,
        )
        .await;
        silent_server(
            app,
            TargetKind::CloudConnectSite,
            p,
            "cc-silent",
            silent_since,
        )
        .await;

        // Licenses installed through the API: the hosted server's names the provider itself
        // (Standard edition), Contoso's names Contoso (Enterprise edition).
        let admin = app.admin_token().await;
        let now = app.clock.now();
        for (server, company, edition) in [
            (hosted, "My Company", "Standard"),
            (vbr_contoso, CONTOSO_LICENSEE, "Enterprise"),
        ] {
            let mut claims = claims_expiring(
                Product::BackupAndReplication,
                LicenseType::Subscription,
                now,
                now + Duration::days(200),
            );
            claims.company = company.into();
            claims.edition = edition.into();
            let path = format!("/licensing/backupServers/{server}");
            let data =
                ok_data(put_file(app, &admin, &path, "license", issuer.sign(&claims).into()).await)
                    .await;
            assert_eq!(data["company"], company);
        }
        Fleet {
            reseller,
            fabrikam,
            tailspin,
            northwind,
            contoso,
            provider_agent,
            site,
            hosted,
            northwind_agent,
            vbr_northwind,
            fabrikam_agent,
            vbr_fabrikam,
            tailspin_agent,
            vbr_tailspin,
            contoso_agent,
            vbr_contoso,
        }
    }

    /// The month's samples. Northwind's VMs peak at 25 mid-month and end at 12.
    async fn send(&self, app: &TestApp, month: Month) {
        let vm = |used, new| json!([line(None, "VBR_VM", Some("vSphere"), used, new)]);
        let nw = &self.northwind_agent;
        sample(
            app,
            nw,
            self.vbr_northwind,
            day(month, 3),
            json!([
                line(None, "VBR_VM", Some("vSphere"), 10, 3),
                line(None, "VBR_Server_Agent", None, 2, 0)
            ]),
        )
        .await;
        sample(app, nw, self.vbr_northwind, day(month, 10), vm(25, 1)).await;
        sample(app, nw, self.vbr_northwind, day(month, 25), vm(12, 0)).await;
        sample(
            app,
            &self.fabrikam_agent,
            self.vbr_fabrikam,
            day(month, 5),
            vm(4, 2),
        )
        .await;
        sample(
            app,
            &self.tailspin_agent,
            self.vbr_tailspin,
            day(month, 6),
            json!([line(None, "VBR_Workstation_Agent", None, 5, 0)]),
        )
        .await;
        sample(
            app,
            &self.contoso_agent,
            self.vbr_contoso,
            day(month, 7),
            vm(8, 0),
        )
        .await;
        sample(
            app,
            &self.provider_agent,
            self.hosted,
            day(month, 8),
            vm(6, 0),
        )
        .await;
        let mut backup = line(Some(self.northwind.uid), "CC_VM_Backup", None, 3, 0);
        backup["rental"] = json!(4);
        sample(
            app,
            &self.provider_agent,
            self.site,
            day(month, 9),
            json!([
                backup,
                line(Some(self.fabrikam.uid), "CC_VM_Replica", None, 2, 0),
                line(Some(self.tailspin.uid), "CC_Workstation_Backup", None, 1, 0)
            ]),
        )
        .await;
    }
}

// ------------------------------------------------------------------------------------------------
// Usage samples
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn usage_samples_are_validated_and_stored_once() {
    for backend in backends() {
        let app = spawn(backend, None).await;
        let p = app.provider.uid;
        let company_a = app.add_org("A", OrganizationType::Company, p).await;
        let company_b = app.add_org("B", OrganizationType::Company, p).await;
        let reseller = app.add_org("R", OrganizationType::Reseller, p).await;
        let reseller_co = app
            .add_org("RC", OrganizationType::Company, reseller.uid)
            .await;
        let (agent_a, _) = enroll(&app, company_a.uid).await;
        let vbr_a = register(&app, &agent_a, "BackupServer", "vbr-a").await;
        let (agent_b, _) = enroll(&app, company_b.uid).await;
        let vbr_b = register(&app, &agent_b, "BackupServer", "vbr-b").await;
        let (provider_agent, _) = enroll(&app, p).await;
        let site = register(&app, &provider_agent, "CloudConnectSite", "cc").await;

        let now = app
            .clock
            .now()
            .duration_trunc(Duration::seconds(1))
            .unwrap();
        let window = |app: &TestApp| {
            let store = app.store.clone();
            async move {
                store
                    .usage_latest(now - Duration::days(400), now + Duration::days(1))
                    .await
                    .unwrap()
            }
        };
        let at = now - Duration::hours(1);
        let first = json!({"sampledAt": at, "workloads": [
            line(None, "VBR_VM", Some("vSphere"), 10, 2),
            line(None, "VBR_Server_Agent", None, 3, 0),
        ]});
        let r = post_usage(&app, &agent_a, vbr_a, &first).await;
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["stored"], 2, "{answer}");
        assert_eq!(answer["unchanged"], 0, "{answer}");
        let stored = window(&app).await;
        assert_eq!(stored.len(), 2);
        let vm = stored.iter().find(|s| s.workload_type == "VBR_VM").unwrap();
        assert_eq!(
            (vm.server_uid, vm.organization_uid, vm.platform.as_str()),
            (vbr_a, company_a.uid, "vSphere")
        );
        assert_eq!((vm.used, vm.new, vm.rental), (10, 2, 0));
        let agent = stored
            .iter()
            .find(|s| s.workload_type == "VBR_Server_Agent")
            .unwrap();
        assert_eq!(agent.platform, "Any", "the platform defaults to Any");

        // Resending the same sample changes nothing.
        let again: Value = post_usage(&app, &agent_a, vbr_a, &first)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["stored"], 0, "{again}");
        assert_eq!(again["unchanged"], 2, "{again}");
        assert_eq!(window(&app).await.len(), 2);
        // Also when the instant is written another way (an offset, VSPC's seven digits).
        let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        for written in [
            at.with_timezone(&offset).to_rfc3339(),
            at.format("%Y-%m-%dT%H:%M:%S.0000000+00:00").to_string(),
        ] {
            let mut body = first.clone();
            body["sampledAt"] = json!(written);
            let r = post_usage(&app, &agent_a, vbr_a, &body).await;
            assert_eq!(r.status(), 200, "{written}");
            let again: Value = r.json().await.unwrap();
            assert_eq!(again["stored"], 0, "{written}: {again}");
        }
        let fine = format!(
            "{}.1234567Z",
            (at - Duration::minutes(5)).format("%Y-%m-%dT%H:%M:%S")
        );
        let body =
            json!({"sampledAt": fine, "workloads": [line(None, "VBR_Cloud_Database", None, 1, 0)]});
        for expected in [1, 0] {
            let r = post_usage(&app, &agent_a, vbr_a, &body).await;
            assert_eq!(r.status(), 200, "{fine}");
            let answer: Value = r.json().await.unwrap();
            assert_eq!(answer["stored"], expected, "{fine}: {answer}");
        }
        assert_eq!(window(&app).await.len(), 3);

        // The same instant with other counts is refused, also when another line is new.
        for workloads in [
            json!([line(None, "VBR_VM", Some("vSphere"), 11, 2)]),
            json!([
                line(None, "VBR_Cloud_VM", None, 1, 0),
                line(None, "VBR_VM", Some("vSphere"), 10, 3)
            ]),
        ] {
            let body = json!({"sampledAt": at, "workloads": workloads});
            let e = error_item(post_usage(&app, &agent_a, vbr_a, &body).await, 409).await;
            assert_eq!(e["parameterName"], "sampledAt", "{e}");
            let after = window(&app).await;
            assert_eq!(after.len(), 3, "nothing stored after a conflict");
            let vm = after.iter().find(|s| s.workload_type == "VBR_VM").unwrap();
            assert_eq!((vm.used, vm.new), (10, 2));
        }

        // Bad lines are refused by name, and the good line before them is not stored either.
        let later = now - Duration::minutes(30);
        let good = line(None, "VBR_Tape_Backup", None, 1, 0);
        let mut negative_rental = line(None, "VBR_VM", None, 1, 0);
        negative_rental["rental"] = json!(-5);
        let cases = [
            (
                later,
                line(None, "VBR_VM", None, -1, 0),
                "workloads[1].used",
            ),
            (later, negative_rental, "workloads[1].rental"),
            (
                later,
                line(None, "VBR_VM", None, 0, 10_000_001),
                "workloads[1].new",
            ),
            (
                later,
                line(None, "VBR_VM", None, 10_000_001, 0),
                "workloads[1].used",
            ),
            (
                later,
                line(None, "VBR_Toaster", None, 1, 0),
                "workloads[1].workloadType",
            ),
            (
                later,
                line(None, "VBR_Tape_Backup", None, 2, 0),
                "workloads[1].workloadType",
            ),
            // "Any" is what a line without a platform means, so this is the same line again.
            (
                later,
                line(None, "VBR_Tape_Backup", Some("Any"), 1, 0),
                "workloads[1].workloadType",
            ),
            (
                later,
                line(None, "VBR_VM", Some(&"p".repeat(65)), 1, 0),
                "workloads[1].platform",
            ),
            (
                later,
                line(Some(company_b.uid), "VBR_VM", None, 1, 0),
                "workloads[1].organizationUid",
            ),
            (
                later,
                line(Some(reseller_co.uid), "VBR_VM", None, 1, 0),
                "workloads[1].organizationUid",
            ),
            (
                now + Duration::hours(1),
                line(None, "VBR_VM", None, 1, 0),
                "sampledAt",
            ),
        ];
        for (when, bad, property) in cases {
            let body = json!({"sampledAt": when, "workloads": [good.clone(), bad]});
            let e = error_item(post_usage(&app, &agent_a, vbr_a, &body).await, 400).await;
            assert_eq!(e["propertyName"], property, "{body}");
        }
        assert_eq!(window(&app).await.len(), 3, "no refused line was stored");

        // A sample a few minutes ahead (clock skew) is fine; the agent's own organization is the
        // default and may be named.
        let skewed = sample(
            &app,
            &agent_a,
            vbr_a,
            now + Duration::minutes(4),
            json!([line(Some(company_a.uid), "VBR_NAS_Backup", None, 2, 0)]),
        )
        .await;
        assert_eq!(skewed["stored"], 1);
        // Without sampledAt the sample is taken now.
        let body = json!({"workloads": [line(None, "VBR_Cloud_File_Share", None, 1, 0)]});
        let r = post_usage(&app, &agent_a, vbr_a, &body).await;
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.unwrap();
        let taken = DateTime::parse_from_rfc3339(answer["sampledAt"].as_str().unwrap()).unwrap();
        assert!(
            (taken.with_timezone(&Utc) - app.clock.now())
                .num_seconds()
                .abs()
                < 60
        );

        // Another agent's server, an unknown server and a bad uid.
        let body = json!({"sampledAt": later, "workloads": [line(None, "VBR_VM", None, 99, 0)]});
        error_item(post_usage(&app, &agent_b, vbr_a, &body).await, 404).await;
        error_item(post_usage(&app, &agent_a, vbr_b, &body).await, 404).await;
        error_item(post_usage(&app, &agent_a, Uuid::new_v4(), &body).await, 404).await;
        let r = app
            .http
            .post(agent_url(&app, "/servers/nope/usage"))
            .bearer_auth(&agent_a)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_item(r, 400).await["parameterName"], "serverUid");
        // Without an agent token.
        let r = app
            .http
            .post(agent_url(&app, &format!("/servers/{vbr_a}/usage")))
            .json(&body)
            .send()
            .await
            .unwrap();
        error_item(r, 401).await;
        let admin = app.admin_token().await;
        error_item(post_usage(&app, &admin, vbr_a, &body).await, 401).await;
        assert_eq!(window(&app).await.len(), 5);

        // The provider's Cloud Connect site reports for tenant companies, a reseller's included;
        // a company's server cannot report for another company.
        let tenants = sample(
            &app,
            &provider_agent,
            site,
            later,
            json!([
                line(Some(company_a.uid), "CC_VM_Backup", None, 4, 1),
                line(Some(reseller_co.uid), "CC_VM_Replica", None, 2, 0),
                line(None, "CC_Server_Backup", None, 1, 0)
            ]),
        )
        .await;
        assert_eq!(tenants["stored"], 3);
        let stored = window(&app).await;
        let site_orgs: BTreeSet<Uuid> = stored
            .iter()
            .filter(|s| s.server_uid == site)
            .map(|s| s.organization_uid)
            .collect();
        assert_eq!(
            site_orgs,
            BTreeSet::from([company_a.uid, reseller_co.uid, p])
        );
        let unknown_org = json!({"sampledAt": later, "workloads": [
            line(Some(Uuid::new_v4()), "CC_VM_Backup", None, 1, 0)
        ]});
        let e = error_item(
            post_usage(&app, &provider_agent, site, &unknown_org).await,
            400,
        )
        .await;
        assert_eq!(e["propertyName"], "workloads[0].organizationUid");
        let for_a = json!({"sampledAt": later, "workloads": [
            line(Some(company_a.uid), "VBR_VM", None, 1, 0)
        ]});
        let e = error_item(post_usage(&app, &agent_b, vbr_b, &for_a).await, 400).await;
        assert_eq!(e["propertyName"], "workloads[0].organizationUid");
        assert_eq!(window(&app).await.len(), 8);
        app.stop().await;
    }
}

/// Values of the wrong type (JSON has no NaN: a string, a fraction, a number beyond any integer
/// type; a malformed uid or time) are refused like every other bad value, naming the property
/// (docs/agent-api.md: "`propertyName` names the offending body property of a `400`").
#[tokio::test]
async fn usage_values_of_the_wrong_type_name_the_property() {
    let mut unnamed = Vec::new();
    for backend in backends() {
        let app = spawn(backend, None).await;
        let (agent, _) = enroll(&app, app.provider.uid).await;
        let server = register(&app, &agent, "BackupServer", "vbr").await;
        let at = app.clock.now() - Duration::minutes(10);
        let ok = line(None, "VBR_Tape_Backup", None, 1, 0);
        let at_text = at.to_rfc3339();
        for (field, raw) in [
            ("used", r#""NaN""#),
            ("used", "1.5"),
            ("new", "1e30"),
            ("rental", "1e999"),
            ("used", "true"),
            ("organizationUid", r#""not-a-uid""#),
            ("sampledAt", r#""yesterday""#),
        ] {
            // The good line first: nothing of the sample may be stored.
            let (sampled_at, wanted) = match field {
                "sampledAt" => (raw.to_string(), field.to_string()),
                _ => (format!("\"{at_text}\""), format!("workloads[1].{field}")),
            };
            let bad_field = if field == "sampledAt" { "used" } else { field };
            let bad_value = if field == "sampledAt" { "1" } else { raw };
            let body = format!(
                r#"{{"sampledAt":{sampled_at},"workloads":[{ok},{{"workloadType":"VBR_VM","{bad_field}":{bad_value}}}]}}"#
            );
            let r = app
                .http
                .post(agent_url(&app, &format!("/servers/{server}/usage")))
                .bearer_auth(&agent)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let e = error_item(r, 400).await;
            if e["propertyName"] != wanted.as_str() {
                unnamed.push(format!("{backend:?} {field}={raw}: {e}"));
            }
        }
        let stored = app
            .store
            .usage_latest(at - Duration::days(1), at + Duration::days(1))
            .await
            .unwrap();
        assert!(stored.is_empty(), "{stored:?}");
        app.stop().await;
    }
    assert!(
        unnamed.is_empty(),
        "400 without the propertyName: {unnamed:#?}"
    );
}

/// An agent that retries a sample while the first attempt is still being stored gets the same
/// answer as any resend: 200, nothing stored twice.
#[tokio::test]
async fn concurrent_resends_of_a_sample_are_idempotent() {
    let mut failures = Vec::new();
    for backend in backends() {
        let app = spawn(backend, None).await;
        let (agent, _) = enroll(&app, app.provider.uid).await;
        let server = register(&app, &agent, "BackupServer", "vbr").await;
        let at = app.clock.now() - Duration::minutes(10);
        let lines: Vec<Value> = (0..200)
            .map(|i| line(None, "VBR_VM", Some(&format!("platform-{i}")), i, 0))
            .collect();
        let body = json!({"sampledAt": at, "workloads": lines});
        let attempts = futures::future::join_all((0..6).map(|_| async {
            let r = post_usage(&app, &agent, server, &body).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }))
        .await;
        let refused: Vec<&(u16, String)> = attempts.iter().filter(|(s, _)| *s != 200).collect();
        if refused.is_empty() {
            let stored: u64 = attempts
                .iter()
                .map(|(_, text)| {
                    serde_json::from_str::<Value>(text).unwrap()["stored"]
                        .as_u64()
                        .unwrap()
                })
                .sum();
            assert_eq!(stored, 200, "{backend:?}: {attempts:?}");
        } else {
            failures.push(format!("{backend:?}: {refused:?}"));
        }
        let kept = app
            .store
            .usage_latest(at - Duration::days(1), at + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(kept.len(), 200, "{backend:?}: the sample is stored once");
        app.stop().await;
    }
    assert!(failures.is_empty(), "resends refused: {failures:#?}");
}

/// Agents report at the same time: samples of different servers arriving together are all
/// stored.
#[tokio::test]
async fn concurrent_samples_of_different_servers_are_all_stored() {
    let mut failures = Vec::new();
    for backend in backends() {
        let app = spawn(backend, None).await;
        let at = app.clock.now() - Duration::minutes(10);
        let mut senders = Vec::new();
        for i in 0..6 {
            let (agent, _) = enroll(&app, app.provider.uid).await;
            let server = register(&app, &agent, "BackupServer", &format!("vbr-{i}")).await;
            senders.push((agent, server));
        }
        let lines: Vec<Value> = (0..100)
            .map(|i| line(None, "VBR_VM", Some(&format!("platform-{i}")), i, 0))
            .collect();
        let body = json!({"sampledAt": at, "workloads": lines});
        let answers = futures::future::join_all(senders.iter().map(|(agent, server)| async {
            let r = post_usage(&app, agent, *server, &body).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }))
        .await;
        let refused: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s != 200).collect();
        let kept = app
            .store
            .usage_latest(at - Duration::days(1), at + Duration::days(1))
            .await
            .unwrap();
        if !refused.is_empty() || kept.len() != 600 {
            failures.push(format!(
                "{backend:?}: {} of 6 refused, {} of 600 lines stored: {refused:?}",
                refused.len(),
                kept.len()
            ));
        }
        app.stop().await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ------------------------------------------------------------------------------------------------
// Live usage
// ------------------------------------------------------------------------------------------------

fn usage_entry(list: &[Value], org: Uuid) -> Value {
    list.iter()
        .find(|e| e["organizationUid"] == org.to_string())
        .unwrap_or_else(|| panic!("no usage entry for {org}"))
        .clone()
}

fn usage_server(entry: &Value, server: Uuid) -> Value {
    arr(&entry["servers"])
        .iter()
        .find(|s| s["serverUid"] == server.to_string())
        .unwrap_or_else(|| panic!("no server {server} in {entry}"))
        .clone()
}

fn usage_workload(server: &Value, workload_type: &str) -> Value {
    let tag = format!("({workload_type})");
    arr(&server["workloads"])
        .iter()
        .find(|w| w["description"].as_str().unwrap().contains(&tag))
        .unwrap_or_else(|| panic!("no {workload_type} in {server}"))
        .clone()
}

fn usage_platform(workload: &Value, platform: &str) -> Value {
    arr(&workload["workloadsByPlatform"])
        .iter()
        .find(|p| p["typeId"] == platform)
        .unwrap_or_else(|| panic!("no platform {platform} in {workload}"))
        .clone()
}

fn entry_orgs(list: &[Value]) -> BTreeSet<String> {
    list.iter()
        .map(|e| e["organizationUid"].as_str().unwrap().to_string())
        .collect()
}

fn uid_set(uids: &[Uuid]) -> BTreeSet<String> {
    uids.iter().map(Uuid::to_string).collect()
}

#[tokio::test]
async fn live_usage_shows_this_months_latest_counts_in_points() {
    for backend in backends() {
        let app = spawn(backend, None).await;
        let p = app.provider.uid;
        let direct = app.add_org("Direct", OrganizationType::Company, p).await;
        let reseller = app.add_org("Reseller", OrganizationType::Reseller, p).await;
        let r1 = app
            .add_org("R One", OrganizationType::Company, reseller.uid)
            .await;
        app.add_org("R Two", OrganizationType::Company, reseller.uid)
            .await;
        let other = app
            .add_org("Other Reseller", OrganizationType::Reseller, p)
            .await;
        let q = app.add_org("Q", OrganizationType::Company, other.uid).await;

        let (provider_agent, _) = enroll(&app, p).await;
        let site = register(&app, &provider_agent, "CloudConnectSite", "cc").await;
        let hosted = register(&app, &provider_agent, "BackupServer", "hosted").await;
        let (direct_agent, _) = enroll(&app, direct.uid).await;
        let vbr_direct = register(&app, &direct_agent, "BackupServer", "vbr-direct").await;
        let (r1_agent, _) = enroll(&app, r1.uid).await;
        let vbr_r1 = register(&app, &r1_agent, "BackupServer", "vbr-r1").await;

        // Two instants of this month, both past.
        let now = app
            .clock
            .now()
            .duration_trunc(Duration::seconds(1))
            .unwrap();
        let start = Month::of(now).start();
        let span = now - start;
        let t1 = start + span / 3;
        let t2 = start + span * 2 / 3;
        assert!(
            t1 < t2,
            "run this test more than a few seconds into a month"
        );

        // Last month's larger count is not this month's usage.
        sample(
            &app,
            &direct_agent,
            vbr_direct,
            start - Duration::days(1),
            json!([line(None, "VBR_VM", Some("vSphere"), 100, 0)]),
        )
        .await;
        sample(
            &app,
            &direct_agent,
            vbr_direct,
            t1,
            json!([
                line(None, "VBR_VM", Some("vSphere"), 20, 4),
                line(None, "VBR_VM", Some("HyperV"), 5, 0)
            ]),
        )
        .await;
        // The latest sample wins, even when it is lower.
        sample(
            &app,
            &direct_agent,
            vbr_direct,
            t2,
            json!([line(None, "VBR_VM", Some("vSphere"), 7, 1)]),
        )
        .await;
        let mut backup = line(Some(direct.uid), "CC_VM_Backup", None, 3, 0);
        backup["rental"] = json!(2);
        sample(
            &app,
            &provider_agent,
            site,
            t1,
            json!([
                backup,
                line(Some(r1.uid), "CC_VM_Replica", None, 2, 0),
                line(Some(q.uid), "CC_Server_Backup", None, 1, 0)
            ]),
        )
        .await;
        sample(
            &app,
            &r1_agent,
            vbr_r1,
            t2,
            json!([line(None, "VBR_VM", None, 4, 0)]),
        )
        .await;
        sample(
            &app,
            &provider_agent,
            hosted,
            t1,
            json!([line(None, "VBR_VM", None, 6, 0)]),
        )
        .await;

        // The weight comes from the weights table (`tallyman rates`): VBR_VM, edition "*", 11.
        let weights = reporting::weights(&app.store).await.unwrap();
        let vm_weight = weights
            .iter()
            .find(|w| {
                w.product == "BackupAndReplication"
                    && w.edition == "*"
                    && w.workload_type == "VBR_VM"
            })
            .expect("a VBR_VM row for every edition")
            .weight;
        assert_eq!(vm_weight, 11.0);

        let admin = app.admin_token().await;
        let path = "/licensing/usage/organizations";
        let all = items(&get_ok(&app, &admin, path).await);
        assert_eq!(
            entry_orgs(&all),
            uid_set(&[direct.uid, r1.uid, q.uid, p]),
            "one entry per organization with usage"
        );

        let d = usage_entry(&all, direct.uid);
        assert_eq!(d["organizationType"], "Company");
        assert_eq!(d["providerUid"], p.to_string());
        assert_eq!(arr(&d["servers"]).len(), 2);
        let server = usage_server(&d, vbr_direct);
        assert_eq!(server["serverType"], "BackupAndReplication");
        let vm = usage_workload(&server, "VBR_VM");
        let vsphere = usage_platform(&vm, "vSphere");
        assert_eq!(vsphere["weight"], vm_weight);
        assert_eq!(
            (vsphere["usedCount"].as_i64(), vsphere["newCount"].as_i64()),
            (Some(7), Some(1))
        );
        close(
            num(&vsphere["usedUnits"]),
            7.0 * vm_weight,
            "vSphere used units",
        );
        close(num(&vsphere["newUnits"]), vm_weight, "vSphere new units");
        let hyperv = usage_platform(&vm, "HyperV");
        assert_eq!(hyperv["usedCount"], 5);
        close(
            num(&hyperv["usedUnits"]),
            5.0 * vm_weight,
            "HyperV used units",
        );
        assert_eq!(vm["usedCount"], 12);
        close(num(&vm["usedUnits"]), 12.0 * vm_weight, "VBR_VM used units");
        assert_eq!(vm["unitType"], "Points");
        let cc = usage_server(&d, site);
        assert_eq!(cc["serverType"], "CloudConnect");
        let backup = usage_workload(&cc, "CC_VM_Backup");
        let any = usage_platform(&backup, "Any");
        assert_eq!(any["weight"], 5.0);
        assert_eq!(
            (any["usedCount"].as_i64(), any["rentalCount"].as_i64()),
            (Some(3), Some(2))
        );
        close(num(&backup["usedUnits"]), 15.0, "CC backup used units");
        close(num(&backup["rentalUnits"]), 10.0, "CC backup rental units");

        let e1 = usage_entry(&all, r1.uid);
        assert_eq!(e1["organizationType"], "Company");
        assert_eq!(e1["providerUid"], reseller.uid.to_string());
        assert_eq!(
            usage_entry(&all, q.uid)["providerUid"],
            other.uid.to_string()
        );
        let own = usage_entry(&all, p);
        assert_eq!(own["organizationType"], "Provider");
        assert_eq!(own["providerUid"], Value::Null);
        assert_eq!(arr(&own["servers"]).len(), 1);
        close(
            num(&usage_workload(&usage_server(&own, hosted), "VBR_VM")["usedUnits"]),
            6.0 * vm_weight,
            "hosted",
        );

        // The dedicated filters, alone and together.
        let filtered = |query: String| {
            let app = &app;
            let admin = admin.clone();
            async move { items(&get_ok(app, &admin, &format!("{path}?{query}")).await) }
        };
        let only = filtered(format!("organizationUid={}", direct.uid)).await;
        assert_eq!(entry_orgs(&only), uid_set(&[direct.uid]));
        assert_eq!(arr(&only[0]["servers"]).len(), 2);
        let providers = filtered("organizationType=Provider".into()).await;
        assert_eq!(entry_orgs(&providers), uid_set(&[p]));
        let companies = filtered("organizationType=Company".into()).await;
        assert_eq!(
            entry_orgs(&companies),
            uid_set(&[direct.uid, r1.uid, q.uid])
        );
        assert!(filtered("organizationType=Reseller".into())
            .await
            .is_empty());
        assert!(filtered("organizationType=Unknown".into()).await.is_empty());
        assert!(filtered("serverType=VONE".into()).await.is_empty());
        let managed = filtered(format!("providerUid={}", reseller.uid)).await;
        assert_eq!(entry_orgs(&managed), uid_set(&[r1.uid]));
        let by_server = filtered(format!("serverUid={vbr_direct}")).await;
        assert_eq!(entry_orgs(&by_server), uid_set(&[direct.uid]));
        assert_eq!(arr(&by_server[0]["servers"]).len(), 1);
        let cloud = filtered("serverType=CloudConnect".into()).await;
        assert_eq!(entry_orgs(&cloud), uid_set(&[direct.uid, r1.uid, q.uid]));
        for e in &cloud {
            for s in arr(&e["servers"]) {
                assert_eq!(s["serverType"], "CloudConnect", "{e}");
            }
        }
        let both = filtered(format!(
            "providerUid={}&serverType=BackupAndReplication",
            reseller.uid
        ))
        .await;
        assert_eq!(entry_orgs(&both), uid_set(&[r1.uid]));
        assert_eq!(
            usage_server(&both[0], vbr_r1)["serverType"],
            "BackupAndReplication"
        );
        assert_eq!(arr(&both[0]["servers"]).len(), 1);
        let companies_on_vbr =
            filtered("organizationType=Company&serverType=BackupAndReplication".into()).await;
        assert_eq!(
            entry_orgs(&companies_on_vbr),
            uid_set(&[direct.uid, r1.uid])
        );
        let nothing = filtered(format!("organizationUid={}&serverUid={vbr_r1}", direct.uid)).await;
        assert!(nothing.is_empty());
        for (query, parameter) in [
            ("organizationUid=not-a-uid", "organizationUid"),
            ("providerUid=123", "providerUid"),
            ("serverUid=xyz", "serverUid"),
            ("serverType=Toaster", "serverType"),
            ("organizationType=Tenant", "organizationType"),
        ] {
            let e = error_item(app.get(&format!("{path}?{query}"), &admin).await, 400).await;
            assert_eq!(e["parameterName"], parameter, "{query}");
        }

        // Paging, the query engine's filter and select.
        let page = get_ok(&app, &admin, &format!("{path}?limit=1&offset=1")).await;
        assert_eq!(items(&page).len(), 1);
        assert_eq!(page["meta"]["pagingInfo"]["total"], 4);
        assert_eq!(page["meta"]["pagingInfo"]["offset"], 1);
        assert_eq!(items(&page)[0], all[1]);
        let engine = get_ok(
            &app,
            &admin,
            &format!(
                "{path}?filter={}&select={}",
                enc(r#"[{"property":"organizationType","operation":"equals","value":"Company"}]"#),
                enc(r#"[{"propertyPath":"organizationUid"}]"#)
            ),
        )
        .await;
        assert_eq!(
            entry_orgs(&items(&engine)),
            uid_set(&[direct.uid, r1.uid, q.uid])
        );
        for e in items(&engine) {
            assert_eq!(e.as_object().unwrap().len(), 1, "{e}");
        }

        // A reseller sees its own companies only; company roles may not call it.
        let reseller_admin = user_token(
            &app,
            "reseller-admin",
            Role::ServiceProviderAdministrator,
            reseller.uid,
        )
        .await;
        let scoped = items(&get_ok(&app, &reseller_admin, path).await);
        assert_eq!(entry_orgs(&scoped), uid_set(&[r1.uid]));
        let foreign = items(
            &get_ok(
                &app,
                &reseller_admin,
                &format!("{path}?providerUid={}", other.uid),
            )
            .await,
        );
        assert!(foreign.is_empty());
        let owner = user_token(&app, "company-owner", Role::CompanyOwner, direct.uid).await;
        let e = error_item(app.get(path, &owner).await, 403).await;
        assert_eq!(e["type"], "security");
        // The contract admits Site Administrators (everything), not Portal Operators.
        let site_admin = user_token(&app, "site-admin", Role::SiteAdministrator, p).await;
        assert_eq!(items(&get_ok(&app, &site_admin, path).await), all);
        let operator = user_token(&app, "operator", Role::PortalOperator, p).await;
        error_item(app.get(path, &operator).await, 403).await;

        // A new weight in the table is used at once.
        app.store
            .set_weight(&WeightRow {
                product: "BackupAndReplication".into(),
                edition: "*".into(),
                workload_type: "VBR_VM".into(),
                weight: 12.5,
            })
            .await
            .unwrap();
        let d = usage_entry(&items(&get_ok(&app, &admin, path).await), direct.uid);
        let vsphere = usage_platform(
            &usage_workload(&usage_server(&d, vbr_direct), "VBR_VM"),
            "vSphere",
        );
        assert_eq!(vsphere["weight"], 12.5);
        close(num(&vsphere["usedUnits"]), 87.5, "re-weighted units");
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Report content
// ------------------------------------------------------------------------------------------------

fn details_of(report: &Value, org: Uuid) -> Vec<Value> {
    arr(&report["usageDetails"])
        .iter()
        .filter(|d| d["organizationUid"] == org.to_string())
        .cloned()
        .collect()
}

fn not_collected(details: &Value) -> Vec<String> {
    arr(details)
        .iter()
        .flat_map(|d| arr(&d["notCollectedClientServers"]).clone())
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn monthly_reports_count_high_water_marks_per_owner() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app = spawn(backend, Some(&issuer)).await;
        let month = months_ago(&app, 2);
        let fleet = Fleet::build(&app, &issuer, month.start() + Duration::days(1)).await;
        fleet.send(&app, month).await;
        // Samples just outside the month are not part of it.
        let vm = |used| json!([line(None, "VBR_VM", Some("vSphere"), used, 0)]);
        let nw = &fleet.northwind_agent;
        sample(&app, nw, fleet.vbr_northwind, month.end(), vm(500)).await;
        sample(
            &app,
            nw,
            fleet.vbr_northwind,
            month.start() - Duration::seconds(1),
            vm(400),
        )
        .await;

        let calls = std::sync::Mutex::new(Vec::new());
        let written = generate_month(&app.store, month, app.clock.now(), &|done, total| {
            calls.lock().unwrap().push((done, total))
        })
        .await
        .unwrap();
        assert_eq!(written.len(), 2, "{written:?}");
        assert_eq!(
            *calls.lock().unwrap(),
            vec![(1, 2), (2, 2)],
            "progress per owner"
        );
        let admin = app.admin_token().await;
        let reports = month_reports(&app, &admin, month).await;
        assert_eq!(reports.len(), 2, "one report per owner");
        let owners: BTreeSet<String> = reports.iter().map(owner).collect();
        assert_eq!(owners, uid_set(&[app.provider.uid, fleet.reseller.uid]));
        let provider = report_of(&reports, app.provider.uid);
        let reseller = report_of(&reports, fleet.reseller.uid);
        for r in [&provider, &reseller] {
            assert_eq!(r["reportStatus"], "ApprovalRequired");
            assert_totals(r);
            let interval = &r["reportParameters"]["reportInterval"];
            let when = |v: &Value| {
                DateTime::parse_from_rfc3339(v.as_str().unwrap())
                    .unwrap()
                    .with_timezone(&Utc)
            };
            let (start, end) = (
                when(&interval["startOfInterval"]),
                when(&interval["endOfInterval"]),
            );
            assert_eq!(start, month.start());
            assert!(end < month.end() && end > month.end() - Duration::days(1));
            for t in [
                &interval["startOfInterval"],
                &interval["endOfInterval"],
                &r["reportParameters"]["generationDate"],
            ] {
                assert_vspc_datetime(t.as_str().unwrap());
            }
        }
        assert_ne!(report_id(&provider), report_id(&reseller));
        let params = &provider["reportParameters"];
        assert_eq!(params["organizationName"], "My Company");
        assert_eq!(params["licenseCompanyName"], "My Company");
        assert_eq!(
            reseller["reportParameters"]["organizationName"],
            "Resale Partners"
        );

        // Provider: companies, one line per reseller, its own usage; Contoso's own contract is
        // not in the main part.
        close(
            num(&provider["reportSummary"]["totalPoints"]),
            MAIN_POINTS,
            "main total",
        );
        let nw_line = org_line(&provider, fleet.northwind.uid).expect("Northwind line");
        assert_eq!(nw_line["organizationType"], "Company");
        close(num(&nw_line["usedPoints"]), NORTHWIND_POINTS, "Northwind");
        let reseller_line = org_line(&provider, fleet.reseller.uid).expect("reseller line");
        assert_eq!(reseller_line["organizationType"], "Reseller");
        close(
            num(&reseller_line["usedPoints"]),
            RESELLER_POINTS,
            "reseller line",
        );
        close(
            num(&reseller_line["usedPoints"]),
            num(&reseller["reportSummary"]["totalPoints"]),
            "reseller line = reseller report",
        );
        let own = org_line(&provider, app.provider.uid).expect("own line");
        assert_eq!(own["organizationType"], "Provider");
        close(num(&own["usedPoints"]), HOSTED_POINTS, "own usage");
        for absent in [fleet.fabrikam.uid, fleet.tailspin.uid, fleet.contoso.uid] {
            assert!(
                org_line(&provider, absent).is_none(),
                "{absent} has no line of its own"
            );
        }
        assert_eq!(arr(&provider["organizationsUsage"]).len(), 3);

        // High-water mark: Northwind's VMs peaked at 25 (not the last 12, not the 400 and 500
        // outside the month); the 3 new ones are listed and free.
        let nw = details_of(&provider, fleet.northwind.uid);
        let vbr: Vec<Value> = nw
            .iter()
            .flat_map(|d| arr(&d["usageByLicenseAndProduct"]).clone())
            .filter(|u| u["productType"] == "BackupAndReplication")
            .collect();
        assert_eq!(vbr.len(), 1, "{nw:?}");
        let vm = arr(&vbr[0]["workloadUsage"])
            .iter()
            .find(|w| w["workloadType"] == "VBR_VM")
            .unwrap()
            .clone();
        assert_eq!(vm["initialCount"], 25, "{vm}");
        assert_eq!(vm["reportedCount"], 25, "{vm}");
        assert_eq!(vm["newCount"], 3, "{vm}");
        assert_eq!(vm["weight"], 11.0);
        close(num(&vm["usedPoints"]), 275.0, "VMs: 25 × 11, new ones free");
        let vsphere = &vm["workloadsByPlatform"][0];
        assert_eq!(vsphere["typeId"], "vSphere");
        assert_eq!(vsphere["objectsByWeight"][0]["newCount"], 3);
        assert_eq!(vsphere["objectsByWeight"][0]["reportedCount"], 25);
        // Rental tenant workloads are not charged.
        let cc = nw
            .iter()
            .flat_map(|d| arr(&d["usageByLicenseAndProduct"]).clone())
            .find(|u| u["productType"] == "CloudConnect")
            .expect("Northwind's Cloud Connect usage");
        close(
            num(&cc["usedPoints"]),
            15.0,
            "CC backups: 3 × 5, rental ones free",
        );
        // The server that never reported is listed, not counted.
        let listed: Vec<String> = nw.iter().flat_map(|d| not_collected(&json!([d]))).collect();
        assert_eq!(listed, vec!["vbr-silent".to_string()]);
        assert_eq!(not_collected(&provider["usageDetails"]), listed);
        // So is the Cloud Connect site that never reported.
        assert_eq!(provider["notCollectedCloudServers"], json!(["cc-silent"]));
        // The edition of the installed license picks the weight: Standard VMs are 5 points.
        let hosted = details_of(&provider, app.provider.uid);
        let hosted_vm = &hosted[0]["usageByLicenseAndProduct"][0];
        assert_eq!(hosted_vm["licenseEdition"], "Standard");
        assert_eq!(hosted_vm["workloadUsage"][0]["weight"], 5.0);

        // The appendix: Contoso's server runs a license of another licensee.
        let appendices = arr(&provider["appendices"]);
        assert_eq!(appendices.len(), 1, "{appendices:?}");
        let appendix = &appendices[0];
        assert_eq!(appendix["licenseCompanyName"], CONTOSO_LICENSEE);
        close(
            num(&appendix["appendixSummary"]["totalPoints"]),
            CONTOSO_POINTS,
            "appendix total",
        );
        let lines = arr(&appendix["organizationsUsage"]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["organizationUid"], fleet.contoso.uid.to_string());
        assert_eq!(
            appendix["appendixSummary"]["productsUsage"][0]["licenseEdition"],
            "Enterprise"
        );

        // The reseller's report: one line per company.
        close(
            num(&reseller["reportSummary"]["totalPoints"]),
            RESELLER_POINTS,
            "reseller",
        );
        close(
            num(&org_line(&reseller, fleet.fabrikam.uid).expect("Fabrikam")["usedPoints"]),
            FABRIKAM_POINTS,
            "Fabrikam",
        );
        close(
            num(&org_line(&reseller, fleet.tailspin.uid).expect("Tailspin")["usedPoints"]),
            TAILSPIN_POINTS,
            "Tailspin",
        );
        assert_eq!(arr(&reseller["organizationsUsage"]).len(), 2);
        assert_eq!(reseller["appendices"], json!([]));
        assert!(not_collected(&reseller["usageDetails"]).is_empty());
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Life cycle
// ------------------------------------------------------------------------------------------------

async fn finalize(app: &TestApp, token: &str) -> Value {
    let r = app
        .http
        .post(app.url("/licensing/reports/finalization"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    ok_data(r).await
}

async fn patch_settings(app: &TestApp, token: &str, body: &str) -> reqwest::Response {
    app.http
        .patch(app.url("/licensing/reports/settings"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// The raw body of one owner's report of a month, as the API sends it.
async fn raw_report(app: &TestApp, token: &str, month: Month, org: Uuid) -> String {
    let filter = format!(
        r#"[{{"property":"reportParameters.organizationUid","operation":"equals","value":"{org}"}}]"#
    );
    let r = app
        .get(
            &format!("/licensing/reports/{month}?filter={}", enc(&filter)),
            token,
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(items(&body).len(), 1, "{text}");
    text
}

fn status_of(raw: &str) -> String {
    let body: Value = serde_json::from_str(raw).unwrap();
    body["data"][0]["reportStatus"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn reports_are_finalized_kept_once_approved_and_auto_approved() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app = spawn(backend, Some(&issuer)).await;
        let month = months_ago(&app, 3);
        let next = month.next();
        let fleet = Fleet::build(&app, &issuer, month.start()).await;
        fleet.send(&app, month).await;
        generate(&app, month).await;
        let idle_reseller = app
            .add_org(
                "Idle Reseller",
                OrganizationType::Reseller,
                app.provider.uid,
            )
            .await;

        let admin = app.admin_token().await;
        let reseller_admin = user_token(
            &app,
            "reseller-admin",
            Role::ServiceProviderAdministrator,
            fleet.reseller.uid,
        )
        .await;
        let idle_admin = user_token(
            &app,
            "idle-admin",
            Role::ServiceProviderGlobalAdministrator,
            idle_reseller.uid,
        )
        .await;
        let p = app.provider.uid;
        let r = fleet.reseller.uid;
        let pending = raw_report(&app, &admin, month, p).await;
        assert_eq!(status_of(&pending), "ApprovalRequired");

        // The provider finalizes its own reports, not the reseller's.
        let done = finalize(&app, &admin).await;
        assert_eq!(done["reportApprovalStatus"], "Finalized", "{done}");
        assert!(done["message"].is_string());
        let approved = raw_report(&app, &admin, month, p).await;
        assert_eq!(status_of(&approved), "Approved");
        let mut expected: Value = serde_json::from_str(&pending).unwrap();
        expected["data"][0]["reportStatus"] = json!("Approved");
        assert_eq!(
            serde_json::from_str::<Value>(&approved).unwrap(),
            expected,
            "finalizing changes the status only"
        );
        assert_eq!(
            status_of(&raw_report(&app, &admin, month, r).await),
            "ApprovalRequired"
        );
        let again = finalize(&app, &admin).await;
        assert_eq!(again["reportApprovalStatus"], "Approved", "{again}");
        let none = finalize(&app, &idle_admin).await;
        assert_eq!(none["reportApprovalStatus"], "NotApprovable", "{none}");

        // Regenerating the month keeps the approved report as it was, byte for byte, and
        // replaces the reseller's pending one with the new numbers.
        let provider_id = report_id(&report_of(&month_reports(&app, &admin, month).await, p));
        let csv_before = download_csv(&app, &admin, provider_id).await;
        assert!(!csv_before.rows.is_empty());
        for row in &csv_before.rows {
            assert_eq!(row["Report Status"], "Approved");
        }
        let csv_before = csv_before.raw;
        let reseller_before: Value =
            serde_json::from_str(&raw_report(&app, &admin, month, r).await).unwrap();
        sample(
            &app,
            &fleet.fabrikam_agent,
            fleet.vbr_fabrikam,
            day(month, 20),
            json!([line(None, "VBR_VM", Some("vSphere"), 9, 0)]),
        )
        .await;
        sample(
            &app,
            &fleet.northwind_agent,
            fleet.vbr_northwind,
            day(month, 21),
            json!([line(None, "VBR_VM", Some("vSphere"), 40, 0)]),
        )
        .await;
        app.clock.advance(Duration::minutes(10));
        let written: HashMap<Uuid, ReportWrite> = generate(&app, month).await.into_iter().collect();
        assert!(
            matches!(written[&p], ReportWrite::KeptApproved(_)),
            "{written:?}"
        );
        assert!(
            matches!(written[&r], ReportWrite::Replaced(_)),
            "{written:?}"
        );
        assert_eq!(
            raw_report(&app, &admin, month, p).await,
            approved,
            "an approved report never changes"
        );
        assert_eq!(
            download_csv(&app, &admin, provider_id).await.raw,
            csv_before
        );
        let reseller_after: Value =
            serde_json::from_str(&raw_report(&app, &admin, month, r).await).unwrap();
        let (before, after) = (&reseller_before["data"][0], &reseller_after["data"][0]);
        assert_eq!(after["reportStatus"], "ApprovalRequired");
        assert_eq!(
            report_id(after),
            report_id(before),
            "the report keeps its id"
        );
        assert_ne!(
            after["reportParameters"]["generationDate"],
            before["reportParameters"]["generationDate"]
        );
        let fabrikam_now = 9.0 * 11.0 + 20.0;
        close(
            num(&after["reportSummary"]["totalPoints"]),
            fabrikam_now + TAILSPIN_POINTS,
            "regenerated reseller report",
        );
        assert_totals(after);

        // The reseller finalizes its own.
        let done = finalize(&app, &reseller_admin).await;
        assert_eq!(done["reportApprovalStatus"], "Finalized", "{done}");
        assert_eq!(
            status_of(&raw_report(&app, &admin, month, r).await),
            "Approved"
        );
        let again = finalize(&app, &reseller_admin).await;
        assert_eq!(again["reportApprovalStatus"], "Approved", "{again}");

        // Auto-approve is per owner: a reseller may turn on its own.
        let settings = ok_data(app.get("/licensing/reports/settings", &admin).await).await;
        assert_eq!(settings, json!({"autoApprove": false}));
        let own = ok_data(
            patch_settings(
                &app,
                &reseller_admin,
                r#"[{"op":"replace","path":"/autoApprove","value":true}]"#,
            )
            .await,
        )
        .await;
        assert_eq!(own, json!({"autoApprove": true}));
        let settings = ok_data(app.get("/licensing/reports/settings", &admin).await).await;
        assert_eq!(
            settings["autoApprove"], false,
            "the provider's setting is its own"
        );
        let e = error_item(
            patch_settings(
                &app,
                &admin,
                r#"[{"op":"replace","path":"/approvalDelay","value":true}]"#,
            )
            .await,
            400,
        )
        .await;
        assert_eq!(e["code"], 1001, "{e}");
        fleet.send(&app, next).await;
        generate(&app, next).await;
        let reports = month_reports(&app, &admin, next).await;
        assert_eq!(reports.len(), 3, "provider and both resellers");
        for report in &reports {
            let expected = if owner(report) == r.to_string() {
                "Approved"
            } else {
                "ApprovalRequired"
            };
            assert_eq!(report["reportStatus"], expected, "{}", owner(report));
            assert_totals(report);
        }

        // On for the provider means on for every reseller, which cannot turn it off; the next
        // month's reports are approved when generated.
        let on = ok_data(
            patch_settings(
                &app,
                &admin,
                r#"[{"op":"replace","path":"/AutoApprove","value":"true"}]"#,
            )
            .await,
        )
        .await;
        assert_eq!(on, json!({"autoApprove": true}));
        let seen = ok_data(app.get("/licensing/reports/settings", &idle_admin).await).await;
        assert_eq!(seen["autoApprove"], true, "propagated to the reseller");
        for token in [&reseller_admin, &idle_admin] {
            let e = error_item(
                patch_settings(
                    &app,
                    token,
                    r#"[{"op":"replace","path":"/autoApprove","value":false}]"#,
                )
                .await,
                400,
            )
            .await;
            assert_eq!(e["code"], 1001, "{e}");
            let seen = ok_data(app.get("/licensing/reports/settings", token).await).await;
            assert_eq!(seen["autoApprove"], true);
        }
        // Switching it on does not approve what is already waiting.
        let waiting = report_of(&month_reports(&app, &admin, next).await, p);
        assert_eq!(waiting["reportStatus"], "ApprovalRequired");

        let after = next.next();
        fleet.send(&app, after).await;
        let written: HashMap<Uuid, ReportWrite> = generate(&app, after).await.into_iter().collect();
        let reports = month_reports(&app, &admin, after).await;
        assert_eq!(reports.len(), 3, "provider and both resellers");
        for report in &reports {
            assert_eq!(report["reportStatus"], "Approved", "{}", owner(report));
            assert_totals(report);
        }
        assert!(
            matches!(written[&idle_reseller.uid], ReportWrite::Created(_)),
            "{written:?}"
        );
        let stored = app.store.reports().await.unwrap();
        for record in stored.iter().filter(|x| x.month == after.to_string()) {
            assert!(record.approved_at.is_some(), "{record:?}");
        }
        // The idle reseller's earlier report still waits; finalizing approves it, and then
        // nothing waits.
        let done = finalize(&app, &idle_admin).await;
        assert_eq!(done["reportApprovalStatus"], "Finalized", "{done}");
        let idle_next = report_of(&month_reports(&app, &admin, next).await, idle_reseller.uid);
        assert_eq!(idle_next["reportStatus"], "Approved");
        let done = finalize(&app, &idle_admin).await;
        assert_eq!(done["reportApprovalStatus"], "Approved", "{done}");
        app.stop().await;
    }
}

/// The monthly job (what `serve` runs every hour): once a month is over it generates that
/// month's reports if they are missing, never twice, and from the configured day on it approves
/// the reports still waiting.
#[tokio::test]
async fn the_monthly_job_generates_once_and_finalizes_from_the_configured_day() {
    for backend in backends() {
        let app = spawn(backend, None).await;
        let p = app.provider.uid;
        let reseller = app.add_org("Reseller", OrganizationType::Reseller, p).await;
        let company = app
            .add_org("Company", OrganizationType::Company, reseller.uid)
            .await;
        let (agent, _) = enroll(&app, company.uid).await;
        let server = register(&app, &agent, "BackupServer", "vbr").await;
        // Usage in the current month, which the job will see as "last month" from next month.
        let now = app.clock.now();
        let this = Month::of(now);
        let at = this.start() + (now - this.start()) / 2;
        sample(
            &app,
            &agent,
            server,
            at,
            json!([line(None, "VBR_VM", None, 3, 0)]),
        )
        .await;

        let first_day = this.end() + Duration::hours(1);
        reporting::monthly_job(&app.store, first_day, 3, "node-a")
            .await
            .unwrap();
        let of_month =
            |reports: Vec<tallyman_store::ReportRecord>| -> Vec<tallyman_store::ReportRecord> {
                reports
                    .into_iter()
                    .filter(|r| r.month == this.to_string())
                    .collect()
            };
        let generated = of_month(app.store.reports().await.unwrap());
        assert_eq!(generated.len(), 2, "{generated:?}");
        for r in &generated {
            assert_eq!(r.status, tallyman_store::ReportStatus::ApprovalRequired);
            assert_eq!(r.generated_at, first_day);
        }
        let reseller_report = generated
            .iter()
            .find(|r| r.owner_uid == reseller.uid)
            .unwrap();
        close(
            num(&reseller_report.document["reportSummary"]["totalPoints"]),
            33.0,
            "3 VMs × 11",
        );

        // Later runs before the finalization day change nothing, even with new data.
        sample(
            &app,
            &agent,
            server,
            at + Duration::seconds(1),
            json!([line(None, "VBR_VM", None, 9, 0)]),
        )
        .await;
        reporting::monthly_job(&app.store, first_day + Duration::hours(25), 3, "node-b")
            .await
            .unwrap();
        assert_eq!(of_month(app.store.reports().await.unwrap()), generated);

        // From the configured day on, waiting reports are approved.
        let third = this.end() + Duration::days(2) + Duration::hours(1);
        reporting::monthly_job(&app.store, third, 3, "node-c")
            .await
            .unwrap();
        let finalized = of_month(app.store.reports().await.unwrap());
        assert_eq!(finalized.len(), 2);
        for r in &finalized {
            assert_eq!(r.status, tallyman_store::ReportStatus::Approved, "{r:?}");
            assert_eq!(r.document["reportStatus"], "Approved");
            assert_eq!(r.approved_at, Some(third));
        }
        app.stop().await;
    }
}

/// `tallyman report generate` may run while the monthly job generates the same month: both
/// finish, and the month has one report per owner.
#[tokio::test]
async fn concurrent_generations_of_a_month_all_succeed() {
    let mut failures = Vec::new();
    for backend in backends() {
        let app = spawn(backend, None).await;
        let mut owners = BTreeSet::from([app.provider.uid]);
        for i in 0..4 {
            let name = format!("Reseller {i}");
            owners.insert(
                app.add_org(&name, OrganizationType::Reseller, app.provider.uid)
                    .await
                    .uid,
            );
        }
        let month = months_ago(&app, 2);
        let now = app.clock.now();
        let runs = futures::future::join_all(
            (0..4).map(|_| generate_month(&app.store, month, now, &|_, _| {})),
        )
        .await;
        for run in runs.iter().filter(|r| r.is_err()) {
            failures.push(format!("{backend:?}: {run:?}"));
        }
        let reports: Vec<Uuid> = app
            .store
            .reports()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.month == month.to_string())
            .map(|r| r.owner_uid)
            .collect();
        assert_eq!(reports.len(), owners.len(), "one report per owner");
        assert_eq!(reports.into_iter().collect::<BTreeSet<_>>(), owners);
        app.stop().await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ------------------------------------------------------------------------------------------------
// Reads and scope
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn reports_are_listed_by_month_and_owner_within_scope() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app = spawn(backend, Some(&issuer)).await;
        let (older, newer) = (months_ago(&app, 3), months_ago(&app, 2));
        let fleet = Fleet::build(&app, &issuer, older.start()).await;
        fleet.send(&app, older).await;
        fleet.send(&app, newer).await;
        generate(&app, older).await;
        generate(&app, newer).await;
        let admin = app.admin_token().await;
        let p = app.provider.uid;
        let r = fleet.reseller.uid;

        // Newest first, two per month.
        let all = items(&get_ok(&app, &admin, "/licensing/reports").await);
        let months: Vec<String> = all
            .iter()
            .map(|x| {
                x["reportParameters"]["reportInterval"]["startOfInterval"]
                    .as_str()
                    .unwrap()[..7]
                    .to_string()
            })
            .collect();
        assert_eq!(
            months,
            [newer, newer, older, older].map(|m| m.to_string()),
            "{months:?}"
        );
        let ids: BTreeSet<i64> = all.iter().map(report_id).collect();
        assert_eq!(ids.len(), 4, "report ids are unique");

        let filter = format!(
            r#"[{{"property":"reportParameters.organizationUid","operation":"equals","value":"{r}"}}]"#
        );
        let theirs = items(
            &get_ok(
                &app,
                &admin,
                &format!("/licensing/reports?filter={}", enc(&filter)),
            )
            .await,
        );
        assert_eq!(theirs.len(), 2);
        assert!(theirs.iter().all(|x| owner(x) == r.to_string()));
        let select = items(
            &get_ok(
                &app,
                &admin,
                &format!(
                    "/licensing/reports?select={}",
                    enc(r#"[{"propertyPath":"reportParameters.reportId"}]"#)
                ),
            )
            .await,
        );
        assert_eq!(select.len(), 4);
        for (s, full) in select.iter().zip(&all) {
            assert_eq!(
                *s,
                json!({"reportParameters": {"reportId": report_id(full)}})
            );
        }
        let page = get_ok(&app, &admin, "/licensing/reports?limit=2&offset=1").await;
        assert_eq!(page["meta"]["pagingInfo"]["total"], 4);
        assert_eq!(items(&page), all[1..3].to_vec());

        // Latest: one per owner.
        let latest = items(&get_ok(&app, &admin, "/licensing/reports/latest").await);
        assert_eq!(latest.len(), 2, "{latest:?}");
        let provider_latest = report_of(&latest, p);
        assert_eq!(provider_latest, all[0]);
        let reseller_latest = report_of(&latest, r);
        assert_eq!(
            report_id(&reseller_latest),
            report_id(&report_of(&month_reports(&app, &admin, newer).await, r))
        );

        // By date: a month or a day of it.
        let by_month = month_reports(&app, &admin, newer).await;
        assert_eq!(by_month.len(), 2);
        let by_day = items(&get_ok(&app, &admin, &format!("/licensing/reports/{newer}-15")).await);
        assert_eq!(by_day, by_month);
        let empty = items(&get_ok(&app, &admin, "/licensing/reports/2001-01").await);
        assert!(empty.is_empty());
        for bad in ["2026-13", "yesterday", "2026-02-30", "202610", "26-10"] {
            let e = error_item(
                app.get(&format!("/licensing/reports/{bad}"), &admin).await,
                400,
            )
            .await;
            assert_eq!(e["parameterName"], "date", "{bad}");
        }

        // A reseller's administrator sees its own reports only.
        let reseller_admin = user_token(
            &app,
            "reseller-admin",
            Role::ServiceProviderAdministrator,
            r,
        )
        .await;
        let own = items(&get_ok(&app, &reseller_admin, "/licensing/reports").await);
        assert_eq!(own.len(), 2);
        assert!(own.iter().all(|x| owner(x) == r.to_string()));
        let own_latest = items(&get_ok(&app, &reseller_admin, "/licensing/reports/latest").await);
        assert_eq!(own_latest, vec![reseller_latest.clone()]);
        assert_eq!(month_reports(&app, &reseller_admin, newer).await.len(), 1);
        let provider_report = report_of(&by_month, p);
        let e = error_item(
            app.get(
                &format!("/licensing/reports/{}/csv", report_id(&provider_report)),
                &reseller_admin,
            )
            .await,
            404,
        )
        .await;
        assert!(e["message"].is_string());
        let own_csv = download_csv(&app, &reseller_admin, report_id(&reseller_latest)).await;
        assert!(!own_csv.rows.is_empty());

        // Ids that are not reports, and roles without access.
        let e = error_item(app.get("/licensing/reports/abc/csv", &admin).await, 400).await;
        assert_eq!(e["parameterName"], "id");
        error_item(app.get("/licensing/reports/999999/csv", &admin).await, 404).await;
        let company_owner = user_token(
            &app,
            "company-owner",
            Role::CompanyOwner,
            fleet.northwind.uid,
        )
        .await;
        let read_only = user_token(&app, "read-only", Role::ReadOnlyUser, p).await;
        let reseller_user = user_token(&app, "reseller-user", Role::ServiceProviderUser, r).await;
        let provider_id = report_id(&provider_report);
        for token in [&company_owner, &read_only, &reseller_user] {
            for path in [
                "/licensing/reports".to_string(),
                "/licensing/reports/latest".to_string(),
                "/licensing/reports/settings".to_string(),
                format!("/licensing/reports/{newer}"),
                format!("/licensing/reports/{provider_id}/csv"),
            ] {
                let e = error_item(app.get(&path, token).await, 403).await;
                assert_eq!(e["type"], "security", "{path}");
            }
            let r = app
                .http
                .post(app.url("/licensing/reports/finalization"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            error_item(r, 403).await;
        }
        assert_eq!(
            report_of(&month_reports(&app, &admin, newer).await, p)["reportStatus"],
            "ApprovalRequired"
        );
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// CSV
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn report_csv_adds_up_to_the_report() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app = spawn(backend, Some(&issuer)).await;
        let month = months_ago(&app, 2);
        let fleet = Fleet::build(&app, &issuer, month.start()).await;
        fleet.send(&app, month).await;
        generate(&app, month).await;
        let admin = app.admin_token().await;
        let reports = month_reports(&app, &admin, month).await;

        for (org, main_points) in [
            (app.provider.uid, MAIN_POINTS),
            (fleet.reseller.uid, RESELLER_POINTS),
        ] {
            let report = report_of(&reports, org);
            let id = report_id(&report);
            let csv = download_csv(&app, &admin, id).await;
            let text = std::str::from_utf8(&csv.raw).expect("UTF-8");
            assert!(text.ends_with("\r\n"));
            assert_eq!(
                text.matches("\r\n").count(),
                text.matches('\n').count(),
                "CRLF line ends"
            );
            let total = num(&report["reportSummary"]["totalPoints"]);
            close(total, main_points, "report total");
            close(csv.points("Main", None), total, "Σ Main rows");
            for a in arr(&report["appendices"]) {
                let licensee = a["licenseCompanyName"].as_str().unwrap();
                close(
                    csv.points("Appendix", Some(licensee)),
                    num(&a["appendixSummary"]["totalPoints"]),
                    "Σ appendix rows",
                );
            }
            for row in &csv.rows {
                assert_eq!(row["Report ID"], id.to_string());
                assert_eq!(row["Month"], month.to_string());
                assert_eq!(row["Report Status"], "ApprovalRequired");
                assert_eq!(
                    row["Report Owner"],
                    report["reportParameters"]["organizationName"]
                        .as_str()
                        .unwrap()
                );
                assert!(
                    ["Main", "Appendix", "Excluded"].contains(&row["Section"].as_str()),
                    "{row:?}"
                );
                if row["Section"] != "Excluded" {
                    let points: f64 = row["Points"].parse().unwrap();
                    let count: f64 = row["Reported Count"].parse().unwrap();
                    let weight: f64 = row["Points Per Workload"].parse().unwrap();
                    close(points, count * weight, "row points");
                    assert_eq!(row["Reported Count"], row["Licensed Count"]);
                }
            }
            // The comma in "Fabrikam, Inc." is quoted and comes back whole.
            let fabrikam: Vec<&BTreeMap<String, String>> = csv
                .rows
                .iter()
                .filter(|r| r["Organization UID"] == fleet.fabrikam.uid.to_string())
                .collect();
            assert!(!fabrikam.is_empty());
            for row in &fabrikam {
                assert_eq!(row["Organization"], "Fabrikam, Inc.");
            }
            assert!(text.contains("\"Fabrikam, Inc.\""));
        }

        let provider = report_of(&reports, app.provider.uid);
        let csv = download_csv(&app, &admin, report_id(&provider)).await;
        // Northwind's VMs at their high-water mark, the new ones free.
        let vm = csv
            .rows
            .iter()
            .find(|r| r["Server"] == "vbr-northwind" && r["Workload Type"] == "VBR_VM")
            .expect("Northwind's VM row");
        assert_eq!(
            (
                vm["Section"].as_str(),
                vm["Licensed Count"].as_str(),
                vm["New Count"].as_str(),
                vm["Points"].as_str(),
                vm["Platform"].as_str(),
            ),
            ("Main", "25", "3", "275", "vSphere")
        );
        // Contoso's server is in the appendix of its licensee, with its edition.
        let contoso = csv
            .rows
            .iter()
            .find(|r| r["Server UID"] == fleet.vbr_contoso.to_string())
            .expect("Contoso's row");
        assert_eq!(contoso["Section"], "Appendix");
        assert_eq!(contoso["Licensee"], CONTOSO_LICENSEE);
        assert_eq!(contoso["Edition"], "Enterprise");
        assert!(!contoso["License ID"].is_empty());
        close(
            csv.points("Appendix", None),
            CONTOSO_POINTS,
            "appendix rows",
        );
        // The silent server is an excluded row.
        let silent: Vec<&BTreeMap<String, String>> = csv
            .rows
            .iter()
            .filter(|r| r["Section"] == "Excluded")
            .collect();
        let names: BTreeSet<&str> = silent.iter().map(|r| r["Server"].as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["vbr-silent", "cc-silent"]),
            "{silent:?}"
        );
        for row in &silent {
            assert_eq!(row["Note"], "NotCollected");
            assert_eq!(row["Points"].parse::<f64>().unwrap_or(0.0), 0.0);
        }
        let vbr = silent.iter().find(|r| r["Server"] == "vbr-silent").unwrap();
        assert_eq!(vbr["Organization"], "Northwind");
        app.stop().await;
    }
}

/// The CSV is a file download: `Content-Disposition: attachment` with a file name, as the
/// handler sets it (`reports::download_licensing_report_csv`).
#[tokio::test]
async fn report_csv_is_a_download_with_a_file_name() {
    for backend in backends() {
        let app = spawn(backend, None).await;
        let month = months_ago(&app, 1);
        generate(&app, month).await;
        let admin = app.admin_token().await;
        let report = report_of(&month_reports(&app, &admin, month).await, app.provider.uid);
        let id = report_id(&report);
        let r = app
            .http
            .get(app.url(&format!("/licensing/reports/{id}/csv")))
            .bearer_auth(&admin)
            .header("Accept", "application/octet-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let headers = format!("{:?}", r.headers());
        let disposition = r
            .headers()
            .get("content-disposition")
            .unwrap_or_else(|| panic!("{backend:?}: no Content-Disposition in {headers}"))
            .to_str()
            .unwrap()
            .to_string();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        assert!(
            disposition.contains(&format!("license-report-{month}-id{id}.csv")),
            "{disposition}"
        );
        app.stop().await;
    }
}

// ------------------------------------------------------------------------------------------------
// Random fleets
// ------------------------------------------------------------------------------------------------

fn workload_types(kind: TargetKind) -> &'static [&'static str] {
    match kind {
        TargetKind::BackupServer => &[
            "VBR_VM",
            "VBR_Server_Agent",
            "VBR_Workstation_Agent",
            "VBR_NAS_Backup",
            "VBR_Cloud_VM",
            "VBR_Tape_Backup",
        ],
        TargetKind::VOneServer => &["VONE_VM", "VONE_Server_Agent", "VONE_User"],
        TargetKind::Vb365Server => &["VB365_User"],
        TargetKind::CloudConnectSite => &[
            "CC_VM_Backup",
            "CC_VM_Replica",
            "CC_Server_Backup",
            "CC_Workstation_Backup",
        ],
        TargetKind::Console => &[],
    }
}

struct RandomServer {
    uid: Uuid,
    kind: TargetKind,
    agent: String,
    /// Whose workloads it may report: the owner, or the tenants of a Cloud Connect site.
    consumers: Vec<Uuid>,
    edition: String,
    /// The licensee when it is not the provider's (the server's usage goes to an appendix).
    appendix: Option<String>,
}

#[tokio::test]
async fn report_totals_agree_on_random_fleets() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app = spawn(backend, None).await;
        let admin = app.admin_token().await;
        let p = app.provider.uid;
        let weights = reporting::weights(&app.store).await.unwrap();
        let (provider_agent, _) = enroll(&app, p).await;
        for seed in 0..3u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let month = months_ago(&app, 2 + seed as u32);
            let now = app.clock.now();

            // Organizations: resellers with companies, and direct companies.
            let mut reseller_of: HashMap<Uuid, Uuid> = HashMap::new();
            let mut companies = Vec::new();
            let mut own_servers = Vec::new();
            for r in 0..rng.gen_range(1..=2) {
                let reseller = app
                    .add_org(
                        &format!("S{seed} Reseller {r}"),
                        OrganizationType::Reseller,
                        p,
                    )
                    .await;
                for c in 0..rng.gen_range(1..=3) {
                    let name = format!("S{seed} R{r} Co {c}, \"Ltd\"");
                    let co = app
                        .add_org(&name, OrganizationType::Company, reseller.uid)
                        .await;
                    reseller_of.insert(co.uid, reseller.uid);
                    companies.push(co.uid);
                }
                // Some resellers run a server of their own.
                reseller_of.insert(reseller.uid, reseller.uid);
                if rng.gen_bool(0.5) {
                    own_servers.push(reseller.uid);
                }
            }
            for c in 0..rng.gen_range(1..=3) {
                let co = app
                    .add_org(&format!("S{seed} Direct {c}"), OrganizationType::Company, p)
                    .await;
                companies.push(co.uid);
            }

            // Servers: a Cloud Connect site, maybe a hosted server, 0–2 per company; some
            // licensed to the provider, some to other licensees; some never report.
            let mut servers = Vec::new();
            servers.push(RandomServer {
                uid: register(
                    &app,
                    &provider_agent,
                    "CloudConnectSite",
                    &format!("S{seed} cc"),
                )
                .await,
                kind: TargetKind::CloudConnectSite,
                agent: provider_agent.clone(),
                consumers: companies.clone(),
                edition: String::new(),
                appendix: None,
            });
            if rng.gen_bool(0.5) {
                servers.push(RandomServer {
                    uid: register(
                        &app,
                        &provider_agent,
                        "BackupServer",
                        &format!("S{seed} hosted"),
                    )
                    .await,
                    kind: TargetKind::BackupServer,
                    agent: provider_agent.clone(),
                    consumers: vec![p],
                    edition: String::new(),
                    appendix: None,
                });
            }
            for (i, reseller) in own_servers.iter().enumerate() {
                let (agent, _) = enroll(&app, *reseller).await;
                let name = format!("S{seed} reseller server {i}");
                servers.push(RandomServer {
                    uid: register(&app, &agent, "BackupServer", &name).await,
                    kind: TargetKind::BackupServer,
                    agent,
                    consumers: vec![*reseller],
                    edition: String::new(),
                    appendix: None,
                });
            }
            let mut silent = Vec::new();
            for (i, co) in companies.iter().enumerate() {
                let (agent, _) = enroll(&app, *co).await;
                for s in 0..rng.gen_range(0..=2) {
                    let (kind, wire) = *[
                        (TargetKind::BackupServer, "BackupServer"),
                        (TargetKind::BackupServer, "BackupServer"),
                        (TargetKind::VOneServer, "VOneServer"),
                        (TargetKind::Vb365Server, "Vb365Server"),
                    ]
                    .choose(&mut rng)
                    .unwrap();
                    let uid = register(&app, &agent, wire, &format!("S{seed} c{i} s{s}")).await;
                    servers.push(RandomServer {
                        uid,
                        kind,
                        agent: agent.clone(),
                        consumers: vec![*co],
                        edition: String::new(),
                        appendix: None,
                    });
                }
                if rng.gen_bool(0.25) {
                    let name = format!("S{seed} silent {i}");
                    let uid =
                        silent_server(&app, TargetKind::BackupServer, *co, &name, month.start())
                            .await;
                    if rng.gen_bool(0.5) {
                        // Licensed to someone else: listed in that licensee's appendix.
                        let mut claims = claims_expiring(
                            Product::BackupAndReplication,
                            LicenseType::Subscription,
                            now,
                            now + Duration::days(200),
                        );
                        claims.company = "Other Licensee 0".into();
                        store_license(&app, TargetKind::BackupServer, uid, &issuer, &claims).await;
                    }
                    silent.push(name);
                }
            }
            for server in servers.iter_mut().skip(1) {
                let roll = rng.gen_range(0..4);
                if roll == 0 {
                    continue;
                }
                let product = match server.kind {
                    TargetKind::BackupServer => Product::BackupAndReplication,
                    TargetKind::VOneServer => Product::VOne,
                    _ => Product::Vb365,
                };
                let mut claims = claims_expiring(
                    product,
                    LicenseType::Subscription,
                    now,
                    now + Duration::days(200),
                );
                claims.edition = (*["Enterprise Plus", "Enterprise", "Standard"]
                    .choose(&mut rng)
                    .unwrap())
                .into();
                claims.company = if roll == 1 {
                    format!("Other Licensee {}", rng.gen_range(0..2))
                } else {
                    "My Company".into()
                };
                store_license(&app, server.kind, server.uid, &issuer, &claims).await;
                server.edition = claims.edition.clone();
                server.appendix = (roll == 1).then_some(claims.company);
            }

            // Samples through the agent API; the expected maxima on the side.
            let mut maxima: HashMap<(usize, Uuid, String, String), i64> = HashMap::new();
            for (si, server) in servers.iter().enumerate() {
                let mut days: Vec<i64> = (1..=28).collect();
                days.shuffle(&mut rng);
                for d in days.into_iter().take(rng.gen_range(1..=3)) {
                    let mut keys = BTreeSet::new();
                    let mut lines = Vec::new();
                    for _ in 0..rng.gen_range(1..=3) {
                        let org = *server.consumers.choose(&mut rng).unwrap();
                        let wt = *workload_types(server.kind).choose(&mut rng).unwrap();
                        let platform = *[Some("vSphere"), Some("HyperV"), None]
                            .choose(&mut rng)
                            .unwrap();
                        let key = (org, wt, platform.unwrap_or("Any"));
                        if !keys.insert(key) {
                            continue;
                        }
                        let used = rng.gen_range(0..=50);
                        let mut l = line(Some(org), wt, platform, used, rng.gen_range(0..=5));
                        l["rental"] = json!(rng.gen_range(0..=3));
                        lines.push(l);
                        let slot = maxima
                            .entry((si, org, wt.to_string(), key.2.to_string()))
                            .or_insert(0);
                        *slot = (*slot).max(used);
                    }
                    let at = day(month, d) + Duration::minutes(rng.gen_range(0..600));
                    sample(&app, &server.agent, server.uid, at, json!(lines)).await;
                }
            }

            // What the reports must say.
            let mut main: HashMap<Uuid, f64> = HashMap::new();
            let mut appendix: HashMap<(Uuid, String), f64> = HashMap::new();
            for ((si, org, wt, _), used) in &maxima {
                let server = &servers[si.to_owned()];
                let product = server.kind.product().as_wire();
                let weight = lookup(&weights, product, &server.edition, wt).unwrap_or(0.0);
                let points = *used as f64 * weight;
                let mut owners = vec![p];
                owners.extend(reseller_of.get(org));
                for o in owners {
                    match &server.appendix {
                        None => *main.entry(o).or_default() += points,
                        Some(l) => *appendix.entry((o, l.clone())).or_default() += points,
                    }
                }
            }

            generate(&app, month).await;
            let reports = month_reports(&app, &admin, month).await;
            let all_resellers: Vec<Uuid> = app
                .store
                .organizations()
                .await
                .unwrap()
                .into_iter()
                .filter(|o| o.kind == OrganizationType::Reseller)
                .map(|o| o.uid)
                .collect();
            assert_eq!(
                reports.len(),
                1 + all_resellers.len(),
                "seed {seed}: one report per owner"
            );
            let provider = report_of(&reports, p);
            for report in &reports {
                assert_totals(report);
                let o: Uuid = owner(report).parse().unwrap();
                close(
                    num(&report["reportSummary"]["totalPoints"]),
                    main.get(&o).copied().unwrap_or(0.0),
                    &format!("seed {seed}: total of {o}"),
                );
                for a in arr(&report["appendices"]) {
                    let licensee = a["licenseCompanyName"].as_str().unwrap().to_string();
                    close(
                        num(&a["appendixSummary"]["totalPoints"]),
                        appendix.get(&(o, licensee.clone())).copied().unwrap_or(0.0),
                        &format!("seed {seed}: appendix {licensee} of {o}"),
                    );
                }
                if o != p {
                    let line = org_line(&provider, o)
                        .map(|l| num(&l["usedPoints"]))
                        .unwrap_or(0.0);
                    close(
                        line,
                        num(&report["reportSummary"]["totalPoints"]),
                        &format!("seed {seed}: reseller line of {o}"),
                    );
                }
            }
            for ((o, licensee), points) in &appendix {
                let report = report_of(&reports, *o);
                let found = arr(&report["appendices"])
                    .iter()
                    .any(|a| a["licenseCompanyName"] == licensee.as_str());
                assert!(
                    found || *points == 0.0,
                    "seed {seed}: appendix {licensee} missing"
                );
            }
            let mut listed: Vec<String> = not_collected(&provider["usageDetails"]);
            for a in arr(&provider["appendices"]) {
                listed.extend(not_collected(&a["usageDetails"]));
            }
            listed.sort();
            silent.sort();
            assert_eq!(listed, silent, "seed {seed}: not-collected servers");
            let csv = download_csv(&app, &admin, report_id(&provider)).await;
            close(
                csv.points("Main", None),
                num(&provider["reportSummary"]["totalPoints"]),
                &format!("seed {seed}: CSV"),
            );
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn csv_rows_are_byte_exact_for_chunked_and_json_stored_lines() {
    use tallyman_domain::report::ReportLine;
    use tallyman_store::{ReportRecord, ReportStatus};
    for backend in backends() {
        let app = spawn(backend, None).await;
        let admin = app.admin_token().await;
        let owner = app.provider.uid;
        let (org, server, license) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let counted = ReportLine {
            section: "Main".into(),
            licensee: "Acme, Inc.".into(),
            organization_type: "Company".into(),
            organization_name: " Spaced \"Q\"".into(),
            organization_uid: org,
            server_uid: server,
            server_name: "srv\nline".into(),
            product_type: "BackupAndReplication".into(),
            license_edition: "Enterprise Plus".into(),
            license_id: Some(license),
            support_id: Some("0123".into()),
            workload_type: "VBR_VM".into(),
            platform: "vSphere".into(),
            weight: 0.5,
            initial_count: 3,
            new_count: 1,
            reported_count: 3,
            used_points: 1.5,
            note: String::new(),
        };
        let excluded = ReportLine {
            section: "Excluded".into(),
            license_edition: String::new(),
            license_id: None,
            support_id: None,
            workload_type: String::new(),
            platform: String::new(),
            weight: 0.0,
            initial_count: 0,
            new_count: 0,
            reported_count: 0,
            used_points: 0.0,
            note: "NotCollected".into(),
            ..counted.clone()
        };
        let document = json!({"reportParameters": {
            "organizationName": "Owner, Ltd",
            "generationDate": "2026-01-01T00:00:00.0000000+00:00",
        }});
        let record = |id: i64, month: &str| ReportRecord {
            id,
            owner_uid: owner,
            month: month.into(),
            status: ReportStatus::ApprovalRequired,
            generated_at: app.clock.now(),
            approved_at: None,
            document: document.clone(),
            lines: None,
        };
        let expected = |id: i64, month: &str| {
            let head = format!("{id},{month},\"Owner, Ltd\",ApprovalRequired,");
            let tail = ",2026-01-01T00:00:00.0000000+00:00\r\n";
            format!(
                "\u{feff}{}\r\n\
                 {head}Main,\"Acme, Inc.\",Company,\" Spaced \"\"Q\"\"\",{org},\"srv\nline\",{server},\
                 BackupAndReplication,Enterprise Plus,{license},0123,VBR_VM,vSphere,0.5,3,1,3,1.5,{tail}\
                 {head}Excluded,\"Acme, Inc.\",Company,\" Spaced \"\"Q\"\"\",{org},\"srv\nline\",{server},\
                 BackupAndReplication,,,,,,0,0,0,0,0,NotCollected{tail}",
                CSV_COLUMNS.join(",")
            )
        };
        let raw = |id: i64| {
            let app = &app;
            let admin = admin.clone();
            async move {
                let r = app
                    .http
                    .get(app.url(&format!("/licensing/reports/{id}/csv")))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap()
            }
        };

        // Lines stored as JSON (reports generated before lines were chunked).
        let json_id = app.store.report_id_for(owner, "2020-01").await.unwrap();
        let with_json = ReportRecord {
            lines: Some(serde_json::to_string(&[&counted, &excluded]).unwrap()),
            ..record(json_id, "2020-01")
        };
        app.store.write_report(&with_json).await.unwrap();
        assert_eq!(
            raw(json_id).await,
            expected(json_id, "2020-01"),
            "{backend:?}"
        );

        // Lines stored in chunks, one line per chunk, listed out of staging order.
        let chunked_id = app.store.report_id_for(owner, "2020-02").await.unwrap();
        for (seq, line) in [(1, &counted), (0, &excluded)] {
            let mut fields = Vec::new();
            line.view().write_csv_fields(&mut fields);
            let mut body = (fields.len() as u32).to_le_bytes().to_vec();
            body.extend_from_slice(&fields);
            app.store
                .stage_report_lines(chunked_id, 7, seq, &body)
                .await
                .unwrap();
        }
        app.store
            .write_report_staged(&record(chunked_id, "2020-02"), 7, &[1, 0])
            .await
            .unwrap();
        assert_eq!(
            raw(chunked_id).await,
            expected(chunked_id, "2020-02"),
            "{backend:?}"
        );
    }
}
