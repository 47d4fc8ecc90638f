//! `qr_payload`: DIVOC's QR payload for each signed credential (ZIP of `certificate.json`), stored
//! with the certificate as a Binary column. A payload too large for a byte-mode QR at error
//! correction M is dead-lettered as `qr_too_large` rather than silently producing no QR.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BinaryBuilder};
use arrow::record_batch::RecordBatch;
use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::dead_letter::{Reason, Rejections};
use divoc_pipeline::operator::{Operator, Processed};
use divoc_pipeline::EngineError;
use rayon::prelude::*;
use serde::Deserialize;

use divoc_model::columns::{CREDENTIAL, QR_PAYLOAD};
use divoc_pipeline::columns::Column;
use divoc_qr::{zip_certificate, MAX_QR_BYTES_M};

/// Options of a `qr_payload` node (none yet; the table may be empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrPayloadConfig {}

impl Component for QrPayloadConfig {
    const KIND: &'static str = "qr_payload";
    const ROLE: Role = Role::Operator;
    fn needs() -> Vec<Column> {
        vec![CREDENTIAL]
    }
    fn adds() -> Vec<Column> {
        vec![QR_PAYLOAD]
    }
    const ABOUT: &'static str = "DIVOC QR payload: ZIP(certificate.json) per signed credential";

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        Ok(())
    }

    fn build(self, _ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Operator(Box::new(QrPayload)))
    }
}

pub struct QrPayload;

impl Operator for QrPayload {
    fn process(&mut self, batch: RecordBatch, stage: &str) -> Result<Processed, EngineError> {
        let creds = batch
            .column_by_name(CREDENTIAL.name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| {
                EngineError::Schema(
                    "qr_payload needs the credential column (put sign before it)".into(),
                )
            })?;
        // A null credential (an event that issues no certificate) gets a null payload.
        let zips: Vec<Option<Vec<u8>>> = (0..batch.num_rows())
            .into_par_iter()
            .map(|i| {
                creds
                    .is_valid(i)
                    .then(|| zip_certificate(creds.value(i).as_bytes()))
            })
            .collect();
        let bytes = zips.iter().flatten().map(Vec::len).sum();
        let mut out = BinaryBuilder::with_capacity(zips.len(), bytes);
        let mut keep = Vec::with_capacity(zips.len());
        let mut rejections = Rejections::default();
        for (i, z) in zips.iter().enumerate() {
            let Some(z) = z else {
                out.append_null();
                keep.push(true);
                continue;
            };
            if z.len() > MAX_QR_BYTES_M {
                rejections.push(
                    i,
                    Reason::new(
                        "qr_too_large",
                        format!(
                            "QR payload is {} bytes; a byte-mode QR at EC M holds {MAX_QR_BYTES_M}",
                            z.len()
                        ),
                    ),
                );
                keep.push(false);
            } else {
                out.append_value(z);
                keep.push(true);
            }
        }
        Processed::keep_and_append_columns(
            &batch,
            keep,
            rejections,
            vec![(QR_PAYLOAD.field(), Arc::new(out.finish()) as _)],
            stage,
        )
    }
}
