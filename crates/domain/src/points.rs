//! Points weights (points per workload, "PPU"): how many rental points one workload of a type
//! consumes, by product, edition and workload type. Weights are data — stored, listed and edited
//! by the provider — and this module only holds the seed table and the lookup rule.
//!
//! The seed values come from Veeam's published Cloud Connect rates and from figures seen in the
//! console's sample reports. They are **defaults to review** against the provider's own rental
//! contract; see `docs/points.md`.

use serde::{Deserialize, Serialize};

/// One row of the weights table. `edition` `*` matches any edition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Weight {
    /// `productType` as reports spell it: `CloudConnect`, `BackupAndReplication`, `VONE`,
    /// `VB365`, `VSPC`.
    pub product: String,
    pub edition: String,
    /// `workloadType` as reports spell it, e.g. `VBR_VM`.
    pub workload_type: String,
    pub weight: f64,
}

fn w(product: &str, edition: &str, workload_type: &str, weight: f64) -> Weight {
    Weight {
        product: product.into(),
        edition: edition.into(),
        workload_type: workload_type.into(),
        weight,
    }
}

/// The seed table.
pub fn default_weights() -> Vec<Weight> {
    vec![
        // Cloud Connect (published rates).
        w("CloudConnect", "*", "CC_VM_Backup", 5.0),
        w("CloudConnect", "*", "CC_VM_Replica", 10.0),
        w("CloudConnect", "*", "CC_Workstation_Backup", 3.0),
        w("CloudConnect", "*", "CC_Server_Backup", 7.0),
        // Agents managed by the console.
        w("VSPC", "*", "VAC_Server_Agent", 11.0),
        w("VSPC", "*", "VAC_Workstation_Agent", 4.0),
        // Backup & Replication by edition.
        w("BackupAndReplication", "Enterprise Plus", "VBR_VM", 11.0),
        w(
            "BackupAndReplication",
            "Enterprise Plus",
            "VBR_Server_Agent",
            11.0,
        ),
        w(
            "BackupAndReplication",
            "Enterprise Plus",
            "VBR_Workstation_Agent",
            4.0,
        ),
        w(
            "BackupAndReplication",
            "Enterprise Plus",
            "VBR_Application_Plugins",
            11.0,
        ),
        w(
            "BackupAndReplication",
            "Enterprise Plus",
            "VBR_Cloud_VM",
            11.0,
        ),
        w(
            "BackupAndReplication",
            "Enterprise Plus",
            "VBR_NAS_Backup",
            10.0,
        ),
        w("BackupAndReplication", "Enterprise", "VBR_VM", 9.0),
        w("BackupAndReplication", "Enterprise", "VBR_NAS_Backup", 10.0),
        w("BackupAndReplication", "Enterprise", "VBR_Cloud_VM", 11.0),
        w("BackupAndReplication", "Standard", "VBR_VM", 5.0),
        w("BackupAndReplication", "*", "VBR_VM", 11.0),
        w("BackupAndReplication", "*", "VBR_Server_Agent", 11.0),
        w("BackupAndReplication", "*", "VBR_Workstation_Agent", 4.0),
        w("BackupAndReplication", "*", "VBR_Application_Plugins", 11.0),
        w("BackupAndReplication", "*", "VBR_Cloud_VM", 11.0),
        w("BackupAndReplication", "*", "VBR_Cloud_Database", 11.0),
        w("BackupAndReplication", "*", "VBR_Cloud_File_Share", 10.0),
        w("BackupAndReplication", "*", "VBR_NAS_Backup", 10.0),
        w("BackupAndReplication", "*", "VBR_Tape_Backup", 2.0),
        // Microsoft 365 and Veeam ONE.
        w("VB365", "*", "VB365_User", 1.5),
        w("VONE", "*", "VONE_VM", 2.0),
        w("VONE", "*", "VONE_Server_Agent", 2.0),
        w("VONE", "*", "VONE_Workstation_Agent", 1.0),
        w("VONE", "*", "VONE_Cloud_VM", 2.0),
        w("VONE", "*", "VONE_User", 0.5),
    ]
}

/// The weight for a workload: an exact edition match wins over `*`; `None` when the table has
/// no row (such workloads are reported with weight 0 and flagged in the logs by the caller).
pub fn lookup(table: &[Weight], product: &str, edition: &str, workload_type: &str) -> Option<f64> {
    let same = |row: &&Weight| row.product == product && row.workload_type == workload_type;
    table
        .iter()
        .filter(same)
        .find(|row| row.edition.eq_ignore_ascii_case(edition))
        .or_else(|| table.iter().filter(same).find(|row| row.edition == "*"))
        .map(|row| row.weight)
}

/// Rental workloads on Cloud Connect (tenants whose own backup server runs a rental license)
/// consume nothing from the provider's license.
pub fn is_free_when_rental(workload_type: &str) -> bool {
    matches!(
        workload_type,
        "CC_VM_Backup" | "CC_Workstation_Backup" | "CC_Server_Backup"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_edition_wins_over_the_wildcard() {
        let t = default_weights();
        assert_eq!(
            lookup(&t, "BackupAndReplication", "Standard", "VBR_VM"),
            Some(5.0)
        );
        assert_eq!(
            lookup(&t, "BackupAndReplication", "enterprise", "VBR_VM"),
            Some(9.0)
        );
        assert_eq!(
            lookup(&t, "BackupAndReplication", "Community", "VBR_VM"),
            Some(11.0)
        );
        assert_eq!(lookup(&t, "VB365", "", "VB365_User"), Some(1.5));
        assert_eq!(lookup(&t, "VB365", "", "VBR_VM"), None);
    }

    #[test]
    fn seed_rows_are_unique_and_positive() {
        let t = default_weights();
        for (i, a) in t.iter().enumerate() {
            assert!(a.weight >= 0.0);
            for b in &t[i + 1..] {
                assert!(
                    !(a.product == b.product
                        && a.edition == b.edition
                        && a.workload_type == b.workload_type),
                    "duplicate {a:?}"
                );
            }
        }
        assert!(is_free_when_rental("CC_VM_Backup"));
        assert!(!is_free_when_rental("CC_VM_Replica"));
    }
}
