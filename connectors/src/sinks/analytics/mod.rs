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
//!
//! A rollup partition that reached `compact_after_parts` live files is compacted in the same
//! `pre_commit`: `compact-<epoch>.parquet` holds the sum of them, and readers take only the newest
//! compact file and the parts after it ([`divoc_model::analytics::rollup_files`]), so the table
//! stays small at a national backlog and nothing is counted twice while the superseded files wait
//! for `commit` to delete them.

pub mod rollup;

use std::collections::BTreeSet;
use std::path::PathBuf;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use divoc_model::analytics::{
    self as an, analytics_batch, certificate_rollup_schema, facility_rollup_schema, rollup_files,
};
use divoc_model::catalogue::VaccineCatalogue;
use divoc_model::event::EventKind;
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::{CommitInfo, Sink};
use divoc_pipeline::EngineError;
use serde::Deserialize;

use crate::parquet::PartitionedParquet;
use crate::storage::Storage;
pub use rollup::{AnalyticsRollups, RollupCounts};

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
    /// A rollup partition is compacted into one file when it holds this many files (2 or more).
    #[serde(default = "default_compact_after")]
    pub compact_after_parts: usize,
}

fn default_compact_after() -> usize {
    16
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
        if self.compact_after_parts < 2 {
            return Err(ConfigIssue::new(
                "compact_after_parts",
                format!(
                    "{} would compact on every epoch without merging anything",
                    self.compact_after_parts
                ),
                "use 2 or more (16 by default)",
            ));
        }
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
                storage.clone(),
                format!("{p}/rollups/facilities"),
                vec![],
            )
            .with_date_column("issued_on"),
            rollups: AnalyticsRollups::new()?,
            compact_after: self.compact_after_parts,
            storage,
        })))
    }
}

pub struct Analytics {
    catalogue: VaccineCatalogue,
    rows: PartitionedParquet,
    certificate_rollup: PartitionedParquet,
    facility_rollup: PartitionedParquet,
    rollups: AnalyticsRollups,
    compact_after: usize,
    storage: Storage,
}

impl Analytics {
    /// Compacts the partitions of `written` (one rollup table's keys) that reached
    /// `compact_after` files.
    fn compact(
        storage: &Storage,
        after: usize,
        written: &[String],
        schema: &SchemaRef,
        epoch: u64,
    ) -> Result<Vec<String>, EngineError> {
        let dirs: BTreeSet<&str> = written.iter().map(|k| rollup::partition_of(k)).collect();
        let mut compacted = Vec::new();
        for dir in dirs {
            let key = rollup::compact_partition(storage, schema, dir, epoch, after)?;
            compacted.extend(key);
        }
        Ok(compacted)
    }
}

impl Sink for Analytics {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        // One row per vaccination certified or corrected: status changes (revoke, suspend, lift)
        // and re-issues of stored certificates are not counted.
        let kinds = batch
            .column_by_name(an::EVENT_KIND.name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| EngineError::Schema("analytics needs Utf8 column event_kind".into()))?;
        let issued: BooleanArray = (0..batch.num_rows())
            .map(|i| {
                Some(EventKind::parse(kinds.value(i)).is_none_or(EventKind::records_vaccination))
            })
            .collect();
        let batch = if issued.true_count() == batch.num_rows() {
            batch
        } else {
            filter_record_batch(&batch, &issued)?
        };
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let rows = analytics_batch(&batch, &self.catalogue)?;
        self.rollups.add_rows(&rows)?;
        self.rows.push(rows)
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        if !self.rollups.is_empty() {
            let (certificates, facilities) = self.rollups.take()?;
            self.certificate_rollup.push(certificates)?;
            self.facility_rollup.push(facilities)?;
        }
        let rows = self.rows.flush(epoch)?;
        let mut objects = rows.objects;
        for (table, schema) in [
            (&mut self.certificate_rollup, certificate_rollup_schema()),
            (&mut self.facility_rollup, facility_rollup_schema()),
        ] {
            let written = table.flush(epoch)?.objects;
            objects.extend(Self::compact(
                &self.storage,
                self.compact_after,
                &written,
                &schema,
                epoch,
            )?);
            objects.extend(written);
        }
        Ok(EpochOutput {
            objects,
            rows: rows.rows,
        })
    }

    /// The epoch is stored: files its compactions superseded can go.
    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        let compacted: BTreeSet<&str> = info
            .written
            .objects
            .iter()
            .filter(|k| {
                k.rsplit('/').next().and_then(rollup_files::parse)
                    == Some(rollup_files::RollupFile::Compact(info.epoch))
            })
            .map(|k| rollup::partition_of(k))
            .collect();
        for dir in compacted {
            rollup::delete_superseded(&self.storage, dir)?;
        }
        Ok(())
    }
}
