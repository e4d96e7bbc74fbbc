//! The `keygen` and `license issue` / `license inspect` subcommands: clap argument types for the
//! `tallyman` binary to mount, and the functions that run them.
//!
//! Mount them like this:
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//! use tallyman_license::cli;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Create an issuer signing key
//!     Keygen(cli::KeygenArgs),
//!     /// Issue or inspect license files
//!     License {
//!         #[command(subcommand)]
//!         command: cli::LicenseCommand,
//!     },
//! }
//!
//! fn main() -> Result<(), cli::CliError> {
//!     match Cli::parse().command {
//!         Command::Keygen(args) => cli::run_keygen(&args),
//!         Command::License { command } => cli::run_license(&command),
//!     }
//! }
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::ffi::OsStr;
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Arg, Args, Command, Subcommand};
use tallyman_domain::{CloudConnect, LicenseType, Package, Product, SectionType, UnitType};
use uuid::Uuid;

use crate::claims::{default_claims, end_of_day, LicenseClaims};
use crate::keys::{public_key_path, IssuerKey, IssuerPublicKey, KeyError, TrustStore};
use crate::license::{inspect_unverified, issue, verify, LicenseError};
use crate::spelling::FileSpelling;

/// What can go wrong running a subcommand.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A license could not be issued or verified.
    #[error(transparent)]
    License(#[from] LicenseError),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> CliError {
    let context = context.into();
    move |source| CliError::Io { context, source }
}

/// `tallyman keygen`: create an issuer key pair.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write the private signing key (mode 0600); the public key is written to FILE.pub.
    /// Existing files are never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `tallyman license …`
#[derive(Debug, Clone, Subcommand)]
pub enum LicenseCommand {
    /// Mint a signed license file. Only --key, --product, --type and --out are required; every
    /// other claim has a realistic default for the product and type.
    Issue(Box<IssueArgs>),
    /// Show what a license file says; verifies it when trusted keys are given.
    Inspect(InspectArgs),
}

/// Arguments of `license issue`.
#[derive(Debug, Clone, Args)]
pub struct IssueArgs {
    /// Issuer signing key (PEM) to sign with.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// What the license is for.
    #[arg(long, value_parser = spelled::<Product>())]
    pub product: Product,
    /// Commercial license type.
    #[arg(
        long = "type",
        value_parser = spelled::<LicenseType>(),
        value_name = "TYPE",
        ignore_case = true
    )]
    pub license_type: LicenseType,
    /// Edition, free text [default: Enterprise Plus; vb365: Standard].
    #[arg(long)]
    pub edition: Option<String>,
    /// Product package; repeat for several. Replaces the product's default packages.
    #[arg(
        long = "package",
        value_parser = spelled::<Package>(),
        value_name = "PACKAGE",
        ignore_case = true
    )]
    pub packages: Vec<Package>,
    /// License section; repeat for a merged Socket + Instance license. Replaces the default.
    #[arg(
        long = "section",
        value_parser = spelled::<SectionType>(),
        value_name = "SECTION",
        ignore_case = true
    )]
    pub sections: Vec<SectionType>,
    /// Licensed units (instances or points; fractions allowed).
    #[arg(long)]
    pub units: Option<f64>,
    /// What --units counts [default: Points for Rental, else Instances].
    #[arg(long, value_parser = spelled::<UnitType>(), ignore_case = true)]
    pub unit_type: Option<UnitType>,
    /// Licensed CPU sockets (Socket section).
    #[arg(long)]
    pub sockets: Option<u32>,
    /// Licensed NAS source capacity, in TB.
    #[arg(long, value_name = "TB")]
    pub capacity: Option<f64>,
    /// Licensed Microsoft 365 users (vb365).
    #[arg(long)]
    pub licensed_users: Option<u32>,
    /// Instance pool for managed agents (console).
    #[arg(long)]
    pub instances: Option<f64>,
    /// Cloud Connect capability.
    #[arg(long, value_parser = spelled::<CloudConnect>(), ignore_case = true)]
    pub cloud_connect: Option<CloudConnect>,
    /// Whether monitoring is included.
    #[arg(long, value_name = "true|false")]
    pub monitoring: Option<bool>,
    /// Licensee organization name.
    #[arg(long)]
    pub company: Option<String>,
    /// Licensee contact email.
    #[arg(long)]
    pub email: Option<String>,
    /// Licensee contact person.
    #[arg(long)]
    pub contact: Option<String>,
    /// Licensee's license administrator email.
    #[arg(long)]
    pub admin_email: Option<String>,
    /// License id (UUID) [default: random]. Reuse an id to issue a newer file of the same license.
    #[arg(long)]
    pub license_id: Option<Uuid>,
    /// Support / contract id [default: random 9-digit number].
    #[arg(long)]
    pub support_id: Option<String>,
    /// Last valid day (UTC), inclusive [default: by type].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub expires: Option<NaiveDate>,
    /// Last day of support (UTC), inclusive [default: the expiry day; Perpetual: one year].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub support_expires: Option<NaiveDate>,
    /// Issuer name written into the license [default: Tallyman].
    #[arg(long)]
    pub issuer: Option<String>,
    /// Issue time (RFC 3339) instead of now, e.g. to mint test files that are already expired.
    #[arg(long, value_name = "RFC3339")]
    pub issued_at: Option<DateTime<Utc>>,
    /// Where to write the license file (`-` for standard output).
    #[arg(long, value_name = "FILE.lic")]
    pub out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// The value parser of a claim given on the command line: accepts the file format's spellings
