//! `reissue_source`: the certificates a `divoc reissue` job selected, as `reissue` events.
//!
//! The job writes its selection once (published `accepted` rows, as Parquet) before the pipeline
//! starts; this source replays it row by row. A position is `{"row": n}`: rows before `n` are
//! done. Each row becomes the event it was issued from (the typed columns as published), with
//! `event_kind = reissue` (or `reissue_revoking`), `reissue_of` = the selected certificate id,
//! `ingest_time` = the job's time (the new credentials' `issuanceDate`, the same on a replay) and
//! `source_id` = `reissue/<job>`, so the same DAG signs, renders and publishes it exactly once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{Field, Schema};
use divoc_model::columns::{CERTIFICATE_ID, EVENT_COLUMNS, REISSUE_OF};
use divoc_model::event::EventKind;
use divoc_pipeline::columns::envelope;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::{Source, SourcePoll};
use divoc_pipeline::EngineError;
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use serde::{Deserialize, Serialize};

/// Options of a `reissue_source` node (`divoc reissue` writes them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReissueSourceConfig {
    /// The job's selection: Parquet with the `accepted` table's columns.
    pub path: PathBuf,
    /// The job's name (source ids are `reissue/<job>`).
    pub job: String,
    /// The job's time, milliseconds since 1970: the new credentials' `issuanceDate`.
    pub issued_at_ms: i64,
    /// Revoke the certificates re-issued (`reissue_revoking`) instead of only superseding them.
    #[serde(default)]
    pub revoke_superseded: bool,
}

impl Component for ReissueSourceConfig {
    const KIND: &'static str = "reissue_source";
    const ROLE: Role = Role::Source;
    const ABOUT: &'static str =
        "the certificates a `divoc reissue` job selected, replayed as reissue events by row";

    fn adds() -> Vec<divoc_pipeline::columns::Column> {
        let mut c = EVENT_COLUMNS.to_vec();
        c.push(REISSUE_OF);
        c
    }

