//! License status: the bucket (`status`) and its human explanation (`statusMessage`) for a
//! license at a given instant (licensing.md §2.1).
//!
//! Veeam publishes no derivation, so this is our rule table, evaluated top-down with the
//! first match winning:
//!
//! | # | condition | status |
//! |---|---|---|
//! | 1 | nothing collected from the server yet | `Unknown` |
//! | 2 | no license, Community mode (console: `Error`, type `NotInstalled`) | `Unlicensed` |
//! | 2b | the reported type is `Unknown` | `Unknown` |
//! | 3 | file invalid, license does not fit the product, or grace is over | `Error` |
//! | 4 | sockets or capacity exceeded, or units beyond the allowed increase | `Error` |
//! | 5 | past expiry, still inside grace | `Expired` |
//! | 6 | units over the limit within the allowance, expiring soon, support expiring soon, auto-update failing | `Warning` |
//! | 7 | otherwise | `Valid` |
//!
//! licensing.md lists "beyond the allowed increase" after the warnings; it is checked before
//! them here (and before `Expired`) so that a more severe fact is never hidden by a milder
//! one: for fixed license facts the status only ever gets worse as time moves on.
//!
//! Timing follows the [crate-level convention](crate#time): the expiry is the exact `expirationDate` instant, a license
//! is expired strictly after it, grace includes its last instant, and day counts are whole
//! days rounded up.

use chrono::{DateTime, Utc};

use crate::days::{ceil_days, days_phrase};
use crate::exceed::{allowed_increase, assess, Exceed};
use crate::grace::{after_grace, grace_period, warning_window, GracePeriod, WarningAnchor};
use crate::install::check_fit;
use crate::license::{ConsoleLicenseStatus, LicenseStatus, LicenseTerms, LicenseType, UnitType};
use crate::product::Product;

const NOT_COLLECTED: &str = "License information is not available.";
const NOT_INSTALLED: &str = "No license is installed.";
const TYPE_UNKNOWN: &str = "The license type could not be determined.";

/// What we know about the server (or console) apart from its license terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerState {
    /// The resource being evaluated; decides grace tables, allowances and the console's
    /// special "no license" status.
    pub target: Product,
    /// The server has delivered license information at least once (or it is cached). When
    /// false and no terms are known, the status is `Unknown` rather than `Unlicensed`.
    pub license_info_collected: bool,
    /// The product rejected the installed file (signature or format).
    pub license_file_invalid: bool,
    /// The last automatic license update failed.
    pub auto_update_failing: bool,
    /// A usage report was submitted (for us: finalized) in the last 30 days; doubles some
    /// exceed allowances while auto-update is on.
    pub usage_report_submitted_recently: bool,
}

impl ServerState {
    /// A server that has reported its license and has nothing wrong besides its terms.
    pub const fn reported(target: Product) -> Self {
        ServerState {
            target,
            license_info_collected: true,
            license_file_invalid: false,
            auto_update_failing: false,
            usage_report_submitted_recently: false,
        }
    }

    /// A server we have no license information from yet.
    pub const fn not_collected(target: Product) -> Self {
        ServerState {
            license_info_collected: false,
            ..ServerState::reported(target)
        }
    }
}

/// Which rule decided the status; alarms key off this rather than the message text.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusReason {
    /// Row 1: no license information yet.
    NotCollected,
    /// Row 2: nothing installed, or Community mode.
    NotInstalled,
    /// Row 2b: the reported license type cannot be classified.
    TypeUnknown,
    /// Row 3: the product rejected the file.
    InvalidFile,
    /// Row 3: the license does not suit the product; `detail` says why.
    ProductMismatch { detail: String },
    /// Row 3: expired and grace is over (or there was none).
    GraceOver {
        expired_at: DateTime<Utc>,
        grace_ended_at: DateTime<Utc>,
    },
    /// Row 4: more sockets used than licensed; socket sections cannot be exceeded.
    SocketsExceeded { used: f64, licensed: f64 },
    /// Row 4: more capacity used than licensed; capacity cannot be exceeded.
    CapacityExceeded { used: f64, licensed: f64 },
    /// Row 4: units used beyond the licensed amount plus the allowed increase.
    UnitsBeyondAllowance { over: f64, allowed: f64 },
    /// Row 5: expired, inside grace.
    ExpiredInGrace { grace_ends_at: DateTime<Utc> },
    /// Row 6: over the licensed units, within the allowed increase.
    UnitsWithinAllowance { over: f64, allowed: f64 },
    /// Row 6: inside the warning window before expiry.
    ExpiringSoon { expires_at: DateTime<Utc> },
    /// Row 6: perpetual license inside the warning window before support expiry.
    SupportExpiringSoon { support_expires_at: DateTime<Utc> },
    /// Row 6: automatic license update is failing.
    AutoUpdateFailing,
    /// Row 7.
    Valid,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub status: LicenseStatus,
    pub reason: StatusReason,
    /// `statusMessage`, e.g. "Valid (132 days until expiration)".
    pub message: String,
    /// The type to report: the license's own, or `NotInstalled` when there is none.
    pub license_type: LicenseType,
    /// Whole days (rounded up) until the expiry instant; `None` when the license does not
    /// expire or has already expired.
    pub days_until_expiration: Option<i64>,
    /// Last instant of grace, when the license expires at all.
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// Whole days (rounded up) of grace left; only while `Expired`.
    pub grace_days_remaining: Option<i64>,
}

