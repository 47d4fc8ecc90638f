//! The canonicalization entry point used by signing and verification: template fast path first,
//! general JSON-LD processing as the fallback and reference.

use serde_json::Value;

use crate::error::CanonError;
use crate::jsonld::JsonLdProcessor;
use crate::loader::DocumentLoader;
use crate::rdf::{Dataset, Escaping};
use crate::template::{TemplateCache, TemplateStats};
use crate::urdna2015;

/// Produces canonical N-Quads (URDNA2015 / RDFC-1.0) of JSON-LD documents.
///
/// Holds the context cache and the per-shape templates, so share one instance (it is
/// `Send + Sync`; wrap it in an `Arc` for worker threads).
#[derive(Debug)]
pub struct Canonicalizer {
    processor: JsonLdProcessor,
    templates: Option<TemplateCache>,
    escaping: Escaping,
}

impl Default for Canonicalizer {
    fn default() -> Self {
        Self::new(DocumentLoader::default())
    }
}

impl Canonicalizer {
    /// Template fast path enabled, RDFC-1.0 escaping.
    pub fn new(loader: DocumentLoader) -> Self {
        Canonicalizer {
            processor: JsonLdProcessor::new(loader),
            templates: Some(TemplateCache::new()),
            escaping: Escaping::Rdfc10,
        }
    }

    /// Disables the template fast path (every document is expanded).
    pub fn without_templates(mut self) -> Self {
        self.templates = None;
        self
    }

    /// Sets the literal escaping used by [`Canonicalizer::canonicalize`].
    pub fn with_escaping(mut self, escaping: Escaping) -> Self {
        self.escaping = escaping;
        self
    }

    /// The escaping used by [`Canonicalizer::canonicalize`].
    pub fn escaping(&self) -> Escaping {
        self.escaping
    }

    /// The underlying general JSON-LD processor.
    pub fn processor(&self) -> &JsonLdProcessor {
        &self.processor
    }

    /// Template counters (all zero when templates are disabled).
    pub fn template_stats(&self) -> TemplateStats {
        self.templates
            .as_ref()
            .map(TemplateCache::stats)
            .unwrap_or_default()
    }

    /// The RDF dataset of `doc` (template when possible).
    pub fn dataset(&self, doc: &Value) -> Result<Dataset, CanonError> {
        if let Some(t) = &self.templates {
            if let Some(ds) = t.dataset(&self.processor, doc)? {
                return Ok(ds);
            }
        }
        self.processor.to_rdf(doc)
    }

    /// Canonical N-Quads of `doc` (template when possible).
    pub fn canonicalize(&self, doc: &Value) -> Result<String, CanonError> {
        urdna2015::canonicalize(&self.dataset(doc)?, self.escaping)
    }

    /// Canonical N-Quads of `doc` through general JSON-LD expansion only (the reference).
    pub fn canonicalize_general(&self, doc: &Value) -> Result<String, CanonError> {
        self.processor.canonicalize(doc, self.escaping)
    }
}
