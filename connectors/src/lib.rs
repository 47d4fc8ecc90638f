//! Every external system the pipeline touches: the sources (NDJSON/CSV files, HTTP ingest with
//! its write-ahead log), the object store, and the sinks (Parquet publish, dead letters, PDFs and
//! other blobs, NDJSON, checkpoint manifests). Each component is one module with a typed config.

pub mod files;
pub mod http;
pub mod parquet;
pub mod reissue;
pub mod sinks;
pub mod storage;
