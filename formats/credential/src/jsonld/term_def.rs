//! "Create Term Definition": one term of a local context into the active context being built.
//! Mirrors jsonld.js/PyLD (including their treatment of the prefix flag and of protected terms).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::context::{
    expand_iri, is_absolute_iri, is_keyword, looks_like_keyword, ActiveContext, TermDef,
};
use crate::error::CanonError;

/// State of "Create Term Definition" over one local context.
pub(crate) struct TermBuilder<'m> {
    pub local: &'m Map<String, Value>,
    /// `false` while a definition is in progress (cycle detection), `true` once done.
    pub defined: HashMap<String, bool>,
    pub override_protected: bool,
    pub protected_default: bool,
}

const GEN_DELIMS: &[char] = &[':', '/', '?', '#', '[', ']', '@'];

fn invalid(msg: impl Into<String>) -> CanonError {
    CanonError::InvalidContext(msg.into())
}

impl TermBuilder<'_> {
    pub(crate) fn create(
        &mut self,
        active: &mut ActiveContext,
        term: &str,
    ) -> Result<(), CanonError> {
        match self.defined.get(term) {
            Some(true) => return Ok(()),
            Some(false) => return Err(invalid(format!("cyclic IRI mapping for {term:?}"))),
            None => {}
        }
        self.defined.insert(term.to_string(), false);
        if term.is_empty() {
            return Err(invalid("empty term"));
        }
        if is_keyword(term) {
            return Err(CanonError::Unsupported("redefining keywords in a context"));
        }
        let value = self.local.get(term).cloned().unwrap_or(Value::Null);
        let previous = active.terms.remove(term);
        if looks_like_keyword(term) {
            // Reserved: ignored with a warning by other processors.
            if let Some(p) = previous {
                active.terms.insert(term.to_string(), p);
            }
            self.defined.insert(term.to_string(), true);
            return Ok(());
        }
        let (simple, obj) = match value {
            Value::String(_) | Value::Null => {
                let mut m = Map::new();
                m.insert("@id".into(), value);
                (true, m)
            }
            Value::Object(m) => (false, m),
            _ => {
                return Err(invalid(format!(
                    "definition of {term:?} must be a string or object"
                )))
            }
        };
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "@container"
                    | "@id"
                    | "@language"
                    | "@reverse"
                    | "@type"
                    | "@context"
                    | "@direction"
                    | "@index"
                    | "@nest"
                    | "@prefix"
                    | "@protected"
            ) {
                return Err(invalid(format!(
                    "term definition of {term:?} has invalid key {k:?}"
                )));
            }
        }
        let colon = term.find(':').filter(|c| *c > 0);
        let mut def = TermDef {
            iri: None,
            type_mapping: None,
            container: Vec::new(),
            language: None,
            context: None,
            protected: false,
            prefix: false,
            has_colon: colon.is_some(),
        };
        if obj.contains_key("@reverse") {
            return Err(CanonError::Unsupported("@reverse properties"));
        }
        let mut iri_set = false;
        match obj.get("@id") {
            None => {}
            Some(Value::Null) => iri_set = true,
            Some(Value::String(id)) => {
                if !is_keyword(id) && looks_like_keyword(id) {
                    if let Some(p) = previous {
                        active.terms.insert(term.to_string(), p);
                    }
                    self.defined.insert(term.to_string(), true);
                    return Ok(());
                }
                if id != term {
                    let iri = self
                        .expand(active, id, true)?
                        .filter(|i| is_absolute_iri(i) || is_keyword(i))
                        .ok_or_else(|| {
                            invalid(format!("@id of {term:?} is not an absolute IRI"))
                        })?;
                    if term_looks_like_iri(term) {
                        let saved = self.defined.insert(term.to_string(), true);
                        let term_iri = self.expand(active, term, true)?;
                        match saved {
                            Some(s) => self.defined.insert(term.to_string(), s),
                            None => self.defined.remove(term),
                        };
                        if term_iri.as_deref() != Some(iri.as_str()) {
                            return Err(invalid(format!(
                                "term {term:?} in IRI form must expand to its definition"
                            )));
                        }
                    }
                    def.prefix = simple && colon.is_none() && iri.ends_with(GEN_DELIMS);
                    def.iri = Some(iri);
                    iri_set = true;
                }
            }
            Some(_) => return Err(invalid(format!("@id of {term:?} must be a string"))),
        }
        if !iri_set {
            if let Some(c) = colon {
                let (prefix, suffix) = (&term[..c], &term[c + 1..]);
                if self.local.contains_key(prefix) {
                    self.create(active, prefix)?;
                }
                def.iri = Some(match active.term(prefix) {
                    Some(p) => {
                        let piri = p.iri.as_ref().ok_or_else(|| {
                            invalid(format!("prefix of {term:?} is mapped to null"))
                        })?;
                        format!("{piri}{suffix}")
                    }
                    None => term.to_string(),
                });
            } else if let Some(v) = &active.vocab {
                def.iri = Some(format!("{v}{term}"));
            } else {
                return Err(invalid(format!(
                    "term {term:?} must define @id (no @vocab)"
                )));
            }
        }
        def.protected = match obj.get("@protected") {
            Some(Value::Bool(b)) => *b,
            None => self.protected_default,
            Some(_) => return Err(invalid("@protected must be a boolean")),
        };
        if let Some(t) = obj.get("@type") {
            let t = t
                .as_str()
                .ok_or_else(|| invalid("@type mapping must be a string"))?;
            let mapped = match t {
                "@id" | "@vocab" | "@json" | "@none" => t.to_string(),
                _ => self
                    .expand(active, t, true)?
                    .filter(|i| is_absolute_iri(i) && !i.starts_with("_:"))
                    .ok_or_else(|| invalid(format!("@type of {term:?} must be an absolute IRI")))?,
            };
            def.type_mapping = Some(mapped);
        }
        if let Some(c) = obj.get("@container") {
            def.container = container_values(c)?;
            if def.has_container("@type") && def.type_mapping.is_none() {
                def.type_mapping = Some("@id".into());
            }
        }
        if obj.contains_key("@index") && !def.has_container("@index") {
            return Err(invalid("@index without an @index container"));
        }
        if let Some(c) = obj.get("@context") {
            def.context = Some(Arc::new(c.clone()));
        }
        if !obj.contains_key("@type") {
            match obj.get("@language") {
                None => {}
                Some(Value::Null) => def.language = Some(None),
                Some(Value::String(l)) => def.language = Some(Some(l.to_lowercase())),
                Some(_) => return Err(invalid("@language must be a string or null")),
            }
        }
        if let Some(p) = obj.get("@prefix") {
            let p = p
                .as_bool()
                .ok_or_else(|| invalid("@prefix must be a boolean"))?;
            if term.contains(':') || term.contains('/') {
                return Err(invalid("@prefix on a compact IRI term"));
            }
            def.prefix = p;
        }
        if obj.get("@direction").is_some_and(|d| !d.is_null()) {
            return Err(CanonError::Unsupported("@direction"));
        }
        if obj.contains_key("@nest") {
            return Err(CanonError::Unsupported("@nest"));
        }
        if matches!(def.iri.as_deref(), Some("@context") | Some("@preserve")) {
            return Err(invalid("@context and @preserve cannot be aliased"));
        }
        if let Some(prev) = previous {
            if prev.protected && !self.override_protected {
                def.protected = true;
                if *prev != def {
                    return Err(CanonError::ProtectedTermRedefinition(term.to_string()));
                }
            }
        }
        active.terms.insert(term.to_string(), Arc::new(def));
        self.defined.insert(term.to_string(), true);
        Ok(())
    }

    /// IRI expansion during context processing: dependencies in the local context are defined
    /// on demand.
    fn expand(
        &mut self,
        active: &mut ActiveContext,
        value: &str,
        vocab: bool,
    ) -> Result<Option<String>, CanonError> {
        if is_keyword(value) {
            return Ok(Some(value.to_string()));
        }
        if looks_like_keyword(value) {
            return Ok(None);
        }
        if self.local.contains_key(value) && self.defined.get(value) != Some(&true) {
            self.create(active, value)?;
        }
        if let Some(colon) = value.find(':').filter(|c| *c > 0) {
            let prefix = &value[..colon];
            if self.local.contains_key(prefix) && self.defined.get(prefix) != Some(&true) {
                self.create(active, prefix)?;
            }
        }
        Ok(expand_iri(active, value, vocab))
    }
}

