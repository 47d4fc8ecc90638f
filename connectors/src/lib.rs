//! Sources: NDJSON/CSV files, HTTP ingest with write-ahead log.

pub mod http;
