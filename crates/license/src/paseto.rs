//! PASETO `v4.public` signing and verification (Ed25519 over the PASETO pre-authentication
//! encoding), implemented directly on `ed25519-dalek`.
//!
//! This module knows nothing about licenses: it turns (payload, footer, implicit assertion) into a
//! token and back. It is exercised against the official PASETO v4 test vectors in its tests.
//!
//! Token layout: `v4.public.` + base64url(message ‖ signature) [+ `.` + base64url(footer)], with
//! unpadded base64url and a 64-byte Ed25519 signature over
//! `PAE("v4.public.", message, footer, implicit_assertion)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey, SIGNATURE_LENGTH};

/// The header every token handled here starts with.
pub const HEADER: &str = "v4.public.";

/// Why a token could not be taken apart or did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token is not shaped like a `v4.public` token (wrong header, bad base64, too short…).
    Malformed(String),
    /// The signature does not match the public key, message, footer and implicit assertion.
    BadSignature,
}

/// A token split into its parts, before its signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedToken {
    /// The signed message (the license claims, for Tallyman).
    pub message: Vec<u8>,
    /// The 64-byte Ed25519 signature.
    pub signature: [u8; SIGNATURE_LENGTH],
    /// The footer bytes (empty when the token has none).
    pub footer: Vec<u8>,
}

/// PASETO pre-authentication encoding: the piece count, then each piece prefixed with its length,
/// every count as a 64-bit little-endian integer with the top bit cleared.
pub fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let total: usize = pieces.iter().map(|p| 8 + p.len()).sum::<usize>() + 8;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&le64(pieces.len() as u64));
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len() as u64));
        out.extend_from_slice(piece);
    }
    out
}

fn le64(n: u64) -> [u8; 8] {
    // The spec clears the most significant bit so that languages without unsigned 64-bit
    // integers produce the same bytes.
    (n & (u64::MAX >> 1)).to_le_bytes()
}

/// Signs `message` and returns the `v4.public` token. An empty `footer` yields a token without a
/// footer part, as the spec requires.
pub fn sign(key: &SigningKey, message: &[u8], footer: &[u8], implicit: &[u8]) -> String {
    let signed = pae(&[HEADER.as_bytes(), message, footer, implicit]);
    let signature = key.sign(&signed);
    let mut body = Vec::with_capacity(message.len() + SIGNATURE_LENGTH);
    body.extend_from_slice(message);
    body.extend_from_slice(&signature.to_bytes());
    let mut token = format!("{HEADER}{}", URL_SAFE_NO_PAD.encode(body));
    if !footer.is_empty() {
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(footer));
    }
    token
}

/// Splits a token into message, signature and footer without checking the signature.
///
/// Only `v4.public` is accepted; any other PASETO version or purpose is reported by name so the
/// caller can say what it was given.
pub fn parse(token: &str) -> Result<UntrustedToken, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() < 3 {
        return Err(TokenError::Malformed(
            "it is not a PASETO token (expected `v4.public.<payload>[.<footer>]`)".into(),
        ));
    }
    let (version, purpose) = (parts[0], parts[1]);
    if version != "v4" || purpose != "public" {
        return Err(TokenError::Malformed(describe_header(version, purpose)));
    }
    if parts.len() > 4 {
        return Err(TokenError::Malformed(format!(
            "a v4.public token has at most 4 dot-separated parts, this one has {}",
            parts.len()
        )));
    }
    let body = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|e| TokenError::Malformed(format!("the payload is not valid base64url: {e}")))?;
    if body.len() < SIGNATURE_LENGTH {
        return Err(TokenError::Malformed(
            "the payload is too short to hold a signature".into(),
        ));
    }
    let footer = match parts.get(3) {
        Some(f) => URL_SAFE_NO_PAD.decode(f).map_err(|e| {
            TokenError::Malformed(format!("the footer is not valid base64url: {e}"))
        })?,
        None => Vec::new(),
    };
    let split = body.len() - SIGNATURE_LENGTH;
    let mut signature = [0u8; SIGNATURE_LENGTH];
    signature.copy_from_slice(&body[split..]);
    Ok(UntrustedToken {
        message: body[..split].to_vec(),
        signature,
        footer,
    })
}

fn describe_header(version: &str, purpose: &str) -> String {
    let known_version = matches!(version, "v1" | "v2" | "v3" | "v4");
    let known_purpose = matches!(purpose, "local" | "public");
    if known_version && known_purpose {
        format!("it is a {version}.{purpose} PASETO token, but only v4.public is accepted")
    } else {
        "it does not start with the `v4.public.` header".into()
    }
}

impl UntrustedToken {
    /// Checks the signature against `key` and `implicit`; on success returns the message.
    ///
    /// Uses strict Ed25519 verification (rejects non-canonical signatures and small-order keys),
    /// so a signature has exactly one valid encoding.
    pub fn verify(&self, key: &VerifyingKey, implicit: &[u8]) -> Result<&[u8], TokenError> {
        let signed = pae(&[HEADER.as_bytes(), &self.message, &self.footer, implicit]);
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&signed, &signature)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(&self.message)
    }
}

