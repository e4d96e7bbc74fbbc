//! String collations: how text is ordered, matched and searched.
//!
//! * [`Collation::Ordinal`] (the default) compares Unicode code points, case-sensitively.
//! * [`Collation::IgnoreCase`] compares the Unicode lower-case forms of both strings
//!   (per-character lower-casing, not full case folding: `ß` does not match `SS`).
//! * [`Collation::Lexicographic`] is a "natural" order: runs of ASCII digits compare by
//!   numeric value (`"srv2" < "srv10"`), other characters compare by their lower-case
//!   form, and a run of digits sorts where the character `0` would. Strings that are
//!   still equal after that (`"Srv2"` and `"srv02"`) are ordered ordinally, so this
//!   collation is a strict total order and equality under it is exact equality.
//!
//! Every ordering here is derived from a key with a total order, which matters because
//! Rust's sorting routines may panic on comparators that are not total orders.
//!
//! Collations only affect text (`String` and `Enum` properties and string arrays); all
//! other types compare by value whatever collation the client names.

use std::borrow::Cow;
use std::cmp::Ordering;

/// Rules for comparing text values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Collation {
    /// Code point by code point, case-sensitive.
    #[default]
    Ordinal,
    /// Code point by code point after lower-casing both sides.
    IgnoreCase,
    /// Natural order: digit runs numerically, other text ignoring case, ties ordinal.
    Lexicographic,
}

impl Collation {
    /// Parses a client token (`ordinal`, `ignorecase`, `lexicographic`, any letter case).
    pub fn parse(token: &str) -> Option<Collation> {
        let t = token.trim();
        if t.eq_ignore_ascii_case("ordinal") {
            Some(Collation::Ordinal)
        } else if t.eq_ignore_ascii_case("ignorecase") {
            Some(Collation::IgnoreCase)
        } else if t.eq_ignore_ascii_case("lexicographic") {
            Some(Collation::Lexicographic)
        } else {
            None
        }
    }

    /// The token VSPC uses for this collation.
    pub fn as_str(self) -> &'static str {
        match self {
            Collation::Ordinal => "ordinal",
            Collation::IgnoreCase => "ignorecase",
            Collation::Lexicographic => "lexicographic",
        }
    }

    /// Orders two strings.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Collation::Ordinal => a.cmp(b),
            Collation::IgnoreCase => fold(a).cmp(&fold(b)),
            Collation::Lexicographic => natural_cmp(&fold(a), &fold(b)).then_with(|| a.cmp(b)),
        }
    }

    /// Dense ranks of `texts` in this collation's order: `ranks[i] < ranks[j]` exactly
    /// when `compare(texts[i], texts[j])` is `Less`, and equal ranks for equal texts.
    /// Ranks start at 0. Each text is lower-cased once, not once per comparison.
    pub(crate) fn ranks(self, texts: &[&str]) -> Vec<u32> {
        let folded: Vec<Cow<'_, str>> = match self {
            Collation::Ordinal => Vec::new(),
            Collation::IgnoreCase | Collation::Lexicographic => {
                texts.iter().map(|t| fold(t)).collect()
            }
        };
        let cmp = |a: usize, b: usize| -> Ordering {
            match self {
                Collation::Ordinal => texts[a].cmp(texts[b]),
                Collation::IgnoreCase => folded[a].cmp(&folded[b]),
                Collation::Lexicographic => {
                    natural_cmp(&folded[a], &folded[b]).then_with(|| texts[a].cmp(texts[b]))
                }
            }
        };
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_unstable_by(|&a, &b| cmp(a, b));
        let mut ranks = vec![0u32; texts.len()];
        let mut rank = 0u32;
        for (pos, &i) in order.iter().enumerate() {
            if pos > 0 && cmp(order[pos - 1], i) != Ordering::Equal {
                rank += 1;
            }
            ranks[i] = rank;
        }
        ranks
    }
}

/// A client-supplied string prepared once for repeated comparisons.
#[derive(Debug, Clone)]
pub(crate) struct Needle {
    text: String,
    /// Lower-case form; used by `IgnoreCase` and `Lexicographic`.
    folded: String,
}

impl Needle {
    pub(crate) fn new(text: &str) -> Needle {
        Needle {
            text: text.to_owned(),
            folded: fold(text).into_owned(),
        }
    }

