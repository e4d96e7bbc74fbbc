//! How a license file spells the licensing vocabulary.
//!
//! The enums themselves are the domain's ([`tallyman_domain::Product`], [`LicenseType`],
//! [`Package`], [`SectionType`], [`UnitType`], [`CloudConnect`]); the domain spells them as the
//! VSPC contract does and knows nothing of serde. A license file spells a few of them its own
//! way (products are `cloud-connect`, `vone`, …, not the contract's `CloudConnect`, `VONE`, …)
//! and carries only the values an issuer can sell: the domain's placeholders for what a managed
//! server reports (`Unknown`, `NotInstalled`, `Community`), the console-only types `Full` and
//! `Promo`, and the merged section `All` (a file lists `Socket` and `Instance` instead) have no
//! spelling here. Writing such a value fails, and reading one fails like any unknown enum value.
//!
//! [`FileSpelling`] maps each enum to its file spellings; [`one`], [`list`] and [`optional`] are
//! the serde `with` modules [`crate::LicenseClaims`] uses for a single value, an array and an
//! optional value.

use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};
use tallyman_domain::{CloudConnect, LicenseType, Package, Product, SectionType, UnitType};

/// A domain enum as the license file format spells it.
pub trait FileSpelling: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// The claim's JSON name, for messages (`product`, `type`, …).
    const CLAIM: &'static str;
    /// Every value a file can carry, in the order the format documents them.
    const IN_FILES: &'static [Self];
    /// Their spellings, in the same order.
    const SPELLINGS: &'static [&'static str];

    /// The file's spelling of this value; `None` for a value license files never carry.
    fn file_name(self) -> Option<&'static str>;

    /// What the value means, one line (the CLI's help for it).
    fn meaning(self) -> &'static str;

    /// The value a file's spelling stands for (exact, case-sensitive).
    fn from_file_name(name: &str) -> Option<Self> {
        Self::IN_FILES
            .iter()
            .copied()
            .find(|v| v.file_name() == Some(name))
    }
}

/// Implements [`FileSpelling`] from one table per enum. Values after `never` have no spelling;
/// every variant must be listed on one side or the other, so a variant the domain gains does
/// not compile until someone decides whether files may carry it.
macro_rules! file_spelling {
    ($(
        $ty:ident as $claim:literal {
            $( $variant:ident => $name:literal : $meaning:literal, )+
        } never [ $($never:ident),* ]
    )+) => {$(
        impl FileSpelling for $ty {
            const CLAIM: &'static str = $claim;
            const IN_FILES: &'static [Self] = &[$($ty::$variant),+];
            const SPELLINGS: &'static [&'static str] = &[$($name),+];

            fn file_name(self) -> Option<&'static str> {
                match self {
                    $( $ty::$variant => Some($name), )+
                    $( $ty::$never => None, )*
                }
            }

            fn meaning(self) -> &'static str {
                match self {
                    $( $ty::$variant => $meaning, )+
                    $( $ty::$never => "", )*
                }
            }
        }
    )+};
}

file_spelling! {
    Product as "product" {
        CloudConnectSite => "cloud-connect":
            "A Veeam Cloud Connect site (`/licensing/sites`)",
        BackupAndReplication => "backup-and-replication":
            "A managed Backup & Replication server (`/licensing/backupServers`)",
        VOne => "vone": "A managed Veeam ONE server (`/licensing/voneServers`)",
        Vb365 => "vb365": "A managed Backup for Microsoft 365 server (`/licensing/vb365Servers`)",
        Console => "console": "The console itself (`/licensing/console`)",
    } never []

    LicenseType as "type" {
        Rental => "Rental": "Monthly, usage-reported service-provider license",
        Subscription => "Subscription": "Term license counted in instances",
        Perpetual => "Perpetual": "Never expires; only support does",
        Evaluation => "Evaluation": "Short trial",
        Nfr => "NFR": "Not for resale (demo, training)",
    } never [Community, NotInstalled, Unknown, Full, Promo]

    Package as "packages" {
        Backup => "Backup": "Backup (VBR) package",
        Essentials => "Essentials": "Essentials package",
        Suite => "Suite": "Suite (backup plus monitoring)",
        One => "ONE": "Veeam ONE package",
        Foundation => "Foundation": "Data Platform Foundation",
        Advanced => "Advanced": "Data Platform Advanced",
        Premium => "Premium": "Data Platform Premium",
        Starter => "Starter": "Starter package",
        Orchestrator => "Orchestrator": "Orchestrator package",
        None => "None": "Explicitly no package",
    } never [Unknown]

    SectionType as "sectionTypes" {
        Socket => "Socket": "Per CPU socket of protected hypervisor hosts (`sockets`)",
        Instance => "Instance": "Per workload instance or point (`units` + `unitType`)",
    } never [All, Unknown]

    UnitType as "unitType" {
        Instances => "Instances": "Instances (subscription / perpetual universal licenses)",
        Points => "Points": "Rental points",
    } never [Unknown]

    CloudConnect as "cloudConnect" {
        Yes => "Yes": "Cloud Connect provider capability included",
        No => "No": "Not included",
        Enterprise => "Enterprise": "Cloud Connect for the Enterprise",
    } never [Unknown]
}

