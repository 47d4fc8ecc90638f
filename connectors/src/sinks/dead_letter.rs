//! `dead_letter`: the dead-letter stream to Parquet
//! (`<prefix>/tenant=<t>/date=<YYYY-MM-DD>/part-<epoch>.parquet`, the
//! [`dead_letter_schema`](divoc_pipeline::dead_letter::dead_letter_schema) columns). Every pipeline
//! gets one named `dead_letter` unless its file declares a node of this kind itself.

use arrow::record_batch::RecordBatch;
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::dead_letter::DEAD_LETTER_COLUMNS;
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::{Sink, SinkInput};
use divoc_pipeline::EngineError;
use serde::Deserialize;

use crate::parquet::PartitionedParquet;
use crate::storage::Storage;

pub const DEFAULT_PREFIX: &str = "dead-letter";

/// Options of a `dead_letter` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Key prefix inside the store.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    DEFAULT_PREFIX.into()
}

impl Component for DeadLetterConfig {
    const KIND: &'static str = "dead_letter";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "writes every rejected record (reason, stage, original text) as Parquet partitioned by tenant and date";

    fn needs() -> Vec<Column> {
        DEAD_LETTER_COLUMNS.to_vec()
    }

    fn sink_input(&self) -> SinkInput {
        SinkInput::DeadLetters
    }

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        super::check_prefix(&self.prefix, DEFAULT_PREFIX)
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let storage = ctx.resources.get::<Storage>()?.clone();
        Ok(BuiltNode::Sink(Box::new(DeadLetters {
            out: PartitionedParquet::new(storage, self.prefix, vec![]),
        })))
    }
}

pub struct DeadLetters {
    out: PartitionedParquet,
}

impl Sink for DeadLetters {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        self.out.push(batch)
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        let f = self.out.flush(epoch)?;
        Ok(EpochOutput {
            objects: f.objects,
            rows: f.rows,
        })
    }
}
