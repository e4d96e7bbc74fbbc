//! The claims a license carries (its signed JSON payload), their well-formedness rules, and the
//! per-product / per-type defaults used to mint realistic files.
//!
//! Instants are `chrono::DateTime<Utc>` and travel as RFC 3339 strings. Expiration instants are
//! inclusive: a license whose `expirationDate` is `2026-05-31T23:59:59Z` is valid through the
//! whole of 31 May (UTC). Dates typed on the command line (`YYYY-MM-DD`) become 23:59:59 UTC of
//! that day.
//!
//! The enums in the claims (product, type, packages, sections, unit type, Cloud Connect) are the
//! domain's; [`crate::spelling`] says how a file spells them.
//!
//! This module says whether a claim set is *well formed*; whether a license is expired, in grace,
//! or fits a target server is the domain's business, not this crate's.

use chrono::{DateTime, Datelike as _, Days, Months, NaiveDate, SubsecRound as _, Utc};
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use tallyman_domain::{CloudConnect, LicenseType, Package, Product, SectionType, UnitType};
use uuid::Uuid;

use crate::spelling::{self, FileSpelling};

/// The claim-set format this crate writes and reads. Adding optional claims does not change it;
/// a change that an older reader would misunderstand does, and older readers then refuse the file.
pub const FORMAT_VERSION: u32 = 1;

/// Longest accepted text claim, in characters.
pub const MAX_TEXT_LEN: usize = 256;

/// Everything a license file says, as signed by its issuer. JSON names are the camelCase forms
/// of the field names, except `type`, `iat` and `iss`.
///
/// Optional claims may be absent or `null` (the same thing); unknown claims are ignored so newer
/// issuers can add claims without breaking older servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseClaims {
    /// Claim-set format, always [`FORMAT_VERSION`] for files this crate writes.
    pub format_version: u32,
    /// The license (file) id; several servers may carry the same one.
    pub license_id: Uuid,
    /// The support / contract id.
    pub support_id: String,
    /// What the license is for.
    #[serde(with = "spelling::one")]
    pub product: Product,
    /// Commercial type.
    #[serde(rename = "type", with = "spelling::one")]
    pub license_type: LicenseType,
    /// Edition, free text (`Enterprise Plus`, `Standard`, …).
    pub edition: String,
    /// Product packages; the console uses exactly one.
    #[serde(default, with = "spelling::list")]
    pub packages: Vec<Package>,
    /// Sections the license contains (Backup & Replication: at least one).
    #[serde(default, with = "spelling::list")]
    pub section_types: Vec<SectionType>,
    /// Licensed units of the instance section (instances or points; may be fractional).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_numbers_plain"
    )]
    pub units: Option<f64>,
    /// What `units` counts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "spelling::optional"
    )]
    pub unit_type: Option<UnitType>,
    /// Licensed CPU sockets of the socket section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u32>,
    /// Licensed NAS source capacity in TB.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_numbers_plain"
    )]
    pub capacity: Option<f64>,
    /// Licensed Microsoft 365 users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licensed_users: Option<u32>,
    /// Console instance pool for managed backup agents.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_numbers_plain"
    )]
    pub instances: Option<f64>,
    /// Cloud Connect capability.
    #[serde(with = "spelling::one")]
    pub cloud_connect: CloudConnect,
    /// Whether monitoring is included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<bool>,
    /// Licensee organization name.
    pub company: String,
    /// Licensee contact email.
    pub email: String,
    /// Licensee contact person (legacy field in the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_person: Option<String>,
    /// Licensee's license administrator email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrator_email: Option<String>,
    /// Last instant the license is valid; `null` for perpetual licenses (always written).
    #[serde(default)]
    pub expiration_date: Option<DateTime<Utc>>,
    /// Last instant support is included (always written, may be `null`).
    #[serde(default)]
    pub support_expiration_date: Option<DateTime<Utc>>,
    /// When the file was issued.
    pub iat: DateTime<Utc>,
    /// Who issued it (organization name).
    #[serde(rename = "iss")]
    pub issuer: String,
}

