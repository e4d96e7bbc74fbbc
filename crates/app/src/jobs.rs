//! Background jobs that `serve` runs. With several nodes on one PostgreSQL, each run takes a lease
//! in the database first, so a job runs on exactly one node at a time.
//!
//! - auto-update: for every license with auto-update on, ask the license portal for a newer
//!   file when the schedule in the licensing rules says an attempt is due.
//! - monthly reports: generate last month's reports once the month is over, and finalize
//!   reports still waiting for approval from the configured day of the month on.

use std::time::Duration as StdDuration;

use chrono::Duration;
use tallyman_domain::auto_update::{next_update, LastAttempt, NextUpdate, UpdateOutcome};
use tallyman_store::TargetKind;
use uuid::Uuid;

use crate::document::SlotDocument;
use crate::App;

/// How often the auto-update job looks for due licenses.
pub const AUTO_UPDATE_TICK: StdDuration = StdDuration::from_secs(15 * 60);

/// The outcome the schedule needs, from the recorded last attempt.
fn last_attempt(doc: &SlotDocument) -> Option<LastAttempt> {
    doc.last_update.as_ref().map(|u| LastAttempt {
        at: u.at,
        outcome: match u.status.as_str() {
            "Success" => UpdateOutcome::UpToDate,
            _ => UpdateOutcome::Unreachable,
        },
    })
}

/// One pass of the auto-update job; returns how many targets were updated.
pub async fn auto_update_once(app: &App, node: &str) -> anyhow::Result<usize> {
    let now = app.clock.now();
    if app.portal.is_none() {
        return Ok(0);
    }
    if !app
        .store
        .try_acquire_lease("auto-update", node, now, now + Duration::minutes(10))
        .await?
    {
        return Ok(0);
    }
    let mut updated = 0;
    for kind in TargetKind::ALL {
        for target in app.targets(kind).await? {
            if !target.doc.auto_update_enabled || target.doc.files.is_empty() {
                continue;
            }
            let Some(terms) = target.terms() else {
                continue;
            };
            match next_update(&terms, last_attempt(&target.doc).as_ref(), now) {
                NextUpdate::DueAt(at) if at <= now => {
                    match app.update(&target, "auto-update").await {
                        Ok((_, true)) => updated += 1,
                        Ok((_, false)) => {}
                        Err(e) => {
                            tracing::info!(target = %target.uid, error = %e, "automatic license update failed")
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(updated)
}

/// Runs the auto-update job every [`AUTO_UPDATE_TICK`] until the task is aborted.
pub fn spawn_auto_update(app: App) -> tokio::task::JoinHandle<()> {
    let node = format!("node-{}", Uuid::new_v4());
    tokio::spawn(async move {
        // The first pass waits one tick, so a restart does not trigger a burst of portal calls.
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + AUTO_UPDATE_TICK,
            AUTO_UPDATE_TICK,
        );
        loop {
            tick.tick().await;
            match auto_update_once(&app, &node).await {
                Ok(n) if n > 0 => {
                    tracing::info!(updated = n, "automatic license updates installed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "auto-update job failed"),
            }
        }
    })
}

/// How often the monthly report job checks whether there is work.
pub const MONTHLY_TICK: StdDuration = StdDuration::from_secs(60 * 60);

/// Runs the monthly report job at start-up and then every [`MONTHLY_TICK`].
pub fn spawn_monthly_reports(app: App, finalize_day: u32) -> tokio::task::JoinHandle<()> {
    let node = format!("node-{}", Uuid::new_v4());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(MONTHLY_TICK);
        loop {
            tick.tick().await;
            if let Err(e) =
                crate::reports::monthly_job(&app.store, app.clock.now(), finalize_day, &node).await
            {
                tracing::warn!(error = %e, "monthly report job failed");
            }
        }
    })
}
