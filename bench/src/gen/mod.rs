//! Synthetic DIVOC certify events with known expected outcomes.
//!
//! Benchmarks and end-to-end tests need input whose correct result is known in advance: how many
//! events are valid, how many repeat an earlier `(preEnrollmentCode, dose)`, and why each invalid
//! one must be rejected. [`EventGenerator`] produces such events one at a time (NDJSON lines shaped
//! like `divoc_model::event::CertifyRequest`, or rows of DIVOC's bulk CSV) and labels each with [`Expected`];
//! [`write_events`] streams a whole file and returns the tallies as a [`GenSummary`].
//!
//! Everything is derived from `GenConfig::seed` through a SplitMix64 stream, so the same config
//! always yields the same bytes. Memory stays bounded for any `count`: only the last
//! [`RESERVOIR_CAPACITY`] recipients are remembered for follow-up doses and duplicates.

pub mod analytics_rows;
mod data;
mod event;
mod render;
mod util;
pub mod vaccines;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{self, Write};

use divoc_model::event::BULK_CSV_COLUMNS;

use self::event::{DoseRecord, EventSpec, Filler};
use self::render::LineSink;
use self::util::{mix64, SplitMix64, MS_PER_DAY};

/// Validation reason codes the generator can target; the `validate` operator uses the same strings.
pub const REASON_CODES: [&str; 10] = [
    "malformed_json",
    "invalid_field_type",
    "missing_field",
    "missing_age_and_dob",
    "dose_out_of_range",
    "future_date",
    "dob_after_vaccination",
    "unknown_vaccine",
    "invalid_date",
    "field_too_long",
];

/// How many earlier recipients are kept for follow-up doses and duplicates. Bounded so a 50M-event
/// run uses the same memory as a 50k one; 10k is enough for duplicates to look like re-uploads.
pub const RESERVOIR_CAPACITY: usize = 10_000;

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    /// One JSON object per line, each an element of a `/divoc/api/v1/certify` body.
    Ndjson,
    /// DIVOC bulk-certify CSV: a header of `BULK_CSV_COLUMNS`, then one row per event.
    Csv,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Number of events (lines or rows, header excluded).
    pub count: u64,
    /// Seeds every random choice; same config, same bytes.
    pub seed: u64,
    /// Probability (0..=1) that an event carries exactly one validation defect.
    pub invalid_share: f64,
    /// Probability (0..=1) that an event repeats an earlier valid `(preEnrollmentCode, dose)`.
    pub duplicate_share: f64,
    pub format: GenFormat,
    /// Reference "now" (Unix ms). Valid vaccination dates never pass it and `future_date` defects
    /// lie 30..365 days after it, so set it to the wall clock the validator will see (roughly).
    pub now_ms: i64,
}

impl Default for GenConfig {
    /// 1000 NDJSON events, seed 42, 2% invalid, 1% duplicates, `now_ms` = the start of the current
    /// UTC day. The validator compares dates with the ingest time, so a fixed past "now" would
    /// make `future_date` events valid; flooring to the day keeps output byte-identical for a
    /// given seed all day (ages and future dates derive from `now_ms`).
    fn default() -> Self {
        GenConfig {
            count: 1000,
            seed: 42,
            invalid_share: 0.02,
            duplicate_share: 0.01,
            format: GenFormat::Ndjson,
            now_ms: chrono::Utc::now().timestamp_millis().div_euclid(MS_PER_DAY) * MS_PER_DAY,
        }
    }
}

/// Tallies of a generated run; `valid_unique + invalid + duplicates == total`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub total: u64,
    /// Valid events with a `(preEnrollmentCode, dose)` not seen before in the run.
    pub valid_unique: u64,
    pub invalid: u64,
    /// Valid events repeating an earlier valid `(preEnrollmentCode, dose)`.
    pub duplicates: u64,
    /// Invalid events per reason code (only codes that occurred).
    pub invalid_by_reason: BTreeMap<String, u64>,
}

/// The outcome the pipeline should reach for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Passes validation and is new: must become exactly one credential.
    Valid,
    /// Passes validation but repeats an earlier `(preEnrollmentCode, dose)`: must be deduplicated.
    Duplicate,
    /// Must be rejected with this reason code (one of [`REASON_CODES`]).
    Invalid(&'static str),
}

/// One generated line (no trailing newline) and its expected outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedEvent {
    pub line: String,
    pub expected: Expected,
}

/// A remembered recipient: enough to regenerate any of its emitted doses byte for byte.
#[derive(Debug, Clone, Copy)]
struct Slot {
    recipient: u64,
    product: usize,
    /// Bit `d-1` set when dose `d` was emitted as a valid event.
    emitted: u8,
    max_dose: u8,
    doses: [DoseRecord; 3],
}

