//! JSON-LD 1.1 context processing (active contexts, term definitions, IRI expansion).
//!
//! Follows the JSON-LD 1.1 Processing Algorithms ("Context Processing", "Create Term Definition",
//! "IRI Expansion") closely, with jsonld.js/PyLD behaviour where the spec leaves room, because
//! signatures made by those libraries must verify here. Notable consequences:
//! - a simple term is only usable as a compact-IRI prefix when its IRI ends in a URI gen-delim
//!   (`:/?#[]@`): DIVOC's `"vac": "https://cowin.gov.in/credentials/vaccination/v1"` is *not* a
//!   prefix, so `vac:city` stays the absolute IRI `vac:city`;
//! - protected terms may only be redefined identically, except through property-scoped contexts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

use super::term_def::TermBuilder;
use crate::error::CanonError;
use crate::loader::DocumentLoader;

static NEXT_CONTEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Nesting limit for remote contexts (jsonld.js uses 10).
const MAX_CONTEXT_DEPTH: usize = 10;
/// Bound on memoized context-processing results.
const MAX_CACHE_ENTRIES: usize = 4096;

/// One term definition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TermDef {
    /// IRI mapping; `None` for a term explicitly mapped to `null`.
    pub iri: Option<String>,
    /// `@type` mapping (`@id`, `@vocab`, `@json`, `@none` or an absolute IRI).
    pub type_mapping: Option<String>,
    /// `@container` values.
    pub container: Vec<String>,
    /// `@language` mapping: `Some(None)` is an explicit `null`.
    pub language: Option<Option<String>>,
    /// Scoped context (raw; processed when the term is used).
    pub context: Option<Arc<Value>>,
    /// Protected terms cannot be redefined (except identically).
    pub protected: bool,
    /// Usable as a compact-IRI prefix.
    pub prefix: bool,
    /// The term itself contains a colon (after its first character).
    pub has_colon: bool,
}

impl TermDef {
    pub(crate) fn has_container(&self, c: &str) -> bool {
        self.container.iter().any(|x| x == c)
    }
}

/// An active context. Immutable once built and shared through `Arc`.
#[derive(Debug, Clone)]
pub(crate) struct ActiveContext {
    /// Unique identity, used as a memoization key.
    pub id: u64,
    pub terms: HashMap<String, Arc<TermDef>>,
    pub vocab: Option<String>,
    pub language: Option<String>,
    /// Context to revert to when entering a node object (non-propagated type-scoped contexts).
    pub previous: Option<Arc<ActiveContext>>,
}

impl ActiveContext {
    pub(crate) fn initial() -> Self {
        ActiveContext {
            id: NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed),
            terms: HashMap::new(),
            vocab: None,
            language: None,
            previous: None,
        }
    }

    pub(crate) fn term(&self, t: &str) -> Option<&TermDef> {
        self.terms.get(t).map(|d| &**d)
    }
}

const KEYWORDS: &[&str] = &[
    "@base",
    "@container",
    "@context",
    "@default",
    "@direction",
    "@embed",
    "@explicit",
    "@graph",
    "@id",
    "@import",
    "@included",
    "@index",
    "@json",
    "@language",
    "@list",
    "@nest",
    "@none",
    "@omitDefault",
    "@prefix",
    "@preserve",
    "@propagate",
    "@protected",
    "@requireAll",
    "@reverse",
    "@set",
    "@type",
    "@value",
    "@version",
    "@vocab",
];

pub(crate) fn is_keyword(s: &str) -> bool {
    s.starts_with('@') && KEYWORDS.contains(&s)
}

/// `^@[a-zA-Z]+$`: reserved for future keywords; such values are ignored by processors.
pub(crate) fn looks_like_keyword(s: &str) -> bool {
    s.len() > 1 && s.starts_with('@') && s[1..].bytes().all(|b| b.is_ascii_alphabetic())
}

