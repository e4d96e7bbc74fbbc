//! Removing a license (licensing.md §2.7): which resources allow it, the Backup &
//! Replication `sectionForDelete` rule, and what the server falls back to.

use thiserror::Error;

use crate::license::{LicenseTerms, LicenseType, SectionType, UnitType};
use crate::product::Product;
use crate::wire::wire_enum;

wire_enum! {
    /// `sectionForDelete` query value of `DELETE /licensing/backupServers/{uid}`.
    pub enum DeleteSection {
        /// The socket part of a merged license (or a socket-only license).
        Socket => "Socket",
        /// The instance part of a merged license (or an instance-only license).
        Instance => "Instance",
        /// The whole license.
        All => "All",
    }
}

impl DeleteSection {
    /// The license section this names; `None` for `All`, the whole license.
    pub const fn section_type(self) -> Option<SectionType> {
        match self {
            DeleteSection::Socket => Some(SectionType::Socket),
            DeleteSection::Instance => Some(SectionType::Instance),
            DeleteSection::All => None,
        }
    }
}

impl Default for DeleteSection {
    /// The contract's default.
    fn default() -> Self {
        DeleteSection::All
    }
}

/// What the server carries after the delete.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    /// One part of a merged license was removed; the server keeps running on the other.
    /// `remaining` is provisional until the server re-reports its license.
    PartRemoved { remaining: Box<LicenseTerms> },
    /// The whole Backup & Replication license is gone: the server falls back to Community
    /// Edition, the console stops monitoring it (its data leaves the UI), and for a hosted
    /// server its job-to-company mapping is reset.
    DroppedToCommunity,
    /// The Veeam ONE license is gone; the server is unlicensed.
    Unlicensed,
}

/// Why a delete is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeleteRefusal {
    #[error("Licenses of a {} cannot be deleted; install a different license instead.", target.display_name())]
    NotSupported { target: Product },

    #[error("No license is installed, so there is nothing to delete.")]
    NoLicense,

    #[error(
        "The license has no {} section. Use sectionForDelete=All to remove the whole license.",
        section.as_wire()
    )]
    SectionMissing { section: DeleteSection },

    #[error("A {} license is always removed whole; sectionForDelete applies to backup servers only.", target.display_name())]
    SectionNotSupported { target: Product },
}

/// Decides what deleting `section` (default `All`) of `current` on `target` does.
///
/// Only Backup & Replication and Veeam ONE licenses can be deleted; Veeam ONE only whole.
pub fn plan_delete(
    target: Product,
    current: Option<&LicenseTerms>,
    section: Option<DeleteSection>,
) -> Result<DeleteOutcome, DeleteRefusal> {
    let section = section.unwrap_or_default();
    match target {
        Product::BackupAndReplication => {}
        Product::VOne => {
            if section != DeleteSection::All {
                return Err(DeleteRefusal::SectionNotSupported { target });
            }
        }
        Product::CloudConnectSite | Product::Vb365 | Product::Console => {
            return Err(DeleteRefusal::NotSupported { target })
        }
    }
    let license = current
        .filter(|c| c.license_type.is_license())
        .ok_or(DeleteRefusal::NoLicense)?;
    if target == Product::VOne {
        return Ok(DeleteOutcome::Unlicensed);
    }

    let (has_socket, has_instance) = (license.has_socket_section(), license.has_instance_section());
    match section {
        DeleteSection::All => Ok(DeleteOutcome::DroppedToCommunity),
        DeleteSection::Socket if !has_socket => Err(DeleteRefusal::SectionMissing { section }),
        DeleteSection::Instance if !has_instance => Err(DeleteRefusal::SectionMissing { section }),
        // Removing the only section there is removes the license.
        DeleteSection::Socket | DeleteSection::Instance if !(has_socket && has_instance) => {
            Ok(DeleteOutcome::DroppedToCommunity)
        }
        DeleteSection::Socket => Ok(DeleteOutcome::PartRemoved {
            remaining: Box::new(instance_part(license)),
        }),
        DeleteSection::Instance => Ok(DeleteOutcome::PartRemoved {
            remaining: Box::new(socket_part(license)),
        }),
    }
}

/// The instance part of a merged license. Its type and expiration are the merged license's
/// (only the instance part can expire); packages and support date cannot be split apart and
/// are kept as they are until the server re-reports.
fn instance_part(merged: &LicenseTerms) -> LicenseTerms {
    LicenseTerms {
        section_types: vec![SectionType::Instance],
        sockets: None,
        used_sockets: None,
        ..merged.clone()
    }
}

