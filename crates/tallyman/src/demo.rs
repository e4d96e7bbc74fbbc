//! `serve --demo`: a working installation out of the box. On an empty database it creates a demo
//! issuer key (kept in `<data-dir>/demo/`), trusts it, runs a license portal inside the process
//! so `update` works, and seeds a realistic fleet: resellers and companies, Cloud Connect sites,
//! Backup & Replication, Veeam ONE and Microsoft 365 servers, and a console license, with every
//! license type and every status (valid, expiring soon, expired in grace, past grace,
//! unlicensed, never reported).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tallyman_app::{InstalledFile, ServerReport, SlotDocument, CONSOLE_TARGET};
use tallyman_domain::{LicenseType, Package, Product, SectionType};
use tallyman_license::{default_claims, issue, verify, IssuerKey, LicenseClaims, TrustStore};
use tallyman_store::{
    LicenseEvent, LicenseSlot, ManagedServer, Organization, OrganizationType, Store, TargetKind,
};
use uuid::Uuid;

/// The demo issuer key, created on first use.
pub fn demo_key(data_dir: &Path) -> anyhow::Result<IssuerKey> {
    let dir = data_dir.join("demo");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("issuer.key");
    if path.exists() {
        return IssuerKey::read_file(&path).context("cannot read the demo issuer key");
    }
    let key = IssuerKey::generate();
    key.write_files(&path)
        .context("cannot write the demo issuer key")?;
    Ok(key)
}

/// How a seeded license relates to "now".
#[derive(Clone, Copy)]
enum Shape {
    Valid,
    ExpiringSoon,
    ExpiredInGrace,
    PastGrace,
}

struct Seeder<'a> {
    store: &'a Arc<dyn Store>,
    key: &'a IssuerKey,
    trust: TrustStore,
    portal_dir: &'a Path,
    now: DateTime<Utc>,
    provider_name: String,
}

/// Companies in the demo that hold their own Veeam contract: their servers' usage lands in
/// report appendices. Everyone else runs on the provider's rental contract.
const OWN_CONTRACT: [&str; 2] = ["Globex Corporation", "Tyrell Systems"];

impl Seeder<'_> {
    /// The licensee named in a company's license files.
    fn licensee_for(&self, company: &Organization) -> String {
        if OWN_CONTRACT.contains(&company.name.as_str()) {
            company.name.clone()
        } else {
            self.provider_name.clone()
        }
    }

    fn claims(
        &self,
        product: Product,
        kind: LicenseType,
        shape: Shape,
        company: &str,
    ) -> LicenseClaims {
        // Files are issued well before they expire, past-grace ones long ago.
        let issued = match shape {
            Shape::PastGrace => self.now - Duration::days(200),
            _ => self.now - Duration::days(40),
        };
        let mut c = default_claims(product, kind, issued);
        c.company = company.to_string();
        c.email = format!(
            "licensing@{}.example",
            company.to_lowercase().replace([' ', '.'], "-")
        );
        let expiry = match shape {
            Shape::Valid => match kind {
                LicenseType::Rental => self.now + Duration::days(45),
                LicenseType::Perpetual => return c,
                _ => self.now + Duration::days(200),
            },
            Shape::ExpiringSoon => self.now + Duration::days(4),
            Shape::ExpiredInGrace => self.now - Duration::days(5),
            Shape::PastGrace => self.now - Duration::days(120),
        };
        c.expiration_date = Some(expiry);
        c.support_expiration_date = Some(expiry);
        c
    }

    /// Mints a file, keeps a copy where the in-process portal finds it, and returns it parsed.
    fn mint(&self, claims: &LicenseClaims) -> anyhow::Result<InstalledFile> {
        let text = issue(claims, self.key)?;
        std::fs::write(
            self.portal_dir.join(format!("{}.lic", claims.license_id)),
            &text,
        )?;
        let verified = verify(text.as_bytes(), &self.trust)?;
        Ok(InstalledFile {
            license_id: claims.license_id,
            armoured: verified.armoured,
            key_id: verified.key_id,
            claims: verified.claims,
            installed_at: self.now - Duration::days(30),
        })
    }

    async fn put_slot(&self, uid: Uuid, kind: TargetKind, doc: SlotDocument) -> anyhow::Result<()> {
        let slot = LicenseSlot {
            target_uid: uid,
            kind,
            document: serde_json::to_value(&doc)?,
            revision: 0,
            updated_at: self.now,
        };
        let event = LicenseEvent {
            target_uid: uid,
            at: self.now,
            actor: "demo".into(),
            action: "install".into(),
            detail: json!({"seeded": true}),
        };
        self.store.save_license_slot(&slot, None, &event).await?;
        Ok(())
    }

    async fn org(
        &self,
        name: &str,
        kind: OrganizationType,
        parent: Uuid,
    ) -> anyhow::Result<Organization> {
        let org = Organization {
            uid: Uuid::new_v4(),
            name: name.into(),
            kind,
            parent_uid: Some(parent),
            created_at: self.now - Duration::days(400),
        };
        self.store.insert_organization(&org).await?;
        Ok(org)
    }

    /// A server with a report, and optionally a license of the given type and shape.
    async fn server(
        &self,
        kind: TargetKind,
        name: &str,
        org: &Organization,
        license: Option<(LicenseClaims, bool)>,
        report: ServerReport,
        reported: bool,
    ) -> anyhow::Result<()> {
        let server = ManagedServer {
            uid: Uuid::new_v4(),
            kind,
            name: name.into(),
            organization_uid: org.uid,
            agent_uid: None,
            created_at: self.now - Duration::days(300),
            last_seen_at: reported.then_some(self.now - Duration::minutes(7)),
            reported: if reported {
                serde_json::to_value(&report)?
            } else {
                serde_json::Value::Null
            },
        };
        self.store.insert_server(&server).await?;
        if let Some((claims, auto_update)) = license {
            let file = self.mint(&claims)?;
            let doc = SlotDocument {
                files: vec![file],
                auto_update_enabled: auto_update,
                ..SlotDocument::default()
            };
            self.put_slot(server.uid, kind, doc).await?;
        } else if kind == TargetKind::BackupServer && reported {
            let doc = SlotDocument {
                community: true,
                ..SlotDocument::default()
            };
            self.put_slot(server.uid, kind, doc).await?;
        }
        Ok(())
    }
}

