//! Fills one event. The generator decides *which* event (recipient, dose, date, defect);
//! this module turns that decision into fields and hands them to `render`.
//!
//! One `CertifyRequest` is kept and overwritten in place: `String::clear` keeps capacity, so after
//! warm-up a valid event costs no allocation apart from rare comorbidity strings.

use std::fmt::Write as _;

use divoc_model::event::{Address, CertifyRequest, Facility, Recipient, Vaccination, Vaccinator};

use serde_json::Value;

use super::data::{self, Script, STATES};
use super::render::{
    malform, write_csv, write_invalid_json, write_json, wrong_json_type, LineSink,
};
use super::util::{mix64, push_date, push_num, push_timestamp, SplitMix64, Weighted, MS_PER_DAY};
use super::vaccines::{VaccineProduct, PRODUCTS};
use super::{Expected, GenFormat, WINDOW_END_MS, WINDOW_START_MS};

/// Date and per-event randomness of one emitted dose, kept so a duplicate can reproduce it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DoseRecord {
    pub event_seed: u64,
    pub date_ms: i64,
}

/// Everything needed to render one event deterministically.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventSpec {
    pub recipient: u64,
    pub product: usize,
    pub dose: u8,
    pub record: DoseRecord,
    /// Seeds facility and vaccinator; differs from `record.event_seed` when a duplicate is
    /// re-uploaded by another site.
    pub facility_seed: u64,
}

/// What the recipient fill decided that later steps (defects, facility) need.
struct RecipientInfo {
    state: usize,
    district: usize,
    dob_day: i64,
}

const DOB_FIRST_DAY: i64 = -14_610; // 1930-01-01
const DOB_LAST_DAY: i64 = 14_974; // 2010-12-31
const UNKNOWN_VACCINES: &[&str] = &["Snake Oil", "Placebo Plus", "Miracle Tonic"];

pub(crate) struct Filler {
    seed: u64,
    now_ms: i64,
    window_lo: i64,
    window_hi: i64,
    code_mul: u64,
    code_add: u64,
    code_lane: u64,
    states: Weighted,
    genders: Weighted,
    products: Weighted,
    long_name: String,
    req: CertifyRequest,
}

impl Filler {
    /// `now_ms` earlier than the window's end shrinks the window; if it leaves under 30 days the
    /// window becomes the 30 days before `now_ms` so dates never pass "now".
    pub fn new(seed: u64, now_ms: i64) -> Self {
        let window_hi = (WINDOW_END_MS - 1).min(now_ms);
        let window_lo = WINDOW_START_MS.min(window_hi - 30 * MS_PER_DAY);
        let mut code_mul = (mix64(seed ^ 0xC0DE) % CODE_SPACE) | 1;
        while code_mul.is_multiple_of(5) {
            code_mul += 2;
        }
        let product_weight = |p: &VaccineProduct| {
            data::VACCINE_WEIGHTS
                .iter()
                .find(|(n, _)| *n == p.name)
                .map_or(1, |(_, w)| u64::from(*w))
        };
        let mut long_name = String::with_capacity(2000);
        while long_name.len() < 2000 {
            long_name.push_str("Venkata Subrahmanya Lakshmi Narasimha ");
        }
        long_name.truncate(2000);
        Filler {
            seed,
            now_ms,
            window_lo,
            window_hi,
            code_mul,
            code_add: mix64(seed ^ 0xADD) % CODE_SPACE,
            code_lane: seed % 1000,
            states: Weighted::new(STATES.iter().map(|s| u64::from(s.weight))),
            genders: Weighted::new(data::GENDERS.iter().map(|g| u64::from(g.1))),
            products: Weighted::new(PRODUCTS.iter().map(product_weight)),
            long_name,
            req: CertifyRequest::default(),
        }
    }

    fn recipient_seed(&self, recipient: u64) -> u64 {
        mix64(self.seed ^ mix64(recipient.wrapping_add(0x5EED)))
    }

