//! Whether a license file may be installed on a target, and what the target carries afterwards
//! (licensing.md §2.4).
//!
//! Two steps: [`check_fit`] decides whether the file's product suits the target at all, and
//! [`check_install`] adds the install-time refusals (Community, expired past grace, Enterprise
//! Manager governance) and, for Backup & Replication servers, the merge-or-replace decision of
//! [`merge_decision`].
//!
//! The fit check refuses only on positive evidence of a mismatch: a flag reported as
//! `Unknown` or a missing section list is not held against the file. The status evaluator
//! reuses the same check for licenses a server reports, where a data gap must not turn into
//! an `Error`.

use std::fmt;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::days::earlier_of;
use crate::grace::{grace_period, GracePeriod};
use crate::license::{CloudConnect, LicenseTerms, LicenseType, Package, SectionType};
use crate::product::Product;

/// Where a license is being installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallTarget {
    pub product: Product,
    /// The Backup & Replication server (or Cloud Connect site) is governed by Veeam Backup
    /// Enterprise Manager, which pushes its own license and overrides any installed here.
    pub managed_by_enterprise_manager: bool,
}

impl InstallTarget {
    /// A target not governed by Enterprise Manager.
    pub const fn new(product: Product) -> Self {
        InstallTarget {
            product,
            managed_by_enterprise_manager: false,
        }
    }
}

/// Why a license file cannot be installed. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InstallRefusal {
    #[error(
        "This backup server is managed by Veeam Backup Enterprise Manager, which overrides its \
         license. Install the license in Enterprise Manager instead."
    )]
    ManagedByEnterpriseManager,

    #[error(
        "Community Edition licenses cannot be installed: servers in Community mode are not \
         managed. Install a rental, subscription, perpetual, evaluation or NFR license."
    )]
    CommunityEdition,

    #[error(
        "The file carries no usable license (type {license_type}). Obtain a valid license file."
    )]
    NoUsableLicense { license_type: LicenseType },

    #[error(
        "A promotional license only adds instances to a primary license and cannot be \
         installed on its own. Install the primary license file."
    )]
    PromoNotStandalone,

    #[error(
        "A license of type {license_type} exists only for the Service Provider Console and \
         cannot be installed on a {}.",
        target.display_name()
    )]
    ConsoleOnlyType {
        license_type: LicenseType,
        target: Product,
    },

    #[error(
        "This is a {} license; a {} needs {}.",
        license_product.product_name(),
        target.display_name(),
        expected_license(*target)
    )]
    WrongProduct {
        target: Product,
        license_product: Product,
    },

    #[error(
        "The license does not include Veeam Cloud Connect (cloudConnect is No). A {} accepts a \
         Backup & Replication license only if it includes Cloud Connect, such as a VCSP rental \
         license or the Cloud Connect license delivered with the console license.",
        target.display_name()
    )]
    CloudConnectNotIncluded { target: Product },

    #[error(
        "The license has no package that includes Veeam ONE (ONE, Essentials, Suite, Advanced \
         or Premium); it has: {}. Install a Veeam ONE license or a suite license.",
        package_list(packages)
    )]
    NoVOnePackage { packages: Vec<Package> },

    #[error(
        "The Service Provider Console needs an instance-based or merged license; this license \
         has only a socket section. Install an instance-based (VUL) license or the Cloud Connect \
         license file."
    )]
    SocketOnlyForConsole,

    #[error(
        "The license expired on {} and its grace period ended on {}. Obtain a current license \
         file (for rental and subscription licenses, use Update to fetch the renewed key).",
        expired_at.format("%Y-%m-%d %H:%M:%S UTC"),
        grace_ended_at.format("%Y-%m-%d %H:%M:%S UTC")
    )]
    ExpiredBeyondGrace {
        expired_at: DateTime<Utc>,
        grace_ended_at: DateTime<Utc>,
    },
}

fn expected_license(target: Product) -> &'static str {
    match target {
        Product::CloudConnectSite => {
            "a Backup & Replication license that includes Cloud Connect (or the Cloud Connect \
             license delivered with the console license)"
        }
        Product::BackupAndReplication => {
            "a Veeam Backup & Replication or Veeam Data Platform license"
        }
        Product::VOne => "a Veeam ONE license or a suite license that includes Veeam ONE",
        Product::Vb365 => "a Veeam Backup for Microsoft 365 license",
        Product::Console => "a Service Provider Console license, or the Cloud Connect license file",
    }
}