impl LicenseClaims {
    /// Every way this claim set breaks the format's rules; empty when it is well formed.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.format_version != FORMAT_VERSION {
            p.push(format!(
                "formatVersion is {}, this Tallyman writes and reads version {FORMAT_VERSION}",
                self.format_version
            ));
        }
        if self.license_id.is_nil() {
            p.push("licenseId must not be the nil UUID".into());
        }
        required_text(&mut p, "supportId", &self.support_id);
        required_text(&mut p, "edition", &self.edition);
        required_text(&mut p, "company", &self.company);
        required_text(&mut p, "iss", &self.issuer);
        required_email(&mut p, "email", &self.email);
        if let Some(contact) = &self.contact_person {
            optional_text(&mut p, "contactPerson", contact);
        }
        if let Some(admin) = &self.administrator_email {
            required_email(&mut p, "administratorEmail", admin);
        }

        self.spelling_problems(&mut p);
        if has_duplicates(&self.packages) {
            p.push("packages lists the same package more than once".into());
        }
        if has_duplicates(&self.section_types) {
            p.push("sectionTypes lists the same section more than once".into());
        }

        for (name, value) in [
            ("units", self.units),
            ("capacity", self.capacity),
            ("instances", self.instances),
        ] {
            if let Some(v) = value {
                if !v.is_finite() || v < 0.0 {
                    p.push(format!("{name} must be a finite number ≥ 0, not {v}"));
                }
            }
        }
        if self.units.is_some() != self.unit_type.is_some() {
            p.push("units and unitType must be given together".into());
        }

        self.product_rules(&mut p);

        match (self.license_type, self.expiration_date) {
            (LicenseType::Perpetual, Some(_)) => {
                p.push("a Perpetual license must not have an expirationDate".into())
            }
            (LicenseType::Perpetual, None) => {}
            (t, None) => p.push(format!("a {t} license needs an expirationDate")),
            (_, Some(exp)) if exp < self.iat => {
                p.push("expirationDate is earlier than the issue time (iat)".into())
            }
            _ => {}
        }
        if let Some(support) = self.support_expiration_date {
            if support < self.iat {
                p.push("supportExpirationDate is earlier than the issue time (iat)".into());
            }
        }
        p
    }

    /// Values of the domain's vocabulary that license files cannot carry (`Unknown`, the
    /// console-only types, the merged section `All`, …).
    fn spelling_problems(&self, p: &mut Vec<String>) {
        fn check<T: FileSpelling>(p: &mut Vec<String>, values: &[T]) {
            for v in values.iter().filter(|v| v.file_name().is_none()) {
                p.push(format!(
                    "{v:?} is not a value of {} in a license file (one of {})",
                    T::CLAIM,
                    T::SPELLINGS.join(", ")
                ));
            }
        }
        check(p, &[self.product]);
        check(p, &[self.license_type]);
        check(p, &self.packages);
        check(p, &self.section_types);
        check(p, self.unit_type.as_slice());
        check(p, &[self.cloud_connect]);
    }

    fn product_rules(&self, p: &mut Vec<String>) {
        let product = self.product.file_name().unwrap_or("unknown");
        let need_units = |p: &mut Vec<String>| {
            if self.units.is_none() {
                p.push(format!("a {product} license needs units and unitType"));
            }
        };
        match self.product {
            Product::CloudConnectSite => {
                need_units(p);
                if self.cloud_connect == CloudConnect::No {
                    p.push(
                        "a cloud-connect license must have cloudConnect Yes or Enterprise".into(),
                    );
                }
            }
            Product::BackupAndReplication => {
                if self.section_types.is_empty() {
                    p.push(
                        "a backup-and-replication license needs at least one section \
                         (sectionTypes Socket and/or Instance)"
                            .into(),
                    );
                }
                if self.section_types.contains(&SectionType::Instance) {
                    need_units(p);
                }
                if self.section_types.contains(&SectionType::Socket) && self.sockets.is_none() {
                    p.push("a license with a Socket section needs sockets".into());
                }
            }
            Product::VOne => need_units(p),
            Product::Vb365 => {
                if self.licensed_users.is_none() {
                    p.push("a vb365 license needs licensedUsers".into());
                }
            }
            Product::Console => {
                if self.instances.is_none() {
                    p.push("a console license needs instances".into());
                }
                if self.packages.len() != 1 {
                    p.push(format!(
                        "a console license carries exactly one package, not {}",
                        self.packages.len()
                    ));
                }
            }
        }
    }

    /// `Ok` when the claim set is well formed, else every problem in one
    /// [`crate::LicenseError::InvalidClaims`].
    pub fn validate(&self) -> Result<(), crate::LicenseError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::LicenseError::InvalidClaims(problems.join("; ")))
        }
    }
}