    /// The vaccine a recipient gets for all its doses (a property of the recipient, so duplicates
    /// and follow-up doses agree with the first dose).
    pub fn recipient_product(&self, recipient: u64) -> usize {
        let mut rng = SplitMix64::new(mix64(self.recipient_seed(recipient) ^ 0x7AC));
        self.products.pick(&mut rng)
    }

    pub fn total_doses(&self, product: usize) -> u8 {
        PRODUCTS.get(product).map_or(1, |p| p.total_doses)
    }

    /// A vaccination time inside the window, at 09:00..18:00 IST on a uniformly chosen day.
    pub fn first_dose_time(&self, rng: &mut SplitMix64) -> i64 {
        let day = rng.range(
            self.window_lo.div_euclid(MS_PER_DAY),
            self.window_hi.div_euclid(MS_PER_DAY),
        );
        (day * MS_PER_DAY + clinic_time_of_day(rng)).clamp(self.window_lo, self.window_hi)
    }

    /// 4..16 weeks after `prev`, or `None` if that passes the window's end.
    pub fn next_dose_time(&self, rng: &mut SplitMix64, prev: i64) -> Option<i64> {
        let day = prev.div_euclid(MS_PER_DAY) + rng.range(28, 112);
        let t = day * MS_PER_DAY + clinic_time_of_day(rng);
        (t <= self.window_hi).then_some(t)
    }

    /// Renders a valid event (new or duplicate) to `out`.
    pub fn render_valid(
        &mut self,
        spec: &EventSpec,
        format: GenFormat,
        csv: &mut csv::Writer<LineSink>,
        out: &mut Vec<u8>,
    ) {
        self.fill(spec);
        match format {
            GenFormat::Ndjson => write_json(&self.req, out),
            GenFormat::Csv => write_csv(&self.req, None, None, csv, out),
        }
    }

    /// Renders `spec` with exactly one defect of kind `reason` and returns the expected outcome.
    pub fn render_invalid(
        &mut self,
        spec: &EventSpec,
        reason: &'static str,
        format: GenFormat,
        csv: &mut csv::Writer<LineSink>,
        out: &mut Vec<u8>,
    ) -> Expected {
        let info = self.fill(spec);
        let mut rng = SplitMix64::new(mix64(spec.record.event_seed ^ 0xBAD));
        let (mut dose_cell, mut total_cell) = (None, None);
        let mut json_patch: Option<fn(&mut Value, &mut SplitMix64)> = None;
        let req = &mut self.req;
        let rec = req.recipient.get_or_insert_with(Default::default);
        let vac = req.vaccination.get_or_insert_with(Default::default);
        match reason {
            "malformed_json" => {
                let start = out.len();
                write_json(req, out);
                malform(
                    out,
                    start,
                    req.pre_enrollment_code.as_deref().unwrap_or(""),
                    &mut rng,
                );
                return Expected::Invalid(reason);
            }
            "invalid_field_type" => match format {
                GenFormat::Ndjson => json_patch = Some(wrong_json_type),
                GenFormat::Csv if rng.percent(70) => dose_cell = Some("abc"),
                GenFormat::Csv => total_cell = Some("two"),
            },
            "missing_field" => {
                if rng.percent(50) {
                    req.pre_enrollment_code = None;
                } else {
                    vac.name = None;
                }
            }
            "missing_age_and_dob" => {
                rec.dob = None;
                rec.age = None;
            }
            "dose_out_of_range" => {
                vac.dose = Some(if rng.percent(50) {
                    0
                } else {
                    vac.total_doses.unwrap_or(1) + 1
                })
            }
            "future_date" => {
                let t =
                    self.now_ms + rng.range(30, 365) * MS_PER_DAY + clinic_time_of_day(&mut rng);
                set_vaccination_dates(vac, t);
            }
            "dob_after_vaccination" => {
                // Vaccinated at least two days before "now", born after that but not in the future.
                let now_day = self.now_ms.div_euclid(MS_PER_DAY);
                let hi = self.window_hi.min((now_day - 2) * MS_PER_DAY);
                let t = rng.range(self.window_lo.min(hi), hi);
                set_vaccination_dates(vac, t);
                let vac_day = t.div_euclid(MS_PER_DAY);
                let dob_day = vac_day + rng.range(1, (now_day - 1 - vac_day).clamp(1, 365));
                push_date(slot(&mut rec.dob), dob_day);
                rec.age = None;
            }
            "unknown_vaccine" => {
                set(&mut vac.name, rng.pick(UNKNOWN_VACCINES));
                set(&mut vac.manufacturer, "Acme Remedies");
            }
            "invalid_date" => {
                let (y, _, _) = super::util::civil_from_days(info.dob_day);
                let dob = slot(&mut rec.dob);
                let _ = match rng.below(3) {
                    0 => write!(dob, "31-02-{y}"),
                    1 => write!(dob, "{y}-02-30"),
                    _ => write!(dob, "{y}-13-45"),
                };
                write_age(slot(&mut rec.age), self.now_ms, info.dob_day);
            }
            "field_too_long" => set(&mut rec.name, &self.long_name),
            _ => {}
        }
        match format {
            GenFormat::Ndjson => write_invalid_json(req, json_patch, &mut rng, out),
            GenFormat::Csv => write_csv(req, dose_cell, total_cell, csv, out),
        }
        Expected::Invalid(reason)
    }

