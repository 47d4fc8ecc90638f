//! What the ingest side may ask of the certificate state a `dedupe` node keeps, so the lifecycle
//! endpoints answer 404 / 409 / 412 at once (as DIVOC did) instead of only through dead letters.
//!
//! The pipeline stays the authority: events in flight are not in the state yet, so a request the
//! endpoint accepted can still be refused by `dedupe` (dead letter with the reason).

use std::sync::{Arc, OnceLock};

/// A certificate's status as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseStatus {
    Active,
    Revoked,
    /// Until and including this day (days since 1970-01-01; `i32::MAX`: until lifted).
    Suspended {
        until_day: i32,
    },
}

impl DoseStatus {
    /// The status on `day`: a suspension whose last day is before it has lifted itself.
    pub fn on(self, day: i32) -> DoseStatus {
        match self {
            DoseStatus::Suspended { until_day } if until_day < day => DoseStatus::Active,
            other => other,
        }
    }
}

/// The stored state of one dose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseState {
    pub dose: i64,
    pub certificate_id: String,
    pub status: DoseStatus,
    pub corrections: u16,
    /// The dedupe node's `correction_limit`.
    pub correction_limit: u16,
}

/// Read access to the certificate state.
pub trait CertificateStates: Send + Sync {
    /// Every dose of (tenant, programId, preEnrollmentCode) with a state, in dose order.
    fn doses(&self, tenant: &str, program: &str, pre: &str) -> Result<Vec<DoseState>, String>;
}

/// The slot a `dedupe` node fills when it is built, read by the HTTP source at request time (a
/// [`divoc_pipeline::resources::Resources`] entry; empty when the pipeline has no dedupe).
#[derive(Clone, Default)]
pub struct SharedCertificateStates(Arc<OnceLock<Arc<dyn CertificateStates>>>);

impl SharedCertificateStates {
    /// Publishes the state; a second dedupe node in the same pipeline keeps the first one's.
    pub fn set(&self, states: Arc<dyn CertificateStates>) {
        let _ = self.0.set(states);
    }

    pub fn get(&self) -> Option<&Arc<dyn CertificateStates>> {
        self.0.get()
    }
}