/// Writes whole numbers without a fractional part (`1000`, not `1000.0`) so the JSON reads the
/// way people write counts; fractional values (`13.5`) are written as they are.
fn whole_numbers_plain<S: serde::Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact in f64
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < EXACT => s.serialize_i64(*v as i64),
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_none(),
    }
}

fn has_duplicates<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[i + 1..].contains(a))
}

fn optional_text(p: &mut Vec<String>, name: &str, value: &str) {
    if value.chars().count() > MAX_TEXT_LEN {
        p.push(format!("{name} is longer than {MAX_TEXT_LEN} characters"));
    }
    if value.chars().any(char::is_control) {
        p.push(format!("{name} contains control characters"));
    }
}

fn required_text(p: &mut Vec<String>, name: &str, value: &str) {
    if value.trim().is_empty() {
        p.push(format!("{name} must not be empty"));
    }
    optional_text(p, name, value);
}

fn required_email(p: &mut Vec<String>, name: &str, value: &str) {
    required_text(p, name, value);
    let plausible = value
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !value.trim().is_empty() && (!plausible || value.contains(char::is_whitespace)) {
        p.push(format!("{name} \"{value}\" is not an email address"));
    }
}

/// 23:59:59 UTC of `date`: the last second of that day, the inclusive expiry instant.
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(23, 59, 59)
        .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN))
        .and_utc()
}

fn last_day_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1)
        .and_then(|first| first.checked_add_months(Months::new(1)))
        .and_then(|next| next.pred_opt())
        .unwrap_or(NaiveDate::MAX)
}

