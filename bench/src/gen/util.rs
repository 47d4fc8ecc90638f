//! Small deterministic helpers: a SplitMix64 PRNG and proleptic-Gregorian date arithmetic.
//!
//! Both are hand-rolled so generation is reproducible across platforms and crate upgrades (a `rand`
//! version bump must never change a benchmark's input) and so formatting a date costs no allocation.

/// SplitMix64 (Steele, Lea, Flood 2014): one add and a 3-step mix per output, passes BigCrush,
/// and any `u64` is a valid seed, which lets us derive independent streams by hashing ids.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40 for our table sizes).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `percent`/100.
    #[inline]
    pub fn percent(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }

    /// A uniformly chosen element; `items` must not be empty.
    #[inline]
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The SplitMix64 finaliser; also used to derive per-recipient and per-event seeds from ids.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Cumulative weights for O(log n) weighted picks.
#[derive(Debug, Clone)]
pub(crate) struct Weighted {
    cumulative: Vec<u64>,
}

impl Weighted {
    pub fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut total = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Weighted { cumulative }
    }

    /// Index of the picked item; every weight must not be zero in total.
    #[inline]
    pub fn pick(&self, rng: &mut SplitMix64) -> usize {
        let total = *self.cumulative.last().unwrap_or(&1);
        let x = rng.below(total.max(1));
        self.cumulative.partition_point(|&c| c <= x)
    }
}

pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`); tests use it to check
/// the hard-coded day constants.
#[cfg(test)]
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Appends `v` in decimal, zero-padded to at least `width` digits. Hand-rolled because
/// `core::fmt` padding was a fifth of generation time.
#[inline]
pub(crate) fn push_num(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || i == buf.len() {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    out.extend(buf[start..].iter().map(|&b| char::from(b)));
}

/// Appends `YYYY-MM-DD` for a day count since the epoch (years 0..=9999).
pub(crate) fn push_date(out: &mut String, day: i64) {
    let (y, m, d) = civil_from_days(day);
    push_num(out, y.max(0) as u64, 4);
    out.push('-');
    push_num(out, u64::from(m), 2);
    out.push('-');
    push_num(out, u64::from(d), 2);
}

/// Appends an RFC 3339 UTC timestamp with milliseconds, e.g. `2021-05-12T04:23:45.120Z`.
pub(crate) fn push_timestamp(out: &mut String, ms: i64) {
    let day = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY) as u64;
    push_date(out, day);
    out.push('T');
    push_num(out, in_day / 3_600_000, 2);
    out.push(':');
    push_num(out, in_day / 60_000 % 60, 2);
    out.push(':');
    push_num(out, in_day / 1000 % 60, 2);
    out.push('.');
    push_num(out, in_day % 1000, 3);
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate};

    #[test]
    fn civil_round_trips_and_matches_chrono() {
        for day in (-30_000..40_000).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            let chrono_date = DateTime::from_timestamp(day * 86_400, 0)
                .unwrap()
                .date_naive();
            assert_eq!(
                chrono_date,
                NaiveDate::from_ymd_opt(y as i32, m, d).unwrap()
            );
        }
    }

    #[test]
    fn day_constants_are_the_documented_dates() {
        assert_eq!(
            days_from_civil(2021, 1, 16),
            crate::gen::WINDOW_START_MS / MS_PER_DAY
        );
        assert_eq!(
            days_from_civil(2023, 1, 1),
            crate::gen::WINDOW_END_MS / MS_PER_DAY
        );
        assert_eq!(days_from_civil(1930, 1, 1), -14_610);
        assert_eq!(days_from_civil(2010, 12, 31), 14_974);
    }

    #[test]
    fn timestamp_is_rfc3339() {
        let ms = 1_620_793_425_120; // 2021-05-12T04:23:45.120Z
        let mut s = String::new();
        push_timestamp(&mut s, ms);
        assert_eq!(s, "2021-05-12T04:23:45.120Z");
        let parsed = DateTime::parse_from_rfc3339(&s).unwrap();
        assert_eq!(parsed.timestamp_millis(), ms);
    }

    #[test]
    fn push_num_pads_and_never_truncates() {
        for (v, w, s) in [
            (0, 1, "0"),
            (0, 3, "000"),
            (7, 2, "07"),
            (12345, 3, "12345"),
            (u64::MAX, 0, "18446744073709551615"),
        ] {
            let mut out = String::new();
            push_num(&mut out, v, w);
            assert_eq!(out, s);
        }
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let w = Weighted::new([0, 5, 0, 5]);
        let mut rng = SplitMix64::new(1);
        for _ in 0..1000 {
            let i = w.pick(&mut rng);
            assert!(i == 1 || i == 3);
        }
    }
}
