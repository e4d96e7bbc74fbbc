//! The store contract, run against every backend this test run covers (SQLite always,
//! PostgreSQL with TALLYMAN_TEST_PG).

use std::sync::Arc;

use chrono::{Duration, DurationRound, Utc};
use futures::TryStreamExt;
use serde_json::json;
use tallyman_store::testing::{backends, TestDatabase};
use tallyman_store::*;
use uuid::Uuid;

async fn fresh(db: &TestDatabase) -> Arc<dyn Store> {
    let store = connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn now() -> chrono::DateTime<Utc> {
    // Microsecond precision is what both backends keep.
    Utc::now()
        .duration_trunc(Duration::microseconds(1))
        .unwrap()
}

async fn provider(store: &Arc<dyn Store>) -> Organization {
    let org = Organization {
        uid: Uuid::new_v4(),
        name: "My Company".into(),
        kind: OrganizationType::Provider,
        parent_uid: None,
        created_at: now(),
    };
    store.insert_organization(&org).await.unwrap();
    org
}

fn user(org: Uuid, name: &str) -> User {
    User {
        uid: Uuid::new_v4(),
        name: name.into(),
        role: Role::PortalAdministrator,
        organization_uid: org,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        enabled: true,
        created_at: now(),
    }
}

fn action(user: Uuid, id: Uuid, t: chrono::DateTime<Utc>) -> ActionRecord {
    ActionRecord {
        id,
        user_uid: user,
        action_name: "GetAboutInformation".into(),
        fingerprint: "f1".into(),
        status: ActionStatus::Running,
        request_body: None,
        query_parameters: json!({"limit": ["100"]}),
        response: None,
        created_at: t,
        finished_at: None,
        expires_at: t + Duration::hours(24),
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_concurrent_safe() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let a = connect(&db.url).await.unwrap();
        let b = connect(&db.url).await.unwrap();
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.unwrap();
        rb.unwrap();
        a.migrate().await.unwrap();
        let t = now();
        let first = a.installation(t).await.unwrap();
        let second = b.installation(t + Duration::days(1)).await.unwrap();
        assert_eq!(
            first, second,
            "{backend:?}: installation id is created once"
        );
    }
}

#[tokio::test]
async fn organizations_form_a_tree_with_one_provider() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        assert!(store.provider().await.unwrap().is_none());
        let p = provider(&store).await;
        let second = Organization {
            uid: Uuid::new_v4(),
            ..p.clone()
        };
        assert!(matches!(
            store.insert_organization(&second).await,
            Err(StoreError::Conflict(_))
        ));
        let reseller = Organization {
            uid: Uuid::new_v4(),
            name: "Reseller".into(),
            kind: OrganizationType::Reseller,
            parent_uid: Some(p.uid),
            created_at: now(),
        };
        store.insert_organization(&reseller).await.unwrap();
        let orphan = Organization {
            uid: Uuid::new_v4(),
            name: "Orphan".into(),
            kind: OrganizationType::Company,
            parent_uid: Some(Uuid::new_v4()),
            created_at: now(),
        };
        assert!(matches!(
            store.insert_organization(&orphan).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(store.provider().await.unwrap(), Some(p.clone()));
        assert_eq!(
            store.organization(reseller.uid).await.unwrap(),
            Some(reseller)
        );
        assert_eq!(store.organizations().await.unwrap().len(), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn user_names_are_unique_ignoring_case() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let p = provider(&store).await;
        let alice = user(p.uid, "Alice");
        store.insert_user(&alice).await.unwrap();
        assert!(matches!(
            store.insert_user(&user(p.uid, "ALICE")).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            store.user_by_name("alice").await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(store.user(alice.uid).await.unwrap(), Some(alice.clone()));
        store
            .set_user_password(alice.uid, "new-hash")
            .await
            .unwrap();
        assert_eq!(
            store.user(alice.uid).await.unwrap().unwrap().password_hash,
            "new-hash"
        );
        assert!(matches!(
            store.set_user_password(Uuid::new_v4(), "x").await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.insert_user(&user(Uuid::new_v4(), "bob")).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn tokens_are_found_by_digest_revoked_and_purged() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let p = provider(&store).await;
        let u = user(p.uid, "u");
        store.insert_user(&u).await.unwrap();
        let t = now();
        let live = TokenRecord {
            digest: "a".repeat(64),
            user_uid: u.uid,
            kind: TokenKind::Access,
            read_only: true,
            issued_at: t,
            expires_at: t + Duration::hours(1),
        };
        let old = TokenRecord {
            digest: "b".repeat(64),
            kind: TokenKind::Refresh,
            read_only: false,
            expires_at: t - Duration::seconds(1),
            ..live.clone()
        };
        store.insert_token(&live).await.unwrap();
        store.insert_token(&old).await.unwrap();
        assert_eq!(store.token(&live.digest).await.unwrap(), Some(live.clone()));
        assert_eq!(store.purge_expired_tokens(t).await.unwrap(), 1);
        assert_eq!(store.token(&old.digest).await.unwrap(), None);
        assert_eq!(store.revoke_user_tokens(u.uid).await.unwrap(), 1);
        assert_eq!(
            store.token(&live.digest).await.unwrap(),
            None,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn login_attempts_are_reserved_within_the_window() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let t = now();
        let window = Duration::minutes(15);
        let early = t - Duration::hours(1);
        let first = store
            .reserve_login_attempt("k", early, early - window)
            .await
            .unwrap();
        assert_eq!((first.count, first.window_start), (1, early), "{backend:?}");
        // That window is over by `t`: the count restarts.
        let a = store
            .reserve_login_attempt("k", t, t - window)
            .await
            .unwrap();
        assert_eq!((a.count, a.window_start), (1, t), "{backend:?}");
        let later = t + Duration::seconds(5);
        let b = store
            .reserve_login_attempt("k", later, later - window)
            .await
            .unwrap();
        assert_eq!((b.count, b.window_start), (2, t), "{backend:?}");
        assert_eq!(
            store
                .reserve_login_attempt("other", t, t - window)
                .await
                .unwrap()
                .count,
            1
        );
        store.clear_login_failures("k").await.unwrap();
        assert_eq!(
            store
                .reserve_login_attempt("k", later, later - window)
                .await
                .unwrap()
                .count,
            1
        );
        assert_eq!(
            store
                .purge_login_failures(t + Duration::seconds(1))
                .await
                .unwrap(),
            1,
            "only the counter of `other` started by then"
        );
    }
}

#[tokio::test]
async fn parallel_login_attempts_are_counted_one_by_one() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let t = now();
        let since = t - Duration::minutes(15);
        let attempts = (0..40).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.reserve_login_attempt("k", t, since).await })
        });
        let mut counts: Vec<u32> = Vec::new();
        for a in attempts {
            counts.push(a.await.unwrap().unwrap().count);
        }
        counts.sort_unstable();
        assert_eq!(counts, (1..=40).collect::<Vec<u32>>(), "{backend:?}");
    }
}

#[tokio::test]
async fn the_write_probe_succeeds_on_a_healthy_store() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        store.probe_write(now()).await.unwrap();
        store.probe_write(now()).await.unwrap();
    }
}

