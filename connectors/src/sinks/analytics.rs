//! `analytics`: the PII-free analytics table and its rollups, for SQL and the dashboard.
//!
//! - `<prefix>/certificates/tenant=<t>/date=<issue date>/part-<epoch>.parquet`: one row per issued
//!   certificate ([`divoc_model::analytics`]: age band, gender, state, district, pincode prefix,
//!   facility and vaccinator pseudonyms, vaccine, ICD-11 code, dose...; no name, contact, identity,
//!   address line or date of birth).
//! - `<prefix>/rollups/certificates/tenant=<t>/date=<issue date>/part-<epoch>.parquet`: the
//!   epoch's counts by day x tenant x program x state x district x vaccine x dose x age band x gender
//!   (partitioned by issue date like the rows, so an epoch writes one file per tenant, not one per
//!   vaccination day).
//! - `<prefix>/rollups/facilities/...`: the epoch's counts by day x tenant x facility x vaccine.
//!
//! Rollups are partial counts per epoch: a query sums them. Everything is written in
//! `pre_commit` under keys fixed by the epoch, from rows a replay reproduces, so a replayed epoch
//! rewrites identical objects (deterministic overwrite) and the counts stay exact across crashes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Date32Type, Int64Type, TimestampMillisecondType};
use divoc_model::analytics::{
    self as an, analytics_batch, certificate_rollup_schema, facility_rollup_schema,
};
use divoc_model::catalogue::VaccineCatalogue;
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::Sink;
use divoc_pipeline::EngineError;
use serde::Deserialize;

use crate::parquet::PartitionedParquet;
use crate::storage::Storage;

/// Options of an `analytics` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Key prefix of the tables.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Vaccine catalogue (for the ICD-11 code), relative to the pipeline file.
    #[serde(default = "default_catalogue")]
    pub catalogue: PathBuf,
}

fn default_prefix() -> String {
    "analytics".into()
}
fn default_catalogue() -> PathBuf {
    "vaccines.toml".into()
}

impl Component for AnalyticsConfig {
    const KIND: &'static str = "analytics";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "writes the PII-free analytics table and per-epoch rollups (put dedupe before it)";

    fn needs() -> Vec<Column> {
        an::needs()
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        super::check_prefix(&self.prefix, "analytics")?;
        VaccineCatalogue::load(&ctx.resolve(&self.catalogue)).map_err(|e| {
            ConfigIssue::new("catalogue", e, "point `catalogue` at config/vaccines.toml")
        })?;
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let storage = ctx.resources.get::<Storage>()?.clone();
        let catalogue =
            VaccineCatalogue::load(&ctx.resolve(&self.catalogue)).map_err(EngineError::Config)?;
        let p = &self.prefix;
        Ok(BuiltNode::Sink(Box::new(Analytics {
            catalogue,
            rows: PartitionedParquet::new(storage.clone(), format!("{p}/certificates"), vec![])
                .with_date_column(an::ISSUED_AT.name),
            certificate_rollup: PartitionedParquet::new(
                storage.clone(),
                format!("{p}/rollups/certificates"),
                vec![],
            )
            .with_date_column("issued_on"),
            facility_rollup: PartitionedParquet::new(
                storage,
                format!("{p}/rollups/facilities"),
                vec![],
            )
            .with_date_column("issued_on"),
            certificates: BTreeMap::new(),
            facilities: BTreeMap::new(),
        })))
    }
}

type Text = Option<String>;
/// issued on, day, tenant, program, state, district, vaccine, dose, age band, gender.
type CertificateKey = (
    i32,
    Option<i32>,
    String,
    Text,
    Text,
    Text,
    Text,
    Option<i64>,
    String,
    Text,
);
/// issued on, day, tenant, facility id, name, state, district, vaccine.
type FacilityKey = (i32, Option<i32>, String, String, Text, Text, Text, Text);

pub struct Analytics {
    catalogue: VaccineCatalogue,
    rows: PartitionedParquet,
    certificate_rollup: PartitionedParquet,
    facility_rollup: PartitionedParquet,
    certificates: BTreeMap<CertificateKey, i64>,
    facilities: BTreeMap<FacilityKey, i64>,
}

fn text(batch: &RecordBatch, c: Column) -> Result<&StringArray, EngineError> {
    batch
        .column_by_name(c.name)
        .and_then(|a| a.as_string_opt::<i32>())
        .ok_or_else(|| EngineError::Schema(format!("analytics row lacks {}", c.name)))
}

fn value(a: &StringArray, i: usize) -> Text {
    (!a.is_null(i)).then(|| a.value(i).to_owned())
}

fn strings<'a>(values: impl Iterator<Item = &'a Text>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values.map(|v| v.as_deref())))
}