fn package_list(packages: &[Package]) -> String {
    if packages.is_empty() {
        return "none".to_owned();
    }
    packages
        .iter()
        .map(|p| p.as_wire())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a license issued for `license.product` suits `target` (step 1 of §2.4, without
/// the time and type checks).
///
/// * Cloud Connect site: a Backup & Replication, Cloud Connect or console license file whose
///   Cloud Connect flag is not `No`.
/// * Backup & Replication: a Backup & Replication or Cloud Connect license.
/// * Veeam ONE: a Veeam ONE license, or a Backup & Replication / Cloud Connect file with a
///   package that includes Veeam ONE.
/// * VB365: a VB365 license.
/// * Console: a console license, or the Cloud Connect license file (a Backup & Replication or
///   Cloud Connect file whose Cloud Connect flag is not `No`), and not socket-only.
/// * `Full` and `Promo` types belong to the console only.
pub fn check_fit(target: Product, license: &LicenseTerms) -> Result<(), InstallRefusal> {
    use Product as P;
    let product = license.product;
    let wrong = || {
        Err(InstallRefusal::WrongProduct {
            target,
            license_product: product,
        })
    };
    if license.license_type.is_console_only() && target != P::Console {
        return Err(InstallRefusal::ConsoleOnlyType {
            license_type: license.license_type,
            target,
        });
    }
    let no_cloud_connect = license.cloud_connect == CloudConnect::No;
    match target {
        P::CloudConnectSite => {
            if !matches!(
                product,
                P::CloudConnectSite | P::BackupAndReplication | P::Console
            ) {
                return wrong();
            }
            if no_cloud_connect {
                return Err(InstallRefusal::CloudConnectNotIncluded { target });
            }
        }
        P::BackupAndReplication => {
            if !product.is_backup_server() {
                return wrong();
            }
        }
        P::VOne => match product {
            P::VOne => {}
            P::BackupAndReplication | P::CloudConnectSite => {
                if !license.packages.iter().any(|p| p.includes_vone()) {
                    return Err(InstallRefusal::NoVOnePackage {
                        packages: license.packages.clone(),
                    });
                }
            }
            P::Vb365 | P::Console => return wrong(),
        },
        P::Vb365 => {
            if product != P::Vb365 {
                return wrong();
            }
        }
        P::Console => {
            match product {
                P::Console => {}
                P::CloudConnectSite | P::BackupAndReplication => {
                    if no_cloud_connect {
                        return Err(InstallRefusal::CloudConnectNotIncluded { target });
                    }
                }
                P::VOne | P::Vb365 => return wrong(),
            }
            if license.has_socket_section() && !license.has_instance_section() {
                return Err(InstallRefusal::SocketOnlyForConsole);
            }
        }
    }
    Ok(())
}

/// Why an instance license installed over a socket license replaced it instead of merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeDeclined {
    /// Only a perpetual socket license merges, and only with a subscription or perpetual
    /// instance license.
    TypePair {
        socket: LicenseType,
        instance: LicenseType,
    },
    /// The socket license's package is not Essentials, Backup or Suite.
    SocketPackage { packages: Vec<Package> },
    /// The instance license's package is not Backup or Suite (ONE and Essentials instance
    /// licenses never merge).
    InstancePackage { packages: Vec<Package> },
    /// Licensee company names differ (compared case-sensitively) or one is missing.
    LicenseeDiffers {
        current: Option<String>,
        incoming: Option<String>,
    },
}

impl fmt::Display for MergeDeclined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeDeclined::TypePair { socket, instance } => write!(
                f,
                "a {socket} socket license and a {instance} instance license cannot be merged; \
                 only a Perpetual socket license merges with a Subscription or Perpetual \
                 instance license"
            ),
            MergeDeclined::SocketPackage { packages } => write!(
                f,
                "the socket license's package ({}) does not allow merging; it must be \
                 Essentials, Backup or Suite",
                package_list(packages)
            ),
            MergeDeclined::InstancePackage { packages } => write!(
                f,
                "the instance license's package ({}) does not allow merging; it must be Backup \
                 or Suite",
                package_list(packages)
            ),
            MergeDeclined::LicenseeDiffers { current, incoming } => write!(
                f,
                "the licensee company names differ ('{}' vs '{}'); they must be identical, \
                 including case",
                current.as_deref().unwrap_or(""),
                incoming.as_deref().unwrap_or("")
            ),
        }
    }
}

/// Outcome of installing a file over an existing Backup & Replication license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeDecision {
    /// Socket and instance sections combine into one merged license.
    Merge,
    /// The new file replaces the old one. `declined` says why a merge candidate (an instance
    /// file over a socket license) did not merge; it is `None` for ordinary replacements.
    Replace { declined: Option<MergeDeclined> },
}

