//! Criterion benches for each stage on 8192-event batches of generated data:
//! parse (file source: JSON -> Arrow), validate, dedupe (new keys), publish (Parquet encode + write),
//! sign and QR payload; and per certificate: canonicalization (template and general) and signing.
//!
//! Run: `cargo bench -p divoc-bench --bench operators`

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::record_batch::RecordBatch;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use divoc_bench::gen::{write_events, GenConfig, GenFormat};
use divoc_connectors::files::{FileSource, FileSourceConfig};
use divoc_connectors::parquet::PartitionedParquet;
use divoc_connectors::storage::Storage;
use divoc_credential::{Canonicalizer, DocumentLoader, SigningKey};
use divoc_model::catalogue::VaccineCatalogue;
use divoc_operators::dedupe::{Dedupe, DedupeConfig};
use divoc_operators::keys::IssuerKey;
use divoc_operators::qr_payload::QrPayload;
use divoc_operators::sign::{Sign, SignConfig};
use divoc_operators::validate::{Validate, ValidateConfig};
use divoc_pipeline::operator::{Operator, Source, SourcePoll};

const BATCH: usize = 8192;

fn input_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("events.ndjson");
    let cfg = GenConfig {
        count: BATCH as u64,
        seed: 3,
        invalid_share: 0.0,
        duplicate_share: 0.0,
        format: GenFormat::Ndjson,
        ..GenConfig::default()
    };
    write_events(&cfg, std::fs::File::create(&p).expect("temp file")).expect("generate");
    p
}

fn parse_batch(path: &std::path::Path) -> RecordBatch {
    let cfg: FileSourceConfig =
        toml::from_str(&format!("path = {:?}", path.display().to_string())).expect("config");
    let mut src = FileSource::new("bench", path.to_path_buf(), cfg).expect("source");
    src.resume(None).expect("resume");
    match src.poll(BATCH).expect("poll") {
        SourcePoll::Batch {
            events: Some(b), ..
        } => b,
        _ => panic!("no events"),
    }
}

fn validate_op() -> Validate {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vaccines.toml");
    let cat = VaccineCatalogue::load(&root).expect("catalogue");
    Validate::new(
        toml::from_str::<ValidateConfig>("catalogue = 'x'").expect("config"),
        cat,
    )
    .expect("validate")
}

