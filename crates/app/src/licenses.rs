//! The license operations every target shares: install a signed file, switch auto-update, remove
//! a license (by section), update from the license portal, and record an agent's
//! acknowledgement. Each decision is the domain's; this module verifies files, applies the
//! decision to the stored document and writes it once, guarded by the revision it read, with a
//! history event. Each operation answers with the target as written, without reading it back.

use std::sync::Arc;

use serde_json::{json, Value};
use tallyman_domain::delete::{plan_delete, DeleteOutcome, DeleteSection};
use tallyman_domain::install::{check_install, InstallAction, InstallTarget};
use tallyman_domain::patch::decide_auto_update;
use tallyman_license::VerifiedLicense;
use tallyman_store::{LicenseEvent, LicenseSlot, StoreError, TargetKind};

use crate::document::{terms_from_claims, InstalledFile, LastUpdate, SlotDocument};
use crate::error::{AppError, AppResult};
use crate::portal::PortalFailure;
use crate::target::Target;
use crate::App;

impl App {
    /// Writes `doc` as the target's new document if nobody wrote since `target` was read, with
    /// a history event; answers the target as written.
    pub async fn save(
        &self,
        target: &Target,
        doc: SlotDocument,
        actor: &str,
        action: &str,
        detail: Value,
    ) -> AppResult<Target> {
        let now = self.clock.now();
        let slot = LicenseSlot {
            target_uid: target.uid,
            kind: target.kind,
            document: serde_json::to_value(&doc).map_err(AppError::internal)?,
            revision: 0,
            updated_at: now,
        };
        let event = LicenseEvent {
            target_uid: target.uid,
            at: now,
            actor: actor.to_string(),
            action: action.to_string(),
            detail,
        };
        let revision = match self
            .store
            .save_license_slot(&slot, target.revision, &event)
            .await
        {
            Ok(revision) => revision,
            Err(StoreError::Conflict(_)) => return Err(AppError::Busy),
            Err(e) => return Err(e.into()),
        };
        let doc = Arc::new(doc);
        self.remember(target.uid, revision, doc.clone());
        Ok(Target::new(
            target.kind,
            target.uid,
            target.server.clone(),
            Some(revision),
            doc,
        ))
    }

    /// Verifies an uploaded file against the trusted issuer keys.
    pub fn verify(&self, bytes: &[u8]) -> AppResult<VerifiedLicense> {
        let trust = self.trust.read().map_err(AppError::internal)?;
        tallyman_license::verify(bytes, &trust).map_err(|e| match e {
            tallyman_license::LicenseError::UnknownIssuer { key_id } => {
                AppError::LicenseFailed(format!(
                    "The license file was signed by issuer key {key_id}, which this server does \
                     not trust. Add the issuer's public key to the trusted keys."
                ))
            }
            other => AppError::LicenseFailed(format!("The license file is not valid: {other}")),
        })
    }

    /// Installs an uploaded file: verify, check the fit, merge or replace, one write.
    pub async fn install(&self, target: &Target, file: &[u8], actor: &str) -> AppResult<Target> {
        let verified = self.verify(file)?;
        let (doc, merged) = self.installed(target, &verified)?;
        let detail = install_detail(&verified, merged);
        let written = self.save(target, doc, actor, "install", detail).await?;
        tracing::info!(target = %target.uid, kind = target.kind.as_str(), by = %actor, "license installed");
        Ok(written)
    }

    /// The target's document with `verified` installed: product fit, expiry,
    /// merge-or-replace (`true` when merged). Nothing is written.
    fn installed(
        &self,
        target: &Target,
        verified: &VerifiedLicense,
    ) -> AppResult<(SlotDocument, bool)> {
        let now = self.clock.now();
        let incoming = terms_from_claims(&verified.claims);
        let current = target.doc.terms(target.product());
        let install_target = InstallTarget {
            product: target.product(),
            managed_by_enterprise_manager: target
                .server
                .as_ref()
                .is_some_and(|s| crate::ServerReport::of(s).managed_by_enterprise_manager),
        };
        let plan = check_install(
            &install_target,
            &incoming,
            current.as_ref().filter(|_| !target.doc.community),
            now,
        )
        .map_err(|refusal| AppError::LicenseFailed(refusal.to_string()))?;
        let file = InstalledFile {
            license_id: verified.claims.license_id,
            armoured: verified.armoured.clone(),
            key_id: verified.key_id.clone(),
            claims: verified.claims.clone(),
            installed_at: now,
        };
        let mut doc = SlotDocument::clone(&target.doc);
        let merged = matches!(plan.action, InstallAction::Merge);
        if merged {
            // Keep the other section's file; the incoming one replaces any file of its own kind.
            let incoming_sections = &verified.claims.section_types;
            doc.files.retain(|f| {
                !f.claims
                    .section_types
                    .iter()
                    .any(|s| incoming_sections.contains(s))
            });
            doc.files.push(file);
        } else {
            doc.files = vec![file];
        }
        doc.community = false;
        doc.auto_update_enabled = plan.resulting.auto_update_enabled;
        doc.pending_delivery = target.kind != TargetKind::Console;
        Ok((doc, merged))
    }