#[tokio::test]
async fn actions_are_recorded_once_finished_cancelled_and_expire() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let t = now();
        let user_a = Uuid::new_v4();
        let user_b = Uuid::new_v4();
        let id = Uuid::new_v4();
        let first = action(user_a, id, t);
        assert_eq!(
            store.begin_action(&first, t).await.unwrap(),
            BeginAction::Started
        );
        // Same id, same user: the first record comes back, whatever the second says.
        let again = ActionRecord {
            fingerprint: "f2".into(),
            ..first.clone()
        };
        assert_eq!(
            store.begin_action(&again, t).await.unwrap(),
            BeginAction::Exists(first.clone())
        );
        // Same id for another user is another record.
        assert_eq!(
            store.begin_action(&action(user_b, id, t), t).await.unwrap(),
            BeginAction::Started
        );
        assert!(store
            .action(user_b, Uuid::new_v4(), t)
            .await
            .unwrap()
            .is_none());

        let response = StoredResponse {
            status: 200,
            content_type: Some("application/json".into()),
            body: br#"{"data":{}}"#.to_vec(),
        };
        let done_at = t + Duration::seconds(1);
        let expires = done_at + Duration::minutes(5);
        assert!(store
            .finish_action(
                user_a,
                id,
                ActionStatus::Succeed,
                Some(&response),
                done_at,
                expires
            )
            .await
            .unwrap());
        // Finishing twice changes nothing.
        assert!(!store
            .finish_action(
                user_a,
                id,
                ActionStatus::Failed,
                Some(&response),
                done_at,
                expires
            )
            .await
            .unwrap());
        let stored = store.action(user_a, id, t).await.unwrap().unwrap();
        assert_eq!(stored.status, ActionStatus::Succeed);
        assert_eq!(stored.response, Some(response.clone()));
        assert_eq!(stored.finished_at, Some(done_at));

        // Cancelling only works while running.
        assert!(!store.cancel_action(user_a, id, t, expires).await.unwrap());
        assert!(store.cancel_action(user_b, id, t, expires).await.unwrap());
        let cancelled = store.action(user_b, id, t).await.unwrap().unwrap();
        assert_eq!(cancelled.status, ActionStatus::Canceled);
        assert!(!store
            .finish_action(
                user_b,
                id,
                ActionStatus::Succeed,
                Some(&response),
                done_at,
                expires
            )
            .await
            .unwrap());

        assert!(store
            .attach_action_request_data(user_a, id, Some("body"), &json!({"q": ["1"]}))
            .await
            .unwrap());
        let attached = store.action(user_a, id, t).await.unwrap().unwrap();
        assert_eq!(attached.request_body.as_deref(), Some("body"));
        assert_eq!(attached.query_parameters, json!({"q": ["1"]}));

        assert!(store.clear_action_result(user_a, id).await.unwrap());
        assert_eq!(
            store.action(user_a, id, t).await.unwrap().unwrap().response,
            None
        );
        assert_eq!(store.actions(user_a, t).await.unwrap().len(), 1);

        // After expiry the record is invisible and a new request may reuse the id.
        let later = expires + Duration::seconds(1);
        assert!(store.action(user_a, id, later).await.unwrap().is_none());
        assert_eq!(
            store
                .begin_action(&action(user_a, id, later), later)
                .await
                .unwrap(),
            BeginAction::Started,
            "{backend:?}"
        );
        assert!(store.purge_expired_actions(later).await.unwrap() >= 1);
    }
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let t = now();
        let until = t + Duration::minutes(5);
        assert!(store
            .try_acquire_lease("job", "node-a", t, until)
            .await
            .unwrap());
        assert!(
            !store
                .try_acquire_lease("job", "node-b", t, until)
                .await
                .unwrap(),
            "{backend:?}"
        );
        // The holder may renew.
        assert!(store
            .try_acquire_lease("job", "node-a", t, until + Duration::minutes(5))
            .await
            .unwrap());
        // After it lapses another node takes over.
        let later = until + Duration::minutes(6);
        assert!(store
            .try_acquire_lease("job", "node-b", later, later + Duration::minutes(5))
            .await
            .unwrap());
        assert!(!store
            .try_acquire_lease("job", "node-a", later, later + Duration::minutes(5))
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn license_slots_are_versioned_and_keep_history() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let p = provider(&store).await;
        let server = ManagedServer {
            uid: Uuid::new_v4(),
            kind: TargetKind::BackupServer,
            name: "vbr".into(),
            organization_uid: p.uid,
            agent_uid: None,
            created_at: now(),
            last_seen_at: None,
            reported: json!(null),
        };
        store.insert_server(&server).await.unwrap();
        assert_eq!(
            store.servers(Some(TargetKind::BackupServer)).await.unwrap(),
            vec![server.clone()]
        );
        assert!(store
            .servers(Some(TargetKind::VOneServer))
            .await
            .unwrap()
            .is_empty());
        store
            .record_server_report(server.uid, &json!({"usedUnits": 3.5}), now())
            .await
            .unwrap();
        let seen = store.server(server.uid).await.unwrap().unwrap();
        assert_eq!(seen.reported, json!({"usedUnits": 3.5}));
        assert!(seen.last_seen_at.is_some());

        let slot = LicenseSlot {
            target_uid: server.uid,
            kind: TargetKind::BackupServer,
            document: json!({"files": []}),
            revision: 0,
            updated_at: now(),
        };
        let event = LicenseEvent {
            target_uid: server.uid,
            at: now(),
            actor: "admin".into(),
            action: "install".into(),
            detail: json!({"n": 1}),
        };
        assert_eq!(
            store.save_license_slot(&slot, None, &event).await.unwrap(),
            1
        );
        // A second "first write" and a stale revision both lose.
        assert!(matches!(
            store.save_license_slot(&slot, None, &event).await,
            Err(StoreError::Conflict(_))
        ));
        let v2 = LicenseSlot {
            document: json!({"files": [1]}),
            ..slot.clone()
        };
        assert_eq!(
            store.save_license_slot(&v2, Some(1), &event).await.unwrap(),
            2
        );
        assert!(matches!(
            store.save_license_slot(&v2, Some(1), &event).await,
            Err(StoreError::Conflict(_))
        ));
        let stored = store.license_slot(server.uid).await.unwrap().unwrap();
        assert_eq!(
            (stored.revision, stored.document),
            (2, json!({"files": [1]}))
        );
        assert_eq!(
            store
                .license_slots(TargetKind::BackupServer)
                .await
                .unwrap()
                .len(),
            1
        );
        // Only the two successful writes are in the history.
        assert_eq!(
            store.license_events(server.uid).await.unwrap().len(),
            2,
            "{backend:?}"
        );
    }
}

