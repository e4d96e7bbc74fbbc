//! The grace-period and warning-window tables (licensing.md §1.4, §2.2) as data, and what a
//! product does once grace is over.
//!
//! Products fall into three families for timing purposes: the console; Backup & Replication
//! (Cloud Connect sites are VBR servers, and Veeam ONE — absent from the tables — shares VBR's
//! Veeam licensing platform); and Veeam Backup for Microsoft 365, whose grace is counted in
//! calendar months.

use chrono::{DateTime, Months, TimeDelta, Utc};

use crate::license::LicenseType;
use crate::product::Product;

/// How long a license keeps working after its expiry instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GracePeriod {
    /// A fixed number of 24-hour days.
    Days(u32),
    /// Calendar months (VB365). Adding a month keeps the day of month, clamped to the last day
    /// of a shorter month: 31 January + 1 month = 28/29 February.
    Months(u32),
}

impl GracePeriod {
    /// No grace at all: the license stops at its expiry instant.
    pub const NONE: GracePeriod = GracePeriod::Days(0);

    /// The last instant still inside grace for a license expiring at `expiry`.
    pub fn ends_at(self, expiry: DateTime<Utc>) -> DateTime<Utc> {
        let end = match self {
            GracePeriod::Days(days) => expiry.checked_add_signed(TimeDelta::days(days.into())),
            GracePeriod::Months(months) => expiry.checked_add_months(Months::new(months)),
        };
        // Overflow only happens at the end of chrono's range: grace then never ends.
        end.unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// True when there is no grace at all.
    pub fn is_none(self) -> bool {
        matches!(self, GracePeriod::Days(0) | GracePeriod::Months(0))
    }
}

/// Which date a warning window counts back from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningAnchor {
    /// The license's expiration date.
    Expiration,
    /// The support expiration date (perpetual licenses, which never expire).
    SupportExpiration,
}

/// How long before an anchor date a license starts warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarningWindow {
    pub anchor: WarningAnchor,
    pub days: u32,
}

