//! Typed comparison values and the coercions into them.
//!
//! Owns how a raw JSON value — from the client's filter (`Json`) or from a stored document
//! (`serde_json::Value`) — becomes a [`Val`] of the property's [`FieldType`]:
//!
//! * text (`String`, `Enum`): strings as they are; numbers and booleans by their JSON text;
//! * `Uuid`: 128-bit value, parsed from the 32-hex-digit form with or without hyphens,
//!   optionally in `{…}` or `(…)`, any letter case;
//! * `DateTime`, `Date`: an [`Instant`] (UTC seconds + nanoseconds) parsed from RFC 3339
//!   with any number of fractional digits (beyond nanoseconds they are truncated), `Z`
//!   or a `±HH:MM` / `±HHMM` / `±HH` offset; a missing offset means UTC; a bare
//!   `YYYY-MM-DD` is midnight UTC; `T`, `t` or a space separate date and time;
//! * `Integer`, `Number`: a [`Num`], from JSON numbers or numeric strings (`"17"`);
//! * `Boolean`: JSON booleans or the strings `"true"` / `"false"` in any case.
//!
//! Client values that do not fit the type are errors (the caller reports them on
//! `filter`). Stored values that do not fit are treated as absent: they match no
//! comparison and sort with the nulls.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::json::Json;
use crate::schema::FieldType;

/// The scalar kind a property (or each element of an array property) compares as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    Text,
    Uuid,
    Instant,
    Integer,
    Number,
    Boolean,
}

impl ScalarKind {
    /// Scalar kind of a field, or of its elements for array fields; `None` for objects.
    pub(crate) fn of(ty: FieldType) -> Option<ScalarKind> {
        Some(match ty {
            FieldType::String | FieldType::Enum | FieldType::StringArray | FieldType::EnumArray => {
                ScalarKind::Text
            }
            FieldType::Uuid | FieldType::UuidArray => ScalarKind::Uuid,
            FieldType::DateTime | FieldType::Date => ScalarKind::Instant,
            FieldType::Integer => ScalarKind::Integer,
            FieldType::Number => ScalarKind::Number,
            FieldType::Boolean => ScalarKind::Boolean,
            FieldType::Object => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            ScalarKind::Text => "a string",
            ScalarKind::Uuid => "a UUID",
            ScalarKind::Instant => "an RFC 3339 date-time or date",
            ScalarKind::Integer => "an integer",
            ScalarKind::Number => "a number",
            ScalarKind::Boolean => "a boolean",
        }
    }
}

/// A point in time: seconds since 1970-01-01T00:00:00Z plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Instant {
    secs: i64,
    nanos: u32,
}

impl Instant {
    /// An order-preserving code: `a < b` exactly when `a.code() < b.code()`.
    pub(crate) fn code(self) -> u128 {
        // Flipping the sign bit maps i64 order onto u64 order.
        (u128::from((self.secs as u64) ^ (1 << 63)) << 32) | u128::from(self.nanos)
    }
}

/// A number that keeps integers exact.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    #[cfg(test)]
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Exact numeric order (integers are not rounded through `f64`), so that sorting
    /// mixed integers and fractions is a consistent total order.
    pub(crate) fn cmp(self, other: Num) -> Ordering {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            // Both finite (non-finite numbers are never built), so this is total.
            (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            (Num::Int(a), Num::Float(b)) => cmp_int_float(a, b),
            (Num::Float(a), Num::Int(b)) => cmp_int_float(b, a).reverse(),
        }
    }

    /// An order-preserving code consistent with [`Num::cmp`]: `a.cmp(b)` equals
    /// `a.code().cmp(&b.code())` for every pair of (finite) numbers.
    pub(crate) fn code(self) -> u128 {
        // The high bits order by the nearest `f64` (rounding is monotonic, so this never
        // contradicts the exact order); the low bits order integers that round to the
        // same `f64` by their exact distance from it (at most 2^10 in magnitude).
        let (approx, diff) = match self {
            Num::Int(i) => {
                let f = i as f64;
                // |f| <= 2^63, so the conversion to i128 is exact.
                (f, i128::from(i) - f as i128)
            }
            Num::Float(f) => (f, 0),
        };
        let approx = approx + 0.0; // -0.0 becomes 0.0, which compares equal to it.
        let bits = approx.to_bits();
        let ordered = if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        };
        let low = u64::try_from(diff + (1 << 32)).unwrap_or(0);
        (u128::from(ordered) << 64) | u128::from(low)
    }

    fn from_f64(f: f64) -> Option<Num> {
        if !f.is_finite() {
            return None;
        }
        if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
            Some(Num::Int(f as i64))
        } else {
            Some(Num::Float(f))
        }
    }

    fn from_serde(n: &serde_json::Number) -> Option<Num> {
        if let Some(i) = n.as_i64() {
            Some(Num::Int(i))
        } else {
            n.as_f64().and_then(Num::from_f64)
        }
    }

    /// Parses the text of a number (JSON grammar, plus surrounding whitespace and `+`).
    fn parse(s: &str) -> Option<Num> {
        let s = s.trim_ascii();
        if s.is_empty() {
            return None;
        }
        if let Ok(i) = s.parse::<i64>() {
            return Some(Num::Int(i));
        }
        // Rust's float parser also takes "inf"/"NaN"; only digits, sign, dot, exponent here.
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        {
            return None;
        }
        s.parse::<f64>().ok().and_then(Num::from_f64)
    }
}