fn sample(server: Uuid, org: Uuid, at: chrono::DateTime<Utc>, used: i64, new: i64) -> UsageSample {
    UsageSample {
        server_uid: server,
        organization_uid: org,
        workload_type: "VBR_VM".into(),
        platform: "vSphere".into(),
        sampled_at: at,
        used,
        new,
        rental: 0,
    }
}

#[tokio::test]
async fn usage_samples_are_idempotent_and_aggregate_per_month() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let (server, org) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = now() - Duration::days(3);
        let samples = vec![
            sample(server, org, t0, 10, 2),
            sample(server, org, t0 + Duration::days(1), 14, 1),
            sample(server, org, t0 + Duration::days(2), 12, 0),
        ];
        assert_eq!(store.insert_usage_samples(&samples).await.unwrap(), 3);
        // Resending changes nothing.
        assert_eq!(store.insert_usage_samples(&samples).await.unwrap(), 0);
        // The same instant with other counts is refused and nothing of the batch is stored.
        let clash = vec![
            sample(server, org, t0 + Duration::days(10), 99, 0),
            sample(server, org, t0, 11, 2),
        ];
        assert!(matches!(
            store.insert_usage_samples(&clash).await,
            Err(StoreError::Conflict(_))
        ));
        let range = (t0 - Duration::days(1), t0 + Duration::days(30));
        let max = store.usage_maxima(range.0, range.1).await.unwrap();
        let streamed: Vec<UsageAggregate> = store
            .usage_maxima_stream(range.0, range.1)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(streamed, max, "{backend:?}");
        assert_eq!(max.len(), 1);
        assert_eq!(
            (max[0].used, max[0].new),
            (14, 2),
            "{backend:?}: high-water marks"
        );
        let latest = store.usage_latest(range.0, range.1).await.unwrap();
        assert_eq!(
            (latest[0].used, latest[0].new),
            (12, 0),
            "{backend:?}: latest sample"
        );
        assert!(store
            .usage_maxima(t0 + Duration::days(5), t0 + Duration::days(6))
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn weights_seed_once_and_can_be_changed() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let row = WeightRow {
            product: "VB365".into(),
            edition: "*".into(),
            workload_type: "VB365_User".into(),
            weight: 1.5,
        };
        assert_eq!(store.seed_weights(&[row.clone()]).await.unwrap(), 1);
        store
            .set_weight(&WeightRow {
                weight: 2.0,
                ..row.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            store.seed_weights(&[row.clone()]).await.unwrap(),
            0,
            "seeding keeps edits"
        );
        assert_eq!(store.weights().await.unwrap()[0].weight, 2.0, "{backend:?}");
    }
}

