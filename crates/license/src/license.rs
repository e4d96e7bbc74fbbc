//! Minting and verifying license files: claims → signed `v4.public` token → armour, and back.
//!
//! Verification checks, in order: the armour, the token shape (`v4.public` with a footer), the
//! footer's key id against the trust store, the Ed25519 signature over the PASETO
//! pre-authentication encoding including the fixed implicit assertion, and finally that the
//! claims are well formed. Expiry and grace are *not* judged here.

use serde::{Deserialize, Serialize};

use crate::armour::{armour, dearmour};
use crate::claims::{LicenseClaims, FORMAT_VERSION};
use crate::keys::{looks_like_key_id, IssuerKey, TrustStore};
use crate::paseto::{self, TokenError, UntrustedToken};

/// The implicit assertion every license signature covers. It is never written into the file, so a
/// token the same key signed for any other purpose fails verification as a license.
pub const IMPLICIT_ASSERTION: &[u8] = b"tallyman-license-v1";

/// Largest footer accepted, in bytes (it is parsed before the signature is checked).
pub const MAX_FOOTER_LEN: usize = 1024;

/// Why a license file was refused. The messages are meant for the provider installing the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenseError {
    /// The input is not a Tallyman license file at all (wrong file picked).
    #[error("this is not a Tallyman license file: {0}")]
    NotALicense(String),
    /// It looks like a license file but is damaged or in an unsupported format.
    #[error("the license file is damaged or not in the Tallyman license format: {0}")]
    Malformed(String),
    /// Signed by a key this server does not trust.
    #[error(
        "the license was signed by issuer key {key_id}, which is not trusted here; add that \
         issuer's public key file (.pub) to the trusted keys, or ask for a license signed with a \
         key you trust"
    )]
    UnknownIssuer {
        /// The key id named in the license footer.
        key_id: String,
    },
    /// The signature does not match: the file was altered, or was not issued as a license.
    #[error(
        "the license signature is not valid: the file was changed after it was issued, or it was \
         not issued as a Tallyman license; ask the issuer for a fresh copy"
    )]
    BadSignature,
    /// Signed correctly but its content breaks the format's rules.
    #[error("the license content is not valid: {0}")]
    InvalidClaims(String),
}

impl From<TokenError> for LicenseError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Malformed(m) => LicenseError::Malformed(m),
            TokenError::BadSignature => LicenseError::BadSignature,
        }
    }
}

/// The authenticated footer. Unknown members are ignored (and still covered by the signature).
#[derive(Debug, Serialize, Deserialize)]
struct Footer {
    kid: String,
}

/// A license whose signature, issuer and claims all checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedLicense {
    /// What the license says.
    pub claims: LicenseClaims,
    /// The id of the trusted key that signed it.
    pub key_id: String,
    /// The license in canonical armour, fit to store and hand back out.
    pub armoured: String,
}

/// Validates `claims`, signs them with `key` and returns the armoured license file text.
pub fn issue(claims: &LicenseClaims, key: &IssuerKey) -> Result<String, LicenseError> {
    claims.validate()?;
    let message = serde_json::to_vec(claims)
        .map_err(|e| LicenseError::InvalidClaims(format!("cannot encode the claims: {e}")))?;
    let footer = serde_json::to_vec(&Footer {
        kid: key.key_id().to_string(),
    })
    .map_err(|e| LicenseError::InvalidClaims(format!("cannot encode the footer: {e}")))?;
    let token = paseto::sign(key.signing_key(), &message, &footer, IMPLICIT_ASSERTION);
    Ok(armour(&token))
}

struct Parsed {
    token_text: String,
    token: UntrustedToken,
    key_id: String,
}

fn parse_file(file: &[u8]) -> Result<Parsed, LicenseError> {
    let token_text = dearmour(file)?;
    let token = paseto::parse(&token_text)?;
    if token.footer.is_empty() {
        return Err(LicenseError::Malformed(
            "the token has no footer, so it does not say which issuer key signed it".into(),
        ));
    }
    if token.footer.len() > MAX_FOOTER_LEN {
        return Err(LicenseError::Malformed(format!(
            "the footer is larger than {MAX_FOOTER_LEN} bytes"
        )));
    }
    let footer: Footer = serde_json::from_slice(&token.footer).map_err(|e| {
        LicenseError::Malformed(format!(
            "the footer is not a JSON object with a \"kid\" string: {e}"
        ))
    })?;
    if !looks_like_key_id(&footer.kid) {
        return Err(LicenseError::Malformed(
            "the footer's \"kid\" is not a k4.pid key id".into(),
        ));
    }
    Ok(Parsed {
        token_text,
        token,
        key_id: footer.kid,
    })
}