/// Produces events one at a time; see the module docs.
pub struct EventGenerator {
    format: GenFormat,
    invalid_share: f64,
    duplicate_share: f64,
    rng: SplitMix64,
    filler: Filler,
    /// Next recipient number; every new recipient and every invalid event takes one, which keeps
    /// invalid events' keys disjoint from valid ones.
    next_recipient: u64,
    reservoir: Vec<Slot>,
    reservoir_next: usize,
    csv: csv::Writer<LineSink>,
    summary_counts: [u64; REASON_CODES.len()],
    valid: u64,
    duplicates: u64,
}

impl EventGenerator {
    /// A generator for `cfg`. `cfg.count` is not enforced here (call `next_*` as often as
    /// needed); shares outside 0..=1 or NaN are clamped, and the duplicate share is cut so the
    /// two shares sum to at most 1.
    pub fn new(cfg: &GenConfig) -> Self {
        let clamp = |x: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let invalid_share = clamp(cfg.invalid_share);
        let duplicate_share = clamp(cfg.duplicate_share).min(1.0 - invalid_share);
        let csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(LineSink::default());
        EventGenerator {
            format: cfg.format,
            invalid_share,
            duplicate_share,
            rng: SplitMix64::new(mix64(cfg.seed ^ 0x6469_766f_635f_6765)),
            filler: Filler::new(cfg.seed, cfg.now_ms),
            next_recipient: 0,
            reservoir: Vec::with_capacity(RESERVOIR_CAPACITY.min(1024)),
            reservoir_next: 0,
            csv,
            summary_counts: [0; REASON_CODES.len()],
            valid: 0,
            duplicates: 0,
        }
    }

    /// The CSV header line (no newline), written through the csv crate.
    pub fn csv_header() -> String {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        // Writing to a Vec cannot fail and the header is plain ASCII.
        let _ = w.write_record(BULK_CSV_COLUMNS);
        let mut bytes = w.into_inner().unwrap_or_default();
        bytes.pop();
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Next event as an owned line. Allocates one `String`; use [`Self::next_into`] in hot loops.
    pub fn next_event(&mut self) -> GeneratedEvent {
        let mut buf = Vec::with_capacity(1024);
        let expected = self.next_into(&mut buf);
        // Both renderers emit UTF-8 and malformed lines are cut at char boundaries.
        let line = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        GeneratedEvent { line, expected }
    }

    /// Appends the next event (no trailing newline) to `out` and returns its expected outcome.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Expected {
        let r = self.rng.unit();
        if r < self.invalid_share {
            let reason = self.pick_reason();
            let spec = self.new_recipient_spec(false);
            let expected =
                self.filler
                    .render_invalid(&spec, reason, self.format, &mut self.csv, out);
            if let Expected::Invalid(code) = expected {
                if let Some(i) = REASON_CODES.iter().position(|c| *c == code) {
                    self.summary_counts[i] += 1;
                }
            }
            return expected;
        }
        if r < self.invalid_share + self.duplicate_share && !self.reservoir.is_empty() {
            let spec = self.duplicate_spec();
            self.filler
                .render_valid(&spec, self.format, &mut self.csv, out);
            self.duplicates += 1;
            return Expected::Duplicate;
        }
        let spec = match self.follow_up_spec() {
            Some(spec) => spec,
            None => self.new_recipient_spec(true),
        };
        self.filler
            .render_valid(&spec, self.format, &mut self.csv, out);
        self.valid += 1;
        Expected::Valid
    }

    /// Tallies of everything generated so far.
    pub fn summary(&self) -> GenSummary {
        let invalid: u64 = self.summary_counts.iter().sum();
        GenSummary {
            total: self.valid + self.duplicates + invalid,
            valid_unique: self.valid,
            invalid,
            duplicates: self.duplicates,
            invalid_by_reason: REASON_CODES
                .iter()
                .zip(self.summary_counts)
                .filter(|(_, n)| *n > 0)
                .map(|(code, n)| ((*code).to_owned(), n))
                .collect(),
        }
    }