#[tokio::test]
async fn approved_reports_never_change() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let owner = Uuid::new_v4();
        let id = store.report_id_for(owner, "2026-10").await.unwrap();
        assert_eq!(store.report_id_for(owner, "2026-10").await.unwrap(), id);
        assert_ne!(store.report_id_for(owner, "2026-09").await.unwrap(), id);
        let record = ReportRecord {
            id,
            owner_uid: owner,
            month: "2026-10".into(),
            status: ReportStatus::ApprovalRequired,
            generated_at: now(),
            approved_at: None,
            document: json!({"v": 1}),
            lines: Some("[]".into()),
        };
        assert_eq!(
            store.write_report(&record).await.unwrap(),
            ReportWrite::Created(id)
        );
        let v2 = ReportRecord {
            document: json!({"v": 2}),
            ..record.clone()
        };
        assert_eq!(
            store.write_report(&v2).await.unwrap(),
            ReportWrite::Replaced(id)
        );
        assert!(store
            .transition_report(
                id,
                ReportStatus::ApprovalRequired,
                ReportStatus::Approved,
                &json!({"v": 2, "final": true}),
                now()
            )
            .await
            .unwrap());
        assert!(!store
            .transition_report(
                id,
                ReportStatus::ApprovalRequired,
                ReportStatus::Approved,
                &json!({}),
                now()
            )
            .await
            .unwrap());
        let v3 = ReportRecord {
            document: json!({"v": 3}),
            ..record.clone()
        };
        assert_eq!(
            store.write_report(&v3).await.unwrap(),
            ReportWrite::KeptApproved(id)
        );
        let stored = store.report(id).await.unwrap().unwrap();
        assert_eq!(stored.status, ReportStatus::Approved);
        assert_eq!(
            stored.document,
            json!({"v": 2, "final": true}),
            "{backend:?}"
        );
        assert!(stored.approved_at.is_some());
        assert_eq!(store.reports().await.unwrap().len(), 1);
        assert_eq!(store.report_lines(id).await.unwrap().as_deref(), Some("[]"));

        assert_eq!(store.report_auto_approve(owner).await.unwrap(), None);
        store.set_report_auto_approve(owner, true).await.unwrap();
        assert_eq!(store.report_auto_approve(owner).await.unwrap(), Some(true));
    }
}

