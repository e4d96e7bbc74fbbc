//! The text armour around a license token:
//!
//! ```text
//! -----BEGIN TALLYMAN LICENSE-----
//! v4.public.eyJmb3JtYXRWZXJzaW9uIjoxLCJsaWNlbnNlSWQiOiI…   (64 characters a line)
//! …
//! -----END TALLYMAN LICENSE-----
//! ```
//!
//! Reading is forgiving about what mail clients and editors do to text (a UTF-8 byte-order mark,
//! CRLF line ends, indentation, blank lines, text before or after the block); writing is canonical.

use crate::LicenseError;

/// First line of the armour.
pub const BEGIN: &str = "-----BEGIN TALLYMAN LICENSE-----";
/// Last line of the armour.
pub const END: &str = "-----END TALLYMAN LICENSE-----";
/// Characters per body line when writing.
pub const LINE_WIDTH: usize = 64;
/// Largest file accepted, in bytes. Real licenses are around 1 KiB.
pub const MAX_FILE_LEN: usize = 64 * 1024;

/// Wraps a token in the armour, 64 characters a line, with a final newline.
pub fn armour(token: &str) -> String {
    let mut out = String::with_capacity(token.len() + token.len() / LINE_WIDTH + 80);
    out.push_str(BEGIN);
    out.push('\n');
    // Tokens are ASCII, so byte chunks are character chunks.
    for chunk in token.as_bytes().chunks(LINE_WIDTH) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Extracts the token from an armoured file.
pub fn dearmour(file: &[u8]) -> Result<String, LicenseError> {
    if file.len() > MAX_FILE_LEN {
        return Err(LicenseError::NotALicense(format!(
            "the file is {} bytes; a license file is at most {} KiB",
            file.len(),
            MAX_FILE_LEN / 1024
        )));
    }
    let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let text = std::str::from_utf8(file).map_err(|_| {
        LicenseError::NotALicense("the file is not text (expected an armoured license)".into())
    })?;

    let mut body: Option<String> = None;
    let mut inside = false;
    let mut other_block: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim();
        if !inside {
            if line == BEGIN {
                if body.is_some() {
                    return Err(LicenseError::Malformed(
                        "the file holds more than one license; install them one at a time".into(),
                    ));
                }
                inside = true;
                body = Some(String::new());
            } else if let Some(label) = line
                .strip_prefix("-----BEGIN ")
                .and_then(|l| l.strip_suffix("-----"))
            {
                other_block.get_or_insert(label);
            }
            continue;
        }
        if line == END {
            inside = false;
        } else if line.starts_with("-----") {
            return Err(LicenseError::Malformed(format!(
                "unexpected line \"{}\" inside the license armour",
                truncate(line, 60)
            )));
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }

    let Some(body) = body else {
        return Err(LicenseError::NotALicense(match other_block {
            Some(label) => format!("it holds a PEM \"{label}\" block, not a license ({BEGIN})"),
            None => format!("no {BEGIN} line found"),
        }));
    };
    if inside {
        return Err(LicenseError::Malformed(format!(
            "the {END} line is missing (the file may be truncated)"
        )));
    }
    if body.is_empty() {
        return Err(LicenseError::Malformed(
            "the license armour is empty".into(),
        ));
    }
    if let Some(bad) = body.chars().find(|c| !is_token_char(*c)) {
        return Err(LicenseError::Malformed(format!(
            "the armoured text contains {bad:?}, which cannot appear in a license token"
        )));
    }
    Ok(body)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "v4.public.QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk.eyJraWQiOiJ4In0";

    #[test]
    fn armour_wraps_and_round_trips() {
        let text = armour(TOKEN);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], BEGIN);
        assert_eq!(*lines.last().expect("end"), END);
        assert!(lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.len() <= LINE_WIDTH));
        assert!(text.ends_with('\n'));
        assert_eq!(dearmour(text.as_bytes()).expect("dearmour"), TOKEN);
    }

    #[test]
    fn tolerates_bom_crlf_indentation_and_surrounding_text() {
        let text = armour(TOKEN);
        let mangled = format!(
            "\u{feff}Here is your license:\r\n\r\n  {}   \r\n\r\nRegards\r\n",
            text.replace('\n', "  \r\n\t")
        );
        assert_eq!(dearmour(mangled.as_bytes()).expect("tolerant"), TOKEN);
        let one_line = format!("{BEGIN}\n{TOKEN}\n{END}");
        assert_eq!(dearmour(one_line.as_bytes()).expect("raw line"), TOKEN);
    }

    #[test]
    fn explains_what_is_wrong() {
        let err = |b: &[u8]| dearmour(b).expect_err("must fail");
        assert!(matches!(err(b"hello"), LicenseError::NotALicense(_)));
        assert!(matches!(
            err(&[0xff, 0xfe, 0x00]),
            LicenseError::NotALicense(_)
        ));
        match err(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n") {
            LicenseError::NotALicense(m) => assert!(m.contains("PUBLIC KEY"), "{m}"),
            other => panic!("{other:?}"),
        }
        let truncated = format!("{BEGIN}\n{TOKEN}\n");
        assert!(matches!(
            err(truncated.as_bytes()),
            LicenseError::Malformed(_)
        ));
        let empty = format!("{BEGIN}\n\n{END}\n");
        assert!(matches!(err(empty.as_bytes()), LicenseError::Malformed(_)));
        let spaced = format!("{BEGIN}\nv4.public. abc\n{END}\n");
        assert!(matches!(err(spaced.as_bytes()), LicenseError::Malformed(_)));
        let twice = format!("{}{}", armour(TOKEN), armour(TOKEN));
        assert!(matches!(err(twice.as_bytes()), LicenseError::Malformed(_)));
        let huge = vec![b'a'; MAX_FILE_LEN + 1];
        assert!(matches!(err(&huge), LicenseError::NotALicense(_)));
    }
}
