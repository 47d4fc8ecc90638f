//! Expanded JSON-LD to RDF ("Deserialize JSON-LD to RDF"), plus the literal conversion rules that
//! the template fast path reuses so both paths produce identical lexical forms.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::expand::{Item, Node};
use crate::error::CanonError;
use crate::rdf::{
    Dataset, Literal, Quad, Term, RDF_FIRST, RDF_LANG_STRING, RDF_NIL, RDF_REST, RDF_TYPE,
    XSD_BOOLEAN, XSD_DOUBLE, XSD_INTEGER, XSD_STRING,
};

macro_rules! static_arc {
    ($name:ident, $value:expr) => {
        pub(crate) fn $name() -> Arc<str> {
            static CELL: OnceLock<Arc<str>> = OnceLock::new();
            CELL.get_or_init(|| Arc::from($value)).clone()
        }
    };
}

static_arc!(xsd_string, XSD_STRING);
static_arc!(xsd_integer, XSD_INTEGER);
static_arc!(xsd_double, XSD_DOUBLE);
static_arc!(xsd_boolean, XSD_BOOLEAN);
static_arc!(rdf_lang_string, RDF_LANG_STRING);
static_arc!(rdf_type, RDF_TYPE);
static_arc!(rdf_first, RDF_FIRST);
static_arc!(rdf_rest, RDF_REST);
static_arc!(rdf_nil, RDF_NIL);

/// Canonical lexical form of an `xsd:double` as JSON-LD produces it
/// (`value.toExponential(15)` with trailing zeros of the mantissa removed: `1.1E0`, `1.5E-7`).
pub(crate) fn canonical_double(f: f64) -> String {
    let s = format!("{f:.15e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let mantissa = match mantissa.split_once('.') {
        Some((int, frac)) => {
            let trimmed = frac.trim_end_matches('0');
            let frac = if trimmed.is_empty() { "0" } else { trimmed };
            format!("{int}.{frac}")
        }
        None => format!("{mantissa}.0"),
    };
    format!("{mantissa}E{exp}")
}

/// Converts a JSON scalar with its (expanded) datatype/language to an RDF literal, following the
/// JSON-LD "Object to RDF" rules: booleans become `xsd:boolean`; numbers with a fractional part
/// (or ≥ 1e21, or typed `xsd:double`) become canonical `xsd:double`; other numbers `xsd:integer`.
pub(crate) fn literal_from(
    value: &Value,
    datatype: Option<&Arc<str>>,
    language: Option<&Arc<str>>,
) -> Result<Literal, CanonError> {
    let dt = |default: fn() -> Arc<str>| datatype.cloned().unwrap_or_else(default);
    Ok(match value {
        Value::Bool(b) => Literal {
            lexical: if *b { "true" } else { "false" }.to_string(),
            datatype: dt(xsd_boolean),
            language: None,
        },
        Value::Number(n) => {
            let forced_double = datatype.is_some_and(|d| &**d == XSD_DOUBLE);
            let as_float = if n.is_f64() { n.as_f64() } else { None };
            let double =
                forced_double || as_float.is_some_and(|f| f.fract() != 0.0 || f.abs() >= 1e21);
            if double {
                let f = n
                    .as_f64()
                    .ok_or_else(|| CanonError::InvalidJsonLd(format!("number {n}")))?;
                Literal {
                    lexical: canonical_double(f),
                    datatype: dt(xsd_double),
                    language: None,
                }
            } else {
                let lexical = match (n.as_i64(), n.as_u64(), as_float) {
                    (Some(i), _, _) => i.to_string(),
                    (_, Some(u), _) => u.to_string(),
                    // Integral float below 1e21: exact in i128.
                    (_, _, Some(f)) => (f as i128).to_string(),
                    _ => return Err(CanonError::InvalidJsonLd(format!("number {n}"))),
                };
                Literal {
                    lexical,
                    datatype: dt(xsd_integer),
                    language: None,
                }
            }
        }
        Value::String(s) => match language {
            Some(l) => Literal {
                lexical: s.clone(),
                datatype: dt(rdf_lang_string),
                language: Some(l.clone()),
            },
            None => Literal {
                lexical: s.clone(),
                datatype: dt(xsd_string),
                language: None,
            },
        },
        _ => return Err(CanonError::InvalidJsonLd("literal must be a scalar".into())),
    })
}

/// Input leaves that produced a quad's subject, object and graph (0: generated / constant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QuadSrc {
    pub s: usize,
    pub o: usize,
    pub g: usize,
}

/// Builds quads from expanded items.
#[derive(Default)]
pub(crate) struct RdfBuilder {
    pub dataset: Dataset,
    pub srcs: Vec<QuadSrc>,
    labels: HashMap<String, u32>,
}

