//! `http_source`: DIVOC's certify API (JSON v1/v3 and bulk CSV) in front of a write-ahead log.
//!
//! - `POST /divoc/api/v1/certify`, `POST /divoc/api/v3/certify`: JSON array of certify requests.
//! - `POST /divoc/api/v1/bulkCertify`: DIVOC bulk CSV (multipart field `file`, or a text/csv body).
//! - `GET /divoc/api/v1/certify/uploads[/{id}[/errors]]`: upload list, status, per-row errors.
//! - `GET /health`: 200 `{"status":"ok"}` (503 `{"status":"failing"}` after a WAL write failure),
//!   without authentication (probes carry no token), revealing nothing else.
//!
//! Every other request needs `Authorization: Bearer <token>`; the token decides the tenant, and
//! with no token configured every such request is answered 401. An upload is answered 200
//! `{"transactionId": "u<first seq>", "accepted": n}` only once all its rows are durable in the
//! write-ahead log ([`wal`]); a refused request (400/401/413/415) writes nothing.
//!
//! As a [`Source`](divoc_pipeline::operator::Source) the node replays the log from a checkpointed
//! `{"next_seq": N}` and deletes segments once a checkpoint covers them. Rows that cannot become
//! events are dead-lettered with `invalid_field_type`, `invalid_date` or `malformed_csv`; dead letters
//! of this node (from any stage) are recorded per upload row and served under `/errors`.

mod config;
mod crc;
mod lifecycle;
pub mod panics;
mod registry;
mod server;
mod source;
pub mod wal;

use divoc_pipeline::config::{BuildContext, BuiltNode, CheckContext, Component, ConfigIssue, Role};
use divoc_pipeline::EngineError;

pub use config::{HttpSourceConfig, TokenConfig, TokenRole, MIN_TOKEN_CHARS};
pub use crc::crc32;
pub use registry::{RowErrorView, UploadErrors, UploadStatus};
pub use server::{Accepted, ApiError, ErrorDetail, HttpMetrics};
pub use source::{HttpSource, HttpSourcePosition};

impl Component for HttpSourceConfig {
    const KIND: &'static str = "http_source";
    const ROLE: Role = Role::Source;
    /// The certify event schema.
    fn adds() -> Vec<divoc_pipeline::columns::Column> {
        divoc_model::columns::EVENT_COLUMNS.to_vec()
    }
    const ABOUT: &'static str =
        "DIVOC certify API (JSON v1/v3, bulk CSV) with bearer-token tenants, durable in a write-ahead log";

    fn check(&self, _ctx: &CheckContext<'_>) -> Result<(), ConfigIssue> {
        self.validate()
    }

    fn build(self, ctx: &BuildContext<'_>) -> Result<BuiltNode, EngineError> {
        Ok(BuiltNode::Source(Box::new(self.open(ctx)?)))
    }
}
