//! `pdf_sink`: stores each row's rendered PDF (`pdf`) as an object under its `pdf_key`.
//!
//! PDFs are written as they arrive without per-file fsync; `pre_commit` fsyncs every file of the
//! epoch (one pass for the whole epoch instead of two syncs per object) before the checkpoint
//! commits. Deterministic overwrite: rendering has no clock and the key depends only on the
//! certificate, so a replay rewrites byte-identical objects under the same keys.

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use divoc_model::columns::{PDF, PDF_KEY};
use divoc_pipeline::columns::Column;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::operator::EpochOutput;
use divoc_pipeline::sink::Sink;
use divoc_pipeline::EngineError;
use serde::Deserialize;

use crate::storage::Storage;

/// Options of a `pdf_sink` node (none yet: the key comes with each row).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfSinkConfig {}

impl Component for PdfSinkConfig {
    const KIND: &'static str = "pdf_sink";
    const ROLE: Role = Role::Sink;
    const ABOUT: &'static str =
        "stores each rendered PDF in the object store under its pdf_key (put render before it)";

    fn needs() -> Vec<Column> {
        vec![PDF, PDF_KEY]
    }

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        Ok(())
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Sink(Box::new(PdfSink {
            storage: ctx.resources.get::<Storage>()?.clone(),
            pending: Vec::new(),
        })))
    }
}

pub struct PdfSink {
    storage: Storage,
    /// Keys written in this epoch, fsynced in `pre_commit`.
    pending: Vec<String>,
}

impl Sink for PdfSink {
    fn write(&mut self, batch: RecordBatch) -> Result<(), EngineError> {
        let pdfs = batch
            .column_by_name(PDF.name)
            .and_then(|c| c.as_binary_opt::<i32>())
            .ok_or_else(|| EngineError::Schema("pdf_sink needs the Binary column pdf".into()))?;
        let keys = batch
            .column_by_name(PDF_KEY.name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| EngineError::Schema("pdf_sink needs the Utf8 column pdf_key".into()))?;
        let mut writes = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            if pdfs.is_null(i) || keys.is_null(i) {
                continue;
            }
            writes.push((
                keys.value(i).to_owned(),
                Bytes::copy_from_slice(pdfs.value(i)),
            ));
        }
        self.pending.extend(writes.iter().map(|(k, _)| k.clone()));
        self.storage.put_many_unsynced(writes)
    }

    fn pre_commit(&mut self, _epoch: u64) -> Result<EpochOutput, EngineError> {
        let keys = std::mem::take(&mut self.pending);
        self.storage.sync_keys(&keys)?;
        tracing::debug!(pdfs = keys.len(), "pdf_sink: epoch's PDFs durable");
        // The PDFs are not rows of the run's output: the publish sink counts the certificates,
        // and listing every PDF in the checkpoint would make it grow with the epoch.
        Ok(EpochOutput::default())
    }
}