/// (ignoring case where the argument says so) and lists them, with their meaning, as the
/// argument's possible values.
#[derive(Debug)]
pub struct Spelled<T>(PhantomData<fn() -> T>);

impl<T> Clone for Spelled<T> {
    fn clone(&self) -> Self {
        Spelled(PhantomData)
    }
}

/// A [`Spelled`] parser for `T`, for `#[arg(value_parser = spelled::<T>())]`.
pub fn spelled<T: FileSpelling>() -> Spelled<T> {
    Spelled(PhantomData)
}

fn possible_value<T: FileSpelling>(value: T) -> PossibleValue {
    PossibleValue::new(value.file_name().unwrap_or_default()).help(value.meaning())
}

impl<T: FileSpelling> TypedValueParser for Spelled<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &Command, arg: Option<&Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let typed = PossibleValuesParser::new(T::IN_FILES.iter().map(|v| possible_value(*v)))
            .parse_ref(cmd, arg, value)?;
        let ignore_case = arg.is_some_and(Arg::is_ignore_case_set);
        T::IN_FILES
            .iter()
            .copied()
            .find(|v| possible_value(*v).matches(&typed, ignore_case))
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(T::IN_FILES.iter().map(|v| possible_value(*v))))
    }
}

/// Arguments of `license inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The license file.
    #[arg(value_name = "FILE.lic")]
    pub file: PathBuf,
    /// Trusted issuer public key (.pub); repeat for several. With no trusted key the claims are
    /// shown UNVERIFIED.
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
    /// Trust every *.pub file in this directory.
    #[arg(long = "trusted-dir", value_name = "DIR")]
    pub trusted_dir: Option<PathBuf>,
    /// Print JSON (`{"verified", "keyId", "claims"}`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `keygen`, printing to standard output.
pub fn run_keygen(args: &KeygenArgs) -> Result<(), CliError> {
    run_keygen_to(args, &mut io::stdout().lock())
}

/// Runs `keygen`, printing to `out`.
pub fn run_keygen_to(args: &KeygenArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = IssuerKey::generate();
    key.write_files(&args.out).map_err(io_err(format!(
        "cannot write the key to {}",
        args.out.display()
    )))?;
    let pub_path = public_key_path(&args.out);
    let mut print = || -> io::Result<()> {
        writeln!(out, "{}", key.key_id())?;
        writeln!(out, "private key: {} (keep it secret)", args.out.display())?;
        writeln!(
            out,
            "public key:  {} (install it on every server that should accept this issuer's licenses)",
            pub_path.display()
        )
    };
    print().map_err(io_err("cannot write to standard output"))
}

/// Runs a `license` subcommand at the current time, printing to standard output.
pub fn run_license(command: &LicenseCommand) -> Result<(), CliError> {
    run_license_to(command, Utc::now(), &mut io::stdout().lock())
}

/// Runs a `license` subcommand as of `now`, printing to `out`.
pub fn run_license_to(
    command: &LicenseCommand,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        LicenseCommand::Issue(args) => run_issue(args, now, out),
        LicenseCommand::Inspect(args) => run_inspect(args, out),
    }
}