fn report(used_units: f64) -> ServerReport {
    ServerReport {
        license_state: Some("licensed".into()),
        used_units: Some(used_units),
        ..ServerReport::default()
    }
}

/// Seeds the demo fleet unless the database already has servers.
pub async fn seed(
    store: &Arc<dyn Store>,
    key: &IssuerKey,
    portal_dir: &Path,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    if !store.servers(None).await?.is_empty() {
        return Ok(false);
    }
    std::fs::create_dir_all(portal_dir)?;
    let provider = store
        .provider()
        .await?
        .context("the provider organization is missing")?;
    let mut trust = TrustStore::new();
    trust.add(key.public());
    let s = Seeder {
        store,
        key,
        trust,
        portal_dir,
        now,
        provider_name: provider.name.clone(),
    };

    let resellers = [
        s.org(
            "Northwind Cloud Partners",
            OrganizationType::Reseller,
            provider.uid,
        )
        .await?,
        s.org("Blue Harbor IT", OrganizationType::Reseller, provider.uid)
            .await?,
    ];
    let company_names = [
        "Acme Ltd",
        "Globex Corporation",
        "Initech",
        "Umbrella Health",
        "Stark Logistics",
        "Wayne Foods",
        "Hooli Media",
        "Vandelay Industries",
        "Soylent Farms",
        "Tyrell Systems",
        "Cyberdyne Labs",
        "Wonka Confections",
    ];
    let mut companies = Vec::new();
    for (i, name) in company_names.iter().enumerate() {
        let parent = match i % 3 {
            0 => provider.uid,
            1 => resellers[0].uid,
            _ => resellers[1].uid,
        };
        companies.push(s.org(name, OrganizationType::Company, parent).await?);
    }

    // The console license and two Cloud Connect sites belong to the provider.
    let mut console = s.claims(
        Product::Console,
        LicenseType::Rental,
        Shape::Valid,
        &s.provider_name,
    );
    console.instances = Some(2500.0);
    let file = s.mint(&console)?;
    s.put_slot(
        CONSOLE_TARGET,
        TargetKind::Console,
        SlotDocument {
            files: vec![file],
            auto_update_enabled: true,
            ..SlotDocument::default()
        },
    )
    .await?;
    let mut site = s.claims(
        Product::CloudConnectSite,
        LicenseType::Rental,
        Shape::Valid,
        &s.provider_name,
    );
    site.units = Some(1500.0);
    s.server(
        TargetKind::CloudConnectSite,
        "cc-site-ams1",
        &provider,
        Some((site, true)),
        report(1180.5),
        true,
    )
    .await?;
    let site2 = s.claims(
        Product::CloudConnectSite,
        LicenseType::Rental,
        Shape::ExpiringSoon,
        &s.provider_name,
    );
    s.server(
        TargetKind::CloudConnectSite,
        "cc-site-fra1",
        &provider,
        Some((site2, false)),
        report(80.0),
        true,
    )
    .await?;

    // 30 Backup & Replication servers across the companies, every type and status.
    let vbr_plan: [(LicenseType, Shape); 10] = [
        (LicenseType::Rental, Shape::Valid),
        (LicenseType::Rental, Shape::Valid),
        (LicenseType::Rental, Shape::ExpiringSoon),
        (LicenseType::Rental, Shape::ExpiredInGrace),
        (LicenseType::Subscription, Shape::Valid),
        (LicenseType::Subscription, Shape::PastGrace),
        (LicenseType::Perpetual, Shape::Valid),
        (LicenseType::Evaluation, Shape::ExpiringSoon),
        (LicenseType::Nfr, Shape::Valid),
        (LicenseType::Rental, Shape::Valid),
    ];
    for i in 0..30 {
        let company = &companies[i % companies.len()];
        let name = format!(
            "vbr-{:02}.{}",
            i + 1,
            company
                .name
                .split_whitespace()
                .next()
                .unwrap_or("corp")
                .to_lowercase()
        );
        match i {
            // A server in Community mode and one that never reported.
            27 => {
                s.server(
                    TargetKind::BackupServer,
                    &name,
                    company,
                    None,
                    ServerReport::default(),
                    true,
                )
                .await?
            }
            28 => {
                s.server(
                    TargetKind::BackupServer,
                    &name,
                    company,
                    None,
                    ServerReport::default(),
                    false,
                )
                .await?
            }
            _ => {
                let (kind, shape) = vbr_plan[i % vbr_plan.len()];
                let mut c = s.claims(
                    Product::BackupAndReplication,
                    kind,
                    shape,
                    &s.licensee_for(company),
                );
                if kind == LicenseType::Perpetual {
                    c.section_types = vec![SectionType::Socket];
                    c.sockets = Some(8);
                    c.units = None;
                }
                let units = c.units.unwrap_or(0.0);
                // A couple of servers run over their units, one beyond the allowance.
                let used = match i {
                    9 => units * 1.1,
                    19 => units * 1.6,
                    _ => (units * 0.35 * ((i % 5) as f64 + 1.0) / 2.0).round(),
                };
                // Licenses that lapsed did so because nobody kept them updated.
                let auto = matches!(shape, Shape::Valid | Shape::ExpiringSoon)
                    && matches!(
                        kind,
                        LicenseType::Rental | LicenseType::Evaluation | LicenseType::Nfr
                    );
                s.server(
                    TargetKind::BackupServer,
                    &name,
                    company,
                    Some((c, auto)),
                    report(used),
                    true,
                )
                .await?;
            }
        }
    }

    // Veeam ONE and Microsoft 365 servers.
    let vone_plan = [
        (LicenseType::Rental, Shape::Valid),
        (LicenseType::Subscription, Shape::Valid),
        (LicenseType::Rental, Shape::ExpiredInGrace),
        (LicenseType::Subscription, Shape::ExpiringSoon),
        (LicenseType::Rental, Shape::PastGrace),
    ];
    for i in 0..6 {
        let company = &companies[(i * 2) % companies.len()];
        let name = format!("vone-{:02}", i + 1);
        if i == 5 {
            s.server(
                TargetKind::VOneServer,
                &name,
                company,
                None,
                ServerReport {
                    license_state: Some("unlicensed".into()),
                    ..ServerReport::default()
                },
                true,
            )
            .await?;
            continue;
        }
        let (kind, shape) = vone_plan[i];
        let mut c = s.claims(Product::VOne, kind, shape, &s.licensee_for(company));
        c.packages = vec![Package::One];
        let used = c.units.unwrap_or(50.0) * 0.6;
        let auto = kind == LicenseType::Rental && matches!(shape, Shape::Valid);
        s.server(
            TargetKind::VOneServer,
            &name,
            company,
            Some((c, auto)),
            report(used),
            true,
        )
        .await?;
    }
    let vb365_plan = [
        (LicenseType::Rental, Shape::Valid),
        (LicenseType::Subscription, Shape::Valid),
        (LicenseType::Rental, Shape::ExpiringSoon),
        (LicenseType::Subscription, Shape::ExpiredInGrace),
        (LicenseType::Evaluation, Shape::PastGrace),
    ];
    for i in 0..6 {
        let company = &companies[(i * 2 + 1) % companies.len()];
        let name = format!("vb365-{:02}", i + 1);
        if i == 5 {
            s.server(
                TargetKind::Vb365Server,
                &name,
                company,
                None,
                ServerReport::default(),
                false,
            )
            .await?;
            continue;
        }
        let (kind, shape) = vb365_plan[i];
        let c = s.claims(Product::Vb365, kind, shape, &s.licensee_for(company));
        let users = c.licensed_users.unwrap_or(100);
        let r = ServerReport {
            license_state: Some("licensed".into()),
            protected_users: Some(users * 3 / 4),
            ..ServerReport::default()
        };
        let auto = kind == LicenseType::Rental && matches!(shape, Shape::Valid);
        s.server(
            TargetKind::Vb365Server,
            &name,
            company,
            Some((c, auto)),
            r,
            true,
        )
        .await?;
    }
    tracing::info!(
        organizations = 2 + companies.len(),
        servers = 2 + 30 + 6 + 6,
        "seeded the demo fleet"
    );
    Ok(true)
}
