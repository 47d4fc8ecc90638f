//! `divoc reissue` over a national-size store: certifies N events (1 million by default) with the
//! shipped file pipeline, then re-issues every current certificate with a new issuer key twice:
//! once killed with SIGKILL halfway and resumed (the resumed run must sign only what the killed
//! one had not committed), once uninterrupted as the baseline rate. Prints the job's own progress
//! lines and each run's rate.
//!
//! ```text
//! cargo build --release && cargo bench --workspace --bench reissue -- [--events 1000000]
//!     [--dir target/reissue-bench] [--reuse]
//! ```
//! (`DIVOC_BIN` overrides the binary, default `target/release/divoc`.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

struct Args {
    events: u64,
    dir: PathBuf,
    reuse: bool,
}

fn args() -> Args {
    let mut a = Args {
        events: 1_000_000,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/reissue-bench"),
        reuse: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => a.events = value().parse().expect("--events: a number"),
            "--dir" => a.dir = PathBuf::from(value()),
            "--reuse" => a.reuse = true,
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header for usage"),
        }
    }
    a
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin() -> PathBuf {
    let bin = std::env::var_os("DIVOC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release/divoc"));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first (or set DIVOC_BIN)",
        bin.display()
    );
    bin
}

fn divoc(args: &[String]) -> String {
    let out = Command::new(bin()).args(args).output().expect("run divoc");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "divoc {args:?}: {text}");
    text
}

fn sets(dir: &Path) -> Vec<String> {
    [
        format!(
            "nodes.sign.key_file={}",
            dir.join("keys/issuer.json").display()
        ),
        format!("storage.url={}", dir.join("out").display()),
        format!("storage.state_dir={}", dir.join("state").display()),
        format!("nodes.input.path={}", dir.join("input").display()),
        "metrics.listen=".to_owned(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_owned(), s])
    .collect()
}

fn summary_number(text: &str, label: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

/// N of "job <name>: N certificates selected".
fn selected_count(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("job "))
        .find_map(|l| {
            l.strip_suffix(" certificates selected")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no selection count in:\n{text}"))
}

fn key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join("keys").join(name);
    if !p.exists() {
        divoc(&[
            "keys".into(),
            "generate".into(),
            "--out".into(),
            p.display().to_string(),
            "--issuer".into(),
            "https://issuer.bench".into(),
        ]);
    }
    p
}

fn certify(a: &Args) {
    let marker = a.dir.join("certified");
    if a.reuse && std::fs::read_to_string(&marker).ok() == Some(a.events.to_string()) {
        println!(
            "reusing {} certified events in {}",
            a.events,
            a.dir.display()
        );
        return;
    }
    let _ = std::fs::remove_dir_all(&a.dir);
    std::fs::create_dir_all(a.dir.join("input")).expect("bench dir");
    key(&a.dir, "issuer.json");
    divoc(&[
        "gen".into(),
        "--count".into(),
        a.events.to_string(),
        "--seed".into(),
        "7".into(),
        "--invalid-share".into(),
        "0".into(),
        "--duplicate-share".into(),
        "0".into(),
        "--out".into(),
        a.dir.join("input/a.ndjson").display().to_string(),
    ]);
    let started = Instant::now();
    let mut args = vec![
        "run".to_owned(),
        "--config".into(),
        repo().join("config/pipeline.toml").display().to_string(),
    ];
    args.extend(sets(&a.dir));
    let out = divoc(&args);
    println!(
        "certified {} events with config/pipeline.toml in {:.0} s",
        summary_number(&out, "accepted (published):"),
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, a.events.to_string()).expect("marker");
}

fn reissue_args(dir: &Path, job: &str, new_key: &Path) -> Vec<String> {
    let mut args = vec![
        "reissue".to_owned(),
        "--config".into(),
        repo().join("config/pipeline.toml").display().to_string(),
        "--where".into(),
        "true".into(),
        "--key".into(),
        new_key.display().to_string(),
        "--job".into(),
        job.into(),
        "--plain-progress".into(),
    ];
    args.extend(sets(dir));
    args
}

/// Runs a job, printing its progress lines; kills it with SIGKILL once it reports `kill_at`
/// certificates done. Returns (its output, seconds, killed).
fn run_job(args: &[String], kill_at: Option<u64>) -> (String, f64, bool) {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start divoc reissue");
    let stdout = child.stdout.take().expect("stdout");
    let collector = std::thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            s.push_str(&line);
            s.push('\n');
        }
        s
    });
    let mut text = String::new();
    let mut killed = false;
    for line in BufReader::new(child.stderr.take().expect("stderr"))
        .lines()
        .map_while(Result::ok)
    {
        println!("  | {line}");
        text.push_str(&line);
        text.push('\n');
        let done = line
            .strip_prefix("re-issued ")
            .and_then(|r| r.split('/').next())
            .and_then(|n| n.parse::<u64>().ok());
        if let (Some(at), Some(done)) = (kill_at, done) {
            if done >= at && !killed {
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                killed = true;
                println!("  | (SIGKILL)");
            }
        }
    }
    let status = child.wait().expect("wait");
    text.push_str(&collector.join().expect("stdout"));
    assert!(killed || status.success(), "divoc reissue failed:\n{text}");
    (text, started.elapsed().as_secs_f64(), killed)
}

fn main() {
    let a = args();
    certify(&a);
    let new_key = key(&a.dir, "issuer-2027.json");
    // A fresh job name per invocation, so a reused store is re-issued again.
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();

    println!("\nre-issue with a new key, killed halfway, then resumed:");
    let args = reissue_args(&a.dir, &format!("resume-{stamp}"), &new_key);
    let (_, first_secs, killed) = run_job(&args, Some(a.events / 2));
    assert!(killed, "the job finished before it was half done");
    let (out, secs, _) = run_job(&args, None);
    let selected = selected_count(&out);
    let resumed = summary_number(&out, "accepted (published):");
    println!(
        "killed after {first_secs:.0} s; the resumed run signed {resumed} of {selected} in {secs:.0} s ({:.0} certificates/s)",
        resumed as f64 / secs
    );
    assert!(resumed < selected, "the resumed run started over");

    println!("\nthe same, uninterrupted (the baseline):");
    let args = reissue_args(&a.dir, &format!("full-{stamp}"), &new_key);
    let (out, secs, _) = run_job(&args, None);
    let all = summary_number(&out, "accepted (published):");
    println!(
        "re-issued {all} certificates in {secs:.0} s: {:.0} certificates/s (selection included)",
        all as f64 / secs
    );
}
