//! Declared columns: what a component needs on its input and what it adds to its output.
//!
//! Components declare their columns as [`Column`] constants (the DIVOC ones live in one place, the
//! `divoc-model` crate's `columns` module); `divoc validate-config` follows them through the DAG
//! ([`check_flow`](crate::config)) so a wrong node order is found before the first batch.
//!
//! The engine itself knows only the *envelope*: the columns every record carries so it can be
//! replayed, partitioned and dead-lettered (tenant, kind, ingest time, source position, raw text).

use arrow::datatypes::{DataType, Field, TimeUnit};
use std::sync::Arc;

/// The Arrow types columns are declared with (a closed set, so declarations can be constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Utf8,
    Binary,
    Int64,
    UInt64,
    Date32,
    /// Milliseconds since the epoch, UTC.
    TimestampMsUtc,
    /// A list of UTF-8 strings.
    ListUtf8,
}

impl ColumnType {
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Binary => DataType::Binary,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::UInt64 => DataType::UInt64,
            ColumnType::Date32 => DataType::Date32,
            ColumnType::TimestampMsUtc => {
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))
            }
            ColumnType::ListUtf8 => {
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
            }
        }
    }

    /// Short name for messages (`Utf8`, `Timestamp(ms, UTC)`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Utf8 => "Utf8",
            ColumnType::Binary => "Binary",
            ColumnType::Int64 => "Int64",
            ColumnType::UInt64 => "UInt64",
            ColumnType::Date32 => "Date32",
            ColumnType::TimestampMsUtc => "Timestamp(ms, UTC)",
            ColumnType::ListUtf8 => "List<Utf8>",
        }
    }
}

/// A named, typed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
}

impl Column {
    /// A column that may hold nulls.
    pub const fn new(name: &'static str, ty: ColumnType) -> Self {
        Self {
            name,
            ty,
            nullable: true,
        }
    }

    /// A column that never holds nulls.
    pub const fn required(name: &'static str, ty: ColumnType) -> Self {
        Self {
            name,
            ty,
            nullable: false,
        }
    }

    pub fn field(&self) -> Field {
        Field::new(self.name, self.ty.arrow(), self.nullable)
    }
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` ({})", self.name, self.ty.name())
    }
}

/// The envelope every record carries from its source to its sink or dead letter.
pub mod envelope {
    use super::{Column, ColumnType};

    /// Whose data this is; partitions output and scopes every key.
    pub const TENANT: Column = Column::required("tenant", ColumnType::Utf8);
    /// What kind of input the record was (e.g. `certify_v1`, `bulk_csv`).
    pub const EVENT_KIND: Column = Column::required("event_kind", ColumnType::Utf8);
    /// When the record became durable at its source (never the processing time).
    pub const INGEST_TIME: Column = Column::required("ingest_time", ColumnType::TimestampMsUtc);
    /// Replay position: the source's id for its input (a file, a log)...
    pub const SOURCE_ID: Column = Column::required("source_id", ColumnType::Utf8);
    /// ...and the record's offset in it. Together unique per record.
    pub const SOURCE_OFFSET: Column = Column::required("source_offset", ColumnType::UInt64);
    /// The original input text, kept for dead letters.
    pub const RAW: Column = Column::required("raw", ColumnType::Utf8);

    /// Every envelope column, in schema order.
    pub const ALL: [Column; 6] = [
        TENANT,
        EVENT_KIND,
        INGEST_TIME,
        SOURCE_ID,
        SOURCE_OFFSET,
        RAW,
    ];
}
