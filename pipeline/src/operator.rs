//! The two roles a DAG node can play: a [`Source`] that reads a replayable input, and an [`Operator`]
//! that turns one Arrow batch into another. A node with no outgoing edge is a sink.
//!
//! Every node may reject rows: rejections go to the pipeline's dead-letter output with a reason, so
//! each input event ends as exactly one output row or one dead-letter row.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder, UInt32Array, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::error::EngineError;
use crate::schema;

/// A machine-readable reason for a dead-lettered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Stable snake_case code, e.g. `missing_field`, `duplicate`, `unknown_vaccine`.
    pub code: &'static str,
    /// Human explanation naming the field and the fix.
    pub detail: String,
    /// For duplicates: the certificate id the first event received.
    pub existing_certificate_id: Option<String>,
}

impl Reason {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            existing_certificate_id: None,
        }
    }
}

/// Rows of one input batch that an operator refuses.
#[derive(Debug, Default)]
pub struct Rejections {
    rows: Vec<u32>,
    reasons: Vec<Reason>,
}

impl Rejections {
    pub fn push(&mut self, row: usize, reason: Reason) {
        self.rows.push(row as u32);
        self.reasons.push(reason);
    }
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn reasons(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter()
    }
    pub fn extend(&mut self, other: Rejections) {
        self.rows.extend(other.rows);
        self.reasons.extend(other.reasons);
    }

    /// Builds dead-letter rows by taking the origin columns of the rejected rows from `input`.
    pub fn into_dead_letters(
        self,
        input: &RecordBatch,
        stage: &str,
    ) -> Result<RecordBatch, EngineError> {
        let idx = UInt32Array::from(self.rows);
        let pick = |name: &str| -> Result<ArrayRef, EngineError> {
            let col = input.column_by_name(name).ok_or_else(|| {
                EngineError::Schema(format!("dead letter needs input column {name}"))
            })?;
            Ok(take(col.as_ref(), &idx, None)?)
        };
        let n = idx.len();
        let mut code = StringBuilder::with_capacity(n, n * 12);
        let mut detail = StringBuilder::with_capacity(n, n * 40);
        let mut existing = StringBuilder::with_capacity(n, n * 8);
        for r in &self.reasons {
            code.append_value(r.code);
            detail.append_value(&r.detail);
            existing.append_option(r.existing_certificate_id.as_deref());
        }
        let stage_col: ArrayRef = Arc::new(StringArray::from(vec![stage; n]));
        Ok(RecordBatch::try_new(
            dead_letter_schema(),
            vec![
                pick(schema::TENANT)?,
                pick(schema::SOURCE_ID)?,
                pick(schema::SOURCE_OFFSET)?,
                pick(schema::INGEST_TIME)?,
                pick(schema::EVENT_KIND)?,
                stage_col,
                Arc::new(code.finish()),
                Arc::new(detail.finish()),
                Arc::new(existing.finish()),
                pick(schema::RAW)?,
            ],
        )?)
    }
}

/// Schema of dead-letter records (also their Parquet layout).
pub fn dead_letter_schema() -> SchemaRef {
    static S: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new(schema::TENANT, DataType::Utf8, false),
            Field::new(schema::SOURCE_ID, DataType::Utf8, false),
            Field::new(schema::SOURCE_OFFSET, DataType::UInt64, false),
            Field::new(
                schema::INGEST_TIME,
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
                false,
            ),
            Field::new(schema::EVENT_KIND, DataType::Utf8, false),
            Field::new("stage", DataType::Utf8, false),
            Field::new("reason_code", DataType::Utf8, false),
            Field::new("reason_detail", DataType::Utf8, false),
            Field::new("existing_certificate_id", DataType::Utf8, true),
            Field::new(schema::RAW, DataType::Utf8, false),
        ]))
    })
    .clone()
}

/// Builds dead-letter rows for events that never became an event row (unparseable input).
#[derive(Default)]
pub struct RawDeadLetters {
    tenant: Vec<String>,
    source_id: Vec<String>,
    offset: Vec<u64>,
    ingest_ms: Vec<i64>,
    kind: Vec<&'static str>,
    code: Vec<&'static str>,
    detail: Vec<String>,
    raw: Vec<String>,
}

/// Where an unparseable event came from.
pub struct RawOrigin<'a> {
    pub tenant: &'a str,
    pub source_id: &'a str,
    pub offset: u64,
    pub ingest_time_ms: i64,
    pub kind: &'static str,
}

impl RawDeadLetters {
    pub fn push(&mut self, origin: &RawOrigin<'_>, raw: &str, reason: Reason) {
        self.tenant.push(origin.tenant.to_owned());
        self.source_id.push(origin.source_id.to_owned());
        self.offset.push(origin.offset);
        self.ingest_ms.push(origin.ingest_time_ms);
        self.kind.push(origin.kind);
        self.code.push(reason.code);
        self.detail.push(reason.detail);
        self.raw.push(raw.to_owned());
    }
    pub fn len(&self) -> usize {
        self.offset.len()
    }
    pub fn is_empty(&self) -> bool {
        self.offset.is_empty()
    }
    pub fn finish(&mut self, stage: &str) -> Result<RecordBatch, EngineError> {
        let n = self.offset.len();
        let me = std::mem::take(self);
        Ok(RecordBatch::try_new(
            dead_letter_schema(),
            vec![
                Arc::new(StringArray::from(me.tenant)),
                Arc::new(StringArray::from(me.source_id)),
                Arc::new(UInt64Array::from(me.offset)),
                Arc::new(
                    arrow::array::TimestampMillisecondArray::from(me.ingest_ms)
                        .with_timezone("+00:00"),
                ),
                Arc::new(StringArray::from(me.kind)),
                Arc::new(StringArray::from(vec![stage; n])),
                Arc::new(StringArray::from(me.code)),
                Arc::new(StringArray::from(me.detail)),
                Arc::new(StringArray::from(vec![None::<&str>; n])),
                Arc::new(StringArray::from(me.raw)),
            ],
        )?)
    }
}