impl Analytics {
    fn count(&mut self, rows: &RecordBatch) -> Result<(), EngineError> {
        let day = rows
            .column_by_name(an::VACCINATION_DATE.name)
            .and_then(|a| a.as_primitive_opt::<Date32Type>())
            .ok_or_else(|| EngineError::Schema("analytics row lacks vaccination_date".into()))?;
        let issued = rows
            .column_by_name(an::ISSUED_AT.name)
            .and_then(|a| a.as_primitive_opt::<TimestampMillisecondType>())
            .ok_or_else(|| EngineError::Schema("analytics row lacks issued_at".into()))?;
        let dose = rows
            .column_by_name(an::DOSE.name)
            .and_then(|a| a.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| EngineError::Schema("analytics row lacks dose".into()))?;
        let (tenant, program, state, district) = (
            text(rows, an::TENANT)?,
            text(rows, an::PROGRAM_ID)?,
            text(rows, an::STATE)?,
            text(rows, an::DISTRICT)?,
        );
        let (vaccine, band, gender) = (
            text(rows, an::VACCINE)?,
            text(rows, an::AGE_BAND)?,
            text(rows, an::GENDER)?,
        );
        let (fid, fname, fstate, fdistrict) = (
            text(rows, an::FACILITY_ID)?,
            text(rows, an::FACILITY_NAME)?,
            text(rows, an::FACILITY_STATE)?,
            text(rows, an::FACILITY_DISTRICT)?,
        );
        for i in 0..rows.num_rows() {
            let d = (!day.is_null(i)).then(|| day.value(i));
            let on = issued.value(i).div_euclid(86_400_000) as i32;
            let key = (
                on,
                d,
                tenant.value(i).to_owned(),
                value(program, i),
                value(state, i),
                value(district, i),
                value(vaccine, i),
                (!dose.is_null(i)).then(|| dose.value(i)),
                band.value(i).to_owned(),
                value(gender, i),
            );
            *self.certificates.entry(key).or_default() += 1;
            let key = (
                on,
                d,
                tenant.value(i).to_owned(),
                fid.value(i).to_owned(),
                value(fname, i),
                value(fstate, i),
                value(fdistrict, i),
                value(vaccine, i),
            );
            *self.facilities.entry(key).or_default() += 1;
        }
        Ok(())
    }

    fn rollup_batches(&mut self) -> Result<(RecordBatch, RecordBatch), EngineError> {
        let c = std::mem::take(&mut self.certificates);
        let keys: Vec<&CertificateKey> = c.keys().collect();
        let certificates = RecordBatch::try_new(
            certificate_rollup_schema(),
            vec![
                Arc::new(Date32Array::from_iter_values(keys.iter().map(|k| k.0))),
                Arc::new(Date32Array::from_iter(keys.iter().map(|k| k.1))),
                Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &k.2))),
                strings(keys.iter().map(|k| &k.3)),
                strings(keys.iter().map(|k| &k.4)),
                strings(keys.iter().map(|k| &k.5)),
                strings(keys.iter().map(|k| &k.6)),
                Arc::new(Int64Array::from_iter(keys.iter().map(|k| k.7))),
                Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &k.8))),
                strings(keys.iter().map(|k| &k.9)),
                Arc::new(Int64Array::from_iter_values(c.values().copied())),
            ],
        )?;
        let f = std::mem::take(&mut self.facilities);
        let keys: Vec<&FacilityKey> = f.keys().collect();
        let facilities = RecordBatch::try_new(
            facility_rollup_schema(),
            vec![
                Arc::new(Date32Array::from_iter_values(keys.iter().map(|k| k.0))),
                Arc::new(Date32Array::from_iter(keys.iter().map(|k| k.1))),
                Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &k.2))),
                Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &k.3))),
                strings(keys.iter().map(|k| &k.4)),
                strings(keys.iter().map(|k| &k.5)),
                strings(keys.iter().map(|k| &k.6)),
                strings(keys.iter().map(|k| &k.7)),
                Arc::new(Int64Array::from_iter_values(f.values().copied())),
            ],
        )?;
        Ok((certificates, facilities))
    }
}

impl Sink for Analytics {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let rows = analytics_batch(&batch, &self.catalogue)?;
        self.count(&rows)?;
        self.rows.push(rows)
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        let (certificates, facilities) = self.rollup_batches()?;
        self.certificate_rollup.push(certificates)?;
        self.facility_rollup.push(facilities)?;
        let rows = self.rows.flush(epoch)?;
        let mut objects = rows.objects;
        objects.extend(self.certificate_rollup.flush(epoch)?.objects);
        objects.extend(self.facility_rollup.flush(epoch)?.objects);
        Ok(EpochOutput {
            objects,
            rows: rows.rows,
        })
    }
}
