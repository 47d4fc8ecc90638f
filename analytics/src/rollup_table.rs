//! A rollup table: the live files of each rollup partition only (the newest `compact-<epoch>` file
//! and the parts after it, [`divoc_model::analytics::rollup_files`]), listed again on every scan
//! so a running server sees what the pipeline publishes and never counts a compacted part twice.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use divoc_model::analytics::rollup_files;
use futures::TryStreamExt;

#[derive(Debug)]
pub(crate) struct RollupTable {
    /// The table's directory.
    root: ListingTableUrl,
    schema: SchemaRef,
}

impl RollupTable {
    pub(crate) fn new(root: ListingTableUrl, schema: SchemaRef) -> Self {
        Self { root, schema }
    }

    /// The URLs of the live files now in the store.
    async fn live_files(&self, state: &dyn Session) -> Result<Vec<ListingTableUrl>> {
        let store_url = self.root.object_store();
        let store = state.runtime_env().object_store(&store_url)?;
        let keys: Vec<String> = store
            .list(Some(self.root.prefix()))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await?;
        let (live, _superseded) = rollup_files::classify(&keys);
        live.iter()
            .map(|k| ListingTableUrl::parse(format!("{}{k}", store_url.as_str())))
            .collect()
    }
}

#[async_trait]
impl TableProvider for RollupTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let files = self.live_files(state).await?;
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(files)
            .with_listing_options(options)
            .with_schema(self.schema.clone());
        ListingTable::try_new(config)?
            .scan(state, projection, filters, limit)
            .await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Row-group pruning only; DataFusion still applies every filter above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}