    /// Overwrites every field of the reused request from `spec`.
    fn fill(&mut self, spec: &EventSpec) -> RecipientInfo {
        let product = &PRODUCTS[spec.product.min(PRODUCTS.len() - 1)];
        let mut rr = SplitMix64::new(self.recipient_seed(spec.recipient));
        let mut ev = SplitMix64::new(spec.record.event_seed);
        let mut fr = SplitMix64::new(spec.facility_seed);
        let now_ms = self.now_ms;
        let (code_lane, code_mul, code_add) = (self.code_lane, self.code_mul, self.code_add);
        let req = &mut self.req;

        push_code(
            slot(&mut req.pre_enrollment_code),
            spec.recipient,
            code_lane,
            code_mul,
            code_add,
        );
        set(&mut req.program_id, "COVID-19");
        set(
            &mut req.enrollment_type,
            if ev.percent(55) {
                "PRE_ENRL"
            } else {
                "WALK_IN"
            },
        );
        req.meta = None;

        let info = fill_recipient(
            req.recipient.get_or_insert_with(Default::default),
            &mut rr,
            &self.states,
            &self.genders,
            now_ms,
        );
        let comorbidities = req.comorbidities.get_or_insert_with(Vec::new);
        comorbidities.clear();
        if rr.percent(12) {
            comorbidities.push(rr.pick(data::COMORBIDITIES).to_owned());
        }

        let vac = req.vaccination.get_or_insert_with(Default::default);
        set(&mut vac.name, &product.name);
        set(&mut vac.manufacturer, &product.manufacturer);
        let batch = slot(&mut vac.batch);
        for c in product
            .name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(2)
        {
            batch.push(c.to_ascii_uppercase());
        }
        push_num(batch, ev.below(10_000), 4);
        batch.push(char::from(b'A' + ev.below(26) as u8));
        set_vaccination_dates(vac, spec.record.date_ms);
        vac.dose = Some(i64::from(spec.dose));
        vac.total_doses = Some(i64::from(product.total_doses));

        // Nine in ten people are vaccinated in their own district.
        let (fs, fd) = if fr.percent(90) {
            (info.state, info.district)
        } else {
            let s = self.states.pick(&mut fr);
            (s, fr.below(STATES[s].districts.len() as u64) as usize)
        };
        let facility = req.facility.get_or_insert_with(Facility::default);
        fill_facility(facility, &mut fr, fs, fd);
        let vaccinator = req.vaccinator.get_or_insert_with(Vaccinator::default);
        let name = slot(&mut vaccinator.name);
        name.push_str(fr.pick(data::VACCINATOR_TITLES));
        let female = fr.percent(70);
        push_name(name, &mut fr, Script::Latin, female);
        info
    }
}

/// Size of the per-seed part of a pre-enrollment code: 9 decimal digits.
const CODE_SPACE: u64 = 1_000_000_000;