impl Evaluation {
    /// The status in the console's enum (which has no `Unlicensed`).
    pub fn console_status(&self) -> ConsoleLicenseStatus {
        ConsoleLicenseStatus::from_status(self.status)
    }
}

/// Evaluates the status of `license` on `state.target` at `now`.
pub fn evaluate(
    license: Option<&LicenseTerms>,
    state: &ServerState,
    now: DateTime<Utc>,
) -> Evaluation {
    let target = state.target;
    let bare = |status, reason, message: String, license_type| Evaluation {
        status,
        reason,
        message,
        license_type,
        days_until_expiration: None,
        grace_ends_at: None,
        grace_days_remaining: None,
    };

    // Rows 1, 2 and 2b: nothing to evaluate.
    let Some(terms) = license else {
        if !state.license_info_collected {
            return bare(
                LicenseStatus::Unknown,
                StatusReason::NotCollected,
                NOT_COLLECTED.to_owned(),
                LicenseType::Unknown,
            );
        }
        return not_installed(target, LicenseType::NotInstalled);
    };
    match terms.license_type {
        LicenseType::Community | LicenseType::NotInstalled => {
            return not_installed(target, terms.license_type)
        }
        LicenseType::Unknown => {
            return bare(
                LicenseStatus::Unknown,
                StatusReason::TypeUnknown,
                TYPE_UNKNOWN.to_owned(),
                LicenseType::Unknown,
            )
        }
        _ => {}
    }

    let time = Timeline::new(target, terms, now);
    let done = |status, reason: StatusReason| {
        let message = message(target, terms, &reason, &time);
        Evaluation {
            status,
            reason,
            message,
            license_type: terms.license_type,
            days_until_expiration: time.days_until_expiration,
            grace_ends_at: time.grace_ends_at,
            grace_days_remaining: time.grace_days_remaining,
        }
    };

    // Row 3.
    if state.license_file_invalid {
        return done(LicenseStatus::Error, StatusReason::InvalidFile);
    }
    if let Err(refusal) = check_fit(target, terms) {
        let detail = refusal.to_string();
        return done(
            LicenseStatus::Error,
            StatusReason::ProductMismatch { detail },
        );
    }
    if let (Some(expired_at), Some(grace_ended_at)) = (terms.expiration, time.grace_ends_at) {
        if now > grace_ended_at {
            let reason = StatusReason::GraceOver {
                expired_at,
                grace_ended_at,
            };
            return done(LicenseStatus::Error, reason);
        }
    }

    // Row 4: limits that cannot be exceeded, then the units' allowance.
    if let (Some(licensed), Some(used)) = (terms.sockets, terms.used_sockets) {
        if used > licensed {
            return done(
                LicenseStatus::Error,
                StatusReason::SocketsExceeded { used, licensed },
            );
        }
    }
    if let (Some(licensed), Some(used)) = (terms.capacity, terms.used_capacity) {
        if used > licensed {
            return done(
                LicenseStatus::Error,
                StatusReason::CapacityExceeded { used, licensed },
            );
        }
    }
    let units = match terms.unit_meter() {
        (Some(licensed), Some(used)) => {
            let allowed = allowed_increase(
                target,
                terms.license_type,
                licensed,
                terms.auto_update_enabled,
                state.usage_report_submitted_recently,
            );
            assess(licensed, used, allowed)
        }
        _ => Exceed::WithinLimit,
    };
    if let Exceed::BeyondAllowance { over, allowed } = units {
        return done(
            LicenseStatus::Error,
            StatusReason::UnitsBeyondAllowance { over, allowed },
        );
    }

    // Row 5.
    if let (Some(_), Some(grace_ends_at)) = (time.grace_days_remaining, time.grace_ends_at) {
        return done(
            LicenseStatus::Expired,
            StatusReason::ExpiredInGrace { grace_ends_at },
        );
    }

    // Row 6.
    if let Exceed::WithinAllowance { over, allowed } = units {
        return done(
            LicenseStatus::Warning,
            StatusReason::UnitsWithinAllowance { over, allowed },
        );
    }
    if let Some(window) = warning_window(target, terms.license_type) {
        let anchor = match window.anchor {
            WarningAnchor::Expiration => terms.expiration,
            WarningAnchor::SupportExpiration => terms.support_expiration,
        };
        if let Some(at) = anchor {
            if now >= window.starts_at(at) && now <= at {
                let reason = match window.anchor {
                    WarningAnchor::Expiration => StatusReason::ExpiringSoon { expires_at: at },
                    WarningAnchor::SupportExpiration => StatusReason::SupportExpiringSoon {
                        support_expires_at: at,
                    },
                };
                return done(LicenseStatus::Warning, reason);
            }
        }
    }
    if state.auto_update_failing {
        return done(LicenseStatus::Warning, StatusReason::AutoUpdateFailing);
    }

    // Row 7.
    done(LicenseStatus::Valid, StatusReason::Valid)
}