fn decode_claims(message: &[u8]) -> Result<LicenseClaims, LicenseError> {
    let value: serde_json::Value = serde_json::from_slice(message)
        .map_err(|e| LicenseError::Malformed(format!("the signed claims are not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(LicenseError::Malformed(
            "the signed claims are not a JSON object".into(),
        ));
    };
    // Check the format version before anything else: a newer format may change what the other
    // claims mean, and "upgrade Tallyman" is the useful message then.
    match object.get("formatVersion") {
        None => {
            return Err(LicenseError::InvalidClaims(
                "the formatVersion claim is missing".into(),
            ))
        }
        Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(v) => {
            return Err(LicenseError::InvalidClaims(format!(
                "the license uses format version {v}, but this Tallyman reads version \
                 {FORMAT_VERSION}; upgrade Tallyman to install it"
            )))
        }
    }
    let claims: LicenseClaims =
        serde_json::from_value(value).map_err(|e| LicenseError::InvalidClaims(e.to_string()))?;
    claims.validate()?;
    Ok(claims)
}

/// Verifies a license file against the trusted issuer keys and returns its claims.
pub fn verify(file: &[u8], trust: &TrustStore) -> Result<VerifiedLicense, LicenseError> {
    let parsed = parse_file(file)?;
    let Some(key) = trust.get(&parsed.key_id) else {
        return Err(LicenseError::UnknownIssuer {
            key_id: parsed.key_id,
        });
    };
    let message = parsed
        .token
        .verify(key.verifying_key(), IMPLICIT_ASSERTION)?;
    let claims = decode_claims(message)?;
    Ok(VerifiedLicense {
        claims,
        armoured: armour(&parsed.token_text),
        key_id: parsed.key_id,
    })
}