/// Writes the pre-enrollment code of recipient number `recipient`: 3 digits of seed lane
/// (`seed % 1000`), then 9 digits of an affine permutation of the recipient number.
///
/// The multiplier is coprime to 10^9, so the map is a bijection and codes never repeat within a
/// run while looking unrelated to each other. The lane keeps runs with nearby seeds (the demo
/// writes its NDJSON and CSV files with `seed` and `seed + 1`) from sharing codes, which would
/// create cross-file duplicates the summaries do not count. Beyond 10^9 recipients the plain
/// number is used (13+ digits), which still cannot collide with a 12-digit code.
fn push_code(out: &mut String, recipient: u64, lane: u64, mul: u64, add: u64) {
    push_num(out, lane, 3);
    if recipient < CODE_SPACE {
        let permuted = ((u128::from(recipient) * u128::from(mul) + u128::from(add))
            % u128::from(CODE_SPACE)) as u64;
        push_num(out, permuted, 9);
    } else {
        push_num(out, recipient, 1);
    }
}

fn clinic_time_of_day(rng: &mut SplitMix64) -> i64 {
    // 09:00..18:00 IST is 03:30..12:30 UTC.
    rng.range(12_600_000, 45_000_000)
}

#[inline]
fn slot(o: &mut Option<String>) -> &mut String {
    let s = o.get_or_insert_with(String::new);
    s.clear();
    s
}

#[inline]
fn set(o: &mut Option<String>, v: &str) {
    slot(o).push_str(v);
}

fn set_vaccination_dates(vac: &mut Vaccination, t: i64) {
    push_timestamp(slot(&mut vac.date), t);
    let day = t.div_euclid(MS_PER_DAY);
    push_date(slot(&mut vac.effective_start), day);
    push_date(slot(&mut vac.effective_until), day + 365);
}

/// DIVOC's derivation: floor((now - dob) / 365.25 days), in integers.
fn write_age(out: &mut String, now_ms: i64, dob_day: i64) {
    let age = (now_ms - dob_day * MS_PER_DAY).max(0) * 4 / (1461 * MS_PER_DAY);
    push_num(out, age as u64, 1);
}

fn fill_recipient(
    r: &mut Recipient,
    rng: &mut SplitMix64,
    states: &Weighted,
    genders: &Weighted,
    now_ms: i64,
) -> RecipientInfo {
    let state = states.pick(rng);
    let st = &STATES[state];
    let district = rng.below(st.districts.len() as u64) as usize;
    let gender = data::GENDERS[genders.pick(rng)].0;
    set(&mut r.gender, gender);
    let female = gender == "Female" || (gender == "Other" && rng.percent(50));
    let script = if rng.percent(st.urdu_percent) {
        Script::Urdu
    } else if rng.percent(st.script_percent) {
        st.script
    } else {
        Script::Latin
    };
    let name = slot(&mut r.name);
    push_name(name, rng, script, female);

    // sqrt skews towards later births: more young adults than octogenarians.
    let dob_day =
        DOB_FIRST_DAY + ((DOB_LAST_DAY - DOB_FIRST_DAY) as f64 * rng.unit().sqrt()) as i64;
    // 88% send dob and age, 7% dob only, 5% age only (DIVOC requires one of them).
    let mode = rng.below(100);
    if mode < 95 {
        push_date(slot(&mut r.dob), dob_day);
    } else {
        r.dob = None;
    }
    if !(88..95).contains(&mode) {
        write_age(slot(&mut r.age), now_ms, dob_day);
    } else {
        r.age = None;
    }
    set(&mut r.nationality, "Indian");
    let identity = slot(&mut r.identity);
    if rng.percent(88) {
        identity.push_str("did:in.gov.uidai.aadhaar:XXXXXXXX");
        push_num(identity, rng.below(10_000), 4);
    }

    let contact = r.contact.get_or_insert_with(Vec::new);
    contact.truncate(1);
    if contact.is_empty() {
        contact.push(String::new());
    }
    let tel = &mut contact[0];
    tel.clear();
    tel.push_str("tel:+91");
    push_num(tel, 6 + rng.below(4), 1);
    push_num(tel, rng.below(1_000_000_000), 9);
    if script == Script::Latin && rng.percent(5) {
        let mut email = String::from("mailto:");
        email.extend(
            name.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .take(16),
        );
        let _ = write!(email, "{}@example.com", rng.below(1000));
        contact.push(email);
    }
    fill_address(
        r.address.get_or_insert_with(Address::default),
        rng,
        state,
        district,
        true,
    );
    RecipientInfo {
        state,
        district,
        dob_day,
    }
}

