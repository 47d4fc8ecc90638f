//! The Sink role: how batches leave the pipeline, exactly once, through a two-phase commit.
//!
//! # The contract
//!
//! The engine cuts the input into epochs with barriers. For one sink and one epoch N:
//!
//! 1. [`Sink::write`] is called with every batch of epoch N, in arrival order (a replay after a
//!    crash delivers the same batches in the same order, cut at the same barriers).
//! 2. When every input of the sink delivered barrier N, [`Sink::pre_commit`] is called: the sink
//!    makes epoch N's output *durable or staged* and returns what it wrote ([`EpochOutput`]:
//!    object keys, rows). Nothing may be lost after `pre_commit` returns; nothing needs to be
//!    visible yet. The return value is stored in the checkpoint.
//! 3. Once every node pre-committed epoch N, the coordinator stores the checkpoint (source
//!    positions + every node's output) durably. That is the commit point of epoch N.
//! 4. Then [`Sink::commit`] is called with the stored checkpoint: the sink makes the staged
//!    output visible (rename, publish a manifest, commit a transaction). `commit` must be
//!    idempotent: after a crash between 3 and 4 the engine calls it again on restart.
//! 5. On restart, before any `write`, the engine calls `commit` again for the last committed
//!    epoch (if any) and then [`Sink::abort`] with that epoch: staged work of any later epoch never
//!    committed and must be discarded (the replay re-stages it).
//!
//! Two ways to meet it:
//!
//! * **Deterministic overwrite** (our Parquet, PDF and dead-letter sinks): `pre_commit` writes the
//!   final objects durably under keys that depend only on the epoch and the rows, so a replayed
//!   epoch rewrites the same keys with the same bytes; `commit` and `abort` have nothing to do.
//!   Readers that must never see an uncommitted epoch read through the checkpoint manifests.
//! * **Staging** (the NDJSON sink; an object store without atomic rename; a topic with
//!   transactions): `pre_commit` writes to a staging location named by the epoch, `commit` moves
//!   it into place (and treats "already moved" as done), `abort` deletes staging of later epochs.
//!   A message broker without transactions gets the same outcome with a per-record sequence id
//!   (source id + offset) that consumers deduplicate on.

use arrow::record_batch::RecordBatch;

use crate::checkpoint::Checkpoint;
use crate::error::EngineError;
use crate::operator::EpochOutput;

/// Which stream a sink node consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkInput {
    /// The batches on its input edges.
    Edges,
    /// Every node's rejected rows (the dead-letter stream); it has no input edges.
    DeadLetters,
    /// No rows at all: the sink only takes part in the commit phase (e.g. checkpoint manifests).
    CommitsOnly,
}

/// What `commit` is told about the epoch that was committed.
pub struct CommitInfo<'a> {
    pub epoch: u64,
    /// What this sink's `pre_commit` returned for the epoch (empty if it had no rows).
    pub written: &'a EpochOutput,
    /// The whole stored checkpoint (source positions and every node's output).
    pub checkpoint: &'a Checkpoint,
}

/// A node that makes batches leave the pipeline. Only [`Sink::write`] is mandatory.
pub trait Sink: Send {
    /// Buffers or stages one batch of the current epoch.
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError>;

    /// Phase one: epoch `epoch` is complete; make it durable or staged and say what was written.
    fn pre_commit(&mut self, _epoch: u64) -> Result<EpochOutput, EngineError> {
        Ok(EpochOutput::default())
    }

    /// Phase two, after the checkpoint of `info.epoch` is stored. Idempotent.
    fn commit(&mut self, _info: &CommitInfo<'_>) -> Result<(), EngineError> {
        Ok(())
    }

    /// On restart: discard staged work of every epoch after `committed`.
    fn abort(&mut self, _committed: u64) -> Result<(), EngineError> {
        Ok(())
    }

    /// Called once after the last input closed and the last epoch was committed.
    fn on_finish(&mut self) -> Result<(), EngineError> {
        Ok(())
    }
}
