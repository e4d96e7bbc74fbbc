//! A licensed target as the operations see it ([`Target`]: the server, its stored license
//! document and the status computed from them), and the one loader every caller goes through:
//! a single target in a caller's scope, a target for a known server, or every target of a kind.
//! Parsed documents are cached per slot revision, so a read parses each stored revision once.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use tallyman_domain::license::LicenseTerms;
use tallyman_domain::product::Product;
use tallyman_domain::status::{evaluate, Evaluation, ServerState};
use tallyman_store::{LicenseSlot, LicenseSlotText, ManagedServer, TargetKind};
use uuid::Uuid;

use crate::document::{ServerReport, SlotDocument, CONSOLE_TARGET};
use crate::error::{AppError, AppResult};
use crate::tenancy::Scope;
use crate::App;

/// A target as a request sees it: the server (absent for the console), what is installed and
/// the computed status.
#[derive(Clone)]
pub struct Target {
    pub kind: TargetKind,
    pub uid: Uuid,
    pub server: Option<ManagedServer>,
    /// The revision of the license slot as read (it guards the next write); `None` when
    /// nothing was ever installed.
    pub revision: Option<i64>,
    pub doc: Arc<SlotDocument>,
    /// `terms()` computed once per request.
    terms: OnceLock<Option<LicenseTerms>>,
    /// `evaluate()` for the instant it was first asked for (one instant per request).
    evaluation: OnceLock<(DateTime<Utc>, Evaluation)>,
}

impl Target {
    pub fn new(
        kind: TargetKind,
        uid: Uuid,
        server: Option<ManagedServer>,
        revision: Option<i64>,
        doc: Arc<SlotDocument>,
    ) -> Self {
        Target {
            kind,
            uid,
            server,
            revision,
            doc,
            terms: OnceLock::new(),
            evaluation: OnceLock::new(),
        }
    }

    pub fn product(&self) -> Product {
        self.kind.product()
    }

    /// The organization that owns the target; the provider's console has none.
    pub fn organization(&self) -> Option<Uuid> {
        self.server.as_ref().map(|s| s.organization_uid)
    }

    /// Current terms with the server's reported usage.
    pub fn terms(&self) -> Option<LicenseTerms> {
        self.terms.get_or_init(|| self.compute_terms()).clone()
    }

    fn compute_terms(&self) -> Option<LicenseTerms> {
        let mut terms = self.doc.terms(self.product())?;
        if let Some(server) = &self.server {
            let report = ServerReport::of(server);
            terms.used_units = report.used_units;
            terms.used_sockets = report.used_sockets;
            terms.used_capacity = report.used_capacity;
            terms.protected_users = report.protected_users;
        }
        Some(terms)
    }

    /// Status and message, computed from the stored license and the time now.
    pub fn evaluate(&self, now: DateTime<Utc>) -> Evaluation {
        if let Some((at, evaluation)) = self.evaluation.get() {
            if *at == now {
                return evaluation.clone();
            }
        }
        let evaluation = self.compute_evaluation(now);
        let _ = self.evaluation.set((now, evaluation.clone()));
        evaluation
    }

    fn compute_evaluation(&self, now: DateTime<Utc>) -> Evaluation {
        let report = self
            .server
            .as_ref()
            .map(ServerReport::of)
            .unwrap_or_default();
        let reported = self
            .server
            .as_ref()
            .is_some_and(|s| s.last_seen_at.is_some());
        let state = ServerState {
            target: self.product(),
            license_info_collected: self.revision.is_some()
                || reported
                || self.kind == TargetKind::Console,
            license_file_invalid: report.license_state.as_deref() == Some("invalid"),
            auto_update_failing: self.doc.auto_update_enabled
                && self
                    .doc
                    .last_update
                    .as_ref()
                    .is_some_and(|u| u.status == "Error"),
            usage_report_submitted_recently: false,
        };
        evaluate(self.terms().as_ref(), &state, now)
    }
}

