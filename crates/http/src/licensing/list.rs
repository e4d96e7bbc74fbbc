//! License lists at fleet scale. Each server kind keeps a [`KindList`]: every target rendered
//! once as its resource (compact JSON text) plus a typed index of the resource's properties
//! (`tallyman_query::index`), so a request filters, sorts and pages over columns and only
//! copies the rows of its page into the response.
//!
//! The list stays current on every node without rebuilding:
//! * writes: every change to a server or license bumps the store's inventory generation and
//!   logs the targets it touched, in the same transaction. A request reads the generation (one
//!   small query); when it moved, the targets changed since are re-read and re-rendered, and
//!   only those rows are replaced in the index;
//! * time: each row knows the next instant its status or message can change by time alone
//!   (a day count, a grace boundary); rows whose instant has passed are re-rendered the same
//!   way;
//! * a full build happens only on the first request for a kind, and when the change log no
//!   longer reaches back to the list's generation (after a long time without requests) or a
//!   large share of the fleet changed at once.
//!
//! Parsed license documents are not kept: a row holds its rendered text, its organization
//! (for tenant scope) and its index entries.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tallyman_app::{App, Scope, StoredTarget, Target};
use tallyman_query::index::{Index, RowId};
use tallyman_query::{CollectionQuery, Schema};
use tallyman_store::TargetKind;
use uuid::Uuid;

use super::resources::{
    render_json, BackupServerLicense, SiteLicense, VOneServerLicense, Vb365ServerLicense,
};
use crate::error::{ApiError, ApiResult};
use crate::query::Resource;
use crate::wire::json_bytes;

/// When more targets than this changed since a list was current, it is rebuilt rather than
/// patched row by row.
const PATCH_LIMIT: usize = 20_000;

/// Targets read, parsed and rendered together while a list is built.
const REBUILD_SLICE: usize = 4_096;

/// The lists of every server kind.
pub struct Lists {
    kinds: HashMap<TargetKind, KindList>,
}

impl Default for Lists {
    fn default() -> Self {
        let generations = Arc::new(GenerationReads::default());
        Self {
            kinds: TargetKind::SERVERS
                .into_iter()
                .map(|kind| (kind, KindList::new(kind, generations.clone())))
                .collect(),
        }
    }
}

/// Reads of the store's inventory generation, shared by concurrent requests without weakening
/// what each sees: a request only uses a read that began after it arrived (so every write
/// committed before the request is visible to it), and the requests that arrive while one read
/// is in flight all share the next.
#[derive(Default)]
struct GenerationReads {
    /// One read at a time, in arrival order.
    turn: tokio::sync::Mutex<()>,
    /// Reads begun so far.
    begun: AtomicU64,
    /// The last finished read: (its number, the generation it saw).
    last: std::sync::Mutex<Option<(u64, i64)>>,
}

impl GenerationReads {
    async fn current(&self, app: &App) -> ApiResult<i64> {
        let arrived_after = self.begun.load(Ordering::SeqCst);
        let _turn = self.turn.lock().await;
        if let Some((read, generation)) = *self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            if read > arrived_after {
                return Ok(generation);
            }
        }
        let read = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        let generation = app.store.inventory_generation().await?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((read, generation));
        Ok(generation)
    }
}

impl Lists {
    pub fn of(&self, kind: TargetKind) -> Option<&KindList> {
        self.kinds.get(&kind)
    }

    /// Brings every list up to date (builds the ones never built).
    pub async fn warm(&self, app: &App) -> ApiResult<()> {
        for kind in TargetKind::SERVERS {
            if let Some(list) = self.kinds.get(&kind) {
                list.ensure_current(app).await?;
            }
        }
        Ok(())
    }
}

/// The rendered, indexed list of one kind.
pub struct KindList {
    kind: TargetKind,
    generations: Arc<GenerationReads>,
    view: RwLock<View>,
    /// One refresh at a time; requests that waited find the list current.
    refresh: tokio::sync::Mutex<()>,
}

struct Row {
    uid: Uuid,
    organization: Uuid,
    json: Box<str>,
    valid_until: DateTime<Utc>,
}

struct View {
    /// The inventory generation the rows reflect; `None` until first built.
    generation: Option<i64>,
    index: Index,
    rows: Vec<Option<Row>>,
    by_uid: HashMap<Uuid, RowId>,
    free: Vec<RowId>,
    /// (valid until, row), earliest first.
    expiries: BTreeSet<(DateTime<Utc>, RowId)>,
}

fn schema_of(kind: TargetKind) -> &'static Schema {
    match kind {
        TargetKind::CloudConnectSite => SiteLicense::schema(),
        TargetKind::BackupServer => BackupServerLicense::schema(),
        TargetKind::VOneServer => VOneServerLicense::schema(),
        TargetKind::Vb365Server | TargetKind::Console => Vb365ServerLicense::schema(),
    }
}

/// A target rendered for the list: its resource as a JSON tree (for the index) and as text.
struct Rendered {
    uid: Uuid,
    organization: Uuid,
    doc: Value,
    json: String,
    valid_until: DateTime<Utc>,
}

