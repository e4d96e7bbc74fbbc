//! Monthly report generation and finalization, shared by the REST operations, the monthly job
//! in `serve` and `tallyman report generate`. It gathers organizations, servers, their licenses,
//! the month's usage maxima and the points weights, hands them to the pure report builder, and
//! stores one report per report owner (the provider and each reseller).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::json;
use tallyman_domain::points::{default_weights, Weight};
use tallyman_domain::report::{
    build_with_lines, OrgInfo, OrgKind, ReportInput, ServerInfo, ServerLicenseRef, UsageMax,
};
use tallyman_store::{
    OrganizationType, ReportRecord, ReportStatus, ReportWrite, Store, TargetKind, WeightRow,
};
use uuid::Uuid;

use tallyman_domain::Month;

use crate::document::{ServerReport, SlotDocument, CONSOLE_TARGET};

/// Stores the default points weights if none are stored yet (first start, or a fresh
/// database); returns how many were written.
pub async fn seed_default_weights(store: &Arc<dyn Store>) -> anyhow::Result<u64> {
    if !store.weights().await?.is_empty() {
        return Ok(0);
    }
    let seed: Vec<WeightRow> = default_weights()
        .into_iter()
        .map(|w| WeightRow {
            product: w.product,
            edition: w.edition,
            workload_type: w.workload_type,
            weight: w.weight,
        })
        .collect();
    Ok(store.seed_weights(&seed).await?)
}

/// The points weights in force: the stored ones, or the defaults while none are stored. Reading
/// never writes.
pub async fn weights(store: &Arc<dyn Store>) -> anyhow::Result<Vec<Weight>> {
    let rows = store.weights().await?;
    if rows.is_empty() {
        return Ok(default_weights());
    }
    Ok(rows
        .into_iter()
        .map(|r| Weight {
            product: r.product,
            edition: r.edition,
            workload_type: r.workload_type,
            weight: r.weight,
        })
        .collect())
}

fn org_kind(k: OrganizationType) -> OrgKind {
    match k {
        OrganizationType::Provider => OrgKind::Provider,
        OrganizationType::Reseller => OrgKind::Reseller,
        OrganizationType::Company => OrgKind::Company,
    }
}

fn license_ref(doc: &SlotDocument) -> Option<ServerLicenseRef> {
    let f = doc.primary()?;
    Some(ServerLicenseRef {
        license_id: Some(f.license_id),
        support_id: Some(f.claims.support_id.clone()).filter(|s| !s.is_empty()),
        edition: f.claims.edition.clone(),
        licensee: f.claims.company.clone(),
    })
}

/// Everything a month's reports are built from, gathered once for all owners.
pub struct Fleet {
    pub organizations: Vec<OrgInfo>,
    pub servers: Vec<ServerInfo>,
    pub usage: Vec<UsageMax>,
    pub weights: Vec<Weight>,
    pub provider: OrgInfo,
    pub provider_licensee: String,
}

pub async fn gather(store: &Arc<dyn Store>, month: Month) -> anyhow::Result<Fleet> {
    let organizations: Vec<OrgInfo> = store
        .organizations()
        .await?
        .into_iter()
        .map(|o| OrgInfo {
            uid: o.uid,
            name: o.name,
            kind: org_kind(o.kind),
            parent: o.parent_uid,
        })
        .collect();
    let provider = organizations
        .iter()
        .find(|o| o.kind == OrgKind::Provider)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the provider organization is missing"))?;
    let maxima = store.usage_maxima(month.start(), month.end()).await?;
    let collected: HashSet<Uuid> = maxima.iter().map(|m| m.server_uid).collect();
    let mut licenses: HashMap<Uuid, SlotDocument> = HashMap::new();
    for kind in TargetKind::ALL {
        for slot in store.license_slots(kind).await? {
            let uid = slot.target_uid;
            if let Ok(doc) = SlotDocument::from_stored(slot) {
                licenses.insert(uid, doc);
            }
        }
    }
    let console_doc = licenses.get(&CONSOLE_TARGET);
    let provider_licensee = console_doc
        .and_then(|d| d.primary())
        .map(|f| f.claims.company.clone())
        .unwrap_or_else(|| provider.name.clone());
    let all_servers = store.servers(None).await?;
    // Servers of one kind sharing an installation id are clones.
    let mut installations: HashMap<(TargetKind, String), usize> = HashMap::new();
    for s in &all_servers {
        if let Some(id) = ServerReport::of(s).installation_id {
            *installations.entry((s.kind, id)).or_default() += 1;
        }
    }
    let mut servers: Vec<ServerInfo> = all_servers
        .into_iter()
        .map(|s| {
            let report = ServerReport::of(&s);
            let cloned = report
                .installation_id
                .clone()
                .is_some_and(|id| installations.get(&(s.kind, id)).copied().unwrap_or(0) > 1);
            let unsupported = report.unsupported(s.kind);
            (s, cloned, unsupported)
        })
        .map(|(s, cloned, unsupported)| ServerInfo {
            uid: s.uid,
            name: s.name,
            product: s.kind.product().as_wire().into(),
            organization_uid: s.organization_uid,
            license: licenses.get(&s.uid).and_then(license_ref),
            // A server registered after the month ended had nothing to report.
            collected: collected.contains(&s.uid) || s.created_at >= month.end(),
            cloned,
            unsupported,
        })
        .collect();
    // Backup agents managed by the console report against the console itself.
    servers.push(ServerInfo {
        uid: CONSOLE_TARGET,
        name: "Tallyman console".into(),
        product: TargetKind::Console.product().as_wire().into(),
        organization_uid: provider.uid,
        license: console_doc.and_then(license_ref),
        collected: true,
        cloned: false,
        unsupported: false,
    });
    let usage = maxima
        .into_iter()
        .map(|m| UsageMax {
            server_uid: m.server_uid,
            organization_uid: m.organization_uid,
            workload_type: m.workload_type,
            platform: m.platform,
            used: u64::try_from(m.used).unwrap_or(0),
            new: u64::try_from(m.new).unwrap_or(0),
        })
        .collect();
    Ok(Fleet {
        organizations,
        servers,
        usage,
        weights: weights(store).await?,
        provider,
        provider_licensee,
    })
}

