use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, Date32Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder,
};
use divoc_connectors::storage::Storage;
use divoc_model::columns::{CREDENTIAL, PREVIOUS_CERTIFICATE_ID, QR_PAYLOAD, RECIPIENT_CONTACT};
use divoc_model::schema;

use super::indexer::{index_batch, BatchOutcome, Indexer};
use super::{CertificateStore, StoreOptions};

const VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/divoc-vector/divoc-ed25519-2018-signed.json"
);

/// DIVOC's signed test vector with this certificate id: a real credential's shape and size.
fn credential(id: &str) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(VECTOR).unwrap()).unwrap();
    v["evidence"][0]["certificateId"] = id.into();
    serde_json::to_string(&v).unwrap()
}

/// One published row.
#[derive(Clone)]
struct Row {
    tenant: &'static str,
    id: Option<&'static str>,
    pre: &'static str,
    dose: i64,
    kind: &'static str,
    previous: Option<&'static str>,
    contact: Option<&'static str>,
    dob: Option<i32>,
    credential: Option<String>,
    qr: Option<Vec<u8>>,
}

fn cert(tenant: &'static str, id: &'static str, pre: &'static str, dose: i64) -> Row {
    let c = credential(id);
    Row {
        tenant,
        id: Some(id),
        pre,
        dose,
        kind: "certify",
        previous: None,
        contact: Some("tel:+91 98765-43210"),
        dob: Some(7000),
        qr: Some(divoc_qr::zip_certificate(c.as_bytes())),
        credential: Some(c),
    }
}

fn batch(rows: &[Row]) -> RecordBatch {
    let text = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let mut contacts = ListBuilder::new(StringBuilder::new());
    for r in rows {
        match r.contact {
            Some(c) => {
                contacts.values().append_value(c);
                contacts.append(true);
            }
            None => contacts.append(false),
        }
    }
    RecordBatch::try_from_iter(vec![
        (schema::TENANT, text(&|r| Some(r.tenant.into()))),
        (schema::CERTIFICATE_ID, text(&|r| r.id.map(Into::into))),
        (schema::PRE_ENROLLMENT_CODE, text(&|r| Some(r.pre.into()))),
        (schema::EVENT_KIND, text(&|r| Some(r.kind.into()))),
        (schema::RECIPIENT_STATE, text(&|_| Some("Kerala".into()))),
        (
            schema::DOSE,
            Arc::new(rows.iter().map(|r| Some(r.dose)).collect::<Int64Array>()) as ArrayRef,
        ),
        (
            schema::RECIPIENT_DOB,
            Arc::new(rows.iter().map(|r| r.dob).collect::<Date32Array>()),
        ),
        (RECIPIENT_CONTACT.name, Arc::new(contacts.finish())),
        (
            PREVIOUS_CERTIFICATE_ID.name,
            text(&|r| r.previous.map(Into::into)),
        ),
        (CREDENTIAL.name, text(&|r| r.credential.clone())),
        (
            QR_PAYLOAD.name,
            Arc::new(
                rows.iter()
                    .map(|r| r.qr.as_deref())
                    .collect::<BinaryArray>(),
            ),
        ),
    ])
    .unwrap()
}

fn open(dir: &std::path::Path) -> CertificateStore {
    CertificateStore::open(dir, "test-source", StoreOptions::default()).unwrap()
}

fn ids(certs: &[Arc<super::StoredCertificate>]) -> Vec<String> {
    certs.iter().map(|c| c.certificate_id.clone()).collect()
}

#[test]
fn lookups_by_id_code_and_contact_stay_within_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut other = cert("t2", "C-9", "P1", 1);
    other.contact = Some("9876543210");
    let rows = [
        cert("t1", "C-2", "P1", 2),
        cert("t1", "C-1", "P1", 1),
        cert("t1", "C-3", "P10", 1),
        other,
    ];
    let outcome = index_batch(&store, &batch(&rows)).unwrap();
    assert_eq!(
        outcome,
        BatchOutcome {
            certificates: 4,
            skipped_rows: 0
        }
    );

    let c = store.by_id("t1", "C-1").unwrap().unwrap();
    assert_eq!((c.pre_enrollment_code.as_str(), c.dose), ("P1", 1));
    assert_eq!(c.state.as_deref(), Some("Kerala"));
    assert_eq!(c.credential_json, credential("C-1"));
    assert_eq!(
        c.qr_payload,
        divoc_qr::zip_certificate(credential("C-1").as_bytes())
    );
    assert!(
        store.by_id("t2", "C-1").unwrap().is_none(),
        "another tenant's id is absent"
    );
    assert!(store.by_id("t1", "C-9").unwrap().is_none());

    assert_eq!(
        ids(&store.doses("t1", "P1").unwrap()),
        ["C-1", "C-2"],
        "by dose"
    );
    assert_eq!(
        ids(&store.doses("t1", "P10").unwrap()),
        ["C-3"],
        "P1 is not a prefix of P10"
    );
    assert_eq!(ids(&store.doses("t2", "P1").unwrap()), ["C-9"]);
    assert!(store.doses("t1", "P").unwrap().is_empty());

    // The same number written differently, and the date of birth must match too.
    let found = store.by_contact("t1", "+919876543210", 7000).unwrap();
    assert_eq!(ids(&found), ["C-1", "C-2", "C-3"]);
    assert!(store
        .by_contact("t1", "9876543210", 7001)
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&store.by_contact("t2", "98765 43210", 7000).unwrap()),
        ["C-9"]
    );
    assert!(store.by_contact("t1", "12", 7000).unwrap().is_empty());
    assert_eq!(store.most_doses().unwrap().unwrap().certificate_id, "C-2");
}

