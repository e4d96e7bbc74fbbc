//! Monthly report generation and finalization, shared by the REST operations, the monthly job
//! in `serve` and `tallyman report generate`. It reads organizations, the servers with their
//! primary licenses (only the fields the report needs) and the points weights, streams the
//! month's usage maxima through the pure report builder, and stores one report per report owner
//! (the provider and each reseller) with its lines in chunks.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Utc};
use futures::StreamExt;
use serde_json::json;
use tallyman_domain::points::{default_weights, Weight};
use tallyman_domain::report::{
    LineSection, LineView, OrgInfo, OrgKind, ReportBuilder, ReportParams, ServerInfo,
    ServerLicenseRef, UsageMax,
};
use tallyman_store::{
    OrganizationType, ReportLicense, ReportRecord, ReportStatus, ReportWrite, Store, TargetKind,
    WeightRow,
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

/// The console's license as the report reads it.
fn console_license(doc: &SlotDocument) -> Option<ServerLicenseRef> {
    let f = doc.primary()?;
    Some(ServerLicenseRef {
        license_id: Some(f.license_id),
        support_id: Some(f.claims.support_id.clone()).filter(|s| !s.is_empty()),
        edition: f.claims.edition.clone(),
        licensee: f.claims.company.clone(),
    })
}

fn server_license(l: ReportLicense) -> ServerLicenseRef {
    ServerLicenseRef {
        license_id: Some(l.license_id),
        support_id: Some(l.support_id).filter(|s| !s.is_empty()),
        edition: l.edition,
        licensee: l.company,
    }
}

/// Lines are stored in chunks of about this many bytes.
const CHUNK_BYTES: usize = 256 * 1024;
/// Partly filled chunks of all reports together are staged early past this many bytes.
const BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// The stored form of a report's lines: chunks of records, each a little-endian `u32` length
/// and the line's CSV fields from `Section` to `Note` (see [`LineView::write_csv_fields`]).
/// The CSV export adds the report's own columns around each record.
pub fn chunk_records(body: &[u8]) -> impl Iterator<Item = anyhow::Result<&[u8]>> + '_ {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            rest = &[];
            return Some(Err(anyhow::anyhow!("a report line chunk is cut short")));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            rest = &[];
            return Some(Err(anyhow::anyhow!("a report line chunk is cut short")));
        }
        let (record, after) = tail.split_at(len);
        rest = after;
        Some(Ok(record))
    })
}

/// One section of a report's lines being written.
struct SectionBuffer {
    key: (u8, String, u8),
    buffer: Vec<u8>,
    seqs: Vec<i64>,
}

/// Collects one report's lines into chunks as the builder hands them out.
struct LineSink {
    report_id: i64,
    next_seq: i64,
    sections: Vec<SectionBuffer>,
    last: usize,
    /// Full chunks waiting to be staged: (seq, body).
    ready: Vec<(i64, Vec<u8>)>,
    buffered: usize,
}

impl LineSink {
    fn new(report_id: i64) -> Self {
        Self {
            report_id,
            next_seq: 0,
            sections: Vec::new(),
            last: 0,
            ready: Vec::new(),
            buffered: 0,
        }
    }

    fn push(&mut self, section: LineSection<'_>, line: &LineView<'_>) {
        let (major, licensee, minor) = section.order_key();
        let same = |s: &SectionBuffer| s.key.0 == major && s.key.2 == minor && s.key.1 == licensee;
        let at = match self.sections.get(self.last).filter(|s| same(s)) {
            Some(_) => self.last,
            None => match self.sections.iter().position(same) {
                Some(i) => i,
                None => {
                    self.sections.push(SectionBuffer {
                        key: (major, licensee.to_string(), minor),
                        buffer: Vec::new(),
                        seqs: Vec::new(),
                    });
                    self.sections.len() - 1
                }
            },
        };
        self.last = at;
        let s = &mut self.sections[at];
        let before = s.buffer.len();
        s.buffer.extend_from_slice(&[0; 4]);
        line.write_csv_fields(&mut s.buffer);
        let len = u32::try_from(s.buffer.len() - before - 4).unwrap_or(u32::MAX);
        s.buffer[before..before + 4].copy_from_slice(&len.to_le_bytes());
        self.buffered += s.buffer.len() - before;
        if s.buffer.len() >= CHUNK_BYTES {
            self.seal(at);
        }
    }