/// The Backup & Replication merge-or-replace rule (§2.4 step 2).
///
/// A merge candidate is an instance-only file installed over a license with a socket section.
/// It merges when (a) the socket license is perpetual and the instance license is a
/// subscription or perpetual one, (b) the packages allow it (Backup or Suite instance onto an
/// Essentials, Backup or Suite socket license), and (c) the licensee company names are
/// identical, case-sensitively. Otherwise the new file replaces the old one.
///
/// Installing an instance file over an already merged license replaces its instance part:
/// the socket part of a merged license is perpetual by construction.
pub fn merge_decision(current: &LicenseTerms, incoming: &LicenseTerms) -> MergeDecision {
    let candidate = current.has_socket_section()
        && incoming.has_instance_section()
        && !incoming.has_socket_section();
    if !candidate {
        return MergeDecision::Replace { declined: None };
    }
    let decline = |reason| MergeDecision::Replace {
        declined: Some(reason),
    };

    let socket_is_perpetual = current.is_merged() || current.license_type == LicenseType::Perpetual;
    let instance_type_ok = matches!(
        incoming.license_type,
        LicenseType::Subscription | LicenseType::Perpetual
    );
    if !socket_is_perpetual || !instance_type_ok {
        return decline(MergeDeclined::TypePair {
            socket: current.license_type,
            instance: incoming.license_type,
        });
    }

    let socket_package_ok = current
        .packages
        .iter()
        .any(|p| matches!(p, Package::Essentials | Package::Backup | Package::Suite));
    if !socket_package_ok {
        return decline(MergeDeclined::SocketPackage {
            packages: current.packages.clone(),
        });
    }
    let instance_package_ok = incoming
        .packages
        .iter()
        .any(|p| matches!(p, Package::Backup | Package::Suite))
        && !incoming
            .packages
            .iter()
            .any(|p| matches!(p, Package::One | Package::Essentials));
    if !instance_package_ok {
        return decline(MergeDeclined::InstancePackage {
            packages: incoming.packages.clone(),
        });
    }

    let named = |c: &Option<String>| c.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    match (
        named(&current.licensee_company),
        named(&incoming.licensee_company),
    ) {
        (Some(a), Some(b)) if a == b => MergeDecision::Merge,
        (current, incoming) => decline(MergeDeclined::LicenseeDiffers { current, incoming }),
    }
}

/// The license a merge produces. Expiration and support expiration are the earlier of the two
/// parts; counters of the socket part come from the server, the instance part's grant from the
/// new file. The merged license takes the instance part's type, because only that part can
/// expire. The server re-reports the real values after applying it.
fn merge(current: &LicenseTerms, incoming: &LicenseTerms) -> LicenseTerms {
    // The socket part of an already merged license is perpetual, so it contributes no
    // expiration; a socket-only license contributes its own (normally none).
    let socket_expiration = if current.is_merged() {
        None
    } else {
        current.expiration
    };
    let mut packages = current.packages.clone();
    for p in &incoming.packages {
        if !packages.contains(p) {
            packages.push(*p);
        }
    }
    LicenseTerms {
        product: current.product,
        license_type: incoming.license_type,
        edition: incoming.edition.clone().or_else(|| current.edition.clone()),
        packages,
        section_types: vec![SectionType::Socket, SectionType::Instance],
        cloud_connect: more_capable(current.cloud_connect, incoming.cloud_connect),
        unit_type: incoming.unit_type,
        units: incoming.units,
        used_units: current.used_units.or(incoming.used_units),
        sockets: current.sockets,
        used_sockets: current.used_sockets,
        capacity: incoming.capacity.or(current.capacity),
        used_capacity: current.used_capacity.or(incoming.used_capacity),
        licensed_users: None,
        protected_users: None,
        expiration: earlier_of(socket_expiration, incoming.expiration),
        // For an already merged license this is conservative: its support date is already the
        // earlier of its two parts.
        support_expiration: earlier_of(current.support_expiration, incoming.support_expiration),
        auto_update_enabled: current.auto_update_enabled,
        has_license_id: current.has_license_id || incoming.has_license_id,
        licensee_company: current.licensee_company.clone(),
    }
}

