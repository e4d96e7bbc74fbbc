//! This month's live license usage: organization → server → workload type → platform, from the
//! latest usage sample of each, with the points weight of every workload. Used for chargeback
//! between monthly reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tallyman_domain::points::lookup;
use tallyman_domain::{Month, UnitType};
use tallyman_store::{ManagedServer, Organization, OrganizationType, TargetKind};
use uuid::Uuid;

use crate::document::SlotDocument;
use crate::document::CONSOLE_TARGET;
use crate::error::{AppError, AppResult};
use crate::tenancy::Scope;
use crate::App;

/// Narrows live usage; every `None` is "any".
#[derive(Debug, Default, Clone)]
pub struct UsageFilter {
    pub organization_uid: Option<Uuid>,
    /// `Company`, `Provider`, `Reseller` (or `Unknown`, which matches nothing).
    pub organization_type: Option<String>,
    /// Only organizations whose parent is this one.
    pub provider_uid: Option<Uuid>,
    pub server_uid: Option<Uuid>,
    /// A product's wire name (`BackupAndReplication`, `CloudConnect`, `VSPC`, `VONE`, `VB365`).
    pub server_type: Option<String>,
}

/// One organization's usage.
#[derive(Debug, Clone)]
pub struct OrganizationUsage {
    pub organization: Organization,
    /// The organization above it (none for the provider).
    pub provider_uid: Option<Uuid>,
    pub servers: Vec<ServerUsage>,
}

/// One server's usage for one organization.
#[derive(Debug, Clone)]
pub struct ServerUsage {
    pub server_uid: Uuid,
    /// The product's wire name.
    pub server_type: &'static str,
    /// `Instances` for instance-counted licenses, else `Points`.
    pub unit_type: &'static str,
    pub workloads: Vec<WorkloadUsage>,
}

/// One workload type on one server.
#[derive(Debug, Clone)]
pub struct WorkloadUsage {
    pub workload_type: String,
    /// Points per workload for the server's product and edition (0 when none applies).
    pub weight: f64,
    pub platforms: Vec<PlatformUsage>,
}

#[derive(Debug, Clone)]
pub struct PlatformUsage {
    pub platform: String,
    pub used: i64,
    pub new: i64,
    pub rental: i64,
}

type Counts = (i64, i64, i64);
type Tree = BTreeMap<Uuid, BTreeMap<Uuid, BTreeMap<String, BTreeMap<String, Counts>>>>;

