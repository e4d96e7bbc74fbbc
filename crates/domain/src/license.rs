//! What a license *is*: its type, status, units, packages, sections and Cloud Connect flag as
//! the contract spells them, and [`LicenseTerms`], the plain facts every rule in this crate
//! reads.
//!
//! `LicenseTerms` is deliberately not a wire shape: it merges the five resources' fields
//! (sites and VBR use `licenseIds[]`, the others `licenseId`; the console calls its units
//! `instances`) into one struct the rules can share.

use chrono::{DateTime, Utc};

use crate::product::Product;
use crate::wire::wire_enum;

wire_enum! {
    /// License type. One enum for all five resources: `Full` and `Promo` exist only in the
    /// console's enum (`ConsoleLicenseType`); [`LicenseType::is_console_only`] says so.
    pub enum LicenseType {
        /// VCSP rental: monthly, billed per point, with a usage-reporting obligation.
        Rental => "Rental",
        /// Term subscription (instances).
        Subscription => "Subscription",
        /// Never expires; only support expires.
        Perpetual => "Perpetual",
        /// Trial; no grace period.
        Evaluation => "Evaluation",
        /// Not for resale (demo/training).
        Nfr => "NFR",
        /// Free product mode; the console does not manage Community servers.
        Community => "Community",
        /// No license on the server or console.
        NotInstalled => "NotInstalled",
        /// The product reported something we cannot classify.
        Unknown => "Unknown",
        /// Console only; semantics undocumented, treated as a paid non-rental license.
        Full => "Full",
        /// Console only; adds instances on top of a primary license.
        Promo => "Promo",
    }
}

impl LicenseType {
    /// `Full` and `Promo` appear only in the console's type enum.
    pub const fn is_console_only(self) -> bool {
        matches!(self, LicenseType::Full | LicenseType::Promo)
    }

    /// Whether the type stands for an actual license (as opposed to Community mode, nothing
    /// installed, or an unclassifiable report).
    pub const fn is_license(self) -> bool {
        !matches!(
            self,
            LicenseType::Community | LicenseType::NotInstalled | LicenseType::Unknown
        )
    }

    /// Evaluation and NFR licenses keep automatic update (and with it weekly usage
    /// reporting) switched on whenever the file carries a license id.
    pub const fn forces_auto_update(self) -> bool {
        matches!(self, LicenseType::Evaluation | LicenseType::Nfr)
    }
}

wire_enum! {
    /// Status of a site, VBR, VONE or VB365 license.
    pub enum LicenseStatus {
        Valid => "Valid",
        Warning => "Warning",
        Error => "Error",
        Expired => "Expired",
        Unlicensed => "Unlicensed",
        Unknown => "Unknown",
    }
}

wire_enum! {
    /// Status of the console license. The console has no `Unlicensed`: a console without a
    /// license reports `Error` with type `NotInstalled`.
    pub enum ConsoleLicenseStatus {
        Valid => "Valid",
        Warning => "Warning",
        Error => "Error",
        Expired => "Expired",
        Unknown => "Unknown",
    }
}

impl ConsoleLicenseStatus {
    /// Maps a general status onto the console enum; `Unlicensed` becomes `Error`.
    pub const fn from_status(status: LicenseStatus) -> Self {
        match status {
            LicenseStatus::Valid => ConsoleLicenseStatus::Valid,
            LicenseStatus::Warning => ConsoleLicenseStatus::Warning,
            LicenseStatus::Error | LicenseStatus::Unlicensed => ConsoleLicenseStatus::Error,
            LicenseStatus::Expired => ConsoleLicenseStatus::Expired,
            LicenseStatus::Unknown => ConsoleLicenseStatus::Unknown,
        }
    }
}

impl From<ConsoleLicenseStatus> for LicenseStatus {
    fn from(status: ConsoleLicenseStatus) -> Self {
        match status {
            ConsoleLicenseStatus::Valid => LicenseStatus::Valid,
            ConsoleLicenseStatus::Warning => LicenseStatus::Warning,
            ConsoleLicenseStatus::Error => LicenseStatus::Error,
            ConsoleLicenseStatus::Expired => LicenseStatus::Expired,
            ConsoleLicenseStatus::Unknown => LicenseStatus::Unknown,
        }
    }
}

wire_enum! {
    /// Outcome of the console's last license update (`lastUpdateStatus`).
    pub enum LastUpdateStatus {
        Success => "Success",
        Warning => "Warning",
        Error => "Error",
        Unknown => "Unknown",
    }
}

wire_enum! {
    /// What one license unit counts: rental licenses count points, the others instances.
    pub enum UnitType {
        Instances => "Instances",
        Points => "Points",
        Unknown => "Unknown",
    }
}

