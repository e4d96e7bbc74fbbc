//! The five licensed things the Licensing API exposes, and which of them are Backup &
//! Replication installs underneath.
//!
//! The same enum names both the *target* of an operation (the resource a license is installed
//! on) and the product a license file was *issued for*; the install rules in
//! [`crate::install`] decide which combinations fit.

use crate::wire::wire_enum;

wire_enum! {
    /// A licensed product. Wire forms follow the contract's `serverType` enum
    /// (`ServerCurrentLicenseUsageServerType`), the one place the API names products.
    pub enum Product {
        /// A Veeam Cloud Connect site: a Backup & Replication server acting as a VCC provider.
        CloudConnectSite => "CloudConnect",
        /// A managed (remote or hosted) Veeam Backup & Replication server.
        BackupAndReplication => "BackupAndReplication",
        /// A managed Veeam ONE server.
        VOne => "VONE",
        /// A managed Veeam Backup for Microsoft 365 server.
        Vb365 => "VB365",
        /// The console itself (VSPC); its license pays for managed backup agents.
        Console => "VSPC",
    }
}

impl Product {
    /// True for products that are a Backup & Replication install: a Cloud Connect site is a
    /// VBR server with the provider capability, so both share VBR's licensing behaviour
    /// (grace, exceed rules, Enterprise Manager governance).
    pub const fn is_backup_server(self) -> bool {
        matches!(
            self,
            Product::CloudConnectSite | Product::BackupAndReplication
        )
    }

    /// Name of the product itself, for messages ("a Veeam ONE license").
    pub const fn product_name(self) -> &'static str {
        match self {
            Product::CloudConnectSite => "Veeam Cloud Connect",
            Product::BackupAndReplication => "Veeam Backup & Replication",
            Product::VOne => "Veeam ONE",
            Product::Vb365 => "Veeam Backup for Microsoft 365",
            Product::Console => "Service Provider Console",
        }
    }

    /// Name of the licensed thing, for messages ("this Veeam ONE server").
    pub const fn display_name(self) -> &'static str {
        match self {
            Product::CloudConnectSite => "Veeam Cloud Connect site",
            Product::BackupAndReplication => "Veeam Backup & Replication server",
            Product::VOne => "Veeam ONE server",
            Product::Vb365 => "Veeam Backup for Microsoft 365 server",
            Product::Console => "Service Provider Console",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_and_exact_spelling() {
        for p in Product::ALL {
            assert_eq!(Product::from_wire(p.as_wire()), Ok(*p));
        }
        assert_eq!(Product::Console.as_wire(), "VSPC");
        assert_eq!(Product::VOne.as_wire(), "VONE");
        assert!(Product::from_wire("vone").is_err());
        assert!(Product::from_wire("Console").is_err());
    }

    #[test]
    fn only_vbr_and_sites_are_backup_servers() {
        let backup: Vec<_> = Product::ALL
            .iter()
            .filter(|p| p.is_backup_server())
            .collect();
        assert_eq!(
            backup,
            [&Product::CloudConnectSite, &Product::BackupAndReplication]
        );
    }
}
