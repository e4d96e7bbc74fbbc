//! Rules for `PATCH` on a server license (licensing.md §2.6): `autoUpdateEnabled` is the only
//! writable property, and it is not always free to change.
//!
//! Parsing the JSON Patch document (ops, value types) belongs to the HTTP layer; this module
//! decides which paths are writable and whether a requested value is allowed.

use thiserror::Error;

use crate::license::{LicenseTerms, LicenseType};
use crate::product::Product;

/// JSON Pointer of the one writable property.
pub const AUTO_UPDATE_PATH: &str = "/autoUpdateEnabled";

/// A property a client may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritableProperty {
    AutoUpdateEnabled,
}

/// Why a patch is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchRefusal {
    /// Any path but `autoUpdateEnabled`. Worded like VSPC's own error for this case.
    #[error("The property at path '{path}' could not be updated.")]
    ReadOnlyPath { path: String },

    #[error("Licenses of a {} cannot be modified.", target.display_name())]
    NotPatchable { target: Product },

    #[error("No license is installed, so automatic license update cannot be changed. Install a license first.")]
    NoLicense,

    #[error(
        "Automatic license update cannot be turned off for {license_type} licenses: it stays on, \
         together with usage reporting, for as long as the license is installed."
    )]
    ForcedOn { license_type: LicenseType },

    #[error(
        "Automatic license update cannot be turned on: the license has no license ID. Install a \
         license file issued with a license ID."
    )]
    NoLicenseId,
}

/// Resolves a patch path. VSPC's own examples write paths without the leading slash, so both
/// `/autoUpdateEnabled` and `autoUpdateEnabled` are accepted; matching is case-sensitive.
pub fn writable_property(path: &str) -> Result<WritableProperty, PatchRefusal> {
    match path.strip_prefix('/').unwrap_or(path) {
        "autoUpdateEnabled" => Ok(WritableProperty::AutoUpdateEnabled),
        _ => Err(PatchRefusal::ReadOnlyPath {
            path: path.to_owned(),
        }),
    }
}

/// What an accepted change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoUpdateChange {
    /// Already in the requested state; nothing to send to the server.
    Unchanged,
    /// Starts the update schedule and weekly usage statistics.
    Enabled,
    /// Stops both, and halves any exceed allowance that was doubled by auto-update.
    Disabled,
}

/// Decides whether `autoUpdateEnabled` may become `requested` on the license `current` of
/// `target`.
///
/// Evaluation and NFR licenses with a license id keep auto-update on; a license without a
/// license id cannot turn it on; the console has no PATCH in 3.6.1.
pub fn decide_auto_update(
    target: Product,
    current: Option<&LicenseTerms>,
    requested: bool,
) -> Result<AutoUpdateChange, PatchRefusal> {
    if target == Product::Console {
        return Err(PatchRefusal::NotPatchable { target });
    }
    let license = current
        .filter(|c| c.license_type.is_license())
        .ok_or(PatchRefusal::NoLicense)?;
    if !requested && license.license_type.forces_auto_update() && license.has_license_id {
        return Err(PatchRefusal::ForcedOn {
            license_type: license.license_type,
        });
    }
    if requested && !license.has_license_id {
        return Err(PatchRefusal::NoLicenseId);
    }
    Ok(match (license.auto_update_enabled, requested) {
        (was, now) if was == now => AutoUpdateChange::Unchanged,
        (_, true) => AutoUpdateChange::Enabled,
        (_, false) => AutoUpdateChange::Disabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use LicenseType as T;

    fn license(t: LicenseType, has_id: bool, on: bool) -> LicenseTerms {
        LicenseTerms {
            has_license_id: has_id,
            auto_update_enabled: on,
            ..LicenseTerms::new(Product::BackupAndReplication, t)
        }
    }

    fn decide(l: &LicenseTerms, requested: bool) -> Result<AutoUpdateChange, PatchRefusal> {
        decide_auto_update(Product::BackupAndReplication, Some(l), requested)
    }

    #[test]
    fn only_auto_update_is_writable_with_or_without_slash() {
        assert_eq!(
            writable_property(AUTO_UPDATE_PATH),
            Ok(WritableProperty::AutoUpdateEnabled)
        );
        assert_eq!(
            writable_property("autoUpdateEnabled"),
            Ok(WritableProperty::AutoUpdateEnabled)
        );
        for path in [
            "/status",
            "/AutoUpdateEnabled",
            "",
            "/",
            "//autoUpdateEnabled",
        ] {
            let err = writable_property(path).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("The property at path '{path}' could not be updated.")
            );
        }
    }

    #[test]
    fn paid_licenses_toggle_freely() {
        for t in [T::Rental, T::Subscription, T::Perpetual] {
            assert_eq!(
                decide(&license(t, true, false), true),
                Ok(AutoUpdateChange::Enabled)
            );
            assert_eq!(
                decide(&license(t, true, true), false),
                Ok(AutoUpdateChange::Disabled)
            );
            assert_eq!(
                decide(&license(t, true, true), true),
                Ok(AutoUpdateChange::Unchanged)
            );
            assert_eq!(
                decide(&license(t, true, false), false),
                Ok(AutoUpdateChange::Unchanged)
            );
        }
    }

    #[test]
    fn evaluation_and_nfr_cannot_turn_it_off() {
        for t in [T::Evaluation, T::Nfr] {
            let err = decide(&license(t, true, true), false).unwrap_err();
            assert_eq!(err, PatchRefusal::ForcedOn { license_type: t });
            assert!(err.to_string().contains("cannot be turned off"));
            // Even if it is somehow off, the only accepted value is on.
            assert!(decide(&license(t, true, false), false).is_err());
            assert_eq!(
                decide(&license(t, true, false), true),
                Ok(AutoUpdateChange::Enabled)
            );
            // Without a license id the forcing does not apply (and it cannot be on).
            assert_eq!(
                decide(&license(t, false, false), false),
                Ok(AutoUpdateChange::Unchanged)
            );
        }
    }

    #[test]
    fn no_license_id_cannot_turn_it_on() {
        for t in [T::Rental, T::Subscription, T::Perpetual, T::Evaluation] {
            assert_eq!(
                decide(&license(t, false, false), true),
                Err(PatchRefusal::NoLicenseId)
            );
            // Turning it off stays possible (repairs a bad state).
            assert_eq!(
                decide(&license(t, false, true), false),
                Ok(AutoUpdateChange::Disabled)
            );
        }
    }

    #[test]
    fn no_license_and_console_are_refused() {
        assert_eq!(
            decide_auto_update(Product::VOne, None, true),
            Err(PatchRefusal::NoLicense)
        );
        for t in [T::Community, T::NotInstalled, T::Unknown] {
            assert_eq!(
                decide(&license(t, true, false), true),
                Err(PatchRefusal::NoLicense)
            );
        }
        let console = LicenseTerms {
            has_license_id: true,
            ..LicenseTerms::new(Product::Console, T::Rental)
        };
        assert_eq!(
            decide_auto_update(Product::Console, Some(&console), true),
            Err(PatchRefusal::NotPatchable {
                target: Product::Console
            })
        );
        for target in [Product::CloudConnectSite, Product::VOne, Product::Vb365] {
            let l = LicenseTerms {
                has_license_id: true,
                ..LicenseTerms::new(target, T::Rental)
            };
            assert_eq!(
                decide_auto_update(target, Some(&l), true),
                Ok(AutoUpdateChange::Enabled)
            );
        }
    }
}