/// The file's spelling of `value`, or the serializer error saying it has none.
fn spell<T: FileSpelling, E: serde::ser::Error>(value: T) -> Result<&'static str, E> {
    value.file_name().ok_or_else(|| {
        E::custom(format_args!(
            "{value:?} cannot be written as a license file's {} (one of {})",
            T::CLAIM,
            T::SPELLINGS.join(", ")
        ))
    })
}

/// The value `name` spells, or the deserializer error serde gives for an unknown variant.
fn read<T: FileSpelling, E: serde::de::Error>(name: &str) -> Result<T, E> {
    T::from_file_name(name).ok_or_else(|| E::unknown_variant(name, T::SPELLINGS))
}

/// `#[serde(with = "spelling::one")]`: a single value.
pub mod one {
    use super::*;

    pub fn serialize<T: FileSpelling, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(spell::<T, S::Error>(*value)?)
    }

    pub fn deserialize<'de, T: FileSpelling, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        read(&String::deserialize(d)?)
    }
}

/// `#[serde(with = "spelling::list")]`: an array of values.
pub mod list {
    use super::*;

    pub fn serialize<T: FileSpelling, S: Serializer>(
        values: &[T],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        values
            .iter()
            .map(|v| spell::<T, S::Error>(*v))
            .collect::<Result<Vec<_>, _>>()?
            .serialize(s)
    }

    pub fn deserialize<'de, T: FileSpelling, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|name| read(name))
            .collect()
    }
}

/// `#[serde(with = "spelling::optional")]`: a value that may be absent or `null`.
pub mod optional {
    use super::*;

    pub fn serialize<T: FileSpelling, S: Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        value.map(spell::<T, S::Error>).transpose()?.serialize(s)
    }

    pub fn deserialize<'de, T: FileSpelling, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|name| read(&name))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spellings<T: FileSpelling>() -> Vec<&'static str> {
        T::IN_FILES.iter().filter_map(|v| v.file_name()).collect()
    }

    /// The format's spellings, as `docs/license-format.md` lists them; changing one changes the
    /// file format.
    #[test]
    fn spellings_are_the_documented_ones() {
        assert_eq!(
            spellings::<Product>(),
            [
                "cloud-connect",
                "backup-and-replication",
                "vone",
                "vb365",
                "console"
            ]
        );
        assert_eq!(
            spellings::<LicenseType>(),
            ["Rental", "Subscription", "Perpetual", "Evaluation", "NFR"]
        );
        assert_eq!(
            spellings::<Package>(),
            [
                "Backup",
                "Essentials",
                "Suite",
                "ONE",
                "Foundation",
                "Advanced",
                "Premium",
                "Starter",
                "Orchestrator",
                "None"
            ]
        );
        assert_eq!(spellings::<SectionType>(), ["Socket", "Instance"]);
        assert_eq!(spellings::<UnitType>(), ["Instances", "Points"]);
        assert_eq!(spellings::<CloudConnect>(), ["Yes", "No", "Enterprise"]);
    }

    fn consistent<T: FileSpelling>(domain_all: &[T]) {
        assert_eq!(T::IN_FILES.len(), T::SPELLINGS.len());
        for (v, name) in T::IN_FILES.iter().zip(T::SPELLINGS) {
            assert_eq!(v.file_name(), Some(*name));
            assert_eq!(T::from_file_name(name), Some(*v));
            assert!(!v.meaning().is_empty(), "{v:?}");
        }
        for v in domain_all {
            assert_eq!(v.file_name().is_some(), T::IN_FILES.contains(v), "{v:?}");
        }
    }

    #[test]
    fn tables_agree_with_the_domain() {
        consistent(Product::ALL);
        consistent(LicenseType::ALL);
        consistent(Package::ALL);
        consistent(SectionType::ALL);
        consistent(UnitType::ALL);
        consistent(CloudConnect::ALL);
        // Every product can be licensed by a file.
        assert_eq!(Product::IN_FILES.len(), Product::ALL.len());
    }

    #[test]
    fn reading_is_exact_and_values_without_a_spelling_are_refused() {
        assert_eq!(Product::from_file_name("CloudConnect"), None);
        assert_eq!(Product::from_file_name("Cloud-Connect"), None);
        assert_eq!(LicenseType::from_file_name("Nfr"), None);
        for missing in ["Unknown", "Community", "NotInstalled", "Full", "Promo"] {
            assert_eq!(LicenseType::from_file_name(missing), None, "{missing}");
        }
        assert_eq!(SectionType::from_file_name("All"), None);

        #[derive(serde::Serialize, serde::Deserialize, Debug)]
        struct Probe {
            #[serde(with = "one")]
            t: LicenseType,
        }
        let err = serde_json::to_string(&Probe {
            t: LicenseType::Unknown,
        })
        .expect_err("no spelling");
        assert!(err.to_string().contains("license file's type"), "{err}");
        let err = serde_json::from_str::<Probe>(r#"{"t":"Promo"}"#).expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("unknown variant `Promo`, expected one of `Rental`, `Subscription`"),
            "{err}"
        );
    }
}