/// Row 2: the console has no `Unlicensed`; it reports `Error` with type `NotInstalled`.
fn not_installed(target: Product, reported: LicenseType) -> Evaluation {
    let (status, license_type) = if target == Product::Console {
        (LicenseStatus::Error, LicenseType::NotInstalled)
    } else {
        (LicenseStatus::Unlicensed, reported)
    };
    let message = if reported == LicenseType::Community && target != Product::Console {
        "No license is installed (Community Edition)."
    } else {
        NOT_INSTALLED
    };
    Evaluation {
        status,
        reason: StatusReason::NotInstalled,
        message: message.to_owned(),
        license_type,
        days_until_expiration: None,
        grace_ends_at: None,
        grace_days_remaining: None,
    }
}

/// Where `now` stands relative to the expiry instant and the end of grace.
struct Timeline {
    now: DateTime<Utc>,
    grace: GracePeriod,
    days_until_expiration: Option<i64>,
    days_since_expiration: Option<i64>,
    grace_ends_at: Option<DateTime<Utc>>,
    grace_days_remaining: Option<i64>,
}

impl Timeline {
    fn new(target: Product, terms: &LicenseTerms, now: DateTime<Utc>) -> Self {
        // A type without a grace entry (perpetual) that still carries an expiration date is
        // held to that date with no grace: the date is the only fact we have.
        let grace = grace_period(target, terms.license_type).unwrap_or(GracePeriod::NONE);
        let Some(expiry) = terms.expiration else {
            return Timeline {
                now,
                grace,
                days_until_expiration: None,
                days_since_expiration: None,
                grace_ends_at: None,
                grace_days_remaining: None,
            };
        };
        let grace_ends_at = grace.ends_at(expiry);
        let expired = now > expiry;
        Timeline {
            now,
            grace,
            days_until_expiration: (!expired).then(|| ceil_days(expiry - now)),
            days_since_expiration: expired.then(|| ceil_days(now - expiry)),
            grace_ends_at: Some(grace_ends_at),
            grace_days_remaining: (expired && now <= grace_ends_at)
                .then(|| ceil_days(grace_ends_at - now)),
        }
    }
}

fn unit_noun(target: Product, unit_type: UnitType) -> &'static str {
    match (target, unit_type) {
        (Product::Vb365, _) => "users",
        (_, UnitType::Points) => "points",
        (_, UnitType::Instances) => "instances",
        (_, UnitType::Unknown) => "units",
    }
}

/// Fractional units shown with at most two decimals, without trailing zeros.
fn amount(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    format!("{rounded}")
}

