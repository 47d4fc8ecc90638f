//! Errors the engine and its components report.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("schema: {0}")]
    Schema(String),
    #[error("state store: {0}")]
    State(String),
    /// An error of a component's own library (Parquet, the object store, a broker client...).
    #[error("{what}: {source}")]
    External {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Wraps a library error, naming the library (`EngineError::external("parquet", e)`).
    pub fn external(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        EngineError::External {
            what,
            source: Box::new(source),
        }
    }
}