    /// Whether `hay` equals the needle under `collation`.
    pub(crate) fn eq(&self, hay: &str, collation: Collation) -> bool {
        match collation {
            // Lexicographic order breaks its ties ordinally, so equality is exact.
            Collation::Ordinal | Collation::Lexicographic => hay == self.text,
            Collation::IgnoreCase => {
                if hay.is_ascii() && self.folded.is_ascii() {
                    hay.eq_ignore_ascii_case(&self.folded)
                } else {
                    hay.chars()
                        .flat_map(char::to_lowercase)
                        .eq(self.folded.chars())
                }
            }
        }
    }

    /// Orders `hay` relative to the needle under `collation`.
    pub(crate) fn cmp(&self, hay: &str, collation: Collation) -> Ordering {
        match collation {
            Collation::Ordinal => hay.cmp(&self.text),
            Collation::IgnoreCase => hay
                .chars()
                .flat_map(char::to_lowercase)
                .cmp(self.folded.chars()),
            Collation::Lexicographic => {
                natural_cmp(&fold(hay), &self.folded).then_with(|| hay.cmp(&self.text))
            }
        }
    }

    /// Whether `hay` contains the needle as a substring under `collation`
    /// (`Lexicographic` searches like `Ordinal`).
    pub(crate) fn is_in(&self, hay: &str, collation: Collation) -> bool {
        match collation {
            Collation::Ordinal | Collation::Lexicographic => hay.contains(self.text.as_str()),
            Collation::IgnoreCase => {
                if hay.is_ascii() && self.folded.is_ascii() {
                    contains_ascii_ignore_case(hay.as_bytes(), self.folded.as_bytes())
                } else {
                    fold(hay).contains(self.folded.as_str())
                }
            }
        }
    }
}

/// Lower-cases `s`, borrowing when it is already lower-case ASCII.
pub(crate) fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else if s.is_ascii() {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        // Per character (no final-sigma rule) so that it agrees with the streaming
        // comparisons in `Needle`.
        Cow::Owned(s.chars().flat_map(char::to_lowercase).collect())
    }
}

/// `needle` must already be lower-case.
fn contains_ascii_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.len() > hay.len() {
        return false;
    }
    let first = needle[0];
    hay.windows(needle.len())
        .any(|w| w[0].to_ascii_lowercase() == first && w.eq_ignore_ascii_case(needle))
}