    /// Moves a section's buffered lines to a chunk ready to be staged.
    fn seal(&mut self, at: usize) {
        let s = &mut self.sections[at];
        if s.buffer.is_empty() {
            return;
        }
        let body = std::mem::take(&mut s.buffer);
        self.buffered -= body.len();
        s.seqs.push(self.next_seq);
        self.ready.push((self.next_seq, body));
        self.next_seq += 1;
    }

    fn seal_all(&mut self) {
        for at in 0..self.sections.len() {
            self.seal(at);
        }
    }

    async fn stage(&mut self, store: &Arc<dyn Store>, batch: i64) -> anyhow::Result<()> {
        for (seq, body) in self.ready.drain(..) {
            store
                .stage_report_lines(self.report_id, batch, seq, &body)
                .await?;
        }
        Ok(())
    }

    /// The chunks in the report's line order.
    fn order(&mut self) -> Vec<i64> {
        self.sections.sort_by(|a, b| a.key.cmp(&b.key));
        self.sections
            .iter()
            .flat_map(|s| s.seqs.iter().copied())
            .collect()
    }
}

/// One owner's report being generated.
struct OwnerReport<'a> {
    owner: &'a OrgInfo,
    id: i64,
    builder: ReportBuilder<'a>,
    sink: LineSink,
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
///
/// One pass over the month's usage maxima, streamed from the store in order, feeds every
/// owner's report at once; lines are staged in chunks as they are made and become part of
/// their report when it is written. Only the servers (compact) and the reports' totals are
/// held in memory.
pub async fn generate_month(
    store: &Arc<dyn Store>,
    month: Month,
    now: DateTime<Utc>,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> anyhow::Result<Vec<(Uuid, ReportWrite)>> {
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
    let console_slot = store.license_slot(CONSOLE_TARGET).await?;
    let console_doc = console_slot
        .as_ref()
        .and_then(|slot| SlotDocument::from_slot(Some(slot)).ok());
    let provider_licensee = console_doc
        .as_ref()
        .and_then(|d| d.primary())
        .map(|f| f.claims.company.clone())
        .unwrap_or_else(|| provider.name.clone());
    let console_license = console_doc.as_ref().and_then(console_license);
    drop(console_slot);
    drop(console_doc);

    let rows = store.report_servers().await?;
    // Servers of one kind sharing an installation id are clones.
    let mut installations: HashMap<(TargetKind, &str), usize> = HashMap::new();
    for s in &rows {
        if let Some(id) = s.installation_id.as_deref() {
            *installations.entry((s.kind, id)).or_default() += 1;
        }
    }
    let cloned: Vec<bool> = rows
        .iter()
        .map(|s| {
            s.installation_id
                .as_deref()
                .is_some_and(|id| installations.get(&(s.kind, id)).copied().unwrap_or(0) > 1)
        })
        .collect();
    drop(installations);
    // (server, whether it may have sent nothing: registered before the month ended).
    let mut servers: Vec<(ServerInfo, bool)> = rows
        .into_iter()
        .zip(cloned)
        .map(|(s, cloned)| {
            let unsupported = ServerReport {
                product_version: s.product_version,
                ..ServerReport::default()
            }
            .unsupported(s.kind);
            let info = ServerInfo {
                uid: s.uid,
                name: s.name,
                product: s.kind.product().as_wire().into(),
                organization_uid: s.organization_uid,
                license: s.license.map(server_license),
                // Usage only arrives for servers that sent it; the others are listed after
                // the pass over usage.
                collected: true,
                cloned,
                unsupported,
            };
            (info, s.created_at < month.end())
        })
        .collect();
    // Backup agents managed by the console report against the console itself.
    servers.push((
        ServerInfo {
            uid: CONSOLE_TARGET,
            name: "Tallyman console".into(),
            product: TargetKind::Console.product().as_wire().into(),
            organization_uid: provider.uid,
            license: console_license,
            collected: true,
            cloned: false,
            unsupported: false,
        },
        false,
    ));
    servers.sort_by_key(|(s, _)| s.uid);
    let (servers, may_be_silent): (Vec<ServerInfo>, Vec<bool>) = servers.into_iter().unzip();
    let weights = weights(store).await?;

    let mut reports: Vec<OwnerReport<'_>> = Vec::new();
    for owner in organizations
        .iter()
        .filter(|o| matches!(o.kind, OrgKind::Provider | OrgKind::Reseller))
    {
        let id = store.report_id_for(owner.uid, &month.to_string()).await?;
        reports.push(OwnerReport {
            owner,
            id,
            builder: ReportBuilder::new(ReportParams {
                report_id: id,
                owner,
                owner_licensee: &provider_licensee,
                interval_start: month.start(),
                interval_end: month.end() - Duration::seconds(1),
                generated_at: now,
                organizations: &organizations,
                weights: &weights,
            }),
            sink: LineSink::new(id),
        });
    }
    // The reports each organization's usage counts in.
    let mut reports_of: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for (i, r) in reports.iter().enumerate() {
        for org in r.builder.scope() {
            reports_of.entry(org).or_default().push(i);
        }
    }
    let batch: i64 = rand::random();

    let mut seen = vec![false; servers.len()];
    let mut maxima = store.usage_maxima_stream(month.start(), month.end());
    // Maxima come in server order, like `servers`: most lookups are the last server or the
    // next one.
    let mut cursor = 0;
    // Bytes in partly filled chunks of all reports.
    let mut buffered = 0usize;
    while let Some(m) = maxima.next().await {
        let m = m?;
        let at = if servers.get(cursor).is_some_and(|s| s.uid == m.server_uid) {
            cursor
        } else if servers
            .get(cursor + 1)
            .is_some_and(|s| s.uid == m.server_uid)
        {
            cursor + 1
        } else {
            match servers.binary_search_by_key(&m.server_uid, |s| s.uid) {
                Ok(at) => at,
                Err(_) => continue,
            }
        };
        cursor = at;
        seen[at] = true;
        let Some(owners) = reports_of.get(&m.organization_uid) else {
            continue;
        };
        let usage = UsageMax {
            server_uid: m.server_uid,
            organization_uid: m.organization_uid,
            workload_type: m.workload_type,
            platform: m.platform,
            used: u64::try_from(m.used).unwrap_or(0),
            new: u64::try_from(m.new).unwrap_or(0),
        };
        for &i in owners {
            let r = &mut reports[i];
            let before = r.sink.buffered;
            let sink = &mut r.sink;
            r.builder
                .add_usage(&servers[at], &usage, &mut |section, line| {
                    sink.push(section, line)
                });
            buffered = buffered + r.sink.buffered - before;
            if !r.sink.ready.is_empty() {
                r.sink.stage(store, batch).await?;
            }
        }
        if buffered > BUFFERED_BYTES {
            for r in &mut reports {
                r.sink.seal_all();
                r.sink.stage(store, batch).await?;
            }
            buffered = 0;
        }
    }
    drop(maxima);
    // Servers that sent nothing for the month are listed under their owner, to be reported by
    // hand.
    for (at, server) in servers.iter().enumerate() {
        if seen[at] || !may_be_silent[at] {
            continue;
        }
        let Some(owners) = reports_of.get(&server.organization_uid) else {
            continue;
        };
        for &i in owners {
            let r = &mut reports[i];
            let sink = &mut r.sink;
            r.builder
                .add_not_collected(server, &mut |section, line| sink.push(section, line));
            if !r.sink.ready.is_empty() {
                r.sink.stage(store, batch).await?;
            }
        }
    }

    let total = reports.len();
    let mut written = Vec::new();
    for (i, r) in reports.into_iter().enumerate() {
        let OwnerReport {
            owner,
            id,
            builder,
            mut sink,
        } = r;
        sink.seal_all();
        sink.stage(store, batch).await?;
        let order = sink.order();
        let mut report = builder.finish();
        let approve = auto_approve(store, owner.uid, provider.uid).await?;
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
            lines: None,
        };
        drop(report);
        written.push((
            owner.uid,
            store.write_report_staged(&record, batch, &order).await?,
        ));
        progress(i + 1, total);
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
