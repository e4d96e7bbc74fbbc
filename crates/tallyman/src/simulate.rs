//! `tallyman simulate`: a fleet simulator. It creates companies, enrolls one agent per company
//! through the agent API, registers servers and reports usage for past months — workloads
//! appearing, growing and disappearing — so reports, live usage and load can be tried on a
//! realistic fleet. Demo mode uses the same workload model, writing straight to the store.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tallyman_app::credentials::{new_token, token_digest};
use tallyman_app::reports as reporting;
use tallyman_app::Month;
use tallyman_store::{
    EnrollmentToken, Organization, OrganizationType, Store, TargetKind, UsageSample,
};
use uuid::Uuid;

/// One workload line of a server, with its own size and trend.
#[derive(Debug, Clone)]
pub struct Workload {
    pub organization_uid: Uuid,
    pub workload_type: &'static str,
    pub platform: &'static str,
    base: f64,
    growth: f64,
    /// Month index from which the workload no longer exists (it was decommissioned).
    ends: Option<u32>,
}

/// The workloads a server of `kind` protects, for its organization (or, for a Cloud Connect
/// site, for its tenants).
pub fn profile(
    kind: TargetKind,
    owner: Uuid,
    tenants: &[Uuid],
    months: u32,
    rng: &mut StdRng,
) -> Vec<Workload> {
    let mut w = |org: Uuid, wt: &'static str, platform: &'static str, lo: f64, hi: f64| Workload {
        organization_uid: org,
        workload_type: wt,
        platform,
        base: rng.gen_range(lo..hi),
        growth: rng.gen_range(-0.03..0.08),
        ends: (rng.gen_ratio(1, 12) && months > 2).then(|| rng.gen_range(1..months)),
    };
    match kind {
        TargetKind::BackupServer => {
            let platform = if owner.as_u128().is_multiple_of(3) {
                "HyperV"
            } else {
                "vSphere"
            };
            vec![
                w(owner, "VBR_VM", platform, 10.0, 80.0),
                w(owner, "VBR_Server_Agent", "Windows", 1.0, 20.0),
                w(owner, "VBR_Workstation_Agent", "Windows", 0.0, 30.0),
            ]
        }
        TargetKind::Vb365Server => vec![w(owner, "VB365_User", "Microsoft365", 20.0, 400.0)],
        TargetKind::VOneServer => vec![w(owner, "VONE_VM", "vSphere", 10.0, 100.0)],
        TargetKind::CloudConnectSite => tenants
            .iter()
            .flat_map(|t| {
                vec![
                    w(*t, "CC_VM_Backup", "vSphere", 5.0, 40.0),
                    w(*t, "CC_VM_Replica", "vSphere", 0.0, 10.0),
                    w(*t, "CC_Server_Backup", "Windows", 0.0, 10.0),
                ]
            })
            .collect(),
        TargetKind::Console => Vec::new(),
    }
}

/// The days of a month samples are taken on.
const SAMPLE_DAYS: [i64; 5] = [1, 8, 15, 22, 28];

/// Usage samples of one server for month number `index` (0 = oldest) of the simulation.
pub fn month_samples(
    server: Uuid,
    workloads: &[Workload],
    month: Month,
    index: u32,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Vec<UsageSample>)> {
    let mut out = Vec::new();
    for (step, day) in SAMPLE_DAYS.iter().enumerate() {
        let at = month.start() + Duration::days(day - 1) + Duration::hours(2);
        if at > now {
            break;
        }
        let lines = workloads
            .iter()
            .filter(|w| w.ends.is_none_or(|e| index < e))
            .map(|w| {
                // Size at the start of the month and the workloads added during it.
                let start = (w.base * (1.0 + w.growth).powi(index as i32))
                    .max(0.0)
                    .round() as i64;
                let end = (w.base * (1.0 + w.growth).powi(index as i32 + 1))
                    .max(0.0)
                    .round() as i64;
                let added = (end - start).max(0) * (step as i64 + 1) / SAMPLE_DAYS.len() as i64;
                UsageSample {
                    server_uid: server,
                    organization_uid: w.organization_uid,
                    workload_type: w.workload_type.into(),
                    platform: w.platform.into(),
                    sampled_at: at,
                    used: start.min(end.max(start)),
                    new: added,
                    rental: 0,
                }
            })
            .collect();
        out.push((at, lines));
    }
    out
}

