//! When the next automatic license update attempt is due (licensing.md §2.5).
//!
//! Schedule while auto-update is on: a check every week; daily from 7 days before the
//! license's end; after a failed attempt, retries at the pace the failure calls for; and once
//! a full month has passed since the license's end without a renewal, auto-update is switched
//! off. The license's "end" is the earlier of its expiration and support expiration, and "a
//! month" is the number of days of the month that end falls in.

use chrono::{DateTime, TimeDelta, Utc};

use crate::days::{days_in_month, earlier_of};
use crate::license::{LastUpdateStatus, LicenseTerms};

/// Regular cadence far from the license's end.
pub const WEEKLY: TimeDelta = TimeDelta::days(7);
/// Cadence inside the last week before the license's end (and after it).
pub const DAILY: TimeDelta = TimeDelta::days(1);
/// How long before the end the daily cadence starts.
pub const DAILY_FROM_BEFORE_END: TimeDelta = TimeDelta::days(7);
/// Retry after the update service failed to generate a key.
pub const GENERATION_RETRY: TimeDelta = TimeDelta::hours(24);
/// Retry after the update service could not be reached or answered nonsense.
pub const UNREACHABLE_RETRY: TimeDelta = TimeDelta::minutes(60);

/// Result of one update attempt, following the update service's message catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// A newer key was received and installed.
    Installed,
    /// Nothing newer exists yet (the license is more than a week from its end).
    UpToDate,
    /// The license type cannot be updated automatically.
    NotSupported,
    /// The key's signature or id was rejected.
    InvalidKey,
    /// The contract behind the license has expired.
    ContractExpired,
    /// Licensing under the contract was terminated; auto-update switches itself off.
    ContractTerminated,
    /// The update service failed to generate a key.
    GenerationError,
    /// The update service could not be reached, or its answer was unusable.
    Unreachable,
}

impl UpdateOutcome {
    /// Whether the attempt failed (raises the "license update state" alarm).
    pub const fn is_failure(self) -> bool {
        !matches!(self, UpdateOutcome::Installed | UpdateOutcome::UpToDate)
    }

    /// The console's `lastUpdateStatus` for this outcome.
    pub const fn last_update_status(self) -> LastUpdateStatus {
        if self.is_failure() {
            LastUpdateStatus::Error
        } else {
            LastUpdateStatus::Success
        }
    }
}

/// The previous automatic attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastAttempt {
    pub at: DateTime<Utc>,
    pub outcome: UpdateOutcome,
}

/// Why no attempt is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotScheduled {
    /// Auto-update is off.
    Off,
    /// The license has no license id, so there is nothing to ask the update service for.
    NoLicenseId,
    /// Community, not installed or unknown: nothing to update.
    NotALicense,
}

/// Why auto-update must now be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableReason {
    /// The update service reported the contract as terminated.
    ContractTerminated,
    /// A month has passed since the license's end without a renewal.
    RetryWindowClosed { closed_at: DateTime<Utc> },
}

/// What the auto-update job should do about one license.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextUpdate {
    /// Attempt at (or after) this instant; it may already be in the past.
    DueAt(DateTime<Utc>),
    /// Switch auto-update off (and stop weekly usage statistics).
    Disable(DisableReason),
    /// Nothing to do.
    NotScheduled(NotScheduled),
}

/// Decides the next automatic update attempt for `terms`, given the previous attempt (if any)
/// and the current time.
pub fn next_update(
    terms: &LicenseTerms,
    last: Option<&LastAttempt>,
    now: DateTime<Utc>,
) -> NextUpdate {
    if !terms.license_type.is_license() {
        return NextUpdate::NotScheduled(NotScheduled::NotALicense);
    }
    if !terms.auto_update_enabled {
        return NextUpdate::NotScheduled(NotScheduled::Off);
    }
    if !terms.has_license_id {
        return NextUpdate::NotScheduled(NotScheduled::NoLicenseId);
    }
    if last.is_some_and(|l| l.outcome == UpdateOutcome::ContractTerminated) {
        return NextUpdate::Disable(DisableReason::ContractTerminated);
    }

    let end = earlier_of(terms.expiration, terms.support_expiration);
    if let Some(end) = end {
        let closed_at = end + TimeDelta::days(days_in_month(end).into());
        if now > closed_at {
            return NextUpdate::Disable(DisableReason::RetryWindowClosed { closed_at });
        }
    }

    let Some(last) = last else {
        // Never tried since auto-update was switched on: try right away.
        return NextUpdate::DueAt(now);
    };
    let due = match last.outcome {
        UpdateOutcome::GenerationError => last.at + GENERATION_RETRY,
        UpdateOutcome::Unreachable => last.at + UNREACHABLE_RETRY,
        // Success, "up to date", and failures that retrying sooner would not fix (unsupported
        // type, invalid key, expired contract) follow the regular cadence.
        _ => regular_after(last.at, end),
    };
    NextUpdate::DueAt(due)
}

