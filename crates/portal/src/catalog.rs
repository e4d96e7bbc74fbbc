//! The licenses directory and the in-memory index over it.
//!
//! Every `*.lic` file in the directory that verifies against the portal's own key is indexed by
//! license id; files are never rewritten or deleted, a renewal or import adds a file next to the
//! old ones. New files are written to a hidden temporary name and renamed into place, so a
//! crash leaves either the whole file or none (and the scan ignores the temporaries).
//!
//! The catalog itself is not synchronized; [`crate::server::PortalState`] keeps it behind a
//! mutex and holds that across "decide, sign, write, index", which is what makes two concurrent
//! renewals of one license produce one file.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tallyman_license::armour::MAX_FILE_LEN;
use tallyman_license::{verify, LicenseClaims, TrustStore};
use uuid::Uuid;

/// One license file known to the portal.
#[derive(Debug, Clone)]
pub struct StoredLicense {
    /// What the file says (already verified).
    pub claims: LicenseClaims,
    /// The file in canonical armour.
    pub armoured: String,
    /// Where it lives in the licenses directory.
    pub path: PathBuf,
}

/// A file the start-up scan could not use, and why.
#[derive(Debug, Clone)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// The outcome of scanning the licenses directory.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Files verified and indexed.
    pub loaded: usize,
    /// Files that were not indexed.
    pub skipped: Vec<SkippedFile>,
}

#[derive(Debug)]
pub(crate) struct Catalog {
    dir: PathBuf,
    /// Per license id, every known file ordered by `iat`, newest last.
    by_id: HashMap<Uuid, Vec<StoredLicense>>,
}

impl Catalog {
    /// Indexes every `*.lic` file in `dir` (created if missing) that `trust` verifies.
    pub(crate) fn scan(dir: &Path, trust: &TrustStore) -> io::Result<(Self, ScanReport)> {
        fs::create_dir_all(dir).map_err(|e| in_path(dir, e))?;
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| in_path(dir, e))? {
            let path = entry.map_err(|e| in_path(dir, e))?.path();
            if is_license_file(&path) {
                paths.push(path);
            }
        }
        // A stable order makes "which of two equal-iat files wins" reproducible.
        paths.sort();

        let mut catalog = Catalog {
            dir: dir.to_path_buf(),
            by_id: HashMap::new(),
        };
        let mut report = ScanReport::default();
        for path in paths {
            match read_verified(&path, trust) {
                Ok(license) => {
                    if catalog.holds(&license.armoured) {
                        tracing::debug!(file = %path.display(), "duplicate license file ignored");
                        continue;
                    }
                    catalog.insert(license);
                    report.loaded += 1;
                }
                Err(reason) => {
                    tracing::warn!(file = %path.display(), %reason, "license file skipped");
                    report.skipped.push(SkippedFile { path, reason });
                }
            }
        }
        Ok((catalog, report))
    }

    /// The newest file for `license_id`.
    pub(crate) fn newest(&self, license_id: Uuid) -> Option<&StoredLicense> {
        self.by_id.get(&license_id).and_then(|files| files.last())
    }

    /// Whether exactly this file (in canonical armour) is already indexed.
    pub(crate) fn holds(&self, armoured: &str) -> bool {
        self.by_id
            .values()
            .flatten()
            .any(|stored| stored.armoured == armoured)
    }

    /// An indexed file of the same license issued in the same second as `claims`.
    pub(crate) fn same_instant(&self, claims: &LicenseClaims) -> Option<&StoredLicense> {
        self.by_id
            .get(&claims.license_id)?
            .iter()
            .find(|stored| stored.claims.iat == claims.iat)
    }

    /// Number of distinct license ids.
    pub(crate) fn license_count(&self) -> usize {
        self.by_id.len()
    }

    /// Writes a verified file into the directory and indexes it.
    pub(crate) fn add(
        &mut self,
        claims: LicenseClaims,
        armoured: String,
    ) -> io::Result<&StoredLicense> {
        let path = write_new_file(&self.dir, &file_stem(&claims), armoured.as_bytes())?;
        let license_id = claims.license_id;
        let position = self.insert(StoredLicense {
            claims,
            armoured,
            path,
        });
        self.by_id
            .get(&license_id)
            .and_then(|files| files.get(position))
            .ok_or_else(|| io::Error::other("the license vanished from the index"))
    }

    /// Inserts keeping `iat` order; among equal `iat`s the later insert counts as newer.
    fn insert(&mut self, license: StoredLicense) -> usize {
        let files = self.by_id.entry(license.claims.license_id).or_default();
        let position = files.partition_point(|f| f.claims.iat <= license.claims.iat);
        files.insert(position, license);
        position
    }
}

