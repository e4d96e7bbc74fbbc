//! The PostgreSQL backend, for several Tallyman nodes sharing one database. Native UUID,
//! TIMESTAMPTZ and JSONB columns; sqlx takes an advisory lock while migrating, so nodes that
//! start together apply each migration once.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use uuid::Uuid;

use crate::sqlite::{chunk_order_text, map_insert, parse_chunk_order, report_license};
use crate::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and maintenance commands.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn org_from_row(row: &PgRow) -> StoreResult<Organization> {
    let kind: String = row.try_get("kind")?;
    Ok(Organization {
        uid: row.try_get("uid")?,
        name: row.try_get("name")?,
        kind: OrganizationType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("organization kind {kind:?}")))?,
        parent_uid: row.try_get("parent_uid")?,
        created_at: row.try_get("created_at")?,
    })
}

fn user_from_row(row: &PgRow) -> StoreResult<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        uid: row.try_get("uid")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
        organization_uid: row.try_get("organization_uid")?,
        password_hash: row.try_get("password_hash")?,
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
    })
}

fn token_from_row(row: &PgRow) -> StoreResult<TokenRecord> {
    let kind: String = row.try_get("kind")?;
    Ok(TokenRecord {
        digest: row.try_get("digest")?,
        user_uid: row.try_get("user_uid")?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("token kind {kind:?}")))?,
        read_only: row.try_get("read_only")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn action_from_row(row: &PgRow) -> StoreResult<ActionRecord> {
    let status: String = row.try_get("status")?;
    let response_status: Option<i32> = row.try_get("response_status")?;
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
    Ok(ActionRecord {
        id: row.try_get("id")?,
        user_uid: row.try_get("user_uid")?,
        action_name: row.try_get("action_name")?,
        fingerprint: row.try_get("fingerprint")?,
        status: ActionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("action status {status:?}")))?,
        request_body: row.try_get("request_body")?,
        query_parameters: row.try_get("query_parameters")?,
        response,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn aggregate_from_row(row: &PgRow) -> StoreResult<UsageAggregate> {
    Ok(UsageAggregate {
        server_uid: row.try_get("server_uid")?,
        organization_uid: row.try_get("organization_uid")?,
        workload_type: row.try_get("workload_type")?,
        platform: row.try_get("platform")?,
        used: row.try_get("used")?,
        new: row.try_get("new")?,
        rental: row.try_get("rental")?,
    })
}

fn report_from_row(row: &PgRow) -> StoreResult<ReportRecord> {
    let status: String = row.try_get("status")?;
    Ok(ReportRecord {
        id: row.try_get("id")?,
        owner_uid: row.try_get("owner_uid")?,
        month: row.try_get("month")?,
        status: ReportStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("report status {status:?}")))?,
        generated_at: row.try_get("generated_at")?,
        approved_at: row.try_get("approved_at")?,
        document: row.try_get("document")?,
        lines: None,
    })
}

fn api_key_from_row(row: &PgRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        digest: row.try_get("digest")?,
        user_uid: row.try_get("user_uid")?,
        description: row.try_get("description")?,
        read_only: row.try_get("read_only")?,
        created_at: row.try_get("created_at")?,
    })
}

fn server_from_row(row: &PgRow) -> StoreResult<ManagedServer> {
    let kind: String = row.try_get("kind")?;
    Ok(ManagedServer {
        uid: row.try_get("uid")?,
        kind: TargetKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("server kind {kind:?}")))?,
        name: row.try_get("name")?,
        organization_uid: row.try_get("organization_uid")?,
        agent_uid: row.try_get("agent_uid")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        reported: row.try_get("reported")?,
    })
}

