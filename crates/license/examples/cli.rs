//! A stand-alone front end for the `keygen` and `license` subcommands, mounted the way the
//! `tallyman` binary mounts them. Used to produce the worked example in `docs/license-format.md`:
//!
//! ```text
//! cargo run --example cli -- keygen --out issuer.key
//! cargo run --example cli -- license issue --key issuer.key --product console --type Rental --out console.lic
//! cargo run --example cli -- license inspect console.lic --trusted-key issuer.key.pub
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tallyman_license::cli;

#[derive(Parser)]
#[command(name = "tallyman", about = "Tallyman license tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an issuer signing key (FILE) and its public key (FILE.pub)
    Keygen(cli::KeygenArgs),
    /// Issue or inspect license files
    License {
        #[command(subcommand)]
        command: cli::LicenseCommand,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Keygen(args) => cli::run_keygen(&args),
        Command::License { command } => cli::run_license(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
