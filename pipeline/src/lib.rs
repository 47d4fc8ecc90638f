//! The DIVOC pipeline engine: event schema, pipeline config, DAG runtime with exactly-once
//! checkpoints, metrics and object storage.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod event;
pub mod metrics;
pub mod operator;
pub mod parquet_out;
pub mod runtime;
pub mod schema;
pub mod storage;

pub use error::EngineError;
