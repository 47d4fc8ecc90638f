//! The lifecycle transitions of one key, and reconciliation's derived updates.

use std::collections::HashMap;

use arrow::record_batch::RecordBatch;
use divoc_model::event::Action;
use divoc_pipeline::dead_letter::Reason;
use divoc_pipeline::EngineError;

use super::reconcile::earlier_doses;
use super::state::{CertState, Space, Status, Undo};
use super::{dedupe_key, origin_hash, state_err, stored_bytes, Dedupe, COUNTER_SPAN};

/// One row's view of what it asks for.
pub(super) struct Request<'a> {
    pub(super) key: [u8; 16],
    pub(super) action: Action,
    pub(super) origin: u64,
    pub(super) until_day: Option<i32>,
    /// The event's ingest day: a suspension ending before it has lifted itself.
    pub(super) day: i32,
    pub(super) program: &'a str,
    /// A re-issue: the certificate it was selected as (it must still be the current one).
    pub(super) reissue_of: Option<&'a str>,
}

/// The request row a reconciliation starts from.
pub(super) struct ReconcileRow<'a> {
    pub(super) tenant: &'a str,
    pub(super) program: &'a str,
    pub(super) pre: &'a str,
    pub(super) dose: i64,
    pub(super) source_id: &'a str,
    pub(super) offset: u64,
    pub(super) ingest_ms: i64,
    pub(super) day: i32,
    pub(super) meta: &'a str,
}

/// A transition's outcome: the key's new state, the row's certificate id counter and, for an
/// update, the replaced certificate's counter.
type Transition = (CertState, u64, Option<u64>);

/// Why a row is refused.
fn refusal(code: &'static str, detail: &str, existing: Option<String>) -> Reason {
    let mut r = Reason::new(code, detail);
    r.existing_certificate_id = existing;
    r
}

impl Dedupe {
    /// Applies one request to the key's state; `Ok((new state, certificate id, previous id))`
    /// or the refusal.
    pub(super) fn transition(
        &mut self,
        req: &Request<'_>,
        before: Option<CertState>,
    ) -> Result<Result<Transition, Reason>, EngineError> {
        let existing = |s: &CertState| Some(self.format_id(s.counter));
        let before = before.map(|s| match s.status {
            Status::Suspended { until_day } if until_day < req.day => CertState {
                status: Status::Active,
                ..s
            },
            _ => s,
        });
        let live = before.filter(|s| s.status != Status::Revoked);
        Ok(match (req.action, live) {
            (Action::Certify, Some(s)) if s.origin == req.origin => {
                // The same event again (a replay over a store without undo entries): same id.
                Ok((s, s.counter, None))
            }
            (Action::Certify, Some(s)) => Err(refusal(
                "duplicate",
                "a certificate was already issued for this tenant, programId, preEnrollmentCode and dose",
                existing(&s),
            )),
            (Action::Certify, None) => {
                let counter = self.next_id()?;
                let corrections = before.map_or(0, |s| s.corrections);
                Ok((
                    CertState {
                        counter,
                        origin: req.origin,
                        status: Status::Active,
                        corrections,
                    },
                    counter,
                    None,
                ))
            }
            (Action::Update, None) => Err(refusal(
                "unknown_certificate",
                "no active certificate for this preEnrollmentCode and dose to update; certify it first",
                None,
            )),
            (Action::Update, Some(s)) if matches!(s.status, Status::Suspended { .. }) => {
                Err(refusal(
                    "suspended",
                    "the certificate is suspended; lift the suspension before correcting it",
                    existing(&s),
                ))
            }
            (Action::Update, Some(s)) if s.corrections >= self.limits.of(req.program) => {
                Err(refusal(
                    "correction_limit",
                    &format!(
                        "this dose was corrected {} times, the limit; revoke and certify it again",
                        s.corrections
                    ),
                    existing(&s),
                ))
            }
            (Action::Update, Some(s)) => {
                let counter = self.next_id()?;
                Ok((
                    CertState {
                        counter,
                        origin: req.origin,
                        status: Status::Active,
                        corrections: s.corrections + 1,
                    },
                    counter,
                    Some(s.counter),
                ))
            }
            (Action::Reissue, None) => Err(refusal(
                "unknown_certificate",
                "no active certificate for this preEnrollmentCode and dose to re-issue (revoked since the selection?)",
                None,
            )),
            (Action::Reissue, Some(s)) if matches!(s.status, Status::Suspended { .. }) => {
                Err(refusal(
                    "suspended",
                    "the certificate is suspended; lift the suspension before re-issuing it",
                    existing(&s),
                ))
            }
            (Action::Reissue, Some(s))
                if req
                    .reissue_of
                    .is_some_and(|id| id != self.format_id(s.counter)) =>
            {
                Err(refusal(
                    "superseded",
                    "the selected certificate is no longer this dose's current one (corrected or re-issued since the selection); select again",
                    existing(&s),
                ))
            }
            (Action::Reissue, Some(s)) => {
                // A re-issue is not a correction: the correction count stays.
                let counter = self.next_id()?;
                Ok((
                    CertState {
                        counter,
                        origin: req.origin,
                        status: Status::Active,
                        ..s
                    },
                    counter,
                    Some(s.counter),
                ))
            }
            (Action::Revoke | Action::Suspend | Action::LiftSuspension, None) => Err(refusal(
                "unknown_certificate",
                "no certificate for this preEnrollmentCode and dose (never issued or revoked)",
                None,
            )),
            (Action::Revoke, Some(s)) => Ok((
                CertState {
                    status: Status::Revoked,
                    origin: req.origin,
                    ..s
                },
                s.counter,
                None,
            )),
            (Action::Suspend, Some(s)) => Ok((
                CertState {
                    status: Status::Suspended {
                        until_day: req.until_day.unwrap_or(i32::MAX),
                    },
                    origin: req.origin,
                    ..s
                },
                s.counter,
                None,
            )),
            (Action::LiftSuspension, Some(s)) => match s.status {
                Status::Suspended { .. } => Ok((
                    CertState {
                        status: Status::Active,
                        origin: req.origin,
                        ..s
                    },
                    s.counter,
                    None,
                )),
                _ => Err(refusal(
                    "not_suspended",
                    "the certificate is not suspended",
                    existing(&s),
                )),
            },
        })
    }