fn message(
    target: Product,
    terms: &LicenseTerms,
    reason: &StatusReason,
    time: &Timeline,
) -> String {
    let noun = unit_noun(target, terms.unit_type);
    let days = |d: Option<i64>| days_phrase(d.unwrap_or(0));
    match reason {
        StatusReason::NotCollected => NOT_COLLECTED.to_owned(),
        StatusReason::NotInstalled => NOT_INSTALLED.to_owned(),
        StatusReason::TypeUnknown => TYPE_UNKNOWN.to_owned(),
        StatusReason::InvalidFile => "License is invalid.".to_owned(),
        StatusReason::ProductMismatch { detail } => format!("License is invalid. {detail}"),
        StatusReason::GraceOver { .. } => {
            let grace = if time.grace.is_none() {
                "there is no grace period"
            } else {
                "the grace period is over"
            };
            format!(
                "License expired {} ago; {grace}. {}",
                days(time.days_since_expiration),
                after_grace(target)
            )
        }
        StatusReason::SocketsExceeded { used, licensed } => format!(
            "Socket limit exceeded: {} of {} sockets in use. Socket licenses cannot be \
             exceeded; workloads above the limit are not processed.",
            amount(*used),
            amount(*licensed)
        ),
        StatusReason::CapacityExceeded { used, licensed } => format!(
            "Capacity limit exceeded: {} of {} TB in use. Capacity licenses cannot be \
             exceeded; workloads above the limit are not processed.",
            amount(*used),
            amount(*licensed)
        ),
        StatusReason::UnitsBeyondAllowance { over, allowed } => format!(
            "License limit exceeded by {} {noun}, more than the allowed increase of {}; \
             workloads above the limit are not processed.",
            amount(*over),
            amount(*allowed)
        ),
        StatusReason::ExpiredInGrace { .. } => format!(
            "Expired ({} of grace period remaining)",
            days(time.grace_days_remaining)
        ),
        StatusReason::UnitsWithinAllowance { over, .. } => {
            format!("Valid, license limit exceeded by {} {noun}", amount(*over))
        }
        StatusReason::ExpiringSoon { .. } => match time.days_until_expiration {
            // Only at the expiry instant itself: not yet expired, no whole day left.
            Some(0) | None => "Expires now".to_owned(),
            d => format!("Expires in {}", days(d)),
        },
        StatusReason::SupportExpiringSoon { support_expires_at } => {
            let left = days_phrase(ceil_days(*support_expires_at - time.now));
            format!("Valid, support expires in {left}")
        }
        StatusReason::AutoUpdateFailing => {
            "Valid, but automatic license update is failing.".to_owned()
        }
        StatusReason::Valid => match time.days_until_expiration {
            Some(d) => format!("Valid ({} until expiration)", days_phrase(d)),
            // A perpetual license keeps working after support lapses; say so rather than warn
            // forever about a state the provider may have chosen.
            None if terms.support_expiration.is_some_and(|s| s < time.now) => {
                "Valid (support expired)".to_owned()
            }
            None => "Valid".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::license::{CloudConnect, Package, SectionType};
    use chrono::{TimeDelta, TimeZone};
    use LicenseType as T;
    use Product as P;

    const SECOND: TimeDelta = TimeDelta::seconds(1);

    fn expiry() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 31, 23, 59, 59).unwrap()
    }

    /// A license that fits `product`, expiring at [`expiry`], with no usage counters.
    fn terms(product: Product, license_type: LicenseType) -> LicenseTerms {
        LicenseTerms {
            cloud_connect: CloudConnect::Yes,
            packages: vec![Package::Suite],
            section_types: vec![SectionType::Instance],
            unit_type: UnitType::Points,
            expiration: Some(expiry()),
            has_license_id: true,
            ..LicenseTerms::new(product, license_type)
        }
    }

    fn eval_at(t: &LicenseTerms, target: Product, now: DateTime<Utc>) -> Evaluation {
        evaluate(Some(t), &ServerState::reported(target), now)
    }

    fn far_before() -> DateTime<Utc> {
        expiry() - TimeDelta::days(100)
    }

    // ---- rows of the table -----------------------------------------------------------

    #[test]
    fn row1_unknown_until_something_was_collected() {
        for target in P::ALL {
            let e = evaluate(None, &ServerState::not_collected(*target), expiry());
            assert_eq!(e.status, LicenseStatus::Unknown);
            assert_eq!(e.reason, StatusReason::NotCollected);
            assert_eq!(e.message, "License information is not available.");
            assert_eq!(e.console_status(), ConsoleLicenseStatus::Unknown);
        }
        // Cached terms are evaluated even if the server is not reporting right now.
        let t = terms(P::BackupAndReplication, T::Rental);
        let e = evaluate(
            Some(&t),
            &ServerState::not_collected(P::BackupAndReplication),
            far_before(),
        );
        assert_eq!(e.status, LicenseStatus::Valid);
    }

    #[test]
    fn row2_unlicensed_or_console_error_not_installed() {
        for target in [
            P::CloudConnectSite,
            P::BackupAndReplication,
            P::VOne,
            P::Vb365,
        ] {
            let e = evaluate(None, &ServerState::reported(target), expiry());
            assert_eq!(e.status, LicenseStatus::Unlicensed);
            assert_eq!(e.license_type, T::NotInstalled);
            assert_eq!(e.message, "No license is installed.");

            let community = LicenseTerms::new(target, T::Community);
            let e = eval_at(&community, target, expiry());
            assert_eq!(e.status, LicenseStatus::Unlicensed);
            assert_eq!(e.license_type, T::Community);
            assert_eq!(e.message, "No license is installed (Community Edition).");
        }
        let e = evaluate(None, &ServerState::reported(P::Console), expiry());
        assert_eq!(e.status, LicenseStatus::Error);
        assert_eq!(e.console_status(), ConsoleLicenseStatus::Error);
        assert_eq!(e.license_type, T::NotInstalled);
        let e = eval_at(
            &LicenseTerms::new(P::Console, T::Community),
            P::Console,
            expiry(),
        );
        assert_eq!(
            (e.status, e.license_type),
            (LicenseStatus::Error, T::NotInstalled)
        );
    }

    #[test]
    fn row2b_unknown_type() {
        let t = terms(P::VOne, T::Unknown);
        let e = eval_at(&t, P::VOne, far_before());
        assert_eq!(
            (e.status, e.reason),
            (LicenseStatus::Unknown, StatusReason::TypeUnknown)
        );
    }

    #[test]
    fn row3_invalid_file_or_product_mismatch_is_error() {
        let t = terms(P::BackupAndReplication, T::Rental);
        let state = ServerState {
            license_file_invalid: true,
            ..ServerState::reported(P::BackupAndReplication)
        };
        let e = evaluate(Some(&t), &state, far_before());
        assert_eq!(e.status, LicenseStatus::Error);
        assert_eq!(e.message, "License is invalid.");

        let no_cc = LicenseTerms {
            cloud_connect: CloudConnect::No,
            ..t.clone()
        };
        let e = eval_at(&no_cc, P::CloudConnectSite, far_before());
        assert_eq!(e.status, LicenseStatus::Error);
        assert!(matches!(e.reason, StatusReason::ProductMismatch { .. }));
        assert!(
            e.message.contains("does not include Veeam Cloud Connect"),
            "{}",
            e.message
        );
        // The same license is fine on a plain backup server.
        assert_eq!(
            eval_at(&no_cc, P::BackupAndReplication, far_before()).status,
            LicenseStatus::Valid
        );
    }

    #[test]
    fn row3_grace_over_is_error_with_consequence() {
        let t = terms(P::BackupAndReplication, T::Rental);
        let e = eval_at(&t, P::BackupAndReplication, expiry() + TimeDelta::days(61));
        assert_eq!(e.status, LicenseStatus::Error);
        assert_eq!(
            e.message,
            "License expired 61 days ago; the grace period is over. Jobs stop processing \
             workloads; restores are still possible."
        );
        let eval = terms(P::Console, T::Evaluation);
        let e = eval_at(&eval, P::Console, expiry() + SECOND);
        assert_eq!(e.console_status(), ConsoleLicenseStatus::Error);
        assert_eq!(
            e.message,
            "License expired 1 day ago; there is no grace period. Access to the portal is \
             disabled for all users."
        );
    }

    #[test]
    fn row4_hard_limits_and_beyond_allowance_are_errors() {
        let base = terms(P::BackupAndReplication, T::Perpetual);
        let sockets = LicenseTerms {
            sockets: Some(4.0),
            used_sockets: Some(5.0),
            expiration: None,
            ..base.clone()
        };
        let e = eval_at(&sockets, P::BackupAndReplication, far_before());
        assert_eq!(e.status, LicenseStatus::Error);
        assert_eq!(
            e.reason,
            StatusReason::SocketsExceeded {
                used: 5.0,
                licensed: 4.0
            }
        );
        assert!(e
            .message
            .starts_with("Socket limit exceeded: 5 of 4 sockets"));
        let at_limit = LicenseTerms {
            used_sockets: Some(4.0),
            ..sockets.clone()
        };
        assert_eq!(
            eval_at(&at_limit, P::BackupAndReplication, far_before()).status,
            LicenseStatus::Valid
        );

        let capacity = LicenseTerms {
            capacity: Some(10.0),
            used_capacity: Some(10.5),
            expiration: None,
            ..base.clone()
        };
        let e = eval_at(&capacity, P::BackupAndReplication, far_before());
        assert_eq!(e.status, LicenseStatus::Error);
        assert!(e.message.contains("10.5 of 10 TB"), "{}", e.message);

        // Beyond the allowance wins over "expiring soon" and over "expired in grace".
        let rental = LicenseTerms {
            units: Some(100.0),
            used_units: Some(120.5),
            ..terms(P::BackupAndReplication, T::Rental)
        };
        for now in [expiry() - TimeDelta::days(2), expiry() + TimeDelta::days(2)] {
            let e = eval_at(&rental, P::BackupAndReplication, now);
            assert_eq!(e.status, LicenseStatus::Error, "{now}");
            assert_eq!(
                e.message,
                "License limit exceeded by 20.5 points, more than the allowed increase of 20; \
                 workloads above the limit are not processed."
            );
        }
    }

    #[test]
    fn row5_expired_inside_grace() {
        let t = terms(P::CloudConnectSite, T::Rental);
        let e = eval_at(&t, P::CloudConnectSite, expiry() + TimeDelta::days(10));
        assert_eq!(e.status, LicenseStatus::Expired);
        assert_eq!(e.message, "Expired (50 days of grace period remaining)");
        assert_eq!(e.grace_days_remaining, Some(50));
        assert_eq!(e.days_until_expiration, None);
        assert_eq!(e.grace_ends_at, Some(expiry() + TimeDelta::days(60)));
    }

    #[test]
    fn row6_warnings() {
        // Over the limit within the allowance.
        let over = LicenseTerms {
            units: Some(100.0),
            used_units: Some(113.5),
            ..terms(P::BackupAndReplication, T::Rental)
        };
        let e = eval_at(&over, P::BackupAndReplication, far_before());
        assert_eq!(e.status, LicenseStatus::Warning);
        assert_eq!(e.message, "Valid, license limit exceeded by 13.5 points");

        // Expiring soon.
        let t = terms(P::BackupAndReplication, T::Subscription);
        let e = eval_at(&t, P::BackupAndReplication, expiry() - TimeDelta::days(3));
        assert_eq!(e.status, LicenseStatus::Warning);
        assert_eq!(e.message, "Expires in 3 days");
        assert_eq!(e.days_until_expiration, Some(3));

        // Perpetual: support expiring soon.
        let p = LicenseTerms {
            expiration: None,
            support_expiration: Some(expiry()),
            ..terms(P::BackupAndReplication, T::Perpetual)
        };
        let e = eval_at(&p, P::BackupAndReplication, expiry() - TimeDelta::days(5));
        assert_eq!(e.status, LicenseStatus::Warning);
        assert_eq!(e.message, "Valid, support expires in 5 days");

        // Auto-update failing.
        let state = ServerState {
            auto_update_failing: true,
            ..ServerState::reported(P::Vb365)
        };
        let v = terms(P::Vb365, T::Rental);
        let e = evaluate(Some(&v), &state, far_before());
        assert_eq!(
            (e.status, e.reason),
            (LicenseStatus::Warning, StatusReason::AutoUpdateFailing)
        );
    }

    #[test]
    fn row7_valid_messages() {
        let t = terms(P::VOne, T::Subscription);
        let now = expiry() - TimeDelta::days(131) - TimeDelta::hours(1);
        let e = eval_at(&t, P::VOne, now);
        assert_eq!(e.status, LicenseStatus::Valid);
        assert_eq!(e.message, "Valid (132 days until expiration)");
        assert_eq!(e.days_until_expiration, Some(132));

        let perpetual = LicenseTerms {
            expiration: None,
            support_expiration: Some(expiry()),
            ..terms(P::BackupAndReplication, T::Perpetual)
        };
        let e = eval_at(&perpetual, P::BackupAndReplication, far_before());
        assert_eq!(
            (e.status, e.message.as_str()),
            (LicenseStatus::Valid, "Valid")
        );
        assert_eq!(e.days_until_expiration, None);
        assert_eq!(e.grace_ends_at, None);
        // Support lapsed: still valid, never a count.
        let e = eval_at(&perpetual, P::BackupAndReplication, expiry() + SECOND);
        assert_eq!(
            (e.status, e.message.as_str()),
            (LicenseStatus::Valid, "Valid (support expired)")
        );
    }

    // ---- grace boundaries ------------------------------------------------------------

    #[test]
    fn grace_boundaries_for_every_product_and_type() {
        for target in P::ALL {
            for license_type in [T::Rental, T::Subscription, T::Evaluation, T::Nfr] {
                let grace = grace_period(*target, license_type).unwrap();
                let t = terms(*target, license_type);
                let end = grace.ends_at(expiry());
                let at = |now| eval_at(&t, *target, now);
                let ctx = format!("{target:?} {license_type:?}");

                // Before and at the expiry instant: not expired.
                let e = at(expiry() - SECOND);
                assert_eq!(e.status, LicenseStatus::Warning, "{ctx}");
                assert_eq!(e.days_until_expiration, Some(1), "{ctx}");
                assert_eq!(e.message, "Expires in 1 day", "{ctx}");
                let e = at(expiry());
                assert_eq!(e.status, LicenseStatus::Warning, "{ctx}");
                assert_eq!(e.days_until_expiration, Some(0), "{ctx}");
                assert_eq!(e.message, "Expires now", "{ctx}");

                let e = at(expiry() + SECOND);
                if grace.is_none() {
                    assert_eq!(end, expiry(), "{ctx}");
                    assert_eq!(e.status, LicenseStatus::Error, "{ctx}");
                    continue;
                }
                assert_eq!(e.status, LicenseStatus::Expired, "{ctx}");
                assert_eq!(
                    e.grace_days_remaining,
                    Some(ceil_days(end - expiry())),
                    "{ctx}"
                );

                let e = at(end - SECOND);
                assert_eq!(e.status, LicenseStatus::Expired, "{ctx}");
                assert_eq!(e.grace_days_remaining, Some(1), "{ctx}");
                let e = at(end);
                assert_eq!(e.status, LicenseStatus::Expired, "{ctx}");
                assert_eq!(
                    e.message, "Expired (0 days of grace period remaining)",
                    "{ctx}"
                );
                let e = at(end + SECOND);
                assert_eq!(e.status, LicenseStatus::Error, "{ctx}");
                assert!(matches!(e.reason, StatusReason::GraceOver { .. }), "{ctx}");
            }
        }
    }

    #[test]
    fn grace_lengths_in_days_per_product() {
        // Grace days remaining one second after expiry = the grace length (rounded up).
        let first_day = |target, license_type| {
            eval_at(&terms(target, license_type), target, expiry() + SECOND).grace_days_remaining
        };
        assert_eq!(first_day(P::Console, T::Rental), Some(60));
        assert_eq!(first_day(P::Console, T::Subscription), Some(30));
        assert_eq!(first_day(P::Console, T::Nfr), Some(30));
        assert_eq!(first_day(P::BackupAndReplication, T::Rental), Some(60));
        assert_eq!(
            first_day(P::BackupAndReplication, T::Subscription),
            Some(30)
        );
        assert_eq!(first_day(P::BackupAndReplication, T::Nfr), None);
        // VB365, expiring at the end of 31 January 2024: to the end of February / March.
        assert_eq!(first_day(P::Vb365, T::Subscription), Some(29));
        assert_eq!(first_day(P::Vb365, T::Rental), Some(29 + 31));
    }

    #[test]
    fn vb365_month_grace_across_month_lengths() {
        let cases = [
            // (expiry, grace months, expected last instant of grace)
            ((2024, 1, 31), 1, (2024, 2, 29)),
            ((2023, 1, 31), 1, (2023, 2, 28)),
            ((2024, 2, 29), 1, (2024, 3, 29)),
            ((2024, 3, 31), 1, (2024, 4, 30)),
            ((2024, 12, 31), 2, (2025, 2, 28)),
            ((2024, 1, 31), 2, (2024, 3, 31)),
        ];
        for ((y, m, d), months, (ey, em, ed)) in cases {
            let expires = Utc.with_ymd_and_hms(y, m, d, 23, 59, 59).unwrap();
            let end = Utc.with_ymd_and_hms(ey, em, ed, 23, 59, 59).unwrap();
            let license_type = if months == 1 {
                T::Subscription
            } else {
                T::Rental
            };
            let t = LicenseTerms {
                expiration: Some(expires),
                ..terms(P::Vb365, license_type)
            };
            let at = |now| eval_at(&t, P::Vb365, now).status;
            assert_eq!(at(end), LicenseStatus::Expired, "{expires} +{months}m");
            assert_eq!(
                at(end + SECOND),
                LicenseStatus::Error,
                "{expires} +{months}m"
            );
            let e = eval_at(&t, P::Vb365, expires + SECOND);
            assert_eq!(e.grace_ends_at, Some(end));
            assert_eq!(e.grace_days_remaining, Some((end - expires).num_days()));
        }
    }

    // ---- warning windows ---------------------------------------------------------------

    #[test]
    fn warning_window_edges() {
        for (license_type, days) in [
            (T::Rental, 7),
            (T::Subscription, 30),
            (T::Evaluation, 30),
            (T::Nfr, 30),
        ] {
            for target in P::ALL {
                let t = terms(*target, license_type);
                let start = expiry() - TimeDelta::days(days);
                let before = eval_at(&t, *target, start - SECOND);
                assert_eq!(
                    before.status,
                    LicenseStatus::Valid,
                    "{target:?} {license_type:?}"
                );
                assert_eq!(
                    before.message,
                    format!("Valid ({} days until expiration)", days + 1)
                );
                let at = eval_at(&t, *target, start);
                assert_eq!(
                    at.status,
                    LicenseStatus::Warning,
                    "{target:?} {license_type:?}"
                );
                assert_eq!(at.message, format!("Expires in {days} days"));
            }
        }
        // Perpetual: 14 days before support expiry, up to and including the instant.
        let p = LicenseTerms {
            expiration: None,
            support_expiration: Some(expiry()),
            ..terms(P::BackupAndReplication, T::Perpetual)
        };
        let at = |now| eval_at(&p, P::BackupAndReplication, now).status;
        let start = expiry() - TimeDelta::days(14);
        assert_eq!(at(start - SECOND), LicenseStatus::Valid);
        assert_eq!(at(start), LicenseStatus::Warning);
        assert_eq!(at(expiry()), LicenseStatus::Warning);
        assert_eq!(at(expiry() + SECOND), LicenseStatus::Valid);
    }

    // ---- exceed allowances in the status -----------------------------------------------

    #[test]
    fn exceed_allowance_boundaries_in_status() {
        let status = |t: &LicenseTerms, target, state: ServerState| {
            evaluate(Some(t), &ServerState { target, ..state }, far_before()).status
        };
        let plain = ServerState::reported(P::BackupAndReplication);

        // VBR rental, 100 points: allowance 20.
        let r = |used| LicenseTerms {
            units: Some(100.0),
            used_units: Some(used),
            ..terms(P::BackupAndReplication, T::Rental)
        };
        assert_eq!(
            status(&r(100.0), P::BackupAndReplication, plain),
            LicenseStatus::Valid
        );
        assert_eq!(
            status(&r(100.5), P::BackupAndReplication, plain),
            LicenseStatus::Warning
        );
        assert_eq!(
            status(&r(120.0), P::BackupAndReplication, plain),
            LicenseStatus::Warning
        );
        assert_eq!(
            status(&r(120.5), P::BackupAndReplication, plain),
            LicenseStatus::Error
        );

        // VUL 500 instances: 100 with auto-update, 50 without.
        let vul = |used, auto| LicenseTerms {
            unit_type: UnitType::Instances,
            units: Some(500.0),
            used_units: Some(used),
            auto_update_enabled: auto,
            ..terms(P::BackupAndReplication, T::Subscription)
        };
        let far = ServerState::reported(P::BackupAndReplication);
        let s =
            |t: LicenseTerms| evaluate(Some(&t), &far, far_before() - TimeDelta::days(60)).status;
        assert_eq!(s(vul(600.0, true)), LicenseStatus::Warning);
        assert_eq!(s(vul(601.0, true)), LicenseStatus::Error);
        assert_eq!(s(vul(550.0, false)), LicenseStatus::Warning);
        assert_eq!(s(vul(551.0, false)), LicenseStatus::Error);

        // Console rental 1000: 20 %, doubled only with auto-update and a recent report.
        let console = |used| LicenseTerms {
            units: Some(1000.0),
            used_units: Some(used),
            auto_update_enabled: true,
            ..terms(P::Console, T::Rental)
        };
        let reported = ServerState {
            usage_report_submitted_recently: true,
            ..plain
        };
        assert_eq!(
            status(&console(1200.0), P::Console, plain),
            LicenseStatus::Warning
        );
        assert_eq!(
            status(&console(1400.0), P::Console, plain),
            LicenseStatus::Error
        );
        assert_eq!(
            status(&console(1400.0), P::Console, reported),
            LicenseStatus::Warning
        );
        assert_eq!(
            status(&console(1401.0), P::Console, reported),
            LicenseStatus::Error
        );

        // VB365 counts users.
        let users = |protected| LicenseTerms {
            licensed_users: Some(50),
            protected_users: Some(protected),
            ..terms(P::Vb365, T::Rental)
        };
        assert_eq!(status(&users(70), P::Vb365, plain), LicenseStatus::Warning);
        assert_eq!(status(&users(71), P::Vb365, plain), LicenseStatus::Error);
        let e = evaluate(
            Some(&users(60)),
            &ServerState::reported(P::Vb365),
            far_before(),
        );
        assert_eq!(e.message, "Valid, license limit exceeded by 10 users");

        // Evaluation licenses have no allowance at all.
        let eval = LicenseTerms {
            units: Some(100.0),
            used_units: Some(100.5),
            ..terms(P::BackupAndReplication, T::Evaluation)
        };
        assert_eq!(
            status(&eval, P::BackupAndReplication, plain),
            LicenseStatus::Error
        );
    }

    // ---- monotonicity ----------------------------------------------------------------

    /// Licenses covering every type, every product, and each usage situation.
    fn sweep_licenses() -> Vec<(Product, LicenseTerms, ServerState)> {
        let mut out = Vec::new();
        let types = [
            T::Rental,
            T::Subscription,
            T::Perpetual,
            T::Evaluation,
            T::Nfr,
            T::Full,
            T::Promo,
        ];
        let usages = [None, Some(100.0), Some(110.0), Some(130.0), Some(500.0)];
        for target in P::ALL {
            for license_type in types {
                for used in usages {
                    for auto in [false, true] {
                        for (failing, report) in [(false, false), (true, true)] {
                            for support in [None, Some(expiry() - TimeDelta::days(3))] {
                                let t = LicenseTerms {
                                    units: Some(100.0),
                                    used_units: used,
                                    licensed_users: Some(100),
                                    protected_users: used.map(|u| u as u32),
                                    auto_update_enabled: auto,
                                    support_expiration: support,
                                    expiration: if license_type == T::Perpetual {
                                        None
                                    } else {
                                        Some(expiry())
                                    },
                                    ..terms(*target, license_type)
                                };
                                let state = ServerState {
                                    auto_update_failing: failing,
                                    usage_report_submitted_recently: report,
                                    ..ServerState::reported(*target)
                                };
                                out.push((*target, t, state));
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn status_never_recovers_as_time_moves_forward() {
        // Every hour from 40 days before expiry to 100 days after, plus one-second steps
        // around each interesting instant, for every license in the sweep.
        let mut instants: Vec<DateTime<Utc>> = (-40 * 24..=100 * 24)
            .map(|h| expiry() + TimeDelta::hours(h))
            .collect();
        for edge in [0, 7, 14, 30] {
            let e = expiry() - TimeDelta::days(edge);
            instants.extend([e - SECOND, e, e + SECOND]);
        }
        instants.sort_unstable();

        let mut checked = 0;
        for (target, t, state) in sweep_licenses() {
            let grace_end = grace_period(target, t.license_type)
                .unwrap_or(GracePeriod::NONE)
                .ends_at(expiry());
            let mut extra = vec![grace_end - SECOND, grace_end, grace_end + SECOND];
            extra.extend(instants.iter().copied());
            extra.sort_unstable();

            let mut seen_error = false;
            let mut seen_expired = false;
            for now in extra {
                let status = evaluate(Some(&t), &state, now).status;
                let ctx = || format!("{target:?} {t:?} {state:?} at {now}");
                if seen_error {
                    assert_eq!(status, LicenseStatus::Error, "left Error: {}", ctx());
                }
                if seen_expired {
                    assert!(
                        matches!(status, LicenseStatus::Expired | LicenseStatus::Error),
                        "went back from Expired to {status:?}: {}",
                        ctx()
                    );
                }
                seen_error |= status == LicenseStatus::Error;
                seen_expired |= status == LicenseStatus::Expired;
                checked += 1;
            }
        }
        assert!(checked > 100_000, "sweep too small: {checked}");
    }
}