fn more_capable(a: CloudConnect, b: CloudConnect) -> CloudConnect {
    let rank = |c| match c {
        CloudConnect::Yes => 3,
        CloudConnect::Enterprise => 2,
        CloudConnect::No => 1,
        CloudConnect::Unknown => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// What an install does to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallAction {
    /// Nothing (or only Community mode) was installed before.
    Install,
    /// The new file replaces the installed license.
    Replace {
        merge_declined: Option<MergeDeclined>,
    },
    /// Socket and instance licenses merge (Backup & Replication only).
    Merge,
}

/// An accepted install.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallPlan {
    pub action: InstallAction,
    /// The license the target carries once the install is applied (provisional until the
    /// server re-reports it). Its `auto_update_enabled` is already resolved: kept from the
    /// previous license, forced on for Evaluation/NFR with a license id, off without an id.
    pub resulting: LicenseTerms,
    /// A rental or subscription license with a license id was installed with auto-update off;
    /// the UI should offer to enable it.
    pub suggest_enabling_auto_update: bool,
}

/// Decides whether `incoming` may be installed on `target` at `now`, and with what result.
///
/// `current` is the license the target carries now, if any; Community mode and "not
/// installed" count as nothing installed.
pub fn check_install(
    target: &InstallTarget,
    incoming: &LicenseTerms,
    current: Option<&LicenseTerms>,
    now: DateTime<Utc>,
) -> Result<InstallPlan, InstallRefusal> {
    if target.managed_by_enterprise_manager && target.product.is_backup_server() {
        return Err(InstallRefusal::ManagedByEnterpriseManager);
    }
    match incoming.license_type {
        LicenseType::Community => return Err(InstallRefusal::CommunityEdition),
        LicenseType::NotInstalled | LicenseType::Unknown => {
            return Err(InstallRefusal::NoUsableLicense {
                license_type: incoming.license_type,
            })
        }
        LicenseType::Promo => return Err(InstallRefusal::PromoNotStandalone),
        _ => {}
    }
    check_fit(target.product, incoming)?;
    if let Some(expired_at) = incoming.expiration {
        let grace =
            grace_period(target.product, incoming.license_type).unwrap_or(GracePeriod::NONE);
        let grace_ended_at = grace.ends_at(expired_at);
        if now > grace_ended_at {
            return Err(InstallRefusal::ExpiredBeyondGrace {
                expired_at,
                grace_ended_at,
            });
        }
    }

    let current = current.filter(|c| c.license_type.is_license());
    let (action, mut resulting) = match current {
        None => (InstallAction::Install, incoming.clone()),
        Some(cur) if target.product == Product::BackupAndReplication => {
            match merge_decision(cur, incoming) {
                MergeDecision::Merge => (InstallAction::Merge, merge(cur, incoming)),
                MergeDecision::Replace { declined } => (
                    InstallAction::Replace {
                        merge_declined: declined,
                    },
                    incoming.clone(),
                ),
            }
        }
        Some(_) => (
            InstallAction::Replace {
                merge_declined: None,
            },
            incoming.clone(),
        ),
    };

    // Veeam ONE does not understand merged files: it uses only their socket section.
    if target.product == Product::VOne && resulting.is_merged() {
        resulting.section_types = vec![SectionType::Socket];
    }

    resulting.auto_update_enabled = if !resulting.has_license_id {
        false
    } else if resulting.license_type.forces_auto_update() {
        true
    } else {
        // Auto-update is a setting of the server (or console), not of the file: it survives
        // a replacement.
        current.map_or(incoming.auto_update_enabled, |c| c.auto_update_enabled)
    };
    let suggest_enabling_auto_update = matches!(
        resulting.license_type,
        LicenseType::Rental | LicenseType::Subscription
    ) && resulting.has_license_id
        && !resulting.auto_update_enabled;

    Ok(InstallPlan {
        action,
        resulting,
        suggest_enabling_auto_update,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};
    use LicenseType as T;
    use Product as P;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap()
    }

    /// A plausible, current license file for `product`.
    fn file(product: Product, license_type: LicenseType) -> LicenseTerms {
        LicenseTerms {
            cloud_connect: CloudConnect::Yes,
            packages: vec![Package::Suite],
            section_types: vec![SectionType::Instance],
            units: Some(100.0),
            expiration: Some(now() + TimeDelta::days(90)),
            has_license_id: true,
            licensee_company: Some("Acme Hosting".into()),
            ..LicenseTerms::new(product, license_type)
        }
    }

    fn install(target: Product, incoming: &LicenseTerms) -> Result<InstallPlan, InstallRefusal> {
        check_install(&InstallTarget::new(target), incoming, None, now())
    }

    #[test]
    fn fit_matrix_for_every_product_and_target() {
        // Rows: license product; columns: targets in `Product::ALL` order
        // (site, VBR, VONE, VB365, console). Files are Suite instance licenses with Cloud Connect.
        let expected = [
            (P::CloudConnectSite, [true, true, true, false, true]),
            (P::BackupAndReplication, [true, true, true, false, true]),
            (P::VOne, [false, false, true, false, false]),
            (P::Vb365, [false, false, false, true, false]),
            (P::Console, [true, false, false, false, true]),
        ];
        for (license_product, row) in expected {
            for (target, ok) in P::ALL.iter().zip(row) {
                let result = install(*target, &file(license_product, T::Subscription));
                assert_eq!(
                    result.is_ok(),
                    ok,
                    "{license_product:?} on {target:?}: {result:?}"
                );
                if !ok {
                    assert!(matches!(result, Err(InstallRefusal::WrongProduct { .. })));
                }
            }
        }
    }

    #[test]
    fn site_needs_cloud_connect_other_than_no() {
        for (cc, ok) in [
            (CloudConnect::Yes, true),
            (CloudConnect::Enterprise, true),
            (CloudConnect::Unknown, true),
            (CloudConnect::No, false),
        ] {
            let f = LicenseTerms {
                cloud_connect: cc,
                ..file(P::BackupAndReplication, T::Rental)
            };
            let r = install(P::CloudConnectSite, &f);
            assert_eq!(r.is_ok(), ok, "{cc:?}");
            if !ok {
                let err = r.unwrap_err();
                assert_eq!(
                    err,
                    InstallRefusal::CloudConnectNotIncluded {
                        target: P::CloudConnectSite
                    }
                );
                assert!(err.to_string().contains("cloudConnect is No"));
            }
            // A plain backup server does not care about the flag.
            assert!(install(P::BackupAndReplication, &f).is_ok());
        }
    }

    #[test]
    fn vone_needs_a_vone_capable_package() {
        for pkg in Package::ALL {
            let f = LicenseTerms {
                packages: vec![*pkg],
                ..file(P::BackupAndReplication, T::Subscription)
            };
            assert_eq!(install(P::VOne, &f).is_ok(), pkg.includes_vone(), "{pkg:?}");
        }
        let none = LicenseTerms {
            packages: vec![],
            ..file(P::BackupAndReplication, T::Subscription)
        };
        let err = install(P::VOne, &none).unwrap_err();
        assert!(err.to_string().contains("it has: none"), "{err}");
        // A Veeam ONE file fits whatever its package list says.
        let vone = LicenseTerms {
            packages: vec![],
            ..file(P::VOne, T::Rental)
        };
        assert!(install(P::VOne, &vone).is_ok());
    }

    #[test]
    fn vone_treats_a_merged_file_as_socket() {
        let merged = LicenseTerms {
            section_types: vec![SectionType::Socket, SectionType::Instance],
            sockets: Some(4.0),
            ..file(P::BackupAndReplication, T::Perpetual)
        };
        let plan = install(P::VOne, &merged).unwrap();
        assert_eq!(plan.resulting.section_types, vec![SectionType::Socket]);
        // Elsewhere a merged file stays merged.
        let plan = install(P::BackupAndReplication, &merged).unwrap();
        assert!(plan.resulting.is_merged());
    }

    #[test]
    fn console_accepts_instance_or_merged_and_the_cloud_connect_file() {
        let socket_only = LicenseTerms {
            section_types: vec![SectionType::Socket],
            ..file(P::CloudConnectSite, T::Perpetual)
        };
        assert_eq!(
            install(P::Console, &socket_only),
            Err(InstallRefusal::SocketOnlyForConsole)
        );
        let merged = LicenseTerms {
            section_types: vec![SectionType::All],
            ..socket_only.clone()
        };
        assert!(install(P::Console, &merged).is_ok());
        // The Cloud Connect license file may be reused, but not a VBR file without Cloud Connect.
        let no_cc = LicenseTerms {
            cloud_connect: CloudConnect::No,
            ..file(P::BackupAndReplication, T::Rental)
        };
        assert_eq!(
            install(P::Console, &no_cc),
            Err(InstallRefusal::CloudConnectNotIncluded { target: P::Console })
        );
        // Console-only types are fine on the console and nowhere else.
        assert!(install(P::Console, &file(P::Console, T::Full)).is_ok());
        assert_eq!(
            install(
                P::BackupAndReplication,
                &file(P::BackupAndReplication, T::Full)
            ),
            Err(InstallRefusal::ConsoleOnlyType {
                license_type: T::Full,
                target: P::BackupAndReplication
            })
        );
    }

    #[test]
    fn community_promo_and_non_licenses_are_refused_everywhere() {
        for target in P::ALL {
            let lic = |t| file(*target, t);
            assert_eq!(
                install(*target, &lic(T::Community)),
                Err(InstallRefusal::CommunityEdition)
            );
            assert_eq!(
                install(*target, &lic(T::Promo)),
                Err(InstallRefusal::PromoNotStandalone)
            );
            for t in [T::NotInstalled, T::Unknown] {
                assert_eq!(
                    install(*target, &lic(t)),
                    Err(InstallRefusal::NoUsableLicense { license_type: t })
                );
            }
        }
    }

    #[test]
    fn enterprise_manager_governs_backup_servers_only() {
        for product in P::ALL {
            let target = InstallTarget {
                product: *product,
                managed_by_enterprise_manager: true,
            };
            let r = check_install(&target, &file(*product, T::Rental), None, now());
            assert_eq!(
                r == Err(InstallRefusal::ManagedByEnterpriseManager),
                product.is_backup_server(),
                "{product:?}"
            );
        }
    }

    #[test]
    fn expired_files_are_accepted_inside_grace_and_refused_after() {
        // VBR rental: 60 days of grace.
        let expired_at = now() - TimeDelta::days(60);
        let f = LicenseTerms {
            expiration: Some(expired_at),
            ..file(P::BackupAndReplication, T::Rental)
        };
        assert!(
            install(P::BackupAndReplication, &f).is_ok(),
            "grace ends exactly now"
        );
        let f = LicenseTerms {
            expiration: Some(expired_at - TimeDelta::seconds(1)),
            ..f
        };
        let err = install(P::BackupAndReplication, &f).unwrap_err();
        assert_eq!(
            err,
            InstallRefusal::ExpiredBeyondGrace {
                expired_at: expired_at - TimeDelta::seconds(1),
                grace_ended_at: now() - TimeDelta::seconds(1),
            }
        );
        assert!(err
            .to_string()
            .contains("grace period ended on 2024-06-15 11:59:59 UTC"));

        // Evaluation has no grace: refused one second after expiry.
        let eval = LicenseTerms {
            expiration: Some(now() - TimeDelta::seconds(1)),
            ..file(P::BackupAndReplication, T::Evaluation)
        };
        assert!(install(P::BackupAndReplication, &eval).is_err());
        let eval = LicenseTerms {
            expiration: Some(now()),
            ..eval
        };
        assert!(install(P::BackupAndReplication, &eval).is_ok());

        // The grace used is the target's: VB365 subscription has one calendar month.
        let vb = LicenseTerms {
            expiration: Some(Utc.with_ymd_and_hms(2024, 5, 15, 12, 0, 0).unwrap()),
            ..file(P::Vb365, T::Subscription)
        };
        assert!(install(P::Vb365, &vb).is_ok());
        let vb = LicenseTerms {
            expiration: Some(Utc.with_ymd_and_hms(2024, 5, 15, 11, 59, 59).unwrap()),
            ..vb
        };
        assert!(install(P::Vb365, &vb).is_err());

        // Perpetual files never expire, whatever their support date.
        let perpetual = LicenseTerms {
            expiration: None,
            support_expiration: Some(now() - TimeDelta::days(900)),
            ..file(P::BackupAndReplication, T::Perpetual)
        };
        assert!(install(P::BackupAndReplication, &perpetual).is_ok());
    }

    #[test]
    fn auto_update_is_kept_forced_or_cleared() {
        // Replacement keeps the server's setting.
        let current = LicenseTerms {
            auto_update_enabled: true,
            ..file(P::Vb365, T::Rental)
        };
        let plan = check_install(
            &InstallTarget::new(P::Vb365),
            &file(P::Vb365, T::Rental),
            Some(&current),
            now(),
        )
        .unwrap();
        assert_eq!(
            plan.action,
            InstallAction::Replace {
                merge_declined: None
            }
        );
        assert!(plan.resulting.auto_update_enabled);
        assert!(!plan.suggest_enabling_auto_update);

        // Fresh rental install with auto-update off: suggest enabling it.
        let plan = install(P::Vb365, &file(P::Vb365, T::Rental)).unwrap();
        assert_eq!(plan.action, InstallAction::Install);
        assert!(!plan.resulting.auto_update_enabled && plan.suggest_enabling_auto_update);

        // Evaluation / NFR with a license id: forced on.
        for t in [T::Evaluation, T::Nfr] {
            let plan = install(P::BackupAndReplication, &file(P::BackupAndReplication, t)).unwrap();
            assert!(plan.resulting.auto_update_enabled, "{t:?}");
            assert!(!plan.suggest_enabling_auto_update);
        }

        // Without a license id auto-update cannot stay on, and is not suggested.
        let no_id = LicenseTerms {
            has_license_id: false,
            ..file(P::Vb365, T::Rental)
        };
        let plan =
            check_install(&InstallTarget::new(P::Vb365), &no_id, Some(&current), now()).unwrap();
        assert!(!plan.resulting.auto_update_enabled && !plan.suggest_enabling_auto_update);

        // A Community server counts as nothing installed.
        let community = LicenseTerms::new(P::BackupAndReplication, T::Community);
        let plan = check_install(
            &InstallTarget::new(P::BackupAndReplication),
            &file(P::BackupAndReplication, T::Rental),
            Some(&community),
            now(),
        )
        .unwrap();
        assert_eq!(plan.action, InstallAction::Install);
    }

    // ---- merge or replace -------------------------------------------------------------

    fn socket_license() -> LicenseTerms {
        LicenseTerms {
            section_types: vec![SectionType::Socket],
            packages: vec![Package::Backup],
            sockets: Some(8.0),
            used_sockets: Some(6.0),
            units: None,
            expiration: None,
            support_expiration: Some(now() + TimeDelta::days(200)),
            auto_update_enabled: true,
            ..file(P::BackupAndReplication, T::Perpetual)
        }
    }

    fn instance_license(license_type: LicenseType) -> LicenseTerms {
        LicenseTerms {
            section_types: vec![SectionType::Instance],
            packages: vec![Package::Suite],
            unit_type: crate::license::UnitType::Instances,
            units: Some(50.0),
            support_expiration: Some(now() + TimeDelta::days(100)),
            ..file(P::BackupAndReplication, license_type)
        }
    }

    fn vbr_install(incoming: &LicenseTerms, current: &LicenseTerms) -> InstallPlan {
        check_install(
            &InstallTarget::new(P::BackupAndReplication),
            incoming,
            Some(current),
            now(),
        )
        .unwrap()
    }

    #[test]
    fn perpetual_socket_merges_with_subscription_or_perpetual_instance() {
        for t in [T::Subscription, T::Perpetual] {
            let incoming = instance_license(t);
            assert_eq!(
                merge_decision(&socket_license(), &incoming),
                MergeDecision::Merge
            );
            let plan = vbr_install(&incoming, &socket_license());
            assert_eq!(plan.action, InstallAction::Merge);
            let merged = plan.resulting;
            assert!(merged.is_merged());
            assert_eq!(merged.license_type, t);
            assert_eq!(merged.sockets, Some(8.0));
            assert_eq!(merged.used_sockets, Some(6.0));
            assert_eq!(merged.units, Some(50.0));
            assert_eq!(merged.packages, vec![Package::Backup, Package::Suite]);
            // Earlier of the two: the socket part never expires, support ends first on the
            // instance part.
            assert_eq!(merged.expiration, incoming.expiration);
            assert_eq!(merged.support_expiration, incoming.support_expiration);
            assert!(merged.auto_update_enabled, "kept from the server");
        }
    }

    #[test]
    fn merged_dates_are_the_earlier_of_both_parts() {
        let socket = LicenseTerms {
            expiration: Some(now() + TimeDelta::days(10)),
            support_expiration: Some(now() + TimeDelta::days(20)),
            ..socket_license()
        };
        let incoming = LicenseTerms {
            expiration: Some(now() + TimeDelta::days(30)),
            support_expiration: Some(now() + TimeDelta::days(300)),
            ..instance_license(T::Subscription)
        };
        let merged = vbr_install(&incoming, &socket).resulting;
        assert_eq!(merged.expiration, socket.expiration);
        assert_eq!(merged.support_expiration, socket.support_expiration);
    }

    #[test]
    fn type_pairs_that_do_not_merge_replace() {
        for t in [T::Rental, T::Evaluation, T::Nfr] {
            let plan = vbr_install(&instance_license(t), &socket_license());
            assert_eq!(
                plan.action,
                InstallAction::Replace {
                    merge_declined: Some(MergeDeclined::TypePair {
                        socket: T::Perpetual,
                        instance: t
                    })
                }
            );
            assert!(!plan.resulting.has_socket_section());
        }
        // A subscription socket license does not merge either.
        let sub_socket = LicenseTerms {
            license_type: T::Subscription,
            expiration: Some(now() + TimeDelta::days(100)),
            ..socket_license()
        };
        let plan = vbr_install(&instance_license(T::Subscription), &sub_socket);
        assert!(matches!(
            plan.action,
            InstallAction::Replace {
                merge_declined: Some(MergeDeclined::TypePair { .. })
            }
        ));
    }

    #[test]
    fn package_matrix() {
        // Instance packages across, socket packages down, as in Veeam's merge table.
        let sockets = [
            Package::Essentials,
            Package::Backup,
            Package::Suite,
            Package::One,
        ];
        let instances = [
            (Package::Essentials, [false; 4]),
            (Package::Backup, [true, true, true, false]),
            (Package::Suite, [true, true, true, false]),
            (Package::One, [false; 4]),
        ];
        for (instance_pkg, row) in instances {
            for (socket_pkg, ok) in sockets.iter().zip(row) {
                let current = LicenseTerms {
                    packages: vec![*socket_pkg],
                    ..socket_license()
                };
                let incoming = LicenseTerms {
                    packages: vec![instance_pkg],
                    ..instance_license(T::Subscription)
                };
                let decision = merge_decision(&current, &incoming);
                assert_eq!(
                    decision == MergeDecision::Merge,
                    ok,
                    "{instance_pkg:?} instance onto {socket_pkg:?} socket: {decision:?}"
                );
            }
        }
        // The reason names the side at fault.
        let current = LicenseTerms {
            packages: vec![Package::One],
            ..socket_license()
        };
        assert!(matches!(
            merge_decision(&current, &instance_license(T::Subscription)),
            MergeDecision::Replace {
                declined: Some(MergeDeclined::SocketPackage { .. })
            }
        ));
        // Foundation/Advanced/Premium are not in the documented table: no merge.
        let vdp = LicenseTerms {
            packages: vec![Package::Foundation],
            ..instance_license(T::Subscription)
        };
        assert!(matches!(
            merge_decision(&socket_license(), &vdp),
            MergeDecision::Replace {
                declined: Some(MergeDeclined::InstancePackage { .. })
            }
        ));
    }

    #[test]
    fn licensee_names_must_match_exactly() {
        let incoming = |name: Option<&str>| LicenseTerms {
            licensee_company: name.map(str::to_owned),
            ..instance_license(T::Subscription)
        };
        assert_eq!(
            merge_decision(&socket_license(), &incoming(Some("Acme Hosting"))),
            MergeDecision::Merge
        );
        for other in [Some("ACME Hosting"), Some("Acme Hosting "), Some(""), None] {
            let decision = merge_decision(&socket_license(), &incoming(other));
            let MergeDecision::Replace {
                declined: Some(reason @ MergeDeclined::LicenseeDiffers { .. }),
            } = decision
            else {
                panic!("{other:?} should not merge: {decision:?}");
            };
            assert!(reason.to_string().contains("including case"));
        }
    }

    #[test]
    fn non_candidates_replace_without_a_reason() {
        // Socket over socket.
        assert_eq!(
            merge_decision(&socket_license(), &socket_license()),
            MergeDecision::Replace { declined: None }
        );
        // Instance over instance.
        assert_eq!(
            merge_decision(
                &instance_license(T::Subscription),
                &instance_license(T::Subscription)
            ),
            MergeDecision::Replace { declined: None }
        );
        // A merged file over a socket license replaces it.
        let merged_file = LicenseTerms {
            section_types: vec![SectionType::All],
            ..instance_license(T::Subscription)
        };
        assert_eq!(
            merge_decision(&socket_license(), &merged_file),
            MergeDecision::Replace { declined: None }
        );
    }

    #[test]
    fn instance_file_over_a_merged_license_replaces_the_instance_part() {
        let first = vbr_install(&instance_license(T::Subscription), &socket_license()).resulting;
        let renewal = LicenseTerms {
            units: Some(80.0),
            expiration: Some(now() + TimeDelta::days(400)),
            support_expiration: Some(now() + TimeDelta::days(400)),
            ..instance_license(T::Subscription)
        };
        let plan = vbr_install(&renewal, &first);
        assert_eq!(plan.action, InstallAction::Merge);
        assert_eq!(plan.resulting.units, Some(80.0));
        assert_eq!(plan.resulting.sockets, Some(8.0));
        // The old instance part's expiry no longer limits the license...
        assert_eq!(plan.resulting.expiration, renewal.expiration);
        // ...but support stays at the earlier, already merged date (conservative).
        assert_eq!(plan.resulting.support_expiration, first.support_expiration);
    }

    #[test]
    fn only_backup_servers_merge() {
        // The same pair on a Cloud Connect site replaces.
        let plan = check_install(
            &InstallTarget::new(P::CloudConnectSite),
            &instance_license(T::Subscription),
            Some(&socket_license()),
            now(),
        )
        .unwrap();
        assert_eq!(
            plan.action,
            InstallAction::Replace {
                merge_declined: None
            }
        );
    }
}
