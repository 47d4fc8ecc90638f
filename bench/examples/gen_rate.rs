//! Measures generator throughput: `cargo run --release -p divoc-bench --example gen_rate [count]`.
//!
//! Writes to `io::sink()` so only generation and serialisation are timed.

use std::time::Instant;

use divoc_bench::gen::{write_events, GenConfig, GenFormat};

fn main() -> std::io::Result<()> {
    let count: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    for format in [GenFormat::Ndjson, GenFormat::Csv] {
        let cfg = GenConfig {
            count,
            seed: 1,
            invalid_share: 0.02,
            duplicate_share: 0.01,
            format,
            now_ms: 1_717_200_000_000,
        };
        let mut bytes = CountingSink(0);
        let t = Instant::now();
        let summary = write_events(&cfg, &mut bytes)?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "{format:?}: {count} events in {s:.2}s = {:.0} events/s, {:.1} MB/s, {:.0} bytes/event; {summary:?}",
            count as f64 / s,
            bytes.0 as f64 / s / 1e6,
            bytes.0 as f64 / count as f64
        );
    }
    Ok(())
}

struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