#[test]
fn updates_and_revocations_withdraw_what_they_replace() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    index_batch(
        &store,
        &batch(&[cert("t", "C-1", "P", 1), cert("t", "C-2", "P", 2)]),
    )
    .unwrap();
    // A correction of dose 1 (new id, previous id), then a revocation of dose 2 in a later
    // object; the revocation row carries no credential.
    let mut update = cert("t", "C-3", "P", 1);
    update.kind = "update";
    update.previous = Some("C-1");
    let revoke = Row {
        kind: "revoke",
        credential: None,
        qr: None,
        ..cert("t", "C-2", "P", 2)
    };
    let outcome = index_batch(&store, &batch(&[update, revoke])).unwrap();
    assert_eq!(
        outcome.certificates, 1,
        "the revocation stores no certificate"
    );
    assert!(store.is_withdrawn("t", "C-1").unwrap());
    assert!(store.is_withdrawn("t", "C-2").unwrap());
    assert!(!store.is_withdrawn("t", "C-3").unwrap());
    assert!(
        !store.is_withdrawn("other", "C-1").unwrap(),
        "withdrawals are per tenant"
    );
    assert_eq!(ids(&store.doses("t", "P").unwrap()), ["C-3"]);
    assert!(
        store.by_id("t", "C-1").unwrap().is_some(),
        "still stored, for the 410"
    );
}

#[test]
fn unusable_credentials_are_skipped_and_odd_qr_payloads_kept_as_published() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut broken = cert("t", "C-1", "P", 1);
    broken.credential = Some("{not json".into());
    let mut not_divoc = cert("t", "C-2", "P", 2);
    not_divoc.credential = Some("[1,2]".into());
    let mut odd_qr = cert("t", "C-3", "P", 3);
    odd_qr.qr = Some(b"published by another encoder".to_vec());
    let outcome = index_batch(&store, &batch(&[broken, not_divoc, odd_qr])).unwrap();
    assert_eq!(
        outcome,
        BatchOutcome {
            certificates: 1,
            skipped_rows: 2
        }
    );
    let c = store.by_id("t", "C-3").unwrap().unwrap();
    assert_eq!(c.qr_payload, b"published by another encoder");
}

fn write_parquet(root: &std::path::Path, key: &str, rows: &[Row]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let b = batch(rows);
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        b.schema(),
        None,
    )
    .unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
}

#[test]
fn the_indexer_reads_new_objects_once_and_sets_unreadable_ones_aside() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = dir.path().join("out");
    let storage = Storage::open(
        out.to_str().unwrap(),
        &Default::default(),
        rt.handle().clone(),
    )
    .unwrap();
    write_parquet(
        &out,
        "accepted/d=1/part-000000000001.parquet",
        &[cert("t", "C-1", "P", 1)],
    );
    std::fs::write(
        out.join("accepted/d=1/part-000000000002.parquet"),
        b"not parquet",
    )
    .unwrap();
    write_parquet(
        &out,
        "accepted/d=2/part-000000000003.parquet",
        &[cert("t", "C-3", "Q", 1)],
    );
    let index_dir = dir.path().join("index");
    {
        let store = open(&index_dir);
        let mut indexer = Indexer::new(store.clone(), storage.clone(), "accepted").unwrap();
        let r = indexer.refresh().unwrap();
        assert_eq!((r.objects, r.certificates, r.failed_objects), (2, 2, 1));
        let reason = &indexer.failed()["accepted/d=1/part-000000000002.parquet"];
        assert!(reason.contains("not a Parquet file"), "{reason}");
        assert!(
            store.by_id("t", "C-3").unwrap().is_some(),
            "objects after the bad one are read"
        );
        // Nothing new: nothing read again; the bad object is tried again and still fails.
        let again = indexer.refresh().unwrap();
        assert_eq!((again.objects, again.failed_objects), (0, 1));
        // Repaired: indexed at the next refresh.
        write_parquet(
            &out,
            "accepted/d=1/part-000000000002.parquet",
            &[cert("t", "C-2", "P", 2)],
        );
        let fixed = indexer.refresh().unwrap();
        assert_eq!((fixed.objects, fixed.failed_objects), (1, 0));
        assert!(indexer.failed().is_empty());
        assert!(indexer.stale().unwrap().is_none());
    }
    // Reopened: everything is there without reading the published data again.
    let store = open(&index_dir);
    let mut indexer = Indexer::new(store.clone(), storage.clone(), "accepted").unwrap();
    assert_eq!(ids(&store.doses("t", "P").unwrap()), ["C-1", "C-2"]);
    assert_eq!(indexer.refresh().unwrap().objects, 0);
    // The published data replaced under it (cleared and produced again): the index says so.
    write_parquet(
        &out,
        "accepted/d=1/part-000000000001.parquet",
        &[cert("t", "C-7", "P", 1), cert("t", "C-8", "P", 2)],
    );
    let why = indexer.stale().unwrap().expect("stale");
    assert!(why.contains("part-000000000001.parquet"), "{why}");
    drop((indexer, store));
    // An index built from other data is refused.
    let err = CertificateStore::open(&index_dir, "another-source", StoreOptions::default())
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("another-source"), "{err:#}");
}
