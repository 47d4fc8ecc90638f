//! `publish`: accepted events to Parquet in the object store, one file per tenant and ingest date
//! per epoch (`<prefix>/tenant=<t>/date=<YYYY-MM-DD>/part-<epoch>.parquet`), written durably at the
//! epoch barrier, before the checkpoint commits the source offsets.

use arrow::record_batch::RecordBatch;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::{EpochOutput, Operator, Processed};
use divoc_pipeline::parquet_out::PartitionedParquet;
use divoc_pipeline::EngineError;
use serde::Deserialize;

/// Options of a `publish` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Key prefix inside the store.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Columns left out of the output; the original request text is dropped by default because
    /// the typed columns carry it and it would double the size.
    #[serde(default = "default_drop")]
    pub drop_columns: Vec<String>,
}

fn default_prefix() -> String {
    "accepted".into()
}
fn default_drop() -> Vec<String> {
    vec!["raw".into()]
}

impl Component for PublishConfig {
    const KIND: &'static str = "publish";
    const ROLE: Role = Role::Operator;
    const ABOUT: &'static str =
        "writes batches as Parquet partitioned by tenant and date to the object store";

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        let p = &self.prefix;
        if p.is_empty()
            || p.starts_with('/')
            || p.ends_with('/')
            || p.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(ConfigIssue::new(
                "prefix",
                format!("{p:?} is not a clean relative key prefix"),
                "use e.g. prefix = \"accepted\"",
            ));
        }
        if ["dead-letter", "checkpoints"].contains(&p.as_str()) {
            return Err(ConfigIssue::new(
                "prefix",
                format!("{p:?} is reserved by the engine"),
                "choose another prefix",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Operator(Box::new(Publish {
            out: PartitionedParquet::new(ctx.storage.clone(), self.prefix, self.drop_columns),
        })))
    }
}

pub struct Publish {
    out: PartitionedParquet,
}

impl Operator for Publish {
    fn process(&mut self, batch: RecordBatch, _stage: &str) -> Result<Processed, EngineError> {
        let schema = batch.schema();
        self.out.push(batch)?;
        Ok(Processed {
            output: RecordBatch::new_empty(schema),
            dead_letters: None,
        })
    }

    fn on_barrier(&mut self, epoch: u64) -> Result<EpochOutput, EngineError> {
        let f = self.out.flush(epoch)?;
        Ok(EpochOutput {
            objects: f.objects,
            rows: f.rows,
        })
    }
}