    fn pick_reason(&mut self) -> &'static str {
        let code = self.rng.pick(&REASON_CODES);
        // A CSV row cannot be malformed JSON; a non-integer dose cell is the closest row defect.
        if code == "malformed_json" && self.format == GenFormat::Csv {
            "invalid_field_type"
        } else {
            code
        }
    }

    /// A never-seen recipient with its first emitted dose; remembered when `remember`.
    fn new_recipient_spec(&mut self, remember: bool) -> EventSpec {
        let recipient = self.next_recipient;
        self.next_recipient += 1;
        let product = self.filler.recipient_product(recipient);
        let total = self.filler.total_doses(product);
        // Most recipients appear with their first dose; others had earlier doses elsewhere.
        let dose = if self.rng.percent(75) {
            1
        } else {
            1 + self.rng.below(u64::from(total)) as u8
        };
        let dose_rec = DoseRecord {
            event_seed: self.rng.next_u64(),
            date_ms: self.filler.first_dose_time(&mut self.rng),
        };
        if remember {
            let slot = Slot {
                recipient,
                product,
                emitted: 1 << (dose - 1),
                max_dose: dose,
                doses: {
                    let mut d = [DoseRecord::default(); 3];
                    d[usize::from(dose - 1)] = dose_rec;
                    d
                },
            };
            if self.reservoir.len() < RESERVOIR_CAPACITY {
                self.reservoir.push(slot);
            } else {
                self.reservoir[self.reservoir_next] = slot;
                self.reservoir_next = (self.reservoir_next + 1) % RESERVOIR_CAPACITY;
            }
        }
        EventSpec {
            recipient,
            product,
            dose,
            record: dose_rec,
            facility_seed: dose_rec.event_seed,
        }
    }

    /// The next dose of a remembered recipient, 4..16 weeks after its latest one, if that is
    /// still within the vaccination window; `None` a third of the time or when not possible.
    fn follow_up_spec(&mut self) -> Option<EventSpec> {
        if self.reservoir.is_empty() || !self.rng.percent(35) {
            return None;
        }
        let idx = self.rng.below(self.reservoir.len() as u64) as usize;
        let slot = self.reservoir[idx];
        let total = self.filler.total_doses(slot.product);
        if slot.max_dose >= total {
            return None;
        }
        let prev = slot.doses[usize::from(slot.max_dose - 1)].date_ms;
        let date_ms = self.filler.next_dose_time(&mut self.rng, prev)?;
        let dose = slot.max_dose + 1;
        let record = DoseRecord {
            event_seed: self.rng.next_u64(),
            date_ms,
        };
        let s = &mut self.reservoir[idx];
        s.emitted |= 1 << (dose - 1);
        s.max_dose = dose;
        s.doses[usize::from(dose - 1)] = record;
        Some(EventSpec {
            recipient: slot.recipient,
            product: slot.product,
            dose,
            record,
            facility_seed: record.event_seed,
        })
    }

    /// Re-emits a remembered valid dose; 30% of re-uploads come from a different facility.
    fn duplicate_spec(&mut self) -> EventSpec {
        let slot = self.reservoir[self.rng.below(self.reservoir.len() as u64) as usize];
        let (mut emitted, mut n) = ([0u8; 3], 0);
        for d in 1..=3u8 {
            if slot.emitted & (1 << (d - 1)) != 0 {
                emitted[n] = d;
                n += 1;
            }
        }
        let dose = self.rng.pick(&emitted[..n]);
        let record = slot.doses[usize::from(dose - 1)];
        let facility_seed = if self.rng.percent(30) {
            self.rng.next_u64()
        } else {
            record.event_seed
        };
        EventSpec {
            recipient: slot.recipient,
            product: slot.product,
            dose,
            record,
            facility_seed,
        }
    }
}

/// Generates `cfg.count` events into `out` (buffered here) and returns what was generated.
///
/// NDJSON gets one object per line; CSV gets the header line first. Memory use does not grow with
/// `count`.
pub fn write_events<W: Write>(cfg: &GenConfig, mut out: W) -> io::Result<GenSummary> {
    // Lines are appended straight into one large buffer that is handed to `out` when full,
    // rather than going through a per-line buffer and a BufWriter (one copy less per event).
    const FLUSH_AT: usize = 1 << 20;
    let mut gen = EventGenerator::new(cfg);
    let mut buf = Vec::with_capacity(FLUSH_AT + 64 * 1024);
    if cfg.format == GenFormat::Csv {
        buf.extend_from_slice(EventGenerator::csv_header().as_bytes());
        buf.push(b'\n');
    }
    for _ in 0..cfg.count {
        gen.next_into(&mut buf);
        buf.push(b'\n');
        if buf.len() >= FLUSH_AT {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(gen.summary())
}

/// Start of the vaccination window: India's drive began on 2021-01-16.
pub(crate) const WINDOW_START_MS: i64 = 18_643 * MS_PER_DAY;
/// End of the vaccination window (exclusive): 2023-01-01T00:00:00Z.
pub(crate) const WINDOW_END_MS: i64 = 19_358 * MS_PER_DAY;
