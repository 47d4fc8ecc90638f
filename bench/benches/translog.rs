//! The transparency log at national scale: appends N leaves (10 million by default) to the
//! on-disk log, flushing (fsync) every `--epoch` leaves as the pipeline would once per epoch,
//! then times inclusion and consistency proofs at that size and their verification.
//!
//! ```text
//! cargo bench --workspace --bench translog -- [--leaves 10000000] [--epoch 100000]
//!     [--dir target/translog-bench]
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use divoc_translog::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
    FileLog, Subtrees,
};

fn args() -> (u64, u64, PathBuf) {
    let (mut leaves, mut epoch) = (10_000_000u64, 100_000u64);
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/translog-bench");
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--leaves" => leaves = value().parse().expect("--leaves: a number"),
            "--epoch" => epoch = value().parse().expect("--epoch: a number"),
            "--dir" => dir = PathBuf::from(value()),
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header for usage"),
        }
    }
    (leaves, epoch.max(1), dir)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() {
    let (n, epoch, dir) = args();
    let _ = std::fs::remove_dir_all(&dir);
    let mut log = FileLog::open(&dir).expect("open the log");
    // A leaf as the pipeline would log it: certificate id, status and the credential's hash.
    let entry = |i: u64| {
        format!("{{\"certificateId\":\"{:014}\",\"status\":\"issued\",\"credentialSha256\":\"{:016x}{:016x}\"}}", 10_000_000_000_000 + i, mix(i), mix(!i))
    };
    let started = Instant::now();
    for i in 0..n {
        log.push(leaf_hash(entry(i).as_bytes())).expect("append");
        if (i + 1) % epoch == 0 {
            log.flush().expect("flush");
        }
    }
    log.flush().expect("flush");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "appended {n} leaves in {secs:.1} s: {:.0} appends/s (fsync every {epoch})",
        n as f64 / secs
    );
    let started = Instant::now();
    let head = root(&log, n).expect("root");
    println!(
        "root of {n} leaves in {:.1} us",
        started.elapsed().as_secs_f64() * 1e6
    );

    let samples = 2000u64;
    let (mut prove, mut check) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let i = mix(s) % n;
        let t = Instant::now();
        let proof = inclusion_proof(&log, i, n).expect("prove");
        prove.push(t.elapsed());
        let t = Instant::now();
        verify_inclusion(&leaf_hash(entry(i).as_bytes()), i, n, &proof, &head).expect("verify");
        check.push(t.elapsed());
    }
    prove.sort();
    check.sort();
    println!(
        "inclusion proof at {n}: p50 {:.1} us, p99 {:.1} us to build ({} hashes); verify p50 {:.1} us",
        percentile(&prove, 0.5),
        percentile(&prove, 0.99),
        inclusion_proof(&log, n / 3, n).expect("prove").len(),
        percentile(&check, 0.5)
    );
    let (mut prove, mut check) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let first = 1 + mix(s ^ 0xC0) % (n - 1);
        let old = root(&log, first).expect("old root");
        let t = Instant::now();
        let proof = consistency_proof(&log, first, n).expect("prove");
        prove.push(t.elapsed());
        let t = Instant::now();
        verify_consistency(first, n, &old, &head, &proof).expect("verify");
        check.push(t.elapsed());
    }
    prove.sort();
    check.sort();
    println!(
        "consistency proof to {n}: p50 {:.1} us, p99 {:.1} us to build; verify p50 {:.1} us",
        percentile(&prove, 0.5),
        percentile(&prove, 0.99),
        percentile(&check, 0.5)
    );
    println!("log size {} leaves on disk", log.size());
}