wire_enum! {
    /// Product package. Decides product compatibility (which servers may carry the file) and
    /// whether a socket and an instance license can merge.
    pub enum Package {
        Advanced => "Advanced",
        Backup => "Backup",
        Essentials => "Essentials",
        Foundation => "Foundation",
        None => "None",
        One => "ONE",
        Orchestrator => "Orchestrator",
        Premium => "Premium",
        Starter => "Starter",
        Suite => "Suite",
        Unknown => "Unknown",
    }
}

impl Package {
    /// Packages that license Veeam ONE (ONE itself and the suites that bundle it).
    pub const fn includes_vone(self) -> bool {
        matches!(
            self,
            Package::One
                | Package::Essentials
                | Package::Suite
                | Package::Advanced
                | Package::Premium
        )
    }
}

wire_enum! {
    /// Whether the license lets a Backup & Replication server act as a Cloud Connect provider.
    pub enum CloudConnect {
        /// Full VCC provider capability.
        Yes => "Yes",
        /// No Cloud Connect.
        No => "No",
        /// Cloud Connect for the Enterprise (an enterprise serving its own branches).
        Enterprise => "Enterprise",
        Unknown => "Unknown",
    }
}

wire_enum! {
    /// A section (unit format) of a Backup & Replication license.
    pub enum SectionType {
        /// Per CPU socket of protected hypervisor hosts.
        Socket => "Socket",
        /// Per workload (Veeam Universal License).
        Instance => "Instance",
        /// Both sections (a merged license).
        All => "All",
        Unknown => "Unknown",
    }
}

/// The facts about one license that the rules need, whoever produced them (a parsed license
/// file, or what a managed server reported).
///
/// Counters are `f64` because the contract's units are fractional (rental points like 13.5).
/// `None` means "not reported", which the rules treat as "nothing to check", never as zero.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseTerms {
    /// The product the license was issued for.
    pub product: Product,
    pub license_type: LicenseType,
    /// Free text such as `Enterprise Plus`.
    pub edition: Option<String>,
    pub packages: Vec<Package>,
    pub section_types: Vec<SectionType>,
    pub cloud_connect: CloudConnect,
    pub unit_type: UnitType,
    /// Instances or points the license grants (the console's `instances`).
    pub units: Option<f64>,
    pub used_units: Option<f64>,
    pub sockets: Option<f64>,
    pub used_sockets: Option<f64>,
    /// Per-TB capacity for file-share backup.
    pub capacity: Option<f64>,
    pub used_capacity: Option<f64>,
    /// VB365: user accounts the license grants / protects.
    pub licensed_users: Option<u32>,
    pub protected_users: Option<u32>,
    /// `None` = the license never expires (perpetual).
    pub expiration: Option<DateTime<Utc>>,
    pub support_expiration: Option<DateTime<Utc>>,
    pub auto_update_enabled: bool,
    /// Whether the file carries a license id; without one it cannot be updated automatically.
    pub has_license_id: bool,
    pub licensee_company: Option<String>,
}

impl LicenseTerms {
    /// Terms with the given product and type and every other fact absent or off; fill in the
    /// rest with struct-update syntax.
    pub fn new(product: Product, license_type: LicenseType) -> Self {
        LicenseTerms {
            product,
            license_type,
            edition: None,
            packages: Vec::new(),
            section_types: Vec::new(),
            cloud_connect: CloudConnect::Unknown,
            unit_type: UnitType::Unknown,
            units: None,
            used_units: None,
            sockets: None,
            used_sockets: None,
            capacity: None,
            used_capacity: None,
            licensed_users: None,
            protected_users: None,
            expiration: None,
            support_expiration: None,
            auto_update_enabled: false,
            has_license_id: false,
            licensee_company: None,
        }
    }

    /// Whether the license has a socket section. Without explicit section types, a socket
    /// count is taken as evidence of one.
    pub fn has_socket_section(&self) -> bool {
        if self.section_types.is_empty() {
            return self.sockets.is_some();
        }
        self.section_types
            .iter()
            .any(|s| matches!(s, SectionType::Socket | SectionType::All))
    }

    /// Whether the license has an instance section. Without explicit section types, a unit
    /// count is taken as evidence of one (rental points are instance-style units).
    pub fn has_instance_section(&self) -> bool {
        if self.section_types.is_empty() {
            return self.units.is_some();
        }
        self.section_types
            .iter()
            .any(|s| matches!(s, SectionType::Instance | SectionType::All))
    }

    /// A merged license carries both a socket and an instance section.
    pub fn is_merged(&self) -> bool {
        self.has_socket_section() && self.has_instance_section()
    }

