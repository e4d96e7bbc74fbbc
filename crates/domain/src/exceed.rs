//! How far usage may go beyond the licensed amount before workloads stop being processed
//! (licensing.md §2.3).
//!
//! Only the main meter can be exceeded: units (instances or points) or, for VB365, users.
//! Socket sections and per-TB capacity can never be exceeded, so they have no allowance.
//!
//! Not modelled: the Cloud Connect rental rule adds "last month's new points" to the
//! allowance; the counters we receive do not carry that number, so the allowance here is the
//! documented floor and may be stricter than Veeam's by that amount.

use crate::license::LicenseType;
use crate::product::Product;

/// How many units (or VB365 users) usage may exceed `units` by.
///
/// * Console (managed agents): rental 20 %, subscription-like 10 %, doubled while auto-update
///   is on **and** a usage report was submitted in the last 30 days.
/// * Backup & Replication, Cloud Connect sites and Veeam ONE: rental max(20, 20 %); Veeam
///   Universal License (subscription, perpetual) max(20, 20 %) with auto-update, max(10, 10 %)
///   without.
/// * VB365: rental max(20, 20 %), subscription-like max(10, 10 %), both doubled with
///   auto-update plus a recent report.
/// * Evaluation, NFR, Promo, Community and anything not a license: none.
pub fn allowed_increase(
    product: Product,
    license_type: LicenseType,
    units: f64,
    auto_update: bool,
    report_submitted_recently: bool,
) -> f64 {
    use LicenseType as T;
    let units = units.max(0.0);
    // Percentages are applied as `units * pct / 100` so whole-unit inputs give the nearest
    // float to the exact result (101 units at 20 % is exactly 20.2, not 20.200000000000003).
    let percent = |pct: f64| units * pct / 100.0;
    // `minimum` is an absolute floor in units.
    let greater = |minimum: f64, pct: f64| minimum.max(percent(pct));
    let doubled = auto_update && report_submitted_recently;
    let factor = if doubled { 2.0 } else { 1.0 };

    match product {
        Product::Console => match license_type {
            T::Rental => percent(20.0) * factor,
            T::Subscription | T::Perpetual | T::Full => percent(10.0) * factor,
            _ => 0.0,
        },
        Product::CloudConnectSite | Product::BackupAndReplication | Product::VOne => {
            match license_type {
                T::Rental => greater(20.0, 20.0),
                T::Subscription | T::Perpetual | T::Full if auto_update => greater(20.0, 20.0),
                T::Subscription | T::Perpetual | T::Full => greater(10.0, 10.0),
                _ => 0.0,
            }
        }
        Product::Vb365 => match license_type {
            T::Rental => greater(20.0, 20.0) * factor,
            T::Subscription | T::Perpetual | T::Full => greater(10.0, 10.0) * factor,
            _ => 0.0,
        },
    }
}

/// Where usage stands against a limit and its allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exceed {
    /// Used does not exceed the licensed amount.
    WithinLimit,
    /// Over the limit by `over`, but no more than the `allowed` increase: everything is still
    /// processed.
    WithinAllowance { over: f64, allowed: f64 },
    /// Over by more than the allowed increase: workloads above it are not processed.
    BeyondAllowance { over: f64, allowed: f64 },
}

/// Compares `used` against `licensed` plus `allowed`.
pub fn assess(licensed: f64, used: f64, allowed: f64) -> Exceed {
    let over = used - licensed;
    if over <= 0.0 {
        Exceed::WithinLimit
    } else if over <= allowed {
        Exceed::WithinAllowance { over, allowed }
    } else {
        Exceed::BeyondAllowance { over, allowed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LicenseType as T;

    fn allowed(p: Product, t: LicenseType, units: f64, auto: bool, report: bool) -> f64 {
        allowed_increase(p, t, units, auto, report)
    }

    #[test]
    fn vbr_rental_is_the_greater_of_20_points_and_20_percent() {
        for p in [
            Product::BackupAndReplication,
            Product::CloudConnectSite,
            Product::VOne,
        ] {
            assert_eq!(allowed(p, T::Rental, 50.0, false, false), 20.0);
            assert_eq!(allowed(p, T::Rental, 100.0, false, false), 20.0);
            assert_eq!(allowed(p, T::Rental, 101.0, false, false), 20.2);
            assert_eq!(allowed(p, T::Rental, 500.0, false, false), 100.0);
            // Auto-update and reporting do not change the rental allowance.
            assert_eq!(allowed(p, T::Rental, 500.0, true, true), 100.0);
        }
    }

    #[test]
    fn vul_tiers_depend_on_auto_update() {
        let p = Product::BackupAndReplication;
        for t in [T::Subscription, T::Perpetual] {
            assert_eq!(allowed(p, t, 500.0, true, false), 100.0);
            assert_eq!(allowed(p, t, 50.0, true, false), 20.0);
            assert_eq!(allowed(p, t, 500.0, false, false), 50.0);
            assert_eq!(allowed(p, t, 50.0, false, false), 10.0);
            assert_eq!(allowed(p, t, 500.0, false, true), 50.0);
        }
    }

    #[test]
    fn console_agents_percentages_double_with_auto_update_and_report() {
        let p = Product::Console;
        assert_eq!(allowed(p, T::Rental, 1000.0, false, false), 200.0);
        assert_eq!(allowed(p, T::Rental, 1000.0, true, false), 200.0);
        assert_eq!(allowed(p, T::Rental, 1000.0, false, true), 200.0);
        assert_eq!(allowed(p, T::Rental, 1000.0, true, true), 400.0);
        assert_eq!(allowed(p, T::Subscription, 1000.0, false, false), 100.0);
        assert_eq!(allowed(p, T::Subscription, 1000.0, true, true), 200.0);
        // No absolute floor for agents.
        assert_eq!(allowed(p, T::Rental, 10.0, false, false), 2.0);
    }

    #[test]
    fn vb365_users_with_floor_and_doubling() {
        let p = Product::Vb365;
        assert_eq!(allowed(p, T::Rental, 50.0, false, false), 20.0);
        assert_eq!(allowed(p, T::Rental, 50.0, true, true), 40.0);
        assert_eq!(allowed(p, T::Rental, 500.0, true, true), 200.0);
        assert_eq!(allowed(p, T::Subscription, 50.0, false, false), 10.0);
        assert_eq!(allowed(p, T::Subscription, 500.0, false, false), 50.0);
        assert_eq!(allowed(p, T::Subscription, 500.0, true, true), 100.0);
        assert_eq!(allowed(p, T::Subscription, 500.0, true, false), 50.0);
    }

    #[test]
    fn trials_and_non_licenses_get_nothing() {
        for p in Product::ALL {
            for t in [
                T::Evaluation,
                T::Nfr,
                T::Promo,
                T::Community,
                T::NotInstalled,
                T::Unknown,
            ] {
                assert_eq!(allowed(*p, t, 1000.0, true, true), 0.0, "{p:?} {t:?}");
            }
        }
    }

    #[test]
    fn assess_boundaries() {
        assert_eq!(assess(100.0, 100.0, 20.0), Exceed::WithinLimit);
        assert_eq!(
            assess(100.0, 120.0, 20.0),
            Exceed::WithinAllowance {
                over: 20.0,
                allowed: 20.0
            }
        );
        assert_eq!(
            assess(100.0, 120.5, 20.0),
            Exceed::BeyondAllowance {
                over: 20.5,
                allowed: 20.0
            }
        );
        assert_eq!(
            assess(4.0, 5.0, 0.0),
            Exceed::BeyondAllowance {
                over: 1.0,
                allowed: 0.0
            }
        );
    }
}
