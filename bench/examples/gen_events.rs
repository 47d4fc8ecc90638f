//! Writes synthetic events to stdout and the summary to stderr:
//! `cargo run --release -p divoc-bench --example gen_events -- [count] [ndjson|csv] [seed]`.

use divoc_bench::gen::{write_events, GenConfig, GenFormat};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let count = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let format = match args.get(2).map(String::as_str) {
        Some("csv") => GenFormat::Csv,
        _ => GenFormat::Ndjson,
    };
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    let cfg = GenConfig {
        count,
        seed,
        format,
        ..GenConfig::default()
    };
    let summary = write_events(&cfg, std::io::stdout().lock())?;
    eprintln!("{summary:?}");
    Ok(())
}
