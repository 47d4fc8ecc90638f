//! Turns a filled `CertifyRequest` into one NDJSON line or CSV row, and applies the defects that
//! only exist at the byte level (malformed JSON, wrong JSON types).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io;

use divoc_model::event::{Address, CertifyRequest, Recipient, Vaccination};
use serde_json::{json, Value};

use super::util::SplitMix64;

/// Byte sink for the reused CSV writer; `csv::Writer` only lends `&W`, hence the `RefCell`.
#[derive(Debug, Default)]
pub(crate) struct LineSink(RefCell<Vec<u8>>);

impl io::Write for LineSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) fn write_json(req: &CertifyRequest, out: &mut Vec<u8>) {
    // Serialising plain strings, integers and options into a Vec cannot fail.
    serde_json::to_writer(out, req).expect("CertifyRequest serialises to a Vec");
}

/// Serialises through a `Value` so defects can drop keys (absent, not null) or change types.
pub(crate) fn write_invalid_json(
    req: &CertifyRequest,
    patch: Option<fn(&mut Value, &mut SplitMix64)>,
    rng: &mut SplitMix64,
    out: &mut Vec<u8>,
) {
    let mut v = serde_json::to_value(req).expect("CertifyRequest converts to a Value");
    for (parent, key) in [
        (None, "preEnrollmentCode"),
        (Some("vaccination"), "name"),
        (Some("recipient"), "dob"),
        (Some("recipient"), "age"),
    ] {
        let obj = match parent {
            None => v.as_object_mut(),
            Some(p) => v.get_mut(p).and_then(Value::as_object_mut),
        };
        if let Some(obj) = obj {
            if obj.get(key).is_some_and(Value::is_null) {
                obj.remove(key);
            }
        }
    }
    if let Some(patch) = patch {
        patch(&mut v, rng);
    }
    serde_json::to_writer(out, &v).expect("Value serialises to a Vec");
}

/// One wrong JSON type: dose as a word, totalDoses as a word, or contact as a bare string.
pub(crate) fn wrong_json_type(v: &mut Value, rng: &mut SplitMix64) {
    match rng.below(4) {
        0 | 1 => v["vaccination"]["dose"] = json!("one"),
        2 => v["vaccination"]["totalDoses"] = json!("two"),
        _ => {
            let first = v["recipient"]["contact"][0].clone();
            v["recipient"]["contact"] = first;
        }
    }
}

/// Turns the JSON object at `out[start..]` into a line that is not JSON: usually cut short (a
/// truncated upload), sometimes a form-encoded body sent to the JSON endpoint.
pub(crate) fn malform(out: &mut Vec<u8>, start: usize, code: &str, rng: &mut SplitMix64) {
    let len = out.len() - start;
    if len > 2 && rng.percent(75) {
        let mut cut = start + 1 + rng.below(len as u64 - 2) as usize;
        while cut > start + 1 && (out[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        out.truncate(cut);
    } else {
        out.truncate(start);
        out.extend_from_slice(b"preEnrollmentCode=");
        out.extend_from_slice(code.as_bytes());
        out.extend_from_slice(b"&vaccination.dose=1&vaccination.name=COVISHIELD");
    }
}

pub(crate) fn write_csv(
    req: &CertifyRequest,
    dose_cell: Option<&str>,
    total_cell: Option<&str>,
    csv: &mut csv::Writer<LineSink>,
    out: &mut Vec<u8>,
) {
    fn s(o: &Option<String>) -> &str {
        o.as_deref().unwrap_or("")
    }
    let empty_rec = Recipient::default();
    let empty_addr = Address::default();
    let empty_vac = Vaccination::default();
    let rec = req.recipient.as_ref().unwrap_or(&empty_rec);
    let ra = rec.address.as_ref().unwrap_or(&empty_addr);
    let vac = req.vaccination.as_ref().unwrap_or(&empty_vac);
    let fac = req.facility.as_ref();
    let fa = fac.and_then(|f| f.address.as_ref()).unwrap_or(&empty_addr);
    let mobile = rec
        .contact
        .as_ref()
        .and_then(|c| c.first())
        .map_or("", |c| c.strip_prefix("tel:").unwrap_or(c));
    let (mut dose_buf, mut total_buf) = (String::new(), String::new());
    let dose = match (dose_cell, vac.dose) {
        (Some(cell), _) => cell,
        (None, Some(d)) => {
            let _ = write!(dose_buf, "{d}");
            &dose_buf
        }
        (None, None) => "",
    };
    let total = match (total_cell, vac.total_doses) {
        (Some(cell), _) => cell,
        (None, Some(d)) => {
            let _ = write!(total_buf, "{d}");
            &total_buf
        }
        (None, None) => "",
    };
    let fields: [&str; 28] = [
        s(&req.pre_enrollment_code),
        s(&rec.name),
        mobile,
        s(&rec.dob),
        s(&rec.age),
        s(&rec.gender),
        s(&rec.nationality),
        s(&rec.identity),
        s(&ra.address_line1),
        s(&ra.address_line2),
        s(&ra.district),
        s(&ra.state),
        s(&ra.pincode),
        s(&vac.batch),
        s(&vac.date),
        dose,
        total,
        s(&vac.effective_start),
        s(&vac.effective_until),
        s(&vac.manufacturer),
        s(&vac.name),
        req.vaccinator.as_ref().map_or("", |v| s(&v.name)),
        fac.map_or("", |f| s(&f.name)),
        s(&fa.address_line1),
        s(&fa.address_line2),
        s(&fa.district),
        s(&fa.state),
        s(&fa.pincode),
    ];
    // Writing into the in-memory sink cannot fail.
    let _ = csv.write_record(fields);
    let _ = csv.flush();
    let mut sink = csv.get_ref().0.borrow_mut();
    if sink.last() == Some(&b'\n') {
        sink.pop();
    }
    out.extend_from_slice(&sink);
    sink.clear();
}
