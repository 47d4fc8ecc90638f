//! `ndjson_sink`: rows as newline-delimited JSON objects, one file per epoch
//! (`<prefix>/part-<epoch:012>.ndjson`), for debugging and for downstream systems that read JSON.
//!
//! It is the staging kind of sink ([`divoc_pipeline::sink`]): `pre_commit` writes the epoch to
//! `<prefix>/_staging/part-<epoch>.ndjson` durably, `commit` (after the checkpoint is stored)
//! moves it into place, and on restart `abort` deletes what later epochs staged. A reader of
//! `<prefix>/` therefore only ever sees committed epochs, each exactly once.
//!
//! Values are typed: numbers stay numbers, dates are `YYYY-MM-DD`, timestamps RFC 3339 UTC, lists
//! arrays, nulls are left out; binary columns are left out unless listed in `columns` (then
//! base64).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float32Type, Float64Type, Int32Type, Int64Type, TimeUnit,
    TimestampMillisecondType, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine;
use bytes::Bytes;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::{CommitInfo, Sink, SinkInput};
use divoc_pipeline::EngineError;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::storage::Storage;

/// Options of an `ndjson_sink` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NdjsonSinkConfig {
    /// Key prefix inside the store.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Columns to write (keys come out sorted); empty: every non-binary column except `raw`.
    #[serde(default)]
    pub columns: Vec<String>,
    /// `edges` (rows from its input edges) or `dead_letters` (every rejected row).
    #[serde(default)]
    pub stream: Stream,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    #[default]
    Edges,
    DeadLetters,
}

fn default_prefix() -> String {
    "ndjson".into()
}

impl Component for NdjsonSinkConfig {
    const KIND: &'static str = "ndjson_sink";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "writes rows (or, with stream = \"dead_letters\", rejected rows) as NDJSON, one file per committed epoch";

