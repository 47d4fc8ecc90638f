//! RFC 6962 reference values from Certificate Transparency's own test data (the eight leaves,
//! every root from size 0 to 8, and the published audit and consistency paths), then
//! exhaustive checks over many tree shapes.

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(s: &str) -> Hash {
    unhex(s).try_into().unwrap()
}

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf, 1-based as published; tree size; audit path)
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn reference_tree() -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in LEAVES {
        t.push(leaf_hash(&unhex(l)));
    }
    t
}

fn hexes(v: &[Hash]) -> Vec<String> {
    v.iter()
        .map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
        .collect()
}

#[test]
fn roots_match_the_reference_for_every_size() {
    let t = reference_tree();
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&t, size as u64).unwrap(), h(want), "size {size}");
    }
    assert_eq!(EMPTY_ROOT, h(ROOTS[0]));
}

#[test]
fn audit_paths_match_the_reference_and_verify() {
    let t = reference_tree();
    for (leaf, size, path) in INCLUSION {
        let index = leaf - 1;
        let proof = inclusion_proof(&t, index, size).unwrap();
        assert_eq!(hexes(&proof), path, "leaf {leaf} of {size}");
        let r = h(ROOTS[size as usize]);
        let l = leaf_hash(&unhex(LEAVES[index as usize]));
        verify_inclusion(&l, index, size, &proof, &r).unwrap();
        assert_eq!(
            verify_inclusion(&l, index, size, &proof, &h(ROOTS[0])),
            Err(ProofError::RootMismatch)
        );
    }
}

#[test]
fn consistency_proofs_match_the_reference_and_verify() {
    let t = reference_tree();
    for (first, second, path) in CONSISTENCY {
        let proof = consistency_proof(&t, first, second).unwrap();
        assert_eq!(hexes(&proof), path, "{first} -> {second}");
        let (a, b) = (h(ROOTS[first as usize]), h(ROOTS[second as usize]));
        verify_consistency(first, second, &a, &b, &proof).unwrap();
    }
}

fn tree_of(n: u64, salt: u8) -> (MemoryTree, Vec<Hash>) {
    let mut t = MemoryTree::new();
    let leaves: Vec<Hash> = (0..n)
        .map(|i| leaf_hash(&[salt, i as u8, (i >> 8) as u8]))
        .collect();
    for l in &leaves {
        t.push(*l);
    }
    (t, leaves)
}

/// The root of a list by the RFC's recursive definition, independent of the stored levels.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

#[test]
fn every_leaf_of_every_shape_proves_and_nothing_else_does() {
    let (t, leaves) = tree_of(70, 1);
    for size in 1..=70u64 {
        let r = root(&t, size).unwrap();
        assert_eq!(r, mth(&leaves[..size as usize]), "size {size}");
        for index in 0..size {
            let proof = inclusion_proof(&t, index, size).unwrap();
            verify_inclusion(&leaves[index as usize], index, size, &proof, &r).unwrap();
            // A certificate not in the log, or at another position, does not prove.
            let stranger = leaf_hash(b"not in the log");
            assert!(verify_inclusion(&stranger, index, size, &proof, &r).is_err());
            if size > 1 {
                let other = (index + 1) % size;
                assert!(
                    verify_inclusion(&leaves[index as usize], other, size, &proof, &r).is_err()
                );
            }
            let mut short = proof.clone();
            if short.pop().is_some() {
                assert!(
                    verify_inclusion(&leaves[index as usize], index, size, &short, &r).is_err()
                );
            }
        }
    }
    assert!(inclusion_proof(&t, 70, 70).is_err());
}

#[test]
fn every_pair_of_sizes_is_consistent_and_a_rewritten_history_is_not() {
    let (t, _) = tree_of(45, 2);
    for first in 1..=45u64 {
        for second in first..=45u64 {
            let proof = consistency_proof(&t, first, second).unwrap();
            let (a, b) = (root(&t, first).unwrap(), root(&t, second).unwrap());
            verify_consistency(first, second, &a, &b, &proof).unwrap();
        }
    }
    // The same log with leaf 3 rewritten: its new heads are internally consistent, but no proof
    // links them to a head signed before the rewrite.
    let (_, leaves) = tree_of(45, 2);
    let mut forged = MemoryTree::new();
    for (i, l) in leaves.iter().enumerate() {
        forged.push(if i == 3 { leaf_hash(b"rewritten") } else { *l });
    }
    for first in 4..=20u64 {
        let honest_old = root(&t, first).unwrap();
        let forged_new = root(&forged, 45).unwrap();
        let proof = consistency_proof(&forged, first, 45).unwrap();
        assert_eq!(
            verify_consistency(first, 45, &honest_old, &forged_new, &proof),
            Err(ProofError::RootMismatch),
            "first {first}"
        );
    }
    assert!(consistency_proof(&t, 0, 3).is_err());
    assert!(consistency_proof(&t, 4, 3).is_err());
}