/// The same batch with fresh preEnrollmentCodes, so dedupe sees new keys every iteration.
fn with_fresh_keys(batch: &RecordBatch, round: u64) -> RecordBatch {
    let schema = batch.schema();
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if f.name() == "pre_enrollment_code" {
                Arc::new(StringArray::from_iter_values(
                    (0..batch.num_rows()).map(|i| format!("R{round}-{i}")),
                )) as ArrayRef
            } else {
                c.clone()
            }
        })
        .collect();
    RecordBatch::try_new(schema, cols).expect("same schema")
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = input_file(dir.path());
    let mut g = c.benchmark_group("operators");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);

    g.bench_function("parse_ndjson_to_arrow", |b| b.iter(|| parse_batch(&path)));

    let batch = validate_op()
        .process(parse_batch(&path), "v")
        .expect("validate")
        .output;
    let mut v = validate_op();
    g.bench_function("validate", |b| {
        b.iter(|| v.process(batch.clone(), "validate").expect("validate"))
    });

    let mut dedupe = Dedupe::open(
        &dir.path().join("keys"),
        &toml::from_str::<DedupeConfig>("").expect("config"),
    )
    .expect("dedupe");
    let mut round = 0u64;
    g.bench_function("dedupe_new_keys", |b| {
        b.iter_batched(
            || {
                round += 1;
                with_fresh_keys(&batch, round)
            },
            |fresh| dedupe.process(fresh, "dedupe").expect("dedupe"),
            BatchSize::SmallInput,
        )
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let storage = Storage::open(
        &dir.path().join("out").display().to_string(),
        &Default::default(),
        rt.handle().clone(),
    )
    .expect("store");
    let deduped = dedupe
        .process(with_fresh_keys(&batch, u64::MAX), "dedupe")
        .expect("dedupe")
        .output;
    let mut out = PartitionedParquet::new(storage, "accepted", vec!["raw".into()]);
    let mut epoch = 0;
    g.bench_function("publish_parquet", |b| {
        b.iter(|| {
            epoch += 1;
            out.push(deduped.clone()).expect("push");
            out.flush(epoch).expect("flush")
        })
    });

    // Signing: the sign operator on the batch (canonicalize + Ed25519, rayon), then per certificate.
    let sign_cfg: SignConfig = toml::from_str("key_file = 'k'\ncatalogue = 'c'").expect("config");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vaccines.toml");
    let mut signer = Sign::new(
        sign_cfg,
        IssuerKey::from_seed("did:web:bench.example", [5u8; 32]),
        VaccineCatalogue::load(&root).expect("catalogue"),
    );
    g.bench_function("sign_batch", |b| {
        b.iter(|| signer.process(deduped.clone(), "sign").expect("sign"))
    });
    let signed = signer
        .process(deduped.clone(), "sign")
        .expect("sign")
        .output;
    let mut qr = QrPayload;
    g.bench_function("qr_payload_zip", |b| {
        b.iter(|| qr.process(signed.clone(), "qr").expect("qr"))
    });
    g.finish();

    // The same batch under each proof suite, with status entries: the 2018 row without status is
    // the baseline of the same run.
    let mut suites = c.benchmark_group("sign_batch_by_suite");
    suites.throughput(Throughput::Elements(BATCH as u64));
    suites.sample_size(10);
    for (name, options) in [
        ("Ed25519Signature2018", ""),
        ("Ed25519Signature2018+status", "credential_status = true"),
        (
            "Ed25519Signature2020+status",
            "proof_suite = 'Ed25519Signature2020'\ncredential_status = true",
        ),
        (
            "eddsa-rdfc-2022+status",
            "proof_suite = 'eddsa-rdfc-2022'\ncredential_status = true",
        ),
    ] {
        let cfg: SignConfig =
            toml::from_str(&format!("key_file = 'k'\ncatalogue = 'c'\n{options}")).expect("config");
        let mut suite_signer = Sign::new(
            cfg,
            IssuerKey::from_seed("did:web:bench.example", [5u8; 32]),
            VaccineCatalogue::load(&root).expect("catalogue"),
        );
        let probe = suite_signer.process(deduped.clone(), "sign").expect("sign");
        assert_eq!(probe.output.num_rows(), BATCH, "{name}: every row signs");
        suites.bench_function(name, |b| {
            b.iter(|| suite_signer.process(deduped.clone(), "sign").expect("sign"))
        });
    }
    suites.finish();

    let mut one = c.benchmark_group("per_certificate");
    one.throughput(Throughput::Elements(1));
    let cred = signer
        .credential(&deduped, 0)
        .expect("credential")
        .to_json()
        .expect("json");
    let canon = Canonicalizer::new(DocumentLoader::default());
    let general = Canonicalizer::new(DocumentLoader::default()).without_templates();
    one.bench_function("canonicalize_template", |b| {
        b.iter(|| canon.canonicalize(&cred).expect("canon"))
    });
    one.bench_function("canonicalize_general", |b| {
        b.iter(|| general.canonicalize(&cred).expect("canon"))
    });
    let key = SigningKey::from_bytes(&[5u8; 32]);
    one.bench_function("sign_credential_full", |b| {
        b.iter(|| {
            divoc_credential::sign_with(
                &canon,
                &cred,
                &key,
                "did:web:bench.example#key-1",
                "2022-01-01T00:00:00.000Z",
            )
            .expect("sign")
        })
    });
    let msg = [7u8; 108];
    one.bench_function("ed25519_sign_raw", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&key, &msg))
    });
    one.finish();
}

criterion_group!(operator_benches, benches);
criterion_main!(operator_benches);
