//! `tallyman report generate` and `tallyman rates show|set|import`: report generation on demand
//! and the points weights table from the command line.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tallyman_app::reports as reporting;
use tallyman_app::Month;
use tallyman_store::{ReportWrite, Store, WeightRow};

pub async fn generate(store: &Arc<dyn Store>, month: &str) -> anyhow::Result<()> {
    let month =
        Month::parse(month).with_context(|| format!("--month must be YYYY-MM, not {month:?}"))?;
    if month >= Month::of(Utc::now()) {
        bail!("{month} is not over yet; reports cover a finished month");
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} report owners")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("building {month}"));
    let progress_bar = bar.clone();
    let written = reporting::generate_month(store, month, Utc::now(), &move |done, total| {
        progress_bar.set_length(total as u64);
        progress_bar.set_position(done as u64);
    })
    .await?;
    bar.finish_and_clear();
    for (owner, outcome) in written {
        match outcome {
            ReportWrite::Created(id) => println!("report {id} created for {owner}"),
            ReportWrite::Replaced(id) => println!("report {id} regenerated for {owner}"),
            ReportWrite::KeptApproved(id) => {
                println!("report {id} for {owner} is approved and was kept")
            }
        }
    }
    Ok(())
}

pub async fn show(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    reporting::seed_default_weights(store).await?;
    println!(
        "{:<22} {:<18} {:<26} {:>8}",
        "PRODUCT", "EDITION", "WORKLOAD", "WEIGHT"
    );
    for w in store.weights().await? {
        println!(
            "{:<22} {:<18} {:<26} {:>8}",
            w.product, w.edition, w.workload_type, w.weight
        );
    }
    Ok(())
}

const PRODUCTS: [&str; 5] = [
    "CloudConnect",
    "BackupAndReplication",
    "VONE",
    "VB365",
    "VSPC",
];

fn checked(row: WeightRow) -> anyhow::Result<WeightRow> {
    if !PRODUCTS.contains(&row.product.as_str()) {
        bail!(
            "unknown product {:?}; one of {}",
            row.product,
            PRODUCTS.join(", ")
        );
    }
    if row.workload_type.trim().is_empty() || row.edition.trim().is_empty() {
        bail!("workload type and edition must not be empty (use * for any edition)");
    }
    if !row.weight.is_finite() || row.weight < 0.0 || row.weight > 10_000.0 {
        bail!("the weight must be a number from 0 to 10000");
    }
    Ok(row)
}

pub async fn set(
    store: &Arc<dyn Store>,
    product: &str,
    edition: &str,
    workload: &str,
    weight: f64,
) -> anyhow::Result<()> {
    reporting::seed_default_weights(store).await?;
    let row = checked(WeightRow {
        product: product.into(),
        edition: edition.into(),
        workload_type: workload.into(),
        weight,
    })?;
    store.set_weight(&row).await?;
    println!(
        "{} {} {} = {}",
        row.product, row.edition, row.workload_type, row.weight
    );
    Ok(())
}

/// The rates file: a TOML document with `[[weight]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatesFile {
    weight: Vec<RateEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateEntry {
    product: String,
    #[serde(default = "any_edition")]
    edition: String,
    workload: String,
    weight: f64,
}

fn any_edition() -> String {
    "*".into()
}

pub async fn import(store: &Arc<dyn Store>, path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: RatesFile =
        toml::from_str(&text).with_context(|| format!("invalid rates file {}", path.display()))?;
    // Check every row before writing any.
    let rows: Vec<WeightRow> = file
        .weight
        .into_iter()
        .map(|e| {
            checked(WeightRow {
                product: e.product,
                edition: e.edition,
                workload_type: e.workload,
                weight: e.weight,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    reporting::seed_default_weights(store).await?;
    for row in &rows {
        store.set_weight(row).await?;
    }
    println!("{} weights set from {}", rows.len(), path.display());
    Ok(())
}