/// A connection that goes back to the pool inside a transaction (what a COMMIT failing on a
/// full disk leaves behind) is closed, not reused: otherwise it keeps the write lock, other
/// connections report "database is locked", and its later writes never commit.
#[tokio::test]
async fn a_connection_left_inside_a_transaction_is_not_reused() {
    use sqlx::Row;
    let db = TestDatabase::create(testing::Backend::Sqlite).await;
    let store = SqliteStore::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    {
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO health_probe (id, probed_at) VALUES (7, 7)")
            .execute(&mut *conn)
            .await
            .unwrap();
        // Dropped without COMMIT or ROLLBACK, holding the write lock.
    }
    let t = now();
    tokio::time::timeout(std::time::Duration::from_secs(5), store.probe_write(t))
        .await
        .expect("a write waited for a lock held by a leaked transaction")
        .unwrap();
    // Another process sees the probe committed, and nothing of the abandoned transaction.
    let other = SqliteStore::connect(&db.url).await.unwrap();
    let rows = sqlx::query("SELECT id, probed_at FROM health_probe ORDER BY id")
        .fetch_all(other.pool())
        .await
        .unwrap();
    let seen: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r.get("id"), r.get("probed_at")))
        .collect();
    assert_eq!(seen, vec![(1, t.timestamp_micros())]);
}

