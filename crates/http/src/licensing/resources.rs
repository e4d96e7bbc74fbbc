//! Wire shapes of the five license resources and the console's license settings, exactly as
//! the 3.6.1 contract names them, rendered from a [`Target`] at a given instant.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tallyman_domain::license::LicenseType;
use tallyman_domain::status::Evaluation;
use tallyman_query::{FieldType, Schema};
use tallyman_store::TargetKind;
use uuid::Uuid;

use crate::query::Resource;
use crate::wire::vspc_datetime;
use tallyman_app::Target;

fn dt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(vspc_datetime)
}

/// Fields shared by every license resource, computed once per render.
struct Common {
    eval: Evaluation,
    packages: Vec<String>,
    company: String,
    email: String,
    contact_person: Option<String>,
    expiration: Option<String>,
    support_expiration: Option<String>,
    license_ids: Vec<Uuid>,
    support_ids: Vec<String>,
    section_types: Vec<String>,
    cloud_connect: String,
    units: Option<f64>,
    used_units: Option<f64>,
    unit_type: String,
    license_type: String,
    edition: Option<String>,
    monitoring: Option<bool>,
}

fn common(target: &Target, now: DateTime<Utc>) -> Common {
    let eval = target.evaluate(now);
    let terms = target.terms();
    let primary = target.doc.primary();
    let license_type = if target.doc.community && terms.is_none() {
        LicenseType::Community
    } else {
        eval.license_type
    };
    let mut section_types: Vec<String> = terms
        .as_ref()
        .map(|t| {
            t.section_types
                .iter()
                .map(|s| s.as_wire().to_string())
                .collect()
        })
        .unwrap_or_default();
    section_types.dedup();
    Common {
        packages: terms
            .as_ref()
            .map(|t| t.packages.iter().map(|p| p.as_wire().to_string()).collect())
            .unwrap_or_default(),
        company: primary
            .map(|f| f.claims.company.clone())
            .unwrap_or_default(),
        email: primary.map(|f| f.claims.email.clone()).unwrap_or_default(),
        contact_person: primary.and_then(|f| f.claims.contact_person.clone()),
        expiration: dt(terms.as_ref().and_then(|t| t.expiration)),
        support_expiration: dt(terms.as_ref().and_then(|t| t.support_expiration)),
        license_ids: target.doc.files.iter().map(|f| f.license_id).collect(),
        support_ids: {
            let mut ids: Vec<String> = target
                .doc
                .files
                .iter()
                .map(|f| f.claims.support_id.clone())
                .collect();
            ids.dedup();
            ids
        },
        section_types,
        cloud_connect: terms
            .as_ref()
            .map(|t| t.cloud_connect.as_wire().to_string())
            .unwrap_or_else(|| "Unknown".into()),
        units: terms.as_ref().and_then(|t| t.units),
        used_units: terms.as_ref().and_then(|t| t.used_units),
        unit_type: terms
            .as_ref()
            .map(|t| t.unit_type.as_wire().to_string())
            .unwrap_or_else(|| "Unknown".into()),
        license_type: license_type.as_wire().to_string(),
        edition: terms.as_ref().and_then(|t| t.edition.clone()),
        monitoring: primary.and_then(|f| f.claims.monitoring),
        eval,
    }
}

macro_rules! schema {
    ($($path:literal => $ty:ident),+ $(,)?) => {{
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::new(&[$(($path, FieldType::$ty)),+]))
    }};
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteLicense {
    pub site_uid: Uuid,
    pub auto_update_enabled: bool,
    pub edition: Option<String>,
    pub monitoring: Option<bool>,
    pub packages: Vec<String>,
    pub company: String,
    pub email: String,
    pub contact_person: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_date: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub support_expiration_date: Option<String>,
    pub license_ids: Vec<Uuid>,
    pub support_ids: Vec<String>,
    pub section_types: Vec<String>,
    pub status: String,
    pub cloud_connect: String,
    pub units: f64,
    pub used_units: f64,
    pub unit_type: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub license_type: String,
}

impl SiteLicense {
    pub fn render(target: &Target, now: DateTime<Utc>) -> Self {
        let c = common(target, now);
        Self {
            site_uid: target.uid,
            auto_update_enabled: target.doc.auto_update_enabled,
            edition: c.edition,
            monitoring: c.monitoring,
            packages: c.packages,
            company: c.company,
            email: c.email,
            contact_person: c.contact_person,
            expiration_date: c.expiration,
            support_expiration_date: c.support_expiration,
            license_ids: c.license_ids,
            support_ids: c.support_ids,
            section_types: c.section_types,
            status: c.eval.status.as_wire().into(),
            cloud_connect: c.cloud_connect,
            units: c.units.unwrap_or(0.0),
            used_units: c.used_units.unwrap_or(0.0),
            unit_type: c.unit_type,
            license_type: c.license_type,
        }
    }
}

impl Resource for SiteLicense {
    /// The contract's site list declares only `select`: every site is returned.
    fn collection_params() -> tallyman_query::Allowed {
        tallyman_query::Allowed {
            select: true,
            ..tallyman_query::Allowed::NONE
        }
    }

