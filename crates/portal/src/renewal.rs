//! When and how the portal renews a contract. Pure functions of the claims and the time, so the
//! rules are tested without files or HTTP.
//!
//! * Only **Rental** and **Subscription** licenses are renewed. Evaluation, NFR and Perpetual
//!   files are served as they are, never extended.
//! * A license is **due** when its expiration falls within the renewal window of its type
//!   (default 7 days for Rental, 30 for Subscription) or is already past.
//! * A renewal copies every claim, stamps a fresh `iat` and extends the expiration: Rental to the
//!   last second of the following calendar month, Subscription by one year. The extension is
//!   repeated until the new expiration lies beyond the window, so a renewed file is never itself
//!   due (a contract that lapsed months ago comes back current, not still-expired).
//! * Support runs with the contract: a support expiration that would end before the new
//!   expiration is moved to it; a longer one is kept.

use chrono::{DateTime, Datelike, Duration, Months, SubsecRound, Utc};
use tallyman_domain::LicenseType;
use tallyman_license::claims::end_of_day;
use tallyman_license::LicenseClaims;

/// Default renewal window for Rental licenses, in days.
pub const DEFAULT_RENTAL_WINDOW_DAYS: i64 = 7;
/// Default renewal window for Subscription licenses, in days.
pub const DEFAULT_SUBSCRIPTION_WINDOW_DAYS: i64 = 30;

/// How long before expiry each renewable license type is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPolicy {
    /// Renew a Rental license once it expires within this long.
    pub rental_window: Duration,
    /// Renew a Subscription license once it expires within this long.
    pub subscription_window: Duration,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            rental_window: Duration::days(DEFAULT_RENTAL_WINDOW_DAYS),
            subscription_window: Duration::days(DEFAULT_SUBSCRIPTION_WINDOW_DAYS),
        }
    }
}

impl RenewalPolicy {
    /// The renewal window of `license_type`, or `None` for types the portal never renews.
    pub fn window(&self, license_type: LicenseType) -> Option<Duration> {
        match license_type {
            LicenseType::Rental => Some(self.rental_window),
            LicenseType::Subscription => Some(self.subscription_window),
            LicenseType::Perpetual | LicenseType::Evaluation | LicenseType::Nfr => None,
            // Types a license file never carries.
            LicenseType::Community
            | LicenseType::NotInstalled
            | LicenseType::Unknown
            | LicenseType::Full
            | LicenseType::Promo => None,
        }
    }

    /// Whether `claims` should be renewed at `now`.
    pub fn is_due(&self, claims: &LicenseClaims, now: DateTime<Utc>) -> bool {
        match (self.window(claims.license_type), claims.expiration_date) {
            (Some(window), Some(expires)) => expires <= horizon(now, window),
            _ => false,
        }
    }

    /// The claims of the renewed file when `claims` is due at `now`; `None` when it is not due or
    /// its type is never renewed.
    pub fn renew(&self, claims: &LicenseClaims, now: DateTime<Utc>) -> Option<LicenseClaims> {
        if !self.is_due(claims, now) {
            return None;
        }
        let window = self.window(claims.license_type)?;
        let limit = horizon(now, window);
        let mut expires = claims.expiration_date?;
        while expires <= limit {
            // Each step moves at least 28 days forward, so this ends; `None` only at the end of
            // chrono's calendar, where there is nothing sensible to renew to.
            expires = extend_once(claims.license_type, expires)?;
        }

        let mut renewed = claims.clone();
        // The renewed file must sort after the one it replaces even when both fall in the same
        // second (files carry whole seconds).
        renewed.iat = now.trunc_subsecs(0).max(claims.iat + Duration::seconds(1));
        renewed.expiration_date = Some(expires);
        renewed.support_expiration_date = claims
            .support_expiration_date
            .map(|support| support.max(expires));
        Some(renewed)
    }
}