impl App {
    /// Usage of the current month that `scope` may see, narrowed by `filter`. An organization
    /// whose every server is filtered out is left out.
    pub async fn live_usage(
        &self,
        scope: &Scope,
        filter: &UsageFilter,
    ) -> AppResult<Vec<OrganizationUsage>> {
        let month = Month::of(self.clock.now());
        let samples = self.store.usage_latest(month.start(), month.end()).await?;
        let weights = crate::reports::weights(&self.store).await?;
        let orgs: HashMap<Uuid, Organization> = self
            .store
            .organizations()
            .await?
            .into_iter()
            .map(|o| (o.uid, o))
            .collect();
        let servers: HashMap<Uuid, ManagedServer> = self
            .store
            .servers(None)
            .await?
            .into_iter()
            .map(|s| (s.uid, s))
            .collect();
        // Edition and unit type of each target's license decide the weight.
        let mut editions: HashMap<Uuid, LicenseEdition> = HashMap::new();
        for kind in TargetKind::ALL {
            editions.extend(self.license_editions(kind).await?);
        }

        let mut tree = Tree::new();
        for s in samples {
            if !scope.contains(s.organization_uid) {
                continue;
            }
            tree.entry(s.organization_uid)
                .or_default()
                .entry(s.server_uid)
                .or_default()
                .entry(s.workload_type)
                .or_default()
                .insert(s.platform, (s.used, s.new, s.rental));
        }

        let mut out = Vec::new();
        for (org_uid, by_server) in tree {
            let Some(org) = orgs.get(&org_uid) else {
                continue;
            };
            if filter.organization_uid.is_some_and(|u| u != org_uid)
                || filter
                    .organization_type
                    .as_deref()
                    .is_some_and(|t| t != org.kind.as_str())
                || filter
                    .provider_uid
                    .is_some_and(|p| org.parent_uid != Some(p))
            {
                continue;
            }
            let mut server_list = Vec::new();
            for (server_uid, workloads) in by_server {
                let kind = if server_uid == CONSOLE_TARGET {
                    TargetKind::Console
                } else {
                    match servers.get(&server_uid) {
                        Some(s) => s.kind,
                        None => continue,
                    }
                };
                let server_type = kind.product().as_wire();
                if filter.server_uid.is_some_and(|u| u != server_uid)
                    || filter
                        .server_type
                        .as_deref()
                        .is_some_and(|t| t != server_type)
                {
                    continue;
                }
                let (edition, unit_type) = editions
                    .get(&server_uid)
                    .map(|e| (e.edition.as_ref(), e.unit_type))
                    .unwrap_or(("", "Points"));
                let workloads = workloads
                    .into_iter()
                    .map(|(workload_type, platforms)| WorkloadUsage {
                        weight: lookup(&weights, server_type, edition, &workload_type)
                            .unwrap_or(0.0),
                        workload_type,
                        platforms: platforms
                            .into_iter()
                            .map(|(platform, (used, new, rental))| PlatformUsage {
                                platform,
                                used,
                                new,
                                rental,
                            })
                            .collect(),
                    })
                    .collect();
                server_list.push(ServerUsage {
                    server_uid,
                    server_type,
                    unit_type,
                    workloads,
                });
            }
            if server_list.is_empty() {
                continue;
            }
            out.push(OrganizationUsage {
                provider_uid: if org.kind == OrganizationType::Provider {
                    None
                } else {
                    org.parent_uid
                },
                organization: org.clone(),
                servers: server_list,
            });
        }
        Ok(out)
    }
}

/// What live usage needs of a target's license: its edition and unit type.
#[derive(Debug, Clone)]
pub struct LicenseEdition {
    pub edition: Arc<str>,
    /// `Instances` for instance-counted licenses, else `Points`.
    pub unit_type: &'static str,
}

impl LicenseEdition {
    fn of(doc: &SlotDocument) -> Option<Self> {
        let f = doc.primary()?;
        Some(Self {
            edition: f.claims.edition.as_str().into(),
            unit_type: match f.claims.unit_type {
                Some(UnitType::Instances) => UnitType::Instances.as_wire(),
                _ => UnitType::Points.as_wire(),
            },
        })
    }
}

/// [`LicenseEdition`]s by target and the slot revision they were read from: a few dozen bytes
/// a target, so a usage request parses only the documents that changed since the last one.
pub(crate) type EditionCache = RwLock<HashMap<Uuid, (i64, Option<LicenseEdition>)>>;

impl App {
    /// The edition of every licensed target of one kind.
    pub async fn license_editions(
        &self,
        kind: TargetKind,
    ) -> AppResult<HashMap<Uuid, LicenseEdition>> {
        let revisions = self.store.license_slot_revisions(kind).await?;
        let mut out = HashMap::with_capacity(revisions.len());
        let mut missing = Vec::new();
        {
            let cache = self.edition_cache.read().map_err(AppError::internal)?;
            for (uid, revision, _) in &revisions {
                match cache.get(uid) {
                    Some((r, edition)) if r == revision => {
                        if let Some(e) = edition {
                            out.insert(*uid, e.clone());
                        }
                    }
                    _ => missing.push(*uid),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let slots = self.store.license_slots_by_uid(&missing).await?;
        let mut cache = self.edition_cache.write().map_err(AppError::internal)?;
        for slot in slots {
            let (uid, revision) = (slot.target_uid, slot.revision);
            let edition = LicenseEdition::of(&SlotDocument::from_text(&slot)?);
            if let Some(e) = &edition {
                out.insert(uid, e.clone());
            }
            cache.insert(uid, (revision, edition));
        }
        Ok(out)
    }
}
