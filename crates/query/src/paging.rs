//! The `limit` and `offset` parameters.
//!
//! Both are decimal integers (surrounding spaces and a leading `+` are tolerated, as
//! .NET's integer binding does). `limit` must be within `1..=max_limit`, `offset` within
//! `0..=2147483647`. An empty value counts as absent. Anything else is an error on the
//! parameter, worded like VSPC's own messages.

use crate::error::{Param, QueryError};

/// Largest accepted `offset` (and largest configurable `max_limit`): `i32::MAX`.
pub const MAX_OFFSET: usize = i32::MAX as usize;

/// Options for paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryOptions {
    /// Page size when the request has no `limit` (VSPC: 100).
    pub default_limit: usize,
    /// Largest accepted `limit` (VSPC's `MaxPageSize`, default 500). Values are clamped
    /// to `1..=2147483647`.
    pub max_limit: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            default_limit: 100,
            max_limit: 500,
        }
    }
}

impl QueryOptions {
    /// `max_limit`, clamped to its valid range.
    pub fn effective_max_limit(&self) -> usize {
        self.max_limit.clamp(1, MAX_OFFSET)
    }

    /// `default_limit`, clamped to `1..=effective_max_limit()`.
    pub fn effective_default_limit(&self) -> usize {
        self.default_limit.clamp(1, self.effective_max_limit())
    }
}

/// Parses `limit`; `None` or an empty value gives the default.
pub(crate) fn parse_limit(raw: Option<&str>, opts: &QueryOptions) -> Result<usize, QueryError> {
    let max = opts.effective_max_limit();
    parse_bounded(
        raw,
        Param::Limit,
        1,
        max,
        opts.effective_default_limit(),
        || format!("Property value must be between 1 and {max}."),
    )
}

/// Parses `offset`; `None` or an empty value gives 0.
pub(crate) fn parse_offset(raw: Option<&str>) -> Result<usize, QueryError> {
    parse_bounded(raw, Param::Offset, 0, MAX_OFFSET, 0, || {
        "Property value must be larger or equal to 0.".to_owned()
    })
}

fn parse_bounded(
    raw: Option<&str>,
    param: Param,
    min: usize,
    max: usize,
    default: usize,
    below_min: impl Fn() -> String,
) -> Result<usize, QueryError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(default);
    };
    let Some(value) = parse_int(text) else {
        return Err(param.error(format!(
            "Property value must be an integer between {min} and {max}."
        )));
    };
    if value < min as i128 {
        return Err(param.error(below_min()));
    }
    if value > max as i128 {
        return Err(param.error(format!("Property value must be between {min} and {max}.")));
    }
    // In range, so it fits.
    Ok(usize::try_from(value).unwrap_or(max))
}

/// Parses `[+-]digits`, saturating far beyond any valid range.
fn parse_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.parse::<i128>().unwrap_or(i128::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(raw: &str) -> Result<usize, QueryError> {
        parse_limit(Some(raw), &QueryOptions::default())
    }

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(parse_limit(None, &QueryOptions::default()), Ok(100));
        assert_eq!(limit(""), Ok(100));
        assert_eq!(limit("1"), Ok(1));
        assert_eq!(limit("500"), Ok(500));
        assert_eq!(limit(" +7 "), Ok(7));
        for bad in [
            "0",
            "501",
            "-1",
            "abc",
            "1.5",
            "5e2",
            "99999999999999999999999999999999999999999",
        ] {
            let e = limit(bad).expect_err(bad);
            assert_eq!(e.parameter, "limit", "{bad}");
        }
        assert_eq!(
            limit("501").expect_err("too big").message,
            "Property value must be between 1 and 500."
        );
        assert_eq!(
            limit("0").expect_err("too small").message,
            "Property value must be between 1 and 500."
        );
    }

    #[test]
    fn limit_respects_configured_maximum() {
        let opts = QueryOptions {
            default_limit: 100,
            max_limit: 1000,
        };
        assert_eq!(parse_limit(Some("1000"), &opts), Ok(1000));
        assert!(parse_limit(Some("1001"), &opts).is_err());
        let small = QueryOptions {
            default_limit: 100,
            max_limit: 50,
        };
        assert_eq!(
            parse_limit(None, &small),
            Ok(50),
            "default is clamped to the max"
        );
        let silly = QueryOptions {
            default_limit: 0,
            max_limit: usize::MAX,
        };
        assert_eq!(silly.effective_max_limit(), MAX_OFFSET);
        assert_eq!(silly.effective_default_limit(), 1);
    }

    #[test]
    fn offset_bounds() {
        assert_eq!(parse_offset(None), Ok(0));
        assert_eq!(parse_offset(Some("")), Ok(0));
        assert_eq!(parse_offset(Some("0")), Ok(0));
        assert_eq!(parse_offset(Some("2147483647")), Ok(MAX_OFFSET));
        let e = parse_offset(Some("-1")).expect_err("negative");
        assert_eq!(e.parameter, "offset");
        assert_eq!(e.message, "Property value must be larger or equal to 0.");
        for bad in ["2147483648", "x", "1,000", "--1"] {
            assert_eq!(parse_offset(Some(bad)).expect_err(bad).parameter, "offset");
        }
    }
}
