//! The DIVOC certify event model: the request types, the Arrow event schema and its builder, every
//! column's declaration, the vaccine catalogue. Sources build events with it; operators and sinks
//! read its columns; the engine never sees it.

pub mod analytics;
pub mod catalogue;
pub mod columns;
pub mod event;
pub mod lifecycle;
pub mod schema;
