use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, StringArray};
use divoc_credential::status_list::LIST_BITS;
use divoc_pipeline::checkpoint::Checkpoint;

use super::*;

struct Fixture {
    storage: Storage,
    state: PathBuf,
    key: IssuerKey,
    /// Last: dropped after the handles above.
    _store: crate::storage::TestStore,
}

fn fixture() -> Fixture {
    let store = crate::storage::TestStore::new();
    Fixture {
        storage: store.storage.clone(),
        state: store.dir.path().join("state"),
        _store: store,
        key: IssuerKey::from_seed_with_id("did:web:issuer.example", "key-1", [5u8; 32]),
    }
}

fn sink(f: &Fixture) -> StatusListSink {
    let cfg = StatusListConfig {
        key_file: PathBuf::new(),
        programs: Vec::new(),
        base_url: "https://issuer.example/status/v1".into(),
        prefix: "status".into(),
    };
    StatusListSink::open(
        &f.state,
        f.storage.clone(),
        cfg,
        f.key.clone(),
        HashMap::new(),
    )
    .unwrap()
}

/// (program, certificate id, event kind, previous id, suspend until as days since 1970).
type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<i32>);

fn batch(rows: &[Row<'_>]) -> RecordBatch {
    let col = |f: &dyn Fn(&Row<'_>) -> Option<String>| {
        Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef
    };
    RecordBatch::try_from_iter(vec![
        (columns::PROGRAM_ID.name, col(&|r| Some(r.0.into()))),
        (columns::CERTIFICATE_ID.name, col(&|r| Some(r.1.into()))),
        (columns::EVENT_KIND.name, col(&|r| Some(r.2.into()))),
        (
            columns::PREVIOUS_CERTIFICATE_ID.name,
            col(&|r| r.3.map(Into::into)),
        ),
        (
            columns::REISSUE_OF.name,
            col(&|r| r.3.filter(|_| r.2.starts_with("reissue")).map(Into::into)),
        ),
        (
            columns::SUSPEND_UNTIL.name,
            Arc::new(rows.iter().map(|r| r.4).collect::<Date32Array>()) as ArrayRef,
        ),
    ])
    .unwrap()
}

fn commit(s: &mut StatusListSink, epoch: u64, written: &EpochOutput) {
    let cp = Checkpoint {
        epoch,
        ..Default::default()
    };
    s.commit(&CommitInfo {
        epoch,
        written,
        checkpoint: &cp,
    })
    .unwrap();
}

fn epoch(s: &mut StatusListSink, n: u64, rows: &[Row<'_>]) {
    s.write(batch(rows)).unwrap();
    let out = s.pre_commit(n).unwrap();
    commit(s, n, &out);
}

/// The published list, its signature checked with the issuer key.
fn published(f: &Fixture, program: &str, purpose: StatusPurpose, list: u64) -> Option<StatusList> {
    let key = format!("status/{program}/{}/{list}.json", purpose.name());
    let bytes = f.storage.get(&key).unwrap()?;
    let credential: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let public = divoc_credential::keys::public_key_from_base58(&f.key.public_key_base58).unwrap();
    divoc_credential::proof::verify_with(&Canonicalizer::default(), &credential, &public)
        .expect("the published list verifies with the issuer key");
    assert_eq!(
        credential["proof"]["verificationMethod"],
        f.key.verification_method
    );
    Some(StatusList::read(&credential).unwrap())
}

fn bit(f: &Fixture, purpose: StatusPurpose, id: u64) -> bool {
    published(f, "C19", purpose, id / LIST_BITS)
        .expect("list published")
        .bits
        .get(id % LIST_BITS)
}

#[test]
fn every_transition_sets_the_bit_verifiers_read() {
    let f = fixture();
    let mut s = sink(&f);
    let (a, b, c, d) = (
        "1000000000001",
        "1000000000002",
        "1000000000003",
        "1000000000004",
    );
    epoch(
        &mut s,
        1,
        &[
            ("C19", a, "certify_v1", None, None),
            ("C19", b, "certify_v1", None, None),
        ],
    );
    // Issuing makes the list exist, all clear.
    let list = published(
        &f,
        "C19",
        StatusPurpose::Revocation,
        1000000000001 / LIST_BITS,
    )
    .unwrap();
    assert_eq!(list.bits.count_ones(), 0);
    assert_eq!(
        list.url,
        "https://issuer.example/status/v1/C19/revocation/7629394"
    );
    epoch(
        &mut s,
        2,
        &[
            ("C19", a, "revoke", None, None),
            ("C19", b, "suspend", None, Some(20_800)),
            ("C19", c, "update", Some(b), None),
        ],
    );
    assert!(bit(&f, StatusPurpose::Revocation, 1000000000001));
    assert!(bit(&f, StatusPurpose::Suspension, 1000000000002));
    assert!(
        bit(&f, StatusPurpose::Revocation, 1000000000002),
        "update revokes the old id"
    );
    assert!(!bit(&f, StatusPurpose::Revocation, 1000000000003));
    let suspension = published(
        &f,
        "C19",
        StatusPurpose::Suspension,
        1000000000002 / LIST_BITS,
    )
    .unwrap();
    assert_eq!(
        suspension
            .ends
            .get(&(1000000000002 % LIST_BITS))
            .map(String::as_str),
        Some(divoc_model::schema::format_date(20_800).as_str())
    );
    epoch(
        &mut s,
        3,
        &[
            ("C19", b, "lift_suspension", None, None),
            ("C19", d, "reissue_revoking", None, None),
        ],
    );
    assert!(!bit(&f, StatusPurpose::Suspension, 1000000000002));
    assert!(published(&f, "C19", StatusPurpose::Suspension, 7629394)
        .unwrap()
        .ends
        .is_empty());
    // A re-issue leaves the certificate it replaces valid; with --revoke-superseded it revokes it.
    let (e, g) = ("1000000000005", "1000000000006");
    epoch(&mut s, 4, &[("C19", e, "reissue", Some(d), None)]);
    assert!(!bit(&f, StatusPurpose::Revocation, 1000000000004));
    epoch(&mut s, 5, &[("C19", g, "reissue_revoking", Some(e), None)]);
    assert!(bit(&f, StatusPurpose::Revocation, 1000000000005));
    assert!(!bit(&f, StatusPurpose::Revocation, 1000000000006));
    // State survives a reopen.
    drop(s);
    let mut s = sink(&f);
    epoch(&mut s, 6, &[("C19", c, "suspend", None, None)]);
    assert!(
        bit(&f, StatusPurpose::Revocation, 1000000000001),
        "earlier bits kept"
    );
    assert!(bit(&f, StatusPurpose::Suspension, 1000000000003));
}

#[test]
fn an_uncommitted_epoch_is_never_published_and_its_replay_applies_once() {
    let f = fixture();
    let mut s = sink(&f);
    let id = "2000000000010";
    epoch(&mut s, 1, &[("C19", id, "certify_v1", None, None)]);
    s.write(batch(&[("C19", id, "revoke", None, None)]))
        .unwrap();
    s.pre_commit(2).unwrap();
    // Crash before the checkpoint of epoch 2: nothing of it is visible.
    assert!(!bit(&f, StatusPurpose::Revocation, 2000000000010));
    drop(s);
    let mut s = sink(&f);
    s.abort(1).unwrap();
    assert!(!f.state.join("staged/2").exists());
    // Replay: a revocation then a lift of a suspension that the lost epoch never had.
    epoch(&mut s, 2, &[("C19", id, "revoke", None, None)]);
    assert!(bit(&f, StatusPurpose::Revocation, 2000000000010));
    assert!(!bit(&f, StatusPurpose::Suspension, 2000000000010));
}

#[test]
fn commit_after_a_crash_between_checkpoint_and_publish_publishes_once() {
    let f = fixture();
    let mut s = sink(&f);
    let id = "3000000000020";
    s.write(batch(&[
        ("C19", id, "certify_v1", None, None),
        ("C19", id, "suspend", None, None),
    ]))
    .unwrap();
    let out = s.pre_commit(1).unwrap();
    drop(s);
    // The checkpoint of epoch 1 was stored, then the process died: restart commits it.
    let mut s = sink(&f);
    commit(&mut s, 1, &out);
    s.abort(1).unwrap();
    assert!(bit(&f, StatusPurpose::Suspension, 3000000000020));
    commit(&mut s, 1, &out);
    assert!(bit(&f, StatusPurpose::Suspension, 3000000000020));
    assert!(!f.state.join("staged/1").exists());
}

#[test]
fn rows_without_a_usable_program_or_id_are_skipped() {
    let f = fixture();
    let mut s = sink(&f);
    s.write(batch(&[
        ("../x", "1", "revoke", None, None),
        ("C19", "not-a-number", "revoke", None, None),
        ("C19", "7", "no_such_kind", None, None),
    ]))
    .unwrap();
    assert_eq!(s.pre_commit(1).unwrap().rows, 0);
    assert!(f.storage.list("status").unwrap().is_empty());
}