fn fill_address(a: &mut Address, rng: &mut SplitMix64, state: usize, district: usize, home: bool) {
    let st = &STATES[state];
    let (district_name, pin_prefix) = st.districts[district];
    let line1 = slot(&mut a.address_line1);
    let _ = match (home, rng.below(3)) {
        (true, 0) => write!(
            line1,
            "H.No. {}-{}-{}",
            rng.range(1, 20),
            rng.range(1, 12),
            rng.range(1, 300)
        ),
        (true, 1) => write!(
            line1,
            "Flat {}, {}",
            rng.range(101, 1204),
            rng.pick(data::APARTMENTS)
        ),
        _ => {
            push_num(line1, rng.range(1, 250) as u64, 1);
            line1.push_str(", ");
            line1.push_str(rng.pick(data::STREETS));
            Ok(())
        }
    };
    set(&mut a.address_line2, rng.pick(data::LOCALITIES));
    set(&mut a.district, district_name);
    set(&mut a.state, st.name);
    set(&mut a.country, "IN");
    let pincode = slot(&mut a.pincode);
    push_num(pincode, u64::from(pin_prefix), 3);
    push_num(pincode, rng.range(1, 99) as u64, 3);
}

fn fill_facility(f: &mut Facility, rng: &mut SplitMix64, state: usize, district: usize) {
    let district_name = STATES[state].districts[district].0;
    let name = slot(&mut f.name);
    let _ = if rng.percent(15) {
        write!(
            name,
            "{}, {district_name}",
            rng.pick(data::PRIVATE_HOSPITALS)
        )
    } else if rng.percent(50) {
        write!(
            name,
            "{} {}",
            rng.pick(data::FACILITY_KINDS),
            rng.pick(data::LOCALITIES)
        )
    } else {
        write!(name, "{} {district_name}", rng.pick(data::FACILITY_KINDS))
    };
    fill_address(
        f.address.get_or_insert_with(Address::default),
        rng,
        state,
        district,
        false,
    );
}

/// Appends a name in `script`. Latin names include initials, quoted nicknames, single names and
/// apostrophe/hyphen surnames, because those are what break naive CSV and JSON handling.
fn push_name(out: &mut String, rng: &mut SplitMix64, script: Script, female: bool) {
    let t = data::names(script);
    let given = if female {
        rng.pick(t.female)
    } else {
        rng.pick(t.male)
    };
    let surname = rng.pick(t.surnames);
    if script != Script::Latin {
        out.push_str(given);
        if !rng.percent(10) {
            out.push(' ');
            out.push_str(surname);
        }
        return;
    }
    let surname = if female && surname == "Singh" {
        "Kaur"
    } else {
        surname
    };
    match rng.below(100) {
        0..4 => {
            let _ = write!(out, "{}. {given}", char::from(rng.pick(b"ABCGKMNPRSTV")));
        }
        4..7 => {
            let _ = write!(out, "{given} \"{}\" {surname}", rng.pick(data::NICKNAMES));
        }
        7..15 => out.push_str(given),
        _ => {
            let _ = write!(out, "{given} {surname}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_within_and_across_nearby_seeds() {
        let mut seen = std::collections::HashSet::new();
        for seed in [7u64, 8, 9] {
            let f = Filler::new(seed, 0);
            for r in (0..200_000).chain([CODE_SPACE - 1, CODE_SPACE, CODE_SPACE * 5]) {
                let mut code = String::new();
                push_code(&mut code, r, f.code_lane, f.code_mul, f.code_add);
                assert!(
                    code.len() >= 12 && code.bytes().all(|b| b.is_ascii_digit()),
                    "{code}"
                );
                assert!(seen.insert(code));
            }
        }
    }
}