/// Weekly checks, switching to daily from a week before `end`. A weekly check that would
/// jump past the start of the daily period is pulled forward to that start.
fn regular_after(at: DateTime<Utc>, end: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let Some(end) = end else {
        return at + WEEKLY;
    };
    let daily_from = end - DAILY_FROM_BEFORE_END;
    if at >= daily_from {
        at + DAILY
    } else {
        (at + WEEKLY).min(daily_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::license::LicenseType;
    use crate::product::Product;
    use chrono::TimeZone;

    fn at(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, m, d, h, 0, 0).unwrap()
    }

    fn rental(expiration: DateTime<Utc>) -> LicenseTerms {
        LicenseTerms {
            expiration: Some(expiration),
            auto_update_enabled: true,
            has_license_id: true,
            ..LicenseTerms::new(Product::BackupAndReplication, LicenseType::Rental)
        }
    }

    fn after(outcome: UpdateOutcome, when: DateTime<Utc>) -> LastAttempt {
        LastAttempt { at: when, outcome }
    }

    #[test]
    fn first_attempt_is_due_immediately() {
        let l = rental(at(6, 30, 23));
        assert_eq!(
            next_update(&l, None, at(6, 1, 0)),
            NextUpdate::DueAt(at(6, 1, 0))
        );
    }

    #[test]
    fn weekly_far_from_the_end_then_daily() {
        let l = rental(at(6, 30, 0));
        let ok = |when| Some(after(UpdateOutcome::UpToDate, when));
        // Far away: one week later.
        assert_eq!(
            next_update(&l, ok(at(6, 1, 0)).as_ref(), at(6, 1, 0)),
            NextUpdate::DueAt(at(6, 8, 0))
        );
        // A weekly step that would cross into the last week is pulled to its start (23 June).
        assert_eq!(
            next_update(&l, ok(at(6, 20, 0)).as_ref(), at(6, 20, 0)),
            NextUpdate::DueAt(at(6, 23, 0))
        );
        // Exactly at the start of the last week: daily.
        assert_eq!(
            next_update(&l, ok(at(6, 23, 0)).as_ref(), at(6, 23, 0)),
            NextUpdate::DueAt(at(6, 24, 0))
        );
        // One hour before the daily period: still the weekly rule, pulled to the start.
        assert_eq!(
            next_update(&l, ok(at(6, 22, 23)).as_ref(), at(6, 22, 23)),
            NextUpdate::DueAt(at(6, 23, 0))
        );
        // After expiry, while the retry window is open: daily.
        assert_eq!(
            next_update(&l, ok(at(7, 2, 0)).as_ref(), at(7, 2, 0)),
            NextUpdate::DueAt(at(7, 3, 0))
        );
    }

    #[test]
    fn failures_retry_at_their_own_pace() {
        let l = rental(at(6, 30, 0));
        let last = |o| Some(after(o, at(6, 1, 0)));
        assert_eq!(
            next_update(
                &l,
                last(UpdateOutcome::GenerationError).as_ref(),
                at(6, 1, 0)
            ),
            NextUpdate::DueAt(at(6, 2, 0))
        );
        assert_eq!(
            next_update(&l, last(UpdateOutcome::Unreachable).as_ref(), at(6, 1, 0)),
            NextUpdate::DueAt(at(6, 1, 1))
        );
        for o in [
            UpdateOutcome::NotSupported,
            UpdateOutcome::InvalidKey,
            UpdateOutcome::ContractExpired,
            UpdateOutcome::Installed,
        ] {
            assert_eq!(
                next_update(&l, last(o).as_ref(), at(6, 1, 0)),
                NextUpdate::DueAt(at(6, 8, 0)),
                "{o:?}"
            );
        }
    }

    #[test]
    fn terminated_contract_disables() {
        let l = rental(at(6, 30, 0));
        let last = after(UpdateOutcome::ContractTerminated, at(6, 1, 0));
        assert_eq!(
            next_update(&l, Some(&last), at(6, 1, 0)),
            NextUpdate::Disable(DisableReason::ContractTerminated)
        );
    }

    #[test]
    fn retry_window_is_the_length_of_the_end_month() {
        // Ends 30 June (a 30-day month): retries run until 30 July, then auto-update stops.
        let l = rental(at(6, 30, 0));
        let fail = Some(after(UpdateOutcome::Unreachable, at(7, 30, 0)));
        assert_eq!(
            next_update(&l, fail.as_ref(), at(7, 30, 0)),
            NextUpdate::DueAt(at(7, 30, 1))
        );
        let just_after = at(7, 30, 0) + TimeDelta::seconds(1);
        assert_eq!(
            next_update(&l, fail.as_ref(), just_after),
            NextUpdate::Disable(DisableReason::RetryWindowClosed {
                closed_at: at(7, 30, 0)
            })
        );
        // Ends in February of a leap year: 29 days.
        let feb = rental(at(2, 10, 0));
        assert_eq!(
            next_update(&feb, None, at(3, 10, 1)),
            NextUpdate::Disable(DisableReason::RetryWindowClosed {
                closed_at: at(3, 10, 0)
            })
        );
        assert_eq!(
            next_update(&feb, None, at(3, 10, 0)),
            NextUpdate::DueAt(at(3, 10, 0))
        );
    }

    #[test]
    fn the_earlier_of_expiration_and_support_counts() {
        let l = LicenseTerms {
            support_expiration: Some(at(6, 10, 0)),
            ..rental(at(12, 31, 0))
        };
        let ok = Some(after(UpdateOutcome::UpToDate, at(6, 1, 0)));
        // Daily period starts 3 June, a week before support ends.
        assert_eq!(
            next_update(&l, ok.as_ref(), at(6, 1, 0)),
            NextUpdate::DueAt(at(6, 3, 0))
        );
        // Perpetual with no dates at all: weekly forever.
        let perpetual = LicenseTerms {
            auto_update_enabled: true,
            has_license_id: true,
            ..LicenseTerms::new(Product::VOne, LicenseType::Perpetual)
        };
        assert_eq!(
            next_update(&perpetual, ok.as_ref(), at(6, 1, 0)),
            NextUpdate::DueAt(at(6, 8, 0))
        );
    }

    #[test]
    fn nothing_scheduled_without_auto_update_id_or_license() {
        let off = LicenseTerms {
            auto_update_enabled: false,
            ..rental(at(6, 30, 0))
        };
        assert_eq!(
            next_update(&off, None, at(6, 1, 0)),
            NextUpdate::NotScheduled(NotScheduled::Off)
        );
        let no_id = LicenseTerms {
            has_license_id: false,
            ..rental(at(6, 30, 0))
        };
        assert_eq!(
            next_update(&no_id, None, at(6, 1, 0)),
            NextUpdate::NotScheduled(NotScheduled::NoLicenseId)
        );
        let community = LicenseTerms {
            auto_update_enabled: true,
            ..LicenseTerms::new(Product::BackupAndReplication, LicenseType::Community)
        };
        assert_eq!(
            next_update(&community, None, at(6, 1, 0)),
            NextUpdate::NotScheduled(NotScheduled::NotALicense)
        );
    }

    #[test]
    fn outcomes_map_to_last_update_status() {
        assert_eq!(
            UpdateOutcome::Installed.last_update_status(),
            LastUpdateStatus::Success
        );
        assert_eq!(
            UpdateOutcome::UpToDate.last_update_status(),
            LastUpdateStatus::Success
        );
        assert_eq!(
            UpdateOutcome::Unreachable.last_update_status(),
            LastUpdateStatus::Error
        );
        assert!(UpdateOutcome::ContractTerminated.is_failure());
    }
}
