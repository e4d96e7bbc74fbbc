//! Tallyman's signed license file format.
//!
//! A license file is a PASETO `v4.public` token (Ed25519) wrapped in a text armour:
//!
//! ```text
//! -----BEGIN TALLYMAN LICENSE-----
//! v4.public.<base64url(claims JSON ‖ signature)>.<base64url({"kid":"k4.pid.…"})>
//! -----END TALLYMAN LICENSE-----
//! ```
//!
//! The claims carry every field the five VSPC license resources expose, in the domain's
//! vocabulary ([`tallyman_domain::Product`], [`tallyman_domain::LicenseType`], …) spelled the
//! file format's way ([`spelling`]); the authenticated footer names the issuer key (its PASERK
//! `k4.pid`), so servers can trust several keys and keys rotate; and the signature also covers
//! the implicit assertion [`IMPLICIT_ASSERTION`], so nothing else the same key signs passes as a
//! license. The full specification is `docs/license-format.md`.
//!
//! ```
//! use tallyman_domain::{LicenseType, Product};
//! use tallyman_license::{default_claims, issue, verify, IssuerKey, TrustStore};
//!
//! let key = IssuerKey::generate();
//! let claims = default_claims(Product::Console, LicenseType::Rental, chrono::Utc::now());
//! let file = issue(&claims, &key)?;
//!
//! let mut trust = TrustStore::new();
//! trust.add(key.public());
//! let license = verify(file.as_bytes(), &trust)?;
//! assert_eq!(license.claims.license_id, claims.license_id);
//! # Ok::<(), tallyman_license::LicenseError>(())
//! ```
//!
//! This crate checks signature, purpose, issuer and claim well-formedness only. Whether a license
//! is expired, in grace, or fits a given server is decided by the domain layer, with its clock.

pub mod armour;
pub mod claims;
pub mod cli;
pub mod keys;
pub mod license;
pub mod paseto;
pub mod spelling;

pub use claims::{default_claims, LicenseClaims, FORMAT_VERSION};
pub use keys::{IssuerKey, IssuerPublicKey, KeyError, TrustStore};
pub use license::{
    inspect_unverified, issue, verify, LicenseError, VerifiedLicense, IMPLICIT_ASSERTION,
};
pub use spelling::FileSpelling;
