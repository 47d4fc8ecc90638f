//! The fast path: canonicalize a credential without running JSON-LD expansion.
//!
//! Certificates issued by one deployment all have the same *shape*: the same keys, the same
//! `@context` and `type` values, the same JSON kinds at the leaves; only the leaf values differ.
//! For a given shape, JSON-LD expansion always produces the same quads except for the terms that
//! come from leaf values. So the first certificate of a shape is run through the general processor
//! once, recording which output term came from which input leaf and how (literal with datatype /
//! language, or IRI expanded against a given context). Every later certificate of that shape is
//! canonicalized by filling its leaf values into those quads and running URDNA2015 on the result.
//!
//! Why URDNA2015 still runs per certificate: canonical blank node labels are ordered by hashes of
//! the quads around each blank node, which contain the literal values. With DIVOC's template the
//! verifier, facility and address blank nodes are ordered by their names and addresses, so the
//! labelling is *not* fixed per shape. For credentials (few blank nodes, all distinguishable)
//! URDNA2015 is just a handful of SHA-256 computations and a sort, far cheaper than expansion.
//!
//! Values that would change the structure (an `id` that is a blank node identifier or a relative
//! IRI) make the template decline, and the caller falls back to the general path, which is the
//! reference: the property tests assert byte-identical output for arbitrary values.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::error::CanonError;
use crate::jsonld::{
    expand_iri, is_absolute_iri, literal_from, src, ActiveContext, JsonLdProcessor, LeafUse,
};
use crate::rdf::{Dataset, Quad, Term};

/// Bound on the number of cached shapes (a deployment has a handful).
const MAX_SHAPES: usize = 1024;

/// The shape of a document and its variable leaves, in walk order.
pub(crate) struct Shape<'v> {
    pub key: String,
    pub leaves: Vec<&'v Value>,
}

/// Keys whose values are part of the shape rather than variable data: `@context`, `type` and
/// keywords other than `@id`/`@value`. Their values decide which contexts apply.
fn is_verbatim_key(k: &str) -> bool {
    k == "type" || (k.starts_with('@') && k != "@id" && k != "@value")
}

fn push_json_str(out: &mut String, s: &str) {
    // Keys are JSON-quoted so that they are unambiguous inside the shape key. Plain keys (the
    // common case) are copied without going through serde_json.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_string()).to_string());
    }
}

fn walk<'v>(v: &'v Value, verbatim: bool, key: &mut String, leaves: &mut Vec<&'v Value>) {
    match v {
        Value::Object(m) => {
            key.push('{');
            for (k, val) in m {
                push_json_str(key, k);
                key.push(':');
                walk(val, verbatim || is_verbatim_key(k), key, leaves);
                key.push(',');
            }
            key.push('}');
        }
        Value::Array(a) => {
            key.push('[');
            for val in a {
                walk(val, verbatim, key, leaves);
                key.push(',');
            }
            key.push(']');
        }
        Value::Null => key.push('z'),
        scalar if verbatim => key.push_str(&scalar.to_string()),
        scalar => {
            key.push(match scalar {
                Value::String(_) => 's',
                Value::Number(_) => 'n',
                _ => 'b',
            });
            leaves.push(scalar);
        }
    }
}

/// Computes the shape of `doc`.
pub(crate) fn shape_of(doc: &Value) -> Shape<'_> {
    let mut key = String::with_capacity(1024);
    let mut leaves = Vec::with_capacity(64);
    walk(doc, false, &mut key, &mut leaves);
    Shape { key, leaves }
}

/// How one variable leaf becomes an RDF term.
#[derive(Debug, Clone)]
enum Slot {
    /// Does not appear in the output (e.g. dropped by expansion).
    Unused,
    Literal {
        datatype: Option<Arc<str>>,
        language: Option<Arc<str>>,
    },
    Iri {
        ctx: Arc<ActiveContext>,
        vocab: bool,
    },
}

#[derive(Debug, Clone)]
enum TTerm {
    Fixed(Term),
    Slot(u32),
}

#[derive(Debug, Clone)]
struct TQuad {
    subject: TTerm,
    predicate: Arc<str>,
    object: TTerm,
    graph: Option<TTerm>,
}

