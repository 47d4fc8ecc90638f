//! The pipeline engine: a DAG of sources, operators and sinks over Arrow record batches, run with
//! bounded channels (backpressure), barrier-aligned epochs and exactly-once checkpoints.
//!
//! It knows no DIVOC field and no concrete storage: components bring those (the `divoc-model`,
//! `divoc-operators` and `divoc-connectors` crates) and are registered by the binary.

pub mod checkpoint;
pub mod columns;
pub mod config;
pub mod dead_letter;
pub mod error;
pub mod latency;
pub mod metrics;
pub mod operator;
pub mod resources;
pub mod runtime;
pub mod sink;

pub use error::EngineError;