/// Whether reports of `owner` are approved without review: its own setting, or the provider's
/// (turning it on for the provider turns it on for every reseller).
pub async fn auto_approve(
    store: &Arc<dyn Store>,
    owner: Uuid,
    provider: Uuid,
) -> anyhow::Result<bool> {
    Ok(store.report_auto_approve(owner).await?.unwrap_or(false)
        || (owner != provider && store.report_auto_approve(provider).await?.unwrap_or(false)))
}

/// Generates (or regenerates) every owner's report for `month`. Approved reports are kept.
/// `progress(done, total)` is called after each owner.
pub async fn generate_month(
    store: &Arc<dyn Store>,
    month: Month,
    now: DateTime<Utc>,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> anyhow::Result<Vec<(Uuid, ReportWrite)>> {
    let fleet = gather(store, month).await?;
    let owners: Vec<&OrgInfo> = fleet
        .organizations
        .iter()
        .filter(|o| matches!(o.kind, OrgKind::Provider | OrgKind::Reseller))
        .collect();
    let mut written = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        let id = store.report_id_for(owner.uid, &month.to_string()).await?;
        let input = ReportInput {
            report_id: id,
            owner,
            owner_licensee: &fleet.provider_licensee,
            interval_start: month.start(),
            interval_end: month.end() - Duration::seconds(1),
            generated_at: now,
            organizations: &fleet.organizations,
            servers: &fleet.servers,
            usage: &fleet.usage,
            weights: &fleet.weights,
        };
        let (mut report, lines) = build_with_lines(&input);
        let approve = auto_approve(store, owner.uid, fleet.provider.uid).await?;
        let status = if approve {
            ReportStatus::Approved
        } else {
            ReportStatus::ApprovalRequired
        };
        report.report_status = status.as_str().into();
        let record = ReportRecord {
            id,
            owner_uid: owner.uid,
            month: month.to_string(),
            status,
            generated_at: now,
            approved_at: approve.then_some(now),
            document: serde_json::to_value(&report)?,
            // Serialized straight to text: a large report's lines never become a JSON tree.
            lines: Some(serde_json::to_string(&lines)?),
        };
        written.push((owner.uid, store.write_report(&record).await?));
        progress(i + 1, owners.len());
    }
    Ok(written)
}

/// Finalizes every report of `owner` still waiting for approval; returns their ids.
pub async fn finalize(
    store: &Arc<dyn Store>,
    owner: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<i64>> {
    let mut done = Vec::new();
    for r in store.reports().await? {
        if r.owner_uid != owner || r.status != ReportStatus::ApprovalRequired {
            continue;
        }
        let mut doc = r.document.clone();
        doc["reportStatus"] = json!("Finalization");
        if !store
            .transition_report(
                r.id,
                ReportStatus::ApprovalRequired,
                ReportStatus::Finalization,
                &doc,
                now,
            )
            .await?
        {
            continue;
        }
        doc["reportStatus"] = json!("Approved");
        if store
            .transition_report(
                r.id,
                ReportStatus::Finalization,
                ReportStatus::Approved,
                &doc,
                now,
            )
            .await?
        {
            done.push(r.id);
        }
    }
    Ok(done)
}

/// The monthly job: on the 1st (or the first run after it) generate last month's reports if
/// they are missing, and from the configured day on finalize reports still waiting.
pub async fn monthly_job(
    store: &Arc<dyn Store>,
    now: DateTime<Utc>,
    finalize_day: u32,
    node: &str,
) -> anyhow::Result<()> {
    if !store
        .try_acquire_lease("monthly-reports", node, now, now + Duration::minutes(30))
        .await?
    {
        return Ok(());
    }
    let last = Month::of(now).previous();
    // A month that ended before this installation existed has nothing to report.
    let (_, installed_at) = store.installation(now).await?;
    if installed_at >= last.end() {
        return Ok(());
    }
    let provider = store
        .provider()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no provider"))?;
    let exists = store
        .reports()
        .await?
        .iter()
        .any(|r| r.owner_uid == provider.uid && r.month == last.to_string());
    if !exists {
        let written = generate_month(store, last, now, &|_, _| {}).await?;
        tracing::info!(month = %last, reports = written.len(), "generated the monthly license usage reports");
    }
    if now.day() >= finalize_day {
        for org in store.organizations().await? {
            if matches!(
                org.kind,
                OrganizationType::Provider | OrganizationType::Reseller
            ) {
                let ids = finalize(store, org.uid, now).await?;
                if !ids.is_empty() {
                    tracing::info!(owner = %org.uid, reports = ?ids, "finalized license usage reports automatically");
                }
            }
        }
    }
    Ok(())
}