/// The claims `license issue` would sign: the defaults for product and type at `now` (or at
/// `--issued-at`), with every flag given on the command line applied on top.
pub fn claims_from_args(args: &IssueArgs, now: DateTime<Utc>) -> LicenseClaims {
    let mut c = default_claims(
        args.product,
        args.license_type,
        args.issued_at.unwrap_or(now),
    );
    if let Some(v) = &args.edition {
        c.edition = v.clone();
    }
    if !args.packages.is_empty() {
        c.packages = args.packages.clone();
    }
    if !args.sections.is_empty() {
        c.section_types = args.sections.clone();
    }
    if let Some(v) = args.units {
        c.units = Some(v);
        if c.unit_type.is_none() {
            c.unit_type = Some(match args.license_type {
                LicenseType::Rental => UnitType::Points,
                _ => UnitType::Instances,
            });
        }
    }
    if let Some(v) = args.unit_type {
        c.unit_type = Some(v);
    }
    if let Some(v) = args.sockets {
        c.sockets = Some(v);
    }
    if let Some(v) = args.capacity {
        c.capacity = Some(v);
    }
    if let Some(v) = args.licensed_users {
        c.licensed_users = Some(v);
    }
    if let Some(v) = args.instances {
        c.instances = Some(v);
    }
    if let Some(v) = args.cloud_connect {
        c.cloud_connect = v;
    }
    if let Some(v) = args.monitoring {
        c.monitoring = Some(v);
    }
    if let Some(v) = &args.company {
        c.company = v.clone();
    }
    if let Some(v) = &args.email {
        c.email = v.clone();
    }
    if let Some(v) = &args.contact {
        c.contact_person = Some(v.clone());
    }
    if let Some(v) = &args.admin_email {
        c.administrator_email = Some(v.clone());
    }
    if let Some(v) = args.license_id {
        c.license_id = v;
    }
    if let Some(v) = &args.support_id {
        c.support_id = v.clone();
    }
    if let Some(day) = args.expires {
        c.expiration_date = Some(end_of_day(day));
        if args.license_type != LicenseType::Perpetual {
            // Support runs with the license unless said otherwise.
            c.support_expiration_date = c.expiration_date;
        }
    }
    if let Some(day) = args.support_expires {
        c.support_expiration_date = Some(end_of_day(day));
    }
    if let Some(v) = &args.issuer {
        c.issuer = v.clone();
    }
    c
}

fn run_issue(args: &IssueArgs, now: DateTime<Utc>, out: &mut dyn Write) -> Result<(), CliError> {
    let key = IssuerKey::read_file(&args.key)?;
    let claims = claims_from_args(args, now);
    let file = issue(&claims, &key)?;
    let to_stdout = args.out.as_os_str() == "-";
    if to_stdout {
        out.write_all(file.as_bytes())
            .map_err(io_err("cannot write to standard output"))?;
        return Ok(());
    }
    write_license(&args.out, &file, args.force)?;
    let mut print = || -> io::Result<()> {
        writeln!(
            out,
            "issued license {} ({} {}) for {}",
            claims.license_id,
            spelled_name(claims.product),
            spelled_name(claims.license_type),
            claims.company
        )?;
        writeln!(out, "expires:   {}", when(claims.expiration_date))?;
        writeln!(out, "signed by: {}", key.key_id())?;
        writeln!(out, "written:   {}", args.out.display())
    };
    print().map_err(io_err("cannot write to standard output"))
}

fn write_license(path: &Path, text: &str, force: bool) -> Result<(), CliError> {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let context = || {
        if force {
            format!("cannot write {}", path.display())
        } else {
            format!("cannot write {} (use --force to overwrite)", path.display())
        }
    };
    let mut file = options.open(path).map_err(io_err(context()))?;
    file.write_all(text.as_bytes()).map_err(io_err(context()))
}

