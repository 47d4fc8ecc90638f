//! SQL over the Parquet the pipeline publishes, with DataFusion, reading through the same object
//! store URL the pipeline writes to.
//!
//! Tables ([`SqlEngine::open`]):
//!
//! | table | from | access |
//! |---|---|---|
//! | `certificates` | `analytics/certificates/` (one PII-free row per certificate) | analytics |
//! | `certificate_counts` | `analytics/rollups/certificates/` (per-epoch counts; `SUM(certificates)`) | analytics |
//! | `facility_counts` | `analytics/rollups/facilities/` | analytics |
//! | `dead_letters` | `dead-letter/`, without the original text and details | analytics |
//! | `downloads` | `analytics/downloads/` | analytics |
//! | `verifications` | `analytics/verifications/` (verify page outcomes, no PII) | analytics |
//! | `accepted` | `accepted/` (every event column: names, contacts, identities) | full |
//!
//! Queries are read-only: DDL, DML (`INSERT`, `COPY`), `SET` and other statements are refused
//! before planning, and a result is cut at a row limit and a time limit.

mod queries;
mod rollup_table;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use divoc_model::analytics::{
    analytics_schema, certificate_rollup_schema, downloads_schema, facility_rollup_schema,
    verifications_schema,
};
use divoc_pipeline::columns::envelope;
use divoc_pipeline::dead_letter::{REASON_CODE, STAGE};
use futures::StreamExt;
use thiserror::Error;

pub use queries::{DashboardQueries, Filters, NamedQuery};

#[derive(Debug, Error)]
pub enum AnalyticsError {
    #[error("storage URL {url:?}: {problem}")]
    Storage { url: String, problem: String },
    #[error("{0}")]
    Refused(String),
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error(
        "query took longer than {0:?}; narrow it (a date range, a tenant) or use the rollup tables"
    )]
    Timeout(Duration),
    #[error("configuration: {0}")]
    Config(String),
}

/// What a caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The PII-free tables only.
    Analytics,
    /// Also `accepted`, the published events with personal data.
    Full,
}

/// Bounds on one query's answer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rows: 10_000,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A query's answer.
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// True when rows beyond `Limits::max_rows` were left out.
    pub truncated: bool,
}

