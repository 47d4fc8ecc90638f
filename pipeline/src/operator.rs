//! The roles a DAG node can play: a [`Source`] reads a replayable input, an [`Operator`] turns one
//! Arrow batch into another, a [`Sink`](crate::sink::Sink) makes batches leave the pipeline with a
//! two-phase commit.
//!
//! Every node may reject rows: rejections go to the dead-letter stream with a reason
//! ([`crate::dead_letter`]), so each input record ends as exactly one output row or one dead letter.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::dead_letter::Rejections;
use crate::error::EngineError;

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
        let field = Field::new(name, column.data_type().clone(), false);
        Self::keep_and_append_columns(input, keep, rejections, vec![(field, column)], stage)
    }

    /// [`Processed::keep_and_append`] with several appended columns, each with its own field.
    pub fn keep_and_append_columns(
        input: &RecordBatch,
        keep: Vec<bool>,
        rejections: Rejections,
        columns: Vec<(Field, ArrayRef)>,
        stage: &str,
    ) -> Result<Self, EngineError> {
        let accepted = if rejections.is_empty() {
            input.clone()
        } else {
            arrow::compute::filter_record_batch(input, &arrow::array::BooleanArray::from(keep))?
        };
        let mut fields: Vec<Arc<Field>> = accepted.schema().fields().iter().cloned().collect();
        let mut cols = accepted.columns().to_vec();
        for (field, column) in columns {
            fields.push(Arc::new(field));
            cols.push(column);
        }
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

/// A batch-at-a-time transform. Only [`Operator::process`] is mandatory.
///
/// The engine calls these from the node's own thread; use rayon inside `process` for CPU-heavy work.
/// Output must depend only on the input rows and durable state so a replay reproduces it exactly.
pub trait Operator: Send {
    /// Processes one batch in arrival order.
    fn process(&mut self, batch: RecordBatch, stage: &str) -> Result<Processed, EngineError>;

    /// Called once at start, before any batch, with the last committed checkpoint's epoch (0 when
    /// none): an operator with durable state brings it back to the end of that epoch, since every
    /// later epoch is replayed (the same batches, cut at the same barriers).
    ///
    /// Epoch numbers are not told to `process`: the batches after barrier `n` belong to `n + 1`.
    /// The coordinator keeps at most two epochs in flight, and a stopping run cuts one more, so
    /// when an operator handles barrier `n` the checkpoint of `n - 3` is stored: undo information
    /// of epochs up to `n - 3` can go.
    fn restore(&mut self, _committed_epoch: u64) -> Result<(), EngineError> {
        Ok(())
    }

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
