//! A minimal RDF dataset model and the N-Quads serialization used for canonicalization.
//!
//! Blank nodes are plain integer indexes into the dataset: labels only matter once the
//! canonicalization algorithm has chosen them, so carrying strings around before that point would
//! only cost allocations. IRIs and datatypes are `Arc<str>` because the same few predicate and
//! datatype IRIs are repeated in every certificate and the template fast path clones them per quad.

use std::fmt::Write as _;
use std::sync::Arc;

/// `rdf:type`, emitted for every `@type` value.
pub const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
/// `rdf:first` (list cells).
pub const RDF_FIRST: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#first";
/// `rdf:rest` (list cells).
pub const RDF_REST: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#rest";
/// `rdf:nil` (empty list).
pub const RDF_NIL: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#nil";
/// `rdf:langString`, the datatype of language-tagged strings.
pub const RDF_LANG_STRING: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";
/// `xsd:string`: the implicit datatype of plain literals (never written out in N-Quads).
pub const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
/// `xsd:boolean`.
pub const XSD_BOOLEAN: &str = "http://www.w3.org/2001/XMLSchema#boolean";
/// `xsd:integer`.
pub const XSD_INTEGER: &str = "http://www.w3.org/2001/XMLSchema#integer";
/// `xsd:double`.
pub const XSD_DOUBLE: &str = "http://www.w3.org/2001/XMLSchema#double";

/// An RDF literal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Literal {
    /// The lexical form, unescaped.
    pub lexical: String,
    /// Datatype IRI (`xsd:string` for plain strings, `rdf:langString` with a language).
    pub datatype: Arc<str>,
    /// Language tag (lower-cased by JSON-LD processing).
    pub language: Option<Arc<str>>,
}

/// An RDF term.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Term {
    /// An absolute IRI.
    Iri(Arc<str>),
    /// A blank node, identified by its index in the dataset.
    Blank(u32),
    /// A literal (only valid in object position).
    Literal(Literal),
}

/// One quad; `graph == None` is the default graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quad {
    /// Subject (IRI or blank node).
    pub subject: Term,
    /// Predicate IRI.
    pub predicate: Arc<str>,
    /// Object.
    pub object: Term,
    /// Graph name (IRI or blank node) or `None` for the default graph.
    pub graph: Option<Term>,
}

/// An RDF dataset: a set of quads plus the number of blank nodes they may mention
/// (blank node indexes are `0..blank_count`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    /// The quads; [`Dataset::normalize`] sorts them and removes duplicates (RDF datasets are sets).
    pub quads: Vec<Quad>,
    /// Upper bound (exclusive) of the blank node indexes used by `quads`.
    pub blank_count: u32,
}

impl Dataset {
    /// Sorts and deduplicates the quads. Two JSON-LD properties mapping to the same predicate with
    /// equal values (DIVOC's `infoUrl`/`feedbackUrl` are both `schema:url`) yield one RDF quad,
    /// and canonicalization must see the set, not the multiset.
    pub fn normalize(&mut self) {
        self.quads.sort_unstable();
        self.quads.dedup();
    }

    /// Serializes the dataset as N-Quads with blank nodes labelled `_:b<index>` (not canonical;
    /// for debugging and for tests).
    pub fn to_nquads(&self, escaping: Escaping) -> String {
        let mut out = String::new();
        for q in &self.quads {
            write_quad(&mut out, q, escaping, &|b, o: &mut String| {
                let _ = write!(o, "_:b{b}");
            });
        }
        out
    }
}

/// Which characters are escaped inside N-Quads string literals.
///
/// RDFC-1.0 (and RDF 1.2 canonical N-Triples) escape `\b \t \n \f \r " \` with ECHAR and every other
/// character in U+0000..U+001F plus U+007F as `\uXXXX` (upper-case hex). The original URDNA2015
/// implementations (jsonld.js / rdf-canonize up to 3.x, which DIVOC's signer used) escaped only
/// `" \ \n \r` and wrote the other control characters raw. The two forms only differ for values
/// containing such control characters; the verifier tries both in that case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escaping {
    /// RDFC-1.0 canonical N-Quads (default).
    #[default]
    Rdfc10,
    /// Legacy URDNA2015 implementations: only `"`, `\`, LF and CR are escaped.
    Legacy,
}

impl Escaping {
    /// Does `s` contain a character that the two escaping conventions treat differently?
    pub fn is_ambiguous(s: &str) -> bool {
        s.bytes()
            .any(|b| (b < 0x20 && b != b'\n' && b != b'\r') || b == 0x7f)
    }
}

/// Appends `s` escaped as the body of an N-Quads string literal.
pub fn escape_literal(out: &mut String, s: &str, escaping: Escaping) {
    let needs = |b: u8| match escaping {
        Escaping::Rdfc10 => b < 0x20 || b == 0x7f || b == b'"' || b == b'\\',
        Escaping::Legacy => b == b'\n' || b == b'\r' || b == b'"' || b == b'\\',
    };
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs(b) {
            continue;
        }
        // Only ASCII bytes are escaped, so slicing at `i` is on a char boundary.
        out.push_str(&s[start..i]);
        start = i + 1;
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            0x0c => out.push_str("\\f"),
            other => {
                let _ = write!(out, "\\u{:04X}", other);
            }
        }
    }
    out.push_str(&s[start..]);
}

/// Writes one term. `blank` renders a blank node index (canonical label, `_:a`/`_:z`, ...).
pub(crate) fn write_term<F>(out: &mut String, term: &Term, escaping: Escaping, blank: &F)
where
    F: Fn(u32, &mut String),
{
    match term {
        Term::Iri(iri) => {
            out.push('<');
            out.push_str(iri);
            out.push('>');
        }
        Term::Blank(b) => blank(*b, out),
        Term::Literal(lit) => {
            out.push('"');
            escape_literal(out, &lit.lexical, escaping);
            out.push('"');
            if let Some(lang) = &lit.language {
                out.push('@');
                out.push_str(lang);
            } else if &*lit.datatype != XSD_STRING {
                out.push_str("^^<");
                out.push_str(&lit.datatype);
                out.push('>');
            }
        }
    }
}

/// Writes one quad followed by `" .\n"`.
pub(crate) fn write_quad<F>(out: &mut String, q: &Quad, escaping: Escaping, blank: &F)
where
    F: Fn(u32, &mut String),
{
    write_term(out, &q.subject, escaping, blank);
    out.push_str(" <");
    out.push_str(&q.predicate);
    out.push_str("> ");
    write_term(out, &q.object, escaping, blank);
    if let Some(g) = &q.graph {
        out.push(' ');
        write_term(out, g, escaping, blank);
    }
    out.push_str(" .\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_per_rdfc10() {
        let mut s = String::new();
        escape_literal(
            &mut s,
            "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{0}i\u{1f}j\u{7f}kनमस्ते",
            Escaping::Rdfc10,
        );
        assert_eq!(
            s,
            "a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0000i\\u001Fj\\u007Fkनमस्ते"
        );
    }

    #[test]
    fn legacy_escaping_leaves_other_controls_raw() {
        let mut s = String::new();
        escape_literal(&mut s, "a\"\\\n\r\t\u{1}", Escaping::Legacy);
        assert_eq!(s, "a\\\"\\\\\\n\\r\t\u{1}");
        assert!(Escaping::is_ambiguous("x\ty"));
        assert!(!Escaping::is_ambiguous("x\ny\"\\"));
    }
}