impl QueryResult {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A table the engine registers: its name, key prefix and schema.
pub struct TableSpec {
    pub name: &'static str,
    pub prefix: &'static str,
    pub schema: SchemaRef,
    pub access: Access,
    pub about: &'static str,
    /// Partial counts with compacted partitions: read through the live-file rule.
    pub rollup: bool,
}

/// Every table, in the order `SHOW TABLES` lists them.
pub fn table_specs() -> Vec<TableSpec> {
    let dead_letters = Arc::new(Schema::new(
        [
            envelope::TENANT,
            envelope::INGEST_TIME,
            envelope::EVENT_KIND,
            STAGE,
            REASON_CODE,
        ]
        .iter()
        .map(|c| c.field())
        .collect::<Vec<_>>(),
    ));
    vec![
        TableSpec {
            name: "certificates",
            prefix: "analytics/certificates/",
            schema: analytics_schema(),
            access: Access::Analytics,
            about: "one PII-free row per issued certificate",
            rollup: false,
        },
        TableSpec {
            name: "certificate_counts",
            prefix: "analytics/rollups/certificates/",
            schema: certificate_rollup_schema(),
            access: Access::Analytics,
            about: "certificates by day, tenant, program, state, district, vaccine, dose, age band, gender (sum the counts)",
            rollup: true,
        },
        TableSpec {
            name: "facility_counts",
            prefix: "analytics/rollups/facilities/",
            schema: facility_rollup_schema(),
            access: Access::Analytics,
            about: "certificates by day, tenant, facility and vaccine (sum the counts)",
            rollup: true,
        },
        TableSpec {
            name: "dead_letters",
            prefix: "dead-letter/",
            schema: dead_letters,
            access: Access::Analytics,
            about: "rejected events: tenant, time, kind, stage, reason (no original text)",
            rollup: false,
        },
        TableSpec {
            name: "downloads",
            prefix: "analytics/downloads/",
            schema: downloads_schema(),
            access: Access::Analytics,
            about: "certificate downloads served",
            rollup: false,
        },
        TableSpec {
            name: "verifications",
            prefix: "analytics/verifications/",
            schema: verifications_schema(),
            access: Access::Analytics,
            about: "verify page outcomes: time, outcome, format, reason (no certificate data)",
            rollup: false,
        },
        TableSpec {
            name: "accepted",
            prefix: "accepted/",
            schema: accepted_schema(),
            access: Access::Full,
            about: "published events with personal data (full access only)",
            rollup: false,
        },
    ]
}

/// The `accepted/` rows: the event schema without `raw`, plus the certificate columns.
fn accepted_schema() -> SchemaRef {
    let mut fields: Vec<_> = divoc_model::columns::EVENT_COLUMNS
        .iter()
        .filter(|c| c.name != envelope::RAW.name)
        .map(|c| c.field())
        .collect();
    for c in [
        divoc_model::columns::CERTIFICATE_ID,
        divoc_model::columns::PREVIOUS_CERTIFICATE_ID,
        divoc_model::columns::CREDENTIAL,
        divoc_model::columns::QR_PAYLOAD,
    ] {
        fields.push(c.field());
    }
    Arc::new(Schema::new(fields))
}

/// A DataFusion session over one store.
pub struct SqlEngine {
    ctx: SessionContext,
    tables: Vec<String>,
}

/// An object store to register with DataFusion, under the URL of its root.
type RootStore = (url::Url, Arc<dyn object_store::ObjectStore>);

/// `(the store to register, if DataFusion lacks one; the base URL of the tables)`.
fn store_for(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<(Option<RootStore>, String), AnalyticsError> {
    let bad = |problem: String| AnalyticsError::Storage {
        url: url.to_owned(),
        problem,
    };
    match url.split_once("://") {
        None | Some(("file", _)) => {
            let path = url.strip_prefix("file://").unwrap_or(url);
            let abs = std::fs::canonicalize(path)
                .map_err(|e| bad(format!("{e}; run the pipeline first or fix the path")))?;
            let root = url::Url::from_directory_path(&abs)
                .map_err(|_| bad("not an absolute directory".into()))?;
            // DataFusion reads file:// URLs with its own local store.
            Ok((None, root.to_string()))
        }
        Some(_) => {
            let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
            // DataFusion asks the store for full paths: register the store of the bucket root.
            let mut root = parsed.clone();
            root.set_path("/");
            let (store, _) = object_store::parse_url_opts(&root, options.iter())
                .map_err(|e| bad(e.to_string()))?;
            let mut base = parsed.to_string();
            if !base.ends_with('/') {
                base.push('/');
            }
            Ok((Some((root, Arc::from(store))), base))
        }
    }
}

impl SqlEngine {
    /// Registers the tables `access` allows over the store at `url`.
    pub async fn open(
        url: &str,
        options: &BTreeMap<String, String>,
        access: Access,
    ) -> Result<Self, AnalyticsError> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(2);
        // DataFusion caches directory listings without expiry by default, so a running server
        // would never see what the pipeline publishes after its first query: list every time.
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_cache_manager(
                datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
                    .with_list_files_cache_limit(0),
            )
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let (store, base) = store_for(url, options)?;
        if let Some((root, store)) = store {
            ctx.register_object_store(&root, store);
        }
        let mut tables = Vec::new();
        for spec in table_specs() {
            if access == Access::Analytics && spec.access == Access::Full {
                continue;
            }
            let table_url = ListingTableUrl::parse(format!("{base}{}", spec.prefix))?;
            if spec.rollup {
                let table = rollup_table::RollupTable::new(table_url, spec.schema.clone());
                ctx.register_table(spec.name, Arc::new(table))?;
                tables.push(spec.name.to_owned());
                continue;
            }
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new(table_url)
                .with_listing_options(options)
                .with_schema(spec.schema.clone());
            ctx.register_table(spec.name, Arc::new(ListingTable::try_new(config)?))?;
            tables.push(spec.name.to_owned());
        }
        Ok(Self { ctx, tables })
    }

    /// The registered table names.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Column names of a table (for completion and the dashboard's filters).
    pub async fn columns(&self, table: &str) -> Result<Vec<String>, AnalyticsError> {
        let t = self.ctx.table_provider(table).await?;
        Ok(t.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect())
    }

    /// Runs one read-only statement and streams its whole answer (no row limit, no timeout):
    /// for jobs that consume everything they select, such as `divoc reissue`.
    pub async fn stream(
        &self,
        sql: &str,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream, AnalyticsError> {
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = self
            .ctx
            .sql_with_options(sql, read_only)
            .await
            .map_err(refusal)?;
        Ok(df.execute_stream().await?)
    }

    /// Runs one read-only statement.
    pub async fn query(&self, sql: &str, limits: &Limits) -> Result<QueryResult, AnalyticsError> {
        self.run(sql, None, limits).await
    }

    /// Plans `sql` read-only, binds `params` if given, and collects the answer within `limits`.
    pub(crate) async fn run(
        &self,
        sql: &str,
        params: Option<Vec<(&str, datafusion::common::ScalarValue)>>,
        limits: &Limits,
    ) -> Result<QueryResult, AnalyticsError> {
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let run = async {
            let mut df = self
                .ctx
                .sql_with_options(sql, read_only)
                .await
                .map_err(refusal)?;
            if let Some(params) = params {
                df = df.with_param_values(params)?;
            }
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let mut stream = df.execute_stream().await?;
            let mut batches = Vec::new();
            let mut rows = 0usize;
            let mut truncated = false;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                if rows + batch.num_rows() > limits.max_rows {
                    let keep = limits.max_rows - rows;
                    if keep > 0 {
                        batches.push(batch.slice(0, keep));
                    }
                    truncated = true;
                    break;
                }
                rows += batch.num_rows();
                batches.push(batch);
            }
            Ok::<_, AnalyticsError>(QueryResult {
                schema,
                batches,
                truncated,
            })
        };
        tokio::time::timeout(limits.timeout, run)
            .await
            .map_err(|_| AnalyticsError::Timeout(limits.timeout))?
    }
}

/// DataFusion's refusal of a statement kind becomes a clear "read-only" error.
fn refusal(e: datafusion::error::DataFusionError) -> AnalyticsError {
    let text = e.to_string();
    if text.contains("not supported")
        && (text.contains("DDL") || text.contains("DML") || text.contains("Statement"))
    {
        AnalyticsError::Refused(format!(
            "only queries are allowed here (SELECT, SHOW TABLES, DESCRIBE, EXPLAIN): {text}"
        ))
    } else {
        AnalyticsError::Query(e)
    }
}

#[cfg(test)]
mod tests;
