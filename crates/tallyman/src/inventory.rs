//! Manual inventory: organizations and managed servers added from the command line (agents
//! register servers themselves through the agent API).

use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{Duration, Utc};
use tallyman_store::{
    EnrollmentToken, ManagedServer, Organization, OrganizationType, Store, TargetKind,
};
use uuid::Uuid;

pub async fn add_organization(
    store: &Arc<dyn Store>,
    name: &str,
    kind: &str,
    parent: Option<Uuid>,
) -> anyhow::Result<Organization> {
    let kind = match OrganizationType::parse(kind) {
        Some(OrganizationType::Provider) => {
            bail!("there is exactly one provider; add a Reseller or Company")
        }
        Some(k) => k,
        None => bail!("unknown organization type {kind:?}; use Reseller or Company"),
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("the organization name must not be empty");
    }
    let provider = store
        .provider()
        .await?
        .context("the provider organization is missing")?;
    let parent = match parent {
        Some(uid) => store
            .organization(uid)
            .await?
            .with_context(|| format!("organization {uid} does not exist"))?,
        None => provider,
    };
    match (kind, parent.kind) {
        (OrganizationType::Reseller, OrganizationType::Provider) => {}
        (OrganizationType::Company, OrganizationType::Provider | OrganizationType::Reseller) => {}
        (k, p) => bail!("a {} cannot be managed by a {}", k.as_str(), p.as_str()),
    }
    let org = Organization {
        uid: Uuid::new_v4(),
        name: name.to_string(),
        kind,
        parent_uid: Some(parent.uid),
        created_at: Utc::now(),
    };
    store.insert_organization(&org).await?;
    Ok(org)
}

/// Accepts the kind names a provider would type.
pub fn parse_kind(kind: &str) -> Option<TargetKind> {
    match kind.to_ascii_lowercase().replace(['_', ' '], "-").as_str() {
        "cloud-connect-site" | "cloud-connect" | "site" | "cloudconnectsite" => {
            Some(TargetKind::CloudConnectSite)
        }
        "backup-server" | "backup-and-replication" | "vbr" | "backupserver" => {
            Some(TargetKind::BackupServer)
        }
        "vone-server" | "vone" | "veeam-one" | "voneserver" => Some(TargetKind::VOneServer),
        "vb365-server" | "vb365" | "vb365server" => Some(TargetKind::Vb365Server),
        _ => None,
    }
}

pub async fn add_server(
    store: &Arc<dyn Store>,
    name: &str,
    kind: &str,
    organization: Option<Uuid>,
) -> anyhow::Result<ManagedServer> {
    let kind = parse_kind(kind).with_context(|| {
        format!("unknown server kind {kind:?}; use cloud-connect-site, backup-server, vone-server or vb365-server")
    })?;
    let org = match organization {
        Some(uid) => store
            .organization(uid)
            .await?
            .with_context(|| format!("organization {uid} does not exist"))?,
        None => store
            .provider()
            .await?
            .context("the provider organization is missing")?,
    };
    if kind == TargetKind::CloudConnectSite && org.kind != OrganizationType::Provider {
        bail!("Cloud Connect sites belong to the provider");
    }
    let server = ManagedServer {
        uid: Uuid::new_v4(),
        kind,
        name: name.trim().to_string(),
        organization_uid: org.uid,
        agent_uid: None,
        created_at: Utc::now(),
        last_seen_at: None,
        reported: serde_json::Value::Null,
    };
    store.insert_server(&server).await?;
    Ok(server)
}

/// Longest lifetime an enrollment token may be given.
pub const MAX_ENROLL_TOKEN_DAYS: u32 = 3650;

/// A fresh enrollment token for an organization's agents. The returned text is the only copy of
/// the token; the store keeps its SHA-256 digest.
pub async fn create_enrollment_token(
    store: &Arc<dyn Store>,
    organization: Uuid,
    valid_days: u32,
) -> anyhow::Result<(String, EnrollmentToken)> {
    if valid_days == 0 || valid_days > MAX_ENROLL_TOKEN_DAYS {
        bail!("--valid-days must be between 1 and {MAX_ENROLL_TOKEN_DAYS}");
    }
    let org = store
        .organization(organization)
        .await?
        .with_context(|| format!("organization {organization} does not exist"))?;
    let token = tallyman_app::credentials::new_token();
    let now = Utc::now();
    let record = EnrollmentToken {
        digest: tallyman_app::credentials::token_digest(&token),
        organization_uid: org.uid,
        created_at: now,
        expires_at: now + Duration::days(i64::from(valid_days)),
    };
    store.insert_enrollment_token(&record).await?;
    Ok((token, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallyman_store::testing::{Backend, TestDatabase};

    #[tokio::test]
    async fn enrollment_tokens_are_stored_as_digests() {
        let db = TestDatabase::create(Backend::Sqlite).await;
        let store = tallyman_store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        crate::bootstrap::ensure_provider(&store, "My Company")
            .await
            .unwrap();
        let org = add_organization(&store, "Northwind", "Company", None)
            .await
            .unwrap();

        let (token, record) = create_enrollment_token(&store, org.uid, 7).await.unwrap();
        assert_eq!(record.organization_uid, org.uid);
        assert_eq!(record.expires_at - record.created_at, Duration::days(7));
        assert_ne!(record.digest, token);
        let stored = store
            .enrollment_token(&tallyman_app::credentials::token_digest(&token))
            .await
            .unwrap()
            .expect("stored under its digest");
        assert_eq!(stored.organization_uid, org.uid);
        assert!(store.enrollment_token(&token).await.unwrap().is_none());

        assert!(create_enrollment_token(&store, Uuid::new_v4(), 7)
            .await
            .is_err());
        assert!(create_enrollment_token(&store, org.uid, 0).await.is_err());
    }
}