/// Reads a license file's claims and key id **without checking the signature**. For diagnostics
/// only (showing what a refused file says); never base a decision on the result.
pub fn inspect_unverified(file: &[u8]) -> Result<(LicenseClaims, String), LicenseError> {
    let parsed = parse_file(file)?;
    let claims = decode_claims(&parsed.token.message)?;
    Ok((claims, parsed.key_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::default_claims;
    use crate::keys::IssuerPublicKey;
    use crate::spelling::FileSpelling as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use chrono::{DateTime, TimeZone as _, Utc};
    use tallyman_domain::{LicenseType, Product, SectionType, UnitType};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 14, 10, 0, 0)
            .single()
            .expect("time")
    }

    fn trusting(key: &IssuerKey) -> TrustStore {
        let mut trust = TrustStore::new();
        trust.add(key.public());
        trust
    }

    fn token_of(file: &str) -> String {
        dearmour(file.as_bytes()).expect("armoured")
    }

    /// Signs arbitrary message/footer/assertion bytes with `key`, armoured.
    fn raw_license(key: &IssuerKey, message: &[u8], footer: &[u8], implicit: &[u8]) -> String {
        armour(&paseto::sign(key.signing_key(), message, footer, implicit))
    }

    fn kid_footer(key: &IssuerKey) -> Vec<u8> {
        format!(r#"{{"kid":"{}"}}"#, key.key_id()).into_bytes()
    }

    #[test]
    fn round_trip_every_product_and_type() {
        let key = IssuerKey::generate();
        let trust = trusting(&key);
        for &product in Product::ALL {
            for &t in LicenseType::IN_FILES {
                let claims = default_claims(product, t, now());
                let file = issue(&claims, &key).expect("issue");
                assert!(file.starts_with(crate::armour::BEGIN));
                let verified = verify(file.as_bytes(), &trust).expect("verify");
                assert_eq!(verified.claims, claims, "{product} {t}");
                assert_eq!(verified.key_id, key.key_id());
                assert_eq!(verified.armoured, file);
                let (unverified, kid) = inspect_unverified(file.as_bytes()).expect("inspect");
                assert_eq!(unverified, claims);
                assert_eq!(kid, key.key_id());
            }
        }
    }

    #[test]
    fn merged_backup_license_round_trips() {
        let key = IssuerKey::generate();
        let mut claims =
            default_claims(Product::BackupAndReplication, LicenseType::Perpetual, now());
        claims.section_types = vec![SectionType::Socket, SectionType::Instance];
        claims.units = Some(13.5);
        claims.unit_type = Some(UnitType::Instances);
        claims.capacity = Some(2.5);
        let file = issue(&claims, &key).expect("issue");
        let verified = verify(file.as_bytes(), &trusting(&key)).expect("verify");
        assert_eq!(verified.claims, claims);
    }

    #[test]
    fn tampered_payload_fails_the_signature() {
        let key = IssuerKey::generate();
        let claims = default_claims(Product::Console, LicenseType::Rental, now());
        let token = token_of(&issue(&claims, &key).expect("issue"));
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut body = URL_SAFE_NO_PAD.decode(&parts[2]).expect("b64");
        // Raise the instance pool by one digit's worth: "1000" -> "9000".
        let json = String::from_utf8(body[..body.len() - 64].to_vec()).expect("utf8");
        let at = json.find("\"instances\":1000").expect("instances claim") + 12;
        body[at] = b'9';
        parts[2] = URL_SAFE_NO_PAD.encode(&body);
        let forged = armour(&parts.join("."));
        assert_eq!(
            verify(forged.as_bytes(), &trusting(&key)),
            Err(LicenseError::BadSignature)
        );

        // Flipping any single byte of the payload is caught as well.
        let body = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(2).expect("payload"))
            .expect("b64");
        for i in [0, body.len() / 2, body.len() - 1] {
            let mut b = body.clone();
            b[i] ^= 0x01;
            let forged = armour(&format!(
                "v4.public.{}.{}",
                URL_SAFE_NO_PAD.encode(&b),
                token.split('.').nth(3).expect("footer")
            ));
            assert_eq!(
                verify(forged.as_bytes(), &trusting(&key)),
                Err(LicenseError::BadSignature),
                "byte {i}"
            );
        }
    }

    #[test]
    fn untrusted_key_is_an_unknown_issuer() {
        let issuer = IssuerKey::generate();
        let other = IssuerKey::generate();
        let file = issue(
            &default_claims(Product::Vb365, LicenseType::Subscription, now()),
            &issuer,
        )
        .expect("issue");
        let err = verify(file.as_bytes(), &trusting(&other)).expect_err("untrusted");
        assert_eq!(
            err,
            LicenseError::UnknownIssuer {
                key_id: issuer.key_id().to_string()
            }
        );
        assert!(err.to_string().contains(issuer.key_id()));
        assert!(matches!(
            verify(file.as_bytes(), &TrustStore::new()),
            Err(LicenseError::UnknownIssuer { .. })
        ));
    }

    #[test]
    fn footer_naming_a_trusted_key_does_not_help_a_foreign_signature() {
        let trusted = IssuerKey::generate();
        let attacker = IssuerKey::generate();
        let claims = default_claims(Product::Console, LicenseType::Rental, now());
        let message = serde_json::to_vec(&claims).expect("json");
        let file = raw_license(
            &attacker,
            &message,
            &kid_footer(&trusted),
            IMPLICIT_ASSERTION,
        );
        assert_eq!(
            verify(file.as_bytes(), &trusting(&trusted)),
            Err(LicenseError::BadSignature)
        );
    }

    #[test]
    fn other_implicit_assertions_are_rejected() {
        let key = IssuerKey::generate();
        let claims = default_claims(Product::VOne, LicenseType::Rental, now());
        let message = serde_json::to_vec(&claims).expect("json");
        for implicit in [&b""[..], b"tallyman-license-v2", b"some-other-purpose"] {
            let file = raw_license(&key, &message, &kid_footer(&key), implicit);
            assert_eq!(
                verify(file.as_bytes(), &trusting(&key)),
                Err(LicenseError::BadSignature),
                "{}",
                String::from_utf8_lossy(implicit)
            );
        }
        // The same bytes with the right assertion pass, so the assertion is what failed.
        let good = raw_license(&key, &message, &kid_footer(&key), IMPLICIT_ASSERTION);
        assert!(verify(good.as_bytes(), &trusting(&key)).is_ok());
    }

    #[test]
    fn wrong_header_is_malformed() {
        let key = IssuerKey::generate();
        let file = issue(
            &default_claims(Product::VOne, LicenseType::Rental, now()),
            &key,
        )
        .expect("issue");
        let token = token_of(&file);
        for header in ["v4.local.", "v3.public.", "v2.public."] {
            let other = token.replacen("v4.public.", header, 1);
            match verify(armour(&other).as_bytes(), &trusting(&key)) {
                Err(LicenseError::Malformed(m)) => {
                    assert!(m.contains(header.trim_end_matches('.')), "{m}")
                }
                other => panic!("{header}: {other:?}"),
            }
        }
    }

    #[test]
    fn footer_problems_are_malformed() {
        let key = IssuerKey::generate();
        let message = br#"{"formatVersion":1}"#;
        let cases: [&[u8]; 4] = [
            b"",
            b"not json",
            br#"{"keyId":"k4.pid.x"}"#,
            br#"{"kid":"my-key"}"#,
        ];
        for footer in cases {
            let file = raw_license(&key, message, footer, IMPLICIT_ASSERTION);
            assert!(
                matches!(
                    verify(file.as_bytes(), &trusting(&key)),
                    Err(LicenseError::Malformed(_))
                ),
                "{}",
                String::from_utf8_lossy(footer)
            );
        }
        let big = format!(
            r#"{{"kid":"{}","pad":"{}"}}"#,
            key.key_id(),
            "x".repeat(2000)
        );
        let file = raw_license(&key, message, big.as_bytes(), IMPLICIT_ASSERTION);
        assert!(matches!(
            verify(file.as_bytes(), &trusting(&key)),
            Err(LicenseError::Malformed(_))
        ));
    }

    fn sign_value(
        key: &IssuerKey,
        value: &serde_json::Value,
    ) -> Result<VerifiedLicense, LicenseError> {
        let message = serde_json::to_vec(value).expect("json");
        let file = raw_license(key, &message, &kid_footer(key), IMPLICIT_ASSERTION);
        verify(file.as_bytes(), &trusting(key))
    }

    #[test]
    fn missing_or_bad_required_claims_are_invalid() {
        let key = IssuerKey::generate();
        let claims = default_claims(Product::CloudConnectSite, LicenseType::Rental, now());
        let full = serde_json::to_value(&claims).expect("json");

        for required in [
            "licenseId",
            "supportId",
            "product",
            "type",
            "edition",
            "cloudConnect",
            "company",
            "email",
            "iat",
            "iss",
            "expirationDate",
            "units",
        ] {
            let mut v = full.clone();
            v.as_object_mut().expect("object").remove(required);
            match sign_value(&key, &v) {
                Err(LicenseError::InvalidClaims(m)) => assert!(!m.is_empty()),
                other => panic!("without {required}: {other:?}"),
            }
        }

        let mut v = full.clone();
        v.as_object_mut().expect("object").remove("formatVersion");
        assert!(matches!(
            sign_value(&key, &v),
            Err(LicenseError::InvalidClaims(_))
        ));

        let mut v = full.clone();
        v["formatVersion"] = 2.into();
        match sign_value(&key, &v) {
            Err(LicenseError::InvalidClaims(m)) => assert!(m.contains("upgrade"), "{m}"),
            other => panic!("{other:?}"),
        }

        let mut v = full.clone();
        v["product"] = "toaster".into();
        assert!(matches!(
            sign_value(&key, &v),
            Err(LicenseError::InvalidClaims(_))
        ));

        let mut v = full.clone();
        v["licenseId"] = "not-a-uuid".into();
        assert!(matches!(
            sign_value(&key, &v),
            Err(LicenseError::InvalidClaims(_))
        ));

        assert!(matches!(
            sign_value(&key, &serde_json::json!([1, 2])),
            Err(LicenseError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_claims_are_ignored() {
        let key = IssuerKey::generate();
        let claims = default_claims(Product::Console, LicenseType::Subscription, now());
        let mut v = serde_json::to_value(&claims).expect("json");
        v["futureClaim"] = serde_json::json!({"nested": [1, 2, 3]});
        v["anotherOne"] = "x".into();
        let verified = sign_value(&key, &v).expect("newer file still verifies");
        assert_eq!(verified.claims, claims);
    }

    #[test]
    fn issue_refuses_invalid_claims() {
        let key = IssuerKey::generate();
        let mut claims = default_claims(Product::Vb365, LicenseType::Rental, now());
        claims.licensed_users = None;
        claims.company = String::new();
        match issue(&claims, &key) {
            Err(LicenseError::InvalidClaims(m)) => {
                assert!(m.contains("licensedUsers") && m.contains("company"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn armour_variants_verify() {
        let key = IssuerKey::generate();
        let trust = trusting(&key);
        let file = issue(
            &default_claims(Product::Console, LicenseType::Nfr, now()),
            &key,
        )
        .expect("issue");
        let crlf = file.replace('\n', "\r\n");
        let bom = format!("\u{feff}{file}");
        let trailing = format!("{file}   \n\n\t \n");
        let leading = format!("\n\n   {file}");
        let one_line = armour_one_line(&file);
        for variant in [crlf, bom, trailing, leading, one_line] {
            let verified = verify(variant.as_bytes(), &trust).expect("tolerated");
            assert_eq!(verified.armoured, file, "canonical armour is returned");
        }
    }

    fn armour_one_line(file: &str) -> String {
        format!(
            "{}\n{}\n{}\n",
            crate::armour::BEGIN,
            token_of(file),
            crate::armour::END
        )
    }

    #[test]
    fn keys_loaded_from_pem_verify() {
        let key = IssuerKey::generate();
        let file = issue(
            &default_claims(Product::VOne, LicenseType::Evaluation, now()),
            &key,
        )
        .expect("issue");
        let public = IssuerPublicKey::from_pem(&key.public().to_pem()).expect("pem");
        let trust: TrustStore = [public].into_iter().collect();
        assert!(verify(file.as_bytes(), &trust).is_ok());
    }
}

/// The worked example in `docs/license-format.md`, kept verifiable by this test so the document
/// and the code cannot drift apart.
#[cfg(test)]
mod documented_example {
    use super::*;
    use crate::keys::IssuerPublicKey;
    use tallyman_domain::{CloudConnect, LicenseType, Package, Product, UnitType};

    const PUBLIC_KEY: &str = include_str!("../testdata/example-issuer.key.pub");
    const LICENSE: &str = include_str!("../testdata/example-site.lic");
    const KEY_ID: &str = "k4.pid.unsYdLJ78UfBIK4A1-b01RPwhtbTELYEwAHnG5JTK0aE";

    #[test]
    fn the_documented_license_verifies() {
        let public = IssuerPublicKey::from_pem(PUBLIC_KEY).expect("example public key");
        assert_eq!(public.key_id(), KEY_ID);
        let trust: TrustStore = [public].into_iter().collect();
        let license = verify(LICENSE.as_bytes(), &trust).expect("example license");
        assert_eq!(license.key_id, KEY_ID);
        assert_eq!(license.armoured, LICENSE);
        let c = &license.claims;
        assert_eq!(
            c.license_id.to_string(),
            "436b5b93-3cc6-48b9-8948-64d7bba7ea0f"
        );
        assert_eq!(c.support_id, "311696056");
        assert_eq!(c.product, Product::CloudConnectSite);
        assert_eq!(c.license_type, LicenseType::Rental);
        assert_eq!(c.packages, vec![Package::Suite]);
        assert_eq!(
            (c.units, c.unit_type),
            (Some(1000.0), Some(UnitType::Points))
        );
        assert_eq!(c.cloud_connect, CloudConnect::Yes);
        assert_eq!(c.company, "Northwind Cloud Services");
        assert_eq!(c.issuer, "Example Distributor");
        assert_eq!(
            c.expiration_date.map(|t| t.to_rfc3339()),
            Some("2026-11-30T23:59:59+00:00".to_string())
        );
    }

    /// `license inspect` prints the documented listing for the documented file.
    #[test]
    fn the_documented_inspect_output_is_what_inspect_prints() {
        const DOC: &str = include_str!("../../../docs/license-format.md");
        let trust: TrustStore = [IssuerPublicKey::from_pem(PUBLIC_KEY).expect("key")]
            .into_iter()
            .collect();
        let license = verify(LICENSE.as_bytes(), &trust).expect("example license");
        let text = crate::cli::describe(&license.claims, KEY_ID, true);
        assert!(DOC.contains(text.trim_end()), "{text}");
    }

    /// Writing the documented claims again gives the signed bytes back exactly: the spellings
    /// (`cloud-connect`, `Rental`, `Suite`, `Instance`, `Points`, `Yes`) and the order are the
    /// format's.
    #[test]
    fn the_documented_claims_serialize_to_the_signed_bytes() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;

        let token = crate::armour::dearmour(LICENSE.as_bytes()).expect("armoured");
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(2).expect("payload"))
            .expect("base64");
        let signed = &payload[..payload.len() - 64];
        let (claims, _) = inspect_unverified(LICENSE.as_bytes()).expect("example license");
        let written = serde_json::to_vec(&claims).expect("json");
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(signed)
        );
    }
}
