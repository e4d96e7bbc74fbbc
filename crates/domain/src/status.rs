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
//! Timing follows [`crate::days`]: the expiry is the exact `expirationDate` instant, a license
//! is expired strictly after it, grace includes its last instant, and day counts are whole
//! days rounded up.

use chrono::{DateTime, Utc};

use crate::days::{ceil_days, days_phrase};
use crate::exceed::{allowed_increase, assess, Exceed};
use crate::grace::{after_grace, grace_period, warning_window, GracePeriod, WarningAnchor};
use crate::install::check_fit;
use crate::license::{ConsoleLicenseStatus, LicenseStatus, LicenseTerms, LicenseType, UnitType};
use crate::product::Product;

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
                "License information is not available.".to_owned(),
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
                "The license type could not be determined.".to_owned(),
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
        return done(LicenseStatus::Error, StatusReason::ProductMismatch { detail });
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
        "No license is installed."
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

fn message(target: Product, terms: &LicenseTerms, reason: &StatusReason, time: &Timeline) -> String {
    let noun = unit_noun(target, terms.unit_type);
    let days = |d: Option<i64>| days_phrase(d.unwrap_or(0));
    match reason {
        StatusReason::NotCollected => "License information is not available.".to_owned(),
        StatusReason::NotInstalled => "No license is installed.".to_owned(),
        StatusReason::TypeUnknown => "The license type could not be determined.".to_owned(),
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
        StatusReason::ExpiringSoon { .. } => {
            format!("Expires in {}", days(time.days_until_expiration))
        }
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
