//! Expansion/toRdf tests on small documents (expected outputs cross-checked with PyLD 2.0.4).

use serde_json::json;

use super::*;
use crate::jsonld::context::{
    is_keyword, looks_like_keyword, ContextCache, ContextProcessor, LocalContext,
};

fn nq(doc: Value) -> Result<String, CanonError> {
    JsonLdProcessor::default().canonicalize(&doc, Escaping::Rdfc10)
}

const CRED: &str = "https://www.w3.org/2018/credentials/v1";
const VAC: &str = "https://cowin.gov.in/credentials/vaccination/v1";

#[test]
fn undefined_terms_are_errors() {
    let err = nq(json!({"@context": [CRED, VAC], "type": ["VerifiableCredential"], "foo": "bar"}));
    assert_eq!(err, Err(CanonError::UndefinedTerm("foo".into())));
    let err = nq(json!({"@context": [CRED, VAC], "type": ["VerifiableCredential", "Unknown"]}));
    assert_eq!(err, Err(CanonError::UndefinedType("Unknown".into())));
}

#[test]
fn relative_iris_are_errors() {
    let err = nq(
        json!({"@context": [CRED, VAC], "type": "VerifiableCredential", "issuer": "not-absolute"}),
    );
    assert_eq!(err, Err(CanonError::RelativeIri("not-absolute".into())));
    let err = nq(json!({"@context": [CRED, VAC], "id": "", "type": "VerifiableCredential"}));
    assert_eq!(err, Err(CanonError::RelativeIri(String::new())));
}

#[test]
fn type_scoped_contexts_do_not_propagate() {
    // `issuer` is defined by the VerifiableCredential type-scoped context, which does not reach
    // into credentialSubject.
    let err = nq(json!({
        "@context": [CRED, VAC],
        "type": "VerifiableCredential",
        "credentialSubject": {"type": "Person", "issuer": "https://x.example/"}
    }));
    assert_eq!(err, Err(CanonError::UndefinedTerm("issuer".into())));
}

#[test]
fn property_scoped_contexts_redefine_protected_terms() {
    // Inside `verifier`, `id` is schema:id (a literal), not @id.
    let out = nq(json!({
        "@context": [CRED, VAC],
        "type": "VerifiableCredential",
        "evidence": {"type": "Vaccination", "id": "https://e.example/1", "verifier": {"id": "V-7", "name": "Dr. A"}}
    }))
    .expect("canonicalize");
    assert!(out.contains("<https://schema.org/id> \"V-7\" ."), "{out}");
    assert!(
        out.contains("<https://e.example/1> <vac:verifier> _:c14n"),
        "{out}"
    );
}

#[test]
fn compact_iris_follow_prefix_rules() {
    // `schema` ends with '/', so it is a prefix; `vac` does not, so `vac:x` is left alone.
    let out = nq(json!({
        "@context": [CRED, VAC],
        "type": "VerifiableCredential",
        "credentialSubject": {"id": "schema:abc", "type": "Person"},
        "issuer": "vac:issuer"
    }))
    .expect("canonicalize");
    assert!(
        out.contains(
            "<https://www.w3.org/2018/credentials#credentialSubject> <https://schema.org/abc> ."
        ),
        "{out}"
    );
    assert!(
        out.contains("<https://www.w3.org/2018/credentials#issuer> <vac:issuer> ."),
        "{out}"
    );
}

