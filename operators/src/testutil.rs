//! Builds event batches from JSON lines for operator tests.

use arrow::record_batch::RecordBatch;
use divoc_model::event::{parse_request_json, EventKind};
use divoc_model::schema::{EventBatchBuilder, EventOrigin};

/// 2022-06-01T00:00:00Z, the ingest time of test events.
pub const INGEST_MS: i64 = 1_654_041_600_000;

pub fn batch_from_json(lines: &[&str]) -> RecordBatch {
    let kinds: Vec<(EventKind, &str)> = lines.iter().map(|l| (EventKind::CertifyV1, *l)).collect();
    batch_of_kinds(&kinds, 0)
}

/// Events of the given kinds, with source offsets from `first_offset`.
pub fn batch_of_kinds(events: &[(EventKind, &str)], first_offset: u64) -> RecordBatch {
    let mut b = EventBatchBuilder::with_capacity(events.len());
    for (i, (kind, l)) in events.iter().enumerate() {
        let req = parse_request_json(l).expect("test JSON parses");
        b.append(
            &req,
            &EventOrigin {
                tenant: "t1",
                kind: *kind,
                ingest_time_ms: INGEST_MS,
                source_id: "test",
                source_offset: first_offset + i as u64,
                raw: l,
            },
        )
        .expect("test dates parse");
    }
    b.finish()
}

/// A valid event; `patch` edits its JSON before it is serialized.
pub fn event(pre: &str, dose: i64, patch: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = serde_json::json!({
        "preEnrollmentCode": pre,
        "programId": "C19",
        "recipient": {"name": "Asha Devi", "gender": "Female", "dob": "1980-04-01", "age": "42",
                      "identity": "did:in.gov.uidai.aadhaar:XXXXXXXX1234",
                      "address": {"addressLine1": "1 MG Road", "district": "Pune", "state": "Maharashtra", "pincode": "411001"}},
        "vaccination": {"name": "Covishield", "batch": "B1", "manufacturer": "Serum Institute of India",
                        "date": "2022-05-01T10:00:00.000Z", "dose": dose, "totalDoses": 2},
        "vaccinator": {"name": "Dr. K"},
        "facility": {"name": "PHC Pune", "address": {"district": "Pune", "state": "Maharashtra"}}
    });
    patch(&mut v);
    v.to_string()
}
