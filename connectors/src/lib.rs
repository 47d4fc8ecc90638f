//! Sources: NDJSON/CSV files, HTTP ingest with write-ahead log.

pub mod files;
pub mod http;
