//! `checkpoint_manifest`: after each checkpoint is stored, writes it to the object store as
//! `<prefix>/epoch-<N:012>.json` (source positions, every node's objects and rows), so readers can
//! take exactly the committed objects. A commits-only sink: it gets no rows. Every pipeline gets
//! one named `manifest` unless its file declares a node of this kind itself.
//!
//! Written in the commit phase, after the local checkpoint: a crash in between is finished on
//! restart, when the engine runs the commit of the last committed epoch again.

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::sink::{CommitInfo, Sink, SinkInput};
use divoc_pipeline::EngineError;
use serde::Deserialize;

use crate::storage::Storage;

/// Options of a `checkpoint_manifest` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestConfig {
    /// Key prefix of the manifests.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    "checkpoints".into()
}

impl Component for ManifestConfig {
    const KIND: &'static str = "checkpoint_manifest";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "writes each committed checkpoint to the object store as checkpoints/epoch-<N>.json for readers";

    fn sink_input(&self) -> SinkInput {
        SinkInput::CommitsOnly
    }

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        let p = &self.prefix;
        if p.is_empty() || p.starts_with('/') || p.ends_with('/') || p.contains("..") {
            return Err(ConfigIssue::new(
                "prefix",
                format!("{p:?} is not a clean relative key prefix"),
                "use e.g. prefix = \"checkpoints\"",
            ));
        }
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Sink(Box::new(Manifest {
            storage: ctx.resources.get::<Storage>()?.clone(),
            prefix: self.prefix,
        })))
    }
}

pub struct Manifest {
    storage: Storage,
    prefix: String,
}

impl Sink for Manifest {
    fn write(&mut self, _batch: RecordBatch) -> Result<(), EngineError> {
        Err(EngineError::Other(
            "checkpoint_manifest takes no rows".into(),
        ))
    }

    fn commit(&mut self, info: &CommitInfo<'_>) -> Result<(), EngineError> {
        let manifest = serde_json::to_vec_pretty(info.checkpoint)
            .map_err(|e| EngineError::State(e.to_string()))?;
        self.storage.put(
            &format!("{}/epoch-{:012}.json", self.prefix, info.epoch),
            Bytes::from(manifest),
        )
    }
}