    fn check(&self, ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        let p = ctx.resolve(&self.path);
        if !p.is_file() {
            return Err(ConfigIssue::new(
                "path",
                format!("{} does not exist", p.display()),
                "run `divoc reissue`, which writes the selection and this node",
            ));
        }
        if self.job.is_empty() || self.job.len() > 128 {
            return Err(ConfigIssue::new(
                "job",
                "the job name must be 1..=128 bytes",
                "let `divoc reissue` name the job, or pass --job <name>",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let progress = ctx.resources.get::<ReissueProgress>().ok().cloned();
        let path = ctx.resolve(&self.path);
        Ok(BuiltNode::Source(Box::new(ReissueSource::open(
            path, self, progress,
        )?)))
    }
}

/// Rows of the selection done so far (the position the source resumed at plus what it has read
/// since), for a progress display; shared through the run's resources.
#[derive(Debug, Clone, Default)]
pub struct ReissueProgress {
    pub done: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Position {
    row: u64,
}

pub struct ReissueSource {
    path: PathBuf,
    cfg: ReissueSourceConfig,
    total: u64,
    next_row: u64,
    reader: Option<ParquetRecordBatchReader>,
    pending: Option<RecordBatch>,
    progress: Option<ReissueProgress>,
    schema: Arc<Schema>,
}

fn parquet_err(path: &std::path::Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Other(format!("reissue selection {}: {e}", path.display()))
}

impl ReissueSource {
    pub fn open(
        path: PathBuf,
        cfg: ReissueSourceConfig,
        progress: Option<ReissueProgress>,
    ) -> Result<Self, EngineError> {
        let file = std::fs::File::open(&path).map_err(|e| EngineError::io(&path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_err(&path, e))?;
        let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
        if let Some(p) = &progress {
            p.total.store(total, Ordering::Relaxed);
        }
        let fields: Vec<Field> = ReissueSourceConfig::adds()
            .iter()
            .map(|c| c.field())
            .collect();
        Ok(Self {
            path,
            cfg,
            total,
            next_row: 0,
            reader: None,
            pending: None,
            progress,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    fn start_reader(&mut self) -> Result<(), EngineError> {
        let file = std::fs::File::open(&self.path).map_err(|e| EngineError::io(&self.path, e))?;
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| parquet_err(&self.path, e))?
            .with_batch_size(1024);
        if self.next_row > 0 {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(self.next_row as usize),
                RowSelector::select(self.total.saturating_sub(self.next_row) as usize),
            ]));
        }
        self.reader = Some(builder.build().map_err(|e| parquet_err(&self.path, e))?);
        Ok(())
    }

    /// The reissue events of `rows` (selection rows starting at `first`).
    fn events(&self, rows: &RecordBatch, first: u64) -> Result<RecordBatch, EngineError> {
        let n = rows.num_rows();
        let kind = if self.cfg.revoke_superseded {
            EventKind::ReissueRevoking
        } else {
            EventKind::Reissue
        };
        let ids = rows
            .column_by_name(CERTIFICATE_ID.name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| parquet_err(&self.path, "no certificate_id column"))?;
        let source_id = format!("reissue/{}", self.cfg.job);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let name = field.name().as_str();
            let col: ArrayRef = if name == envelope::EVENT_KIND.name {
                Arc::new(StringArray::from(vec![kind.as_str(); n]))
            } else if name == envelope::SOURCE_ID.name {
                Arc::new(StringArray::from(vec![source_id.as_str(); n]))
            } else if name == envelope::SOURCE_OFFSET.name {
                Arc::new(UInt64Array::from_iter_values(first..first + n as u64))
            } else if name == envelope::INGEST_TIME.name {
                let times = Int64Array::from(vec![self.cfg.issued_at_ms; n]);
                arrow::compute::cast(&times, field.data_type())?
            } else if name == envelope::RAW.name {
                // What a dead letter of this row shows: which certificate, which job.
                let raw: Vec<String> = (0..n)
                    .map(|i| {
                        serde_json::json!({
                            "reissueOf": ids.is_valid(i).then(|| ids.value(i)),
                            "job": self.cfg.job,
                        })
                        .to_string()
                    })
                    .collect();
                Arc::new(StringArray::from(raw))
            } else if name == REISSUE_OF.name {
                Arc::new(ids.clone())
            } else {
                match rows.column_by_name(name) {
                    Some(c) if c.data_type() == field.data_type() => c.clone(),
                    Some(c) => arrow::compute::cast(c, field.data_type())?,
                    None => new_null_array(field.data_type(), n),
                }
            };
            columns.push(col);
        }
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
            parquet_err(
                &self.path,
                format!("{e}: the selection lacks values the event schema requires"),
            )
        })
    }
}

impl Source for ReissueSource {
    fn resume(&mut self, position: Option<&serde_json::Value>) -> Result<(), EngineError> {
        self.next_row = match position {
            Some(p) => {
                let p: Position = serde_json::from_value(p.clone())
                    .map_err(|e| EngineError::State(format!("reissue_source position {p}: {e}")))?;
                p.row.min(self.total)
            }
            None => 0,
        };
        if let Some(p) = &self.progress {
            p.done.store(self.next_row, Ordering::Relaxed);
        }
        self.pending = None;
        self.start_reader()
    }

    fn poll(&mut self, max_records: usize) -> Result<SourcePoll, EngineError> {
        if self.reader.is_none() {
            self.start_reader()?;
        }
        let batch = match self.pending.take() {
            Some(b) => b,
            None => match self.reader.as_mut().and_then(Iterator::next) {
                Some(b) => b.map_err(|e| parquet_err(&self.path, e))?,
                None => return Ok(SourcePoll::Finished),
            },
        };
        let take = batch.num_rows().min(max_records.max(1));
        if take < batch.num_rows() {
            self.pending = Some(batch.slice(take, batch.num_rows() - take));
        }
        let rows = batch.slice(0, take);
        let events = self.events(&rows, self.next_row)?;
        self.next_row += take as u64;
        if let Some(p) = &self.progress {
            p.done.store(self.next_row, Ordering::Relaxed);
        }
        Ok(SourcePoll::Batch {
            events: Some(events),
            dead_letters: None,
            records: take as u64,
        })
    }

    fn position(&self) -> serde_json::Value {
        serde_json::json!(Position { row: self.next_row })
    }
}

#[cfg(test)]
mod tests;
