//! Synthetic rows of the analytics table (`divoc_model::analytics::analytics_schema`) at national
//! scale, for the SQL benchmark: the same states, weights, vaccines and genders as the event
//! generator, ~750 districts (India's count) and tens of thousands of facilities, issued evenly
//! over a number of days. Deterministic per (seed, first row), so epochs can be built in parallel.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use divoc_model::analytics::{analytics_schema, pseudonym};

use super::data::{self, STATES};
use super::util::{mix64, SplitMix64, Weighted, MS_PER_DAY};
use super::vaccines::PRODUCTS;

/// What to generate.
#[derive(Debug, Clone)]
pub struct AnalyticsRowsConfig {
    pub rows: u64,
    /// Issue days the rows spread over, evenly.
    pub days: u32,
    /// Days since 1970-01-01 of the first issue day.
    pub first_day: i32,
    pub districts: usize,
    pub facilities_per_district: usize,
    pub vaccinators_per_facility: usize,
    pub seed: u64,
}

impl Default for AnalyticsRowsConfig {
    fn default() -> Self {
        Self {
            rows: 1_000_000,
            days: 100,
            first_day: 18_800,
            districts: 750,
            facilities_per_district: 40,
            vaccinators_per_facility: 4,
            seed: 7,
        }
    }
}

struct District {
    state: &'static str,
    name: String,
    pincode_prefix: String,
}

struct Facility {
    id: String,
    name: String,
}

const TENANTS: [(&str, u64); 2] = [("in", 97), ("lk", 3)];
const AGE_BANDS: [(&str, u64); 10] = [
    ("0-9", 1),
    ("10-19", 80),
    ("20-29", 220),
    ("30-39", 200),
    ("40-49", 170),
    ("50-59", 130),
    ("60-69", 100),
    ("70-79", 60),
    ("80+", 30),
    ("unknown", 5),
];
/// Days between vaccination and issue: most certificates are issued the same day.
const LAG_DAYS: [u64; 5] = [70, 20, 6, 3, 1];

/// The generator's fixed tables; rows are drawn from them.
pub struct AnalyticsRows {
    cfg: AnalyticsRowsConfig,
    districts: Vec<District>,
    district_pick: Vec<Weighted>,
    states: Weighted,
    facilities: Vec<Facility>,
    vaccinators: Vec<String>,
    products: Weighted,
    genders: Weighted,
    bands: Weighted,
    lags: Weighted,
    tenants: Weighted,
    /// Index of each state's first district in `districts`, and the count.
    state_districts: Vec<(usize, usize)>,
}

impl AnalyticsRows {
    pub fn new(cfg: AnalyticsRowsConfig) -> Self {
        let total_weight: u64 = STATES.iter().map(|s| u64::from(s.weight)).sum();
        let mut districts = Vec::new();
        let mut state_districts = Vec::new();
        let mut district_pick = Vec::new();
        for s in STATES {
            let share = (cfg.districts as u64 * u64::from(s.weight) / total_weight) as usize;
            let n = share.max(s.districts.len()).max(1);
            let first = districts.len();
            for k in 0..n {
                let (name, pin) = match s.districts.get(k) {
                    Some((name, pin)) => ((*name).to_owned(), format!("{pin:03}")),
                    None => (
                        format!("{} District {}", s.name, k + 1),
                        format!("{:03}", 100 + mix64(cfg.seed ^ (first + k) as u64) % 900),
                    ),
                };
                districts.push(District {
                    state: s.name,
                    name,
                    pincode_prefix: pin,
                });
            }
            state_districts.push((first, n));
            // Bigger (listed) districts first; a mild skew inside each state.
            district_pick.push(Weighted::new((0..n as u64).map(|k| 1000 / (k + 2) + 20)));
        }
        let mut facilities = Vec::new();
        let mut vaccinators = Vec::new();
        for d in &districts {
            for f in 0..cfg.facilities_per_district {
                let kind = data::FACILITY_KINDS[f % data::FACILITY_KINDS.len()];
                let name = format!("{kind} {} {}", d.name, f + 1);
                let id = pseudonym(&["in", &name, &d.name, d.state]);
                for v in 0..cfg.vaccinators_per_facility {
                    vaccinators.push(pseudonym(&["in", &format!("{id}/{v}")]));
                }
                facilities.push(Facility { id, name });
            }
        }
        let product_weight = |name: &str| {
            data::VACCINE_WEIGHTS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(1, |(_, w)| u64::from(*w))
        };
        Self {
            states: Weighted::new(STATES.iter().map(|s| u64::from(s.weight))),
            products: Weighted::new(PRODUCTS.iter().map(|p| product_weight(&p.name))),
            genders: Weighted::new(data::GENDERS.iter().map(|g| u64::from(g.1))),
            bands: Weighted::new(AGE_BANDS.iter().map(|b| b.1)),
            lags: Weighted::new(LAG_DAYS),
            tenants: Weighted::new(TENANTS.iter().map(|t| t.1)),
            cfg,
            districts,
            district_pick,
            facilities,
            vaccinators,
            state_districts,
        }
    }

