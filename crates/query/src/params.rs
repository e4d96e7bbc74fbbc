//! Raw URL query-string handling.
//!
//! Owns the step from the still-encoded query string to the decoded text of the five
//! parameters this crate cares about (`filter`, `sort`, `select`, `limit`, `offset`):
//!
//! * pairs are separated by `&`; a pair without `=` has an empty value;
//! * names and values are percent-decoded with `+` meaning a space (form encoding, as
//!   ASP.NET Core does); a `%` not followed by two hex digits is kept literally, and
//!   bytes that are not valid UTF-8 become U+FFFD;
//! * names are matched ASCII-case-insensitively (`Filter`, `LIMIT` work);
//! * when a parameter repeats, the **first** occurrence wins and later ones are ignored;
//! * every other parameter is ignored;
//! * a decoded value longer than [`MAX_VALUE_CHARS`] characters is rejected.

use crate::error::{Param, QueryError};

/// Longest accepted decoded parameter value, in characters (VSPC's documented limit).
pub const MAX_VALUE_CHARS: usize = 100_000;

/// Decoded values of the parameters this crate understands; `None` when absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RawParams {
    values: [Option<String>; 5],
}

impl RawParams {
    pub(crate) fn get(&self, param: Param) -> Option<&str> {
        self.values[index(param)].as_deref()
    }
}

fn index(param: Param) -> usize {
    match param {
        Param::Filter => 0,
        Param::Sort => 1,
        Param::Select => 2,
        Param::Limit => 3,
        Param::Offset => 4,
    }
}

/// Splits and decodes `raw`, keeping only the known parameters listed in `wanted`.
pub(crate) fn extract(raw: Option<&str>, wanted: &[Param]) -> Result<RawParams, QueryError> {
    let mut out = RawParams::default();
    let Some(raw) = raw else {
        return Ok(out);
    };
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    for pair in raw.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name);
        let Some(param) = wanted
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(&name))
        else {
            continue;
        };
        let slot = &mut out.values[index(param)];
        if slot.is_some() {
            continue; // first occurrence wins
        }
        let value = decode(value);
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(param.error(format!(
                "Parameter value must not be longer than {MAX_VALUE_CHARS} characters."
            )));
        }
        *slot = Some(value);
    }
    Ok(out)
}

/// Percent-decodes one form-encoded component (`+` is a space).
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(raw: &str) -> RawParams {
        extract(Some(raw), &Param::ALL).expect("valid")
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode("Acme+Ltd"), "Acme Ltd");
        assert_eq!(decode("%5B%7B%22a%22%3A1%7D%5D"), "[{\"a\":1}]");
        assert_eq!(decode("a%2Bb"), "a+b");
        assert_eq!(decode("%e2%82%ac"), "€");
    }

    #[test]
    fn keeps_malformed_escapes_literally() {
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn names_are_case_insensitive_and_first_wins() {
        let p = all("LIMIT=5&Limit=7&offSet=2&x=1");
        assert_eq!(p.get(Param::Limit), Some("5"));
        assert_eq!(p.get(Param::Offset), Some("2"));
        assert_eq!(p.get(Param::Filter), None);
    }

    #[test]
    fn encoded_names_and_bare_keys() {
        let p = all("%66ilter=[]&sort");
        assert_eq!(p.get(Param::Filter), Some("[]"));
        assert_eq!(p.get(Param::Sort), Some(""));
    }

    #[test]
    fn leading_question_mark_and_empty_pairs() {
        let p = all("?&&limit=3&");
        assert_eq!(p.get(Param::Limit), Some("3"));
    }

    #[test]
    fn value_may_contain_equals_sign() {
        let p = all("filter=a=b");
        assert_eq!(p.get(Param::Filter), Some("a=b"));
    }

    #[test]
    fn unwanted_parameters_are_skipped() {
        let p = extract(Some("limit=1&filter=x"), &[Param::Filter]).expect("valid");
        assert_eq!(p.get(Param::Limit), None);
        assert_eq!(p.get(Param::Filter), Some("x"));
    }

    #[test]
    fn too_long_value_is_rejected_with_its_name() {
        let long = format!("select={}", "a".repeat(MAX_VALUE_CHARS + 1));
        let err = extract(Some(&long), &Param::ALL).expect_err("too long");
        assert_eq!(err.parameter, "select");
        let ok = format!("select={}", "%41".repeat(MAX_VALUE_CHARS));
        assert!(extract(Some(&ok), &Param::ALL).is_ok());
        // Long values of parameters we do not read are not our business.
        let other = format!("expand={}", "a".repeat(MAX_VALUE_CHARS + 1));
        assert!(extract(Some(&other), &Param::ALL).is_ok());
    }

    #[test]
    fn none_gives_nothing() {
        let p = extract(None, &Param::ALL).expect("valid");
        assert_eq!(p, RawParams::default());
    }
}