impl Target {
    /// The next instant the computed status or message of this target can change by time alone:
    /// every time rule (day counts, warning windows, expiry, grace) moves in whole days relative
    /// to the dates the rules count from, so the next step of any of them is at most a day away.
    pub fn next_change(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let day = chrono::Duration::days(1);
        let mut next = now + day;
        let eval = self.evaluate(now);
        let anchors = self
            .terms()
            .map(|t| vec![t.expiration, t.support_expiration, eval.grace_ends_at])
            .unwrap_or_default();
        for anchor in anchors.into_iter().flatten() {
            let ms = (anchor - now)
                .num_milliseconds()
                .rem_euclid(day.num_milliseconds());
            let step = if ms == 0 {
                day
            } else {
                chrono::Duration::milliseconds(ms)
            };
            next = next.min(now + step);
        }
        next
    }
}

/// A managed server and its license slot as read from the store, before parsing.
pub struct StoredTarget {
    pub server: ManagedServer,
    pub slot: Option<LicenseSlotText>,
}

impl StoredTarget {
    pub fn parse(self) -> AppResult<Target> {
        let (revision, doc) = match &self.slot {
            Some(slot) => (Some(slot.revision), SlotDocument::from_text(slot)?),
            None => (None, SlotDocument::default()),
        };
        Ok(Target::new(
            self.server.kind,
            self.server.uid,
            Some(self.server),
            revision,
            Arc::new(doc),
        ))
    }
}

/// Targets read per query when walking a whole kind.
const TARGETS_PAGE: usize = 4_096;

/// Parsed documents kept per node at most.
const DOC_CACHE_ENTRIES: usize = 1024;

/// Parsed slot documents by target, each with the revision it was parsed from.
pub(crate) type DocCache = std::sync::RwLock<HashMap<Uuid, (i64, Arc<SlotDocument>)>>;

impl App {
    /// The target `uid` of `kind` if `scope` may see it; anything else is "not found", so a
    /// caller cannot tell another tenant's server from one that does not exist.
    pub async fn target(&self, kind: TargetKind, uid: Uuid, scope: &Scope) -> AppResult<Target> {
        let not_found = || {
            AppError::NotFound(format!(
                "{} {uid} was not found.",
                kind.product().display_name()
            ))
        };
        if kind == TargetKind::Console {
            if uid != CONSOLE_TARGET {
                return Err(not_found());
            }
            return self.console_target().await;
        }
        let server = self
            .store
            .server(uid)
            .await?
            .filter(|s| s.kind == kind && scope.contains(s.organization_uid))
            .ok_or_else(not_found)?;
        self.target_of(server).await
    }

    /// The console's own license target.
    pub async fn console_target(&self) -> AppResult<Target> {
        let slot = self.store.license_slot(CONSOLE_TARGET).await?;
        let doc = self.cached_doc(slot.as_ref())?;
        Ok(Target::new(
            TargetKind::Console,
            CONSOLE_TARGET,
            None,
            slot.map(|s| s.revision),
            doc,
        ))
    }

    /// The target of a server already in hand (an agent's own server, a job's pick).
    pub async fn target_of(&self, server: ManagedServer) -> AppResult<Target> {
        let slot = self.store.license_slot(server.uid).await?;
        let doc = self.cached_doc(slot.as_ref())?;
        Ok(Target::new(
            server.kind,
            server.uid,
            Some(server),
            slot.map(|s| s.revision),
            doc,
        ))
    }

    /// The same target read again from the store (after another write may have landed).
    pub async fn refresh(&self, target: &Target) -> AppResult<Target> {
        match target.kind {
            TargetKind::Console => self.console_target().await,
            _ => match self.store.server(target.uid).await? {
                Some(server) => self.target_of(server).await,
                None => Err(AppError::NotFound(format!(
                    "{} {} was not found.",
                    target.product().display_name(),
                    target.uid
                ))),
            },
        }
    }

