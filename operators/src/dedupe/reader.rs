//! Read access to a dedupe node's state for the ingest side (the lifecycle endpoints).

use divoc_model::lifecycle::{CertificateStates, DoseState, DoseStatus};
use fjall::Keyspace;

use super::state::{CertState, Status};
use super::{dedupe_key, Limits};

pub(super) fn format_id(namespace: u64, counter: u64) -> String {
    format!("{namespace}{counter:012}")
}

/// Doses looked up per person: far above any vaccination schedule.
const MAX_LOOKUP_DOSE: i64 = 16;

/// Lookups into a dedupe node's state, published for the HTTP lifecycle endpoints.
pub struct StateReader {
    pub(super) keys: Keyspace,
    pub(super) namespace: u64,
    pub(super) limits: Limits,
}

impl CertificateStates for StateReader {
    fn doses(&self, tenant: &str, program: &str, pre: &str) -> Result<Vec<DoseState>, String> {
        let mut out = Vec::new();
        for dose in 1..=MAX_LOOKUP_DOSE {
            let Some(v) = self
                .keys
                .get(dedupe_key(tenant, program, pre, dose))
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let s = CertState::decode(&v).ok_or("corrupt certificate state")?;
            out.push(DoseState {
                dose,
                certificate_id: format_id(self.namespace, s.counter),
                status: match s.status {
                    Status::Active => DoseStatus::Active,
                    Status::Revoked => DoseStatus::Revoked,
                    Status::Suspended { until_day } => DoseStatus::Suspended { until_day },
                },
                corrections: s.corrections,
                correction_limit: self.limits.of(program),
            });
        }
        Ok(out)
    }
}
