//! Manual inventory: organizations and managed servers added from the command line (agents
//! register servers themselves through the agent API).

use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::Utc;
use tallyman_store::{ManagedServer, Organization, OrganizationType, Store, TargetKind};
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