/// `now + window`, saturating instead of overflowing.
fn horizon(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    now.checked_add_signed(window)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// One renewal term after `expires`.
fn extend_once(license_type: LicenseType, expires: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match license_type {
        LicenseType::Rental => end_of_following_month(expires),
        LicenseType::Subscription => expires.checked_add_months(Months::new(12)),
        LicenseType::Perpetual
        | LicenseType::Evaluation
        | LicenseType::Nfr
        | LicenseType::Community
        | LicenseType::NotInstalled
        | LicenseType::Unknown
        | LicenseType::Full
        | LicenseType::Promo => None,
    }
}

/// 23:59:59 UTC on the last day of the calendar month after the one `t` falls in.
fn end_of_following_month(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let first_of_month = t.date_naive().with_day(1)?;
    let last_day = first_of_month
        .checked_add_months(Months::new(2))?
        .pred_opt()?;
    Some(end_of_day(last_day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use tallyman_domain::Product;
    use tallyman_license::default_claims;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s)
            .single()
            .expect("valid test time")
    }

    fn claims(license_type: LicenseType, issued: DateTime<Utc>) -> LicenseClaims {
        default_claims(Product::CloudConnectSite, license_type, issued)
    }

    #[test]
    fn rental_is_due_only_inside_its_window() {
        let policy = RenewalPolicy::default();
        // Issued on 2 November: expires 30 November 23:59:59.
        let c = claims(LicenseType::Rental, at(2026, 11, 2, 9, 0, 0));
        assert!(!policy.is_due(&c, at(2026, 11, 23, 23, 59, 58)));
        assert!(policy.is_due(&c, at(2026, 11, 23, 23, 59, 59)));
        assert!(policy.is_due(&c, at(2026, 12, 15, 0, 0, 0)), "expired");
    }

    #[test]
    fn rental_renews_to_the_end_of_the_following_month() {
        let policy = RenewalPolicy::default();
        let c = claims(LicenseType::Rental, at(2026, 11, 2, 9, 0, 0));
        let now = at(2026, 11, 27, 14, 30, 15);
        let r = policy.renew(&c, now).expect("due");
        assert_eq!(r.expiration_date, Some(at(2026, 12, 31, 23, 59, 59)));
        assert_eq!(
            r.support_expiration_date,
            Some(at(2026, 12, 31, 23, 59, 59))
        );
        assert_eq!(r.iat, now);
        assert_eq!(r.license_id, c.license_id);
        assert_eq!(r.support_id, c.support_id);
        assert_eq!(r.units, c.units);
        assert!(r.validate().is_ok());
    }

    #[test]
    fn rental_renewal_handles_short_months() {
        let policy = RenewalPolicy::default();
        let c = claims(LicenseType::Rental, at(2028, 1, 10, 0, 0, 0));
        let r = policy.renew(&c, at(2028, 1, 30, 0, 0, 0)).expect("due");
        assert_eq!(r.expiration_date, Some(at(2028, 2, 29, 23, 59, 59)));
    }

    #[test]
    fn a_lapsed_rental_comes_back_current() {
        let policy = RenewalPolicy::default();
        // Expired 31 March; asked on 20 June.
        let c = claims(LicenseType::Rental, at(2026, 3, 1, 0, 0, 0));
        let now = at(2026, 6, 20, 0, 0, 0);
        let r = policy.renew(&c, now).expect("due");
        // June's end is within seven days of the 20th? No: 30 June is ten days away.
        assert_eq!(r.expiration_date, Some(at(2026, 6, 30, 23, 59, 59)));
        // Late in the month the new term skips to the month after.
        let r = policy.renew(&c, at(2026, 6, 27, 0, 0, 0)).expect("due");
        assert_eq!(r.expiration_date, Some(at(2026, 7, 31, 23, 59, 59)));
    }

    #[test]
    fn a_renewed_file_is_not_due_again() {
        let policy = RenewalPolicy::default();
        for lt in [LicenseType::Rental, LicenseType::Subscription] {
            let c = claims(lt, at(2026, 1, 31, 12, 0, 0));
            let now = at(2027, 1, 30, 0, 0, 0);
            let r = policy.renew(&c, now).expect("due");
            assert!(policy.renew(&r, now).is_none(), "{lt:?} renewed twice");
        }
    }

    #[test]
    fn subscription_renews_for_a_year() {
        let policy = RenewalPolicy::default();
        // Expires 14 May 2027 23:59:59.
        let c = claims(LicenseType::Subscription, at(2026, 5, 14, 10, 0, 0));
        assert!(policy.renew(&c, at(2027, 4, 14, 0, 0, 0)).is_none());
        let r = policy.renew(&c, at(2027, 4, 20, 0, 0, 0)).expect("due");
        assert_eq!(r.expiration_date, Some(at(2028, 5, 14, 23, 59, 59)));
    }

    #[test]
    fn the_windows_are_configurable() {
        let policy = RenewalPolicy {
            rental_window: Duration::days(1),
            subscription_window: Duration::days(60),
        };
        let rental = claims(LicenseType::Rental, at(2026, 11, 2, 9, 0, 0));
        assert!(policy.renew(&rental, at(2026, 11, 27, 0, 0, 0)).is_none());
        assert!(policy.renew(&rental, at(2026, 11, 30, 0, 0, 0)).is_some());
        let sub = claims(LicenseType::Subscription, at(2026, 5, 14, 10, 0, 0));
        assert!(policy.renew(&sub, at(2027, 3, 20, 0, 0, 0)).is_some());
    }

    #[test]
    fn other_types_are_never_renewed() {
        let policy = RenewalPolicy::default();
        let long_after = at(2030, 1, 1, 0, 0, 0);
        for lt in [
            LicenseType::Evaluation,
            LicenseType::Nfr,
            LicenseType::Perpetual,
        ] {
            let c = claims(lt, at(2026, 1, 1, 0, 0, 0));
            assert!(!policy.is_due(&c, long_after), "{lt:?}");
            assert!(policy.renew(&c, long_after).is_none(), "{lt:?}");
        }
    }

    #[test]
    fn the_new_iat_is_later_even_within_the_same_second() {
        let policy = RenewalPolicy::default();
        let issued = at(2026, 11, 28, 8, 0, 0);
        let c = claims(LicenseType::Rental, issued);
        let r = policy
            .renew(&c, issued + Duration::milliseconds(300))
            .expect("due");
        assert_eq!(r.iat, issued + Duration::seconds(1));
    }

    #[test]
    fn longer_support_is_kept() {
        let policy = RenewalPolicy::default();
        let mut c = claims(LicenseType::Rental, at(2026, 11, 2, 9, 0, 0));
        let support = at(2027, 6, 30, 23, 59, 59);
        c.support_expiration_date = Some(support);
        let r = policy.renew(&c, at(2026, 11, 28, 0, 0, 0)).expect("due");
        assert_eq!(r.support_expiration_date, Some(support));
    }
}