    /// Switches automatic updates on or off. A refusal by the rules is
    /// [`AppError::LicenseFailed`]; asking for the current value changes nothing.
    pub async fn set_auto_update(
        &self,
        target: &Target,
        wanted: bool,
        actor: &str,
    ) -> AppResult<Option<Target>> {
        if wanted == target.doc.auto_update_enabled {
            return Ok(None);
        }
        decide_auto_update(target.product(), target.terms().as_ref(), wanted)
            .map_err(|refusal| AppError::LicenseFailed(refusal.to_string()))?;
        let mut doc = SlotDocument::clone(&target.doc);
        doc.auto_update_enabled = wanted;
        let detail = json!({"autoUpdateEnabled": wanted});
        self.save(target, doc, actor, "patch", detail)
            .await
            .map(Some)
    }

    /// Removes the installed license, or one section of a merged Backup & Replication license.
    pub async fn delete_license(
        &self,
        target: &Target,
        section: Option<DeleteSection>,
        actor: &str,
    ) -> AppResult<Target> {
        let terms = target.terms().filter(|_| !target.doc.community);
        let outcome = plan_delete(target.product(), terms.as_ref(), section)
            .map_err(|refusal| AppError::LicenseFailed(refusal.to_string()))?;
        let mut doc = SlotDocument::clone(&target.doc);
        let removed = section.unwrap_or_default();
        match &outcome {
            DeleteOutcome::PartRemoved { .. } => {
                let part = removed.section_type();
                doc.files
                    .retain(|f| !part.is_some_and(|s| f.claims.section_types.contains(&s)));
            }
            DeleteOutcome::DroppedToCommunity => {
                doc.files.clear();
                doc.community = true;
                doc.auto_update_enabled = false;
            }
            DeleteOutcome::Unlicensed => {
                doc.files.clear();
                doc.auto_update_enabled = false;
            }
        }
        doc.pending_delivery = true;
        let detail = json!({"sectionForDelete": removed.as_wire()});
        let written = self.save(target, doc, actor, "delete", detail).await?;
        tracing::info!(target = %target.uid, kind = target.kind.as_str(), by = %actor,
            section = removed.as_wire(), "license deleted");
        Ok(written)
    }

    /// One update attempt: asks the license portal for newer files of the installed licenses
    /// and installs them, each with one write that also records the attempt's outcome. Failures
    /// and "already up to date" are recorded too. Shared by the `update` operations and the
    /// auto-update job; answers the target as it is afterwards and whether a newer file was
    /// installed.
    pub async fn update(&self, target: &Target, actor: &str) -> AppResult<(Target, bool)> {
        let Some(portal) = self.portal.clone() else {
            return Err(AppError::NotConfigured(
                "No license portal is configured on this server; start it with --portal-url \
                 (or TALLYMAN_PORTAL_URL) to update licenses."
                    .into(),
            ));
        };
        if target.doc.files.is_empty() {
            return Err(AppError::LicenseFailed(
                "No license is installed, so there is nothing to update.".into(),
            ));
        }
        let mut newer = Vec::new();
        for file in &target.doc.files {
            match portal.latest(file.license_id, file.claims.iat).await {
                Ok(Some(text)) => newer.push(text),
                Ok(None) => {}
                Err(failure) => {
                    let error = match failure {
                        PortalFailure::Unreachable(why) => AppError::PortalUnavailable(format!(
                            "The license portal could not be reached ({why}); try again later."
                        )),
                        PortalFailure::UnknownLicense => AppError::LicenseFailed(format!(
                            "The license portal does not know license {}.",
                            file.license_id
                        )),
                        PortalFailure::Protocol(why) => AppError::PortalUnavailable(format!(
                            "The license portal answered unexpectedly: {why}"
                        )),
                    };
                    self.record_attempt(target, actor, "Error", &error.to_string())
                        .await;
                    return Err(error);
                }
            }
        }
        if newer.is_empty() {
            let recorded = self
                .record_attempt(target, actor, "Success", "The license is up to date.")
                .await;
            return Ok((recorded.unwrap_or_else(|| target.clone()), false));
        }
        // The caller's copy may be stale (a job picked it a while ago); write over what is
        // stored now.
        let mut current = self.refresh(target).await?;
        for text in newer {
            let verified = self.verify(text.as_bytes()).inspect_err(|e| {
                tracing::warn!(target = %target.uid, error = %e, "the portal sent a file this server cannot verify");
            })?;
            let (mut doc, merged) = self.installed(&current, &verified)?;
            doc.last_update = Some(LastUpdate {
                at: self.clock.now(),
                status: "Success".into(),
                message: "The license was updated from the license portal.".into(),
            });
            let detail = install_detail(&verified, merged);
            current = self.save(&current, doc, actor, "update", detail).await?;
        }
        Ok((current, true))
    }

    /// Records an update attempt's outcome. A failure to record is logged, not returned, so the
    /// caller sees the attempt's own result.
    async fn record_attempt(
        &self,
        target: &Target,
        actor: &str,
        status: &str,
        message: &str,
    ) -> Option<Target> {
        let result = async {
            let current = self.refresh(target).await?;
            let mut doc = SlotDocument::clone(&current.doc);
            doc.last_update = Some(LastUpdate {
                at: self.clock.now(),
                status: status.into(),
                message: message.into(),
            });
            let detail = json!({"status": status, "message": message});
            self.save(&current, doc, actor, "update-status", detail)
                .await
        }
        .await;
        result
            .inspect_err(|e| {
                tracing::warn!(target = %target.uid, error = %e, "cannot record the license update attempt");
            })
            .ok()
    }
}

fn install_detail(verified: &VerifiedLicense, merged: bool) -> Value {
    json!({
        "licenseId": verified.claims.license_id,
        "keyId": verified.key_id,
        "type": verified.claims.license_type.as_wire(),
        "expirationDate": verified.claims.expiration_date,
        "merged": merged,
    })
}