/// `.*((:[^:])|/)`: a term that itself looks like a compact IRI or an IRI.
fn term_looks_like_iri(term: &str) -> bool {
    if term.contains('/') {
        return true;
    }
    let b = term.as_bytes();
    b.windows(2).any(|w| w[0] == b':' && w[1] != b':')
}

fn container_values(c: &Value) -> Result<Vec<String>, CanonError> {
    let vals: Vec<String> = match c {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("@container values must be strings"))?,
        _ => return Err(invalid("@container must be a string or array")),
    };
    const VALID: &[&str] = &[
        "@list",
        "@set",
        "@index",
        "@language",
        "@graph",
        "@id",
        "@type",
    ];
    if vals.iter().any(|v| !VALID.contains(&v.as_str())) {
        return Err(invalid(format!("invalid @container {vals:?}")));
    }
    let has = |x: &str| vals.iter().any(|v| v == x);
    if has("@list") && vals.len() != 1 {
        return Err(invalid("@list containers admit no other value"));
    }
    if has("@graph") {
        if vals
            .iter()
            .any(|v| !matches!(v.as_str(), "@graph" | "@id" | "@index" | "@set"))
        {
            return Err(invalid("invalid @graph container"));
        }
    } else if vals.len() > if has("@set") { 2 } else { 1 } {
        return Err(invalid(format!("invalid @container {vals:?}")));
    }
    Ok(vals)
}
