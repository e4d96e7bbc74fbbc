//! The monthly license usage report: from the month's high-water marks per server,
//! organization and workload type, build the report a provider (or reseller) approves and bills
//! from. Pure: the caller gathers organizations, servers, usage maxima and weights.
//!
//! Rules (licensing.md §3.5–3.6): points = reported count × weight, summed per weight bucket,
//! platform, workload type, product and edition; new workloads are listed and free; rental
//! workloads never appear; servers with no usage are left out; servers whose data was not
//! collected are listed instead of counted; a server whose license names another licensee goes
//! to an appendix for that licensee; usage of one license id on several servers is summed. The
//! summary total and the sum over organizations are the same rows added two ways, so they agree.
//!
//! The output types are the report as stored and as the API returns it; they carry the wire
//! names on purpose (the stored document is the published format).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::points::{lookup, Weight};

/// Where an organization sits in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgKind {
    Provider,
    Reseller,
    Company,
}

impl OrgKind {
    pub fn as_wire(self) -> &'static str {
        match self {
            OrgKind::Provider => "Provider",
            OrgKind::Reseller => "Reseller",
            OrgKind::Company => "Company",
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrgInfo {
    pub uid: Uuid,
    pub name: String,
    pub kind: OrgKind,
    pub parent: Option<Uuid>,
}

/// The license a server runs, as far as the report needs it.
#[derive(Debug, Clone)]
pub struct ServerLicenseRef {
    pub license_id: Option<Uuid>,
    pub support_id: Option<String>,
    pub edition: String,
    /// Licensee company named in the file.
    pub licensee: String,
}

#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub uid: Uuid,
    pub name: String,
    /// `productType`: `CloudConnect`, `BackupAndReplication`, `VONE`, `VB365`, `VSPC`.
    pub product: String,
    /// The organization that owns the server.
    pub organization_uid: Uuid,
    pub license: Option<ServerLicenseRef>,
    /// Usage data arrived for the month.
    pub collected: bool,
    /// Shares its installation id with another server.
    pub cloned: bool,
    pub unsupported: bool,
}

/// The month's maximum counts for one server, consumer organization, workload type and platform.
#[derive(Debug, Clone)]
pub struct UsageMax {
    pub server_uid: Uuid,
    pub organization_uid: Uuid,
    pub workload_type: String,
    pub platform: String,
    pub used: u64,
    pub new: u64,
}

pub struct ReportInput<'a> {
    pub report_id: i64,
    pub owner: &'a OrgInfo,
    /// The licensee name on the owner's own license; usage under other licensees goes to
    /// appendices.
    pub owner_licensee: &'a str,
    pub interval_start: DateTime<Utc>,
    pub interval_end: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub organizations: &'a [OrgInfo],
    pub servers: &'a [ServerInfo],
    pub usage: &'a [UsageMax],
    pub weights: &'a [Weight],
}

