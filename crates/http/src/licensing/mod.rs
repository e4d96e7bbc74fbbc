//! The license resources of sites, Backup & Replication, Veeam ONE and Microsoft 365 servers and
//! the console, as the REST API shows them. The operations themselves live in the application
//! layer (`tallyman_app`); this module holds the handlers (one module per resource), the wire
//! shapes (`resources`), the JSON Patch and upload extractors, and the per-kind cache of
//! rendered lists.

pub mod backup_servers;
pub mod console;
pub mod ops;
pub mod patch;
pub mod resources;
pub mod sites;
pub mod upload;
pub mod vb365_servers;
pub mod vone_servers;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tallyman_store::{Role, TargetKind};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::AppState;

/// Roles the contract admits on site licenses.
pub const SITE_ROLES: &[Role] = &[Role::PortalAdministrator, Role::SiteAdministrator];
/// Roles the contract admits on Backup & Replication, Veeam ONE and Microsoft 365 licenses.
pub const SERVER_ROLES: &[Role] = &[
    Role::PortalAdministrator,
    Role::ServiceProviderGlobalAdministrator,
    Role::ServiceProviderAdministrator,
    Role::SiteAdministrator,
];
/// Roles the contract admits on the console license.
pub const CONSOLE_ROLES: &[Role] = &[Role::PortalAdministrator];

/// Every target of one kind rendered as its resource, with the organization that owns it,
/// reused by later requests until the inventory changes (on any node) or a status could change
/// with time.
pub struct ListView {
    generation: i64,
    valid_until: DateTime<Utc>,
    items: Arc<Vec<(Uuid, Value)>>,
}

/// The rendered list of every target of `kind` (all organizations), from the cache when it is
/// current.
pub async fn rendered_list(
    state: &AppState,
    kind: TargetKind,
) -> ApiResult<Arc<Vec<(Uuid, Value)>>> {
    let generation = state.store.inventory_generation().await?;
    let now = state.clock.now();
    if let Ok(cache) = state.list_cache.lock() {
        if let Some(view) = cache.get(&kind) {
            if view.generation == generation && now < view.valid_until {
                return Ok(view.items.clone());
            }
        }
    }
    // One rebuild at a time; requests that waited find the fresh list in the cache.
    let _rebuilding = state.list_rebuild.lock().await;
    if let Ok(cache) = state.list_cache.lock() {
        if let Some(view) = cache.get(&kind) {
            if view.generation == generation && now < view.valid_until {
                return Ok(view.items.clone());
            }
        }
    }
    let targets = state.targets(kind).await?;
    let mut valid_until = now + chrono::Duration::hours(1);
    let items: Vec<(Uuid, Value)> = targets
        .iter()
        .map(|t| {
            valid_until = valid_until.min(t.next_change(now));
            let org = t.organization().unwrap_or_default();
            (org, resources::render_json(t, now))
        })
        .collect();
    let items = Arc::new(items);
    if let Ok(mut cache) = state.list_cache.lock() {
        cache.insert(
            kind,
            ListView {
                generation,
                valid_until,
                items: items.clone(),
            },
        );
    }
    Ok(items)
}
