//! Licensing rules of Tallyman, a self-hosted license server whose API is wire-compatible with
//! the Licensing resource of the Veeam Service Provider Console REST API v3.6.1.
//!
//! This crate is the domain layer: pure functions over plain data. It does no I/O, no rule reads
//! a clock (every rule that depends on time takes `now`; [`clock`] only defines the time source
//! the services inject), and it knows nothing of HTTP or SQL.
//! Each module owns one rule of `shared/domain/licensing.md`; `RULES.md` next to this crate
//! lists them with the decisions taken where the source is silent.
//!
//! * [`product`], [`license`]: the vocabulary (products, types, statuses, packages…) with
//!   the contract's wire spellings, and [`LicenseTerms`], the facts the rules read.
//! * [`grace`]: grace periods and warning windows per product and type.
//! * [`exceed`]: how far usage may exceed the licensed units.
//! * [`status`]: `status` and `statusMessage` of a license at an instant.
//! * [`install`]: whether a file fits a target; Backup & Replication merge-or-replace.
//! * [`patch`]: the writable `autoUpdateEnabled` property.
//! * [`delete`]: `sectionForDelete` and what a server falls back to.
//! * [`auto_update`]: when the next automatic update attempt is due.
//! * [`month`]: calendar months, the period of a usage report.
//! * [`points`], [`report`]: points weights and the monthly report builder.
//! * [`clock`]: the [`Clock`] services read "now" from.
//!
//! # Time
//!
//! A license's expiry is the exact instant of its `expirationDate` (the contract carries a
//! date-time, not a date). A license is expired strictly *after* that instant; grace includes
//! its own last instant. Grace in days is counted in 24-hour days, VB365's grace in calendar
//! months (clamped to the end of shorter months). Every day count reported ("N days until
//! expiration", "N days of grace period remaining") is whole days rounded **up**: one second
//! left is "1 day", and "0 days" only happens at the instant itself.

mod days;
mod wire;

pub mod auto_update;
pub mod clock;
pub mod delete;
pub mod exceed;
pub mod grace;
pub mod install;
pub mod license;
pub mod month;
pub mod patch;
pub mod points;
pub mod product;
pub mod report;
pub mod status;

pub use clock::{Clock, ManualClock, SystemClock};
pub use license::{
    CloudConnect, ConsoleLicenseStatus, LastUpdateStatus, LicenseStatus, LicenseTerms, LicenseType,
    Package, SectionType, UnitType,
};
pub use month::Month;
pub use product::Product;
pub use wire::WireError;