fn months_later(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// A plausible numeric support id (nine digits, no leading zero).
pub fn random_support_id() -> String {
    (100_000_000 + OsRng.next_u64() % 900_000_000).to_string()
}

/// A complete, valid claim set for `product` and `license_type`, issued at `now`, with a random
/// license id and support id and placeholder licensee details.
///
/// Terms: Rental runs to the end of the current month; Subscription and NFR one year; Evaluation
/// 30 days; Perpetual never expires and includes one year of support. Other types' support ends
/// with the license. Rental counts Points, the others Instances.
///
/// Only the five types a file can carry (see [`crate::spelling`]) give a well-formed claim set;
/// the domain's other types (`Community`, `Unknown`, the console's `Full` and `Promo`, …) get
/// Subscription terms and are then reported by [`LicenseClaims::problems`].
pub fn default_claims(
    product: Product,
    license_type: LicenseType,
    now: DateTime<Utc>,
) -> LicenseClaims {
    let iat = now.trunc_subsecs(0);
    let today = iat.date_naive();
    let expiry = match license_type {
        LicenseType::Rental => Some(last_day_of_month(today)),
        LicenseType::Subscription
        | LicenseType::Nfr
        | LicenseType::Full
        | LicenseType::Promo
        | LicenseType::Community
        | LicenseType::NotInstalled
        | LicenseType::Unknown => Some(months_later(today, 12)),
        LicenseType::Evaluation => Some(
            today
                .checked_add_days(Days::new(30))
                .unwrap_or(NaiveDate::MAX),
        ),
        LicenseType::Perpetual => None,
    };
    let expiration_date = expiry.map(end_of_day);
    let support_expiration_date = match license_type {
        LicenseType::Perpetual => Some(end_of_day(months_later(today, 12))),
        _ => expiration_date,
    };
    let unit_type = match license_type {
        LicenseType::Rental => UnitType::Points,
        _ => UnitType::Instances,
    };

    let mut claims = LicenseClaims {
        format_version: FORMAT_VERSION,
        license_id: Uuid::new_v4(),
        support_id: random_support_id(),
        product,
        license_type,
        edition: "Enterprise Plus".into(),
        packages: Vec::new(),
        section_types: vec![SectionType::Instance],
        units: None,
        unit_type: None,
        sockets: None,
        capacity: None,
        licensed_users: None,
        instances: None,
        cloud_connect: CloudConnect::No,
        monitoring: None,
        company: "Example Service Provider".into(),
        email: "licensing@example.com".into(),
        contact_person: Some("Licensing Contact".into()),
        administrator_email: None,
        expiration_date,
        support_expiration_date,
        iat,
        issuer: "Tallyman".into(),
    };

    match product {
        Product::CloudConnectSite => {
            claims.packages = vec![Package::Suite];
            claims.units = Some(1000.0);
            claims.unit_type = Some(unit_type);
            claims.cloud_connect = CloudConnect::Yes;
            claims.monitoring = Some(true);
        }
        Product::BackupAndReplication => {
            claims.packages = vec![Package::Backup];
            claims.monitoring = Some(false);
            if license_type == LicenseType::Perpetual {
                // Classic perpetual licenses count CPU sockets of protected hosts.
                claims.section_types = vec![SectionType::Socket];
                claims.sockets = Some(4);
            } else {
                claims.units = Some(100.0);
                claims.unit_type = Some(unit_type);
            }
        }
        Product::VOne => {
            claims.packages = vec![Package::One];
            claims.units = Some(100.0);
            claims.unit_type = Some(unit_type);
        }
        Product::Vb365 => {
            claims.edition = "Standard".into();
            claims.section_types = Vec::new();
            claims.licensed_users = Some(100);
        }
        Product::Console => {
            claims.packages = vec![Package::Suite];
            claims.instances = Some(1000.0);
            claims.cloud_connect = CloudConnect::Yes;
            claims.administrator_email = Some("admin@example.com".into());
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, s)
            .single()
            .expect("valid test time")
    }

    fn now() -> DateTime<Utc> {
        at(2026, 2, 14, 9, 30, 15) + chrono::Duration::milliseconds(750)
    }

    #[test]
    fn defaults_are_valid_for_every_product_and_type() {
        for &product in Product::ALL {
            for &t in LicenseType::IN_FILES {
                let c = default_claims(product, t, now());
                assert_eq!(c.problems(), Vec::<String>::new(), "{product} {t}");
                assert_eq!(c.product, product);
                assert_eq!(c.license_type, t);
                assert_eq!(
                    c.iat,
                    at(2026, 2, 14, 9, 30, 15),
                    "iat truncated to seconds"
                );
                assert_eq!(c.license_id.get_version_num(), 4);
                assert_eq!(c.support_id.len(), 9);
                assert!(c.support_id.bytes().all(|b| b.is_ascii_digit()));
                assert!(!c.support_id.starts_with('0'));
            }
        }
    }

    #[test]
    fn default_terms_per_type() {
        let c = default_claims(Product::CloudConnectSite, LicenseType::Rental, now());
        assert_eq!(c.expiration_date, Some(at(2026, 2, 28, 23, 59, 59)));
        assert_eq!(c.support_expiration_date, c.expiration_date);
        assert_eq!(c.unit_type, Some(UnitType::Points));

        // Leap year February and a December rollover.
        let leap = default_claims(Product::VOne, LicenseType::Rental, at(2028, 2, 1, 0, 0, 0));
        assert_eq!(leap.expiration_date, Some(at(2028, 2, 29, 23, 59, 59)));
        let dec = default_claims(
            Product::VOne,
            LicenseType::Rental,
            at(2026, 12, 31, 23, 0, 0),
        );
        assert_eq!(dec.expiration_date, Some(at(2026, 12, 31, 23, 59, 59)));

        let c = default_claims(Product::CloudConnectSite, LicenseType::Subscription, now());
        assert_eq!(c.expiration_date, Some(at(2027, 2, 14, 23, 59, 59)));
        assert_eq!(c.unit_type, Some(UnitType::Instances));

        let c = default_claims(Product::Console, LicenseType::Evaluation, now());
        assert_eq!(c.expiration_date, Some(at(2026, 3, 16, 23, 59, 59)));

        let c = default_claims(Product::Console, LicenseType::Nfr, now());
        assert_eq!(c.expiration_date, Some(at(2027, 2, 14, 23, 59, 59)));

        let c = default_claims(Product::BackupAndReplication, LicenseType::Perpetual, now());
        assert_eq!(c.expiration_date, None);
        assert_eq!(c.support_expiration_date, Some(at(2027, 2, 14, 23, 59, 59)));
    }

    #[test]
    fn default_shape_per_product() {
        let cc = default_claims(Product::CloudConnectSite, LicenseType::Rental, now());
        assert_eq!(cc.cloud_connect, CloudConnect::Yes);
        assert_eq!(cc.packages, vec![Package::Suite]);
        assert_eq!(cc.units, Some(1000.0));

        let vbr = default_claims(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now(),
        );
        assert_eq!(vbr.section_types, vec![SectionType::Instance]);
        assert_eq!(vbr.packages, vec![Package::Backup]);
        assert_eq!(vbr.cloud_connect, CloudConnect::No);
        let vbr = default_claims(Product::BackupAndReplication, LicenseType::Perpetual, now());
        assert_eq!(vbr.section_types, vec![SectionType::Socket]);
        assert_eq!((vbr.sockets, vbr.units), (Some(4), None));

        let one = default_claims(Product::VOne, LicenseType::Subscription, now());
        assert_eq!(one.packages, vec![Package::One]);

        let m365 = default_claims(Product::Vb365, LicenseType::Rental, now());
        assert_eq!(m365.licensed_users, Some(100));
        assert_eq!((m365.units, m365.instances), (None, None));

        let console = default_claims(Product::Console, LicenseType::Rental, now());
        assert_eq!(console.instances, Some(1000.0));
        assert_eq!(console.cloud_connect, CloudConnect::Yes);
        assert_eq!(console.packages.len(), 1);
        assert!(console.administrator_email.is_some());
        assert_eq!(console.section_types, vec![SectionType::Instance]);
    }

    fn expect_problem(claims: &LicenseClaims, needle: &str) {
        let problems = claims.problems();
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "expected a problem mentioning {needle:?}, got {problems:?}"
        );
    }

    #[test]
    fn rules_catch_bad_claims() {
        let base = default_claims(
            Product::BackupAndReplication,
            LicenseType::Subscription,
            now(),
        );

        let mut c = base.clone();
        c.expiration_date = None;
        expect_problem(&c, "needs an expirationDate");

        let mut c = default_claims(Product::Console, LicenseType::Perpetual, now());
        c.expiration_date = c.support_expiration_date;
        expect_problem(&c, "must not have an expirationDate");

        let mut c = base.clone();
        c.section_types.push(SectionType::Socket);
        expect_problem(&c, "needs sockets");
        c.sockets = Some(2);
        assert!(c.problems().is_empty(), "{:?}", c.problems());

        let mut c = base.clone();
        c.section_types.clear();
        expect_problem(&c, "at least one section");

        let mut c = base.clone();
        c.units = Some(f64::NAN);
        expect_problem(&c, "finite");
        c.units = Some(-1.0);
        expect_problem(&c, "≥ 0");

        let mut c = base.clone();
        c.unit_type = None;
        expect_problem(&c, "together");

        let mut c = base.clone();
        c.email = "nobody".into();
        expect_problem(&c, "not an email");
        c.email = " ".into();
        expect_problem(&c, "email must not be empty");

        let mut c = base.clone();
        c.company = "Evil\u{7}Corp".into();
        expect_problem(&c, "control characters");

        let mut c = base.clone();
        c.packages = vec![Package::Backup, Package::Backup];
        expect_problem(&c, "more than once");

        let mut c = base.clone();
        c.license_id = Uuid::nil();
        expect_problem(&c, "nil");

        let mut c = base.clone();
        c.format_version = 2;
        expect_problem(&c, "formatVersion");

        let mut c = base.clone();
        c.expiration_date = Some(c.iat - chrono::Duration::days(1));
        expect_problem(&c, "earlier than the issue time");

        let mut c = default_claims(Product::CloudConnectSite, LicenseType::Rental, now());
        c.cloud_connect = CloudConnect::No;
        expect_problem(&c, "cloudConnect");

        let mut c = default_claims(Product::Vb365, LicenseType::Rental, now());
        c.licensed_users = None;
        expect_problem(&c, "licensedUsers");

        let mut c = default_claims(Product::Console, LicenseType::Rental, now());
        c.packages.push(Package::Backup);
        expect_problem(&c, "exactly one package");
        c.instances = None;
        expect_problem(&c, "needs instances");
    }

    #[test]
    fn values_files_cannot_carry_are_refused() {
        let base = default_claims(Product::CloudConnectSite, LicenseType::Rental, now());

        for t in [
            LicenseType::Community,
            LicenseType::NotInstalled,
            LicenseType::Unknown,
            LicenseType::Full,
            LicenseType::Promo,
        ] {
            let c = default_claims(Product::Console, t, now());
            expect_problem(
                &c,
                &format!("{t:?} is not a value of type in a license file"),
            );
        }

        let mut c = base.clone();
        c.section_types = vec![SectionType::All];
        expect_problem(&c, "All is not a value of sectionTypes");
        let mut c = base.clone();
        c.packages = vec![Package::Unknown];
        expect_problem(&c, "Unknown is not a value of packages");
        let mut c = base.clone();
        c.unit_type = Some(UnitType::Unknown);
        expect_problem(&c, "Unknown is not a value of unitType");
        let mut c = base.clone();
        c.cloud_connect = CloudConnect::Unknown;
        expect_problem(&c, "Unknown is not a value of cloudConnect");
        assert!(serde_json::to_value(&c).is_err(), "no spelling, no JSON");
    }

    #[test]
    fn every_spelling_round_trips_through_json() {
        let mut c = default_claims(Product::BackupAndReplication, LicenseType::Rental, now());
        c.packages = Package::IN_FILES.to_vec();
        c.section_types = SectionType::IN_FILES.to_vec();
        c.sockets = Some(2);
        for &product in Product::IN_FILES {
            for &t in LicenseType::IN_FILES {
                for &unit in UnitType::IN_FILES {
                    for &cc in CloudConnect::IN_FILES {
                        c.product = product;
                        c.license_type = t;
                        c.unit_type = Some(unit);
                        c.cloud_connect = cc;
                        let v = serde_json::to_value(&c).expect("json");
                        assert_eq!(v["product"], product.file_name().expect("spelled"));
                        assert_eq!(v["type"], t.file_name().expect("spelled"));
                        assert_eq!(v["unitType"], unit.file_name().expect("spelled"));
                        assert_eq!(v["cloudConnect"], cc.file_name().expect("spelled"));
                        let back: LicenseClaims = serde_json::from_value(v).expect("read back");
                        assert_eq!(back, c);
                    }
                }
            }
        }
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["packages"], serde_json::json!(Package::SPELLINGS));
        assert_eq!(v["sectionTypes"], serde_json::json!(["Socket", "Instance"]));

        let mut v = serde_json::to_value(&c).expect("json");
        v["product"] = "CloudConnect".into();
        let err = serde_json::from_value::<LicenseClaims>(v).expect_err("contract spelling");
        assert!(
            err.to_string().contains("unknown variant `CloudConnect`"),
            "{err}"
        );
    }

    #[test]
    fn json_names_are_the_documented_ones() {
        let c = default_claims(Product::Console, LicenseType::Nfr, now());
        let v = serde_json::to_value(&c).expect("json");
        for key in [
            "formatVersion",
            "licenseId",
            "supportId",
            "product",
            "type",
            "edition",
            "packages",
            "sectionTypes",
            "instances",
            "cloudConnect",
            "company",
            "email",
            "contactPerson",
            "administratorEmail",
            "expirationDate",
            "supportExpirationDate",
            "iat",
            "iss",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["type"], "NFR");
        assert_eq!(v["product"], "console");
        assert_eq!(v["iat"], "2026-02-14T09:30:15Z");
        assert!(
            v.get("units").is_none(),
            "absent optional claims are omitted"
        );

        let p = default_claims(Product::VOne, LicenseType::Perpetual, now());
        let v = serde_json::to_value(&p).expect("json");
        assert!(
            v["expirationDate"].is_null(),
            "perpetual writes an explicit null"
        );
        assert_eq!(v["packages"][0], "ONE");
    }
}