/// Exact comparison of an integer with a finite float.
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_POW_63 {
        return Ordering::Less;
    }
    if f < -TWO_POW_63 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // |t| < 2^63 and t is integral, so the conversion is exact.
    match i.cmp(&(t as i64)) {
        Ordering::Equal => t.partial_cmp(&f).unwrap_or(Ordering::Equal),
        o => o,
    }
}

/// A typed value ready for comparison. Text may borrow from the document.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Text(Cow<'a, str>),
    Uuid(u128),
    Instant(Instant),
    Num(Num),
    Bool(bool),
}

impl Val<'_> {
    /// The text, for text values.
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Val::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Orders two values of the same kind; text is compared by code point here (callers
    /// handle collations before reaching this). Values of different kinds never meet
    /// because both sides are coerced to the property's type.
    pub(crate) fn cmp_same_kind(&self, other: &Val<'_>) -> Ordering {
        match (self, other) {
            (Val::Text(a), Val::Text(b)) => a.as_ref().cmp(b.as_ref()),
            (Val::Uuid(a), Val::Uuid(b)) => a.cmp(b),
            (Val::Instant(a), Val::Instant(b)) => a.cmp(b),
            (Val::Num(a), Val::Num(b)) => a.cmp(*b),
            (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    /// An order-preserving code for non-text values: for two values of the same kind,
    /// `a.cmp_same_kind(b)` equals `a.code().cmp(&b.code())`. `None` for text.
    pub(crate) fn code(&self) -> Option<u128> {
        match self {
            Val::Text(_) => None,
            Val::Uuid(u) => Some(*u),
            Val::Instant(i) => Some(i.code()),
            Val::Num(n) => Some(n.code()),
            Val::Bool(b) => Some(u128::from(*b)),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Val::Text(_) => 0,
            Val::Uuid(_) => 1,
            Val::Instant(_) => 2,
            Val::Num(_) => 3,
            Val::Bool(_) => 4,
        }
    }
}

/// Converts a client-supplied filter value. `Ok(None)` means the value was `null`.
pub(crate) fn from_client(kind: ScalarKind, v: &Json) -> Result<Option<Val<'static>>, String> {
    let bad = || format!("{} is not {}", describe_json(v), kind.describe());
    let val = match (kind, v) {
        (_, Json::Null) => return Ok(None),
        (ScalarKind::Text, Json::String(s)) => Val::Text(Cow::Owned(s.clone())),
        (ScalarKind::Text, Json::Number(n)) => Val::Text(Cow::Owned(n.clone())),
        (ScalarKind::Text, Json::Bool(b)) => Val::Text(Cow::Borrowed(bool_text(*b))),
        (ScalarKind::Uuid, Json::String(s)) => Val::Uuid(parse_uuid(s).ok_or_else(bad)?),
        (ScalarKind::Instant, Json::String(s)) => Val::Instant(parse_instant(s).ok_or_else(bad)?),
        (ScalarKind::Integer, Json::Number(s) | Json::String(s)) => match Num::parse(s) {
            Some(n @ Num::Int(_)) => Val::Num(n),
            _ => return Err(bad()),
        },
        (ScalarKind::Number, Json::Number(s) | Json::String(s)) => {
            Val::Num(Num::parse(s).ok_or_else(bad)?)
        }
        (ScalarKind::Boolean, Json::Bool(b)) => Val::Bool(*b),
        (ScalarKind::Boolean, Json::String(s)) => Val::Bool(parse_bool(s).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok(Some(val))
}

fn describe_json(v: &Json) -> String {
    match v {
        Json::String(s) => {
            let shown: String = s.chars().take(60).collect();
            let ellipsis = if shown.len() < s.len() { "…" } else { "" };
            format!("The value '{shown}{ellipsis}'")
        }
        Json::Number(n) => format!("The value {n}"),
        other => format!("The value ({})", other.kind()),
    }
}

/// Converts a stored document value; `None` for null, absent or unconvertible values.
pub(crate) fn from_doc(kind: ScalarKind, v: &Value) -> Option<Val<'_>> {
    Some(match (kind, v) {
        (ScalarKind::Text, Value::String(s)) => Val::Text(Cow::Borrowed(s)),
        (ScalarKind::Text, Value::Number(n)) => Val::Text(Cow::Owned(n.to_string())),
        (ScalarKind::Text, Value::Bool(b)) => Val::Text(Cow::Borrowed(bool_text(*b))),
        (ScalarKind::Uuid, Value::String(s)) => Val::Uuid(parse_uuid(s)?),
        (ScalarKind::Instant, Value::String(s)) => Val::Instant(parse_instant(s)?),
        (ScalarKind::Integer | ScalarKind::Number, Value::Number(n)) => {
            Val::Num(Num::from_serde(n)?)
        }
        (ScalarKind::Integer | ScalarKind::Number, Value::String(s)) => Val::Num(Num::parse(s)?),
        (ScalarKind::Boolean, Value::Bool(b)) => Val::Bool(*b),
        (ScalarKind::Boolean, Value::String(s)) => Val::Bool(parse_bool(s)?),
        _ => return None,
    })
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim_ascii();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parses a UUID in the forms `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, 32 bare hex digits,
/// or either of those wrapped in braces or parentheses.
pub(crate) fn parse_uuid(s: &str) -> Option<u128> {
    let s = s.trim_ascii();
    let inner = if let Some(rest) = s.strip_prefix('{') {
        rest.strip_suffix('}')?
    } else if let Some(rest) = s.strip_prefix('(') {
        rest.strip_suffix(')')?
    } else {
        s
    };
    let b = inner.as_bytes();
    let hyphens: &[usize] = match b.len() {
        32 => &[],
        36 => &[8, 13, 18, 23],
        _ => return None,
    };
    let mut v: u128 = 0;
    for (i, &ch) in b.iter().enumerate() {
        if hyphens.contains(&i) {
            if ch != b'-' {
                return None;
            }
            continue;
        }
        let d = (ch as char).to_digit(16)?;
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

/// Parses an RFC 3339 date-time (lenient as described in the module docs) or a bare date.
pub(crate) fn parse_instant(s: &str) -> Option<Instant> {
    let b = s.as_bytes().trim_ascii();
    let mut c = Cursor { b, i: 0 };
    let year = c.digits(4)? as i64;
    c.expect(b'-')?;
    let month = c.digits(2)?;
    c.expect(b'-')?;
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs_of_day: i64 = 0;
    let mut nanos: u32 = 0;
    let mut offset_secs: i64 = 0;
    if !c.done() {
        match c.next()? {
            b'T' | b't' | b' ' => {}
            _ => return None,
        }
        let hour = c.digits(2)?;
        c.expect(b':')?;
        let minute = c.digits(2)?;
        let mut second = 0;
        if c.peek() == Some(b':') {
            c.i += 1;
            second = c.digits(2)?;
            if c.peek() == Some(b'.') || c.peek() == Some(b',') {
                c.i += 1;
                let start = c.i;
                while c.peek().is_some_and(|d| d.is_ascii_digit()) {
                    let pos = c.i - start;
                    if pos < 9 {
                        nanos += u32::from(b[c.i] - b'0') * 10u32.pow(8 - pos as u32);
                    }
                    c.i += 1;
                }
                if c.i == start {
                    return None;
                }
            }
        }
        // 24:00:00 is not accepted; a leap second (:60) rolls into the next minute.
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        secs_of_day = i64::from(hour * 3600 + minute * 60 + second);
        if !c.done() {
            match c.next()? {
                b'Z' | b'z' => {}
                sign @ (b'+' | b'-') => {
                    let oh = c.digits(2)?;
                    let mut om = 0;
                    if c.peek() == Some(b':') {
                        c.i += 1;
                        om = c.digits(2)?;
                    } else if !c.done() {
                        om = c.digits(2)?;
                    }
                    if oh > 23 || om > 59 {
                        return None;
                    }
                    let off = i64::from(oh * 3600 + om * 60);
                    offset_secs = if sign == b'+' { off } else { -off };
                }
                _ => return None,
            }
        }
        if !c.done() {
            return None;
        }
    }
    let secs = days_from_civil(year, month, day) * 86_400 + secs_of_day - offset_secs;
    Some(Instant { secs, nanos })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let v = self.peek()?;
        self.i += 1;
        Some(v)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self.next()?;
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(d - b'0');
        }
        Some(v)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inst(s: &str) -> Instant {
        parse_instant(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn instants_compare_across_offsets_and_precisions() {
        assert_eq!(
            inst("2023-01-16T16:30:09.4952609+01:00"),
            inst("2023-01-16T15:30:09.4952609Z")
        );
        assert_eq!(
            inst("2023-01-16T15:30:09.5Z"),
            inst("2023-01-16T15:30:09.500000000000Z")
        );
        assert_eq!(
            inst("2023-01-16T15:30:09.1234567891Z"),
            inst("2023-01-16T15:30:09.123456789Z")
        );
        assert!(inst("2023-01-16T15:30:09.0000001Z") > inst("2023-01-16T15:30:09Z"));
        assert_eq!(inst("2024-02-29"), inst("2024-02-29T00:00:00Z"));
        assert_eq!(inst("2024-02-29t00:00z"), inst("2024-02-29 00:00:00"));
        assert_eq!(
            inst("2024-01-01T02:00:00+0200"),
            inst("2024-01-01T00:00:00Z")
        );
        assert_eq!(inst("2024-01-01T00:00:00-05"), inst("2024-01-01T05:00:00Z"));
        assert_eq!(inst("1970-01-01T00:00:00Z"), Instant { secs: 0, nanos: 0 });
        assert!(inst("0001-01-01T00:00:00") < inst("1969-12-31T23:59:59.999Z"));
        assert_eq!(inst("2016-12-31T23:59:60Z"), inst("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn instants_reject_garbage() {
        for s in [
            "",
            "2024",
            "2024-13-01",
            "2023-02-29",
            "2024-01-32",
            "2024-01-01T",
            "2024-01-01T25:00",
            "2024-01-01T10:00:00.",
            "2024-01-01T10:00:00+25:00",
            "2024-01-01T10:00:00Zjunk",
            "2024-01-01X10:00",
            "yesterday",
        ] {
            assert!(parse_instant(s).is_none(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn uuids_in_all_forms() {
        let a = parse_uuid("8A6B3C4D-1E2F-4A5B-9C8D-7E6F5A4B3C2D").expect("d");
        assert_eq!(parse_uuid("8a6b3c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d"), Some(a));
        assert_eq!(parse_uuid("8a6b3c4d1e2f4a5b9c8d7e6f5a4b3c2d"), Some(a));
        assert_eq!(
            parse_uuid("{8a6b3c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d}"),
            Some(a)
        );
        assert_eq!(
            parse_uuid("(8a6b3c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d)"),
            Some(a)
        );
        for bad in [
            "8a6b3c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2",
            "8a6b3c4d-1e2f-4a5b-9c8d_7e6f5a4b3c2d",
            "8a6b3c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2g",
            "{8a6b3c4d-1e2f-4a5b-9c8d-7e6f5a4b3c2d",
            "not-a-uuid",
        ] {
            assert!(parse_uuid(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert!(matches!(Num::parse("17"), Some(Num::Int(17))));
        assert!(matches!(Num::parse(" +17 "), Some(Num::Int(17))));
        assert!(matches!(Num::parse("1e3"), Some(Num::Int(1000))));
        assert!(matches!(Num::parse("2.5"), Some(Num::Float(f)) if f == 2.5));
        for bad in ["", "abc", "inf", "NaN", "1e999", "+-1", "0x10"] {
            assert!(Num::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Num::Int(2).cmp(Num::Float(2.0)), Ordering::Equal);
        assert_eq!(Num::Int(2).cmp(Num::Float(2.5)), Ordering::Less);
        assert_eq!(Num::Float(-0.0).cmp(Num::Int(0)), Ordering::Equal);
        assert_eq!(
            Num::Int(i64::MAX).cmp(Num::Int(i64::MAX - 1)),
            Ordering::Greater
        );
        assert!(Num::parse("++1").is_none());
        // Exact across representations: 2^53 + 1 is above the float 2^53.
        let big = Num::Int((1 << 53) + 1);
        let f = Num::Float(9_007_199_254_740_992.0);
        assert_eq!(big.cmp(f), Ordering::Greater);
        assert_eq!(f.cmp(big), Ordering::Less);
        assert_eq!(Num::Int(-3).cmp(Num::Float(-2.5)), Ordering::Less);
        assert_eq!(Num::Int(-2).cmp(Num::Float(-2.5)), Ordering::Greater);
        assert_eq!(Num::Int(i64::MAX).cmp(Num::Float(1e19)), Ordering::Less);
        assert_eq!(Num::Int(i64::MIN).cmp(Num::Float(-1e19)), Ordering::Greater);
    }

    #[test]
    fn codes_order_like_values() {
        let nums = [
            Num::Int(i64::MIN),
            Num::Int(i64::MIN + 1),
            Num::Int(-(1 << 53) - 1),
            Num::Int(-3),
            Num::Int(0),
            Num::Int(1),
            Num::Int((1 << 53) + 1),
            Num::Int(i64::MAX - 1),
            Num::Int(i64::MAX),
            Num::Float(-1e300),
            Num::Float(-9_223_372_036_854_775_808.0),
            Num::Float(-2.5),
            Num::Float(-0.0),
            Num::Float(0.0),
            Num::Float(1e-300),
            Num::Float(2.5),
            Num::Float(9_007_199_254_740_992.0),
            Num::Float(9_223_372_036_854_775_808.0),
            Num::Float(1e19),
            Num::Float(1e300),
        ];
        for a in nums {
            for b in nums {
                assert_eq!(a.cmp(b), a.code().cmp(&b.code()), "{a:?} {b:?}");
            }
        }
        let instants: Vec<Instant> = [
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:00:00.000000001Z",
            "2024-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.9Z",
        ]
        .iter()
        .map(|s| inst(s))
        .collect();
        for a in &instants {
            for b in &instants {
                assert_eq!(a.cmp(b), a.code().cmp(&b.code()), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn client_coercions() {
        let n = |s: &str| Json::Number(s.into());
        let st = |s: &str| Json::String(s.into());
        let num = |v: Option<Val>| match v {
            Some(Val::Num(n)) => n.as_f64(),
            other => panic!("number expected, got {other:?}"),
        };
        assert_eq!(
            num(from_client(ScalarKind::Integer, &st("17")).expect("ok")),
            17.0
        );
        assert_eq!(
            num(from_client(ScalarKind::Integer, &n("17")).expect("ok")),
            17.0
        );
        assert!(from_client(ScalarKind::Integer, &st("17.5")).is_err());
        assert!(from_client(ScalarKind::Integer, &st("seventeen")).is_err());
        assert_eq!(
            num(from_client(ScalarKind::Number, &st("17.5")).expect("ok")),
            17.5
        );
        assert!(matches!(
            from_client(ScalarKind::Boolean, &st("TRUE")),
            Ok(Some(Val::Bool(true)))
        ));
        assert!(from_client(ScalarKind::Boolean, &st("yes")).is_err());
        assert!(from_client(ScalarKind::Boolean, &n("1")).is_err());
        assert!(matches!(
            from_client(ScalarKind::Text, &n("1.50")),
            Ok(Some(Val::Text(t))) if t == "1.50"
        ));
        assert!(matches!(
            from_client(ScalarKind::Text, &Json::Bool(false)),
            Ok(Some(Val::Text(t))) if t == "false"
        ));
        assert!(from_client(ScalarKind::Text, &Json::Array(vec![])).is_err());
        assert!(from_client(ScalarKind::Uuid, &st("nope")).is_err());
        assert!(from_client(ScalarKind::Instant, &st("2024-99-01")).is_err());
        assert!(matches!(
            from_client(ScalarKind::Uuid, &Json::Null),
            Ok(None)
        ));
        let err = from_client(ScalarKind::Uuid, &st(&"x".repeat(500))).expect_err("bad");
        assert!(err.len() < 120, "long values are shortened: {err}");
    }

    #[test]
    fn doc_coercions() {
        assert!(matches!(from_doc(ScalarKind::Text, &json!(5)), Some(Val::Text(t)) if t == "5"));
        assert!(matches!(
            from_doc(ScalarKind::Number, &json!("5.5")),
            Some(Val::Num(_))
        ));
        assert!(from_doc(ScalarKind::Number, &json!("five")).is_none());
        assert!(from_doc(ScalarKind::Uuid, &json!("garbage")).is_none());
        assert!(from_doc(ScalarKind::Text, &json!(null)).is_none());
        assert!(from_doc(ScalarKind::Text, &json!({"a": 1})).is_none());
        assert!(matches!(
            from_doc(ScalarKind::Integer, &json!(u64::MAX)),
            Some(Val::Num(Num::Float(_)))
        ));
    }
}