fn is_license_file(path: &Path) -> bool {
    let visible = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.'));
    visible
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("lic"))
        && path.is_file()
}

fn read_verified(path: &Path, trust: &TrustStore) -> Result<StoredLicense, String> {
    let len = fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_FILE_LEN as u64 {
        return Err(format!(
            "larger than {MAX_FILE_LEN} bytes, so not a license file"
        ));
    }
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let verified = verify(&bytes, trust).map_err(|e| e.to_string())?;
    Ok(StoredLicense {
        claims: verified.claims,
        armoured: verified.armoured,
        path: path.to_path_buf(),
    })
}

/// `<license id>-<iat as 20261130T013324Z>`: sorts by license, then by issue time.
fn file_stem(claims: &LicenseClaims) -> String {
    format!(
        "{}-{}",
        claims.license_id,
        claims.iat.format("%Y%m%dT%H%M%SZ")
    )
}

/// Writes `contents` to a fresh `<stem>[-n].lic` in `dir` without ever overwriting a file:
/// temporary file, flush to disk, rename, then flush the directory entry.
fn write_new_file(dir: &Path, stem: &str, contents: &[u8]) -> io::Result<PathBuf> {
    let target = (0u32..)
        .map(|n| match n {
            0 => dir.join(format!("{stem}.lic")),
            n => dir.join(format!("{stem}-{n}.lic")),
        })
        .find(|candidate| !candidate.exists())
        .ok_or_else(|| io::Error::other("no free file name"))?;
    let temporary = dir.join(format!(".{stem}.{}.tmp", Uuid::new_v4().simple()));

    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(in_path(&target, e));
    }
    // Make the rename itself durable. Directories cannot be opened for syncing everywhere, and
    // the file is complete either way, so a failure here is not an error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(target)
}

fn in_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use tallyman_domain::{LicenseType, Product};
    use tallyman_license::{default_claims, issue, IssuerKey};

    fn trust(key: &IssuerKey) -> TrustStore {
        [key.public()].into_iter().collect()
    }

    #[test]
    fn adds_files_without_overwriting_and_orders_by_iat() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = IssuerKey::generate();
        let (mut catalog, report) = Catalog::scan(dir.path(), &trust(&key)).expect("scan");
        assert_eq!(report.loaded, 0);

        let first = default_claims(Product::Vb365, LicenseType::Rental, Utc::now());
        let mut second = first.clone();
        second.iat = first.iat + Duration::seconds(5);
        // Added newest first, then the older one with a colliding name.
        let second_file = issue(&second, &key).expect("issue");
        let p2 = catalog
            .add(second.clone(), second_file)
            .expect("add")
            .path
            .clone();
        let mut first_again = first.clone();
        first_again.support_id = "123456789".into();
        for c in [&first, &first_again] {
            let file = issue(c, &key).expect("issue");
            catalog.add(c.clone(), file).expect("add");
        }
        assert_eq!(
            catalog.newest(first.license_id).map(|s| s.path.clone()),
            Some(p2)
        );

        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".lic")), "{names:?}");

        let (rescanned, report) = Catalog::scan(dir.path(), &trust(&key)).expect("rescan");
        assert_eq!(report.loaded, 3);
        assert_eq!(
            rescanned.newest(first.license_id).map(|s| s.claims.iat),
            Some(second.iat)
        );
    }
}