/// Natural order of two already lower-cased strings.
///
/// Both strings are read as sequences of tokens: a maximal run of ASCII digits is one
/// number token, every other character is a character token. Numbers compare by value
/// (leading zeros ignored), characters by code point, and a number sorts as if it were
/// the character `'0'`. Token sequences compare lexicographically, which makes this a
/// total preorder.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    loop {
        let (Some(c), Some(d)) = (x.chars().next(), y.chars().next()) else {
            return x.is_empty().cmp(&y.is_empty()).reverse();
        };
        match (c.is_ascii_digit(), d.is_ascii_digit()) {
            (true, true) => {
                let (xn, xr) = split_digits(x);
                let (yn, yr) = split_digits(y);
                let (xn, yn) = (xn.trim_start_matches('0'), yn.trim_start_matches('0'));
                let o = xn.len().cmp(&yn.len()).then_with(|| xn.cmp(yn));
                if o != Ordering::Equal {
                    return o;
                }
                x = xr;
                y = yr;
            }
            (true, false) => return '0'.cmp(&d),
            (false, true) => return c.cmp(&'0'),
            (false, false) => {
                if c != d {
                    return c.cmp(&d);
                }
                x = &x[c.len_utf8()..];
                y = &y[d.len_utf8()..];
            }
        }
    }
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Collation::*;

    #[test]
    fn parse_tokens_any_case() {
        assert_eq!(Collation::parse("IgnoreCase"), Some(IgnoreCase));
        assert_eq!(Collation::parse("ORDINAL"), Some(Ordinal));
        assert_eq!(Collation::parse("lexicographic"), Some(Lexicographic));
        assert_eq!(Collation::parse("natural"), None);
        for c in [Ordinal, IgnoreCase, Lexicographic] {
            assert_eq!(Collation::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn ordinal_is_case_sensitive() {
        let n = Needle::new("Valid");
        assert!(n.eq("Valid", Ordinal));
        assert!(!n.eq("valid", Ordinal));
        assert_eq!(Ordinal.compare("B", "a"), Ordering::Less);
        assert!(Needle::new("Acme").is_in("The Acme Ltd", Ordinal));
        assert!(!Needle::new("acme").is_in("The Acme Ltd", Ordinal));
    }

    #[test]
    fn ignorecase_matches_and_orders() {
        let n = Needle::new("valid");
        assert!(n.eq("VALID", IgnoreCase));
        assert!(!n.eq("VALIDX", IgnoreCase));
        assert!(Needle::new("ÉCOLE").eq("école", IgnoreCase));
        // Simple (per-character) lower-casing, not full case folding.
        assert!(!Needle::new("straße").eq("STRASSE", IgnoreCase));
        // Per-character lower-casing on both sides: no final-sigma special case.
        assert!(Needle::new("ΟΔΟΣ").eq("οδοσ", IgnoreCase));
        assert!(Needle::new("οδοσ").eq("ΟΔΟΣ", IgnoreCase));
        assert_eq!(IgnoreCase.compare("B", "a"), Ordering::Greater);
        assert_eq!(IgnoreCase.compare("abc", "ABC"), Ordering::Equal);
        assert_eq!(Needle::new("ABC").cmp("abd", IgnoreCase), Ordering::Greater);
        assert!(Needle::new("ACME").is_in("the acme ltd", IgnoreCase));
        assert!(Needle::new("ÄRGER").is_in("Großer Ärger", IgnoreCase));
        assert!(Needle::new("").is_in("", IgnoreCase));
        assert!(!Needle::new("acme ltd!").is_in("acme", IgnoreCase));
    }

    #[test]
    fn lexicographic_is_natural() {
        assert_eq!(Lexicographic.compare("srv2", "srv10"), Ordering::Less);
        assert_eq!(Ordinal.compare("srv2", "srv10"), Ordering::Greater);
        assert_eq!(Lexicographic.compare("Srv10", "srv9"), Ordering::Greater);
        assert_eq!(Lexicographic.compare("a", "B"), Ordering::Less);
        assert_eq!(Lexicographic.compare("file", "file1"), Ordering::Less);
        assert_eq!(Lexicographic.compare("v1.10", "v1.9"), Ordering::Greater);
        // Equal naturally, then broken ordinally: never Equal for different strings.
        assert_eq!(Lexicographic.compare("srv02", "srv2"), Ordering::Less);
        assert_eq!(Lexicographic.compare("Srv2", "srv2"), Ordering::Less);
        assert_eq!(Lexicographic.compare("x", "x"), Ordering::Equal);
        // Long digit runs do not overflow.
        assert_eq!(
            Lexicographic.compare("n123456789012345678901234567890", "n99"),
            Ordering::Greater
        );
        let n = Needle::new("srv10");
        assert_eq!(n.cmp("srv9", Lexicographic), Ordering::Less);
        assert!(!n.eq("SRV10", Lexicographic));
        assert!(n.is_in("my-srv10-x", Lexicographic));
    }

    #[test]
    fn numbers_sort_where_zero_would() {
        // '-' < '0' < 'a'
        assert_eq!(natural_cmp("a-", "a5"), Ordering::Less);
        assert_eq!(natural_cmp("a5", "aa"), Ordering::Less);
        assert_eq!(natural_cmp("5", "-"), Ordering::Greater);
    }

    #[test]
    fn natural_order_is_transitive_on_a_sample() {
        let words = [
            "", "0", "00", "01", "1", "10", "9", "a", "A", "a1", "a01", "a10", "a-", "a9b", "ab",
            "b", "é", "É", "z9", "z10", "1a", "01a", "x.5", "x.05",
        ];
        for c in [Ordinal, IgnoreCase, Lexicographic] {
            for a in words {
                for b in words {
                    let ab = c.compare(a, b);
                    assert_eq!(ab, c.compare(b, a).reverse(), "{c:?} {a:?} {b:?}");
                    for d in words {
                        if ab != Ordering::Greater && c.compare(b, d) != Ordering::Greater {
                            assert_ne!(c.compare(a, d), Ordering::Greater, "{c:?} {a} {b} {d}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fold_borrows_when_it_can() {
        assert!(matches!(fold("abc-1"), Cow::Borrowed(_)));
        assert_eq!(fold("AbC"), "abc");
        assert_eq!(fold("ÀB"), "àb");
    }
}
