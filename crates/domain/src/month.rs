//! Calendar months in UTC: the period a usage report covers and the key reports are stored by.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// Parses `YYYY-MM`, or a date `YYYY-MM-DD` (its month).
    pub fn parse(s: &str) -> Option<Month> {
        let s = s.trim();
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(Month {
                year: d.year(),
                month: d.month(),
            });
        }
        let (y, m) = s.split_once('-')?;
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        (y.len() == 4 && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    pub fn of(t: DateTime<Utc>) -> Month {
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// First instant of the month.
    pub fn start(self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// First instant of the next month (exclusive end).
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_step() {
        assert_eq!(
            Month::parse("2026-10"),
            Some(Month {
                year: 2026,
                month: 10
            })
        );
        assert_eq!(
            Month::parse("2026-10-17"),
            Some(Month {
                year: 2026,
                month: 10
            })
        );
        assert_eq!(Month::parse("2026-13"), None);
        assert_eq!(Month::parse("26-10"), None);
        assert_eq!(Month::parse("latest"), None);
        let jan = Month {
            year: 2027,
            month: 1,
        };
        assert_eq!(jan.previous().to_string(), "2026-12");
        assert_eq!(jan.previous().next(), jan);
        assert_eq!(jan.start().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!(
            Month {
                year: 2026,
                month: 12
            }
            .end(),
            jan.start()
        );
    }
}