    fn schema() -> &'static Schema {
        schema!(
            "siteUid" => Uuid, "autoUpdateEnabled" => Boolean, "edition" => String,
            "monitoring" => Boolean, "packages" => EnumArray, "company" => String,
            "email" => String, "contactPerson" => String, "expirationDate" => DateTime,
            "supportExpirationDate" => DateTime, "licenseIds" => UuidArray,
            "supportIds" => StringArray, "sectionTypes" => EnumArray, "status" => Enum,
            "cloudConnect" => Enum, "units" => Number, "usedUnits" => Number,
            "unitType" => Enum, "type" => Enum,
        )
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupServerLicense {
    pub backup_server_uid: Uuid,
    pub auto_update_enabled: bool,
    pub edition: Option<String>,
    pub monitoring: Option<bool>,
    pub packages: Vec<String>,
    pub company: String,
    pub email: String,
    pub contact_person: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_date: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub support_expiration_date: Option<String>,
    pub license_ids: Vec<Uuid>,
    pub support_ids: Vec<String>,
    pub section_types: Vec<String>,
    pub status: String,
    pub cloud_connect: String,
    pub sockets: Option<f64>,
    pub used_sockets: Option<f64>,
    pub capacity: Option<f64>,
    pub used_capacity: Option<f64>,
    pub units: f64,
    pub used_units: f64,
    pub unit_type: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub license_type: String,
}

impl BackupServerLicense {
    pub fn render(target: &Target, now: DateTime<Utc>) -> Self {
        let terms = target.terms();
        let c = common(target, now);
        Self {
            backup_server_uid: target.uid,
            auto_update_enabled: target.doc.auto_update_enabled,
            edition: c.edition,
            monitoring: c.monitoring,
            packages: c.packages,
            company: c.company,
            email: c.email,
            contact_person: c.contact_person,
            expiration_date: c.expiration,
            support_expiration_date: c.support_expiration,
            license_ids: c.license_ids,
            support_ids: c.support_ids,
            section_types: c.section_types,
            status: c.eval.status.as_wire().into(),
            cloud_connect: c.cloud_connect,
            sockets: terms.as_ref().and_then(|t| t.sockets),
            used_sockets: terms.as_ref().and_then(|t| t.used_sockets),
            capacity: terms.as_ref().and_then(|t| t.capacity),
            used_capacity: terms.as_ref().and_then(|t| t.used_capacity),
            units: c.units.unwrap_or(0.0),
            used_units: c.used_units.unwrap_or(0.0),
            unit_type: c.unit_type,
            license_type: c.license_type,
        }
    }
}

impl Resource for BackupServerLicense {
    fn schema() -> &'static Schema {
        schema!(
            "backupServerUid" => Uuid, "autoUpdateEnabled" => Boolean, "edition" => String,
            "monitoring" => Boolean, "packages" => EnumArray, "company" => String,
            "email" => String, "contactPerson" => String, "expirationDate" => DateTime,
            "supportExpirationDate" => DateTime, "licenseIds" => UuidArray,
            "supportIds" => StringArray, "sectionTypes" => EnumArray, "status" => Enum,
            "cloudConnect" => Enum, "sockets" => Number, "usedSockets" => Number,
            "capacity" => Number, "usedCapacity" => Number, "units" => Number,
            "usedUnits" => Number, "unitType" => Enum, "type" => Enum,
        )
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VOneServerLicense {
    pub v_one_server_uid: Uuid,
    pub auto_update_enabled: bool,
    pub company: String,
    pub email: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_date: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub support_expiration_date: Option<String>,
    pub license_id: Option<Uuid>,
    pub support_id: String,
    pub status: String,
    pub status_message: String,
    pub units: Option<f64>,
    pub used_units: Option<f64>,
    pub unit_type: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub license_type: String,
}

impl VOneServerLicense {
    pub fn render(target: &Target, now: DateTime<Utc>) -> Self {
        let c = common(target, now);
        Self {
            v_one_server_uid: target.uid,
            auto_update_enabled: target.doc.auto_update_enabled,
            company: c.company,
            email: c.email,
            expiration_date: c.expiration,
            support_expiration_date: c.support_expiration,
            license_id: c.license_ids.first().copied(),
            support_id: c.support_ids.first().cloned().unwrap_or_default(),
            status: c.eval.status.as_wire().into(),
            status_message: c.eval.message.clone(),
            units: c.units,
            used_units: c.used_units,
            unit_type: c.unit_type,
            license_type: c.license_type,
        }
    }
}

impl Resource for VOneServerLicense {
    fn schema() -> &'static Schema {
        schema!(
            "vOneServerUid" => Uuid, "autoUpdateEnabled" => Boolean, "company" => String,
            "email" => String, "expirationDate" => DateTime,
            "supportExpirationDate" => DateTime, "licenseId" => Uuid, "supportId" => String,
            "status" => Enum, "statusMessage" => String, "units" => Number,
            "usedUnits" => Number, "unitType" => Enum, "type" => Enum,
        )
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vb365ServerLicense {
    pub vb365_server_uid: Uuid,
    pub auto_update_enabled: bool,
    pub company: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_date: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub support_expiration_date: Option<String>,
    pub license_id: Option<Uuid>,
    pub support_id: Option<String>,
    pub status: String,
    pub licensed_users: i64,
    pub protected_users: i64,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub license_type: String,
}

impl Vb365ServerLicense {
    pub fn render(target: &Target, now: DateTime<Utc>) -> Self {
        let terms = target.terms();
        let c = common(target, now);
        let licensed = !target.doc.files.is_empty();
        Self {
            vb365_server_uid: target.uid,
            auto_update_enabled: target.doc.auto_update_enabled,
            company: licensed.then_some(c.company),
            email: licensed.then_some(c.email),
            expiration_date: c.expiration,
            support_expiration_date: c.support_expiration,
            license_id: c.license_ids.first().copied(),
            support_id: c.support_ids.first().cloned(),
            status: c.eval.status.as_wire().into(),
            licensed_users: terms
                .as_ref()
                .and_then(|t| t.licensed_users)
                .map(i64::from)
                .unwrap_or(0),
            protected_users: terms
                .as_ref()
                .and_then(|t| t.protected_users)
                .map(i64::from)
                .unwrap_or(0),
            license_type: c.license_type,
        }
    }
}

impl Resource for Vb365ServerLicense {
    fn schema() -> &'static Schema {
        schema!(
            "vb365ServerUid" => Uuid, "autoUpdateEnabled" => Boolean, "company" => String,
            "email" => String, "expirationDate" => DateTime,
            "supportExpirationDate" => DateTime, "licenseId" => Uuid, "supportId" => String,
            "status" => Enum, "licensedUsers" => Integer, "protectedUsers" => Integer,
            "type" => Enum,
        )
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleLicense {
    pub license_id: String,
    pub edition: String,
    pub package: String,
    pub licensee_company: String,
    pub licensee_email: String,
    pub licensee_administrator_email: Option<String>,
    pub contact_person: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expiration_date: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub support_expiration_date: Option<String>,
    pub support_id: String,
    pub status: String,
    pub status_message: String,
    pub cloud_connect: String,
    pub instances: f64,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub license_type: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_update_date: Option<String>,
    pub last_update_message: Option<String>,
    pub last_update_status: String,
}

impl ConsoleLicense {
    pub fn render(target: &Target, now: DateTime<Utc>) -> Self {
        let c = common(target, now);
        let primary = target.doc.primary();
        let last = target.doc.last_update.as_ref();
        Self {
            license_id: primary
                .map(|f| f.license_id.to_string())
                .unwrap_or_default(),
            edition: c.edition.clone().unwrap_or_default(),
            package: c.packages.first().cloned().unwrap_or_else(|| "None".into()),
            licensee_company: c.company,
            licensee_email: c.email,
            licensee_administrator_email: primary
                .and_then(|f| f.claims.administrator_email.clone()),
            contact_person: c.contact_person,
            expiration_date: c.expiration,
            support_expiration_date: c.support_expiration,
            support_id: c.support_ids.first().cloned().unwrap_or_default(),
            status: c.eval.console_status().as_wire().into(),
            status_message: c.eval.message.clone(),
            cloud_connect: c.cloud_connect,
            instances: c.units.unwrap_or(0.0),
            license_type: c.license_type,
            last_update_date: last.map(|u| vspc_datetime(u.at)),
            last_update_message: last.map(|u| u.message.clone()),
            last_update_status: last
                .map(|u| u.status.clone())
                .unwrap_or_else(|| "Unknown".into()),
        }
    }
}

impl Resource for ConsoleLicense {
    fn schema() -> &'static Schema {
        schema!(
            "licenseId" => String, "edition" => String, "package" => Enum,
            "licenseeCompany" => String, "licenseeEmail" => String,
            "licenseeAdministratorEmail" => String, "contactPerson" => String,
            "expirationDate" => DateTime, "supportExpirationDate" => DateTime,
            "supportId" => String, "status" => Enum, "statusMessage" => String,
            "cloudConnect" => Enum, "instances" => Number, "type" => Enum,
            "lastUpdateDate" => DateTime, "lastUpdateMessage" => String,
            "lastUpdateStatus" => Enum,
        )
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSettings {
    pub is_auto_update_enabled: bool,
}

impl Resource for LicenseSettings {
    fn schema() -> &'static Schema {
        schema!("isAutoUpdateEnabled" => Boolean)
    }
}

/// Renders any server target as the resource of its kind.
pub fn render_json(target: &Target, now: DateTime<Utc>) -> serde_json::Value {
    let v = match target.kind {
        TargetKind::CloudConnectSite => serde_json::to_value(SiteLicense::render(target, now)),
        TargetKind::BackupServer => serde_json::to_value(BackupServerLicense::render(target, now)),
        TargetKind::VOneServer => serde_json::to_value(VOneServerLicense::render(target, now)),
        TargetKind::Vb365Server => serde_json::to_value(Vb365ServerLicense::render(target, now)),
        TargetKind::Console => serde_json::to_value(ConsoleLicense::render(target, now)),
    };
    v.unwrap_or(serde_json::Value::Null)
}