/// The result of processing one batch.
pub struct Processed {
    /// Rows that continue downstream (may have extra columns).
    pub output: RecordBatch,
    /// Rows refused, already in dead-letter form.
    pub dead_letters: Option<RecordBatch>,
}

impl Processed {
    /// The usual outcome of a row-wise operator: keep the rows marked in `keep`, append `column`
    /// (one value per kept row) as a non-null field `name`, and dead-letter the rejections.
    pub fn keep_and_append(
        input: &RecordBatch,
        keep: Vec<bool>,
        rejections: Rejections,
        name: &str,
        column: ArrayRef,
        stage: &str,
    ) -> Result<Self, EngineError> {
        let accepted = if rejections.is_empty() {
            input.clone()
        } else {
            arrow::compute::filter_record_batch(input, &arrow::array::BooleanArray::from(keep))?
        };
        let mut fields: Vec<Arc<Field>> = accepted.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            name,
            column.data_type().clone(),
            false,
        )));
        let mut cols = accepted.columns().to_vec();
        cols.push(column);
        let output = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
        let dead_letters = if rejections.is_empty() {
            None
        } else {
            Some(rejections.into_dead_letters(input, stage)?)
        };
        Ok(Self {
            output,
            dead_letters,
        })
    }
}

/// What a node hands the engine when an epoch (checkpoint interval) closes.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct EpochOutput {
    /// Object keys written durably in this epoch.
    pub objects: Vec<String>,
    /// Rows written in this epoch.
    pub rows: u64,
}

/// A batch-at-a-time transform (or sink). Only [`Operator::process`] is mandatory.
///
/// The engine calls these from the node's own thread; use rayon inside `process` for CPU-heavy work.
/// Output must depend only on the input rows and durable state so a replay reproduces it exactly.
pub trait Operator: Send {
    /// Processes one batch in arrival order.
    fn process(&mut self, batch: RecordBatch, stage: &str) -> Result<Processed, EngineError>;

    /// Called when every input has delivered the barrier of `epoch`: make all effects durable.
    fn on_barrier(&mut self, _epoch: u64) -> Result<EpochOutput, EngineError> {
        Ok(EpochOutput::default())
    }

    /// Called once after the last input closed and the final barrier was handled.
    fn on_finish(&mut self) -> Result<(), EngineError> {
        Ok(())
    }
}

/// What a source produced in one poll.
pub enum SourcePoll {
    /// Events (possibly none) and dead letters for input that could not become events.
    Batch {
        events: Option<RecordBatch>,
        dead_letters: Option<RecordBatch>,
        /// Input records consumed, counting both events and dead letters.
        records: u64,
    },
    /// Nothing available right now (e.g. the WAL is caught up); poll again later.
    Idle,
    /// The input is exhausted (bounded sources only).
    Finished,
}

/// A replayable input. Positions are opaque to the engine and stored in checkpoints as JSON.
pub trait Source: Send {
    /// Positions the source just after `position` (None: from the beginning).
    fn resume(&mut self, position: Option<&serde_json::Value>) -> Result<(), EngineError>;
    /// Reads at most `max_records` input records (events plus unparseable input).
    fn poll(&mut self, max_records: usize) -> Result<SourcePoll, EngineError>;
    /// The position after the last record returned by `poll`.
    fn position(&self) -> serde_json::Value;
    /// Called once when the pipeline is asked to stop. A source that buffers durable input of its
    /// own (a write-ahead log) stops taking new input and returns true, and is then drained until
    /// it reports `Idle` before the final barrier, so a clean stop leaves nothing pending.
    fn begin_stop(&mut self) -> bool {
        false
    }
    /// Called after a checkpoint covering `position` is durable (e.g. to truncate a log).
    fn on_committed(&mut self, _position: &serde_json::Value) -> Result<(), EngineError> {
        Ok(())
    }
}

/// Dead-letter counts by reason, as reported in run summaries.
pub type ReasonCounts = BTreeMap<String, u64>;

/// Counts dead letters in `batch` by `reason_code`.
pub fn count_reasons(batch: &RecordBatch, into: &mut ReasonCounts) {
    if let Some(col) = batch
        .column_by_name("reason_code")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
    {
        for i in 0..col.len() {
            *into.entry(col.value(i).to_owned()).or_default() += 1;
        }
    }
}

/// Hears about dead letters after they are durably published (once per epoch, in order).
pub trait DeadLetterListener: Send + Sync {
    fn on_dead_letters(&self, batch: &RecordBatch);
}

/// Listeners registered by components at build time.
#[derive(Default, Clone)]
pub struct ListenerHub {
    listeners: Arc<std::sync::Mutex<Vec<Arc<dyn DeadLetterListener>>>>,
}

impl ListenerHub {
    pub fn register(&self, l: Arc<dyn DeadLetterListener>) {
        if let Ok(mut v) = self.listeners.lock() {
            v.push(l);
        }
    }
    pub fn notify(&self, batch: &RecordBatch) {
        let ls = match self.listeners.lock() {
            Ok(v) => v.clone(),
            Err(_) => return,
        };
        for l in ls {
            l.on_dead_letters(batch);
        }
    }
}
