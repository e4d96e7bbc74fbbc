//! A small, lenient JSON reader for the `filter`, `sort` and `select` parameters.
//!
//! VSPC evidently parses these parameters with a forgiving .NET reader: published client
//! scripts send single-quoted JSON, and Veeam's own documentation has trailing commas.
//! This reader accepts strict JSON plus:
//!
//! * strings in single quotes (`'Valid'`), with `\'` available as an escape;
//! * a trailing comma before `]` or `}`;
//! * unquoted object keys made of letters, digits, `_`, `$`, `-` and `.`;
//! * `true`, `false` and `null` in any letter case;
//! * a leading `+` on numbers, and numbers such as `.5` or `5.`;
//! * `/* … */` and `// …` comments and a leading byte-order mark.
//!
//! Numbers keep their source text so that a number given for a text property compares as
//! written. Objects keep their members in source order; duplicate keys are all kept and
//! lookups take the last one. Nesting deeper than [`MAX_DEPTH`] is rejected so that a
//! hostile parameter cannot exhaust the stack.

use std::fmt;

/// Deepest accepted nesting of arrays and objects.
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// Source text of a number, already checked against the number grammar.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member named `key` (ASCII case-insensitive; the last duplicate wins).
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Like [`Json::get`], but an explicit `null` also counts as absent.
    pub(crate) fn get_non_null(&self, key: &str) -> Option<&Json> {
        self.get(key).filter(|v| !matches!(v, Json::Null))
    }

    /// A short description of the value's kind, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Why a text is not acceptable JSON, with the 1-based character position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub(crate) position: usize,
    pub(crate) message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Invalid JSON at character {}: {}.",
            self.position, self.message
        )
    }
}

