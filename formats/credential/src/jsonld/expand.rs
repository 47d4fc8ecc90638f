//! JSON-LD 1.1 expansion (the subset needed for verifiable credentials), in safe mode.
//!
//! Supported: term definitions with `@id`/`@type` (including `@id`, `@vocab` and datatype IRIs),
//! property- and type-scoped contexts (with the non-propagation of type-scoped contexts that the
//! credentials context relies on), `@protected`, `@vocab`, `@language`, arrays, nested node objects,
//! value objects, `@list`/`@set`, `@graph` and `@graph` containers (proofs).
//! Deliberately unsupported (error): `@reverse`, `@nest`, `@included`, `@json`, `@direction`, and
//! `@language`/`@index`/`@id`/`@type` map containers. Anything a lenient processor would drop
//! silently (undefined terms, relative IRIs, free-floating values) is an error.
//!
//! Every scalar read from the input is reported to an optional recorder together with how it was
//! used; the template compiler uses this to find out which output terms come from which input
//! leaves without a second implementation of the algorithm.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::context::{
    expand_iri, is_absolute_iri, is_keyword, ActiveContext, ContextProcessor, LocalContext,
};
use crate::error::CanonError;

/// An expanded JSON-LD item.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Node(Node),
    Value(ValueObj),
    List(Vec<Item>),
}

/// An expanded node object.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub id: Option<String>,
    /// Address of the input leaf the id came from (0: none).
    pub id_src: usize,
    /// Expanded type IRIs with their source leaves.
    pub types: Vec<(String, usize)>,
    pub props: Vec<(String, Vec<Item>)>,
    pub graph: Option<Vec<Item>>,
}

/// An expanded value object.
#[derive(Debug, Clone)]
pub(crate) struct ValueObj {
    pub value: Value,
    pub datatype: Option<String>,
    pub language: Option<String>,
    pub src: usize,
}

/// How an input scalar was used by expansion.
#[derive(Debug, Clone)]
pub(crate) enum LeafUse {
    /// Became (the lexical form of) a literal.
    Literal {
        datatype: Option<String>,
        language: Option<String>,
    },
    /// Expanded as an IRI against this context.
    Iri {
        ctx: Arc<ActiveContext>,
        vocab: bool,
    },
    /// Determined structure (`@type`, `@language`, `@index`, ...).
    Structural,
}

/// Identity of an input scalar: its address (the input document is borrowed for the whole run).
pub(crate) fn src(v: &Value) -> usize {
    v as *const Value as usize
}

pub(crate) struct Expander<'a> {
    pub ctxp: ContextProcessor<'a>,
    pub record: Option<Vec<(usize, LeafUse)>>,
}

fn as_items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    }
}

