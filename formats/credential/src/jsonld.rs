//! General (reference) JSON-LD processing: expansion to RDF with an offline document loader.
//!
//! This is the slow-but-general path: it interprets contexts for every document. The template fast
//! path ([`crate::template`]) is checked against it; anything the template cannot handle falls back
//! here.

mod context;
mod expand;
mod term_def;
mod to_rdf;

use std::sync::Arc;

use serde_json::Value;

use crate::error::CanonError;
use crate::loader::DocumentLoader;
use crate::rdf::{Dataset, Escaping};
use crate::urdna2015;

pub(crate) use context::{expand_iri, is_absolute_iri, ActiveContext};
pub(crate) use expand::{src, LeafUse};
pub(crate) use to_rdf::{literal_from, QuadSrc};

use context::{ContextCache, ContextProcessor};
use expand::Expander;
use to_rdf::RdfBuilder;

/// A JSON-LD processor bound to an offline [`DocumentLoader`], with memoized context processing.
/// Share one per process (it is `Send + Sync`); the cache makes repeated contexts cheap.
#[derive(Debug)]
pub struct JsonLdProcessor {
    loader: DocumentLoader,
    cache: ContextCache,
    initial: Arc<ActiveContext>,
}

impl Default for JsonLdProcessor {
    fn default() -> Self {
        Self::new(DocumentLoader::default())
    }
}

/// The RDF dataset of a document together with, for every quad, the input leaves that produced
/// its terms and how every leaf was used (for the template compiler).
pub(crate) struct CapturedRdf {
    pub dataset: Dataset,
    pub srcs: Vec<QuadSrc>,
    pub uses: Vec<(usize, LeafUse)>,
}

impl JsonLdProcessor {
    /// A processor resolving contexts through `loader`.
    pub fn new(loader: DocumentLoader) -> Self {
        JsonLdProcessor {
            loader,
            cache: ContextCache::default(),
            initial: Arc::new(ActiveContext::initial()),
        }
    }

    /// The document loader.
    pub fn loader(&self) -> &DocumentLoader {
        &self.loader
    }

    fn run(&self, doc: &Value, record: bool) -> Result<CapturedRdf, CanonError> {
        let mut expander = Expander {
            ctxp: ContextProcessor {
                loader: &self.loader,
                cache: &self.cache,
            },
            record: record.then(Vec::new),
        };
        let items = expander.expand_document(&self.initial, doc)?;
        let mut builder = RdfBuilder::default();
        builder.add_items(&items)?;
        Ok(CapturedRdf {
            dataset: builder.dataset,
            srcs: builder.srcs,
            uses: expander.record.unwrap_or_default(),
        })
    }

    /// JSON-LD toRdf: the document's RDF dataset (sorted, without duplicate quads).
    pub fn to_rdf(&self, doc: &Value) -> Result<Dataset, CanonError> {
        let mut ds = self.run(doc, false)?.dataset;
        ds.normalize();
        Ok(ds)
    }

    /// toRdf recording the provenance of every term (unsorted: `srcs[i]` belongs to `quads[i]`).
    pub(crate) fn to_rdf_captured(&self, doc: &Value) -> Result<CapturedRdf, CanonError> {
        self.run(doc, true)
    }

    /// toRdf followed by URDNA2015/RDFC-1.0: the canonical N-Quads of `doc`.
    pub fn canonicalize(&self, doc: &Value, escaping: Escaping) -> Result<String, CanonError> {
        let ds = self.to_rdf(doc)?;
        urdna2015::canonicalize(&ds, escaping)
    }
}

#[cfg(test)]
mod tests;
