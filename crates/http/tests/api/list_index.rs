//! License lists are answered from an index kept current by single-target updates. Whatever
//! happens in between (installs and deletes through the API, writes straight into the store as
//! another node would make them, agents' reports, time passing over expiry and grace
//! boundaries), every list answer must equal the query engine's answer over every target
//! rendered afresh: the oracle is `CollectionQuery::apply_ref` over `render_json` of each
//! target, in the store's order. Random but reproducible (fixed seeds), on every backend.

use std::sync::Arc;

use chrono::Duration;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tallyman_app::{App, Scope};
use tallyman_domain::{LicenseType, Product};
use tallyman_http::licensing::resources::{render_json, BackupServerLicense};
use tallyman_http::query::Resource;
use tallyman_http::Clock;
use tallyman_query::{Allowed, CollectionQuery, QueryOptions};
use tallyman_store::testing::backends;
use tallyman_store::{OrganizationType, Role, TargetKind};

use crate::common::*;
use crate::licensing::{add_server, claims_expiring, put_file, store_license, user_token, Issuer};

const LIST: &str = "/licensing/backupServers";
const COMPANIES: [&str; 4] = ["Acme Ltd", "acme labs", "Bravo GmbH", "Çedille SA"];
const TYPES: [LicenseType; 4] = [
    LicenseType::Rental,
    LicenseType::Subscription,
    LicenseType::Perpetual,
    LicenseType::Evaluation,
];

