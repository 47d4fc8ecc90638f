//! Benchmark support for the DIVOC pipeline.
//!
//! * [`gen`] writes synthetic certify events (NDJSON or bulk CSV) whose expected outcome — valid,
//!   duplicate, or invalid with a specific reason code — is known up front, so throughput runs
//!   can also check correctness (credentials issued == `valid_unique`, rejections per reason).
//! * [`load`] is an HTTP/1.1 keep-alive load client for `POST /divoc/api/v1/certify`, meant to run
//!   in a separate process from the server so client cost does not distort server measurements.

pub mod gen;
pub mod load;

pub use gen::analytics_rows::{AnalyticsRows, AnalyticsRowsConfig};
pub use gen::{
    write_events, EventGenerator, Expected, GenConfig, GenFormat, GenSummary, GeneratedEvent,
};
pub use load::{run_load, LoadConfig, LoadReport};
