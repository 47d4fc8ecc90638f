//! Dead letters: every record a node refuses becomes one row of the dead-letter stream, with the
//! stage that refused it, a stable reason code and a human detail naming the fix. The stream is
//! part of the same epochs as every other output, so each input record ends as exactly one output
//! row or one dead-letter row.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder, UInt32Array, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::columns::{envelope, Column, ColumnType};
use crate::error::EngineError;

/// The node that refused the record.
pub const STAGE: Column = Column::required("stage", ColumnType::Utf8);
/// Stable snake_case reason code.
pub const REASON_CODE: Column = Column::required("reason_code", ColumnType::Utf8);
/// Human explanation naming the field and the fix.
pub const REASON_DETAIL: Column = Column::required("reason_detail", ColumnType::Utf8);
/// For duplicates: the id the first record received.
pub const EXISTING_CERTIFICATE_ID: Column =
    Column::new("existing_certificate_id", ColumnType::Utf8);

/// The columns of a dead-letter row, in schema order (also their Parquet layout).
pub const DEAD_LETTER_COLUMNS: [Column; 10] = [
    envelope::TENANT,
    envelope::SOURCE_ID,
    envelope::SOURCE_OFFSET,
    envelope::INGEST_TIME,
    envelope::EVENT_KIND,
    STAGE,
    REASON_CODE,
    REASON_DETAIL,
    EXISTING_CERTIFICATE_ID,
    envelope::RAW,
];

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
        let pick = |column: Column| -> Result<ArrayRef, EngineError> {
            let name = column.name;
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
                pick(envelope::TENANT)?,
                pick(envelope::SOURCE_ID)?,
                pick(envelope::SOURCE_OFFSET)?,
                pick(envelope::INGEST_TIME)?,
                pick(envelope::EVENT_KIND)?,
                stage_col,
                Arc::new(code.finish()),
                Arc::new(detail.finish()),
                Arc::new(existing.finish()),
                pick(envelope::RAW)?,
            ],
        )?)
    }
}

/// Schema of dead-letter records (also their Parquet layout).
pub fn dead_letter_schema() -> SchemaRef {
    static S: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(
            DEAD_LETTER_COLUMNS
                .iter()
                .map(Column::field)
                .collect::<Vec<_>>(),
        ))
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
