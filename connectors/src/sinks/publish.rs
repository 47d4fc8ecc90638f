//! `publish`: accepted events to Parquet in the object store, one file per tenant and ingest date
//! per epoch (`<prefix>/tenant=<t>/date=<YYYY-MM-DD>/part-<epoch>.parquet`), written durably in
//! `pre_commit`, before the checkpoint commits the source offsets. Deterministic overwrite: a
//! replayed epoch rewrites the same keys with the same bytes.

use arrow::record_batch::RecordBatch;
use divoc_pipeline::columns::{envelope, Column};
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::Sink;
use divoc_pipeline::EngineError;
use serde::Deserialize;

use crate::parquet::PartitionedParquet;
use crate::storage::Storage;

/// Options of a `publish` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Key prefix inside the store.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Columns left out of the output; the original request text is dropped by default because
    /// the typed columns carry it and it would double the size, and so are rendered PDFs (their
    /// own sink stores them as objects).
    #[serde(default = "default_drop")]
    pub drop_columns: Vec<String>,
}

fn default_prefix() -> String {
    "accepted".into()
}
fn default_drop() -> Vec<String> {
    vec!["raw".into(), "pdf".into()]
}

impl Component for PublishConfig {
    const KIND: &'static str = "publish";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "writes batches as Parquet partitioned by tenant and date to the object store";

    fn needs() -> Vec<Column> {
        vec![envelope::TENANT, envelope::INGEST_TIME]
    }

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        super::check_prefix(&self.prefix, "accepted")?;
        if self.prefix == super::dead_letter::DEFAULT_PREFIX {
            return Err(ConfigIssue::new(
                "prefix",
                format!("{:?} is where dead letters go", self.prefix),
                "choose another prefix",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        let storage = ctx.resources.get::<Storage>()?.clone();
        Ok(BuiltNode::Sink(Box::new(Publish {
            out: PartitionedParquet::new(storage, self.prefix, self.drop_columns),
        })))
    }
}

pub struct Publish {
    out: PartitionedParquet,
}

impl Sink for Publish {
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