/// jsonld.js's absolute-IRI test: `^([A-Za-z][A-Za-z0-9+-.]*|_):[^\s]*$`.
/// (Note the regex range `+-.` also admits a comma.)
pub(crate) fn is_absolute_iri(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s[..colon];
    let scheme_ok = scheme == "_"
        || (scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || (b'+'..=b'.').contains(&b)));
    scheme_ok
        && !s[colon + 1..]
            .chars()
            .any(|c| c.is_whitespace() || c == '\u{feff}')
}

/// IRI expansion outside context processing (the active context is complete).
/// Returns `None` for keyword-like values and terms mapped to `null`.
pub(crate) fn expand_iri(ctx: &ActiveContext, value: &str, vocab: bool) -> Option<String> {
    if is_keyword(value) {
        return Some(value.to_string());
    }
    if looks_like_keyword(value) {
        return None;
    }
    if vocab {
        if let Some(def) = ctx.term(value) {
            return def.iri.clone();
        }
    }
    if let Some(colon) = value.find(':').filter(|c| *c > 0) {
        let (prefix, suffix) = (&value[..colon], &value[colon + 1..]);
        if prefix == "_" || suffix.starts_with("//") {
            return Some(value.to_string());
        }
        if let Some(def) = ctx.term(prefix) {
            if def.prefix {
                if let Some(iri) = &def.iri {
                    return Some(format!("{iri}{suffix}"));
                }
            }
        }
        if is_absolute_iri(value) {
            return Some(value.to_string());
        }
    }
    if vocab {
        if let Some(v) = &ctx.vocab {
            return Some(format!("{v}{value}"));
        }
    }
    // Document-relative: there is no base IRI, so the value stays relative and callers that need
    // an absolute IRI reject it.
    Some(value.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LocalKey {
    Ptr(usize),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    base: u64,
    local: LocalKey,
    override_protected: bool,
    propagate: bool,
}

/// Memoizes context processing: every certificate applies the same handful of contexts in the
/// same order, and rebuilding term maps for each would dominate the general path's cost.
#[derive(Debug, Default)]
pub(crate) struct ContextCache {
    #[allow(clippy::type_complexity)]
    map: RwLock<HashMap<CacheKey, (Option<Arc<Value>>, Arc<ActiveContext>)>>,
}

/// Context processing bound to a loader and a cache.
pub(crate) struct ContextProcessor<'a> {
    pub loader: &'a DocumentLoader,
    pub cache: &'a ContextCache,
}

/// How a local context is handed to [`ContextProcessor::process`].
pub(crate) enum LocalContext<'v> {
    /// From the document being expanded (an `@context` member).
    Inline(&'v Value),
    /// A scoped context stored in a term definition (stable identity, memoizable).
    Scoped(&'v Arc<Value>),
}

impl ContextProcessor<'_> {
    /// The Context Processing algorithm, memoized.
    pub(crate) fn process(
        &self,
        active: &Arc<ActiveContext>,
        local: LocalContext<'_>,
        override_protected: bool,
        propagate: bool,
    ) -> Result<Arc<ActiveContext>, CanonError> {
        let (value, key_local, keep) = match local {
            LocalContext::Scoped(v) => (
                &**v,
                Some(LocalKey::Ptr(Arc::as_ptr(v) as usize)),
                Some(v.clone()),
            ),
            LocalContext::Inline(v) => (v, text_key(v).map(LocalKey::Text), None),
        };
        let key = key_local.map(|local| CacheKey {
            base: active.id,
            local,
            override_protected,
            propagate,
        });
        if let Some(k) = &key {
            if let Ok(map) = self.cache.map.read() {
                if let Some((_, ctx)) = map.get(k) {
                    return Ok(ctx.clone());
                }
            }
        }
        let result =
            Arc::new(self.process_uncached(active, value, override_protected, propagate)?);
        if let Some(k) = key {
            if let Ok(mut map) = self.cache.map.write() {
                if map.len() < MAX_CACHE_ENTRIES {
                    map.insert(k, (keep, result.clone()));
                }
            }
        }
        Ok(result)
    }

    fn process_uncached(
        &self,
        active: &Arc<ActiveContext>,
        local: &Value,
        override_protected: bool,
        mut propagate: bool,
    ) -> Result<ActiveContext, CanonError> {
        let mut result = (**active).clone();
        result.id = NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = local.get("@propagate") {
            propagate = p
                .as_bool()
                .ok_or_else(|| CanonError::InvalidContext("@propagate must be a boolean".into()))?;
        }
        if !propagate && result.previous.is_none() {
            result.previous = Some(active.clone());
        }
        self.apply(&mut result, local, override_protected, propagate, 0)?;
        Ok(result)
    }

    fn apply(
        &self,
        result: &mut ActiveContext,
        local: &Value,
        override_protected: bool,
        propagate: bool,
        depth: usize,
    ) -> Result<(), CanonError> {
        let items: &[Value] = match local {
            Value::Array(a) => a,
            other => std::slice::from_ref(other),
        };
        for item in items {
            match item {
                Value::Null => {
                    if !override_protected && result.terms.values().any(|t| t.protected) {
                        return Err(CanonError::InvalidContext(
                            "cannot nullify a context with protected terms".into(),
                        ));
                    }
                    let previous = if propagate {
                        None
                    } else {
                        result.previous.clone()
                    };
                    *result = ActiveContext::initial();
                    result.previous = previous;
                }
                Value::String(url) => {
                    if depth >= MAX_CONTEXT_DEPTH {
                        return Err(CanonError::ContextOverflow(url.clone()));
                    }
                    let doc = self.loader.load(url)?;
                    let inner = doc.get("@context").ok_or_else(|| {
                        CanonError::InvalidContext(format!("{url} has no @context member"))
                    })?;
                    self.apply(result, inner, false, propagate, depth + 1)?;
                }
                Value::Object(map) => self.apply_object(result, map, override_protected)?,
                _ => {
                    return Err(CanonError::InvalidContext(
                        "a context must be null, a string or an object".into(),
                    ))
                }
            }
        }
        Ok(())
    }

    fn apply_object(
        &self,
        result: &mut ActiveContext,
        map: &Map<String, Value>,
        override_protected: bool,
    ) -> Result<(), CanonError> {
        if let Some(v) = map.get("@version") {
            if v.as_f64() != Some(1.1) {
                return Err(CanonError::InvalidContext("@version must be 1.1".into()));
            }
        }
        if map.contains_key("@import") {
            return Err(CanonError::Unsupported("@import in contexts"));
        }
        if map.get("@base").is_some_and(|b| !b.is_null()) {
            return Err(CanonError::Unsupported(
                "@base (documents have no base IRI)",
            ));
        }
        if map.get("@direction").is_some_and(|b| !b.is_null()) {
            return Err(CanonError::Unsupported("@direction"));
        }
        match map.get("@vocab") {
            None => {}
            Some(Value::Null) => result.vocab = None,
            Some(Value::String(v)) => match expand_iri(result, v, true) {
                Some(iri) if is_absolute_iri(&iri) => result.vocab = Some(iri),
                _ => {
                    return Err(CanonError::InvalidContext(format!(
                        "@vocab {v:?} is not an absolute IRI"
                    )))
                }
            },
            Some(_) => return Err(CanonError::InvalidContext("@vocab must be a string".into())),
        }
        match map.get("@language") {
            None => {}
            Some(Value::Null) => result.language = None,
            Some(Value::String(l)) => result.language = Some(l.to_lowercase()),
            Some(_) => {
                return Err(CanonError::InvalidContext(
                    "@language must be a string".into(),
                ))
            }
        }
        let protected_default = match map.get("@protected") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(CanonError::InvalidContext(
                    "@protected must be a boolean".into(),
                ))
            }
        };
        let mut defs = TermBuilder {
            local: map,
            defined: HashMap::new(),
            override_protected,
            protected_default,
        };
        for term in map.keys() {
            if matches!(
                term.as_str(),
                "@base"
                    | "@direction"
                    | "@import"
                    | "@language"
                    | "@propagate"
                    | "@protected"
                    | "@version"
                    | "@vocab"
            ) {
                continue;
            }
            defs.create(result, term)?;
        }
        Ok(())
    }
}

/// Memo key for contexts given as a URL or a list of URLs (the usual `@context` of a document).
fn text_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) if a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\u{0}"),
        ),
        _ => None,
    }
}
