//! The SQLite backend: the embedded default. One file in the data directory, WAL journal,
//! `synchronous=NORMAL`, foreign keys on and a busy timeout so concurrent writers queue
//! instead of failing.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use uuid::Uuid;

use crate::*;

/// Samples per page of [`Store::usage_maxima_stream`].
const MAXIMA_PAGE_SAMPLES: i64 = 50_000;
/// Servers per page of [`Store::report_servers`].
const SERVER_PAGE: i64 = 20_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Writes: one connection, so this process's writers queue in order for SQLite's single
    /// write lock instead of colliding on it and backing off (which turns into long tail
    /// latencies under concurrent writes). Other processes (the CLI) still meet the busy
    /// timeout.
    writer: SqlitePool,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_micros(v)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {v} out of range")))
}

fn uid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("bad uuid {s:?}")))
}

impl SqliteStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = Self::pool_options(8).connect_with(options.clone()).await?;
        let writer = Self::pool_options(1).connect_with(options).await?;
        Ok(Self { pool, writer })
    }

    fn pool_options(connections: u32) -> SqlitePoolOptions {
        SqlitePoolOptions::new()
            .max_connections(connections)
            .after_release(|conn, _| {
                Box::pin(async move {
                    let idle = outside_transaction(conn).await?;
                    if !idle {
                        tracing::warn!(
                            "closing a database connection left inside a failed transaction"
                        );
                    }
                    Ok(idle)
                })
            })
    }

    /// The pool, for tests and maintenance commands.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Writes a consistent copy of the database to `path` (`VACUUM INTO`).
    pub async fn backup_to(&self, path: &str) -> StoreResult<()> {
        sqlx::query("VACUUM INTO ?")
            .bind(path)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// [`Store::report_servers`], `page` servers per query.
    async fn report_servers_paged(&self, page_size: i64) -> StoreResult<Vec<ReportServer>> {
        // Only the fields the report reads: never the whole reported document or license files.
        // Pages of servers come back as one JSON row each (SQLite hands rows over one at a time
        // from its worker thread, which costs more than the query for a million servers).
        type Raw = (
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let mut servers = Vec::new();
        let mut after = String::new();
        loop {
            let (page, last): (String, Option<String>) = sqlx::query_as(
                "SELECT json_group_array(json_array(uid, kind, name, organization_uid, created_at, \
                 installation_id, product_version, license_id, support_id, edition, company)) \
                 AS page, MAX(uid) AS last FROM ( \
                 SELECT uid, kind, name, organization_uid, created_at, \
                 CASE WHEN json_type(reported, '$.installationId') = 'text' \
                   THEN json_extract(reported, '$.installationId') END AS installation_id, \
                 CASE WHEN json_type(reported, '$.productVersion') = 'text' \
                   THEN json_extract(reported, '$.productVersion') END AS product_version, \
                 CASE WHEN json_type(f, '$.licenseId') = 'text' \
                   THEN json_extract(f, '$.licenseId') END AS license_id, \
                 CASE WHEN json_type(f, '$.claims.supportId') = 'text' \
                   THEN json_extract(f, '$.claims.supportId') END AS support_id, \
                 CASE WHEN json_type(f, '$.claims.edition') = 'text' \
                   THEN json_extract(f, '$.claims.edition') END AS edition, \
                 CASE WHEN json_type(f, '$.claims.company') = 'text' \
                   THEN json_extract(f, '$.claims.company') END AS company \
                 FROM (SELECT s.uid, s.kind, s.name, s.organization_uid, s.created_at, s.reported, \
                   (SELECT CASE WHEN e.type = 'object' THEN e.value END \
                    FROM license_slots l, json_each(l.document, '$.files') e \
                    WHERE l.target_uid = s.uid AND json_type(l.document, '$.files') = 'array' \
                    ORDER BY CASE WHEN e.type = 'object' \
                      AND json_type(e.value, '$.claims.sectionTypes') = 'array' \
                      THEN EXISTS (SELECT 1 FROM json_each(e.value, '$.claims.sectionTypes') t \
                        WHERE t.value = 'Instance') ELSE 0 END DESC, e.key LIMIT 1) AS f \
                   FROM managed_servers s WHERE s.uid > ? ORDER BY s.uid LIMIT ?))",
            )
            .bind(&after)
            .bind(page_size)
            .fetch_one(&self.pool)
            .await?;
            let Some(last) = last else {
                break;
            };
            let raw: Vec<Raw> = serde_json::from_str(&page)
                .map_err(|e| StoreError::Corrupt(format!("server page: {e}")))?;
            for (
                uid_,
                kind,
                name,
                org,
                created_at,
                inst,
                version,
                lic,
                support,
                edition,
                company,
            ) in raw
            {
                servers.push(ReportServer {
                    uid: uid(&uid_)?,
                    kind: TargetKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("server kind {kind:?}")))?,
                    name,
                    organization_uid: uid(&org)?,
                    created_at: from_micros(created_at)?,
                    installation_id: inst,
                    product_version: version,
                    license: report_license(lic, support, edition, company),
                });
            }
            after = last;
        }
        servers.sort_by_key(|s| s.uid);
        Ok(servers)
    }

    /// The month's maxima of the servers after `after` (by uid text), about
    /// `page_samples` samples' worth of whole servers, in the order of the key; with
    /// the last server uid of the page. `None` past the last page.
    async fn usage_maxima_page(
        &self,
        after: &str,
        start: i64,
        end: i64,
        page_samples: i64,
    ) -> StoreResult<Option<(Vec<UsageAggregate>, String)>> {
        let bound: Option<String> = sqlx::query_scalar(
            "SELECT server_uid FROM usage_samples WHERE server_uid > ? \
             ORDER BY server_uid LIMIT 1 OFFSET ?",
        )
        .bind(after)
        .bind(page_samples)
        .fetch_optional(&self.pool)
        .await?;
        let range = match bound {
            Some(_) => "server_uid > ? AND server_uid <= ?",
            None => "server_uid > ? AND ? IS NULL",
        };
        let sql = format!(
            "SELECT json_group_array(json_array(server_uid, organization_uid, workload_type, \
             platform, used, new, rental)) AS page, MAX(server_uid) AS last FROM ( \
             SELECT server_uid, organization_uid, workload_type, platform, MAX(used_count) AS used, \
             MAX(new_count) AS new, MAX(rental_count) AS rental \
             FROM usage_samples INDEXED BY usage_samples_maxima \
             WHERE {range} AND sampled_at >= ? AND sampled_at < ? \
             GROUP BY server_uid, organization_uid, workload_type, platform)"
        );
        let (page, last): (String, Option<String>) = sqlx::query_as(&sql)
            .bind(after)
            .bind(bound.as_deref())
            .bind(start)
            .bind(end)
            .fetch_one(&self.pool)
            .await?;
        let Some(last) = last else {
            // No sample in the range: past the end, unless servers without a sample in the
            // month were skipped over (a bounded page).
            return match bound {
                Some(b) => Ok(Some((Vec::new(), b))),
                None => Ok(None),
            };
        };
        type Raw<'r> = (
            &'r str,
            &'r str,
            std::borrow::Cow<'r, str>,
            std::borrow::Cow<'r, str>,
            i64,
            i64,
            i64,
        );
        let mut raw: Vec<Raw<'_>> = serde_json::from_str(&page)
            .map_err(|e| StoreError::Corrupt(format!("usage maxima page: {e}")))?;
        // The order of `ORDER BY server_uid, organization_uid, workload_type, platform`.
        raw.sort_by(|a, b| (a.0, a.1, &a.2, &a.3).cmp(&(b.0, b.1, &b.2, &b.3)));
        let rows = raw
            .into_iter()
            .map(
                |(server, org, workload_type, platform, used, new, rental)| {
                    Ok(UsageAggregate {
                        server_uid: uid(server)?,
                        organization_uid: uid(org)?,
                        workload_type: workload_type.into_owned(),
                        platform: platform.into_owned(),
                        used,
                        new,
                        rental,
                    })
                },
            )
            .collect::<StoreResult<Vec<_>>>()?;
        let last = bound.unwrap_or(last);
        Ok(Some((rows, last)))
    }

    /// Writes a generated report with either JSON `lines` or staged chunks (`(batch, order)`),
    /// and drops the report's chunks the stored report does not use, in one transaction.
    async fn store_report(
        &self,
        report: &ReportRecord,
        lines: Option<&str>,
        chunks: Option<(i64, String)>,
    ) -> StoreResult<ReportWrite> {
        let (batch, order) = match chunks {
            Some((b, o)) => (Some(b), Some(o)),
            None => (None, None),
        };
        let mut tx = self.writer.begin().await?;
        // Replace an unapproved report, else create one, else it is approved. Writing first
        // takes SQLite's write lock at once, so concurrent generations queue instead of failing.
        let replaced = sqlx::query(
            "UPDATE reports SET status = ?, generated_at = ?, approved_at = ?, document = ?, \
             lines = ?, line_batch = ?, line_chunks = ? \
             WHERE owner_uid = ? AND month = ? AND status <> 'Approved'",
        )
        .bind(report.status.as_str())
        .bind(micros(report.generated_at))
        .bind(report.approved_at.map(micros))
        .bind(report.document.to_string())
        .bind(lines)
        .bind(batch)
        .bind(order.as_deref())
        .bind(report.owner_uid.to_string())
        .bind(&report.month)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if replaced == 1 {
            ReportWrite::Replaced(report.id)
        } else {
            let created = sqlx::query(
                "INSERT INTO reports (id, owner_uid, month, status, generated_at, approved_at, document, \
                 lines, line_batch, line_chunks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(report.id)
            .bind(report.owner_uid.to_string())
            .bind(&report.month)
            .bind(report.status.as_str())
            .bind(micros(report.generated_at))
            .bind(report.approved_at.map(micros))
            .bind(report.document.to_string())
            .bind(lines)
            .bind(batch)
            .bind(order.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if created == 1 {
                ReportWrite::Created(report.id)
            } else {
                let id: i64 =
                    sqlx::query_scalar("SELECT id FROM reports WHERE owner_uid = ? AND month = ?")
                        .bind(report.owner_uid.to_string())
                        .bind(&report.month)
                        .fetch_one(&mut *tx)
                        .await?;
                ReportWrite::KeptApproved(id)
            }
        };
        sqlx::query(
            "DELETE FROM report_line_chunks WHERE report_id = ? \
             AND batch IS NOT (SELECT line_batch FROM reports WHERE id = ?)",
        )
        .bind(report.id)
        .bind(report.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

/// A report's chunk order as stored: seqs separated by commas.
pub(crate) fn chunk_order_text(order: &[i64]) -> String {
    order
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn parse_chunk_order(text: &str) -> StoreResult<Vec<i64>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| StoreError::Corrupt(format!("report line chunk {s:?}")))
        })
        .collect()
}

/// The primary file's license fields as the report reads them; `None` unless all are there.
pub(crate) fn report_license(
    license_id: Option<String>,
    support_id: Option<String>,
    edition: Option<String>,
    company: Option<String>,
) -> Option<ReportLicense> {
    Some(ReportLicense {
        license_id: Uuid::parse_str(&license_id?).ok()?,
        support_id: support_id?,
        edition: edition?,
        company: company?,
    })
}

/// Whether `conn` is outside any transaction (SQLite's autocommit mode).
///
/// A COMMIT that fails (disk full, I/O error) can leave SQLite's transaction open while sqlx
/// believes it ended, or the reverse, after which sqlx's rollback of the next failure is a
/// `ROLLBACK TO SAVEPOINT` that keeps the transaction open. Such a connection holds the write
/// lock (every other connection then reports "database is locked") and would run later
/// statements inside a transaction that never commits. The pool therefore closes any
/// connection that comes back inside a transaction; closing rolls it back.
async fn outside_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked for us and valid for the duration of the call, and
    // sqlite3_get_autocommit only reads the connection's state.
    let autocommit =
        unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) };
    Ok(autocommit != 0)
}

