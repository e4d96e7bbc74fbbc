//! The license resources of sites, Backup & Replication, Veeam ONE and Microsoft 365 servers and
//! the console, as the REST API shows them. The operations themselves live in the application
//! layer (`tallyman_app`); this module holds the handlers (one module per resource), the wire
//! shapes (`resources`), the JSON Patch and upload extractors, and the indexed lists
//! (`list`).

pub mod backup_servers;
pub mod console;
pub mod list;
pub mod ops;
pub mod patch;
pub mod resources;
pub mod sites;
pub mod upload;
pub mod vb365_servers;
pub mod vone_servers;

use tallyman_store::Role;

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