fn run_inspect(args: &InspectArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let bytes =
        fs::read(&args.file).map_err(io_err(format!("cannot read {}", args.file.display())))?;
    let wants_verification = !args.trusted_keys.is_empty() || args.trusted_dir.is_some();
    let (claims, key_id, verified) = if wants_verification {
        let mut trust = TrustStore::new();
        for path in &args.trusted_keys {
            trust.add(IssuerPublicKey::read_file(path)?);
        }
        if let Some(dir) = &args.trusted_dir {
            trust.load_dir(dir)?;
        }
        let license = verify(&bytes, &trust)?;
        (license.claims, license.key_id, true)
    } else {
        let (claims, key_id) = inspect_unverified(&bytes)?;
        (claims, key_id, false)
    };
    let text = if args.json {
        let report = InspectReport {
            verified,
            key_id: &key_id,
            claims: &claims,
        };
        let mut s = serde_json::to_string_pretty(&report).map_err(|e| CliError::Io {
            context: "cannot encode JSON".into(),
            source: io::Error::other(e),
        })?;
        s.push('\n');
        s
    } else {
        describe(&claims, &key_id, verified)
    };
    out.write_all(text.as_bytes())
        .map_err(io_err("cannot write to standard output"))
}

/// The `--json` shape of `license inspect` (a struct, so claims keep their documented order).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectReport<'a> {
    verified: bool,
    key_id: &'a str,
    claims: &'a LicenseClaims,
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn list<T: FileSpelling>(items: &[T]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(|v| spelled_name(*v))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A claim value as the file spells it (`cloud-connect`, not the contract's `CloudConnect`).
fn spelled_name<T: FileSpelling>(value: T) -> &'static str {
    value.file_name().unwrap_or("-")
}

/// Human-readable listing of a license's claims, headed by its verification status.
pub fn describe(c: &LicenseClaims, key_id: &str, verified: bool) -> String {
    let status = if verified {
        format!("VERIFIED (signed by trusted issuer key {key_id})")
    } else {
        format!(
            "UNVERIFIED (signature not checked; claims to be signed by {key_id}). \
             Pass --trusted-key to verify"
        )
    };
    let units = match (c.units, c.unit_type) {
        (Some(u), Some(t)) => format!("{u} {}", spelled_name(t)),
        (Some(u), None) => u.to_string(),
        _ => "-".into(),
    };
    let rows: Vec<(&str, String)> = vec![
        ("Signature", status),
        ("Format version", c.format_version.to_string()),
        ("License ID", c.license_id.to_string()),
        ("Support ID", c.support_id.clone()),
        ("Product", spelled_name(c.product).into()),
        ("Type", spelled_name(c.license_type).into()),
        ("Edition", c.edition.clone()),
        ("Packages", list(&c.packages)),
        ("Sections", list(&c.section_types)),
        ("Units", units),
        ("Sockets", opt(c.sockets)),
        ("Capacity (TB)", opt(c.capacity)),
        ("Licensed users", opt(c.licensed_users)),
        ("Instances", opt(c.instances)),
        ("Cloud Connect", spelled_name(c.cloud_connect).into()),
        ("Monitoring", opt(c.monitoring)),
        ("Company", c.company.clone()),
        ("Email", c.email.clone()),
        ("Contact person", opt(c.contact_person.as_deref())),
        ("Admin email", opt(c.administrator_email.as_deref())),
        ("Expires", when(c.expiration_date)),
        ("Support expires", when(c.support_expiration_date)),
        ("Issued at", when(Some(c.iat))),
        ("Issuer", c.issuer.clone()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    rows.into_iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(Debug, Subcommand)]
    enum TestCommand {
        Keygen(KeygenArgs),
        License {
            #[command(subcommand)]
            command: LicenseCommand,
        },
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 14, 10, 0, 0)
            .single()
            .expect("time")
    }

    fn parse(args: &[&str]) -> TestCommand {
        let mut all = vec!["tallyman"];
        all.extend_from_slice(args);
        TestCli::try_parse_from(all)
            .expect("arguments parse")
            .command
    }

    fn license(args: &[&str]) -> LicenseCommand {
        let mut all = vec!["license"];
        all.extend_from_slice(args);
        match parse(&all) {
            TestCommand::License { command } => command,
            other => panic!("{other:?}"),
        }
    }

    fn run(cmd: &LicenseCommand) -> Result<String, CliError> {
        let mut out = Vec::new();
        run_license_to(cmd, now(), &mut out)?;
        Ok(String::from_utf8(out).expect("utf8 output"))
    }

    fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
        let path = dir.join(name);
        let path_str = path.to_str().expect("utf8 path");
        let TestCommand::Keygen(args) = parse(&["keygen", "--out", path_str]) else {
            panic!("keygen parse");
        };
        let mut out = Vec::new();
        run_keygen_to(&args, &mut out).expect("keygen");
        let printed = String::from_utf8(out).expect("utf8");
        let kid = printed.lines().next().expect("kid line").to_string();
        (path, kid)
    }

    fn s(p: &Path) -> &str {
        p.to_str().expect("utf8 path")
    }

    #[test]
    fn keygen_issue_inspect_end_to_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, kid) = keygen(dir.path(), "issuer.key");
        assert!(kid.starts_with("k4.pid."));
        assert!(public_key_path(&key).exists());

        let lic = dir.path().join("site.lic");
        let printed = run(&license(&[
            "issue",
            "--key",
            s(&key),
            "--product",
            "cloud-connect",
            "--type",
            "Rental",
            "--out",
            s(&lic),
        ]))
        .expect("issue");
        assert!(printed.contains(&kid), "{printed}");
        assert!(printed.contains("(cloud-connect Rental)"), "{printed}");
        assert!(printed.contains("2026-05-31T23:59:59Z"), "{printed}");

        let pubkey = public_key_path(&key);
        let shown = run(&license(&["inspect", s(&lic), "--trusted-key", s(&pubkey)]))
            .expect("inspect verified");
        assert!(shown.starts_with("Signature:"), "{shown}");
        assert!(
            shown.contains("VERIFIED (signed by trusted issuer key"),
            "{shown}"
        );
        assert!(shown.contains("1000 Points"), "{shown}");
        assert!(shown.contains("cloud-connect"), "{shown}");

        let shown = run(&license(&["inspect", s(&lic)])).expect("inspect unverified");
        assert!(shown.contains("UNVERIFIED"), "{shown}");

        let shown = run(&license(&[
            "inspect",
            s(&lic),
            "--trusted-dir",
            s(dir.path()),
            "--json",
        ]))
        .expect("inspect json");
        let v: serde_json::Value = serde_json::from_str(&shown).expect("json output");
        assert_eq!(v["verified"], true);
        assert_eq!(v["keyId"], kid.as_str());
        assert_eq!(v["claims"]["type"], "Rental");

        // A key that did not sign it.
        let (other, _) = keygen(dir.path(), "other.key");
        let err = run(&license(&[
            "inspect",
            s(&lic),
            "--trusted-key",
            s(&public_key_path(&other)),
        ]))
        .expect_err("untrusted");
        assert!(matches!(
            err,
            CliError::License(LicenseError::UnknownIssuer { .. })
        ));

        // No silent overwrite.
        let err = run(&license(&[
            "issue",
            "--key",
            s(&key),
            "--product",
            "console",
            "--type",
            "NFR",
            "--out",
            s(&lic),
        ]))
        .expect_err("exists");
        assert!(err.to_string().contains("--force"), "{err}");
        run(&license(&[
            "issue",
            "--key",
            s(&key),
            "--product",
            "console",
            "--type",
            "nfr",
            "--out",
            s(&lic),
            "--force",
        ]))
        .expect("forced");
    }

    #[test]
    fn every_flag_reaches_the_claims() {
        let LicenseCommand::Issue(args) = license(&[
            "issue",
            "--key",
            "k",
            "--product",
            "backup-and-replication",
            "--type",
            "Perpetual",
            "--edition",
            "Standard",
            "--package",
            "Backup",
            "--package",
            "ONE",
            "--section",
            "Socket",
            "--section",
            "Instance",
            "--units",
            "13.5",
            "--unit-type",
            "Instances",
            "--sockets",
            "8",
            "--capacity",
            "2.5",
            "--licensed-users",
            "7",
            "--instances",
            "3",
            "--cloud-connect",
            "Enterprise",
            "--monitoring",
            "true",
            "--company",
            "Acme",
            "--email",
            "it@acme.test",
            "--contact",
            "Ann",
            "--admin-email",
            "admin@acme.test",
            "--license-id",
            "514c45eb-9543-4799-8003-1e59385b774c",
            "--support-id",
            "987412365",
            "--support-expires",
            "2027-01-31",
            "--issuer",
            "Example Distributor",
            "--issued-at",
            "2026-01-02T03:04:05Z",
            "--out",
            "x.lic",
        ]) else {
            panic!("issue");
        };
        let c = claims_from_args(&args, now());
        assert_eq!(c.edition, "Standard");
        assert_eq!(c.packages, vec![Package::Backup, Package::One]);
        assert_eq!(
            c.section_types,
            vec![SectionType::Socket, SectionType::Instance]
        );
        assert_eq!(
            (c.units, c.unit_type),
            (Some(13.5), Some(UnitType::Instances))
        );
        assert_eq!(c.sockets, Some(8));
        assert_eq!(c.capacity, Some(2.5));
        assert_eq!(c.licensed_users, Some(7));
        assert_eq!(c.instances, Some(3.0));
        assert_eq!(c.cloud_connect, CloudConnect::Enterprise);
        assert_eq!(c.monitoring, Some(true));
        assert_eq!(c.company, "Acme");
        assert_eq!(c.email, "it@acme.test");
        assert_eq!(c.contact_person.as_deref(), Some("Ann"));
        assert_eq!(c.administrator_email.as_deref(), Some("admin@acme.test"));
        assert_eq!(
            c.license_id.to_string(),
            "514c45eb-9543-4799-8003-1e59385b774c"
        );
        assert_eq!(c.support_id, "987412365");
        assert_eq!(c.expiration_date, None);
        assert_eq!(
            c.support_expiration_date,
            Utc.with_ymd_and_hms(2027, 1, 31, 23, 59, 59).single()
        );
        assert_eq!(c.issuer, "Example Distributor");
        assert_eq!(
            c.iat,
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("t")
        );
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn expires_moves_support_along_and_bad_combinations_are_refused() {
        let LicenseCommand::Issue(args) = license(&[
            "issue",
            "--key",
            "k",
            "--product",
            "vone",
            "--type",
            "Subscription",
            "--expires",
            "2026-12-31",
            "--out",
            "x",
        ]) else {
            panic!("issue");
        };
        let c = claims_from_args(&args, now());
        let end = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).single();
        assert_eq!(c.expiration_date, end);
        assert_eq!(c.support_expiration_date, end);

        let LicenseCommand::Issue(args) = license(&[
            "issue",
            "--key",
            "k",
            "--product",
            "vone",
            "--type",
            "Perpetual",
            "--expires",
            "2026-12-31",
            "--out",
            "x",
        ]) else {
            panic!("issue");
        };
        assert!(!claims_from_args(&args, now()).problems().is_empty());
    }

    #[test]
    fn issue_to_stdout_and_missing_key_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, _) = keygen(dir.path(), "k");
        let text = run(&license(&[
            "issue",
            "--key",
            s(&key),
            "--product",
            "vb365",
            "--type",
            "Evaluation",
            "--out",
            "-",
        ]))
        .expect("stdout");
        assert!(text.starts_with(crate::armour::BEGIN), "{text}");

        let err = run(&license(&[
            "issue",
            "--key",
            s(&dir.path().join("absent")),
            "--product",
            "vb365",
            "--type",
            "Rental",
            "--out",
            "-",
        ]))
        .expect_err("no key");
        assert!(matches!(err, CliError::Key(KeyError::Io { .. })));
    }

    #[test]
    fn bad_flag_values_are_rejected_by_the_parser() {
        for bad in [
            vec![
                "issue",
                "--key",
                "k",
                "--product",
                "toaster",
                "--type",
                "Rental",
                "--out",
                "x",
            ],
            vec![
                "issue",
                "--key",
                "k",
                "--product",
                "vone",
                "--type",
                "Lease",
                "--out",
                "x",
            ],
            vec![
                "issue",
                "--key",
                "k",
                "--product",
                "vone",
                "--type",
                "Rental",
                "--expires",
                "31/12/2026",
                "--out",
                "x",
            ],
            vec![
                "issue",
                "--product",
                "vone",
                "--type",
                "Rental",
                "--out",
                "x",
            ],
        ] {
            let mut all = vec!["tallyman", "license"];
            all.extend(bad.iter().copied());
            assert!(TestCli::try_parse_from(&all).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn describe_marks_unverified_claims() {
        let c = default_claims(Product::Vb365, LicenseType::Rental, now());
        let text = describe(&c, "k4.pid.x", false);
        assert!(text.starts_with("Signature:"));
        assert!(text.contains("UNVERIFIED"));
        assert!(text.contains("Licensed users:"));
        let text = describe(&c, "k4.pid.x", true);
        assert!(!text.contains("UNVERIFIED"));
    }
}