/// A compiled template for one shape.
#[derive(Debug)]
pub struct Template {
    quads: Vec<TQuad>,
    slots: Vec<Slot>,
    /// How many template terms refer to each slot (the last reference takes the term instead of
    /// cloning it: most literals are used exactly once).
    slot_refs: Vec<u32>,
    blank_count: u32,
}

/// Why a shape cannot be templated (it then always uses the general path).
#[derive(Debug)]
pub(crate) enum CompileError {
    /// The compiling document itself is invalid (the general path will report why).
    InvalidDocument,
    /// The shape uses a leaf structurally; never template it.
    Unsupported,
}

impl Template {
    /// Compiles the template of `doc`'s shape by running the general processor once.
    pub(crate) fn compile(
        processor: &JsonLdProcessor,
        doc: &Value,
        shape: &Shape<'_>,
    ) -> Result<Template, CompileError> {
        let cap = processor
            .to_rdf_captured(doc)
            .map_err(|_| CompileError::InvalidDocument)?;
        let index: HashMap<usize, u32> = shape
            .leaves
            .iter()
            .enumerate()
            .map(|(i, l)| (src(l), i as u32))
            .collect();
        let mut slots = vec![Slot::Unused; shape.leaves.len()];
        for (addr, usage) in cap.uses {
            let Some(&i) = index.get(&addr) else {
                continue; // a verbatim leaf: constant for the shape
            };
            let slot = &mut slots[i as usize];
            if !matches!(slot, Slot::Unused) {
                return Err(CompileError::Unsupported);
            }
            *slot = match usage {
                LeafUse::Literal { datatype, language } => Slot::Literal {
                    datatype: datatype.map(|d| Arc::from(d.as_str())),
                    language: language.map(|l| Arc::from(l.as_str())),
                },
                LeafUse::Iri { ctx, vocab } => Slot::Iri { ctx, vocab },
                LeafUse::Structural => return Err(CompileError::Unsupported),
            };
        }
        let term = |t: &Term, from: usize| match index.get(&from) {
            Some(&i) if from != 0 => TTerm::Slot(i),
            _ => TTerm::Fixed(t.clone()),
        };
        let quads: Vec<TQuad> = cap
            .dataset
            .quads
            .iter()
            .zip(&cap.srcs)
            .map(|(q, s)| TQuad {
                subject: term(&q.subject, s.s),
                predicate: q.predicate.clone(),
                object: term(&q.object, s.o),
                graph: q.graph.as_ref().map(|g| term(g, s.g)),
            })
            .collect();
        let mut slot_refs = vec![0u32; slots.len()];
        for q in &quads {
            for t in [Some(&q.subject), Some(&q.object), q.graph.as_ref()]
                .into_iter()
                .flatten()
            {
                if let TTerm::Slot(i) = t {
                    slot_refs[*i as usize] += 1;
                }
            }
        }
        let t = Template {
            quads,
            slots,
            slot_refs,
            blank_count: cap.dataset.blank_count,
        };
        // Self-check: filling the compiling document back in must reproduce the general result.
        let mut expected = cap.dataset;
        expected.normalize();
        match t.fill(shape) {
            Ok(Some(ds)) if ds == expected => Ok(t),
            _ => Err(CompileError::Unsupported),
        }
    }