impl WarningWindow {
    /// First instant inside the window for an anchor date `at`.
    pub fn starts_at(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.checked_sub_signed(TimeDelta::days(self.days.into()))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Console,
    Backup,
    Vb365,
}

fn family(product: Product) -> Family {
    match product {
        Product::Console => Family::Console,
        Product::CloudConnectSite | Product::BackupAndReplication | Product::VOne => Family::Backup,
        Product::Vb365 => Family::Vb365,
    }
}

/// Grace after expiry for a license of `license_type` on `product`.
///
/// `None` means grace does not apply: the type never expires (Perpetual) or is not a license
/// (Community, NotInstalled, Unknown). `Some(GracePeriod::NONE)` means it expires with no grace
/// (Evaluation, and NFR outside the console).
pub fn grace_period(product: Product, license_type: LicenseType) -> Option<GracePeriod> {
    use GracePeriod::{Days, Months};
    use LicenseType as T;
    let grace = match (family(product), license_type) {
        (_, T::Perpetual | T::Community | T::NotInstalled | T::Unknown) => return None,
        (_, T::Evaluation | T::Promo) => GracePeriod::NONE,
        (Family::Console, T::Rental) => Days(60),
        // `Full` is undocumented; it is bucketed with the paid, non-rental subscription.
        (Family::Console, T::Subscription | T::Nfr | T::Full) => Days(30),
        (Family::Backup, T::Rental) => Days(60),
        (Family::Backup, T::Subscription | T::Full) => Days(30),
        (Family::Backup, T::Nfr) => GracePeriod::NONE,
        (Family::Vb365, T::Rental) => Months(2),
        (Family::Vb365, T::Subscription | T::Full) => Months(1),
        (Family::Vb365, T::Nfr) => GracePeriod::NONE,
    };
    Some(grace)
}

/// When a license starts warning about its end, or `None` if it never does.
///
/// The tables only give VBR/VCC values (rental 7 days, subscription/evaluation/NFR 30 days,
/// perpetual 14 days before *support* expiry); the console and VB365 are marked unknown, so
/// every product uses the VBR values.
pub fn warning_window(product: Product, license_type: LicenseType) -> Option<WarningWindow> {
    use LicenseType as T;
    // Every family currently shares one row per type; matching on the family keeps a
    // per-product value a one-line change once one is documented.
    let (anchor, days) = match (family(product), license_type) {
        (_, T::Rental) => (WarningAnchor::Expiration, 7),
        (_, T::Subscription | T::Evaluation | T::Nfr | T::Full | T::Promo) => {
            (WarningAnchor::Expiration, 30)
        }
        (_, T::Perpetual) => (WarningAnchor::SupportExpiration, 14),
        (_, T::Community | T::NotInstalled | T::Unknown) => return None,
    };
    Some(WarningWindow { anchor, days })
}

/// What happens on `product` once grace is over (used in status messages).
pub fn after_grace(product: Product) -> &'static str {
    match product {
        Product::Console => "Access to the portal is disabled for all users.",
        Product::CloudConnectSite | Product::BackupAndReplication => {
            "Jobs stop processing workloads; restores are still possible."
        }
        Product::VOne => "Veeam ONE stops collecting data for the licensed objects.",
        Product::Vb365 => "Processing of all users stops; restores are still possible.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use GracePeriod::{Days, Months};
    use LicenseType as T;

    #[test]
    fn grace_table() {
        let rows = [
            (Product::Console, T::Rental, Some(Days(60))),
            (Product::Console, T::Subscription, Some(Days(30))),
            (Product::Console, T::Nfr, Some(Days(30))),
            (Product::Console, T::Evaluation, Some(Days(0))),
            (Product::Console, T::Perpetual, None),
            (Product::BackupAndReplication, T::Rental, Some(Days(60))),
            (Product::CloudConnectSite, T::Rental, Some(Days(60))),
            (
                Product::BackupAndReplication,
                T::Subscription,
                Some(Days(30)),
            ),
            (Product::BackupAndReplication, T::Evaluation, Some(Days(0))),
            (Product::BackupAndReplication, T::Nfr, Some(Days(0))),
            (Product::BackupAndReplication, T::Perpetual, None),
            (Product::VOne, T::Rental, Some(Days(60))),
            (Product::VOne, T::Subscription, Some(Days(30))),
            (Product::Vb365, T::Rental, Some(Months(2))),
            (Product::Vb365, T::Subscription, Some(Months(1))),
            (Product::Vb365, T::Evaluation, Some(Days(0))),
            (Product::Vb365, T::Community, None),
            (Product::BackupAndReplication, T::NotInstalled, None),
        ];
        for (product, license_type, expected) in rows {
            assert_eq!(
                grace_period(product, license_type),
                expected,
                "{product:?} {license_type:?}"
            );
        }
    }

    #[test]
    fn day_grace_is_exact_24h_days() {
        let expiry = Utc.with_ymd_and_hms(2024, 3, 30, 23, 59, 59).unwrap();
        assert_eq!(
            Days(60).ends_at(expiry),
            expiry + TimeDelta::seconds(60 * 86_400)
        );
        assert_eq!(GracePeriod::NONE.ends_at(expiry), expiry);
        assert!(GracePeriod::NONE.is_none() && !Days(1).is_none());
    }

    #[test]
    fn month_grace_follows_the_calendar() {
        let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 23, 59, 59).unwrap();
        // 31 January + 1 month clamps to the end of February, leap year or not.
        assert_eq!(Months(1).ends_at(at(2024, 1, 31)), at(2024, 2, 29));
        assert_eq!(Months(1).ends_at(at(2023, 1, 31)), at(2023, 2, 28));
        // Two months from the end of December reach the end of February.
        assert_eq!(Months(2).ends_at(at(2023, 12, 31)), at(2024, 2, 29));
        // From the end of a 30-day month the day of month is kept.
        assert_eq!(Months(1).ends_at(at(2024, 4, 30)), at(2024, 5, 30));
        assert_eq!(Months(2).ends_at(at(2024, 6, 30)), at(2024, 8, 30));
        // The same "1 month" is 29, 30 or 31 days long depending on the month.
        let len = |y, m, d| (Months(1).ends_at(at(y, m, d)) - at(y, m, d)).num_days();
        assert_eq!(len(2024, 2, 15), 29);
        assert_eq!(len(2024, 4, 15), 30);
        assert_eq!(len(2024, 5, 15), 31);
    }

    #[test]
    fn warning_windows() {
        let w = |t| warning_window(Product::BackupAndReplication, t);
        assert_eq!(
            w(T::Rental),
            Some(WarningWindow {
                anchor: WarningAnchor::Expiration,
                days: 7
            })
        );
        for t in [T::Subscription, T::Evaluation, T::Nfr] {
            assert_eq!(
                w(t).map(|w| (w.anchor, w.days)),
                Some((WarningAnchor::Expiration, 30))
            );
        }
        assert_eq!(
            w(T::Perpetual),
            Some(WarningWindow {
                anchor: WarningAnchor::SupportExpiration,
                days: 14
            })
        );
        assert_eq!(w(T::Community), None);
        for p in Product::ALL {
            assert_eq!(warning_window(*p, T::Rental).map(|w| w.days), Some(7));
        }
        let at = Utc.with_ymd_and_hms(2024, 3, 31, 0, 0, 0).unwrap();
        assert_eq!(
            w(T::Rental).unwrap().starts_at(at),
            Utc.with_ymd_and_hms(2024, 3, 24, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn after_grace_consequences_differ_per_product() {
        assert!(after_grace(Product::Console).contains("portal"));
        assert!(after_grace(Product::BackupAndReplication).contains("restores"));
        assert_eq!(
            after_grace(Product::CloudConnectSite),
            after_grace(Product::BackupAndReplication)
        );
        assert!(after_grace(Product::Vb365).contains("users"));
    }
}