#[test]
fn literals_numbers_languages_lists_and_graphs() {
    let out = nq(json!({
        "@context": {
            "@vocab": "http://ex/",
            "@language": "EN",
            "list": {"@id": "http://ex/list", "@container": "@list"},
            "g": {"@id": "http://ex/g", "@container": "@graph"},
            "when": {"@id": "http://ex/when", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
            "plain": {"@id": "http://ex/plain", "@language": null}
        },
        "@id": "http://ex/s",
        "int": 5,
        "dbl": 2.5,
        "bool": false,
        "text": "hi",
        "plain": "raw",
        "when": "2021-01-01T00:00:00Z",
        "list": [1, "two"],
        "g": {"@id": "http://ex/inner", "name": "in graph"},
        "typed": {"@value": "x", "@type": "http://ex/T"}
    }))
    .expect("canonicalize");
    let expected = "\
<http://ex/inner> <http://ex/name> \"in graph\"@en _:c14n2 .
<http://ex/s> <http://ex/bool> \"false\"^^<http://www.w3.org/2001/XMLSchema#boolean> .
<http://ex/s> <http://ex/dbl> \"2.5E0\"^^<http://www.w3.org/2001/XMLSchema#double> .
<http://ex/s> <http://ex/g> _:c14n2 .
<http://ex/s> <http://ex/int> \"5\"^^<http://www.w3.org/2001/XMLSchema#integer> .
<http://ex/s> <http://ex/list> _:c14n0 .
<http://ex/s> <http://ex/plain> \"raw\" .
<http://ex/s> <http://ex/text> \"hi\"@en .
<http://ex/s> <http://ex/typed> \"x\"^^<http://ex/T> .
<http://ex/s> <http://ex/when> \"2021-01-01T00:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime> .
_:c14n0 <http://www.w3.org/1999/02/22-rdf-syntax-ns#first> \"1\"^^<http://www.w3.org/2001/XMLSchema#integer> .
_:c14n0 <http://www.w3.org/1999/02/22-rdf-syntax-ns#rest> _:c14n1 .
_:c14n1 <http://www.w3.org/1999/02/22-rdf-syntax-ns#first> \"two\"@en .
_:c14n1 <http://www.w3.org/1999/02/22-rdf-syntax-ns#rest> <http://www.w3.org/1999/02/22-rdf-syntax-ns#nil> .
";
    assert_eq!(out, expected);
}

#[test]
fn unsupported_features_are_reported() {
    let err = nq(
        json!({"@context": {"r": {"@reverse": "http://ex/r"}}, "@id": "http://ex/s", "r": {"@id": "http://ex/o"}}),
    );
    assert_eq!(err, Err(CanonError::Unsupported("@reverse properties")));
    let err = nq(json!({"@context": "https://unknown.example/ctx", "@id": "http://ex/s"}));
    assert_eq!(
        err,
        Err(CanonError::UnknownContext(
            "https://unknown.example/ctx".into()
        ))
    );
}

#[test]
fn duplicate_values_collapse() {
    // infoUrl and feedbackUrl are both schema:url: equal values are one quad.
    let out = nq(json!({
        "@context": [CRED, VAC],
        "type": "VerifiableCredential",
        "evidence": {"type": "Vaccination", "id": "https://e.example/1", "infoUrl": "https://u/", "feedbackUrl": "https://u/"}
    }))
    .expect("canonicalize");
    assert_eq!(out.matches("<https://schema.org/url>").count(), 1, "{out}");
}

// ---- context processing ----

#[test]
fn absolute_iri_test_matches_jsonld_js() {
    assert!(is_absolute_iri("did:in.gov.uidai.aadhaar:123"));
    assert!(is_absolute_iri("vac:city"));
    assert!(is_absolute_iri("_:b0"));
    assert!(is_absolute_iri("a,b:c"));
    assert!(!is_absolute_iri("https://x y"));
    assert!(!is_absolute_iri("1abc:x"));
    assert!(!is_absolute_iri("12346"));
    assert!(!is_absolute_iri(""));
}

#[test]
fn keyword_like() {
    assert!(looks_like_keyword("@foo"));
    assert!(!looks_like_keyword("@"));
    assert!(!looks_like_keyword("@foo1"));
    assert!(is_keyword("@id"));
    assert!(!is_keyword("@foo"));
}

fn process(ctx: Value) -> Result<Arc<ActiveContext>, CanonError> {
    let loader = DocumentLoader::default();
    let cache = ContextCache::default();
    let p = ContextProcessor {
        loader: &loader,
        cache: &cache,
    };
    p.process(
        &Arc::new(ActiveContext::initial()),
        LocalContext::Inline(&ctx),
        false,
        true,
    )
}

#[test]
fn prefix_flag_requires_gen_delim() {
    let ctx = process(serde_json::json!({
        "schema": "https://schema.org/",
        "vac": "https://cowin.gov.in/credentials/vaccination/v1",
        "a": "schema:name",
        "b": "vac:city"
    }))
    .expect("context");
    assert_eq!(
        ctx.term("a").and_then(|d| d.iri.clone()).as_deref(),
        Some("https://schema.org/name")
    );
    assert_eq!(
        ctx.term("b").and_then(|d| d.iri.clone()).as_deref(),
        Some("vac:city")
    );
}

#[test]
fn protected_terms_cannot_change() {
    let err = process(serde_json::json!([
        {"@protected": true, "name": "https://schema.org/name"},
        {"name": "https://example.org/name"}
    ]))
    .expect_err("redefinition");
    assert_eq!(err, CanonError::ProtectedTermRedefinition("name".into()));
    // identical redefinition is fine
    process(serde_json::json!([
        {"@protected": true, "name": "https://schema.org/name"},
        {"name": "https://schema.org/name"}
    ]))
    .expect("identical redefinition");
}

#[test]
fn remote_contexts_load_offline_only() {
    let ctx = process(serde_json::json!("https://w3id.org/security/v2")).expect("security v2");
    assert_eq!(
        ctx.term("created").and_then(|d| d.iri.clone()).as_deref(),
        Some("http://purl.org/dc/terms/created")
    );
    assert!(matches!(
        process(serde_json::json!("https://example.com/ctx")),
        Err(CanonError::UnknownContext(_))
    ));
}