    /// Builds the RDF dataset of a document of this shape from its leaves.
    /// `Ok(None)`: a value would change the structure; use the general path.
    pub(crate) fn fill(&self, shape: &Shape<'_>) -> Result<Option<Dataset>, CanonError> {
        if shape.leaves.len() != self.slots.len() {
            return Ok(None);
        }
        let mut terms: Vec<Option<Term>> = Vec::with_capacity(self.slots.len());
        for (slot, leaf) in self.slots.iter().zip(&shape.leaves) {
            terms.push(match slot {
                Slot::Unused => None,
                Slot::Literal { datatype, language } => Some(Term::Literal(literal_from(
                    leaf,
                    datatype.as_ref(),
                    language.as_ref(),
                )?)),
                Slot::Iri { ctx, vocab } => {
                    let Some(s) = leaf.as_str() else {
                        return Ok(None);
                    };
                    match expand_iri(ctx, s, *vocab) {
                        Some(iri) if is_absolute_iri(&iri) && !iri.starts_with("_:") => {
                            Some(Term::Iri(Arc::from(iri)))
                        }
                        _ => return Ok(None),
                    }
                }
            });
        }
        let mut remaining = self.slot_refs.clone();
        let mut resolve = |t: &TTerm| -> Option<Term> {
            match t {
                TTerm::Fixed(t) => Some(t.clone()),
                TTerm::Slot(i) => {
                    let i = *i as usize;
                    let left = remaining.get_mut(i)?;
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        terms.get_mut(i)?.take()
                    } else {
                        terms.get(i)?.clone()
                    }
                }
            }
        };
        let mut quads = Vec::with_capacity(self.quads.len());
        for q in &self.quads {
            let (Some(subject), Some(object)) = (resolve(&q.subject), resolve(&q.object)) else {
                return Ok(None);
            };
            let graph = match &q.graph {
                Some(g) => match resolve(g) {
                    Some(t) => Some(t),
                    None => return Ok(None),
                },
                None => None,
            };
            quads.push(Quad {
                subject,
                predicate: q.predicate.clone(),
                object,
                graph,
            });
        }
        let mut ds = Dataset {
            quads,
            blank_count: self.blank_count,
        };
        ds.normalize();
        Ok(Some(ds))
    }
}

/// Counters describing how documents were canonicalized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TemplateStats {
    /// Documents canonicalized through a template.
    pub hits: u64,
    /// Templates compiled.
    pub compiled: u64,
    /// Documents that went through the general path (unsupported shape or structural value).
    pub fallbacks: u64,
}

/// Shape -> compiled template (or `None`: shape not templatable).
#[derive(Debug, Default)]
pub struct TemplateCache {
    #[allow(clippy::type_complexity)]
    map: RwLock<HashMap<String, Option<Arc<Template>>>>,
    hits: AtomicU64,
    compiled: AtomicU64,
    fallbacks: AtomicU64,
}

impl TemplateCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> TemplateStats {
        TemplateStats {
            hits: self.hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }

    /// The dataset of `doc` through its shape's template, compiling it on first sight.
    /// `Ok(None)` means the caller must use the general path.
    pub(crate) fn dataset(
        &self,
        processor: &JsonLdProcessor,
        doc: &Value,
    ) -> Result<Option<Dataset>, CanonError> {
        let shape = shape_of(doc);
        let cached = self
            .map
            .read()
            .ok()
            .and_then(|m| m.get(&shape.key).cloned());
        let template = match cached {
            Some(Some(t)) => t,
            Some(None) => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            None => match Template::compile(processor, doc, &shape) {
                Ok(t) => {
                    let t = Arc::new(t);
                    self.compiled.fetch_add(1, Ordering::Relaxed);
                    self.remember(shape.key.clone(), Some(t.clone()));
                    t
                }
                Err(CompileError::Unsupported) => {
                    self.remember(shape.key.clone(), None);
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                }
                // The document itself is invalid; the general path reports the error. Do not
                // remember the shape: another document of it may be valid.
                Err(CompileError::InvalidDocument) => {
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                }
            },
        };
        let filled = template.fill(&shape)?;
        if filled.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        Ok(filled)
    }

    fn remember(&self, key: String, t: Option<Arc<Template>>) {
        if let Ok(mut m) = self.map.write() {
            if m.len() < MAX_SHAPES {
                m.insert(key, t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_keeps_types_and_contexts_verbatim() {
        let a = serde_json::json!({"@context": ["x"], "type": ["A", "B"], "name": "n", "n": 1, "id": "did:x"});
        let b = serde_json::json!({"@context": ["x"], "type": ["A", "B"], "name": "m", "n": 2, "id": "did:y"});
        let c = serde_json::json!({"@context": ["x"], "type": ["A", "C"], "name": "m", "n": 2, "id": "did:y"});
        let (sa, sb, sc) = (shape_of(&a), shape_of(&b), shape_of(&c));
        assert_eq!(sa.key, sb.key);
        assert_ne!(sa.key, sc.key);
        assert_eq!(sa.leaves.len(), 3);
    }
}