/// Parses a whole text as one JSON value.
pub(crate) fn parse(text: &str) -> Result<Json, JsonError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    if text.starts_with('\u{feff}') {
        p.pos = '\u{feff}'.len_utf8();
    }
    p.skip_ws()?;
    let value = p.value(0)?;
    p.skip_ws()?;
    if p.pos < p.bytes.len() {
        return Err(p.error("unexpected text after the end of the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> JsonError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, byte_pos: usize, message: &str) -> JsonError {
        let mut at = byte_pos.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        JsonError {
            position: self.text[..at].chars().count() + 1,
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) -> Result<(), JsonError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => match self.bytes.get(self.pos + 1) {
                    Some(b'/') => {
                        while !matches!(self.peek(), None | Some(b'\n')) {
                            self.pos += 1;
                        }
                    }
                    Some(b'*') => {
                        let start = self.pos;
                        self.pos += 2;
                        loop {
                            match self.peek() {
                                None => return Err(self.error_at(start, "unterminated comment")),
                                Some(b'*') if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                                    self.pos += 2;
                                    break;
                                }
                                Some(_) => self.pos += 1,
                            }
                        }
                    }
                    _ => return Ok(()),
                },
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input, a value was expected")),
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(q @ (b'"' | b'\'')) => self.string(q).map(Json::String),
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => self.number(),
            Some(b) if is_word_byte(b) => {
                let start = self.pos;
                let word = self.word();
                if word.eq_ignore_ascii_case("true") {
                    Ok(Json::Bool(true))
                } else if word.eq_ignore_ascii_case("false") {
                    Ok(Json::Bool(false))
                } else if word.eq_ignore_ascii_case("null") {
                    Ok(Json::Null)
                } else {
                    Err(self.error_at(start, "unexpected word, a value was expected"))
                }
            }
            Some(_) => Err(self.error("unexpected character, a value was expected")),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            Err(self.error("nesting is too deep"))
        } else {
            Ok(())
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Json::Array(items));
            }
            items.push(self.value(depth)?);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                None => return Err(self.error("unexpected end of input, ']' was expected")),
                Some(_) => return Err(self.error("',' or ']' was expected")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        let mut members = Vec::new();
        loop {
            self.skip_ws()?;
            let key = match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                Some(q @ (b'"' | b'\'')) => self.string(q)?,
                Some(b) if is_word_byte(b) => self.word().to_owned(),
                None => return Err(self.error("unexpected end of input, '}' was expected")),
                Some(_) => return Err(self.error("a property name was expected")),
            };
            self.skip_ws()?;
            if self.peek() != Some(b':') {
                return Err(self.error("':' was expected after the property name"));
            }
            self.pos += 1;
            self.skip_ws()?;
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                None => return Err(self.error("unexpected end of input, '}' was expected")),
                Some(_) => return Err(self.error("',' or '}' was expected")),
            }
        }
    }

    fn word(&mut self) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(is_word_byte) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let int_digits = self.digits();
        let mut frac_digits = 0;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            frac_digits = self.digits();
        }
        if int_digits + frac_digits == 0 {
            return Err(self.error_at(start, "malformed number"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'-' | b'+')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error_at(start, "malformed number"));
            }
        }
        if self.peek().is_some_and(is_word_byte) {
            return Err(self.error_at(start, "malformed number"));
        }
        Ok(Json::Number(self.text[start..self.pos].to_owned()))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn string(&mut self, quote: u8) -> Result<String, JsonError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Copy the run of plain characters in one go.
            let run_start = self.pos;
            while self.peek().is_some_and(|b| b != quote && b != b'\\') {
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(self.error_at(start, "unterminated string")),
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => {
                    self.pos += 1; // closing quote
                    return Ok(out);
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let at = self.pos - 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\'') => '\'',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let first = self.hex4(at)?;
                let c = if (0xD800..0xDC00).contains(&first)
                    && self.bytes.get(self.pos) == Some(&b'\\')
                    && self.bytes.get(self.pos + 1) == Some(&b'u')
                {
                    let save = self.pos;
                    self.pos += 2;
                    let second = self.hex4(at)?;
                    if (0xDC00..0xE000).contains(&second) {
                        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
                    } else {
                        self.pos = save; // not a pair: decode the second escape separately
                        None
                    }
                } else {
                    char::from_u32(first)
                };
                out.push(c.unwrap_or('\u{fffd}'));
                return Ok(());
            }
            _ => return Err(self.error_at(at, "invalid escape sequence")),
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self, at: usize) -> Result<u32, JsonError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error_at(at, "invalid \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let h = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error_at(at, "invalid \\u escape"))?;
            v = v * 16 + h;
        }
        self.pos += 4;
        Ok(v)
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Json {
        Json::String(v.to_owned())
    }

    fn n(v: &str) -> Json {
        Json::Number(v.to_owned())
    }

    #[test]
    fn strict_json() {
        let v = parse(r#" [ {"a": 1, "b": [true, false, null], "c": "x\"y"} ] "#).expect("ok");
        assert_eq!(
            v,
            Json::Array(vec![Json::Object(vec![
                ("a".into(), n("1")),
                (
                    "b".into(),
                    Json::Array(vec![Json::Bool(true), Json::Bool(false), Json::Null])
                ),
                ("c".into(), s("x\"y")),
            ])])
        );
    }

    #[test]
    fn single_quotes_and_mixed_quotes() {
        let v = parse(r#"[{'property':'name','value':"O'Brien",'x':'say \'hi\''}]"#).expect("ok");
        let o = match &v {
            Json::Array(items) => &items[0],
            _ => panic!("array expected"),
        };
        assert_eq!(o.get("property"), Some(&s("name")));
        assert_eq!(o.get("value"), Some(&s("O'Brien")));
        assert_eq!(o.get("x"), Some(&s("say 'hi'")));
    }

    #[test]
    fn trailing_commas_comments_unquoted_keys() {
        let v = parse("[ {operation: 'and', items: [1, 2,], /* c */ }, // end\n ]").expect("ok");
        let Json::Array(items) = v else {
            panic!("array expected")
        };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].get("OPERATION"), Some(&s("and")));
        assert_eq!(
            items[0].get("items"),
            Some(&Json::Array(vec![n("1"), n("2")]))
        );
    }

    #[test]
    fn literals_any_case_and_numbers() {
        assert_eq!(parse("TRUE").expect("ok"), Json::Bool(true));
        assert_eq!(parse("Null").expect("ok"), Json::Null);
        for t in ["-1.5e3", "+2", ".5", "5.", "0", "1E-2"] {
            assert_eq!(parse(t).expect("ok"), n(t));
        }
        for t in ["-", "1e", "1x", ".", "+."] {
            assert!(parse(t).is_err(), "{t} should fail");
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(parse(r#""\u00e9\n\/""#).expect("ok"), s("é\n/"));
        assert_eq!(parse(r#""\ud83d\ude00""#).expect("ok"), s("😀"));
        assert_eq!(parse(r#""\ud83d""#).expect("ok"), s("\u{fffd}"));
        assert_eq!(parse(r#""\ud83d\u0041""#).expect("ok"), s("\u{fffd}A"));
        assert!(parse(r#""\x""#).is_err());
        assert!(parse(r#""\u12""#).is_err());
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("[{").expect_err("truncated");
        assert_eq!(e.position, 3);
        let e = parse("[1 2]").expect_err("missing comma");
        assert_eq!(e.position, 4);
        assert!(parse("").is_err());
        assert!(parse("[1] x").is_err());
        assert!(parse("[,]").is_err());
        assert!(parse("{'a' 1}").is_err());
        assert!(parse("\"abc").is_err());
        assert!(parse("/* x").is_err());
        assert!(parse("[wat]").is_err());
        let e = parse("[\"é\", ?]").expect_err("bad char");
        assert_eq!(e.position, 7);
    }

    #[test]
    fn depth_is_limited() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).is_err());
        let hostile = "[".repeat(100_000);
        assert!(parse(&hostile).is_err());
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let v = parse("{'a':1,'A':2}").expect("ok");
        assert_eq!(v.get("a"), Some(&n("2")));
        let v = parse("{'a':1,'b':null}").expect("ok");
        assert_eq!(v.get_non_null("b"), None);
        assert_eq!(v.get("b"), Some(&Json::Null));
    }

    #[test]
    fn bom_is_skipped() {
        assert_eq!(parse("\u{feff}[]").expect("ok"), Json::Array(vec![]));
    }
}

impl Json {
    /// The value as `serde_json` sees it. Numbers keep their value (integers stay integers
    /// when they fit); keys keep their spelling, the last duplicate winning.
    pub(crate) fn into_value(self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(text) => serde_json::from_str::<serde_json::Number>(&text)
                .map(Value::Number)
                .or_else(|_| text.parse::<f64>().map(Value::from))
                .unwrap_or(Value::Null),
            Json::String(s) => Value::String(s),
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(members) => {
                let mut map = serde_json::Map::new();
                for (k, v) in members {
                    map.insert(k, v.into_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// Parses text with the same forgiving reader the query parameters use (single quotes,
/// trailing commas, comments), for request bodies that real clients send in that style —
/// JSON Patch documents, for example.
pub fn parse_lenient_json(text: &str) -> Result<serde_json::Value, String> {
    parse(text).map(Json::into_value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod lenient_tests {
    use super::parse_lenient_json;
    use serde_json::json;

    #[test]
    fn lenient_bodies_become_serde_values() {
        assert_eq!(
            parse_lenient_json("[{'op':'replace','path':'/x','value':\"450\",},]").unwrap(),
            json!([{"op": "replace", "path": "/x", "value": "450"}])
        );
        assert_eq!(
            parse_lenient_json("{\"n\": 17, \"f\": 1.5, \"b\": true}").unwrap(),
            json!({"n": 17, "f": 1.5, "b": true})
        );
        assert!(parse_lenient_json("[{").is_err());
    }
}
