//! Day arithmetic shared by the rules, so every day count in the crate is counted one way.
//!
//! Convention: a license's expiry is the exact instant in `expirationDate` (the contract
//! carries a date-time, not a date). Counts of days are whole 24-hour days rounded **up**, so
//! "1 day" remains until the very last second and "0 days" only at the instant itself.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};

/// Whole days in `span`, rounded up; negative spans count as zero.
pub(crate) fn ceil_days(span: TimeDelta) -> i64 {
    if span <= TimeDelta::zero() {
        return 0;
    }
    let whole = span.num_days();
    if span > TimeDelta::days(whole) {
        whole + 1
    } else {
        whole
    }
}

/// The earlier of two optional instants, where `None` means "never".
pub(crate) fn earlier_of(
    a: Option<DateTime<Utc>>,
    b: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Number of days in the calendar month (UTC) that contains `at`.
pub(crate) fn days_in_month(at: DateTime<Utc>) -> u32 {
    let (year, month) = (at.year(), at.month());
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    match (
        NaiveDate::from_ymd_opt(year, month, 1),
        NaiveDate::from_ymd_opt(next_year, next_month, 1),
    ) {
        (Some(first), Some(next)) => (next - first).num_days() as u32,
        // Only reachable at the very end of chrono's range; any month length will do there.
        _ => 31,
    }
}

/// Singular or plural "day(s)" with the count.
pub(crate) fn days_phrase(days: i64) -> String {
    if days == 1 {
        "1 day".to_owned()
    } else {
        format!("{days} days")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ceil_days_rounds_partial_days_up() {
        assert_eq!(ceil_days(TimeDelta::zero()), 0);
        assert_eq!(ceil_days(TimeDelta::seconds(-5)), 0);
        assert_eq!(ceil_days(TimeDelta::seconds(1)), 1);
        assert_eq!(ceil_days(TimeDelta::nanoseconds(1)), 1);
        assert_eq!(ceil_days(TimeDelta::days(1)), 1);
        assert_eq!(ceil_days(TimeDelta::days(1) + TimeDelta::seconds(1)), 2);
        assert_eq!(ceil_days(TimeDelta::days(60)), 60);
    }

    #[test]
    fn earlier_of_treats_none_as_never() {
        let a = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let b = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(earlier_of(Some(a), Some(b)), Some(a));
        assert_eq!(earlier_of(Some(b), Some(a)), Some(a));
        assert_eq!(earlier_of(None, Some(b)), Some(b));
        assert_eq!(earlier_of(Some(a), None), Some(a));
        assert_eq!(earlier_of(None, None), None);
    }

    #[test]
    fn month_lengths() {
        let at = |y, m| Utc.with_ymd_and_hms(y, m, 15, 12, 0, 0).unwrap();
        assert_eq!(days_in_month(at(2024, 2)), 29);
        assert_eq!(days_in_month(at(2023, 2)), 28);
        assert_eq!(days_in_month(at(2024, 4)), 30);
        assert_eq!(days_in_month(at(2024, 12)), 31);
    }

    #[test]
    fn phrase() {
        assert_eq!(days_phrase(1), "1 day");
        assert_eq!(days_phrase(0), "0 days");
        assert_eq!(days_phrase(12), "12 days");
    }
}