/// The months the simulation covers: the current month and the `months - 1` before it.
pub fn months_back(now: DateTime<Utc>, months: u32) -> Vec<Month> {
    let mut m = Month::of(now);
    let mut out = vec![m];
    for _ in 1..months {
        m = m.previous();
        out.push(m);
    }
    out.reverse();
    out
}

pub struct Options {
    pub url: String,
    pub companies: u32,
    pub servers: u32,
    pub months: u32,
    pub seed: u64,
    pub generate_reports: bool,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} ({{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut req = http.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs the simulation against a server at `opts.url` sharing `store`'s database.
pub async fn run(store: &Arc<dyn Store>, opts: Options) -> anyhow::Result<()> {
    if opts.companies == 0 || opts.servers == 0 || opts.months == 0 {
        bail!("--companies, --servers and --months must be at least 1");
    }
    if opts.months > 60 {
        bail!("--months is at most 60");
    }
    let base = opts.url.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let provider = store
        .provider()
        .await?
        .context("the provider organization is missing")?;

    // Companies, and an enrollment token each, straight in the store (there is no API for them).
    let run_tag = &Uuid::new_v4().simple().to_string()[..6];
    let mut companies: Vec<(Organization, String)> = Vec::new();
    for i in 0..opts.companies {
        let org = Organization {
            uid: Uuid::new_v4(),
            name: format!("Simulated Company {i:04} ({run_tag})"),
            kind: OrganizationType::Company,
            parent_uid: Some(provider.uid),
            created_at: now,
        };
        store.insert_organization(&org).await?;
        let token = new_token();
        store
            .insert_enrollment_token(&EnrollmentToken {
                digest: token_digest(&token),
                organization_uid: org.uid,
                created_at: now,
                expires_at: now + Duration::hours(1),
            })
            .await?;
        companies.push((org, token));
    }

    let total_requests = u64::from(opts.companies)
        + u64::from(opts.servers) * (1 + u64::from(opts.months) * SAMPLE_DAYS.len() as u64);
    let progress = bar(total_requests, "simulating");
    let mut agents: HashMap<Uuid, String> = HashMap::new();
    for (org, token) in &companies {
        let answer = post(
            &http,
            &format!("{base}/api/agent/v1/enroll"),
            None,
            &json!({"enrollmentToken": token, "name": format!("sim-agent-{}", org.name)}),
        )
        .await?;
        let agent_token = answer["agentToken"]
            .as_str()
            .context("enrollment answered no agentToken")?
            .to_string();
        agents.insert(org.uid, agent_token);
        progress.inc(1);
    }

    let months = months_back(now, opts.months);
    for i in 0..opts.servers {
        let (org, _) = &companies[(i % opts.companies) as usize];
        let agent_token = &agents[&org.uid];
        let kind = match rng.gen_range(0..20) {
            0..=13 => TargetKind::BackupServer,
            14..=16 => TargetKind::Vb365Server,
            _ => TargetKind::VOneServer,
        };
        let answer = post(
            &http,
            &format!("{base}/api/agent/v1/servers"),
            Some(agent_token),
            &json!({"kind": kind.as_str(), "name": format!("sim-{i:05}")}),
        )
        .await?;
        let server_uid: Uuid = answer["serverUid"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("registration answered no serverUid")?;
        progress.inc(1);
        let workloads = profile(kind, org.uid, &[], opts.months, &mut rng);
        for (index, month) in months.iter().enumerate() {
            for (at, lines) in month_samples(server_uid, &workloads, *month, index as u32, now) {
                let body = json!({
                    "sampledAt": at,
                    "workloads": lines.iter().map(|l| json!({
                        "organizationUid": l.organization_uid,
                        "workloadType": l.workload_type,
                        "platform": l.platform,
                        "used": l.used,
                        "new": l.new,
                    })).collect::<Vec<_>>(),
                });
                post(
                    &http,
                    &format!("{base}/api/agent/v1/servers/{server_uid}/usage"),
                    Some(agent_token),
                    &body,
                )
                .await?;
                progress.inc(1);
            }
        }
    }
    progress.finish_and_clear();
    println!(
        "simulated {} companies, {} servers, {} months of usage",
        opts.companies, opts.servers, opts.months
    );
    if opts.generate_reports {
        for month in months.iter().filter(|m| **m < Month::of(now)) {
            for (owner, outcome) in
                reporting::generate_month(store, *month, now, &|_, _| {}).await?
            {
                match outcome {
                    tallyman_store::ReportWrite::KeptApproved(id) => {
                        println!("{month}: report {id} of {owner} is already approved and was kept")
                    }
                    tallyman_store::ReportWrite::Created(id)
                    | tallyman_store::ReportWrite::Replaced(id) => {
                        println!("{month}: report {id} of {owner} generated")
                    }
                }
            }
        }
    }
    Ok(())
}

/// Writes `months` of usage for every server already in the store, straight into it (demo mode),
/// then generates the reports of the finished months.
pub async fn backfill(
    store: &Arc<dyn Store>,
    months: u32,
    seed: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let orgs = store.organizations().await?;
    let companies: Vec<Uuid> = orgs
        .iter()
        .filter(|o| o.kind == OrganizationType::Company)
        .map(|o| o.uid)
        .collect();
    let range = months_back(now, months);
    for server in store.servers(None).await? {
        if server.last_seen_at.is_none() {
            continue; // never reported: stays "not collected"
        }
        let tenants: Vec<Uuid> = companies
            .iter()
            .copied()
            .filter(|_| rng.gen_ratio(1, 3))
            .take(5)
            .collect();
        let workloads = profile(
            server.kind,
            server.organization_uid,
            &tenants,
            months,
            &mut rng,
        );
        let mut batch = Vec::new();
        for (index, month) in range.iter().enumerate() {
            for (_, lines) in month_samples(server.uid, &workloads, *month, index as u32, now) {
                batch.extend(lines);
            }
        }
        store.insert_usage_samples(&batch).await?;
    }
    for month in range.iter().filter(|m| **m < Month::of(now)) {
        reporting::generate_month(store, *month, now, &|_, _| {}).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn samples_stop_at_now_and_never_go_negative() {
        let mut rng = StdRng::seed_from_u64(7);
        let owner = Uuid::new_v4();
        let w = profile(TargetKind::BackupServer, owner, &[], 12, &mut rng);
        let now = Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap();
        let month = Month::of(now);
        let samples = month_samples(Uuid::new_v4(), &w, month, 11, now);
        assert_eq!(samples.len(), 3, "days 1, 8 and 15 are past");
        for (_, lines) in &samples {
            assert!(lines.iter().all(|l| l.used >= 0 && l.new >= 0));
        }
        assert_eq!(months_back(now, 12).len(), 12);
        assert_eq!(months_back(now, 12)[11], month);
    }

    #[test]
    fn the_same_seed_gives_the_same_fleet() {
        let owner = Uuid::new_v4();
        let a = profile(
            TargetKind::Vb365Server,
            owner,
            &[],
            6,
            &mut StdRng::seed_from_u64(1),
        );
        let b = profile(
            TargetKind::Vb365Server,
            owner,
            &[],
            6,
            &mut StdRng::seed_from_u64(1),
        );
        assert_eq!(a[0].base, b[0].base);
    }
}
