//! Tallyman's storage: one [`Store`] trait and two implementations, SQLite (the embedded
//! default) and PostgreSQL (for several nodes), chosen by the scheme of the database URL.
//!
//! Every method is one statement or one transaction, so a crash leaves either the old state or
//! the new one. Each backend owns its migrations under `migrations/<backend>/`.

pub mod model;
mod postgres;
mod sqlite;
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use uuid::Uuid;

pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (for example a user name already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unsupported database URL: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Tallyman persists. Implementations must give identical results; the shared test
/// suite in `tests/` runs against both.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and `/about`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations. Safe to run concurrently from several nodes.
    async fn migrate(&self) -> StoreResult<()>;

    // --- installation -----------------------------------------------------------------------

    /// Returns the installation id and date, creating them on first call.
    async fn installation(&self, now: DateTime<Utc>) -> StoreResult<(Uuid, DateTime<Utc>)>;

    // --- organizations ----------------------------------------------------------------------

    async fn insert_organization(&self, org: &Organization) -> StoreResult<()>;
    async fn organization(&self, uid: Uuid) -> StoreResult<Option<Organization>>;
    async fn provider(&self) -> StoreResult<Option<Organization>>;
    async fn organizations(&self) -> StoreResult<Vec<Organization>>;

    // --- users ------------------------------------------------------------------------------

    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// Looks a user up by login name, ignoring case.
    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>>;
    async fn user(&self, uid: Uuid) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    async fn set_user_password(&self, uid: Uuid, password_hash: &str) -> StoreResult<()>;

    // --- tokens -----------------------------------------------------------------------------

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn token(&self, digest: &str) -> StoreResult<Option<TokenRecord>>;
    /// The token with `digest` and its user, in one read (every authenticated request asks).
    async fn token_with_user(&self, digest: &str) -> StoreResult<Option<(TokenRecord, User)>>;
    /// Revokes every token of a user; returns how many were removed.
    async fn revoke_user_tokens(&self, user_uid: Uuid) -> StoreResult<u64>;
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    // --- API keys ---------------------------------------------------------------------------

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_key(&self, digest: &str) -> StoreResult<Option<ApiKey>>;
    /// Keys of one user, oldest first.
    async fn api_keys(&self, user_uid: Uuid) -> StoreResult<Vec<ApiKey>>;
    /// Deletes a key; returns whether it existed.
    async fn delete_api_key(&self, id: Uuid) -> StoreResult<bool>;

    // --- login throttle -----------------------------------------------------------------------

    /// Reserves one login attempt for `key` atomically (one statement, so parallel attempts on
    /// any node are counted one by one) and returns the attempts in the current window with
    /// the window's start. A window that started at or before `since` is over: the count
    /// restarts at 1 from `now`.
    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> StoreResult<LoginAttempts>;
    /// Gives back one reserved attempt of `key` (one that was never checked).
    async fn release_login_attempt(&self, key: &str) -> StoreResult<()>;
    /// Forgets the attempts of `key` (after a successful login).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;
    /// Drops counters whose window started at or before `before`.
    async fn purge_login_failures(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// A cheap write that fails when the database cannot take writes (disk full, read-only
    /// files), for `/health`.
    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()>;

    // --- async actions and idempotency records ----------------------------------------------

    /// Inserts `action` unless a record with the same (user, id) exists; an expired record is
    /// replaced as if it had never been there.
    async fn begin_action(
        &self,
        action: &ActionRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<BeginAction>;
    /// Stores the outcome of a running action; `response` is `None` when the answer is not
    /// kept (a large read). A record that is no longer running (cancelled) keeps its status;
    /// returns whether the record was updated.
    async fn finish_action(
        &self,
        user_uid: Uuid,
        id: Uuid,
        status: ActionStatus,
        response: Option<&StoredResponse>,
        finished_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// A live (unexpired) action of this user.
    async fn action(
        &self,
        user_uid: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ActionRecord>>;
    /// Live actions of this user, oldest first.
    async fn actions(&self, user_uid: Uuid, now: DateTime<Utc>) -> StoreResult<Vec<ActionRecord>>;
    /// Marks a running action cancelled; returns false if it was not running.
    async fn cancel_action(
        &self,
        user_uid: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Drops the stored result (the record itself stays until it expires).
    async fn clear_action_result(&self, user_uid: Uuid, id: Uuid) -> StoreResult<bool>;
    async fn attach_action_request_data(
        &self,
        user_uid: Uuid,
        id: Uuid,
        request_body: Option<&str>,
        query_parameters: &serde_json::Value,
    ) -> StoreResult<bool>;
    async fn purge_expired_actions(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    // --- managed servers --------------------------------------------------------------------

    async fn insert_server(&self, server: &ManagedServer) -> StoreResult<()>;
    /// Inserts many servers in one transaction (all or none).
    async fn insert_servers(&self, servers: &[ManagedServer]) -> StoreResult<()>;
    async fn server(&self, uid: Uuid) -> StoreResult<Option<ManagedServer>>;
    /// Servers of one kind (all kinds for `None`), ordered by uid.
    async fn servers(&self, kind: Option<TargetKind>) -> StoreResult<Vec<ManagedServer>>;
    /// Every managed server as the monthly report reads it, ordered by uid.
    async fn report_servers(&self) -> StoreResult<Vec<ReportServer>>;
    /// Records what a server reported about itself.
    async fn record_server_report(
        &self,
        uid: Uuid,
        reported: &serde_json::Value,
        seen_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// A number that changes whenever a managed server or a license slot changes (on any node).
    async fn inventory_generation(&self) -> StoreResult<i64>;
    /// The current generation and the targets changed after generation `after` up to it, read
    /// consistently; `targets` is `None` when the change log no longer reaches back to `after`
    /// (the caller rebuilds whatever it cached).
    async fn inventory_changes(&self, after: i64) -> StoreResult<InventoryChanges>;
    /// Forgets change-log entries more than `keep` generations old; returns how many.
    async fn prune_inventory_changes(&self, keep: i64) -> StoreResult<u64>;
    /// Up to `limit` servers of `kind` after `after` in uid order, each with its license slot
    /// (document as text): a keyset page, for walking a whole fleet a slice at a time.
    async fn targets_page(
        &self,
        kind: TargetKind,
        after: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<Vec<(ManagedServer, Option<LicenseSlotText>)>>;
    /// The servers among `uids` (unknown ones are skipped), ordered by uid.
    async fn servers_by_uid(&self, uids: &[Uuid]) -> StoreResult<Vec<ManagedServer>>;

    // --- installed licenses -----------------------------------------------------------------

    async fn license_slot(&self, target_uid: Uuid) -> StoreResult<Option<LicenseSlot>>;
    /// The slots of the targets among `uids` that have one, documents as JSON text.
    async fn license_slots_by_uid(&self, uids: &[Uuid]) -> StoreResult<Vec<LicenseSlotText>>;
    /// Every slot of one kind.
    async fn license_slots(&self, kind: TargetKind) -> StoreResult<Vec<LicenseSlot>>;
    /// (target, revision, updated at) of every slot of one kind, without the documents.
    async fn license_slot_revisions(
        &self,
        kind: TargetKind,
    ) -> StoreResult<Vec<(Uuid, i64, DateTime<Utc>)>>;
    /// Writes `slot.document` if the stored revision still equals `expected_revision` (`None`:
    /// no slot may exist yet) and appends `event`, in one transaction. Returns the new
    /// revision; a lost race is [`StoreError::Conflict`].
    async fn save_license_slot(
        &self,
        slot: &LicenseSlot,
        expected_revision: Option<i64>,
        event: &LicenseEvent,
    ) -> StoreResult<i64>;
    /// A target's history, oldest first.
    async fn license_events(&self, target_uid: Uuid) -> StoreResult<Vec<LicenseEvent>>;

    // --- agents -----------------------------------------------------------------------------

    async fn insert_enrollment_token(&self, token: &EnrollmentToken) -> StoreResult<()>;
    async fn enrollment_token(&self, digest: &str) -> StoreResult<Option<EnrollmentToken>>;
    async fn insert_agent(&self, agent: &Agent) -> StoreResult<()>;
    async fn agent_by_token(&self, digest: &str) -> StoreResult<Option<Agent>>;
    async fn touch_agent(&self, uid: Uuid, seen_at: DateTime<Utc>) -> StoreResult<()>;

    // --- usage ------------------------------------------------------------------------------

    /// Stores samples in one transaction. A sample that is already stored with the same counts
    /// is skipped (resending changes nothing); the same key with other counts is a
    /// [`StoreError::Conflict`] and nothing is stored. Returns how many were new.
    async fn insert_usage_samples(&self, samples: &[UsageSample]) -> StoreResult<u64>;
    /// Maxima of each counter per (server, organization, workload type, platform) over samples
    /// taken in `[start, end)`.
    async fn usage_maxima(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<UsageAggregate>>;
    /// [`Store::usage_maxima`] as rows arrive, in the same order, without holding them all.
    fn usage_maxima_stream(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> BoxStream<'_, StoreResult<UsageAggregate>>;
    /// The latest sample per (server, organization, workload type, platform) in `[start, end)`.
    async fn usage_latest(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<UsageAggregate>>;

    // --- points weights ---------------------------------------------------------------------

    async fn weights(&self) -> StoreResult<Vec<WeightRow>>;
    /// Inserts or replaces one row.
    async fn set_weight(&self, row: &WeightRow) -> StoreResult<()>;
    /// Inserts the rows that are not there yet (used to seed defaults); returns how many.
    async fn seed_weights(&self, rows: &[WeightRow]) -> StoreResult<u64>;

    // --- reports ----------------------------------------------------------------------------

    /// The id the next report of (owner, month) will get (its existing id if one exists).
    async fn report_id_for(&self, owner_uid: Uuid, month: &str) -> StoreResult<i64>;
    /// Stores a generated report unless the month's report for that owner is approved.
    async fn write_report(&self, report: &ReportRecord) -> StoreResult<ReportWrite>;
    async fn report(&self, id: i64) -> StoreResult<Option<ReportRecord>>;
    /// The flat lines stored with a report as JSON text (reports written by
    /// [`Store::write_report`]).
    async fn report_lines(&self, id: i64) -> StoreResult<Option<String>>;
    /// Stages one chunk of the lines of report `report_id` being generated, under `batch` (a
    /// number the generation picks). Staged chunks belong to the report only once
    /// [`Store::write_report_staged`] names their batch; until then no read sees them.
    async fn stage_report_lines(
        &self,
        report_id: i64,
        batch: i64,
        seq: i64,
        body: &[u8],
    ) -> StoreResult<()>;
    /// [`Store::write_report`] for a report whose lines were staged under `batch`, read in
    /// `order` (chunk seqs). In the same transaction, drops every chunk of the report the
    /// stored report does not use (an earlier generation's, or this batch if the report is
    /// kept approved).
    async fn write_report_staged(
        &self,
        report: &ReportRecord,
        batch: i64,
        order: &[i64],
    ) -> StoreResult<ReportWrite>;
    /// Where the lines of a report written by [`Store::write_report_staged`] are.
    async fn report_line_chunks(&self, id: i64) -> StoreResult<Option<ReportLineChunks>>;
    /// One chunk of a report's lines.
    async fn report_line_chunk(
        &self,
        id: i64,
        batch: i64,
        seq: i64,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Every report, newest month first, then by id.
    async fn reports(&self) -> StoreResult<Vec<ReportRecord>>;
    /// Moves a report from `from` to `to` with its new document; false if it was not in `from`.
    async fn transition_report(
        &self,
        id: i64,
        from: ReportStatus,
        to: ReportStatus,
        document: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn report_auto_approve(&self, owner_uid: Uuid) -> StoreResult<Option<bool>>;
    async fn set_report_auto_approve(&self, owner_uid: Uuid, auto_approve: bool)
        -> StoreResult<()>;

    // --- job leases -------------------------------------------------------------------------

    /// Takes (or renews) the lease `name` for `holder` until `until`, unless another holder's
    /// lease is still running at `now`. Returns whether `holder` has the lease.
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing) or `postgres://…`.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(StoreError::BadUrl(redact_url(url)))
    }
}

/// A database URL with any password replaced, fit for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://tally:s3cret@db:5432/t"),
            "postgres://tally:***@db:5432/t"
        );
        assert_eq!(redact_url("postgres://tally@db/t"), "postgres://tally@db/t");
        assert_eq!(redact_url("sqlite://data/t.db"), "sqlite://data/t.db");
    }

    #[test]
    fn roles_round_trip_and_map_to_organization_types() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(Role::parse(&role.as_str().to_lowercase()), Some(role));
        }
        assert_eq!(
            Role::PortalAdministrator.organization_type(),
            OrganizationType::Provider
        );
        assert_eq!(
            Role::ServiceProviderAdministrator.organization_type(),
            OrganizationType::Reseller
        );
        assert_eq!(
            Role::CompanyOwner.organization_type(),
            OrganizationType::Company
        );
        assert_eq!(Role::parse("Nobody"), None);
    }
}