#[tokio::test]
async fn inventory_changes_name_each_changed_target_until_pruned() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let p = provider(&store).await;
        let start = store.inventory_generation().await.unwrap();
        let server = |name: &str| ManagedServer {
            uid: Uuid::new_v4(),
            kind: TargetKind::BackupServer,
            name: name.into(),
            organization_uid: p.uid,
            agent_uid: None,
            created_at: now(),
            last_seen_at: None,
            reported: json!(null),
        };
        let (a, b, c) = (server("a"), server("b"), server("c"));
        store.insert_servers(&[a.clone(), b.clone()]).await.unwrap();
        let after_insert = store.inventory_generation().await.unwrap();
        store.insert_server(&c).await.unwrap();
        store
            .record_server_report(a.uid, &json!({"usedUnits": 3}), now())
            .await
            .unwrap();
        let slot = LicenseSlot {
            target_uid: c.uid,
            kind: TargetKind::BackupServer,
            document: json!({"files": []}),
            revision: 0,
            updated_at: now(),
        };
        let event = LicenseEvent {
            target_uid: c.uid,
            at: now(),
            actor: "admin".into(),
            action: "install".into(),
            detail: json!({}),
        };
        store.save_license_slot(&slot, None, &event).await.unwrap();
        let current = store.inventory_generation().await.unwrap();
        assert_eq!(current, start + 4, "{backend:?}: one generation per change");

        let sorted = |mut v: Vec<Uuid>| {
            v.sort();
            v
        };
        let all = store.inventory_changes(start).await.unwrap();
        assert_eq!(all.generation, current);
        assert_eq!(
            sorted(all.targets.unwrap()),
            sorted(vec![a.uid, b.uid, c.uid]),
            "{backend:?}"
        );
        let later = store.inventory_changes(after_insert).await.unwrap();
        assert_eq!(
            sorted(later.targets.unwrap()),
            sorted(vec![a.uid, c.uid]),
            "{backend:?}"
        );
        let none = store.inventory_changes(current).await.unwrap();
        assert_eq!(none.targets, Some(vec![]), "{backend:?}");

        // Pruned past the caller's generation: the caller must rebuild.
        assert!(store.prune_inventory_changes(1).await.unwrap() > 0);
        let pruned = store.inventory_changes(start).await.unwrap();
        assert_eq!(pruned.generation, current);
        assert_eq!(pruned.targets, None, "{backend:?}");
        let recent = store.inventory_changes(current - 1).await.unwrap();
        assert_eq!(recent.targets, Some(vec![c.uid]), "{backend:?}");

        let found = store
            .servers_by_uid(&[c.uid, a.uid, Uuid::new_v4()])
            .await
            .unwrap();
        assert_eq!(
            sorted(found.iter().map(|s| s.uid).collect()),
            sorted(vec![a.uid, c.uid])
        );
        let slots = store.license_slots_by_uid(&[a.uid, c.uid]).await.unwrap();
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].target_uid, c.uid);

        // Keyset pages walk every server of the kind once, in uid order, with its slot.
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .targets_page(TargetKind::BackupServer, after, 2)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            after = page.last().map(|(s, _)| s.uid);
            walked.extend(page);
        }
        let order: Vec<Uuid> = walked.iter().map(|(s, _)| s.uid).collect();
        assert_eq!(order, sorted(vec![a.uid, b.uid, c.uid]), "{backend:?}");
        for (server, slot) in &walked {
            assert_eq!(slot.is_some(), server.uid == c.uid, "{backend:?}");
        }
        assert_eq!(
            walked
                .iter()
                .find(|(s, _)| s.uid == a.uid)
                .unwrap()
                .0
                .reported,
            json!({"usedUnits": 3})
        );
    }
}

