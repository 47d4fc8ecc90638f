//! Property test: the template fast path is byte-identical to general JSON-LD processing.

mod common;

use common::{credential, proof_options, GenOptions, Rng, SHAPES};
use divoc_credential::{urdna2015, Canonicalizer, Escaping};

#[test]
fn template_equals_general_for_generated_credentials() {
    const N: u64 = 12_000;
    let canon = Canonicalizer::default();
    let mut rng = Rng::new(0xD1_70C);
    let (mut ok, mut errors, mut with_legacy) = (0u64, 0u64, 0u64);
    for i in 0..N {
        let doc = credential(&mut rng, GenOptions::ALL);
        let fast = canon.canonicalize(&doc);
        let general = canon.canonicalize_general(&doc);
        assert_eq!(fast, general, "credential #{i}: {doc}");
        match fast {
            Ok(_) => ok += 1,
            Err(_) => errors += 1,
        }
        // The datasets also agree under legacy escaping (every tenth document, it costs a rerun).
        if i % 10 == 0 {
            if let (Ok(a), Ok(b)) = (canon.dataset(&doc), canon.processor().to_rdf(&doc)) {
                assert_eq!(
                    urdna2015::canonicalize(&a, Escaping::Legacy),
                    urdna2015::canonicalize(&b, Escaping::Legacy),
                    "credential #{i} (legacy escaping)"
                );
                with_legacy += 1;
            }
        }
        let opts = proof_options(&mut rng, &doc["@context"]);
        assert_eq!(
            canon.canonicalize(&opts),
            canon.canonicalize_general(&opts),
            "proof options #{i}"
        );
    }
    let stats = canon.template_stats();
    println!("{SHAPES} base shapes");
    println!("compared {N} credentials (+{N} proof options): {ok} canonicalized, {errors} rejected by both paths, {with_legacy} also under legacy escaping; template stats {stats:?}");
    assert!(ok > N * 9 / 10, "most generated credentials are valid");
    assert!(
        errors > 0,
        "invalid identifiers must be rejected by both paths"
    );
    // The bulk went through templates; the fallbacks are documents with blank-node/relative ids.
    assert!(stats.hits > 2 * N * 9 / 10, "{stats:?}");
    assert!(stats.fallbacks > 0, "{stats:?}");
    // Templates are reused: far fewer compilations than documents.
    assert!(stats.compiled < 200, "{stats:?}");
}
