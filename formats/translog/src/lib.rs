//! A transparency log in the style of Certificate Transparency (RFC 6962, RFC 9162 section 2):
//! every issued, updated and revoked certificate is a leaf of an append-only Merkle tree; the
//! issuer signs tree heads; anyone holding a tree head can check that a certificate is in the log
//! (inclusion proof) and that a later tree head extends an earlier one without rewriting history
//! (consistency proof).
//!
//! - [`merkle`]: the hashing, proofs and their verification, over any store of perfect subtrees.
//! - [`store`]: the log on disk, one file per tree level, truncatable to a committed size.
//! - [`head`]: signed tree heads.

pub mod entry;
pub mod head;
pub mod merkle;
pub mod store;

pub use entry::LogEntry;
pub use head::{SignedTreeHead, TreeHeadError};
pub use merkle::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root, verify_consistency,
    verify_inclusion, Hash, MemoryTree, ProofError, Subtrees, EMPTY_ROOT,
};
pub use store::FileLog;