fn file(license_id: Uuid, sections: serde_json::Value, company: &str) -> serde_json::Value {
    json!({
        "licenseId": license_id,
        "armoured": "-----BEGIN VEEAM LICENSE-----\nabc\n-----END VEEAM LICENSE-----\n",
        "keyId": "k1",
        "claims": {
            "licenseId": license_id,
            "supportId": "0123456",
            "edition": "Enterprise Plus",
            "company": company,
            "sectionTypes": sections,
        },
        "installedAt": "2026-10-01T00:00:00Z",
    })
}

#[tokio::test]
async fn report_servers_read_only_what_reports_need() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let org = provider(&store).await;
        let server = |name: &str, reported: serde_json::Value| ManagedServer {
            uid: Uuid::new_v4(),
            kind: TargetKind::BackupServer,
            name: name.into(),
            organization_uid: org.uid,
            agent_uid: None,
            created_at: now(),
            last_seen_at: None,
            reported,
        };
        let merged = server(
            "merged",
            json!({"installationId": "inst-1", "productVersion": "11.0.1", "usedUnits": 3.0}),
        );
        let single = server("single", serde_json::Value::Null);
        let odd = server("odd", json!({"installationId": 5}));
        let bare = server("bare", json!({}));
        store
            .insert_servers(&[merged.clone(), single.clone(), odd.clone(), bare.clone()])
            .await
            .unwrap();
        let (socket, instance, only) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let slots = [
            (
                merged.uid,
                json!({"files": [file(socket, json!(["Socket"]), "Socket Co"),
                                 file(instance, json!(["Instance"]), "Instance Co")],
                       "autoUpdateEnabled": true}),
            ),
            (
                single.uid,
                json!({"files": [file(only, json!(null), "Only Co")]}),
            ),
            (odd.uid, json!({"files": [1, "text"]})),
        ];
        for (target, document) in slots {
            let slot = LicenseSlot {
                target_uid: target,
                kind: TargetKind::BackupServer,
                document,
                revision: 0,
                updated_at: now(),
            };
            let event = LicenseEvent {
                target_uid: target,
                at: now(),
                actor: "test".into(),
                action: "Install".into(),
                detail: json!({}),
            };
            store.save_license_slot(&slot, None, &event).await.unwrap();
        }
        let rows = store.report_servers().await.unwrap();
        let mut uids: Vec<Uuid> = [&merged, &single, &odd, &bare]
            .iter()
            .map(|s| s.uid)
            .collect();
        uids.sort();
        assert_eq!(
            rows.iter().map(|r| r.uid).collect::<Vec<_>>(),
            uids,
            "{backend:?}"
        );
        let row = |uid: Uuid| rows.iter().find(|r| r.uid == uid).unwrap().clone();
        let m = row(merged.uid);
        assert_eq!(
            (m.kind, m.name.as_str(), m.organization_uid, m.created_at),
            (
                TargetKind::BackupServer,
                "merged",
                org.uid,
                merged.created_at
            )
        );
        assert_eq!(m.installation_id.as_deref(), Some("inst-1"));
        assert_eq!(m.product_version.as_deref(), Some("11.0.1"));
        assert_eq!(
            m.license,
            Some(ReportLicense {
                license_id: instance,
                support_id: "0123456".into(),
                edition: "Enterprise Plus".into(),
                company: "Instance Co".into(),
            }),
            "{backend:?}: the instance file is the primary one"
        );
        let s = row(single.uid);
        assert_eq!((s.installation_id, s.product_version), (None, None));
        assert_eq!(
            s.license.map(|l| (l.license_id, l.company)),
            Some((only, "Only Co".into()))
        );
        let o = row(odd.uid);
        assert_eq!((o.installation_id, o.license), (None, None), "{backend:?}");
        assert_eq!(row(bare.uid).license, None);
    }
}