impl Expander<'_> {
    fn note(&mut self, v: &Value, u: impl FnOnce() -> LeafUse) {
        if let Some(r) = &mut self.record {
            r.push((src(v), u()));
        }
    }

    /// Expands a whole document.
    pub(crate) fn expand_document(
        &mut self,
        initial: &Arc<ActiveContext>,
        doc: &Value,
    ) -> Result<Vec<Item>, CanonError> {
        let mut items = self.expand(initial, None, doc)?;
        // A top-level object holding only @graph stands for its contents.
        if let [Item::Node(n)] = items.as_mut_slice() {
            if n.id.is_none() && n.types.is_empty() && n.props.is_empty() {
                if let Some(g) = n.graph.take() {
                    return Ok(g);
                }
            }
        }
        Ok(items)
    }

    fn expand(
        &mut self,
        ctx: &Arc<ActiveContext>,
        ap: Option<&str>,
        element: &Value,
    ) -> Result<Vec<Item>, CanonError> {
        match element {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => {
                let list_container = ap
                    .and_then(|p| ctx.term(p))
                    .is_some_and(|d| d.has_container("@list"));
                let mut out = Vec::with_capacity(a.len());
                for e in a {
                    let r = self.expand(ctx, ap, e)?;
                    if list_container && e.is_array() {
                        out.push(Item::List(r));
                    } else {
                        out.extend(r);
                    }
                }
                Ok(out)
            }
            Value::Object(map) => self.expand_object(ctx, ap, map),
            scalar => {
                let Some(p) = ap.filter(|p| *p != "@graph") else {
                    return Err(CanonError::InvalidJsonLd(format!(
                        "free-floating value {scalar}"
                    )));
                };
                let scoped = ctx.term(p).and_then(|d| d.context.clone());
                let ctx = match scoped {
                    Some(sc) => self
                        .ctxp
                        .process(ctx, LocalContext::Scoped(&sc), true, true)?,
                    None => ctx.clone(),
                };
                Ok(vec![self.expand_value(&ctx, p, scalar)?])
            }
        }
    }

    /// The Value Expansion algorithm.
    fn expand_value(
        &mut self,
        ctx: &Arc<ActiveContext>,
        ap: &str,
        v: &Value,
    ) -> Result<Item, CanonError> {
        let def = ctx.term(ap);
        let tm = def.and_then(|d| d.type_mapping.as_deref());
        if let (Value::String(s), Some(t @ ("@id" | "@vocab"))) = (v, tm) {
            let vocab = t == "@vocab";
            self.note(v, || LeafUse::Iri {
                ctx: ctx.clone(),
                vocab,
            });
            let iri = expand_iri(ctx, s, vocab)
                .filter(|i| is_absolute_iri(i))
                .ok_or_else(|| CanonError::RelativeIri(s.clone()))?;
            return Ok(Item::Node(Node {
                id: Some(iri),
                id_src: src(v),
                ..Node::default()
            }));
        }
        if tm == Some("@json") {
            return Err(CanonError::Unsupported("@json literals"));
        }
        let mut datatype = None;
        let mut language = None;
        match tm {
            Some(t) if t != "@id" && t != "@vocab" && t != "@none" => {
                datatype = Some(t.to_string())
            }
            _ => {
                if v.is_string() {
                    language = match def.and_then(|d| d.language.clone()) {
                        Some(explicit) => explicit,
                        None => ctx.language.clone(),
                    };
                }
            }
        }
        self.note(v, || LeafUse::Literal {
            datatype: datatype.clone(),
            language: language.clone(),
        });
        Ok(Item::Value(ValueObj {
            value: v.clone(),
            datatype,
            language,
            src: src(v),
        }))
    }

    fn expand_object(
        &mut self,
        ctx: &Arc<ActiveContext>,
        ap: Option<&str>,
        map: &Map<String, Value>,
    ) -> Result<Vec<Item>, CanonError> {
        let property_scoped = ap.and_then(|p| ctx.term(p)).and_then(|d| d.context.clone());
        let mut ctx = ctx.clone();
        // Type-scoped contexts do not propagate into nested node objects.
        if let Some(prev) = ctx.previous.clone() {
            let expanded: Vec<Option<String>> =
                map.keys().map(|k| expand_iri(&ctx, k, true)).collect();
            let has_value = expanded.iter().any(|e| e.as_deref() == Some("@value"));
            let only_id = map.len() == 1
                && expanded
                    .first()
                    .is_some_and(|e| e.as_deref() == Some("@id"));
            if !has_value && !only_id {
                ctx = prev;
            }
        }
        if let Some(sc) = property_scoped {
            ctx = self
                .ctxp
                .process(&ctx, LocalContext::Scoped(&sc), true, true)?;
        }
        if let Some(c) = map.get("@context") {
            ctx = self
                .ctxp
                .process(&ctx, LocalContext::Inline(c), false, true)?;
        }
        let type_scoped = ctx.clone();
        let mut type_keys: Vec<&String> = map
            .keys()
            .filter(|k| expand_iri(&ctx, k, true).as_deref() == Some("@type"))
            .collect();
        type_keys.sort();
        for k in type_keys {
            let mut terms: Vec<&str> = Vec::new();
            for t in as_items(&map[k.as_str()]) {
                terms.push(t.as_str().ok_or_else(|| {
                    CanonError::InvalidJsonLd("@type values must be strings".into())
                })?);
            }
            terms.sort_unstable();
            for t in terms {
                if let Some(sc) = type_scoped.term(t).and_then(|d| d.context.clone()) {
                    ctx = self
                        .ctxp
                        .process(&ctx, LocalContext::Scoped(&sc), false, false)?;
                }
            }
        }

        let mut node = Node::default();
        let mut value: Option<&Value> = None;
        let mut language: Option<String> = None;
        let mut list: Option<Vec<Item>> = None;
        let mut set: Option<Vec<Item>> = None;
        let mut seen_keywords: Vec<String> = Vec::new();
        for (key, v) in map {
            if key == "@context" {
                continue;
            }
            let exp = match expand_iri(&ctx, key, true) {
                Some(e) if is_keyword(&e) || is_absolute_iri(&e) => e,
                _ => return Err(CanonError::UndefinedTerm(key.clone())),
            };
            if !is_keyword(&exp) {
                self.expand_property(&ctx, key, &exp, v, &mut node)?;
                continue;
            }
            if seen_keywords.contains(&exp) {
                return Err(CanonError::InvalidJsonLd(format!(
                    "colliding keywords {exp}"
                )));
            }
            seen_keywords.push(exp.clone());
            match exp.as_str() {
                "@id" => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| CanonError::InvalidJsonLd("@id must be a string".into()))?;
                    self.note(v, || LeafUse::Iri {
                        ctx: ctx.clone(),
                        vocab: false,
                    });
                    let iri = expand_iri(&ctx, s, false)
                        .filter(|i| is_absolute_iri(i))
                        .ok_or_else(|| CanonError::RelativeIri(s.to_string()))?;
                    node.id = Some(iri);
                    node.id_src = src(v);
                }
                "@type" => {
                    for t in as_items(v) {
                        let s = t.as_str().ok_or_else(|| {
                            CanonError::InvalidJsonLd("@type values must be strings".into())
                        })?;
                        self.note(t, || LeafUse::Structural);
                        let iri = expand_iri(&type_scoped, s, true)
                            .filter(|i| is_absolute_iri(i))
                            .ok_or_else(|| CanonError::UndefinedType(s.to_string()))?;
                        node.types.push((iri, src(t)));
                    }
                }
                "@graph" => node.graph = Some(self.expand(&ctx, Some("@graph"), v)?),
                "@value" => {
                    if v.is_object() || v.is_array() {
                        return Err(CanonError::Unsupported("@value objects/arrays (@json)"));
                    }
                    value = Some(v);
                }
                "@language" => {
                    let l = v.as_str().ok_or_else(|| {
                        CanonError::InvalidJsonLd("@language must be a string".into())
                    })?;
                    self.note(v, || LeafUse::Structural);
                    language = Some(l.to_lowercase());
                }
                "@index" => {
                    if !v.is_string() {
                        return Err(CanonError::InvalidJsonLd("@index must be a string".into()));
                    }
                    self.note(v, || LeafUse::Structural);
                }
                "@list" => {
                    if ap.is_none() || ap == Some("@graph") {
                        return Err(CanonError::InvalidJsonLd("free-floating list".into()));
                    }
                    list = Some(self.expand(&ctx, ap, v)?);
                }
                "@set" => set = Some(self.expand(&ctx, ap, v)?),
                "@reverse" => return Err(CanonError::Unsupported("@reverse")),
                "@included" => return Err(CanonError::Unsupported("@included")),
                "@nest" => return Err(CanonError::Unsupported("@nest")),
                "@direction" => return Err(CanonError::Unsupported("@direction")),
                other => {
                    return Err(CanonError::InvalidJsonLd(format!(
                        "keyword {other} not allowed here"
                    )))
                }
            }
        }
        self.finish_object(ap, node, value, language, list, set)
    }

    fn expand_property(
        &mut self,
        ctx: &Arc<ActiveContext>,
        key: &str,
        exp: &str,
        v: &Value,
        node: &mut Node,
    ) -> Result<(), CanonError> {
        let def = ctx.term(key);
        let has = |c: &str| def.is_some_and(|d| d.has_container(c));
        if def.and_then(|d| d.type_mapping.as_deref()) == Some("@json") {
            return Err(CanonError::Unsupported("@json literals"));
        }
        if v.is_object() && (has("@language") || has("@index") || has("@id") || has("@type")) {
            return Err(CanonError::Unsupported(
                "map containers (@language/@index/@id/@type)",
            ));
        }
        if has("@graph") && (has("@id") || has("@index")) {
            return Err(CanonError::Unsupported("@graph containers with @id/@index"));
        }
        let mut items = self.expand(ctx, Some(key), v)?;
        if has("@list") && !matches!(items.as_slice(), [Item::List(_)]) {
            items = vec![Item::List(items)];
        }
        if has("@graph") {
            items = items
                .into_iter()
                .map(|it| {
                    Item::Node(Node {
                        graph: Some(vec![it]),
                        ..Node::default()
                    })
                })
                .collect();
        }
        if !items.is_empty() || v.is_array() {
            match node.props.iter_mut().find(|(p, _)| p == exp) {
                Some((_, existing)) => existing.extend(items),
                None => node.props.push((exp.to_string(), items)),
            }
        }
        Ok(())
    }

    fn finish_object(
        &mut self,
        ap: Option<&str>,
        node: Node,
        value: Option<&Value>,
        language: Option<String>,
        list: Option<Vec<Item>>,
        set: Option<Vec<Item>>,
    ) -> Result<Vec<Item>, CanonError> {
        let node_parts = node.id.is_some() || !node.props.is_empty() || node.graph.is_some();
        if let Some(v) = value {
            if node_parts || node.types.len() > 1 || list.is_some() || set.is_some() {
                return Err(CanonError::InvalidJsonLd("invalid value object".into()));
            }
            if v.is_null() {
                return Ok(Vec::new());
            }
            let datatype = node.types.into_iter().next().map(|(t, _)| t);
            if language.is_some() && (!v.is_string() || datatype.is_some()) {
                return Err(CanonError::InvalidJsonLd(
                    "invalid language-tagged value".into(),
                ));
            }
            if ap.is_none() || ap == Some("@graph") {
                return Err(CanonError::InvalidJsonLd(
                    "free-floating value object".into(),
                ));
            }
            self.note(v, || LeafUse::Literal {
                datatype: datatype.clone(),
                language: language.clone(),
            });
            return Ok(vec![Item::Value(ValueObj {
                value: v.clone(),
                datatype,
                language,
                src: src(v),
            })]);
        }
        if language.is_some() {
            return Err(CanonError::InvalidJsonLd(
                "@language outside a value object".into(),
            ));
        }
        if let Some(items) = list {
            if node_parts || !node.types.is_empty() || set.is_some() {
                return Err(CanonError::InvalidJsonLd("invalid list object".into()));
            }
            return Ok(vec![Item::List(items)]);
        }
        if let Some(items) = set {
            if node_parts || !node.types.is_empty() {
                return Err(CanonError::InvalidJsonLd("invalid set object".into()));
            }
            return Ok(items);
        }
        let top = ap.is_none() || ap == Some("@graph");
        if top && node.types.is_empty() && node.props.is_empty() && node.graph.is_none() {
            // Empty objects and bare references are dropped at the top level.
            return Ok(Vec::new());
        }
        Ok(vec![Item::Node(node)])
    }
}