fn org_from_row(row: &SqliteRow) -> StoreResult<Organization> {
    let kind: String = row.try_get("kind")?;
    let parent: Option<String> = row.try_get("parent_uid")?;
    Ok(Organization {
        uid: uid(row.try_get("uid")?)?,
        name: row.try_get("name")?,
        kind: OrganizationType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("organization kind {kind:?}")))?,
        parent_uid: parent.as_deref().map(uid).transpose()?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

fn user_from_row(row: &SqliteRow) -> StoreResult<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        uid: uid(row.try_get("uid")?)?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        organization_uid: uid(row.try_get("organization_uid")?)?,
        password_hash: row.try_get("password_hash")?,
        enabled: row.try_get("enabled")?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

fn token_from_row(row: &SqliteRow) -> StoreResult<TokenRecord> {
    let kind: String = row.try_get("kind")?;
    Ok(TokenRecord {
        digest: row.try_get("digest")?,
        user_uid: uid(row.try_get("user_uid")?)?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("token kind {kind:?}")))?,
        read_only: row.try_get("read_only")?,
        issued_at: from_micros(row.try_get("issued_at")?)?,
        expires_at: from_micros(row.try_get("expires_at")?)?,
    })
}

fn action_from_row(row: &SqliteRow) -> StoreResult<ActionRecord> {
    let status: String = row.try_get("status")?;
    let query: String = row.try_get("query_parameters")?;
    let response_status: Option<i64> = row.try_get("response_status")?;
    let response = match response_status {
        Some(code) => Some(StoredResponse {
            status: u16::try_from(code)
                .map_err(|_| StoreError::Corrupt(format!("status {code}")))?,
            content_type: row.try_get("response_content_type")?,
            body: row
                .try_get::<Option<Vec<u8>>, _>("response_body")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    let finished: Option<i64> = row.try_get("finished_at")?;
    Ok(ActionRecord {
        id: uid(row.try_get("id")?)?,
        user_uid: uid(row.try_get("user_uid")?)?,
        action_name: row.try_get("action_name")?,
        fingerprint: row.try_get("fingerprint")?,
        status: ActionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("action status {status:?}")))?,
        request_body: row.try_get("request_body")?,
        query_parameters: serde_json::from_str(&query)
            .map_err(|e| StoreError::Corrupt(format!("query parameters: {e}")))?,
        response,
        created_at: from_micros(row.try_get("created_at")?)?,
        finished_at: finished.map(from_micros).transpose()?,
        expires_at: from_micros(row.try_get("expires_at")?)?,
    })
}

const ACTION_COLUMNS: &str = "user_uid, id, action_name, fingerprint, status, request_body, \
     query_parameters, response_status, response_content_type, response_body, created_at, \
     finished_at, expires_at";

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        // SQLite has no advisory lock: when two processes migrate one file at once, the loser's
        // migration transaction rolls back. Its next attempt finds the winner's work applied.
        let mut attempt = 0;
        loop {
            match MIGRATOR.run(&self.writer).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn installation(&self, now: DateTime<Utc>) -> StoreResult<(Uuid, DateTime<Utc>)> {
        sqlx::query(
            "INSERT INTO installation (id, uid, created_at) VALUES (1, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(micros(now))
        .execute(&self.writer)
        .await?;
        let row = sqlx::query("SELECT uid, created_at FROM installation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((
            uid(row.try_get("uid")?)?,
            from_micros(row.try_get("created_at")?)?,
        ))
    }

    async fn insert_organization(&self, org: &Organization) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO organizations (uid, name, kind, parent_uid, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(org.uid.to_string())
        .bind(&org.name)
        .bind(org.kind.as_str())
        .bind(org.parent_uid.map(|u| u.to_string()))
        .bind(micros(org.created_at))
        .execute(&self.writer)
        .await;
        map_insert(result, "organization")
    }

    async fn organization(&self, uid_: Uuid) -> StoreResult<Option<Organization>> {
        sqlx::query("SELECT * FROM organizations WHERE uid = ?")
            .bind(uid_.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(org_from_row)
            .transpose()
    }

    async fn provider(&self) -> StoreResult<Option<Organization>> {
        sqlx::query("SELECT * FROM organizations WHERE kind = 'Provider'")
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(org_from_row)
            .transpose()
    }

    async fn organizations(&self) -> StoreResult<Vec<Organization>> {
        sqlx::query("SELECT * FROM organizations ORDER BY created_at, uid")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(org_from_row)
            .collect()
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO users (uid, name, name_key, role, organization_uid, password_hash, \
             enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.uid.to_string())
        .bind(&user.name)
        .bind(user.name.to_lowercase())
        .bind(user.role.as_str())
        .bind(user.organization_uid.to_string())
        .bind(&user.password_hash)
        .bind(user.enabled)
        .bind(micros(user.created_at))
        .execute(&self.writer)
        .await;
        map_insert(result, "user")
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE name_key = ?")
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user(&self, uid_: Uuid) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE uid = ?")
            .bind(uid_.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        sqlx::query("SELECT * FROM users ORDER BY name_key")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn set_user_password(&self, uid_: Uuid, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE uid = ?")
            .bind(password_hash)
            .bind(uid_.to_string())
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {uid_}")));
        }
        Ok(())
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO tokens (digest, user_uid, kind, read_only, issued_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.digest)
        .bind(token.user_uid.to_string())
        .bind(token.kind.as_str())
        .bind(token.read_only)
        .bind(micros(token.issued_at))
        .bind(micros(token.expires_at))
        .execute(&self.writer)
        .await;
        map_insert(result, "token")
    }

    async fn token(&self, digest: &str) -> StoreResult<Option<TokenRecord>> {
        sqlx::query("SELECT * FROM tokens WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn token_with_user(&self, digest: &str) -> StoreResult<Option<(TokenRecord, User)>> {
        sqlx::query(
            "SELECT t.*, u.* FROM tokens t JOIN users u ON u.uid = t.user_uid \
             WHERE t.digest = ?",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| Ok((token_from_row(row)?, user_from_row(row)?)))
        .transpose()
    }

    async fn revoke_user_tokens(&self, user_uid: Uuid) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM tokens WHERE user_uid = ?")
            .bind(user_uid.to_string())
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM tokens WHERE expires_at <= ?")
            .bind(micros(now))
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO api_keys (id, digest, user_uid, description, read_only, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(key.id.to_string())
        .bind(&key.digest)
        .bind(key.user_uid.to_string())
        .bind(&key.description)
        .bind(key.read_only)
        .bind(micros(key.created_at))
        .execute(&self.writer)
        .await;
        map_insert(result, "API key")
    }

    async fn api_key(&self, digest: &str) -> StoreResult<Option<ApiKey>> {
        sqlx::query("SELECT * FROM api_keys WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    async fn api_keys(&self, user_uid: Uuid) -> StoreResult<Vec<ApiKey>> {
        sqlx::query("SELECT * FROM api_keys WHERE user_uid = ? ORDER BY created_at, id")
            .bind(user_uid.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    async fn delete_api_key(&self, id: Uuid) -> StoreResult<bool> {
        Ok(sqlx::query("DELETE FROM api_keys WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.writer)
            .await?
            .rows_affected()
            == 1)
    }

    async fn reserve_login_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> StoreResult<LoginAttempts> {
        let row = sqlx::query(
            "INSERT INTO login_attempts (key, attempts, window_start) VALUES (?, 1, ?) \
             ON CONFLICT (key) DO UPDATE SET \
             attempts = CASE WHEN login_attempts.window_start <= ? THEN 1 \
                             ELSE login_attempts.attempts + 1 END, \
             window_start = CASE WHEN login_attempts.window_start <= ? \
                                 THEN excluded.window_start \
                                 ELSE login_attempts.window_start END \
             RETURNING attempts, window_start",
        )
        .bind(key)
        .bind(micros(now))
        .bind(micros(since))
        .bind(micros(since))
        .fetch_one(&self.writer)
        .await?;
        let count: i64 = row.try_get("attempts")?;
        Ok(LoginAttempts {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            window_start: from_micros(row.try_get("window_start")?)?,
        })
    }

    async fn release_login_attempt(&self, key: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_attempts SET attempts = attempts - 1 WHERE key = ? AND attempts > 0",
        )
        .bind(key)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_attempts WHERE key = ?")
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn purge_login_failures(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM login_attempts WHERE window_start <= ?")
                .bind(micros(before))
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO health_probe (id, probed_at) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        )
        .bind(micros(now))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn begin_action(
        &self,
        action: &ActionRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<BeginAction> {
        let mut tx = self.writer.begin().await?;
        let user = action.user_uid.to_string();
        let id = action.id.to_string();
        sqlx::query("DELETE FROM async_actions WHERE user_uid = ? AND id = ? AND expires_at <= ?")
            .bind(&user)
            .bind(&id)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO async_actions ({ACTION_COLUMNS}) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_uid, id) DO NOTHING"
        ))
        .bind(&user)
        .bind(&id)
        .bind(&action.action_name)
        .bind(&action.fingerprint)
        .bind(action.status.as_str())
        .bind(&action.request_body)
        .bind(action.query_parameters.to_string())
        .bind(action.response.as_ref().map(|r| i64::from(r.status)))
        .bind(
            action
                .response
                .as_ref()
                .and_then(|r| r.content_type.clone()),
        )
        .bind(action.response.as_ref().map(|r| r.body.clone()))
        .bind(micros(action.created_at))
        .bind(action.finished_at.map(micros))
        .bind(micros(action.expires_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if inserted == 1 {
            BeginAction::Started
        } else {
            let row = sqlx::query(&format!(
                "SELECT {ACTION_COLUMNS} FROM async_actions WHERE user_uid = ? AND id = ?"
            ))
            .bind(&user)
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            BeginAction::Exists(action_from_row(&row)?)
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn finish_action(
        &self,
        user_uid: Uuid,
        id: Uuid,
        status: ActionStatus,
        response: Option<&StoredResponse>,
        finished_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE async_actions SET status = ?, response_status = ?, \
             response_content_type = ?, response_body = ?, finished_at = ?, expires_at = ? \
             WHERE user_uid = ? AND id = ? AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(response.map(|r| i64::from(r.status)))
        .bind(response.and_then(|r| r.content_type.as_deref()))
        .bind(response.map(|r| r.body.as_slice()))
        .bind(micros(finished_at))
        .bind(micros(expires_at))
        .bind(user_uid.to_string())
        .bind(id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn action(
        &self,
        user_uid: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ActionRecord>> {
        sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM async_actions \
             WHERE user_uid = ? AND id = ? AND expires_at > ?"
        ))
        .bind(user_uid.to_string())
        .bind(id.to_string())
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(action_from_row)
        .transpose()
    }

    async fn actions(&self, user_uid: Uuid, now: DateTime<Utc>) -> StoreResult<Vec<ActionRecord>> {
        sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM async_actions \
             WHERE user_uid = ? AND expires_at > ? ORDER BY created_at, id"
        ))
        .bind(user_uid.to_string())
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(action_from_row)
        .collect()
    }

    async fn cancel_action(
        &self,
        user_uid: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE async_actions SET status = 'canceled', finished_at = ?, expires_at = ? \
             WHERE user_uid = ? AND id = ? AND status = 'running' AND expires_at > ?",
        )
        .bind(micros(now))
        .bind(micros(expires_at))
        .bind(user_uid.to_string())
        .bind(id.to_string())
        .bind(micros(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn clear_action_result(&self, user_uid: Uuid, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE async_actions SET response_body = NULL, response_content_type = NULL, \
             response_status = NULL WHERE user_uid = ? AND id = ? AND status <> 'running'",
        )
        .bind(user_uid.to_string())
        .bind(id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn attach_action_request_data(
        &self,
        user_uid: Uuid,
        id: Uuid,
        request_body: Option<&str>,
        query_parameters: &serde_json::Value,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE async_actions SET request_body = ?, query_parameters = ? \
             WHERE user_uid = ? AND id = ?",
        )
        .bind(request_body)
        .bind(query_parameters.to_string())
        .bind(user_uid.to_string())
        .bind(id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired_actions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM async_actions WHERE expires_at <= ?")
                .bind(micros(now))
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }
    async fn insert_server(&self, server: &ManagedServer) -> StoreResult<()> {
        self.insert_servers(std::slice::from_ref(server)).await
    }

    async fn insert_servers(&self, servers: &[ManagedServer]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for server in servers {
            let result = sqlx::query(
                "INSERT INTO managed_servers (uid, kind, name, organization_uid, agent_uid, \
                 created_at, last_seen_at, reported) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(server.uid.to_string())
            .bind(server.kind.as_str())
            .bind(&server.name)
            .bind(server.organization_uid.to_string())
            .bind(server.agent_uid.map(|u| u.to_string()))
            .bind(micros(server.created_at))
            .bind(server.last_seen_at.map(micros))
            .bind(server.reported.to_string())
            .execute(&mut *tx)
            .await;
            map_insert(result, "server")?;
        }
        let uids: Vec<Uuid> = servers.iter().map(|s| s.uid).collect();
        bump_inventory(&mut tx, &uids).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn server(&self, uid_: Uuid) -> StoreResult<Option<ManagedServer>> {
        sqlx::query("SELECT * FROM managed_servers WHERE uid = ?")
            .bind(uid_.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(server_from_row)
            .transpose()
    }

    async fn servers(&self, kind: Option<TargetKind>) -> StoreResult<Vec<ManagedServer>> {
        let rows = match kind {
            Some(k) => {
                sqlx::query("SELECT * FROM managed_servers WHERE kind = ? ORDER BY uid")
                    .bind(k.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM managed_servers ORDER BY uid")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(server_from_row).collect()
    }

    async fn report_servers(&self) -> StoreResult<Vec<ReportServer>> {
        self.report_servers_paged(SERVER_PAGE).await
    }

    async fn record_server_report(
        &self,
        uid_: Uuid,
        reported: &serde_json::Value,
        seen_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let done =
            sqlx::query("UPDATE managed_servers SET reported = ?, last_seen_at = ? WHERE uid = ?")
                .bind(reported.to_string())
                .bind(micros(seen_at))
                .bind(uid_.to_string())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("server {uid_}")));
        }
        bump_inventory(&mut tx, &[uid_]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn inventory_generation(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT generation FROM inventory_generation WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn inventory_changes(&self, after: i64) -> StoreResult<InventoryChanges> {
        let mut tx = self.pool.begin().await?;
        let generation: i64 =
            sqlx::query_scalar("SELECT generation FROM inventory_generation WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        if after >= generation {
            return Ok(InventoryChanges {
                generation,
                targets: Some(Vec::new()),
            });
        }
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(generation) FROM inventory_changes")
                .fetch_one(&mut *tx)
                .await?;
        if oldest.is_none_or(|oldest| oldest > after + 1) {
            return Ok(InventoryChanges {
                generation,
                targets: None,
            });
        }
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT target_uid FROM inventory_changes \
             WHERE generation > ? AND generation <= ?",
        )
        .bind(after)
        .bind(generation)
        .fetch_all(&mut *tx)
        .await?;
        let targets = rows
            .iter()
            .map(|u| uid(u))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(InventoryChanges {
            generation,
            targets: Some(targets),
        })
    }

    async fn prune_inventory_changes(&self, keep: i64) -> StoreResult<u64> {
        Ok(sqlx::query(
            "DELETE FROM inventory_changes WHERE generation <= \
             (SELECT generation FROM inventory_generation WHERE id = 1) - ?",
        )
        .bind(keep)
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    async fn targets_page(
        &self,
        kind: TargetKind,
        after: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<Vec<(ManagedServer, Option<LicenseSlotText>)>> {
        // One row for the whole page (a JSON array), built by SQLite: far cheaper than handing
        // thousands of rows over one by one.
        let (page,): (Option<String>,) = sqlx::query_as(
            "SELECT json_group_array(json_array(uid, name, organization_uid, agent_uid, \
             created_at, last_seen_at, json(reported), \
             CASE WHEN slot_revision IS NULL THEN NULL ELSE json(slot_document) END, \
             slot_revision, slot_updated_at)) FROM ( \
             SELECT s.*, l.document AS slot_document, l.revision AS slot_revision, \
             l.updated_at AS slot_updated_at \
             FROM managed_servers s LEFT JOIN license_slots l ON l.target_uid = s.uid \
             WHERE s.kind = ? AND s.uid > ? ORDER BY s.uid LIMIT ?)",
        )
        .bind(kind.as_str())
        .bind(after.map(|u| u.to_string()).unwrap_or_default())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        type Row<'r> = (
            &'r str,
            String,
            &'r str,
            Option<&'r str>,
            i64,
            Option<i64>,
            &'r serde_json::value::RawValue,
            Option<&'r serde_json::value::RawValue>,
            Option<i64>,
            Option<i64>,
        );
        let text = page.unwrap_or_else(|| "[]".into());
        let rows: Vec<Row<'_>> = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("targets page: {e}")))?;
        let mut out = rows
            .into_iter()
            .map(
                |(uid_, name, org, agent, created, seen, reported, document, revision, updated)| {
                    let server = ManagedServer {
                        uid: uid(uid_)?,
                        kind,
                        name,
                        organization_uid: uid(org)?,
                        agent_uid: agent.map(uid).transpose()?,
                        created_at: from_micros(created)?,
                        last_seen_at: seen.map(from_micros).transpose()?,
                        reported: serde_json::from_str(reported.get())
                            .map_err(|e| StoreError::Corrupt(format!("server report: {e}")))?,
                    };
                    let slot = match (document, revision, updated) {
                        (Some(document), Some(revision), Some(updated)) => Some(LicenseSlotText {
                            target_uid: server.uid,
                            kind,
                            document: document.get().to_string(),
                            revision,
                            updated_at: from_micros(updated)?,
                        }),
                        _ => None,
                    };
                    Ok((server, slot))
                },
            )
            .collect::<StoreResult<Vec<_>>>()?;
        // The aggregate's order follows the inner query's in practice; make it certain.
        out.sort_by_key(|(s, _)| s.uid);
        Ok(out)
    }

    async fn servers_by_uid(&self, uids: &[Uuid]) -> StoreResult<Vec<ManagedServer>> {
        let list = json_uid_list(uids);
        sqlx::query(
            "SELECT * FROM managed_servers WHERE uid IN (SELECT value FROM json_each(?)) \
             ORDER BY uid",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(server_from_row)
        .collect()
    }

    async fn license_slots_by_uid(&self, uids: &[Uuid]) -> StoreResult<Vec<LicenseSlotText>> {
        let list = json_uid_list(uids);
        sqlx::query(
            "SELECT * FROM license_slots WHERE target_uid IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(LicenseSlotText {
                target_uid: uid(row.try_get("target_uid")?)?,
                kind: TargetKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("slot kind {kind:?}")))?,
                document: row.try_get("document")?,
                revision: row.try_get("revision")?,
                updated_at: from_micros(row.try_get("updated_at")?)?,
            })
        })
        .collect()
    }

    async fn license_slot(&self, target_uid: Uuid) -> StoreResult<Option<LicenseSlot>> {
        sqlx::query("SELECT * FROM license_slots WHERE target_uid = ?")
            .bind(target_uid.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(slot_from_row)
            .transpose()
    }

    async fn license_slots(&self, kind: TargetKind) -> StoreResult<Vec<LicenseSlot>> {
        sqlx::query("SELECT * FROM license_slots WHERE kind = ?")
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(slot_from_row)
            .collect()
    }

    async fn license_slot_revisions(
        &self,
        kind: TargetKind,
    ) -> StoreResult<Vec<(Uuid, i64, DateTime<Utc>)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT target_uid, revision, updated_at FROM license_slots WHERE kind = ?",
        )
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(u, r, at)| Ok((uid(&u)?, r, from_micros(at)?)))
            .collect()
    }

    async fn save_license_slot(
        &self,
        slot: &LicenseSlot,
        expected_revision: Option<i64>,
        event: &LicenseEvent,
    ) -> StoreResult<i64> {
        let mut tx = self.writer.begin().await?;
        let document = slot.document.to_string();
        let target = slot.target_uid.to_string();
        let (written, revision) = match expected_revision {
            None => {
                let n = sqlx::query(
                    "INSERT INTO license_slots (target_uid, kind, document, revision, updated_at) \
                     VALUES (?, ?, ?, 1, ?) ON CONFLICT (target_uid) DO NOTHING",
                )
                .bind(&target)
                .bind(slot.kind.as_str())
                .bind(&document)
                .bind(micros(slot.updated_at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                (n, 1)
            }
            Some(expected) => {
                let n = sqlx::query(
                    "UPDATE license_slots SET document = ?, revision = revision + 1, \
                     updated_at = ? WHERE target_uid = ? AND revision = ?",
                )
                .bind(&document)
                .bind(micros(slot.updated_at))
                .bind(&target)
                .bind(expected)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                (n, expected + 1)
            }
        };
        if written != 1 {
            return Err(StoreError::Conflict(format!(
                "the license of {target} was changed by another request"
            )));
        }
        sqlx::query(
            "INSERT INTO license_events (target_uid, at, actor, action, detail) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(event.target_uid.to_string())
        .bind(micros(event.at))
        .bind(&event.actor)
        .bind(&event.action)
        .bind(event.detail.to_string())
        .execute(&mut *tx)
        .await?;
        bump_inventory(&mut tx, &[slot.target_uid]).await?;
        tx.commit().await?;
        Ok(revision)
    }

    async fn license_events(&self, target_uid: Uuid) -> StoreResult<Vec<LicenseEvent>> {
        let rows = sqlx::query("SELECT * FROM license_events WHERE target_uid = ? ORDER BY id")
            .bind(target_uid.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                Ok(LicenseEvent {
                    target_uid: uid(row.try_get("target_uid")?)?,
                    at: from_micros(row.try_get("at")?)?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| StoreError::Corrupt(format!("event detail: {e}")))?,
                })
            })
            .collect()
    }

    async fn insert_enrollment_token(&self, token: &EnrollmentToken) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO enrollment_tokens (digest, organization_uid, created_at, expires_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(&token.digest)
        .bind(token.organization_uid.to_string())
        .bind(micros(token.created_at))
        .bind(micros(token.expires_at))
        .execute(&self.writer)
        .await;
        map_insert(result, "enrollment token")
    }

    async fn enrollment_token(&self, digest: &str) -> StoreResult<Option<EnrollmentToken>> {
        let row = sqlx::query("SELECT * FROM enrollment_tokens WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(EnrollmentToken {
                digest: row.try_get("digest")?,
                organization_uid: uid(row.try_get("organization_uid")?)?,
                created_at: from_micros(row.try_get("created_at")?)?,
                expires_at: from_micros(row.try_get("expires_at")?)?,
            })
        })
        .transpose()
    }

    async fn insert_agent(&self, agent: &Agent) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO agents (uid, organization_uid, name, token_digest, created_at, \
             last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(agent.uid.to_string())
        .bind(agent.organization_uid.to_string())
        .bind(&agent.name)
        .bind(&agent.token_digest)
        .bind(micros(agent.created_at))
        .bind(agent.last_seen_at.map(micros))
        .execute(&self.writer)
        .await;
        map_insert(result, "agent")
    }

    async fn agent_by_token(&self, digest: &str) -> StoreResult<Option<Agent>> {
        sqlx::query("SELECT * FROM agents WHERE token_digest = ?")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(agent_from_row)
            .transpose()
    }

    async fn touch_agent(&self, uid_: Uuid, seen_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE agents SET last_seen_at = ? WHERE uid = ?")
            .bind(micros(seen_at))
            .bind(uid_.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn insert_usage_samples(&self, samples: &[UsageSample]) -> StoreResult<u64> {
        // Writing first takes the write lock at once (SQLite) and lets the unique key settle
        // races between identical resends (both backends); only a refused row is read back.
        let mut tx = self.writer.begin().await?;
        let mut inserted = 0;
        for s in samples {
            let n = sqlx::query(
                "INSERT INTO usage_samples (server_uid, organization_uid, workload_type, platform, \
                 sampled_at, used_count, new_count, rental_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (server_uid, organization_uid, workload_type, platform, sampled_at) DO NOTHING",
            )
            .bind(s.server_uid.to_string())
            .bind(s.organization_uid.to_string())
            .bind(&s.workload_type)
            .bind(&s.platform)
            .bind(micros(s.sampled_at))
            .bind(s.used)
            .bind(s.new)
            .bind(s.rental)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                inserted += 1;
                continue;
            }
            let row = sqlx::query(
                "SELECT used_count, new_count, rental_count FROM usage_samples WHERE server_uid = ? \
                 AND organization_uid = ? AND workload_type = ? AND platform = ? AND sampled_at = ?",
            )
            .bind(s.server_uid.to_string())
            .bind(s.organization_uid.to_string())
            .bind(&s.workload_type)
            .bind(&s.platform)
            .bind(micros(s.sampled_at))
            .fetch_one(&mut *tx)
            .await?;
            let same = row.try_get::<i64, _>("used_count")? == s.used
                && row.try_get::<i64, _>("new_count")? == s.new
                && row.try_get::<i64, _>("rental_count")? == s.rental;
            if !same {
                return Err(StoreError::Conflict(format!(
                    "a different sample for {} {} at {} is already stored",
                    s.server_uid, s.workload_type, s.sampled_at
                )));
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn usage_maxima(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<UsageAggregate>> {
        let rows = sqlx::query(
            "SELECT server_uid, organization_uid, workload_type, platform, MAX(used_count) AS used, \
             MAX(new_count) AS new, MAX(rental_count) AS rental FROM usage_samples \
             WHERE sampled_at >= ? AND sampled_at < ? \
             GROUP BY server_uid, organization_uid, workload_type, platform \
             ORDER BY server_uid, organization_uid, workload_type, platform",
        )
        .bind(micros(start))
        .bind(micros(end))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(aggregate_from_row).collect()
    }

    fn usage_maxima_stream(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> BoxStream<'_, StoreResult<UsageAggregate>> {
        // SQLite hands rows over one at a time from its worker thread, which costs more than
        // the query itself for millions of rows; pages of servers come back as one JSON row
        // each instead, in the order of the key. The next page is read while the caller works
        // through the current one.
        let store = SqliteStore {
            pool: self.pool.clone(),
            writer: self.writer.clone(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<StoreResult<Vec<UsageAggregate>>>(2);
        tokio::spawn(async move {
            let mut after = String::new();
            loop {
                let page = store
                    .usage_maxima_page(&after, micros(start), micros(end), MAXIMA_PAGE_SAMPLES)
                    .await;
                let rows = match page {
                    Ok(Some((rows, last))) => {
                        after = last;
                        Ok(rows)
                    }
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let failed = rows.is_err();
                // A closed channel means the caller stopped reading.
                if tx.send(rows).await.is_err() || failed {
                    return;
                }
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|page| (page, rx))
        })
        .map_ok(|rows| futures::stream::iter(rows.into_iter().map(Ok::<_, StoreError>)))
        .try_flatten()
        .boxed()
    }

    async fn usage_latest(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<UsageAggregate>> {
        let rows = sqlx::query(
            "SELECT s.server_uid, s.organization_uid, s.workload_type, s.platform, \
             s.used_count AS used, s.new_count AS new, s.rental_count AS rental \
             FROM usage_samples s JOIN ( \
               SELECT server_uid, organization_uid, workload_type, platform, MAX(sampled_at) AS at \
               FROM usage_samples WHERE sampled_at >= ? AND sampled_at < ? \
               GROUP BY server_uid, organization_uid, workload_type, platform) l \
             ON s.server_uid = l.server_uid AND s.organization_uid = l.organization_uid \
             AND s.workload_type = l.workload_type AND s.platform = l.platform AND s.sampled_at = l.at \
             ORDER BY s.server_uid, s.organization_uid, s.workload_type, s.platform",
        )
        .bind(micros(start))
        .bind(micros(end))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(aggregate_from_row).collect()
    }

    async fn weights(&self) -> StoreResult<Vec<WeightRow>> {
        let rows =
            sqlx::query("SELECT * FROM points_weights ORDER BY product, workload_type, edition")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(WeightRow {
                    product: r.try_get("product")?,
                    edition: r.try_get("edition")?,
                    workload_type: r.try_get("workload_type")?,
                    weight: r.try_get("weight")?,
                })
            })
            .collect()
    }

    async fn set_weight(&self, row: &WeightRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO points_weights (product, edition, workload_type, weight) VALUES (?, ?, ?, ?) \
             ON CONFLICT (product, edition, workload_type) DO UPDATE SET weight = excluded.weight",
        )
        .bind(&row.product)
        .bind(&row.edition)
        .bind(&row.workload_type)
        .bind(row.weight)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn seed_weights(&self, rows: &[WeightRow]) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let mut n = 0;
        for row in rows {
            n += sqlx::query(
                "INSERT INTO points_weights (product, edition, workload_type, weight) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (product, edition, workload_type) DO NOTHING",
            )
            .bind(&row.product)
            .bind(&row.edition)
            .bind(&row.workload_type)
            .bind(row.weight)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn report_id_for(&self, owner_uid: Uuid, month: &str) -> StoreResult<i64> {
        sqlx::query("INSERT INTO report_ids (owner_uid, month) VALUES (?, ?) ON CONFLICT (owner_uid, month) DO NOTHING")
            .bind(owner_uid.to_string())
            .bind(month)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT id FROM report_ids WHERE owner_uid = ? AND month = ?")
                .bind(owner_uid.to_string())
                .bind(month)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn write_report(&self, report: &ReportRecord) -> StoreResult<ReportWrite> {
        self.store_report(report, report.lines.as_deref(), None)
            .await
    }

    async fn stage_report_lines(
        &self,
        report_id: i64,
        batch: i64,
        seq: i64,
        body: &[u8],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO report_line_chunks (report_id, batch, seq, body) VALUES (?, ?, ?, ?)",
        )
        .bind(report_id)
        .bind(batch)
        .bind(seq)
        .bind(body)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn write_report_staged(
        &self,
        report: &ReportRecord,
        batch: i64,
        order: &[i64],
    ) -> StoreResult<ReportWrite> {
        self.store_report(report, None, Some((batch, chunk_order_text(order))))
            .await
    }

    async fn report_line_chunks(&self, id: i64) -> StoreResult<Option<ReportLineChunks>> {
        let row: Option<(Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT line_batch, line_chunks FROM reports WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((Some(batch), Some(order))) => Ok(Some(ReportLineChunks {
                batch,
                order: parse_chunk_order(&order)?,
            })),
            _ => Ok(None),
        }
    }

    async fn report_line_chunk(
        &self,
        id: i64,
        batch: i64,
        seq: i64,
    ) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM report_line_chunks WHERE report_id = ? AND batch = ? AND seq = ?",
        )
        .bind(id)
        .bind(batch)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn report(&self, id: i64) -> StoreResult<Option<ReportRecord>> {
        sqlx::query("SELECT id, owner_uid, month, status, generated_at, approved_at, document FROM reports WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(report_from_row)
            .transpose()
    }

    async fn report_lines(&self, id: i64) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, Option<String>>("SELECT lines FROM reports WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    async fn reports(&self) -> StoreResult<Vec<ReportRecord>> {
        sqlx::query("SELECT id, owner_uid, month, status, generated_at, approved_at, document FROM reports ORDER BY month DESC, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(report_from_row)
            .collect()
    }

    async fn transition_report(
        &self,
        id: i64,
        from: ReportStatus,
        to: ReportStatus,
        document: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let approved_at = (to == ReportStatus::Approved).then_some(micros(at));
        let done = sqlx::query(
            "UPDATE reports SET status = ?, document = ?, approved_at = COALESCE(?, approved_at) \
             WHERE id = ? AND status = ?",
        )
        .bind(to.as_str())
        .bind(document.to_string())
        .bind(approved_at)
        .bind(id)
        .bind(from.as_str())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn report_auto_approve(&self, owner_uid: Uuid) -> StoreResult<Option<bool>> {
        Ok(
            sqlx::query_scalar("SELECT auto_approve FROM report_settings WHERE owner_uid = ?")
                .bind(owner_uid.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_report_auto_approve(
        &self,
        owner_uid: Uuid,
        auto_approve: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO report_settings (owner_uid, auto_approve) VALUES (?, ?) \
             ON CONFLICT (owner_uid) DO UPDATE SET auto_approve = excluded.auto_approve",
        )
        .bind(owner_uid.to_string())
        .bind(auto_approve)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE job_leases.expires_at <= ? OR job_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(micros(until))
        .bind(micros(now))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn aggregate_from_row(row: &SqliteRow) -> StoreResult<UsageAggregate> {
    Ok(UsageAggregate {
        server_uid: uid(row.try_get("server_uid")?)?,
        organization_uid: uid(row.try_get("organization_uid")?)?,
        workload_type: row.try_get("workload_type")?,
        platform: row.try_get("platform")?,
        used: row.try_get("used")?,
        new: row.try_get("new")?,
        rental: row.try_get("rental")?,
    })
}

fn report_from_row(row: &SqliteRow) -> StoreResult<ReportRecord> {
    let status: String = row.try_get("status")?;
    let document: String = row.try_get("document")?;
    let approved: Option<i64> = row.try_get("approved_at")?;
    Ok(ReportRecord {
        id: row.try_get("id")?,
        owner_uid: uid(row.try_get("owner_uid")?)?,
        month: row.try_get("month")?,
        status: ReportStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("report status {status:?}")))?,
        generated_at: from_micros(row.try_get("generated_at")?)?,
        approved_at: approved.map(from_micros).transpose()?,
        document: serde_json::from_str(&document)
            .map_err(|e| StoreError::Corrupt(format!("report document: {e}")))?,
        lines: None,
    })
}

fn api_key_from_row(row: &SqliteRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: uid(row.try_get("id")?)?,
        digest: row.try_get("digest")?,
        user_uid: uid(row.try_get("user_uid")?)?,
        description: row.try_get("description")?,
        read_only: row.try_get("read_only")?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

fn server_from_row(row: &SqliteRow) -> StoreResult<ManagedServer> {
    let kind: String = row.try_get("kind")?;
    let agent: Option<String> = row.try_get("agent_uid")?;
    let seen: Option<i64> = row.try_get("last_seen_at")?;
    let reported: String = row.try_get("reported")?;
    Ok(ManagedServer {
        uid: uid(row.try_get("uid")?)?,
        kind: TargetKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("server kind {kind:?}")))?,
        name: row.try_get("name")?,
        organization_uid: uid(row.try_get("organization_uid")?)?,
        agent_uid: agent.as_deref().map(uid).transpose()?,
        created_at: from_micros(row.try_get("created_at")?)?,
        last_seen_at: seen.map(from_micros).transpose()?,
        reported: serde_json::from_str(&reported)
            .map_err(|e| StoreError::Corrupt(format!("server report: {e}")))?,
    })
}

fn slot_from_row(row: &SqliteRow) -> StoreResult<LicenseSlot> {
    let kind: String = row.try_get("kind")?;
    let document: String = row.try_get("document")?;
    Ok(LicenseSlot {
        target_uid: uid(row.try_get("target_uid")?)?,
        kind: TargetKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("slot kind {kind:?}")))?,
        document: serde_json::from_str(&document)
            .map_err(|e| StoreError::Corrupt(format!("license slot: {e}")))?,
        revision: row.try_get("revision")?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
    })
}

fn agent_from_row(row: &SqliteRow) -> StoreResult<Agent> {
    let seen: Option<i64> = row.try_get("last_seen_at")?;
    Ok(Agent {
        uid: uid(row.try_get("uid")?)?,
        organization_uid: uid(row.try_get("organization_uid")?)?,
        name: row.try_get("name")?,
        token_digest: row.try_get("token_digest")?,
        created_at: from_micros(row.try_get("created_at")?)?,
        last_seen_at: seen.map(from_micros).transpose()?,
    })
}

/// Maps unique and foreign-key violations to [`StoreError`] variants callers can act on.
pub(crate) fn map_insert(result: Result<impl Sized, sqlx::Error>, what: &str) -> StoreResult<()> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Conflict(format!("{what} already exists")))
        }
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(StoreError::NotFound(
            format!("{what} refers to a missing record"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Bumps the inventory generation and logs which targets the change touched, inside the
/// caller's transaction; returns the new generation.
async fn bump_inventory(conn: &mut sqlx::SqliteConnection, targets: &[Uuid]) -> StoreResult<i64> {
    let generation: i64 = sqlx::query_scalar(
        "UPDATE inventory_generation SET generation = generation + 1 WHERE id = 1 \
         RETURNING generation",
    )
    .fetch_one(&mut *conn)
    .await?;
    for &t in targets {
        sqlx::query(
            "INSERT INTO inventory_changes (generation, target_uid) VALUES (?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(generation)
        .bind(t.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(generation)
}

/// `uids` as a JSON array of strings, for `json_each(?)`.
fn json_uid_list(uids: &[Uuid]) -> String {
    let quoted: Vec<String> = uids.iter().map(|u| format!("\"{u}\"")).collect();
    format!("[{}]", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_of_maxima_and_servers_read_the_same_as_one_query() {
        let dir = std::env::temp_dir().join(format!("tallyman-pages-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.join("t.db").display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let now = Utc.timestamp_micros(1_790_000_000_000_000).unwrap();
        let org = Organization {
            uid: Uuid::new_v4(),
            name: "P".into(),
            kind: OrganizationType::Provider,
            parent_uid: None,
            created_at: now,
        };
        store.insert_organization(&org).await.unwrap();
        let servers: Vec<ManagedServer> = (0..9)
            .map(|i| ManagedServer {
                uid: Uuid::new_v4(),
                kind: TargetKind::BackupServer,
                name: format!("s{i}"),
                organization_uid: org.uid,
                agent_uid: None,
                created_at: now,
                last_seen_at: None,
                reported: serde_json::json!({"installationId": format!("i{}", i % 4)}),
            })
            .collect();
        store.insert_servers(&servers).await.unwrap();
        let mut samples = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            // Server 3 only has samples outside the month; server 5 none at all.
            if i == 5 {
                continue;
            }
            for day in 0..(i as i64 % 3 + 1) {
                let at = if i == 3 {
                    now - chrono::Duration::days(40)
                } else {
                    now
                };
                for (wt, platform) in [("VBR_VM", "vSphere"), ("VBR_VM", "Hyper_V"), ("A\"b", "x")]
                {
                    samples.push(UsageSample {
                        server_uid: s.uid,
                        organization_uid: if day == 2 { Uuid::nil() } else { org.uid },
                        workload_type: wt.into(),
                        platform: platform.into(),
                        sampled_at: at + chrono::Duration::hours(day),
                        used: day + i as i64,
                        new: 1,
                        rental: 0,
                    });
                }
            }
        }
        store.insert_usage_samples(&samples).await.unwrap();
        let (start, end) = (
            now - chrono::Duration::days(1),
            now + chrono::Duration::days(1),
        );
        let expected = store.usage_maxima(start, end).await.unwrap();
        assert!(expected.len() > 10);
        for page_samples in [1, 2, 3, 7, 1000] {
            let mut after = String::new();
            let mut got = Vec::new();
            while let Some((rows, last)) = store
                .usage_maxima_page(&after, micros(start), micros(end), page_samples)
                .await
                .unwrap()
            {
                got.extend(rows);
                after = last;
            }
            assert_eq!(got, expected, "pages of {page_samples} samples");
        }
        let one = store.report_servers_paged(1000).await.unwrap();
        assert_eq!(one.len(), 9);
        for page in [1, 2, 4] {
            assert_eq!(store.report_servers_paged(page).await.unwrap(), one);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