/// The socket part of a merged license: perpetual by the merge rule, so it never expires.
fn socket_part(merged: &LicenseTerms) -> LicenseTerms {
    LicenseTerms {
        license_type: LicenseType::Perpetual,
        section_types: vec![SectionType::Socket],
        unit_type: UnitType::Unknown,
        units: None,
        used_units: None,
        expiration: None,
        ..merged.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn merged() -> LicenseTerms {
        LicenseTerms {
            section_types: vec![SectionType::Socket, SectionType::Instance],
            sockets: Some(8.0),
            used_sockets: Some(6.0),
            unit_type: UnitType::Instances,
            units: Some(50.0),
            used_units: Some(20.0),
            expiration: Some(Utc.with_ymd_and_hms(2025, 1, 31, 23, 59, 59).unwrap()),
            ..LicenseTerms::new(Product::BackupAndReplication, LicenseType::Subscription)
        }
    }

    fn socket_only() -> LicenseTerms {
        LicenseTerms {
            section_types: vec![SectionType::Socket],
            sockets: Some(8.0),
            ..LicenseTerms::new(Product::BackupAndReplication, LicenseType::Perpetual)
        }
    }

    #[test]
    fn section_wire_form_and_default() {
        assert_eq!(DeleteSection::default(), DeleteSection::All);
        assert_eq!(
            DeleteSection::from_wire("Instance"),
            Ok(DeleteSection::Instance)
        );
        assert!(DeleteSection::from_wire("Unknown").is_err());
        assert!(DeleteSection::from_wire("all").is_err());
    }

    #[test]
    fn all_drops_vbr_to_community() {
        for section in [None, Some(DeleteSection::All)] {
            assert_eq!(
                plan_delete(Product::BackupAndReplication, Some(&merged()), section),
                Ok(DeleteOutcome::DroppedToCommunity)
            );
        }
    }

    #[test]
    fn removing_the_socket_part_keeps_the_instance_part() {
        let Ok(DeleteOutcome::PartRemoved { remaining }) = plan_delete(
            Product::BackupAndReplication,
            Some(&merged()),
            Some(DeleteSection::Socket),
        ) else {
            panic!("expected a part to remain");
        };
        assert!(remaining.has_instance_section() && !remaining.has_socket_section());
        assert_eq!(remaining.sockets, None);
        assert_eq!(remaining.units, Some(50.0));
        assert_eq!(remaining.license_type, LicenseType::Subscription);
        assert_eq!(remaining.expiration, merged().expiration);
    }

    #[test]
    fn removing_the_instance_part_keeps_a_perpetual_socket_license() {
        let Ok(DeleteOutcome::PartRemoved { remaining }) = plan_delete(
            Product::BackupAndReplication,
            Some(&merged()),
            Some(DeleteSection::Instance),
        ) else {
            panic!("expected a part to remain");
        };
        assert!(remaining.has_socket_section() && !remaining.has_instance_section());
        assert_eq!(remaining.license_type, LicenseType::Perpetual);
        assert_eq!(remaining.expiration, None);
        assert_eq!(remaining.units, None);
        assert_eq!(remaining.sockets, Some(8.0));
    }

    #[test]
    fn a_missing_section_is_refused_and_the_only_section_removes_everything() {
        let err = plan_delete(
            Product::BackupAndReplication,
            Some(&socket_only()),
            Some(DeleteSection::Instance),
        )
        .unwrap_err();
        assert_eq!(
            err,
            DeleteRefusal::SectionMissing {
                section: DeleteSection::Instance
            }
        );
        assert!(err.to_string().contains("no Instance section"));
        assert_eq!(
            plan_delete(
                Product::BackupAndReplication,
                Some(&socket_only()),
                Some(DeleteSection::Socket)
            ),
            Ok(DeleteOutcome::DroppedToCommunity)
        );
        let instance_only = LicenseTerms {
            section_types: vec![SectionType::Instance],
            ..merged()
        };
        assert_eq!(
            plan_delete(
                Product::BackupAndReplication,
                Some(&instance_only),
                Some(DeleteSection::Socket)
            ),
            Err(DeleteRefusal::SectionMissing {
                section: DeleteSection::Socket
            })
        );
    }

    #[test]
    fn vone_is_removed_whole() {
        let vone = LicenseTerms::new(Product::VOne, LicenseType::Rental);
        for section in [None, Some(DeleteSection::All)] {
            assert_eq!(
                plan_delete(Product::VOne, Some(&vone), section),
                Ok(DeleteOutcome::Unlicensed)
            );
        }
        for section in [DeleteSection::Socket, DeleteSection::Instance] {
            assert_eq!(
                plan_delete(Product::VOne, Some(&vone), Some(section)),
                Err(DeleteRefusal::SectionNotSupported {
                    target: Product::VOne
                })
            );
        }
    }

    #[test]
    fn sites_vb365_and_console_cannot_delete() {
        for target in [Product::CloudConnectSite, Product::Vb365, Product::Console] {
            let l = LicenseTerms::new(target, LicenseType::Rental);
            assert_eq!(
                plan_delete(target, Some(&l), None),
                Err(DeleteRefusal::NotSupported { target })
            );
        }
    }

    #[test]
    fn nothing_to_delete() {
        assert_eq!(
            plan_delete(Product::BackupAndReplication, None, None),
            Err(DeleteRefusal::NoLicense)
        );
        let community = LicenseTerms::new(Product::BackupAndReplication, LicenseType::Community);
        assert_eq!(
            plan_delete(Product::BackupAndReplication, Some(&community), None),
            Err(DeleteRefusal::NoLicense)
        );
    }
}