    pub fn config(&self) -> &AnalyticsRowsConfig {
        &self.cfg
    }

    pub fn district_count(&self) -> usize {
        self.districts.len()
    }

    pub fn facility_count(&self) -> usize {
        self.facilities.len()
    }

    /// Rows `first .. first + n` of the data set, in the analytics table's schema.
    pub fn batch(&self, first: u64, n: usize) -> RecordBatch {
        let cfg = &self.cfg;
        let span_ms = i64::from(cfg.days) * MS_PER_DAY;
        let start_ms = i64::from(cfg.first_day) * MS_PER_DAY;
        let mut rng = SplitMix64::new(mix64(cfg.seed ^ first.wrapping_mul(0x9E37)));
        let text = |bytes: usize| StringBuilder::with_capacity(n, n * bytes);
        let (mut id, mut tenant, mut program, mut kind) = (text(10), text(2), text(7), text(7));
        let mut issued = TimestampMillisecondBuilder::with_capacity(n).with_timezone("+00:00");
        let mut day = Date32Builder::with_capacity(n);
        let (mut vaccine, mut icd, mut maker) = (text(10), text(8), text(20));
        let (mut dose, mut total) = (
            Int64Builder::with_capacity(n),
            Int64Builder::with_capacity(n),
        );
        let (mut band, mut gender, mut state, mut district, mut pin) =
            (text(5), text(6), text(12), text(10), text(3));
        let (mut fid, mut fname, mut fstate, mut fdistrict, mut vid) =
            (text(16), text(30), text(12), text(10), text(16));
        for i in first..first + n as u64 {
            id.append_value(format!("{}", 1_000_000_000 + i));
            let t = TENANTS[self.tenants.pick(&mut rng)].0;
            tenant.append_value(t);
            program.append_value("covid19");
            kind.append_value("certify");
            let at = start_ms
                + (i128::from(i) * i128::from(span_ms) / i128::from(cfg.rows.max(1))) as i64;
            issued.append_value(at);
            let lag = self.lags.pick(&mut rng) as i64;
            day.append_value((at.div_euclid(MS_PER_DAY) - lag) as i32);
            let p = &PRODUCTS[self.products.pick(&mut rng)];
            vaccine.append_value(&p.name);
            icd.append_value(&p.icd11);
            maker.append_value(&p.manufacturer);
            let doses = i64::from(p.total_doses.max(1));
            let d = match rng.below(10) {
                0..=4 => 1,
                5..=8 => 2,
                _ => 3,
            }
            .min(doses);
            dose.append_value(d);
            total.append_value(doses);
            band.append_value(AGE_BANDS[self.bands.pick(&mut rng)].0);
            gender.append_value(data::GENDERS[self.genders.pick(&mut rng)].0);
            let s = self.states.pick(&mut rng);
            let (d0, _) = self.state_districts[s];
            let di = d0 + self.district_pick[s].pick(&mut rng);
            let dist = &self.districts[di];
            state.append_value(dist.state);
            district.append_value(&dist.name);
            pin.append_value(&dist.pincode_prefix);
            let fi = di * cfg.facilities_per_district
                + rng.below(cfg.facilities_per_district as u64) as usize;
            let f = &self.facilities[fi];
            fid.append_value(&f.id);
            fname.append_value(&f.name);
            fstate.append_value(dist.state);
            fdistrict.append_value(&dist.name);
            let vi = fi * cfg.vaccinators_per_facility
                + rng.below(cfg.vaccinators_per_facility as u64) as usize;
            vid.append_value(&self.vaccinators[vi]);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(tenant.finish()),
            Arc::new(program.finish()),
            Arc::new(kind.finish()),
            Arc::new(issued.finish()),
            Arc::new(day.finish()),
            Arc::new(vaccine.finish()),
            Arc::new(icd.finish()),
            Arc::new(maker.finish()),
            Arc::new(dose.finish()),
            Arc::new(total.finish()),
            Arc::new(band.finish()),
            Arc::new(gender.finish()),
            Arc::new(state.finish()),
            Arc::new(district.finish()),
            Arc::new(pin.finish()),
            Arc::new(fid.finish()),
            Arc::new(fname.finish()),
            Arc::new(fstate.finish()),
            Arc::new(fdistrict.finish()),
            Arc::new(vid.finish()),
        ];
        // The builders follow the schema column by column; a mismatch is a defect here.
        RecordBatch::try_new(analytics_schema(), columns).expect("analytics rows match the schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_match_the_schema() {
        let g = AnalyticsRows::new(AnalyticsRowsConfig {
            rows: 1000,
            days: 10,
            ..Default::default()
        });
        assert!(g.district_count() >= 700, "{}", g.district_count());
        let a = g.batch(0, 500);
        let b = g.batch(0, 500);
        assert_eq!(a, b);
        assert_eq!(a.num_rows(), 500);
        assert_ne!(g.batch(500, 500), a);
    }
}