/// Perpetual licenses carry no expiration date (support still ends).
fn well_formed(claims: &mut tallyman_license::LicenseClaims) {
    if claims.license_type == LicenseType::Perpetual {
        claims.expiration_date = None;
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// One random filter leaf over the backup server resource.
fn leaf(rng: &mut StdRng, now: chrono::DateTime<chrono::Utc>) -> Value {
    match rng.gen_range(0..9) {
        0 => json!({"property": "status", "operation": pick(rng, &["equals", "notEquals"]),
                    "value": pick(rng, &["Valid", "Warning", "Expired", "Unlicensed"])}),
        1 => json!({"property": "type", "operation": "in",
                    "value": [pick(rng, &["Rental", "Subscription"]), pick(rng, &["Perpetual", "Evaluation"])]}),
        2 => json!({"property": "company", "operation": pick(rng, &["contains", "equals"]),
                    "value": pick(rng, &["Ac", "acme", "GmbH", "Ç"]),
                    "collation": pick(rng, &["ordinal", "ignorecase"])}),
        3 => {
            json!({"property": "units", "operation": pick(rng, &["greaterThan", "lessThanOrEqual"]),
                    "value": rng.gen_range(0..200)})
        }
        4 => {
            json!({"property": "expirationDate", "operation": pick(rng, &["lessThan", "greaterThanOrEqual"]),
                    "value": (now + Duration::days(rng.gen_range(-60..300))).to_rfc3339()})
        }
        5 => json!({"property": "usedUnits", "operation": pick(rng, &["equals", "greaterThan"]),
                    "value": rng.gen_range(0..12)}),
        6 => {
            json!({"property": "autoUpdateEnabled", "operation": "equals", "value": rng.gen_bool(0.5)})
        }
        7 => json!({"property": "sectionTypes", "operation": "contains", "value": "Instance"}),
        _ => json!({"property": "expirationDate", "operation": "equals", "value": null}),
    }
}

fn filter(rng: &mut StdRng, now: chrono::DateTime<chrono::Utc>) -> Option<Value> {
    match rng.gen_range(0..5) {
        0 => None,
        1 | 2 => Some(json!([leaf(rng, now)])),
        3 => Some(json!([leaf(rng, now), leaf(rng, now)])),
        _ => Some(json!([{"operation": pick(rng, &["or", "and"]),
                          "items": [leaf(rng, now), {"operation": "not", "items": [leaf(rng, now)]}]}])),
    }
}

fn sort(rng: &mut StdRng) -> Option<Value> {
    let keys = [
        "expirationDate",
        "company",
        "units",
        "status",
        "usedUnits",
        "type",
        "backupServerUid",
        "supportExpirationDate",
    ];
    let n = rng.gen_range(0..3);
    if n == 0 {
        return None;
    }
    Some(Value::Array(
        (0..n)
            .map(|_| {
                let mut key = json!({"property": pick(rng, &keys),
                                     "direction": pick(rng, &["ascending", "descending"])});
                if rng.gen_bool(0.3) {
                    key["collation"] =
                        json!(pick(rng, &["ordinal", "ignorecase", "lexicographic"]));
                }
                key
            })
            .collect(),
    ))
}

fn random_query(rng: &mut StdRng, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut parts = vec![
        format!("limit={}", rng.gen_range(1..60)),
        format!("offset={}", rng.gen_range(0..70)),
    ];
    if let Some(f) = filter(rng, now) {
        parts.push(format!("filter={}", enc(&f.to_string())));
    }
    if let Some(s) = sort(rng) {
        parts.push(format!("sort={}", enc(&s.to_string())));
    }
    if rng.gen_bool(0.15) {
        parts.push(format!(
            "select={}",
            enc(r#"[{"propertyPath":"backupServerUid"},{"propertyPath":"status"}]"#)
        ));
    }
    parts.join("&")
}

/// What the list must answer: every target rendered now, filtered by the caller's scope, run
/// through the query engine.
async fn oracle(app: &TestApp, scope: &Scope, raw: &str) -> Value {
    let core = App::new(app.store.clone(), Arc::new(app.clock.clone()));
    let now = app.clock.now();
    let docs: Vec<Value> = core
        .targets(TargetKind::BackupServer)
        .await
        .unwrap()
        .iter()
        .filter(|t| scope.contains(t.organization().unwrap_or_default()))
        .map(|t| render_json(t, now))
        .collect();
    let query = CollectionQuery::from_query_string(
        Some(raw),
        BackupServerLicense::schema(),
        &QueryOptions {
            default_limit: 100,
            max_limit: 500,
        },
        Allowed::ALL,
    )
    .unwrap();
    let page = query.apply_ref(docs.iter());
    json!({
        "meta": {"pagingInfo": {"total": page.total, "count": page.items.len(), "offset": page.offset}},
        "data": page.items,
    })
}

#[tokio::test]
async fn indexed_lists_answer_like_the_query_engine_through_writes_and_time() {
    for backend in backends() {
        let issuer = Issuer::new();
        let app =
            TestApp::spawn_licensing(backend, Default::default(), issuer.key.public(), None).await;
        let mut admin = app.admin_token().await;
        let reseller = app
            .add_org("Reseller", OrganizationType::Reseller, app.provider.uid)
            .await;
        let company = app
            .add_org("Company", OrganizationType::Company, reseller.uid)
            .await;
        let mut reseller_token = user_token(
            &app,
            "reseller-admin",
            Role::ServiceProviderAdministrator,
            reseller.uid,
        )
        .await;
        let reseller_scope = Scope::Organizations([reseller.uid, company.uid].into());

        let mut rng = StdRng::seed_from_u64(0x7a11_0001);
        let now = app.clock.now();
        let mut servers = Vec::new();
        for i in 0..90 {
            let org = [app.provider.uid, company.uid, reseller.uid][i % 3];
            let uid = add_server(&app, TargetKind::BackupServer, org, &format!("vbr-{i}")).await;
            servers.push(uid);
            if i % 9 == 8 {
                continue; // never licensed
            }
            let mut claims = claims_expiring(
                Product::BackupAndReplication,
                *pick(&mut rng, &TYPES),
                now - Duration::days(rng.gen_range(50..400)),
                now + Duration::days(rng.gen_range(-45..400)) + Duration::minutes(i as i64),
            );
            claims.company = pick(&mut rng, &COMPANIES).to_string();
            if claims.units.is_some() {
                claims.units = Some(rng.gen_range(1..20) as f64 * 10.0);
            }
            well_formed(&mut claims);
            store_license(&app, TargetKind::BackupServer, uid, &issuer, &claims).await;
        }

        for round in 0..40 {
            // Something changes between most reads.
            match rng.gen_range(0..6) {
                0 => {
                    // An install through the API.
                    let uid = *pick(&mut rng, &servers);
                    let mut claims = claims_expiring(
                        Product::BackupAndReplication,
                        *pick(&mut rng, &TYPES),
                        app.clock.now() - Duration::days(1),
                        app.clock.now() + Duration::days(rng.gen_range(5..300)),
                    );
                    claims.company = pick(&mut rng, &COMPANIES).to_string();
                    well_formed(&mut claims);
                    let r = put_file(
                        &app,
                        &admin,
                        &format!("{LIST}/{uid}"),
                        "license",
                        issuer.sign(&claims).into_bytes(),
                    )
                    .await;
                    assert!(
                        r.status().is_success() || r.status() == 400,
                        "{}",
                        r.status()
                    );
                }
                1 => {
                    // A write straight into the store, as another node makes it.
                    let uid = *pick(&mut rng, &servers);
                    let mut claims = claims_expiring(
                        Product::BackupAndReplication,
                        LicenseType::Rental,
                        app.clock.now() - Duration::days(30),
                        app.clock.now() + Duration::days(rng.gen_range(-10..40)),
                    );
                    claims.company = pick(&mut rng, &COMPANIES).to_string();
                    store_license(&app, TargetKind::BackupServer, uid, &issuer, &claims).await;
                }
                2 => {
                    // An agent's report changes the used units.
                    let uid = *pick(&mut rng, &servers);
                    app.store
                        .record_server_report(
                            uid,
                            &json!({"licenseState": "licensed", "usedUnits": rng.gen_range(0..12)}),
                            app.clock.now(),
                        )
                        .await
                        .unwrap();
                }
                3 => {
                    // Time passes, across day counts, warnings, expiry and grace.
                    app.clock
                        .advance(Duration::hours(rng.gen_range(1..24 * 20)));
                    // Tokens expire with time too.
                    admin = app.admin_token().await;
                    reseller_token = app
                        .token("reseller-admin", crate::licensing::USER_PASSWORD)
                        .await;
                }
                4 => {
                    let uid = *pick(&mut rng, &servers);
                    let r = app
                        .http
                        .delete(app.url(&format!("{LIST}/{uid}")))
                        .bearer_auth(&admin)
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        r.status().is_success() || r.status() == 400,
                        "{}",
                        r.status()
                    );
                }
                _ => {}
            }
            for (token, scope) in [
                (&admin, Scope::All),
                (&reseller_token, reseller_scope.clone()),
            ] {
                let raw = random_query(&mut rng, app.clock.now());
                let r = app.get(&format!("{LIST}?{raw}"), token).await;
                let status = r.status();
                let got: Value = r.json().await.unwrap();
                assert_eq!(status, 200, "round {round}: ?{raw}: {got}");
                let want = oracle(&app, &scope, &raw).await;
                assert_eq!(got, want, "{backend:?} round {round}: ?{raw}");
            }
            // A single license read agrees with the list too.
            let uid = *pick(&mut rng, &servers);
            let single: Value = app
                .get(&format!("{LIST}/{uid}"), &admin)
                .await
                .json()
                .await
                .unwrap();
            let raw = format!(
                "filter={}",
                enc(
                    &json!([{"property": "backupServerUid", "operation": "equals",
                              "value": uid.to_string()}])
                    .to_string()
                )
            );
            let want = oracle(&app, &Scope::All, &raw).await;
            assert_eq!(
                single["data"], want["data"][0],
                "{backend:?} round {round}: {uid}"
            );
        }
        app.stop().await;
    }
}
