use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use divoc_pipeline::checkpoint::Checkpoint;
use divoc_translog::{consistency_proof, verify_consistency, MemoryTree};

use super::*;

struct Fixture {
    storage: Storage,
    out: PathBuf,
    state: PathBuf,
    key: divoc_credential::SigningKey,
    /// Last: dropped after the handles above.
    _store: crate::storage::TestStore,
}

fn fixture() -> Fixture {
    let store = crate::storage::TestStore::new();
    Fixture {
        storage: store.storage.clone(),
        out: store.root.clone(),
        state: store.dir.path().join("state"),
        _store: store,
        key: divoc_credential::SigningKey::from_bytes(&[3u8; 32]),
    }
}

fn sink(f: &Fixture) -> TransparencyLog {
    TransparencyLog::open(
        &f.state,
        f.storage.clone(),
        "transparency".into(),
        f.key.clone(),
    )
    .unwrap()
}

/// One row: (certificate id, event kind, previous id, credential).
type Row<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

fn batch(rows: &[Row<'_>]) -> RecordBatch {
    let col = |f: &dyn Fn(&Row<'_>) -> Option<String>| {
        Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef
    };
    RecordBatch::try_from_iter(vec![
        (columns::TENANT.name, col(&|_| Some("t".into()))),
        (columns::CERTIFICATE_ID.name, col(&|r| Some(r.0.into()))),
        (columns::EVENT_KIND.name, col(&|r| Some(r.1.into()))),
        (
            columns::PREVIOUS_CERTIFICATE_ID.name,
            col(&|r| r.2.map(Into::into)),
        ),
        (columns::CREDENTIAL.name, col(&|r| r.3.map(Into::into))),
    ])
    .unwrap()
}

fn commit(s: &mut TransparencyLog, epoch: u64, written: &EpochOutput) {
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

fn head(f: &Fixture, key: &str) -> SignedTreeHead {
    serde_json::from_slice(&std::fs::read(f.out.join(key)).unwrap()).unwrap()
}

/// The tree an auditor rebuilds from the published entry lines alone.
fn audit(f: &Fixture) -> (MemoryTree, Vec<LogEntry>) {
    let mut files: Vec<_> = std::fs::read_dir(f.out.join("transparency/entries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut tree = MemoryTree::new();
    let mut entries = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            tree.push(divoc_translog::leaf_hash(line.as_bytes()));
            let e: LogEntry = serde_json::from_str(line).unwrap();
            assert_eq!(e.index as usize, entries.len(), "indices run in order");
            entries.push(e);
        }
    }
    (tree, entries)
}

#[test]
fn each_change_is_logged_once_and_the_heads_are_signed_and_consistent() {
    let f = fixture();
    let mut s = sink(&f);
    s.write(batch(&[
        ("C1", "certify_v1", None, Some("{\"a\":1}")),
        ("C2", "update", Some("C1"), Some("{\"a\":2}")),
        ("C2", "revoke", None, None),
        ("X", "unknown_kind", None, None),
    ]))
    .unwrap();
    let one = s.pre_commit(1).unwrap();
    assert_eq!(one.rows, 3, "the unknown kind is not a certificate change");
    assert!(
        !f.out.join("transparency/sth/latest.json").exists(),
        "no head before the commit"
    );
    commit(&mut s, 1, &one);
    let first = head(&f, "transparency/sth/latest.json");
    assert_eq!(first.tree_size, 3);
    let first_root = first.verify(&f.key.verifying_key()).unwrap();
    let (tree, entries) = audit(&f);
    assert_eq!(divoc_translog::root(&tree, 3).unwrap(), first_root);
    assert_eq!(entries[1].status, "updated");
    assert_eq!(entries[1].previous_certificate_id.as_deref(), Some("C1"));
    assert_eq!(
        entries[0].credential_sha256.as_deref(),
        Some(sha256_hex(b"{\"a\":1}").as_str())
    );
    assert_eq!(entries[2].status, "revoked");
    assert!(entries[2].credential_sha256.is_none());

    // Epoch 2 is staged, then the process dies before its checkpoint.
    s.write(batch(&[("C3", "certify_v1", None, Some("{\"a\":3}"))]))
        .unwrap();
    s.pre_commit(2).unwrap();
    drop(s);
    let mut s = sink(&f);
    s.abort(1).unwrap();
    assert_eq!(s.log.size(), 3, "back to the committed size");
    // The replay appends the same epoch again, then more.
    s.write(batch(&[("C3", "certify_v1", None, Some("{\"a\":3}"))]))
        .unwrap();
    let two = s.pre_commit(2).unwrap();
    s.write(batch(&[("C4", "reissue", Some("C3"), Some("{\"a\":4}"))]))
        .unwrap();
    let three = s.pre_commit(3).unwrap();
    commit(&mut s, 2, &two);
    assert_eq!(head(&f, "transparency/sth/latest.json").tree_size, 4);
    commit(&mut s, 3, &three);
    let last = head(&f, "transparency/sth/latest.json");
    assert_eq!(last.tree_size, 5);
    let last_root = last.verify(&f.key.verifying_key()).unwrap();
    let (tree, entries) = audit(&f);
    assert_eq!(entries.len(), 5, "C3 once");
    assert_eq!(entries[4].status, "reissued");
    assert_eq!(divoc_translog::root(&tree, 5).unwrap(), last_root);
    let proof = consistency_proof(&tree, 3, 5).unwrap();
    verify_consistency(3, 5, &first_root, &last_root, &proof).unwrap();
    // Every size's head stays published for later consistency checks.
    assert_eq!(head(&f, "transparency/sth/000000000003.json"), first);
}