    /// Every target of one kind, whoever owns it, in the store's order of servers.
    pub async fn targets(&self, kind: TargetKind) -> AppResult<Vec<Target>> {
        if kind == TargetKind::Console {
            return Ok(vec![self.console_target().await?]);
        }
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.read_targets_page(kind, after, TARGETS_PAGE).await?;
            let last_page = page.len() < TARGETS_PAGE;
            after = page.last().map(|t| t.server.uid);
            for stored in page {
                out.push(stored.parse()?);
            }
            if last_page {
                return Ok(out);
            }
        }
    }

    /// The targets of `kind` among `uids` (others and unknown uids are skipped), read in two
    /// queries however many there are. Their documents are parsed, not cached.
    pub async fn targets_among(&self, kind: TargetKind, uids: &[Uuid]) -> AppResult<Vec<Target>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let servers: Vec<ManagedServer> = self
            .store
            .servers_by_uid(uids)
            .await?
            .into_iter()
            .filter(|s| s.kind == kind)
            .collect();
        self.read_targets(servers)
            .await?
            .into_iter()
            .map(StoredTarget::parse)
            .collect()
    }

    /// Up to `limit` targets of `kind` after `after` in uid order, read in one query and not
    /// yet parsed: a page for walking a whole fleet a slice at a time.
    pub async fn read_targets_page(
        &self,
        kind: TargetKind,
        after: Option<Uuid>,
        limit: usize,
    ) -> AppResult<Vec<StoredTarget>> {
        Ok(self
            .store
            .targets_page(kind, after, limit)
            .await?
            .into_iter()
            .map(|(server, slot)| StoredTarget { server, slot })
            .collect())
    }

    /// The servers with their license slots as stored, read in one query and not yet parsed,
    /// so a caller can parse them where it likes (bulk loads parse on every core).
    pub async fn read_targets(&self, servers: Vec<ManagedServer>) -> AppResult<Vec<StoredTarget>> {
        let wanted: Vec<Uuid> = servers.iter().map(|s| s.uid).collect();
        let mut slots: HashMap<Uuid, LicenseSlotText> = self
            .store
            .license_slots_by_uid(&wanted)
            .await?
            .into_iter()
            .map(|s| (s.target_uid, s))
            .collect();
        Ok(servers
            .into_iter()
            .map(|server| StoredTarget {
                slot: slots.remove(&server.uid),
                server,
            })
            .collect())
    }

    /// The parsed document of a slot, from the per-node cache when the revision matches.
    /// Documents are immutable per revision, so a cached parse is always the stored one; the
    /// revision itself is always read from the database, so every node sees every write.
    pub fn cached_doc(&self, slot: Option<&LicenseSlot>) -> AppResult<Arc<SlotDocument>> {
        let Some(slot) = slot else {
            return Ok(Arc::new(SlotDocument::default()));
        };
        if let Some(doc) = self.cached(slot.target_uid, slot.revision) {
            return Ok(doc);
        }
        let doc = Arc::new(SlotDocument::from_slot(Some(slot))?);
        self.remember(slot.target_uid, slot.revision, doc.clone());
        Ok(doc)
    }

    fn cached(&self, uid: Uuid, revision: i64) -> Option<Arc<SlotDocument>> {
        let cache = self.doc_cache.read().ok()?;
        cache
            .get(&uid)
            .filter(|(r, _)| *r == revision)
            .map(|(_, d)| d.clone())
    }

    /// Keeps a parsed document for the next read of the same revision. The cache holds the
    /// targets read one at a time (the working set of single reads, writes and agents), never
    /// whole fleets, and is bounded.
    pub(crate) fn remember(&self, uid: Uuid, revision: i64, doc: Arc<SlotDocument>) {
        if let Ok(mut cache) = self.doc_cache.write() {
            if cache.len() >= DOC_CACHE_ENTRIES && !cache.contains_key(&uid) {
                if let Some(evict) = cache.keys().next().copied() {
                    cache.remove(&evict);
                }
            }
            cache.insert(uid, (revision, doc));
        }
    }
}