/// Parses and renders stored targets on every core (a whole fleet is CPU work).
fn render_all(stored: Vec<StoredTarget>, now: DateTime<Utc>) -> ApiResult<Vec<Rendered>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = stored.len().div_ceil(threads).max(1);
    let mut parts: Vec<Vec<StoredTarget>> = Vec::new();
    let mut stored = stored.into_iter().peekable();
    while stored.peek().is_some() {
        parts.push(stored.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    part.into_iter()
                        .map(|s| s.parse().map(|t| render(&t, now)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::new();
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| ApiError::internal("rendering a license list panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

fn render(target: &Target, now: DateTime<Utc>) -> Rendered {
    // Rows whose rendering does not depend on time are still refreshed about twice a day,
    // spread over the fleet so they never all come due at once.
    let spread = (target.uid.as_u128() % 43_200) as i64;
    let cap = now + Duration::hours(12) + Duration::seconds(spread);
    let doc = render_json(target, now);
    // Serializing a JSON tree cannot fail (its keys are strings).
    let json = serde_json::to_string(&doc).unwrap_or_default();
    Rendered {
        uid: target.uid,
        organization: target.organization().unwrap_or_default(),
        doc,
        json,
        valid_until: target.next_change(now).min(cap),
    }
}

impl View {
    fn new(kind: TargetKind) -> Self {
        Self {
            generation: None,
            index: Index::new(schema_of(kind)),
            rows: Vec::new(),
            by_uid: HashMap::new(),
            free: Vec::new(),
            expiries: BTreeSet::new(),
        }
    }

    fn current(&self, generation: i64, now: DateTime<Utc>) -> bool {
        self.generation == Some(generation) && self.expiries.first().is_none_or(|(at, _)| now < *at)
    }

    fn expired(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        self.expiries
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter_map(|(_, row)| self.row(*row).map(|r| r.uid))
            .collect()
    }

    fn row(&self, row: RowId) -> Option<&Row> {
        self.rows.get(row as usize).and_then(Option::as_ref)
    }

    fn put(&mut self, r: Rendered) -> ApiResult<()> {
        let row = match self.by_uid.get(&r.uid) {
            Some(&row) => {
                if let Some(old) = self.row(row) {
                    let key = (old.valid_until, row);
                    self.expiries.remove(&key);
                }
                row
            }
            None => match self.free.pop() {
                Some(row) => row,
                None => RowId::try_from(self.rows.len())
                    .map_err(|_| ApiError::internal("too many targets for one list"))?,
            },
        };
        self.index.upsert(row, r.uid.as_u128(), &r.doc);
        if self.rows.len() <= row as usize {
            self.rows.resize_with(row as usize + 1, || None);
        }
        self.rows[row as usize] = Some(Row {
            uid: r.uid,
            organization: r.organization,
            // Copied here rather than moved: the rendering thread's allocations are all freed
            // when the slice is done, so long-lived rows never pin a worker's memory.
            json: Box::from(r.json.as_str()),
            valid_until: r.valid_until,
        });
        self.expiries.insert((r.valid_until, row));
        self.by_uid.insert(r.uid, row);
        Ok(())
    }

    fn remove(&mut self, uid: Uuid) {
        if let Some(row) = self.by_uid.remove(&uid) {
            if let Some(old) = self.rows.get_mut(row as usize).and_then(Option::take) {
                self.expiries.remove(&(old.valid_until, row));
            }
            self.index.remove(row);
            self.free.push(row);
        }
    }
}

impl KindList {
    fn new(kind: TargetKind, generations: Arc<GenerationReads>) -> Self {
        Self {
            kind,
            generations,
            view: RwLock::new(View::new(kind)),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> ApiResult<std::sync::RwLockReadGuard<'_, View>> {
        self.view
            .read()
            .map_err(|_| ApiError::internal("a license list lock was poisoned"))
    }

    /// Brings the list up to the store's current generation and the current time.
    async fn ensure_current(&self, app: &App) -> ApiResult<()> {
        let generation = self.generations.current(app).await?;
        if self.read()?.current(generation, app.clock.now()) {
            return Ok(());
        }
        let _refreshing = self.refresh.lock().await;
        let now = app.clock.now();
        let (built_at, stale) = {
            let view = self.read()?;
            if view.current(generation, now) {
                return Ok(());
            }
            (view.generation, view.expired(now))
        };
        let Some(built_at) = built_at else {
            return self.rebuild(app).await;
        };
        let changes = app.store.inventory_changes(built_at).await?;
        let Some(changed) = changes.targets else {
            return self.rebuild(app).await;
        };
        let mut uids: Vec<Uuid> = changed;
        uids.extend(stale);
        uids.sort_unstable();
        uids.dedup();
        if uids.len() > PATCH_LIMIT {
            return self.rebuild(app).await;
        }
        let rendered = self.load(app, &uids, now).await?;
        let found: HashSet<Uuid> = rendered.iter().map(|r| r.uid).collect();
        let mut view = self
            .view
            .write()
            .map_err(|_| ApiError::internal("a license list lock was poisoned"))?;
        for r in rendered {
            view.put(r)?;
        }
        for uid in uids.iter().filter(|u| !found.contains(u)) {
            view.remove(*uid);
        }
        view.generation = Some(changes.generation);
        Ok(())
    }

    /// The targets among `uids` that are of this list's kind, rendered at `now`.
    async fn load(&self, app: &App, uids: &[Uuid], now: DateTime<Utc>) -> ApiResult<Vec<Rendered>> {
        let targets = app.targets_among(self.kind, uids).await?;
        Ok(targets.iter().map(|t| render(t, now)).collect())
    }

    /// Renders every target of the kind into a new view and swaps it in. Targets are read,
    /// parsed and rendered a slice at a time, so a whole fleet's documents are never in
    /// memory together.
    async fn rebuild(&self, app: &App) -> ApiResult<()> {
        let started = std::time::Instant::now();
        let generation = app.store.inventory_generation().await?;
        let now = app.clock.now();
        let (mut loading, mut rendering, mut indexing) = (
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
        );
        let mut view = View::new(self.kind);
        // A pipeline over keyset pages of the fleet: while one page is parsed and rendered on
        // the blocking pool, the next is read from the store and the previous one goes into
        // the index.
        let mut after = None;
        let mut more = true;
        let mut in_flight: Option<tokio::task::JoinHandle<ApiResult<Vec<Rendered>>>> = None;
        loop {
            let next = if more {
                let t = std::time::Instant::now();
                let page = app
                    .read_targets_page(self.kind, after, REBUILD_SLICE)
                    .await?;
                loading += t.elapsed();
                more = page.len() == REBUILD_SLICE;
                after = page.last().map(|t| t.server.uid);
                (!page.is_empty())
                    .then(|| tokio::task::spawn_blocking(move || render_all(page, now)))
            } else {
                None
            };
            if let Some(job) = in_flight.take() {
                let t = std::time::Instant::now();
                let rendered = job.await.map_err(ApiError::internal)??;
                rendering += t.elapsed();
                let t = std::time::Instant::now();
                for r in rendered {
                    view.put(r)?;
                }
                indexing += t.elapsed();
            }
            match next {
                Some(job) => in_flight = Some(job),
                None => break,
            }
        }
        tracing::info!(
            kind = self.kind.as_str(),
            rows = view.by_uid.len(),
            total_ms = started.elapsed().as_millis() as u64,
            read_ms = loading.as_millis() as u64,
            render_wait_ms = rendering.as_millis() as u64,
            index_ms = indexing.as_millis() as u64,
            "built the license list"
        );
        view.generation = Some(generation);
        *self
            .view
            .write()
            .map_err(|_| ApiError::internal("a license list lock was poisoned"))? = view;
        Ok(())
    }

    /// One page of the list as `scope` sees it.
    pub async fn page(
        &self,
        app: &App,
        scope: &Scope,
        query: &CollectionQuery,
    ) -> ApiResult<Response> {
        self.ensure_current(app).await?;
        let view = self.read()?;
        let page = match scope {
            Scope::All => view.index.query_all(query),
            Scope::Organizations(orgs) => view.index.query(query, |row| {
                view.row(row)
                    .is_some_and(|r| orgs.contains(&r.organization))
            }),
        }
        .map_err(ApiError::internal)?;
        let rows = page.rows.iter().filter_map(|row| view.row(*row));
        let mut body = Vec::with_capacity(64 + page.rows.len() * 1024);
        body.extend_from_slice(
            format!(
                "{{\"meta\":{{\"pagingInfo\":{{\"total\":{},\"count\":{},\"offset\":{}}}}},\"data\":[",
                page.total,
                page.rows.len(),
                page.offset
            )
            .as_bytes(),
        );
        for (i, row) in rows.enumerate() {
            if i > 0 {
                body.push(b',');
            }
            match &query.select {
                None => body.extend_from_slice(row.json.as_bytes()),
                Some(select) => {
                    let doc: Value = serde_json::from_str(&row.json).map_err(ApiError::internal)?;
                    serde_json::to_writer(&mut body, &select.project(&doc))
                        .map_err(ApiError::internal)?;
                }
            }
        }
        body.extend_from_slice(b"]}");
        Ok(json_bytes(StatusCode::OK, body))
    }

    /// Whether the list was built (a first request builds it).
    pub fn built(&self) -> bool {
        self.read().is_ok_and(|v| v.generation.is_some())
    }

    /// The rendered resource of one target, brought up to date; `None` when the list holds no
    /// such target that `scope` may see.
    pub async fn rendered(
        &self,
        app: &App,
        scope: &Scope,
        uid: Uuid,
    ) -> ApiResult<Option<Box<str>>> {
        self.ensure_current(app).await?;
        let view = self.read()?;
        Ok(view
            .by_uid
            .get(&uid)
            .and_then(|row| view.row(*row))
            .filter(|r| scope.contains(r.organization))
            .map(|r| r.json.clone()))
    }
}