impl RdfBuilder {
    fn fresh_blank(&mut self) -> Term {
        let b = self.dataset.blank_count;
        self.dataset.blank_count += 1;
        Term::Blank(b)
    }

    fn id_term(&mut self, id: &str) -> Term {
        if id.starts_with("_:") {
            if let Some(b) = self.labels.get(id) {
                return Term::Blank(*b);
            }
            let t = self.fresh_blank();
            if let Term::Blank(b) = t {
                self.labels.insert(id.to_string(), b);
            }
            t
        } else {
            Term::Iri(Arc::from(id))
        }
    }

    fn push(&mut self, s: (Term, usize), p: Arc<str>, o: (Term, usize), g: &Option<(Term, usize)>) {
        self.dataset.quads.push(Quad {
            subject: s.0,
            predicate: p,
            object: o.0,
            graph: g.as_ref().map(|x| x.0.clone()),
        });
        self.srcs.push(QuadSrc {
            s: s.1,
            o: o.1,
            g: g.as_ref().map_or(0, |x| x.1),
        });
    }

    /// Emits all top-level items into the default graph.
    pub(crate) fn add_items(&mut self, items: &[Item]) -> Result<(), CanonError> {
        for item in items {
            if let Item::Node(n) = item {
                self.node(n, &None)?;
            }
        }
        Ok(())
    }

    fn node(
        &mut self,
        n: &Node,
        graph: &Option<(Term, usize)>,
    ) -> Result<(Term, usize), CanonError> {
        let subject = match &n.id {
            Some(id) => (self.id_term(id), n.id_src),
            None => (self.fresh_blank(), 0),
        };
        for (t, tsrc) in &n.types {
            let o = self.id_term(t);
            self.push(subject.clone(), rdf_type(), (o, *tsrc), graph);
        }
        for (p, items) in &n.props {
            if p.starts_with("_:") {
                return Err(CanonError::Unsupported(
                    "blank node predicates (generalized RDF)",
                ));
            }
            let pred: Arc<str> = Arc::from(p.as_str());
            for it in items {
                let o = self.object(it, graph)?;
                self.push(subject.clone(), pred.clone(), o, graph);
            }
        }
        if let Some(g) = &n.graph {
            let name = Some(subject.clone());
            for it in g {
                if let Item::Node(inner) = it {
                    self.node(inner, &name)?;
                }
            }
        }
        Ok(subject)
    }

    fn object(
        &mut self,
        it: &Item,
        graph: &Option<(Term, usize)>,
    ) -> Result<(Term, usize), CanonError> {
        match it {
            Item::Node(n) => self.node(n, graph),
            Item::Value(v) => {
                let dt = v.datatype.as_deref().map(Arc::from);
                let lang = v.language.as_deref().map(Arc::from);
                Ok((
                    Term::Literal(literal_from(&v.value, dt.as_ref(), lang.as_ref())?),
                    v.src,
                ))
            }
            Item::List(items) => {
                if items.is_empty() {
                    return Ok((Term::Iri(rdf_nil()), 0));
                }
                let cells: Vec<Term> = items.iter().map(|_| self.fresh_blank()).collect();
                for (i, item) in items.iter().enumerate() {
                    let o = self.object(item, graph)?;
                    self.push((cells[i].clone(), 0), rdf_first(), o, graph);
                    let rest = cells
                        .get(i + 1)
                        .cloned()
                        .unwrap_or_else(|| Term::Iri(rdf_nil()));
                    self.push((cells[i].clone(), 0), rdf_rest(), (rest, 0), graph);
                }
                Ok((cells[0].clone(), 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_match_javascript_to_exponential() {
        assert_eq!(canonical_double(1.1), "1.1E0");
        assert_eq!(canonical_double(1.5e-7), "1.5E-7");
        assert_eq!(canonical_double(-2.25), "-2.25E0");
        assert_eq!(canonical_double(1e21), "1.0E21");
        assert_eq!(canonical_double(123456.789), "1.23456789E5");
    }

    #[test]
    fn numbers_follow_jsonld_rules() {
        let lit = |v: Value| literal_from(&v, None, None).expect("literal");
        let l = lit(serde_json::json!(2));
        assert_eq!((l.lexical.as_str(), &*l.datatype), ("2", XSD_INTEGER));
        let l = lit(serde_json::json!(2.0));
        assert_eq!((l.lexical.as_str(), &*l.datatype), ("2", XSD_INTEGER));
        let l = lit(serde_json::json!(2.5));
        assert_eq!((l.lexical.as_str(), &*l.datatype), ("2.5E0", XSD_DOUBLE));
        let l = lit(serde_json::json!(true));
        assert_eq!((l.lexical.as_str(), &*l.datatype), ("true", XSD_BOOLEAN));
    }
}