    /// The licensed amount and the used amount of the license's main meter: users for VB365,
    /// units (instances or points) for everything else.
    pub fn unit_meter(&self) -> (Option<f64>, Option<f64>) {
        match self.product {
            Product::Vb365 => (
                self.licensed_users.map(f64::from),
                self.protected_users.map(f64::from),
            ),
            _ => (self.units, self.used_units),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enum_round_trips_through_its_wire_form() {
        fn check<T: Copy + PartialEq + core::fmt::Debug>(
            all: &[T],
            as_wire: fn(T) -> &'static str,
            from_wire: fn(&str) -> Result<T, crate::WireError>,
        ) {
            for v in all {
                assert_eq!(from_wire(as_wire(*v)), Ok(*v));
            }
        }
        check(
            LicenseType::ALL,
            LicenseType::as_wire,
            LicenseType::from_wire,
        );
        check(
            LicenseStatus::ALL,
            LicenseStatus::as_wire,
            LicenseStatus::from_wire,
        );
        check(
            ConsoleLicenseStatus::ALL,
            ConsoleLicenseStatus::as_wire,
            ConsoleLicenseStatus::from_wire,
        );
        check(
            LastUpdateStatus::ALL,
            LastUpdateStatus::as_wire,
            LastUpdateStatus::from_wire,
        );
        check(UnitType::ALL, UnitType::as_wire, UnitType::from_wire);
        check(Package::ALL, Package::as_wire, Package::from_wire);
        check(
            CloudConnect::ALL,
            CloudConnect::as_wire,
            CloudConnect::from_wire,
        );
        check(
            SectionType::ALL,
            SectionType::as_wire,
            SectionType::from_wire,
        );
    }

    #[test]
    fn wire_spellings_match_the_contract_enums() {
        // Sorted exactly as the contract lists them.
        let mut types: Vec<_> = LicenseType::ALL.iter().map(|t| t.as_wire()).collect();
        types.sort_unstable();
        assert_eq!(
            types,
            [
                "Community",
                "Evaluation",
                "Full",
                "NFR",
                "NotInstalled",
                "Perpetual",
                "Promo",
                "Rental",
                "Subscription",
                "Unknown"
            ]
        );
        let mut packages: Vec<_> = Package::ALL.iter().map(|p| p.as_wire()).collect();
        packages.sort_unstable();
        assert_eq!(
            packages,
            [
                "Advanced",
                "Backup",
                "Essentials",
                "Foundation",
                "None",
                "ONE",
                "Orchestrator",
                "Premium",
                "Starter",
                "Suite",
                "Unknown"
            ]
        );
        let mut statuses: Vec<_> = LicenseStatus::ALL.iter().map(|s| s.as_wire()).collect();
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [
                "Error",
                "Expired",
                "Unknown",
                "Unlicensed",
                "Valid",
                "Warning"
            ]
        );
        assert!(ConsoleLicenseStatus::from_wire("Unlicensed").is_err());
    }

    #[test]
    fn parsing_is_case_sensitive_and_names_the_enum() {
        let err = LicenseType::from_wire("nfr").unwrap_err();
        assert_eq!(err.kind, "LicenseType");
        assert_eq!(err.to_string(), "'nfr' is not a valid LicenseType");
        assert!(Package::from_wire("One").is_err());
        assert_eq!("ONE".parse::<Package>(), Ok(Package::One));
    }

    #[test]
    fn console_status_has_no_unlicensed() {
        assert_eq!(
            ConsoleLicenseStatus::from_status(LicenseStatus::Unlicensed),
            ConsoleLicenseStatus::Error
        );
        for s in ConsoleLicenseStatus::ALL {
            assert_eq!(
                ConsoleLicenseStatus::from_status(LicenseStatus::from(*s)),
                *s
            );
        }
    }

    #[test]
    fn sections_from_explicit_types_or_from_counters() {
        let t = LicenseTerms::new(Product::BackupAndReplication, LicenseType::Perpetual);
        assert!(!t.has_socket_section() && !t.has_instance_section());

        let counted = LicenseTerms {
            sockets: Some(4.0),
            ..t.clone()
        };
        assert!(counted.has_socket_section() && !counted.is_merged());

        let all = LicenseTerms {
            section_types: vec![SectionType::All],
            ..t.clone()
        };
        assert!(all.is_merged());

        // Explicit types win over counters.
        let socket_only = LicenseTerms {
            section_types: vec![SectionType::Socket],
            units: Some(10.0),
            ..t
        };
        assert!(!socket_only.has_instance_section());
    }

    #[test]
    fn vb365_meter_counts_users() {
        let t = LicenseTerms {
            licensed_users: Some(50),
            protected_users: Some(61),
            units: Some(1.0),
            ..LicenseTerms::new(Product::Vb365, LicenseType::Rental)
        };
        assert_eq!(t.unit_meter(), (Some(50.0), Some(61.0)));
        let vbr = LicenseTerms {
            units: Some(10.0),
            used_units: Some(2.5),
            ..LicenseTerms::new(Product::BackupAndReplication, LicenseType::Rental)
        };
        assert_eq!(vbr.unit_meter(), (Some(10.0), Some(2.5)));
    }

    #[test]
    fn vone_packages() {
        let vone: Vec<_> = Package::ALL
            .iter()
            .filter(|p| p.includes_vone())
            .map(|p| p.as_wire())
            .collect();
        assert_eq!(vone, ["Advanced", "Essentials", "ONE", "Premium", "Suite"]);
    }
}
