//! Settings for `serve` and the other subcommands, layered: built-in defaults, then the config
//! file, then `TALLYMAN_*` environment variables, then flags (clap resolves the last two; flags
//! win). Secrets can come from files via `*_FILE` variables so they stay out of process lists.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:1280";
pub const DEFAULT_DATA_DIR: &str = "./tallyman-data";

/// Where the data lives; shared by every subcommand that opens the store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory for the SQLite database and other state (created if missing).
    #[arg(long, env = "TALLYMAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB. Default: SQLite in the data dir.
    #[arg(
        long = "database",
        env = "TALLYMAN_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Config file (TOML). Default: <data-dir>/tallyman.toml when it exists.
    #[arg(long, env = "TALLYMAN_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Settings `serve` accepts beyond the store.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "TALLYMAN_LISTEN")]
    pub listen: Option<String>,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "TALLYMAN_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Seconds an operation may run before the caller gets 202 and an async action.
    #[arg(long, env = "TALLYMAN_ASYNC_BUDGET_SECS")]
    pub async_budget_secs: Option<u64>,
    /// Answer every async-capable operation with 202 (for testing client polling loops).
    #[arg(long, env = "TALLYMAN_FORCE_ASYNC")]
    pub force_async: Option<bool>,
    /// Base URL clients use to reach this server (for Location headers), e.g. https://lic.example.com:1280
    #[arg(long, env = "TALLYMAN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest page size a collection returns (limit upper bound).
    #[arg(long, env = "TALLYMAN_MAX_PAGE_SIZE")]
    pub max_page_size: Option<usize>,
    /// Public key of a license issuer whose files this server accepts (repeatable). Keys in
    /// <data-dir>/trusted-keys/*.pub and in TALLYMAN_TRUSTED_KEYS (comma-separated) count too.
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
    /// URL of the license portal that `update` asks for newer license files.
    #[arg(long, env = "TALLYMAN_PORTAL_URL")]
    pub portal_url: Option<String>,
    /// Start with a demo issuer key, an in-process portal and a seeded fleet (on an empty database).
    #[arg(long)]
    pub demo: bool,
    /// Address of a separate listener serving Prometheus metrics at /metrics (off by default).
    #[arg(long, env = "TALLYMAN_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Seconds a client has to send a request head (also how long an idle connection stays open).
    #[arg(long, env = "TALLYMAN_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request body after its head (408 otherwise).
    #[arg(long, env = "TALLYMAN_BODY_READ_TIMEOUT_SECS")]
    pub body_read_timeout_secs: Option<u64>,
    /// Connections served at once; further ones wait in the listen backlog.
    #[arg(long, env = "TALLYMAN_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
}

/// The config file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub body_limit: Option<usize>,
    pub async_budget_secs: Option<u64>,
    pub force_async: Option<bool>,
    pub public_url: Option<String>,
    pub max_page_size: Option<usize>,
    pub access_token_ttl_secs: Option<i64>,
    pub refresh_token_ttl_secs: Option<i64>,
    pub login_max_failures: Option<u32>,
    pub login_window_secs: Option<i64>,
    pub provider_name: Option<String>,
    pub trusted_keys: Option<Vec<PathBuf>>,
    pub portal_url: Option<String>,
    pub metrics_listen: Option<String>,
    pub header_read_timeout_secs: Option<u64>,
    pub body_read_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Reads `NAME`, or the contents of the file named by `NAME_FILE`.
pub fn secret_env(name: &str) -> anyhow::Result<Option<String>> {
    if let Ok(v) = std::env::var(name) {
        if !v.is_empty() {
            return Ok(Some(v));
        }
    }
    if let Ok(path) = std::env::var(format!("{name}_FILE")) {
        let v = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {name}_FILE ({path})"))?;
        return Ok(Some(v.trim_end_matches(['\r', '\n']).to_string()));
    }
    Ok(None)
}

/// The resolved location of the data and the config file's contents.
pub struct Resolved {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub file: FileConfig,
}

impl StoreArgs {
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let explicit_config = self.config.clone();
        let provisional_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let file = match explicit_config {
            Some(path) => FileConfig::load(&path)?,
            None => {
                let candidate = provisional_dir.join("tallyman.toml");
                if candidate.exists() {
                    FileConfig::load(&candidate)?
                } else {
                    FileConfig::default()
                }
            }
        };
        let data_dir = self
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match self.database_url.clone() {
            Some(url) => url,
            None => match secret_env("TALLYMAN_DATABASE_URL")? {
                Some(url) => url,
                None => match file.database_url.clone() {
                    Some(url) => url,
                    None => format!("sqlite://{}", data_dir.join("tallyman.db").display()),
                },
            },
        };
        if database_url.starts_with("sqlite:") {
            std::fs::create_dir_all(&data_dir).with_context(|| {
                format!("cannot create the data directory {}", data_dir.display())
            })?;
        }
        Ok(Resolved {
            data_dir,
            database_url,
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_keys_parse_and_unknown_keys_are_refused() {
        let ok: FileConfig =
            toml::from_str("listen = \"0.0.0.0:1280\"\nforce_async = true").unwrap();
        assert_eq!(ok.listen.as_deref(), Some("0.0.0.0:1280"));
        assert_eq!(ok.force_async, Some(true));
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = std::env::temp_dir().join(format!("tallyman-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(&file, "database_url = \"sqlite://from-file.db\"\n").unwrap();
        let args = StoreArgs {
            data_dir: Some(dir.clone()),
            database_url: None,
            config: Some(file.clone()),
        };
        // The environment may carry TALLYMAN_DATABASE_URL on a developer's machine; only
        // check the file when it does not.
        if std::env::var("TALLYMAN_DATABASE_URL").is_err() {
            assert_eq!(
                args.resolve().unwrap().database_url,
                "sqlite://from-file.db"
            );
        }
        let args = StoreArgs {
            database_url: Some("sqlite://flag.db".into()),
            ..args
        };
        assert_eq!(args.resolve().unwrap().database_url, "sqlite://flag.db");
        std::fs::remove_dir_all(&dir).ok();
    }
}