/// Parses and verifies in one step; returns (message, footer).
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    implicit: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), TokenError> {
    let parsed = parse(token)?;
    parsed.verify(key, implicit)?;
    Ok((parsed.message, parsed.footer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    /// Key pair shared by the official vectors 4-S-1 … 4-S-3.
    fn vector_keys() -> (SigningKey, VerifyingKey) {
        let secret = hex("b4cbfb43df4ce210727d953e4a713307fa19bb7d9f85041438d9e11b942a3774");
        let public = hex("1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2");
        let seed: [u8; 32] = secret.try_into().expect("32 bytes");
        let signing = SigningKey::from_bytes(&seed);
        assert_eq!(
            signing.verifying_key().as_bytes().as_slice(),
            public.as_slice()
        );
        (signing.clone(), signing.verifying_key())
    }

    const VECTOR_MESSAGE: &str =
        r#"{"data":"this is a signed message","exp":"2022-01-01T00:00:00+00:00"}"#;
    const VECTOR_FOOTER: &str = r#"{"kid":"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"}"#;

    // Official PASETO v4 test vectors (paseto-standard/test-vectors, v4.json).
    const S1: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9bg_XBBzds8lTZShVlwwKSgeKpLT3yukTw6JUz3W4h_ExsQV-P0V54zemZDcAxFaSeef1QlXEFtkqxT1ciiQEDA";
    const S2: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9v3Jt8mx_TdM2ceTGoqwrh4yDFn0XsHvvV_D0DtwQxVrJEBMl0F2caAdgnpKlt4p7xBnx1HcO-SPo8FPp214HDw.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";
    const S3: &str = "v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9NPWciuD3d0o5eXJXG5pJy-DiVEoyPYWs1YSTwWHNJq6DZD3je5gf-0M4JR9ipdUSJbIovzmBECeaWmaqcaP0DQ.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9";

    #[test]
    fn pae_matches_the_spec_examples() {
        assert_eq!(pae(&[]), hex("0000000000000000"));
        assert_eq!(pae(&[b""]), hex("01000000000000000000000000000000"));
        assert_eq!(
            pae(&[b"test"]),
            hex("0100000000000000040000000000000074657374")
        );
    }

    #[test]
    fn official_vectors_are_reproduced_by_signing() {
        let (sk, _) = vector_keys();
        let m = VECTOR_MESSAGE.as_bytes();
        let f = VECTOR_FOOTER.as_bytes();
        assert_eq!(sign(&sk, m, b"", b""), S1);
        assert_eq!(sign(&sk, m, f, b""), S2);
        assert_eq!(sign(&sk, m, f, br#"{"test-vector":"4-S-3"}"#), S3);
    }

    #[test]
    fn official_vectors_verify() {
        let (_, pk) = vector_keys();
        let (m, f) = verify(S1, &pk, b"").expect("4-S-1");
        assert_eq!(m, VECTOR_MESSAGE.as_bytes());
        assert!(f.is_empty());
        let (m, f) = verify(S2, &pk, b"").expect("4-S-2");
        assert_eq!(m, VECTOR_MESSAGE.as_bytes());
        assert_eq!(f, VECTOR_FOOTER.as_bytes());
        let (m, _) = verify(S3, &pk, br#"{"test-vector":"4-S-3"}"#).expect("4-S-3");
        assert_eq!(m, VECTOR_MESSAGE.as_bytes());
    }

    #[test]
    fn implicit_assertion_is_bound_to_the_signature() {
        let (_, pk) = vector_keys();
        assert_eq!(verify(S3, &pk, b""), Err(TokenError::BadSignature));
        assert_eq!(
            verify(S2, &pk, br#"{"test-vector":"4-S-3"}"#),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn footer_is_authenticated() {
        let (_, pk) = vector_keys();
        let forged = format!(
            "{}.{}",
            S2.rsplit_once('.').expect("footer").0,
            URL_SAFE_NO_PAD.encode(br#"{"kid":"someone-else"}"#)
        );
        assert_eq!(verify(&forged, &pk, b""), Err(TokenError::BadSignature));
    }

    #[test]
    fn other_versions_and_purposes_are_named() {
        for header in ["v4.local", "v3.public", "v2.public", "v1.local"] {
            let token = format!("{header}.AAAA");
            match parse(&token) {
                Err(TokenError::Malformed(msg)) => assert!(msg.contains(header), "{msg}"),
                other => panic!("{header}: {other:?}"),
            }
        }
        assert!(matches!(parse("hello"), Err(TokenError::Malformed(_))));
        assert!(matches!(
            parse("v4.public.AAAA"),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            parse("v4.public.!!!!"),
            Err(TokenError::Malformed(_))
        ));
    }
}