    fn sink_input(&self) -> SinkInput {
        match self.stream {
            Stream::Edges => SinkInput::Edges,
            Stream::DeadLetters => SinkInput::DeadLetters,
        }
    }

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        super::check_prefix(&self.prefix, "ndjson")?;
        if let Some(c) = self.columns.iter().find(|c| c.trim().is_empty()) {
            return Err(ConfigIssue::new(
                "columns",
                format!("{c:?} is not a column name"),
                "list column names, e.g. columns = [\"tenant\", \"certificate_id\"]",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Sink(Box::new(NdjsonSink {
            storage: ctx.resources.get::<Storage>()?.clone(),
            prefix: self.prefix,
            columns: self.columns,
            buffer: Vec::new(),
            rows: 0,
        })))
    }
}

pub struct NdjsonSink {
    storage: Storage,
    prefix: String,
    columns: Vec<String>,
    buffer: Vec<u8>,
    rows: u64,
}

impl NdjsonSink {
    fn staged_key(&self, epoch: u64) -> String {
        format!("{}/_staging/part-{epoch:012}.ndjson", self.prefix)
    }
    fn final_key(&self, epoch: u64) -> String {
        format!("{}/part-{epoch:012}.ndjson", self.prefix)
    }
}

fn selected(
    batch: &RecordBatch,
    columns: &[String],
) -> Result<Vec<(String, ArrayRef)>, EngineError> {
    let schema = batch.schema();
    {
        if columns.is_empty() {
            return Ok(schema
                .fields()
                .iter()
                .zip(batch.columns())
                .filter(|(f, _)| f.name() != "raw" && !matches!(f.data_type(), DataType::Binary))
                .map(|(f, c)| (f.name().clone(), c.clone()))
                .collect());
        }
        columns
            .iter()
            .map(|name| {
                batch
                    .column_by_name(name)
                    .map(|c| (name.clone(), c.clone()))
                    .ok_or_else(|| {
                        EngineError::Schema(format!(
                            "ndjson_sink: no column {name:?} reaches this node; fix its `columns`"
                        ))
                    })
            })
            .collect()
    }
}

/// The JSON value of row `i` of `col`; None for null.
fn json_value(col: &ArrayRef, i: usize) -> Result<Option<Value>, EngineError> {
    if col.is_null(i) {
        return Ok(None);
    }
    let v = match col.data_type() {
        DataType::Utf8 => Value::from(col.as_string::<i32>().value(i)),
        DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(i)),
        DataType::UInt64 => Value::from(col.as_primitive::<UInt64Type>().value(i)),
        DataType::Boolean => Value::from(col.as_boolean().value(i)),
        DataType::Date32 => {
            let days = col.as_primitive::<Date32Type>().value(i);
            Value::from(divoc_model::schema::format_date(days))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let ms = col.as_primitive::<TimestampMillisecondType>().value(i);
            let t = chrono::DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| EngineError::Schema(format!("timestamp {ms} ms is out of range")))?;
            Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        DataType::Binary => Value::from(
            base64::engine::general_purpose::STANDARD.encode(col.as_binary::<i32>().value(i)),
        ),
        DataType::List(_) => {
            let list = col.as_list::<i32>();
            let items: ArrayRef = Arc::clone(&list.value(i));
            let mut out = Vec::with_capacity(items.len());
            for j in 0..items.len() {
                out.push(json_value(&items, j)?.unwrap_or(Value::Null));
            }
            Value::Array(out)
        }
        DataType::Float64 => Value::from(col.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => Value::from(col.as_primitive::<Float32Type>().value(i)),
        DataType::Int32 => Value::from(col.as_primitive::<Int32Type>().value(i)),
        DataType::UInt16 => Value::from(col.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => Value::from(col.as_primitive::<UInt32Type>().value(i)),
        // Anything else (decimals, other temporal types) as its display text.
        _ => {
            let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
            Value::from(f.value(i).to_string())
        }
    };
    Ok(Some(v))
}

/// Rows of `batch` as JSON objects (typed values, nulls left out) over `columns` (empty: every
/// non-binary column except `raw`).
pub fn json_rows(
    batch: &RecordBatch,
    columns: &[String],
) -> Result<Vec<Map<String, Value>>, EngineError> {
    let columns = selected(batch, columns)?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut row = Map::with_capacity(columns.len());
        for (name, col) in &columns {
            if let Some(v) = json_value(col, i)? {
                row.insert(name.clone(), v);
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

impl Sink for NdjsonSink {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        for row in json_rows(&batch, &self.columns)? {
            serde_json::to_writer(&mut self.buffer, &row)
                .map_err(|e| EngineError::Other(format!("ndjson_sink: {e}")))?;
            self.buffer.push(b'\n');
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        let rows = std::mem::take(&mut self.rows);
        if rows == 0 {
            return Ok(EpochOutput::default());
        }
        let bytes = Bytes::from(std::mem::take(&mut self.buffer));
        self.storage.put(&self.staged_key(epoch), bytes)?;
        Ok(EpochOutput {
            objects: vec![self.final_key(epoch)],
            rows,
        })
    }

    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        if info.written.rows == 0 {
            return Ok(());
        }
        // Already moved (a crash after the move, before the engine noted it) is done too.
        self.storage
            .rename(&self.staged_key(info.epoch), &self.final_key(info.epoch))?;
        Ok(())
    }

    fn abort(&mut self, committed: u64) -> Result<(), EngineError> {
        let staging = format!("{}/_staging/", self.prefix);
        self.storage.remove_interrupted_uploads(&staging)?;
        for key in self.storage.list(&staging)? {
            let epoch = key
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_prefix("part-"))
                .and_then(|f| f.strip_suffix(".ndjson"))
                .and_then(|n| n.parse::<u64>().ok());
            if matches!(epoch, Some(e) if e > committed) {
                self.storage.delete(&key)?;
            }
        }
        self.buffer.clear();
        self.rows = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
