//! First start: the provider organization, the default points weights and the `admin` portal
//! administrator. Safe when
//! several nodes start at once on one PostgreSQL: the database's unique rules pick one winner.

use std::sync::Arc;

use chrono::Utc;
use rand::distributions::Alphanumeric;
use rand::Rng;
use tallyman_app::credentials::hash_password;
use tallyman_store::{Organization, OrganizationType, Role, Store, StoreError, User};
use uuid::Uuid;

use crate::config::secret_env;

pub const ADMIN_USER: &str = "admin";

/// Creates the provider organization if the database has none.
pub async fn ensure_provider(
    store: &Arc<dyn Store>,
    provider_name: &str,
) -> anyhow::Result<Organization> {
    Ok(match store.provider().await? {
        Some(p) => p,
        None => {
            let org = Organization {
                uid: Uuid::new_v4(),
                name: provider_name.to_string(),
                kind: OrganizationType::Provider,
                parent_uid: None,
                created_at: Utc::now(),
            };
            match store.insert_organization(&org).await {
                Ok(()) => {
                    tracing::info!(uid = %org.uid, name = %org.name, "created the provider organization");
                    org
                }
                // Another node won the race.
                Err(StoreError::Conflict(_)) => store
                    .provider()
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("provider vanished during start-up"))?,
                Err(e) => return Err(e.into()),
            }
        }
    })
}

/// Creates the provider and, on the first start of `serve`, the `admin` user.
pub async fn ensure_provider_and_admin(
    store: &Arc<dyn Store>,
    provider_name: &str,
) -> anyhow::Result<()> {
    let provider = ensure_provider(store, provider_name).await?;
    // The points weights are data an operator edits; start from the defaults.
    tallyman_app::reports::seed_default_weights(store).await?;
    // Only when no portal administrator exists, so users added from the command line before
    // the first start do not prevent it.
    if store
        .users()
        .await?
        .iter()
        .any(|u| u.role == Role::PortalAdministrator)
    {
        return Ok(());
    }
    let (password, generated) = match secret_env("TALLYMAN_ADMIN_PASSWORD")? {
        Some(p) => (p, false),
        None => (
            rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(20)
                .map(char::from)
                .collect::<String>(),
            true,
        ),
    };
    let user = User {
        uid: Uuid::new_v4(),
        name: ADMIN_USER.into(),
        role: Role::PortalAdministrator,
        organization_uid: provider.uid,
        password_hash: hash_password(&password)?,
        enabled: true,
        created_at: Utc::now(),
    };
    match store.insert_user(&user).await {
        Ok(()) => {
            tracing::info!("created the portal administrator '{ADMIN_USER}'");
            if generated {
                // Printed once, straight to the terminal and never through the log.
                println!();
                println!("  Tallyman created the user '{ADMIN_USER}' with the password:");
                println!();
                println!("      {password}");
                println!();
                println!("  It is shown only this once. Set TALLYMAN_ADMIN_PASSWORD before the");
                println!("  first start to choose it yourself.");
                println!();
            }
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