#[tokio::test]
async fn staged_report_lines_belong_to_the_written_report() {
    for backend in backends() {
        let db = TestDatabase::create(backend).await;
        let store = fresh(&db).await;
        let owner = Uuid::new_v4();
        let id = store.report_id_for(owner, "2026-10").await.unwrap();
        let record = ReportRecord {
            id,
            owner_uid: owner,
            month: "2026-10".into(),
            status: ReportStatus::ApprovalRequired,
            generated_at: now(),
            approved_at: None,
            document: json!({"v": 1}),
            lines: None,
        };
        let chunk = |id, batch, seq| {
            let store = store.clone();
            async move { store.report_line_chunk(id, batch, seq).await.unwrap() }
        };
        store.stage_report_lines(id, 1, 0, b"first").await.unwrap();
        store.stage_report_lines(id, 1, 1, b"second").await.unwrap();
        assert_eq!(store.report_line_chunks(id).await.unwrap(), None);
        assert_eq!(
            store
                .write_report_staged(&record, 1, &[1, 0])
                .await
                .unwrap(),
            ReportWrite::Created(id)
        );
        assert_eq!(
            store.report_line_chunks(id).await.unwrap(),
            Some(ReportLineChunks {
                batch: 1,
                order: vec![1, 0]
            })
        );
        assert_eq!(chunk(id, 1, 1).await.as_deref(), Some(&b"second"[..]));

        // Regenerating replaces the lines; an interrupted generation's chunks go too.
        store.stage_report_lines(id, 9, 0, b"orphan").await.unwrap();
        store.stage_report_lines(id, 2, 0, b"again").await.unwrap();
        assert_eq!(
            store.write_report_staged(&record, 2, &[0]).await.unwrap(),
            ReportWrite::Replaced(id)
        );
        assert_eq!(chunk(id, 1, 0).await, None, "{backend:?}");
        assert_eq!(chunk(id, 9, 0).await, None, "{backend:?}");
        assert_eq!(chunk(id, 2, 0).await.as_deref(), Some(&b"again"[..]));

        // An approved report keeps its lines.
        assert!(store
            .transition_report(
                id,
                ReportStatus::ApprovalRequired,
                ReportStatus::Approved,
                &json!({"v": 1}),
                now()
            )
            .await
            .unwrap());
        store.stage_report_lines(id, 3, 0, b"late").await.unwrap();
        assert_eq!(
            store.write_report_staged(&record, 3, &[0]).await.unwrap(),
            ReportWrite::KeptApproved(id)
        );
        assert_eq!(chunk(id, 3, 0).await, None, "{backend:?}");
        assert_eq!(
            store.report_line_chunks(id).await.unwrap(),
            Some(ReportLineChunks {
                batch: 2,
                order: vec![0]
            })
        );

        // A report written with JSON lines has no chunks.
        let other = store.report_id_for(owner, "2026-11").await.unwrap();
        let november = ReportRecord {
            id: other,
            month: "2026-11".into(),
            ..record.clone()
        };
        store.stage_report_lines(other, 4, 0, b"x").await.unwrap();
        store.write_report_staged(&november, 4, &[0]).await.unwrap();
        let json_lines = ReportRecord {
            lines: Some("[]".into()),
            ..november.clone()
        };
        assert_eq!(
            store.write_report(&json_lines).await.unwrap(),
            ReportWrite::Replaced(other)
        );
        assert_eq!(store.report_line_chunks(other).await.unwrap(), None);
        assert_eq!(chunk(other, 4, 0).await, None);
        assert_eq!(
            store.report_lines(other).await.unwrap().as_deref(),
            Some("[]")
        );
        // No chunks at all is an empty list, not JSON lines.
        assert_eq!(
            store.write_report_staged(&november, 5, &[]).await.unwrap(),
            ReportWrite::Replaced(other)
        );
        assert_eq!(
            store.report_line_chunks(other).await.unwrap(),
            Some(ReportLineChunks {
                batch: 5,
                order: vec![]
            })
        );
    }
}