fn vspc_datetime<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let base = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let (head, offset) = base.split_at(base.len() - 6);
    s.serialize_str(&format!(
        "{head}.{:07}{offset}",
        t.timestamp_subsec_nanos() / 100
    ))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SingleLicenseReport {
    pub report_status: String,
    pub report_parameters: LicenseReportParameters,
    pub report_summary: LicenseReportSummary,
    pub organizations_usage: Vec<OrganizationLicenseUsage>,
    pub not_collected_cloud_servers: Vec<String>,
    pub cloned_cloud_servers: Vec<String>,
    pub unsupported_cloud_servers: Vec<String>,
    pub usage_details: Vec<OrganizationUsageOfLicensesWithSameSupportId>,
    pub appendices: Vec<LicenseReportAppendix>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseReportParameters {
    pub report_id: i64,
    pub organization_name: String,
    pub organization_uid: Uuid,
    pub license_company_name: String,
    #[serde(serialize_with = "vspc_datetime")]
    pub generation_date: DateTime<Utc>,
    pub report_interval: LicenseReportInterval,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseReportInterval {
    #[serde(serialize_with = "vspc_datetime")]
    pub start_of_interval: DateTime<Utc>,
    #[serde(serialize_with = "vspc_datetime")]
    pub end_of_interval: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseReportSummary {
    pub total_points: f64,
    pub products_usage: Vec<TotalProductLicenseUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotalProductLicenseUsage {
    pub product_type: String,
    pub total_points: f64,
    pub license_edition: String,
    pub workload_usage: Vec<WorkloadLicenseUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadLicenseUsage {
    pub workload_type: String,
    pub description: String,
    pub initial_count: u64,
    pub reported_count: u64,
    pub new_count: u64,
    /// The weight when the type has one; the largest bucket's otherwise.
    pub weight: f64,
    pub used_points: f64,
    pub workloads_by_platform: Vec<WorkloadLicenseUsageByPlatform>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadLicenseUsageByPlatform {
    pub type_id: String,
    pub description: String,
    pub objects_by_weight: Vec<WorkloadLicenseUsageByWeight>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadLicenseUsageByWeight {
    pub weight: f64,
    pub initial_count: u64,
    pub reported_count: u64,
    pub new_count: u64,
    pub used_points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationLicenseUsage {
    pub organization_type: String,
    pub organization_name: String,
    pub organization_uid: Uuid,
    pub used_points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationUsageOfLicensesWithSameSupportId {
    pub organization_name: String,
    pub organization_uid: Uuid,
    pub support_id: Option<String>,
    pub not_collected_client_servers: Vec<String>,
    pub cloned_client_servers: Vec<String>,
    pub unsupported_client_servers: Vec<String>,
    pub usage_by_license_and_product: Vec<ProductLicenseUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductLicenseUsage {
    pub license_id: Option<String>,
    pub product_type: String,
    pub license_edition: Option<String>,
    pub used_points: f64,
    pub workload_usage: Vec<WorkloadLicenseUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseReportAppendix {
    pub license_company_name: String,
    pub appendix_summary: LicenseReportSummary,
    pub organizations_usage: Vec<OrganizationLicenseUsage>,
    pub not_collected_cloud_servers: Vec<String>,
    pub cloned_cloud_servers: Vec<String>,
    pub unsupported_cloud_servers: Vec<String>,
    pub usage_details: Vec<OrganizationUsageOfLicensesWithSameSupportId>,
}

/// One flat line of a report: an organization's usage of one workload type on one server (or
/// a server left out of the counting). The CSV export is made of these; their points add up to
/// the report's totals.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportLine {
    /// `Main`, `Appendix`, or `Excluded`.
    pub section: String,
    /// The licensee an appendix line belongs to; the owner's licensee otherwise.
    pub licensee: String,
    pub organization_type: String,
    pub organization_name: String,
    pub organization_uid: Uuid,
    pub server_uid: Uuid,
    pub server_name: String,
    pub product_type: String,
    pub license_edition: String,
    pub license_id: Option<Uuid>,
    pub support_id: Option<String>,
    pub workload_type: String,
    pub platform: String,
    pub weight: f64,
    pub initial_count: u64,
    pub new_count: u64,
    pub reported_count: u64,
    pub used_points: f64,
    /// Why an `Excluded` line was left out: `NotCollected`, `Cloned` or `Unsupported`.
    pub note: String,
}

/// A human description of a workload type, as the report prints it.
pub fn describe(workload_type: &str) -> &'static str {
    match workload_type {
        "VAC_Server_Agent" => "Server agents managed by the console",
        "VAC_Workstation_Agent" => "Workstation agents managed by the console",
        "VBR_VM" => "Virtual machines",
        "VBR_Server_Agent" => "Server agents",
        "VBR_Workstation_Agent" => "Workstation agents",
        "VBR_Application_Plugins" => "Enterprise application plug-ins",
        "VBR_Cloud_VM" => "Cloud machines",
        "VBR_Cloud_Database" => "Cloud databases",
        "VBR_Cloud_File_Share" => "Cloud file shares",
        "VBR_NAS_Backup" => "File shares (per 500 GB)",
        "VBR_NAS_Server" => "File servers",
        "VBR_Tape_Backup" => "Tape backups",
        "VBR_Tape_Server" => "Tape servers",
        "CC_VM_Backup" => "Cloud Connect backups of virtual machines",
        "CC_VM_Replica" => "Cloud Connect replicas",
        "CC_Server_Backup" => "Cloud Connect backups of servers",
        "CC_Workstation_Backup" => "Cloud Connect backups of workstations",
        "VB365_User" => "Microsoft 365 users",
        "VONE_VM" => "Monitored virtual machines",
        "VONE_Cloud_VM" => "Monitored cloud machines",
        "VONE_Server_Agent" => "Monitored server agents",
        "VONE_Workstation_Agent" => "Monitored workstation agents",
        "VONE_Nas_Backup" => "Monitored file shares",
        "VONE_Cloud_File_Share" => "Monitored cloud file shares",
        "VONE_Cloud_Database" => "Monitored cloud databases",
        "VONE_Tape_Backup" => "Monitored tape backups",
        "VONE_User" => "Monitored users",
        _ => "Other workloads",
    }
}

/// The month's totals of one workload type → platform → weight bucket: (weight, used, new).
type Buckets = BTreeMap<u64, (f64, u64, u64)>;
type WorkTree = BTreeMap<String, BTreeMap<String, Buckets>>;

/// The entry for `key`, created empty if missing (the key is only copied when it is new).
fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("the entry was inserted above")
}

fn tree_add(
    tree: &mut WorkTree,
    workload_type: &str,
    platform: &str,
    weight: f64,
    used: u64,
    new: u64,
) {
    let bucket = slot(slot(tree, workload_type), platform)
        .entry(weight.to_bits())
        .or_insert((weight, 0, 0));
    bucket.1 += used;
    bucket.2 += new;
}

/// Totals per workload type, nested by platform and weight, in a stable order.
fn workloads(tree: &WorkTree) -> Vec<WorkloadLicenseUsage> {
    tree.iter()
        .map(|(workload_type, platforms)| {
            let mut initial = 0;
            let mut new = 0;
            let mut points = 0.0;
            let mut weights = Vec::new();
            let by_platform = platforms
                .iter()
                .map(|(platform, buckets)| WorkloadLicenseUsageByPlatform {
                    type_id: platform.to_string(),
                    description: platform.replace('_', " "),
                    objects_by_weight: buckets
                        .values()
                        .map(|&(weight, used, fresh)| {
                            initial += used;
                            new += fresh;
                            points += used as f64 * weight;
                            weights.push(weight);
                            WorkloadLicenseUsageByWeight {
                                weight,
                                initial_count: used,
                                reported_count: used,
                                new_count: fresh,
                                used_points: used as f64 * weight,
                            }
                        })
                        .collect(),
                })
                .collect();
            WorkloadLicenseUsage {
                workload_type: workload_type.to_string(),
                description: describe(workload_type).to_string(),
                initial_count: initial,
                reported_count: initial,
                new_count: new,
                weight: weights.iter().copied().fold(0.0, f64::max),
                used_points: points,
                workloads_by_platform: by_platform,
            }
        })
        .collect()
}

fn points_of(workload_usage: &[WorkloadLicenseUsage]) -> f64 {
    workload_usage
        .iter()
        .map(|w| w.used_points)
        .fold(0.0, |a, b| a + b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exclusion {
    NotCollected,
    Cloned,
    Unsupported,
}

impl Exclusion {
    fn note(self) -> &'static str {
        match self {
            Exclusion::NotCollected => "NotCollected",
            Exclusion::Cloned => "Cloned",
            Exclusion::Unsupported => "Unsupported",
        }
    }
}

type Excluded<'a> = (&'a OrgInfo, &'a ServerInfo, Exclusion);

/// Where a line belongs in a report's flat list. The list is the sections in the order of
/// [`LineSection::order_key`], each in the order its lines were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSection<'s> {
    /// Counted in the report's summary.
    Main,
    /// Counted in the appendix of this licensee.
    Appendix(&'s str),
    /// Usage of a cloned, unsupported or not collected server.
    Excluded,
    /// A server that sent nothing for the month (listed after [`LineSection::Excluded`]).
    NotCollected,
    /// [`LineSection::Excluded`] for a server licensed to this licensee.
    ExcludedAppendix(&'s str),
    /// [`LineSection::NotCollected`] for a server licensed to this licensee.
    NotCollectedAppendix(&'s str),
}

impl<'s> LineSection<'s> {
    /// Sorting sections by this key (strings by their bytes) gives the report's line order.
    pub fn order_key(&self) -> (u8, &'s str, u8) {
        match *self {
            LineSection::Main => (0, "", 0),
            LineSection::Appendix(l) => (1, l, 0),
            LineSection::Excluded => (2, "", 0),
            LineSection::NotCollected => (2, "", 1),
            LineSection::ExcludedAppendix(l) => (3, l, 0),
            LineSection::NotCollectedAppendix(l) => (3, l, 1),
        }
    }
}

/// A report line borrowed from the builder's inputs: what [`ReportLine`] holds, without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineView<'l> {
    pub section: &'l str,
    pub licensee: &'l str,
    pub organization_type: &'l str,
    pub organization_name: &'l str,
    pub organization_uid: Uuid,
    pub server_uid: Uuid,
    pub server_name: &'l str,
    pub product_type: &'l str,
    pub license_edition: &'l str,
    pub license_id: Option<Uuid>,
    pub support_id: Option<&'l str>,
    pub workload_type: &'l str,
    pub platform: &'l str,
    pub weight: f64,
    pub initial_count: u64,
    pub new_count: u64,
    pub reported_count: u64,
    pub used_points: f64,
    pub note: &'l str,
}

impl LineView<'_> {
    pub fn to_line(&self) -> ReportLine {
        ReportLine {
            section: self.section.into(),
            licensee: self.licensee.into(),
            organization_type: self.organization_type.into(),
            organization_name: self.organization_name.into(),
            organization_uid: self.organization_uid,
            server_uid: self.server_uid,
            server_name: self.server_name.into(),
            product_type: self.product_type.into(),
            license_edition: self.license_edition.into(),
            license_id: self.license_id,
            support_id: self.support_id.map(str::to_string),
            workload_type: self.workload_type.into(),
            platform: self.platform.into(),
            weight: self.weight,
            initial_count: self.initial_count,
            new_count: self.new_count,
            reported_count: self.reported_count,
            used_points: self.used_points,
            note: self.note.into(),
        }
    }

    /// Appends the line's CSV fields from `Section` to `Note` (docs/report-csv.md), quoted and
    /// comma-separated, without a line end.
    pub fn write_csv_fields(&self, out: &mut Vec<u8>) {
        let mut uuid = Uuid::encode_buffer();
        csv_field(out, self.section);
        out.push(b',');
        csv_field(out, self.licensee);
        out.push(b',');
        csv_field(out, self.organization_type);
        out.push(b',');
        csv_field(out, self.organization_name);
        out.push(b',');
        out.extend_from_slice(
            self.organization_uid
                .hyphenated()
                .encode_lower(&mut uuid)
                .as_bytes(),
        );
        out.push(b',');
        csv_field(out, self.server_name);
        out.push(b',');
        out.extend_from_slice(
            self.server_uid
                .hyphenated()
                .encode_lower(&mut uuid)
                .as_bytes(),
        );
        out.push(b',');
        csv_field(out, self.product_type);
        out.push(b',');
        csv_field(out, self.license_edition);
        out.push(b',');
        if let Some(id) = self.license_id {
            out.extend_from_slice(id.hyphenated().encode_lower(&mut uuid).as_bytes());
        }
        out.push(b',');
        csv_field(out, self.support_id.unwrap_or(""));
        out.push(b',');
        csv_field(out, self.workload_type);
        out.push(b',');
        csv_field(out, self.platform);
        out.push(b',');
        csv_number(out, self.weight);
        out.push(b',');
        csv_integer(out, self.initial_count);
        out.push(b',');
        csv_integer(out, self.new_count);
        out.push(b',');
        csv_integer(out, self.reported_count);
        out.push(b',');
        csv_number(out, self.used_points);
        out.push(b',');
        csv_field(out, self.note);
    }
}

impl ReportLine {
    pub fn view(&self) -> LineView<'_> {
        LineView {
            section: &self.section,
            licensee: &self.licensee,
            organization_type: &self.organization_type,
            organization_name: &self.organization_name,
            organization_uid: self.organization_uid,
            server_uid: self.server_uid,
            server_name: &self.server_name,
            product_type: &self.product_type,
            license_edition: &self.license_edition,
            license_id: self.license_id,
            support_id: self.support_id.as_deref(),
            workload_type: &self.workload_type,
            platform: &self.platform,
            weight: self.weight,
            initial_count: self.initial_count,
            new_count: self.new_count,
            reported_count: self.reported_count,
            used_points: self.used_points,
            note: &self.note,
        }
    }
}

/// Appends a CSV field, quoted as RFC 4180 requires (and when it starts or ends with a space).
pub fn csv_field(out: &mut Vec<u8>, field: &str) {
    let bytes = field.as_bytes();
    let quote = bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
        || bytes.first() == Some(&b' ')
        || bytes.last() == Some(&b' ');
    if !quote {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    for part in field.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// Appends a number in invariant form: integers without a fraction, others as Rust prints
/// them.
pub fn csv_number(out: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    if v.fract() == 0.0 && v.abs() < 1e15 {
        csv_integer_signed(out, v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn csv_integer_signed(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    csv_integer(out, v.unsigned_abs());
}

/// Appends an unsigned integer in decimal.
pub fn csv_integer(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// (consumer name, consumer uid, support id).
type DetailKey<'a> = (&'a str, Uuid, Option<&'a str>);
/// (license id, product, edition).
type LicenseKey<'a> = (Option<Uuid>, &'a str, &'a str);

/// Usage totals of one part of a report (the main part or one appendix). Kept in hash maps
/// while usage is added; sorted once when the report is made.
#[derive(Default)]
struct Part<'a> {
    /// (product, edition) → workloads.
    summary: HashMap<(&'a str, &'a str), WorkTree>,
    /// (order of the kind, name, uid) of the organization line → points, added in usage order.
    organizations: HashMap<(u8, &'a str, Uuid), f64>,
    /// (consumer name, consumer uid, support id) → (license id, product, edition) → workloads.
    details: HashMap<DetailKey<'a>, HashMap<LicenseKey<'a>, WorkTree>>,
}

/// The entries of a map sorted by key.
fn sorted<K: Ord, V>(map: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

fn edition_of(server: &ServerInfo) -> &str {
    server
        .license
        .as_ref()
        .map(|l| l.edition.as_str())
        .unwrap_or("")
}

impl<'a> Part<'a> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        server: &'a ServerInfo,
        line: &'a OrgInfo,
        consumer: &'a OrgInfo,
        workload_type: &str,
        platform: &str,
        weight: f64,
        used: u64,
        new: u64,
    ) {
        let edition = edition_of(server);
        tree_add(
            self.summary
                .entry((server.product.as_str(), edition))
                .or_default(),
            workload_type,
            platform,
            weight,
            used,
            new,
        );
        let order = match line.kind {
            OrgKind::Company => 0,
            OrgKind::Reseller => 1,
            OrgKind::Provider => 2,
        };
        *self
            .organizations
            .entry((order, line.name.as_str(), line.uid))
            .or_default() += used as f64 * weight;
        let license = server.license.as_ref();
        let support = license.and_then(|l| l.support_id.as_deref());
        tree_add(
            self.details
                .entry((consumer.name.as_str(), consumer.uid, support))
                .or_default()
                .entry((
                    license.and_then(|l| l.license_id),
                    server.product.as_str(),
                    edition,
                ))
                .or_default(),
            workload_type,
            platform,
            weight,
            used,
            new,
        );
    }

    fn summary(&self) -> LicenseReportSummary {
        let products_usage: Vec<TotalProductLicenseUsage> = sorted(&self.summary)
            .into_iter()
            .map(|((product, edition), tree)| {
                let workload_usage = workloads(tree);
                TotalProductLicenseUsage {
                    product_type: product.to_string(),
                    total_points: points_of(&workload_usage),
                    license_edition: edition.to_string(),
                    workload_usage,
                }
            })
            .collect();
        LicenseReportSummary {
            total_points: products_usage
                .iter()
                .map(|p| p.total_points)
                .fold(0.0, |a, b| a + b),
            products_usage,
        }
    }

    fn organizations_usage(&self) -> Vec<OrganizationLicenseUsage> {
        sorted(&self.organizations)
            .into_iter()
            .map(|(&(order, name, uid), &points)| OrganizationLicenseUsage {
                organization_type: match order {
                    0 => "Company",
                    1 => "Reseller",
                    _ => "Provider",
                }
                .to_string(),
                organization_name: name.to_string(),
                organization_uid: uid,
                used_points: points,
            })
            .collect()
    }

    fn usage_details(
        &self,
        excluded: &[Excluded<'a>],
    ) -> Vec<OrganizationUsageOfLicensesWithSameSupportId> {
        type Key<'k> = (&'k str, Uuid, Option<&'k str>);
        let mut out: BTreeMap<Key<'a>, OrganizationUsageOfLicensesWithSameSupportId> = self
            .details
            .iter()
            .map(|(&key, by_license)| {
                let usage = sorted(by_license)
                    .into_iter()
                    .map(|(&(license_id, product, edition), tree)| {
                        let workload_usage = workloads(tree);
                        ProductLicenseUsage {
                            license_id: license_id.map(|u| u.to_string()),
                            product_type: product.to_string(),
                            license_edition: Some(edition.to_string()).filter(|e| !e.is_empty()),
                            used_points: points_of(&workload_usage),
                            workload_usage,
                        }
                    })
                    .collect();
                let entry = OrganizationUsageOfLicensesWithSameSupportId {
                    organization_name: key.0.to_string(),
                    organization_uid: key.1,
                    support_id: key.2.map(str::to_string),
                    not_collected_client_servers: Vec::new(),
                    cloned_client_servers: Vec::new(),
                    unsupported_client_servers: Vec::new(),
                    usage_by_license_and_product: usage,
                };
                (key, entry)
            })
            .collect();
        for &(org, server, why) in excluded {
            if server.product == "CloudConnect" {
                continue;
            }
            let support = server
                .license
                .as_ref()
                .and_then(|l| l.support_id.as_deref());
            let entry = out
                .entry((org.name.as_str(), org.uid, support))
                .or_insert_with(|| OrganizationUsageOfLicensesWithSameSupportId {
                    organization_name: org.name.clone(),
                    organization_uid: org.uid,
                    support_id: support.map(str::to_string),
                    not_collected_client_servers: Vec::new(),
                    cloned_client_servers: Vec::new(),
                    unsupported_client_servers: Vec::new(),
                    usage_by_license_and_product: Vec::new(),
                });
            let list = match why {
                Exclusion::NotCollected => &mut entry.not_collected_client_servers,
                Exclusion::Cloned => &mut entry.cloned_client_servers,
                Exclusion::Unsupported => &mut entry.unsupported_client_servers,
            };
            if !list.contains(&server.name) {
                list.push(server.name.clone());
            }
        }
        out.into_values().collect()
    }
}

fn cloud_list(excluded: &[Excluded<'_>], why: Exclusion) -> Vec<String> {
    let mut names: Vec<String> = excluded
        .iter()
        .filter(|(_, s, w)| *w == why && s.product == "CloudConnect")
        .map(|(_, s, _)| s.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The organizations inside `owner`'s part of the tree (the owner included).
pub fn subtree(owner: Uuid, orgs: &[OrgInfo]) -> BTreeMap<Uuid, &OrgInfo> {
    let mut inside: BTreeMap<Uuid, &OrgInfo> = orgs
        .iter()
        .filter(|o| o.uid == owner)
        .map(|o| (o.uid, o))
        .collect();
    loop {
        let before = inside.len();
        for o in orgs {
            if o.parent.is_some_and(|p| inside.contains_key(&p)) {
                inside.insert(o.uid, o);
            }
        }
        if inside.len() == before {
            return inside;
        }
    }
}

/// What one owner's report is built for: everything of [`ReportInput`] but the servers and the
/// usage, which are fed to [`ReportBuilder`] one at a time.
#[derive(Clone, Copy)]
pub struct ReportParams<'a> {
    pub report_id: i64,
    pub owner: &'a OrgInfo,
    pub owner_licensee: &'a str,
    pub interval_start: DateTime<Utc>,
    pub interval_end: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub organizations: &'a [OrgInfo],
    pub weights: &'a [Weight],
}

/// Builds one owner's report incrementally: feed it the month's usage maxima in order
/// ([`ReportBuilder::add_usage`]), then the servers that sent nothing
/// ([`ReportBuilder::add_not_collected`]), then [`ReportBuilder::finish`]. Lines are handed to
/// the caller as they are made, so a report's lines never need to be held at once; only the
/// report's totals are kept.
pub struct ReportBuilder<'a> {
    params: ReportParams<'a>,
    scope: BTreeMap<Uuid, &'a OrgInfo>,
    main: Part<'a>,
    appendix: BTreeMap<&'a str, Part<'a>>,
    excluded: Vec<Excluded<'a>>,
    excluded_appendix: BTreeMap<&'a str, Vec<Excluded<'a>>>,
    excluded_servers: std::collections::HashSet<Uuid>,
    /// The last consumer seen and its line: usage comes sorted, so runs of one consumer are
    /// common.
    last_consumer: Option<(Uuid, Option<(&'a OrgInfo, &'a OrgInfo)>)>,
    /// Weights looked up so far: (product, edition, workload type, weight).
    weights_seen: Vec<(&'a str, &'a str, String, f64)>,
}

impl<'a> ReportBuilder<'a> {
    pub fn new(params: ReportParams<'a>) -> Self {
        Self {
            scope: subtree(params.owner.uid, params.organizations),
            params,
            main: Part::default(),
            appendix: BTreeMap::new(),
            excluded: Vec::new(),
            excluded_appendix: BTreeMap::new(),
            excluded_servers: std::collections::HashSet::new(),
            last_consumer: None,
            weights_seen: Vec::new(),
        }
    }

    /// The organizations inside the owner's part of the tree (the owner included).
    pub fn scope(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.scope.keys().copied()
    }

    /// Whether `organization` is inside the owner's part of the tree.
    pub fn in_scope(&self, organization: Uuid) -> bool {
        self.scope.contains_key(&organization)
    }

    /// The line a consumer's usage is reported on: in the provider's report, companies of a
    /// reseller roll up into that reseller's line.
    fn line_of(&self, consumer: &'a OrgInfo) -> Option<&'a OrgInfo> {
        match (self.params.owner.kind, consumer.kind) {
            (OrgKind::Provider, OrgKind::Company) => {
                let parent = consumer.parent.and_then(|p| self.scope.get(&p).copied());
                match parent {
                    Some(p) if p.kind == OrgKind::Reseller => Some(p),
                    _ => self.scope.get(&consumer.uid).copied(),
                }
            }
            _ => self.scope.get(&consumer.uid).copied(),
        }
    }

    /// The weight of a workload type on a product and edition (0 without one).
    fn weight(&mut self, product: &'a str, edition: &'a str, workload_type: &str) -> f64 {
        let known = self
            .weights_seen
            .iter()
            .find(|(p, e, w, _)| *p == product && *e == edition && w == workload_type);
        if let Some(&(_, _, _, weight)) = known {
            return weight;
        }
        let weight = lookup(self.params.weights, product, edition, workload_type).unwrap_or(0.0);
        // The distinct combinations are few; past a bound, look up instead of remembering.
        if self.weights_seen.len() < 256 {
            self.weights_seen
                .push((product, edition, workload_type.to_string(), weight));
        }
        weight
    }

    fn appendix_licensee(&self, server: &'a ServerInfo) -> Option<&'a str> {
        server
            .license
            .as_ref()
            .map(|l| l.licensee.as_str())
            .filter(|l| !l.is_empty() && *l != self.params.owner_licensee)
    }

    /// Adds one usage maximum of `server` (the server `usage.server_uid` names); `emit`
    /// receives the line it makes, if any.
    pub fn add_usage(
        &mut self,
        server: &'a ServerInfo,
        usage: &UsageMax,
        emit: &mut dyn FnMut(LineSection<'a>, &LineView<'_>),
    ) {
        let found = match self.last_consumer {
            Some((uid, found)) if uid == usage.organization_uid => found,
            _ => {
                let found = self
                    .scope
                    .get(&usage.organization_uid)
                    .copied()
                    .and_then(|consumer| Some((consumer, self.line_of(consumer)?)));
                self.last_consumer = Some((usage.organization_uid, found));
                found
            }
        };
        let Some((consumer, line)) = found else {
            return;
        };
        let in_appendix = self.appendix_licensee(server);
        let why = if !server.collected {
            Some(Exclusion::NotCollected)
        } else if server.cloned {
            Some(Exclusion::Cloned)
        } else if server.unsupported {
            Some(Exclusion::Unsupported)
        } else {
            None
        };
        if let Some(why) = why {
            self.excluded_servers.insert(server.uid);
            let entry = (consumer, server, why);
            match in_appendix {
                Some(l) => {
                    self.excluded_appendix.entry(l).or_default().push(entry);
                    emit(
                        LineSection::ExcludedAppendix(l),
                        &excluded_view(l, consumer, server, why),
                    );
                }
                None => {
                    self.excluded.push(entry);
                    emit(
                        LineSection::Excluded,
                        &excluded_view(self.params.owner_licensee, consumer, server, why),
                    );
                }
            }
            return;
        }
        if usage.used == 0 && usage.new == 0 {
            return;
        }
        let edition = edition_of(server);
        let weight = self.weight(&server.product, edition, &usage.workload_type);
        let (part, section, name, licensee) = match in_appendix {
            Some(l) => (
                self.appendix.entry(l).or_default(),
                LineSection::Appendix(l),
                "Appendix",
                l,
            ),
            None => (
                &mut self.main,
                LineSection::Main,
                "Main",
                self.params.owner_licensee,
            ),
        };
        part.add(
            server,
            line,
            consumer,
            &usage.workload_type,
            &usage.platform,
            weight,
            usage.used,
            usage.new,
        );
        let license = server.license.as_ref();
        emit(
            section,
            &LineView {
                section: name,
                licensee,
                organization_type: consumer.kind.as_wire(),
                organization_name: &consumer.name,
                organization_uid: consumer.uid,
                server_uid: server.uid,
                server_name: &server.name,
                product_type: &server.product,
                license_edition: edition,
                license_id: license.and_then(|l| l.license_id),
                support_id: license.and_then(|l| l.support_id.as_deref()),
                workload_type: &usage.workload_type,
                platform: &usage.platform,
                weight,
                initial_count: usage.used,
                new_count: usage.new,
                reported_count: usage.used,
                used_points: usage.used as f64 * weight,
                note: "",
            },
        );
    }

    /// Lists a server that sent nothing for the month under its owner, to be reported by hand.
    /// Call after the last [`ReportBuilder::add_usage`], in server order.
    pub fn add_not_collected(
        &mut self,
        server: &'a ServerInfo,
        emit: &mut dyn FnMut(LineSection<'a>, &LineView<'_>),
    ) {
        let Some(owner) = self.scope.get(&server.organization_uid).copied() else {
            return;
        };
        if !self.excluded_servers.insert(server.uid) {
            return;
        }
        let why = Exclusion::NotCollected;
        match self.appendix_licensee(server) {
            Some(l) => {
                self.excluded_appendix
                    .entry(l)
                    .or_default()
                    .push((owner, server, why));
                emit(
                    LineSection::NotCollectedAppendix(l),
                    &excluded_view(l, owner, server, why),
                );
            }
            None => {
                self.excluded.push((owner, server, why));
                emit(
                    LineSection::NotCollected,
                    &excluded_view(self.params.owner_licensee, owner, server, why),
                );
            }
        }
    }

    /// The report (`ApprovalRequired`; the caller sets the status it stores).
    pub fn finish(self) -> SingleLicenseReport {
        let mut licensees: Vec<&str> = self.appendix.keys().copied().collect();
        licensees.extend(self.excluded_appendix.keys().copied());
        licensees.sort_unstable();
        licensees.dedup();
        let empty = Part::default();
        let appendices = licensees
            .into_iter()
            .map(|licensee| {
                let part = self.appendix.get(licensee).unwrap_or(&empty);
                let ex: &[Excluded<'_>] = self
                    .excluded_appendix
                    .get(licensee)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                LicenseReportAppendix {
                    license_company_name: licensee.to_string(),
                    appendix_summary: part.summary(),
                    organizations_usage: part.organizations_usage(),
                    not_collected_cloud_servers: cloud_list(ex, Exclusion::NotCollected),
                    cloned_cloud_servers: cloud_list(ex, Exclusion::Cloned),
                    unsupported_cloud_servers: cloud_list(ex, Exclusion::Unsupported),
                    usage_details: part.usage_details(ex),
                }
            })
            .collect();
        let p = &self.params;
        SingleLicenseReport {
            report_status: "ApprovalRequired".into(),
            report_parameters: LicenseReportParameters {
                report_id: p.report_id,
                organization_name: p.owner.name.clone(),
                organization_uid: p.owner.uid,
                license_company_name: p.owner_licensee.to_string(),
                generation_date: p.generated_at,
                report_interval: LicenseReportInterval {
                    start_of_interval: p.interval_start,
                    end_of_interval: p.interval_end,
                },
            },
            report_summary: self.main.summary(),
            organizations_usage: self.main.organizations_usage(),
            not_collected_cloud_servers: cloud_list(&self.excluded, Exclusion::NotCollected),
            cloned_cloud_servers: cloud_list(&self.excluded, Exclusion::Cloned),
            unsupported_cloud_servers: cloud_list(&self.excluded, Exclusion::Unsupported),
            usage_details: self.main.usage_details(&self.excluded),
            appendices,
        }
    }
}

fn excluded_view<'l>(
    licensee: &'l str,
    org: &'l OrgInfo,
    server: &'l ServerInfo,
    why: Exclusion,
) -> LineView<'l> {
    let license = server.license.as_ref();
    LineView {
        section: "Excluded",
        licensee,
        organization_type: org.kind.as_wire(),
        organization_name: &org.name,
        organization_uid: org.uid,
        server_uid: server.uid,
        server_name: &server.name,
        product_type: &server.product,
        license_edition: license.map(|l| l.edition.as_str()).unwrap_or(""),
        license_id: license.and_then(|l| l.license_id),
        support_id: license.and_then(|l| l.support_id.as_deref()),
        workload_type: "",
        platform: "",
        weight: 0.0,
        initial_count: 0,
        new_count: 0,
        reported_count: 0,
        used_points: 0.0,
        note: why.note(),
    }
}

/// Builds one owner's report for the month.
pub fn build(input: &ReportInput<'_>) -> SingleLicenseReport {
    build_with_lines(input).0
}

/// Builds one owner's report for the month, with its flat lines (all in memory: for large
/// fleets, drive a [`ReportBuilder`] instead).
pub fn build_with_lines(input: &ReportInput<'_>) -> (SingleLicenseReport, Vec<ReportLine>) {
    let mut builder = ReportBuilder::new(ReportParams {
        report_id: input.report_id,
        owner: input.owner,
        owner_licensee: input.owner_licensee,
        interval_start: input.interval_start,
        interval_end: input.interval_end,
        generated_at: input.generated_at,
        organizations: input.organizations,
        weights: input.weights,
    });
    let servers: BTreeMap<Uuid, &ServerInfo> = input.servers.iter().map(|s| (s.uid, s)).collect();
    let mut sections: BTreeMap<(u8, String, u8), Vec<ReportLine>> = BTreeMap::new();
    let mut emit = |section: LineSection<'_>, line: &LineView<'_>| {
        let (major, licensee, minor) = section.order_key();
        sections
            .entry((major, licensee.to_string(), minor))
            .or_default()
            .push(line.to_line());
    };
    for u in input.usage {
        if let Some(server) = servers.get(&u.server_uid).copied() {
            builder.add_usage(server, u, &mut emit);
        }
    }
    for server in input.servers.iter().filter(|s| !s.collected) {
        builder.add_not_collected(server, &mut emit);
    }
    let report = builder.finish();
    (report, sections.into_values().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::default_weights;
    use chrono::TimeZone;

    /// The builder as it was before it became incremental: every report and line the
    /// incremental builder makes must equal this one's.
    mod reference {
        #![allow(dead_code, clippy::type_complexity)]
        use crate::points::lookup;
        use crate::report::*;
        use std::collections::BTreeMap;
        /// One charged line: a server's usage for one consumer, workload type, platform and weight.
        #[derive(Debug, Clone)]
        struct Row<'a> {
            server: &'a ServerInfo,
            /// The organization line the usage is attributed to (company, reseller or provider).
            line: &'a OrgInfo,
            /// The consumer organization itself (for usage details).
            consumer: &'a OrgInfo,
            workload_type: &'a str,
            platform: &'a str,
            weight: f64,
            used: u64,
            new: u64,
        }

        impl Row<'_> {
            fn points(&self) -> f64 {
                self.used as f64 * self.weight
            }
            fn edition(&self) -> &str {
                self.server
                    .license
                    .as_ref()
                    .map(|l| l.edition.as_str())
                    .unwrap_or("")
            }
        }

        /// Totals per workload type from rows, nested by platform and weight, in a stable order.
        fn workloads(rows: &[&Row<'_>]) -> Vec<WorkloadLicenseUsage> {
            // workload type → platform → weight bits → (used, new)
            let mut tree: BTreeMap<&str, BTreeMap<&str, BTreeMap<u64, (f64, u64, u64)>>> =
                BTreeMap::new();
            for r in rows {
                let slot = tree
                    .entry(r.workload_type)
                    .or_default()
                    .entry(r.platform)
                    .or_default()
                    .entry(r.weight.to_bits())
                    .or_insert((r.weight, 0, 0));
                slot.1 += r.used;
                slot.2 += r.new;
            }
            tree.into_iter()
                .map(|(workload_type, platforms)| {
                    let mut initial = 0;
                    let mut new = 0;
                    let mut points = 0.0;
                    let mut weights = Vec::new();
                    let by_platform = platforms
                        .into_iter()
                        .map(|(platform, buckets)| WorkloadLicenseUsageByPlatform {
                            type_id: platform.to_string(),
                            description: platform.replace('_', " "),
                            objects_by_weight: buckets
                                .into_values()
                                .map(|(weight, used, fresh)| {
                                    initial += used;
                                    new += fresh;
                                    points += used as f64 * weight;
                                    weights.push(weight);
                                    WorkloadLicenseUsageByWeight {
                                        weight,
                                        initial_count: used,
                                        reported_count: used,
                                        new_count: fresh,
                                        used_points: used as f64 * weight,
                                    }
                                })
                                .collect(),
                        })
                        .collect();
                    WorkloadLicenseUsage {
                        workload_type: workload_type.to_string(),
                        description: describe(workload_type).to_string(),
                        initial_count: initial,
                        reported_count: initial,
                        new_count: new,
                        weight: weights.iter().copied().fold(0.0, f64::max),
                        used_points: points,
                        workloads_by_platform: by_platform,
                    }
                })
                .collect()
        }

        fn summary(rows: &[&Row<'_>]) -> LicenseReportSummary {
            let mut by_product: BTreeMap<(&str, &str), Vec<&Row<'_>>> = BTreeMap::new();
            for r in rows {
                by_product
                    .entry((r.server.product.as_str(), r.edition()))
                    .or_default()
                    .push(r);
            }
            let products_usage: Vec<TotalProductLicenseUsage> = by_product
                .into_iter()
                .map(|((product, edition), rows)| {
                    let workload_usage = workloads(&rows);
                    TotalProductLicenseUsage {
                        product_type: product.to_string(),
                        total_points: workload_usage
                            .iter()
                            .map(|w| w.used_points)
                            .fold(0.0, |a, b| a + b),
                        license_edition: edition.to_string(),
                        workload_usage,
                    }
                })
                .collect();
            LicenseReportSummary {
                total_points: products_usage
                    .iter()
                    .map(|p| p.total_points)
                    .fold(0.0, |a, b| a + b),
                products_usage,
            }
        }

        fn organizations_usage(rows: &[&Row<'_>]) -> Vec<OrganizationLicenseUsage> {
            let mut lines: BTreeMap<(u8, &str, Uuid), f64> = BTreeMap::new();
            for r in rows {
                let order = match r.line.kind {
                    OrgKind::Company => 0,
                    OrgKind::Reseller => 1,
                    OrgKind::Provider => 2,
                };
                *lines
                    .entry((order, r.line.name.as_str(), r.line.uid))
                    .or_default() += r.points();
            }
            lines
                .into_iter()
                .map(|((order, name, uid), points)| OrganizationLicenseUsage {
                    organization_type: match order {
                        0 => "Company",
                        1 => "Reseller",
                        _ => "Provider",
                    }
                    .to_string(),
                    organization_name: name.to_string(),
                    organization_uid: uid,
                    used_points: points,
                })
                .collect()
        }

        fn usage_details(
            rows: &[&Row<'_>],
            excluded: &[(&OrgInfo, &ServerInfo, Exclusion)],
        ) -> Vec<OrganizationUsageOfLicensesWithSameSupportId> {
            type Key<'k> = (&'k str, Uuid, Option<String>);
            let mut groups: BTreeMap<Key<'_>, Vec<&Row<'_>>> = BTreeMap::new();
            for r in rows {
                let support = r.server.license.as_ref().and_then(|l| l.support_id.clone());
                groups
                    .entry((r.consumer.name.as_str(), r.consumer.uid, support))
                    .or_default()
                    .push(r);
            }
            let mut out: BTreeMap<Key<'_>, OrganizationUsageOfLicensesWithSameSupportId> = groups
                .into_iter()
                .map(|(key, rows)| {
                    let mut by_license: BTreeMap<(Option<String>, &str, &str), Vec<&Row<'_>>> =
                        BTreeMap::new();
                    for r in &rows {
                        let license = r
                            .server
                            .license
                            .as_ref()
                            .and_then(|l| l.license_id)
                            .map(|u| u.to_string());
                        by_license
                            .entry((license, r.server.product.as_str(), r.edition()))
                            .or_default()
                            .push(r);
                    }
                    let usage = by_license
                        .into_iter()
                        .map(|((license_id, product, edition), rows)| {
                            let workload_usage = workloads(&rows);
                            ProductLicenseUsage {
                                license_id,
                                product_type: product.to_string(),
                                license_edition: Some(edition.to_string())
                                    .filter(|e| !e.is_empty()),
                                used_points: workload_usage
                                    .iter()
                                    .map(|w| w.used_points)
                                    .fold(0.0, |a, b| a + b),
                                workload_usage,
                            }
                        })
                        .collect();
                    let entry = OrganizationUsageOfLicensesWithSameSupportId {
                        organization_name: key.0.to_string(),
                        organization_uid: key.1,
                        support_id: key.2.clone(),
                        not_collected_client_servers: Vec::new(),
                        cloned_client_servers: Vec::new(),
                        unsupported_client_servers: Vec::new(),
                        usage_by_license_and_product: usage,
                    };
                    (key, entry)
                })
                .collect();
            for (org, server, why) in excluded {
                if server.product == "CloudConnect" {
                    continue;
                }
                let support = server.license.as_ref().and_then(|l| l.support_id.clone());
                let entry = out
                    .entry((org.name.as_str(), org.uid, support.clone()))
                    .or_insert_with(|| OrganizationUsageOfLicensesWithSameSupportId {
                        organization_name: org.name.clone(),
                        organization_uid: org.uid,
                        support_id: support,
                        not_collected_client_servers: Vec::new(),
                        cloned_client_servers: Vec::new(),
                        unsupported_client_servers: Vec::new(),
                        usage_by_license_and_product: Vec::new(),
                    });
                let list = match why {
                    Exclusion::NotCollected => &mut entry.not_collected_client_servers,
                    Exclusion::Cloned => &mut entry.cloned_client_servers,
                    Exclusion::Unsupported => &mut entry.unsupported_client_servers,
                };
                if !list.contains(&server.name) {
                    list.push(server.name.clone());
                }
            }
            out.into_values().collect()
        }

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Exclusion {
            NotCollected,
            Cloned,
            Unsupported,
        }

        fn cloud_list(
            excluded: &[(&OrgInfo, &ServerInfo, Exclusion)],
            why: Exclusion,
        ) -> Vec<String> {
            let mut names: Vec<String> = excluded
                .iter()
                .filter(|(_, s, w)| *w == why && s.product == "CloudConnect")
                .map(|(_, s, _)| s.name.clone())
                .collect();
            names.sort();
            names.dedup();
            names
        }

        /// The organizations inside `owner`'s part of the tree (the owner included).
        pub fn subtree(owner: Uuid, orgs: &[OrgInfo]) -> BTreeMap<Uuid, &OrgInfo> {
            let mut inside: BTreeMap<Uuid, &OrgInfo> = orgs
                .iter()
                .filter(|o| o.uid == owner)
                .map(|o| (o.uid, o))
                .collect();
            loop {
                let before = inside.len();
                for o in orgs {
                    if o.parent.is_some_and(|p| inside.contains_key(&p)) {
                        inside.insert(o.uid, o);
                    }
                }
                if inside.len() == before {
                    return inside;
                }
            }
        }

        /// Builds one owner's report for the month.
        pub fn build(input: &ReportInput<'_>) -> SingleLicenseReport {
            build_with_lines(input).0
        }

        fn line_from_row(section: &str, licensee: &str, r: &Row<'_>) -> ReportLine {
            let license = r.server.license.as_ref();
            ReportLine {
                section: section.into(),
                licensee: licensee.into(),
                organization_type: r.consumer.kind.as_wire().into(),
                organization_name: r.consumer.name.clone(),
                organization_uid: r.consumer.uid,
                server_uid: r.server.uid,
                server_name: r.server.name.clone(),
                product_type: r.server.product.clone(),
                license_edition: r.edition().into(),
                license_id: license.and_then(|l| l.license_id),
                support_id: license.and_then(|l| l.support_id.clone()),
                workload_type: r.workload_type.into(),
                platform: r.platform.into(),
                weight: r.weight,
                initial_count: r.used,
                new_count: r.new,
                reported_count: r.used,
                used_points: r.points(),
                note: String::new(),
            }
        }

        fn excluded_line(
            licensee: &str,
            org: &OrgInfo,
            server: &ServerInfo,
            why: Exclusion,
        ) -> ReportLine {
            let license = server.license.as_ref();
            ReportLine {
                section: "Excluded".into(),
                licensee: licensee.into(),
                organization_type: org.kind.as_wire().into(),
                organization_name: org.name.clone(),
                organization_uid: org.uid,
                server_uid: server.uid,
                server_name: server.name.clone(),
                product_type: server.product.clone(),
                license_edition: license.map(|l| l.edition.clone()).unwrap_or_default(),
                license_id: license.and_then(|l| l.license_id),
                support_id: license.and_then(|l| l.support_id.clone()),
                workload_type: String::new(),
                platform: String::new(),
                weight: 0.0,
                initial_count: 0,
                new_count: 0,
                reported_count: 0,
                used_points: 0.0,
                note: match why {
                    Exclusion::NotCollected => "NotCollected",
                    Exclusion::Cloned => "Cloned",
                    Exclusion::Unsupported => "Unsupported",
                }
                .into(),
            }
        }

        /// Builds one owner's report for the month, with its flat lines.
        pub fn build_with_lines(input: &ReportInput<'_>) -> (SingleLicenseReport, Vec<ReportLine>) {
            let scope = subtree(input.owner.uid, input.organizations);
            let servers: BTreeMap<Uuid, &ServerInfo> =
                input.servers.iter().map(|s| (s.uid, s)).collect();

            // The line a consumer's usage is reported on: in the provider's report, companies of a
            // reseller roll up into that reseller's line.
            let line_of = |consumer: &OrgInfo| -> Option<&OrgInfo> {
                match (input.owner.kind, consumer.kind) {
                    (OrgKind::Provider, OrgKind::Company) => {
                        let parent = consumer.parent.and_then(|p| scope.get(&p).copied());
                        match parent {
                            Some(p) if p.kind == OrgKind::Reseller => Some(p),
                            _ => scope.get(&consumer.uid).copied(),
                        }
                    }
                    _ => scope.get(&consumer.uid).copied(),
                }
            };

            let mut main: Vec<Row<'_>> = Vec::new();
            let mut appendix: BTreeMap<&str, Vec<Row<'_>>> = BTreeMap::new();
            let mut excluded: Vec<(&OrgInfo, &ServerInfo, Exclusion)> = Vec::new();
            let mut excluded_appendix: BTreeMap<&str, Vec<(&OrgInfo, &ServerInfo, Exclusion)>> =
                BTreeMap::new();

            for u in input.usage {
                let (Some(server), Some(consumer)) = (
                    servers.get(&u.server_uid).copied(),
                    scope.get(&u.organization_uid).copied(),
                ) else {
                    continue;
                };
                let Some(line) = line_of(consumer) else {
                    continue;
                };
                let licensee = server
                    .license
                    .as_ref()
                    .map(|l| l.licensee.as_str())
                    .filter(|l| !l.is_empty());
                let in_appendix = licensee.filter(|l| *l != input.owner_licensee);
                let why = if !server.collected {
                    Some(Exclusion::NotCollected)
                } else if server.cloned {
                    Some(Exclusion::Cloned)
                } else if server.unsupported {
                    Some(Exclusion::Unsupported)
                } else {
                    None
                };
                if let Some(why) = why {
                    match in_appendix {
                        Some(l) => excluded_appendix
                            .entry(l)
                            .or_default()
                            .push((consumer, server, why)),
                        None => excluded.push((consumer, server, why)),
                    }
                    continue;
                }
                if u.used == 0 && u.new == 0 {
                    continue;
                }
                let edition = server
                    .license
                    .as_ref()
                    .map(|l| l.edition.as_str())
                    .unwrap_or("");
                let weight = lookup(input.weights, &server.product, edition, &u.workload_type)
                    .unwrap_or(0.0);
                let row = Row {
                    server,
                    line,
                    consumer,
                    workload_type: &u.workload_type,
                    platform: &u.platform,
                    weight,
                    used: u.used,
                    new: u.new,
                };
                match in_appendix {
                    Some(l) => appendix.entry(l).or_default().push(row),
                    None => main.push(row),
                }
            }
            // Servers that sent nothing for the month are listed under their owner, to be reported by
            // hand.
            for server in input.servers.iter().filter(|s| !s.collected) {
                let Some(owner) = scope.get(&server.organization_uid).copied() else {
                    continue;
                };
                if excluded
                    .iter()
                    .chain(excluded_appendix.values().flatten())
                    .any(|(_, s, _)| s.uid == server.uid)
                {
                    continue;
                }
                let licensee = server
                    .license
                    .as_ref()
                    .map(|l| l.licensee.as_str())
                    .filter(|l| !l.is_empty());
                match licensee.filter(|l| *l != input.owner_licensee) {
                    Some(l) => excluded_appendix.entry(l).or_default().push((
                        owner,
                        server,
                        Exclusion::NotCollected,
                    )),
                    None => excluded.push((owner, server, Exclusion::NotCollected)),
                }
            }

            let main_refs: Vec<&Row<'_>> = main.iter().collect();
            let mut licensees: Vec<&str> = appendix.keys().copied().collect();
            licensees.extend(excluded_appendix.keys().copied());
            licensees.sort_unstable();
            licensees.dedup();
            let appendices = licensees
                .into_iter()
                .map(|licensee| {
                    let rows: Vec<&Row<'_>> = appendix
                        .get(licensee)
                        .map(|v| v.iter().collect())
                        .unwrap_or_default();
                    let ex = excluded_appendix.get(licensee).cloned().unwrap_or_default();
                    LicenseReportAppendix {
                        license_company_name: licensee.to_string(),
                        appendix_summary: summary(&rows),
                        organizations_usage: organizations_usage(&rows),
                        not_collected_cloud_servers: cloud_list(&ex, Exclusion::NotCollected),
                        cloned_cloud_servers: cloud_list(&ex, Exclusion::Cloned),
                        unsupported_cloud_servers: cloud_list(&ex, Exclusion::Unsupported),
                        usage_details: usage_details(&rows, &ex),
                    }
                })
                .collect();

            let mut lines: Vec<ReportLine> = main
                .iter()
                .map(|r| line_from_row("Main", input.owner_licensee, r))
                .collect();
            for (licensee, rows) in &appendix {
                lines.extend(rows.iter().map(|r| line_from_row("Appendix", licensee, r)));
            }
            lines.extend(
                excluded
                    .iter()
                    .map(|(o, s, w)| excluded_line(input.owner_licensee, o, s, *w)),
            );
            for (licensee, ex) in &excluded_appendix {
                lines.extend(ex.iter().map(|(o, s, w)| excluded_line(licensee, o, s, *w)));
            }

            let report = SingleLicenseReport {
                report_status: "ApprovalRequired".into(),
                report_parameters: LicenseReportParameters {
                    report_id: input.report_id,
                    organization_name: input.owner.name.clone(),
                    organization_uid: input.owner.uid,
                    license_company_name: input.owner_licensee.to_string(),
                    generation_date: input.generated_at,
                    report_interval: LicenseReportInterval {
                        start_of_interval: input.interval_start,
                        end_of_interval: input.interval_end,
                    },
                },
                report_summary: summary(&main_refs),
                organizations_usage: organizations_usage(&main_refs),
                not_collected_cloud_servers: cloud_list(&excluded, Exclusion::NotCollected),
                cloned_cloud_servers: cloud_list(&excluded, Exclusion::Cloned),
                unsupported_cloud_servers: cloud_list(&excluded, Exclusion::Unsupported),
                usage_details: usage_details(&main_refs, &excluded),
                appendices,
            };
            (report, lines)
        }
    }

    fn org(name: &str, kind: OrgKind, parent: Option<Uuid>) -> OrgInfo {
        OrgInfo {
            uid: Uuid::new_v4(),
            name: name.into(),
            kind,
            parent,
        }
    }

    fn server(name: &str, product: &str, edition: &str, licensee: &str) -> ServerInfo {
        ServerInfo {
            uid: Uuid::new_v4(),
            name: name.into(),
            product: product.into(),
            organization_uid: Uuid::nil(),
            license: Some(ServerLicenseRef {
                license_id: Some(Uuid::new_v4()),
                support_id: Some("0123456".into()),
                edition: edition.into(),
                licensee: licensee.into(),
            }),
            collected: true,
            cloned: false,
            unsupported: false,
        }
    }

    fn usage(s: &ServerInfo, o: &OrgInfo, wt: &str, used: u64, new: u64) -> UsageMax {
        UsageMax {
            server_uid: s.uid,
            organization_uid: o.uid,
            workload_type: wt.into(),
            platform: "vSphere".into(),
            used,
            new,
        }
    }

    struct Fleet {
        orgs: Vec<OrgInfo>,
        servers: Vec<ServerInfo>,
        usage: Vec<UsageMax>,
    }

    /// Provider P, reseller R with company RC, direct company C, and a company with its own
    /// contract (appendix).
    fn fleet() -> Fleet {
        let p = org("Provider", OrgKind::Provider, None);
        let r = org("Reseller", OrgKind::Reseller, Some(p.uid));
        let rc = org("Reseller Co", OrgKind::Company, Some(r.uid));
        let c = org("Direct Co", OrgKind::Company, Some(p.uid));
        let own = org("Own Contract Co", OrgKind::Company, Some(p.uid));
        let site = server("cc-1", "CloudConnect", "", "Provider Licensee");
        let vbr_c = server(
            "vbr-c",
            "BackupAndReplication",
            "Enterprise Plus",
            "Provider Licensee",
        );
        let vbr_rc = server(
            "vbr-rc",
            "BackupAndReplication",
            "Standard",
            "Provider Licensee",
        );
        let vbr_own = server(
            "vbr-own",
            "BackupAndReplication",
            "Enterprise",
            "Own Contract Co",
        );
        let m365 = server("m365", "VB365", "", "Provider Licensee");
        let mut lost = server(
            "vbr-lost",
            "BackupAndReplication",
            "Standard",
            "Provider Licensee",
        );
        lost.collected = false;
        let mut silent = server(
            "vbr-silent",
            "BackupAndReplication",
            "Standard",
            "Provider Licensee",
        );
        silent.collected = false;
        silent.organization_uid = c.uid;
        let usage = vec![
            usage(&site, &c, "CC_VM_Backup", 10, 2),
            usage(&site, &rc, "CC_VM_Replica", 3, 0),
            usage(&vbr_c, &c, "VBR_VM", 7, 1),
            usage(&vbr_rc, &rc, "VBR_VM", 4, 0),
            usage(&vbr_own, &own, "VBR_VM", 20, 0),
            usage(&m365, &c, "VB365_User", 9, 0),
            usage(&m365, &p, "VB365_User", 0, 0),
            usage(&lost, &c, "VBR_VM", 50, 0),
        ];
        Fleet {
            orgs: vec![p, r, rc, c, own],
            servers: vec![site, vbr_c, vbr_rc, vbr_own, m365, lost, silent],
            usage,
        }
    }

    fn report(f: &Fleet, owner: usize, licensee: &str) -> SingleLicenseReport {
        let weights = default_weights();
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        build(&ReportInput {
            report_id: 1,
            owner: &f.orgs[owner],
            owner_licensee: licensee,
            interval_start: Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(),
            interval_end: Utc.with_ymd_and_hms(2026, 10, 31, 23, 59, 59).unwrap(),
            generated_at: t,
            organizations: &f.orgs,
            servers: &f.servers,
            usage: &f.usage,
            weights: &weights,
        })
    }

    #[test]
    fn points_are_counts_times_weights_and_new_workloads_are_free() {
        let f = fleet();
        let r = report(&f, 0, "Provider Licensee");
        // CC backup 10×5 + replica 3×10 + VBR Enterprise Plus 7×11 + Standard 4×5 + M365 9×1.5
        assert_eq!(
            r.report_summary.total_points,
            50.0 + 30.0 + 77.0 + 20.0 + 13.5
        );
        let cc = r
            .report_summary
            .products_usage
            .iter()
            .find(|p| p.product_type == "CloudConnect")
            .unwrap();
        let backup = cc
            .workload_usage
            .iter()
            .find(|w| w.workload_type == "CC_VM_Backup")
            .unwrap();
        assert_eq!(
            (backup.initial_count, backup.new_count, backup.used_points),
            (10, 2, 50.0)
        );
    }

    #[test]
    fn totals_by_product_and_by_organization_agree() {
        let f = fleet();
        for (owner, licensee) in [(0, "Provider Licensee"), (1, "Provider Licensee")] {
            let r = report(&f, owner, licensee);
            let by_org: f64 = r
                .organizations_usage
                .iter()
                .map(|o| o.used_points)
                .fold(0.0, |a, b| a + b);
            let by_product: f64 = r
                .report_summary
                .products_usage
                .iter()
                .map(|p| p.total_points)
                .fold(0.0, |a, b| a + b);
            assert!((by_org - r.report_summary.total_points).abs() < 1e-9);
            assert!((by_product - r.report_summary.total_points).abs() < 1e-9);
            let by_detail: f64 = r
                .usage_details
                .iter()
                .flat_map(|d| &d.usage_by_license_and_product)
                .map(|u| u.used_points)
                .fold(0.0, |a, b| a + b);
            assert!((by_detail - r.report_summary.total_points).abs() < 1e-9);
        }
    }

    #[test]
    fn resellers_roll_up_in_the_provider_report_and_own_their_report() {
        let f = fleet();
        let provider = report(&f, 0, "Provider Licensee");
        let reseller_line = provider
            .organizations_usage
            .iter()
            .find(|o| o.organization_type == "Reseller")
            .unwrap();
        assert_eq!(reseller_line.organization_uid, f.orgs[1].uid);
        assert_eq!(reseller_line.used_points, 30.0 + 20.0);
        assert!(provider
            .organizations_usage
            .iter()
            .all(|o| o.organization_uid != f.orgs[2].uid));

        let reseller = report(&f, 1, "Provider Licensee");
        assert_eq!(reseller.report_summary.total_points, 50.0);
        assert_eq!(reseller.organizations_usage.len(), 1);
        assert_eq!(
            reseller.organizations_usage[0].organization_uid,
            f.orgs[2].uid
        );
    }

    #[test]
    fn other_licensees_go_to_appendices_and_lost_servers_are_listed_not_counted() {
        let f = fleet();
        let r = report(&f, 0, "Provider Licensee");
        assert_eq!(r.appendices.len(), 1);
        assert_eq!(r.appendices[0].license_company_name, "Own Contract Co");
        assert_eq!(r.appendices[0].appendix_summary.total_points, 20.0 * 9.0);
        let lost: Vec<&String> = r
            .usage_details
            .iter()
            .flat_map(|d| &d.not_collected_client_servers)
            .collect();
        assert_eq!(lost, vec!["vbr-lost", "vbr-silent"]);
        // Zero usage leaves the provider's own line out.
        assert!(r
            .organizations_usage
            .iter()
            .all(|o| o.organization_type != "Provider"));
    }

    #[test]
    fn one_license_on_several_servers_is_summed() {
        let mut f = fleet();
        let shared = f.servers[1].license.clone();
        f.servers[2].license = shared.clone();
        f.servers[2].license.as_mut().unwrap().edition = "Enterprise Plus".into();
        let r = report(&f, 0, "Provider Licensee");
        let lines: Vec<&ProductLicenseUsage> = r
            .usage_details
            .iter()
            .flat_map(|d| &d.usage_by_license_and_product)
            .filter(|u| u.license_id == shared.as_ref().unwrap().license_id.map(|x| x.to_string()))
            .collect();
        // Two consumers (Direct Co and Reseller Co) each have a detail line for the license.
        assert_eq!(
            lines.iter().map(|l| l.used_points).fold(0.0, |a, b| a + b),
            7.0 * 11.0 + 4.0 * 11.0
        );
    }

    #[test]
    fn lines_add_up_to_the_report() {
        let f = fleet();
        let weights = default_weights();
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let (r, lines) = build_with_lines(&ReportInput {
            report_id: 1,
            owner: &f.orgs[0],
            owner_licensee: "Provider Licensee",
            interval_start: t,
            interval_end: t,
            generated_at: t,
            organizations: &f.orgs,
            servers: &f.servers,
            usage: &f.usage,
            weights: &weights,
        });
        let main: f64 = lines
            .iter()
            .filter(|l| l.section == "Main")
            .map(|l| l.used_points)
            .fold(0.0, |a, b| a + b);
        assert_eq!(main, r.report_summary.total_points);
        let appendix: f64 = lines
            .iter()
            .filter(|l| l.section == "Appendix")
            .map(|l| l.used_points)
            .fold(0.0, |a, b| a + b);
        assert_eq!(appendix, r.appendices[0].appendix_summary.total_points);
        assert_eq!(lines.iter().filter(|l| l.section == "Excluded").count(), 2);
    }

    /// A small deterministic generator, so a failing case can be replayed from its seed.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
        fn uuid(&mut self) -> Uuid {
            Uuid::from_u64_pair(
                self.next() << 31 ^ self.next(),
                self.next() << 31 ^ self.next(),
            )
        }
    }

    fn random_fleet(rng: &mut Lcg) -> Fleet {
        let mut orgs = vec![OrgInfo {
            uid: rng.uuid(),
            name: "Provider".into(),
            kind: OrgKind::Provider,
            parent: None,
        }];
        for i in 0..rng.below(4) {
            orgs.push(OrgInfo {
                uid: rng.uuid(),
                name: format!("Reseller {i}"),
                kind: OrgKind::Reseller,
                parent: Some(orgs[0].uid),
            });
        }
        let resellers = orgs.len();
        for i in 0..1 + rng.below(8) {
            let parent = orgs[rng.below(resellers)].uid;
            // Some names repeat, so organizations are told apart by uid.
            orgs.push(OrgInfo {
                uid: rng.uuid(),
                name: format!("Company {}", i % 5),
                kind: OrgKind::Company,
                parent: Some(parent),
            });
        }
        // An organization outside the tree.
        orgs.push(OrgInfo {
            uid: rng.uuid(),
            name: "Stray".into(),
            kind: OrgKind::Company,
            parent: Some(rng.uuid()),
        });
        let products = [
            "CloudConnect",
            "BackupAndReplication",
            "VB365",
            "VONE",
            "VSPC",
        ];
        let editions = ["", "Standard", "Enterprise Plus", "Enterprise"];
        let licensees = ["Provider Licensee", "Own Contract Co", "Other Co", ""];
        let shared = rng.uuid();
        let servers: Vec<ServerInfo> = (0..1 + rng.below(12))
            .map(|i| ServerInfo {
                uid: rng.uuid(),
                name: format!("server-{}", i % 7),
                product: products[rng.below(products.len())].into(),
                organization_uid: orgs[rng.below(orgs.len())].uid,
                license: (!rng.chance(20)).then(|| ServerLicenseRef {
                    license_id: if rng.chance(30) {
                        Some(shared)
                    } else {
                        (!rng.chance(10)).then(|| rng.uuid())
                    },
                    support_id: (!rng.chance(30)).then(|| format!("{:07}", rng.below(3))),
                    edition: editions[rng.below(editions.len())].into(),
                    licensee: licensees[rng.below(licensees.len())].into(),
                }),
                collected: !rng.chance(20),
                cloned: rng.chance(10),
                unsupported: rng.chance(10),
            })
            .collect();
        let workloads = [
            "VBR_VM",
            "CC_VM_Backup",
            "VB365_User",
            "VBR_Server_Agent",
            "Made_Up",
        ];
        let platforms = ["vSphere", "Hyper_V", "Windows"];
        let mut usage = Vec::new();
        for _ in 0..rng.below(40) {
            let server = if rng.chance(5) {
                rng.uuid()
            } else {
                servers[rng.below(servers.len())].uid
            };
            usage.push(UsageMax {
                server_uid: server,
                organization_uid: orgs[rng.below(orgs.len())].uid,
                workload_type: workloads[rng.below(workloads.len())].into(),
                platform: platforms[rng.below(platforms.len())].into(),
                used: if rng.chance(10) {
                    0
                } else {
                    rng.below(500) as u64
                },
                new: if rng.chance(50) {
                    0
                } else {
                    rng.below(20) as u64
                },
            });
        }
        Fleet {
            orgs,
            servers,
            usage,
        }
    }

    #[test]
    fn random_fleets_build_as_before_and_their_totals_agree() {
        let mut weights = default_weights();
        // A fractional weight, so the order points are added in matters.
        weights.push(Weight {
            product: "VB365".into(),
            edition: "".into(),
            workload_type: "Made_Up".into(),
            weight: 0.1,
        });
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        for seed in 0..400u64 {
            let mut rng = Lcg(seed);
            let f = random_fleet(&mut rng);
            let owners: Vec<&OrgInfo> = f
                .orgs
                .iter()
                .filter(|o| matches!(o.kind, OrgKind::Provider | OrgKind::Reseller))
                .collect();
            for owner in owners {
                for licensee in ["Provider Licensee", "Own Contract Co"] {
                    let input = ReportInput {
                        report_id: 7,
                        owner,
                        owner_licensee: licensee,
                        interval_start: t,
                        interval_end: t,
                        generated_at: t,
                        organizations: &f.orgs,
                        servers: &f.servers,
                        usage: &f.usage,
                        weights: &weights,
                    };
                    let (report, lines) = build_with_lines(&input);
                    let (expected, expected_lines) = reference::build_with_lines(&input);
                    assert_eq!(report, expected, "seed {seed}");
                    assert_eq!(lines, expected_lines, "seed {seed}");

                    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
                    let total = report.report_summary.total_points;
                    let sum = |section: &str, licensee: Option<&str>| {
                        lines
                            .iter()
                            .filter(|l| l.section == section)
                            .filter(|l| licensee.is_none_or(|x| l.licensee == x))
                            .map(|l| l.used_points)
                            .fold(0.0, |a, b| a + b)
                    };
                    let by_org = report
                        .organizations_usage
                        .iter()
                        .map(|o| o.used_points)
                        .fold(0.0, |a, b| a + b);
                    let by_detail = report
                        .usage_details
                        .iter()
                        .flat_map(|d| &d.usage_by_license_and_product)
                        .map(|u| u.used_points)
                        .fold(0.0, |a, b| a + b);
                    assert!(close(total, by_org), "seed {seed}");
                    assert!(close(total, by_detail), "seed {seed}");
                    assert!(close(total, sum("Main", None)), "seed {seed}");
                    for a in &report.appendices {
                        assert!(
                            close(
                                a.appendix_summary.total_points,
                                sum("Appendix", Some(&a.license_company_name))
                            ),
                            "seed {seed}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn csv_fields_of_a_line_are_quoted_and_numbers_invariant() {
        let mut out = Vec::new();
        csv_field(&mut out, "say \"hi\", twice");
        out.push(b'|');
        csv_field(&mut out, " padded");
        out.push(b'|');
        csv_field(&mut out, "");
        out.push(b'|');
        csv_number(&mut out, 55.0);
        out.push(b'|');
        csv_number(&mut out, 13.5);
        out.push(b'|');
        csv_number(&mut out, -2.0);
        out.push(b'|');
        csv_integer(&mut out, 0);
        out.push(b'|');
        csv_integer(&mut out, u64::MAX);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"say \"\"hi\"\", twice\"|\" padded\"||55|13.5|-2|0|18446744073709551615"
        );
    }

    #[test]
    fn report_serializes_with_contract_names() {
        let f = fleet();
        let v = serde_json::to_value(report(&f, 0, "Provider Licensee")).unwrap();
        assert_eq!(v["reportStatus"], "ApprovalRequired");
        assert_eq!(
            v["reportParameters"]["generationDate"],
            "2026-11-01T00:00:00.0000000+00:00"
        );
        assert!(
            v["reportSummary"]["productsUsage"][0]["workloadUsage"][0]["workloadsByPlatform"][0]
                ["objectsByWeight"]
                .is_array()
        );
    }
}