    /// Stores the event of a dose's new certificate (reconciliation), with its undo entry.
    pub(super) fn store_details(
        &mut self,
        wb: &mut fjall::OwnedWriteBatch,
        changed: &mut HashMap<[u8; 16], Vec<u8>>,
        key: [u8; 16],
        row: &[u8],
    ) -> Result<(), EngineError> {
        let Some((ks, _)) = &self.details else {
            return Ok(());
        };
        let previous = match changed.get(&key) {
            Some(v) => Some(v.clone()),
            None => ks.get(key).map_err(state_err)?.map(|v| v.to_vec()),
        };
        self.undo.record(Undo::Key {
            space: Space::Details,
            key,
            previous,
        });
        wb.insert(ks, key, row.to_vec());
        changed.insert(key, row.to_vec());
        Ok(())
    }

    /// The `update` events reconciling the earlier doses a certify request lists with the stored
    /// ones: `(event row, certificate id, replaced id)` for each dose that differs.
    pub(super) fn reconcile(
        &mut self,
        wb: &mut fjall::OwnedWriteBatch,
        states: &mut HashMap<[u8; 16], CertState>,
        details: &mut HashMap<[u8; 16], Vec<u8>>,
        schema: &arrow::datatypes::SchemaRef,
        row: &ReconcileRow<'_>,
    ) -> Result<Vec<(RecordBatch, String, Option<String>)>, EngineError> {
        let mut out = Vec::new();
        for (earlier, text) in earlier_doses(row.meta) {
            if earlier.dose == row.dose {
                continue;
            }
            let key = dedupe_key(row.tenant, row.program, row.pre, earlier.dose);
            let state = match states.get(&key) {
                Some(s) => Some(*s),
                None => self
                    .keys
                    .get(key)
                    .map_err(state_err)?
                    .and_then(|v| CertState::decode(&v)),
            };
            let Some(state) = state else { continue };
            // The corrected event and its stored form, if the dose differs.
            let (event, bytes) = {
                let Some((ks, codec)) = &self.details else {
                    return Ok(out);
                };
                let stored = match details.get(&key) {
                    Some(v) => v.clone(),
                    None => match ks.get(key).map_err(state_err)? {
                        Some(v) => v.to_vec(),
                        None => continue,
                    },
                };
                if !codec.differs(&stored, &earlier)? {
                    continue;
                }
                let Some(event) = codec.corrected(
                    &stored,
                    &earlier,
                    &text,
                    schema,
                    (row.source_id, row.offset, row.ingest_ms),
                )?
                else {
                    continue;
                };
                let bytes = codec.rows(&event)?.row(0).as_ref().to_vec();
                (event, bytes)
            };
            let source_id = format!("{}#reconcile-dose-{}", row.source_id, earlier.dose);
            let req = Request {
                key,
                action: Action::Update,
                origin: origin_hash(&source_id, row.offset),
                until_day: None,
                day: row.day,
                program: row.program,
                reissue_of: None,
            };
            // A dose that cannot be corrected (revoked, suspended, at the limit) stays as it is.
            let Ok((after, id, prev)) = self.transition(&req, Some(state))? else {
                continue;
            };
            self.undo.record(Undo::Key {
                space: Space::Keys,
                key,
                previous: stored_bytes(Some(state)),
            });
            wb.insert(&self.keys, key, after.encode());
            states.insert(key, after);
            self.store_details(wb, details, key, &bytes)?;
            out.push((event, self.format_id(id), prev.map(|p| self.format_id(p))));
        }
        Ok(out)
    }

    pub(super) fn next_id(&mut self) -> Result<u64, EngineError> {
        let counter = self.next_counter;
        if counter >= COUNTER_SPAN {
            return Err(EngineError::State(
                "certificate id counter exhausted for this namespace; configure a new id_namespace"
                    .into(),
            ));
        }
        self.next_counter += 1;
        Ok(counter)
    }
}