fn slot_from_row(row: &PgRow) -> StoreResult<LicenseSlot> {
    let kind: String = row.try_get("kind")?;
    Ok(LicenseSlot {
        target_uid: row.try_get("target_uid")?,
        kind: TargetKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("slot kind {kind:?}")))?,
        document: row.try_get("document")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn agent_from_row(row: &PgRow) -> StoreResult<Agent> {
    Ok(Agent {
        uid: row.try_get("uid")?,
        organization_uid: row.try_get("organization_uid")?,
        name: row.try_get("name")?,
        token_digest: row.try_get("token_digest")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
    })
}

const ACTION_COLUMNS: &str = "user_uid, id, action_name, fingerprint, status, request_body, \
     query_parameters, response_status, response_content_type, response_body, created_at, \
     finished_at, expires_at";

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn installation(&self, now: DateTime<Utc>) -> StoreResult<(Uuid, DateTime<Utc>)> {
        sqlx::query(
            "INSERT INTO installation (id, uid, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT uid, created_at FROM installation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("uid")?, row.try_get("created_at")?))
    }

    async fn insert_organization(&self, org: &Organization) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO organizations (uid, name, kind, parent_uid, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(org.uid)
        .bind(&org.name)
        .bind(org.kind.as_str())
        .bind(org.parent_uid)
        .bind(org.created_at)
        .execute(&self.pool)
        .await;
        map_insert(result, "organization")
    }

    async fn organization(&self, uid: Uuid) -> StoreResult<Option<Organization>> {
        sqlx::query("SELECT * FROM organizations WHERE uid = $1")
            .bind(uid)
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
             enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.uid)
        .bind(&user.name)
        .bind(user.name.to_lowercase())
        .bind(user.role.as_str())
        .bind(user.organization_uid)
        .bind(&user.password_hash)
        .bind(user.enabled)
        .bind(user.created_at)
        .execute(&self.pool)
        .await;
        map_insert(result, "user")
    }

    async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE name_key = $1")
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user(&self, uid: Uuid) -> StoreResult<Option<User>> {
        sqlx::query("SELECT * FROM users WHERE uid = $1")
            .bind(uid)
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

    async fn set_user_password(&self, uid: Uuid, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE uid = $2")
            .bind(password_hash)
            .bind(uid)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {uid}")));
        }
        Ok(())
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO tokens (digest, user_uid, kind, read_only, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.digest)
        .bind(token.user_uid)
        .bind(token.kind.as_str())
        .bind(token.read_only)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await;
        map_insert(result, "token")
    }

    async fn token(&self, digest: &str) -> StoreResult<Option<TokenRecord>> {
        sqlx::query("SELECT * FROM tokens WHERE digest = $1")
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
             WHERE t.digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| Ok((token_from_row(row)?, user_from_row(row)?)))
        .transpose()
    }

    async fn revoke_user_tokens(&self, user_uid: Uuid) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM tokens WHERE user_uid = $1")
            .bind(user_uid)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO api_keys (id, digest, user_uid, description, read_only, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id)
        .bind(&key.digest)
        .bind(key.user_uid)
        .bind(&key.description)
        .bind(key.read_only)
        .bind(key.created_at)
        .execute(&self.pool)
        .await;
        map_insert(result, "API key")
    }

    async fn api_key(&self, digest: &str) -> StoreResult<Option<ApiKey>> {
        sqlx::query("SELECT * FROM api_keys WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    async fn api_keys(&self, user_uid: Uuid) -> StoreResult<Vec<ApiKey>> {
        sqlx::query("SELECT * FROM api_keys WHERE user_uid = $1 ORDER BY created_at, id")
            .bind(user_uid)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    async fn delete_api_key(&self, id: Uuid) -> StoreResult<bool> {
        Ok(sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
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
            "INSERT INTO login_attempts (key, attempts, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
             attempts = CASE WHEN login_attempts.window_start <= $3 THEN 1 \
                             ELSE login_attempts.attempts + 1 END, \
             window_start = CASE WHEN login_attempts.window_start <= $3 \
                                 THEN excluded.window_start \
                                 ELSE login_attempts.window_start END \
             RETURNING attempts::BIGINT AS attempts, window_start",
        )
        .bind(key)
        .bind(now)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get("attempts")?;
        Ok(LoginAttempts {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            window_start: row.try_get("window_start")?,
        })
    }

    async fn release_login_attempt(&self, key: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_attempts SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_attempts WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_login_failures(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM login_attempts WHERE window_start <= $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO health_probe (id, probed_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn begin_action(
        &self,
        action: &ActionRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<BeginAction> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM async_actions WHERE user_uid = $1 AND id = $2 AND expires_at <= $3",
        )
        .bind(action.user_uid)
        .bind(action.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO async_actions ({ACTION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (user_uid, id) DO NOTHING"
        ))
        .bind(action.user_uid)
        .bind(action.id)
        .bind(&action.action_name)
        .bind(&action.fingerprint)
        .bind(action.status.as_str())
        .bind(&action.request_body)
        .bind(&action.query_parameters)
        .bind(action.response.as_ref().map(|r| i32::from(r.status)))
        .bind(
            action
                .response
                .as_ref()
                .and_then(|r| r.content_type.clone()),
        )
        .bind(action.response.as_ref().map(|r| r.body.clone()))
        .bind(action.created_at)
        .bind(action.finished_at)
        .bind(action.expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if inserted == 1 {
            BeginAction::Started
        } else {
            let row = sqlx::query(&format!(
                "SELECT {ACTION_COLUMNS} FROM async_actions WHERE user_uid = $1 AND id = $2"
            ))
            .bind(action.user_uid)
            .bind(action.id)
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
            "UPDATE async_actions SET status = $1, response_status = $2, \
             response_content_type = $3, response_body = $4, finished_at = $5, expires_at = $6 \
             WHERE user_uid = $7 AND id = $8 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(response.map(|r| i32::from(r.status)))
        .bind(response.and_then(|r| r.content_type.as_deref()))
        .bind(response.map(|r| r.body.as_slice()))
        .bind(finished_at)
        .bind(expires_at)
        .bind(user_uid)
        .bind(id)
        .execute(&self.pool)
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
             WHERE user_uid = $1 AND id = $2 AND expires_at > $3"
        ))
        .bind(user_uid)
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(action_from_row)
        .transpose()
    }

    async fn actions(&self, user_uid: Uuid, now: DateTime<Utc>) -> StoreResult<Vec<ActionRecord>> {
        sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM async_actions \
             WHERE user_uid = $1 AND expires_at > $2 ORDER BY created_at, id"
        ))
        .bind(user_uid)
        .bind(now)
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
            "UPDATE async_actions SET status = 'canceled', finished_at = $1, expires_at = $2 \
             WHERE user_uid = $3 AND id = $4 AND status = 'running' AND expires_at > $1",
        )
        .bind(now)
        .bind(expires_at)
        .bind(user_uid)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn clear_action_result(&self, user_uid: Uuid, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE async_actions SET response_body = NULL, response_content_type = NULL, \
             response_status = NULL WHERE user_uid = $1 AND id = $2 AND status <> 'running'",
        )
        .bind(user_uid)
        .bind(id)
        .execute(&self.pool)
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
            "UPDATE async_actions SET request_body = $1, query_parameters = $2 \
             WHERE user_uid = $3 AND id = $4",
        )
        .bind(request_body)
        .bind(query_parameters)
        .bind(user_uid)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired_actions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM async_actions WHERE expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
    async fn insert_server(&self, server: &ManagedServer) -> StoreResult<()> {
        self.insert_servers(std::slice::from_ref(server)).await
    }

    async fn insert_servers(&self, servers: &[ManagedServer]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for server in servers {
            let result = sqlx::query(
                "INSERT INTO managed_servers (uid, kind, name, organization_uid, agent_uid, \
                 created_at, last_seen_at, reported) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(server.uid)
            .bind(server.kind.as_str())
            .bind(&server.name)
            .bind(server.organization_uid)
            .bind(server.agent_uid)
            .bind(server.created_at)
            .bind(server.last_seen_at)
            .bind(&server.reported)
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
        sqlx::query("SELECT * FROM managed_servers WHERE uid = $1")
            .bind(uid_)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(server_from_row)
            .transpose()
    }

    async fn servers(&self, kind: Option<TargetKind>) -> StoreResult<Vec<ManagedServer>> {
        let rows = match kind {
            Some(k) => {
                sqlx::query("SELECT * FROM managed_servers WHERE kind = $1 ORDER BY uid")
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
        // Only the fields the report reads: never the whole reported document or license files.
        sqlx::query(
            "SELECT s.uid, s.kind, s.name, s.organization_uid, s.created_at, \
             CASE WHEN jsonb_typeof(s.reported -> 'installationId') = 'string' \
               THEN s.reported ->> 'installationId' END AS installation_id, \
             CASE WHEN jsonb_typeof(s.reported -> 'productVersion') = 'string' \
               THEN s.reported ->> 'productVersion' END AS product_version, \
             CASE WHEN jsonb_typeof(p.f -> 'licenseId') = 'string' \
               THEN p.f ->> 'licenseId' END AS license_id, \
             CASE WHEN jsonb_typeof(p.f -> 'claims' -> 'supportId') = 'string' \
               THEN p.f -> 'claims' ->> 'supportId' END AS support_id, \
             CASE WHEN jsonb_typeof(p.f -> 'claims' -> 'edition') = 'string' \
               THEN p.f -> 'claims' ->> 'edition' END AS edition, \
             CASE WHEN jsonb_typeof(p.f -> 'claims' -> 'company') = 'string' \
               THEN p.f -> 'claims' ->> 'company' END AS company \
             FROM managed_servers s \
             LEFT JOIN license_slots l ON l.target_uid = s.uid \
             LEFT JOIN LATERAL ( \
               SELECT e.value AS f FROM jsonb_array_elements( \
                 CASE WHEN jsonb_typeof(l.document -> 'files') = 'array' \
                   THEN l.document -> 'files' ELSE '[]'::jsonb END) WITH ORDINALITY AS e(value, n) \
               ORDER BY COALESCE(jsonb_typeof(e.value -> 'claims' -> 'sectionTypes') = 'array' \
                 AND (e.value -> 'claims' -> 'sectionTypes') @> '[\"Instance\"]'::jsonb, false) DESC, e.n \
               LIMIT 1) p ON true \
             ORDER BY s.uid",
        )
        // Rows are converted as they arrive: a million database rows are never held at once.
        .fetch(&self.pool)
        .map(|row| {
            let row = row?;
                let kind: String = row.try_get("kind")?;
                Ok(ReportServer {
                    uid: row.try_get("uid")?,
                    kind: TargetKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("server kind {kind:?}")))?,
                    name: row.try_get("name")?,
                    organization_uid: row.try_get("organization_uid")?,
                    created_at: row.try_get("created_at")?,
                    installation_id: row.try_get("installation_id")?,
                    product_version: row.try_get("product_version")?,
                    license: report_license(
                        row.try_get("license_id")?,
                        row.try_get("support_id")?,
                        row.try_get("edition")?,
                        row.try_get("company")?,
                    ),
                })
            })
        .try_collect()
        .await
    }

    async fn record_server_report(
        &self,
        uid_: Uuid,
        reported: &serde_json::Value,
        seen_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE managed_servers SET reported = $1, last_seen_at = $2 WHERE uid = $3",
        )
        .bind(reported)
        .bind(seen_at)
        .bind(uid_)
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
        let targets: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT target_uid FROM inventory_changes \
             WHERE generation > $1 AND generation <= $2",
        )
        .bind(after)
        .bind(generation)
        .fetch_all(&mut *tx)
        .await?;
        Ok(InventoryChanges {
            generation,
            targets: Some(targets),
        })
    }

    async fn prune_inventory_changes(&self, keep: i64) -> StoreResult<u64> {
        Ok(sqlx::query(
            "DELETE FROM inventory_changes WHERE generation <= \
             (SELECT generation FROM inventory_generation WHERE id = 1) - $1",
        )
        .bind(keep)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn targets_page(
        &self,
        kind: TargetKind,
        after: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<Vec<(ManagedServer, Option<LicenseSlotText>)>> {
        sqlx::query(
            "SELECT s.*, l.document::text AS slot_document, l.revision AS slot_revision, \
             l.updated_at AS slot_updated_at \
             FROM managed_servers s LEFT JOIN license_slots l ON l.target_uid = s.uid \
             WHERE s.kind = $1 AND s.uid > $2 ORDER BY s.uid LIMIT $3",
        )
        .bind(kind.as_str())
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let server = server_from_row(row)?;
            let revision: Option<i64> = row.try_get("slot_revision")?;
            let slot = match revision {
                Some(revision) => Some(LicenseSlotText {
                    target_uid: server.uid,
                    kind: server.kind,
                    document: row.try_get("slot_document")?,
                    revision,
                    updated_at: row.try_get("slot_updated_at")?,
                }),
                None => None,
            };
            Ok((server, slot))
        })
        .collect()
    }

    async fn servers_by_uid(&self, uids: &[Uuid]) -> StoreResult<Vec<ManagedServer>> {
        sqlx::query("SELECT * FROM managed_servers WHERE uid = ANY($1) ORDER BY uid")
            .bind(uids)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(server_from_row)
            .collect()
    }

    async fn license_slots_by_uid(&self, uids: &[Uuid]) -> StoreResult<Vec<LicenseSlotText>> {
        sqlx::query(
            "SELECT target_uid, kind, document::text AS document, revision, updated_at \
             FROM license_slots WHERE target_uid = ANY($1)",
        )
        .bind(uids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(LicenseSlotText {
                target_uid: row.try_get("target_uid")?,
                kind: TargetKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("slot kind {kind:?}")))?,
                document: row.try_get("document")?,
                revision: row.try_get("revision")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
    }

    async fn license_slot(&self, target_uid: Uuid) -> StoreResult<Option<LicenseSlot>> {
        sqlx::query("SELECT * FROM license_slots WHERE target_uid = $1")
            .bind(target_uid)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(slot_from_row)
            .transpose()
    }

    async fn license_slots(&self, kind: TargetKind) -> StoreResult<Vec<LicenseSlot>> {
        sqlx::query("SELECT * FROM license_slots WHERE kind = $1")
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
        Ok(sqlx::query_as(
            "SELECT target_uid, revision, updated_at FROM license_slots WHERE kind = $1",
        )
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn save_license_slot(
        &self,
        slot: &LicenseSlot,
        expected_revision: Option<i64>,
        event: &LicenseEvent,
    ) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        let document = &slot.document;
        let target = slot.target_uid;
        let (written, revision) = match expected_revision {
            None => {
                let n = sqlx::query(
                    "INSERT INTO license_slots (target_uid, kind, document, revision, updated_at) \
                     VALUES ($1, $2, $3, 1, $4) ON CONFLICT (target_uid) DO NOTHING",
                )
                .bind(target)
                .bind(slot.kind.as_str())
                .bind(document)
                .bind(slot.updated_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                (n, 1)
            }
            Some(expected) => {
                let n = sqlx::query(
                    "UPDATE license_slots SET document = $1, revision = revision + 1, \
                     updated_at = $2 WHERE target_uid = $3 AND revision = $4",
                )
                .bind(document)
                .bind(slot.updated_at)
                .bind(target)
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
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.target_uid)
        .bind(event.at)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.detail)
        .execute(&mut *tx)
        .await?;
        bump_inventory(&mut tx, &[slot.target_uid]).await?;
        tx.commit().await?;
        Ok(revision)
    }

    async fn license_events(&self, target_uid: Uuid) -> StoreResult<Vec<LicenseEvent>> {
        let rows = sqlx::query("SELECT * FROM license_events WHERE target_uid = $1 ORDER BY id")
            .bind(target_uid)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LicenseEvent {
                    target_uid: row.try_get("target_uid")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn insert_enrollment_token(&self, token: &EnrollmentToken) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO enrollment_tokens (digest, organization_uid, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.digest)
        .bind(token.organization_uid)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await;
        map_insert(result, "enrollment token")
    }

    async fn enrollment_token(&self, digest: &str) -> StoreResult<Option<EnrollmentToken>> {
        let row = sqlx::query("SELECT * FROM enrollment_tokens WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(EnrollmentToken {
                digest: row.try_get("digest")?,
                organization_uid: row.try_get("organization_uid")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn insert_agent(&self, agent: &Agent) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO agents (uid, organization_uid, name, token_digest, created_at, \
             last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(agent.uid)
        .bind(agent.organization_uid)
        .bind(&agent.name)
        .bind(&agent.token_digest)
        .bind(agent.created_at)
        .bind(agent.last_seen_at)
        .execute(&self.pool)
        .await;
        map_insert(result, "agent")
    }

    async fn agent_by_token(&self, digest: &str) -> StoreResult<Option<Agent>> {
        sqlx::query("SELECT * FROM agents WHERE token_digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(agent_from_row)
            .transpose()
    }

    async fn touch_agent(&self, uid_: Uuid, seen_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE uid = $2")
            .bind(seen_at)
            .bind(uid_)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
    async fn insert_usage_samples(&self, samples: &[UsageSample]) -> StoreResult<u64> {
        // Writing first takes the write lock at once (SQLite) and lets the unique key settle
        // races between identical resends (both backends); only a refused row is read back.
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for s in samples {
            let n = sqlx::query(
                "INSERT INTO usage_samples (server_uid, organization_uid, workload_type, platform, \
                 sampled_at, used_count, new_count, rental_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (server_uid, organization_uid, workload_type, platform, sampled_at) DO NOTHING",
            )
            .bind(s.server_uid)
            .bind(s.organization_uid)
            .bind(&s.workload_type)
            .bind(&s.platform)
            .bind(s.sampled_at)
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
                "SELECT used_count, new_count, rental_count FROM usage_samples WHERE server_uid = $1 \
                 AND organization_uid = $2 AND workload_type = $3 AND platform = $4 AND sampled_at = $5",
            )
            .bind(s.server_uid)
            .bind(s.organization_uid)
            .bind(&s.workload_type)
            .bind(&s.platform)
            .bind(s.sampled_at)
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
             WHERE sampled_at >= $1 AND sampled_at < $2 \
             GROUP BY server_uid, organization_uid, workload_type, platform \
             ORDER BY server_uid, organization_uid, workload_type, platform",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(aggregate_from_row).collect()
    }

    fn usage_maxima_stream(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> BoxStream<'_, StoreResult<UsageAggregate>> {
        sqlx::query(
            "SELECT server_uid, organization_uid, workload_type, platform, MAX(used_count) AS used, \
             MAX(new_count) AS new, MAX(rental_count) AS rental FROM usage_samples \
             WHERE sampled_at >= $1 AND sampled_at < $2 \
             GROUP BY server_uid, organization_uid, workload_type, platform \
             ORDER BY server_uid, organization_uid, workload_type, platform",
        )
        .bind(start)
        .bind(end)
        .fetch(&self.pool)
        .map(|row| aggregate_from_row(&row?))
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
               FROM usage_samples WHERE sampled_at >= $1 AND sampled_at < $2 \
               GROUP BY server_uid, organization_uid, workload_type, platform) l \
             ON s.server_uid = l.server_uid AND s.organization_uid = l.organization_uid \
             AND s.workload_type = l.workload_type AND s.platform = l.platform AND s.sampled_at = l.at \
             ORDER BY s.server_uid, s.organization_uid, s.workload_type, s.platform",
        )
        .bind(start)
        .bind(end)
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
            "INSERT INTO points_weights (product, edition, workload_type, weight) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (product, edition, workload_type) DO UPDATE SET weight = excluded.weight",
        )
        .bind(&row.product)
        .bind(&row.edition)
        .bind(&row.workload_type)
        .bind(row.weight)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn seed_weights(&self, rows: &[WeightRow]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for row in rows {
            n += sqlx::query(
                "INSERT INTO points_weights (product, edition, workload_type, weight) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (product, edition, workload_type) DO NOTHING",
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
        sqlx::query("INSERT INTO report_ids (owner_uid, month) VALUES ($1, $2) ON CONFLICT (owner_uid, month) DO NOTHING")
            .bind(owner_uid)
            .bind(month)
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT id FROM report_ids WHERE owner_uid = $1 AND month = $2")
                .bind(owner_uid)
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
            "INSERT INTO report_line_chunks (report_id, batch, seq, body) VALUES ($1, $2, $3, $4)",
        )
        .bind(report_id)
        .bind(batch)
        .bind(seq)
        .bind(body)
        .execute(&self.pool)
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
            sqlx::query_as("SELECT line_batch, line_chunks FROM reports WHERE id = $1")
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
            "SELECT body FROM report_line_chunks WHERE report_id = $1 AND batch = $2 AND seq = $3",
        )
        .bind(id)
        .bind(batch)
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn report(&self, id: i64) -> StoreResult<Option<ReportRecord>> {
        sqlx::query("SELECT id, owner_uid, month, status, generated_at, approved_at, document FROM reports WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(report_from_row)
            .transpose()
    }

    async fn report_lines(&self, id: i64) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, Option<String>>("SELECT lines FROM reports WHERE id = $1")
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
        let approved_at = (to == ReportStatus::Approved).then_some(at);
        let done = sqlx::query(
            "UPDATE reports SET status = $1, document = $2, approved_at = COALESCE($3, approved_at) \
             WHERE id = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(document)
        .bind(approved_at)
        .bind(id)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn report_auto_approve(&self, owner_uid: Uuid) -> StoreResult<Option<bool>> {
        Ok(
            sqlx::query_scalar("SELECT auto_approve FROM report_settings WHERE owner_uid = $1")
                .bind(owner_uid)
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
            "INSERT INTO report_settings (owner_uid, auto_approve) VALUES ($1, $2) \
             ON CONFLICT (owner_uid) DO UPDATE SET auto_approve = excluded.auto_approve",
        )
        .bind(owner_uid)
        .bind(auto_approve)
        .execute(&self.pool)
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
            "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE job_leases.expires_at <= $4 OR job_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Bumps the inventory generation and logs which targets the change touched, inside the
/// caller's transaction; returns the new generation.
async fn bump_inventory(conn: &mut sqlx::PgConnection, targets: &[Uuid]) -> StoreResult<i64> {
    let generation: i64 = sqlx::query_scalar(
        "UPDATE inventory_generation SET generation = generation + 1 WHERE id = 1 \
         RETURNING generation",
    )
    .fetch_one(&mut *conn)
    .await?;
    for &t in targets {
        sqlx::query(
            "INSERT INTO inventory_changes (generation, target_uid) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(generation)
        .bind(t)
        .execute(&mut *conn)
        .await?;
    }
    Ok(generation)
}

impl PgStore {
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
        let mut tx = self.pool.begin().await?;
        // Replace an unapproved report, else create one, else it is approved: each step is a
        // single statement, so concurrent generations of one month settle on the unique key.
        let replaced = sqlx::query(
            "UPDATE reports SET status = $1, generated_at = $2, approved_at = $3, document = $4, \
             lines = $7, line_batch = $8, line_chunks = $9 \
             WHERE owner_uid = $5 AND month = $6 AND status <> 'Approved'",
        )
        .bind(report.status.as_str())
        .bind(report.generated_at)
        .bind(report.approved_at)
        .bind(&report.document)
        .bind(report.owner_uid)
        .bind(&report.month)
        .bind(lines)
        .bind(batch)
        .bind(order.as_deref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if replaced == 1 {
            ReportWrite::Replaced(report.id)
        } else {
            let created = sqlx::query(
                "INSERT INTO reports (id, owner_uid, month, status, generated_at, approved_at, document, \
                 lines, line_batch, line_chunks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(report.id)
            .bind(report.owner_uid)
            .bind(&report.month)
            .bind(report.status.as_str())
            .bind(report.generated_at)
            .bind(report.approved_at)
            .bind(&report.document)
            .bind(lines)
            .bind(batch)
            .bind(order.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if created == 1 {
                ReportWrite::Created(report.id)
            } else {
                let id: i64 = sqlx::query_scalar(
                    "SELECT id FROM reports WHERE owner_uid = $1 AND month = $2",
                )
                .bind(report.owner_uid)
                .bind(&report.month)
                .fetch_one(&mut *tx)
                .await?;
                ReportWrite::KeptApproved(id)
            }
        };
        sqlx::query(
            "DELETE FROM report_line_chunks WHERE report_id = $1 \
             AND batch IS DISTINCT FROM (SELECT line_batch FROM reports WHERE id = $1)",
        )
        .bind(report.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }
}
