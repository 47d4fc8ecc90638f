//! DIVOC's certificate lifecycle endpoints in front of the same write-ahead log as certify:
//!
//! | method and path | event |
//! |---|---|
//! | `PUT /divoc/api/v1/certificate` (certify body: an array) | `update` per element |
//! | `DELETE /divoc/api/v1/certificates/{preEnrollmentCode}?doses=1&doses=2` or `?allDoses=true` | `revoke` per dose |
//! | `POST /divoc/api/v1/certificates/{preEnrollmentCode}/suspension` `{"doses":[..] or "allDoses":true, "until":"YYYY-MM-DD"}` | `suspend` per dose |
//! | `DELETE /divoc/api/v1/certificates/{preEnrollmentCode}/suspension?doses=..` or `?allDoses=true` | `lift_suspension` per dose |
//!
//! `programId` (query parameter or body field) selects the program the certificates were issued
//! under (default: none, as in a certify request without one). When the pipeline's `dedupe` state
//! is in this process the endpoints answer from it at once: 404 for a dose with no certificate
//! (or a revoked one), 409 for a suspended one that cannot change, 412 past the correction limit,
//! 400 when revoked doses are not contiguous or leave out the highest; `allDoses` needs that state.
//! The pipeline decides again when it applies the event (requests in flight are not in the state
//! yet), and refuses with a dead letter if the answer changed.

use std::ops::Range;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use divoc_model::event::{parse_request_json, EventKind};
use divoc_model::lifecycle::{DoseState, DoseStatus};
use serde::{Deserialize, Serialize};

use super::server::{read_certify_body, read_limited, submit, AppState, Caller, Reject};
use super::wal::{PendingBody, PendingRow};

/// Which doses a revoke, suspend or lift asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Doses {
    All,
    Listed(Vec<i64>),
}

/// The body of a status-change event in the log: what `dedupe` needs, typed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusChange<'a> {
    pre_enrollment_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    program_id: Option<&'a str>,
    vaccination: DoseOnly,
    #[serde(skip_serializing_if = "Option::is_none")]
    suspend_until: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct DoseOnly {
    dose: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuspendBody {
    #[serde(default)]
    doses: Vec<i64>,
    #[serde(default)]
    all_doses: bool,
    /// Last day of the suspension; none: until lifted.
    until: Option<String>,
    program_id: Option<String>,
}

/// Today, in days since 1970-01-01 (UTC), for suspensions that ended by themselves.
fn today() -> i32 {
    chrono::Utc::now().timestamp().div_euclid(86_400) as i32
}

/// `doses=1&doses=2`, `allDoses=true`, `programId=...` from a query string.
fn parse_query(query: Option<&str>) -> Result<(Doses, Option<String>), Reject> {
    let mut listed = Vec::new();
    let mut all = false;
    let mut program = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "doses" => {
                for part in v.split(',') {
                    listed.push(part.trim().parse::<i64>().map_err(|_| {
                        Reject::bad(
                            "INVALID_DOSES",
                            format!("doses: {part:?} is not a dose number"),
                        )
                    })?);
                }
            }
            "allDoses" => all = v == "true",
            "programId" => program = Some(v.into_owned()),
            other => {
                return Err(Reject::bad(
                    "INVALID_QUERY",
                    format!("unknown query parameter {other:?}; use doses, allDoses or programId"),
                ))
            }
        }
    }
    Ok((doses(listed, all)?, program))
}

fn doses(listed: Vec<i64>, all: bool) -> Result<Doses, Reject> {
    match (all, listed.is_empty()) {
        (true, true) => Ok(Doses::All),
        (false, false) => Ok(Doses::Listed(listed)),
        (true, false) => Err(Reject::bad(
            "INVALID_DOSES",
            "give either doses or allDoses=true, not both",
        )),
        (false, true) => Err(Reject::bad(
            "INVALID_DOSES",
            "say which doses: doses=1&doses=2 or allDoses=true",
        )),
    }
}

/// One status change asked for: whose doses, which, and (suspensions) until when.
struct Change {
    pre: String,
    program: Option<String>,
    wanted: Doses,
    until: Option<String>,
}

/// What a kind of status change may apply to.
struct Rule {
    kind: EventKind,
    /// Whether a stored (not revoked) dose may take the change; `allDoses` takes those that may.
    eligible: fn(&DoseState) -> Result<(), Reject>,
    /// DIVOC's revocation rule: contiguous doses including the highest with a certificate.
    contiguous: bool,
}

fn any_dose(_: &DoseState) -> Result<(), Reject> {
    Ok(())
}

fn suspended_only(d: &DoseState) -> Result<(), Reject> {
    match d.status.on(today()) {
        DoseStatus::Suspended { .. } => Ok(()),
        _ => Err(Reject::new(
            StatusCode::CONFLICT,
            "NOT_SUSPENDED",
            format!("dose {} is not suspended", d.dose),
        )),
    }
}

fn sorted(doses: &[i64]) -> Vec<i64> {
    let mut d = doses.to_vec();
    d.sort_unstable();
    d.dedup();
    d
}

fn consecutive(doses: &[i64]) -> bool {
    doses.windows(2).all(|w| w[1] == w[0] + 1)
}

/// The doses to change, checked against the stored state when this process has it.
fn select(s: &AppState, tenant: &str, change: &Change, rule: &Rule) -> Result<Vec<i64>, Reject> {
    let Some(states) = s.certificate_states.get() else {
        return match &change.wanted {
            Doses::All => Err(Reject::bad(
                "STATE_UNAVAILABLE",
                "allDoses needs the certificate state, which this process does not hold; list the doses",
            )),
            Doses::Listed(d) => {
                let d = sorted(d);
                if rule.contiguous && !consecutive(&d) {
                    return Err(Reject::bad("INVALID_DOSES", "doses must be contiguous"));
                }
                Ok(d)
            }
        };
    };
    let program = change.program.as_deref().unwrap_or("");
    let stored = states
        .doses(tenant, program, &change.pre)
        .map_err(|e| Reject::new(StatusCode::SERVICE_UNAVAILABLE, "STATE_UNAVAILABLE", e))?;
    let live: Vec<&DoseState> = stored
        .iter()
        .filter(|d| d.status != DoseStatus::Revoked)
        .collect();
    let chosen: Vec<i64> = match &change.wanted {
        Doses::All => live
            .iter()
            .filter(|d| (rule.eligible)(d).is_ok())
            .map(|d| d.dose)
            .collect(),
        Doses::Listed(d) => sorted(d),
    };
    if chosen.is_empty() {
        return Err(not_found(None));
    }
    for dose in &chosen {
        let state = live
            .iter()
            .find(|d| d.dose == *dose)
            .ok_or_else(|| not_found(Some(*dose)))?;
        (rule.eligible)(state)?;
    }
    if rule.contiguous {
        let highest = live.iter().map(|d| d.dose).max().unwrap_or(0);
        if !consecutive(&chosen) || chosen.last() != Some(&highest) {
            return Err(Reject::bad(
                "INVALID_DOSES",
                format!(
                    "doses must be contiguous and include the highest dose with a certificate ({highest})"
                ),
            ));
        }
    }
    Ok(chosen)
}

/// Checks `change` against `rule` and logs one event per chosen dose.
async fn apply(
    s: &AppState,
    caller: &Caller,
    rule: Rule,
    change: Result<Change, Reject>,
) -> Response {
    let body = change.and_then(|c| {
        check_pre(&c.pre)?;
        let chosen = select(s, &caller.tenant, &c, &rule)?;
        status_changes(&c.pre, c.program.as_deref(), &chosen, c.until.as_deref())
    });
    match body {
        Ok(body) => submit(s, &caller.tenant, rule.kind, body).await,
        Err(r) => r.into_response(),
    }
}

/// `doses` / `allDoses` / `programId` from the query string.
fn change_from_query(pre: String, req: &Request) -> Result<Change, Reject> {
    let (wanted, program) = parse_query(req.uri().query())?;
    Ok(Change {
        pre,
        program,
        wanted,
        until: None,
    })
}

/// The pre-enrollment code is never echoed in an answer: it identifies a person.
fn not_found(dose: Option<i64>) -> Reject {
    Reject::new(
        StatusCode::NOT_FOUND,
        "CERTIFICATE_NOT_FOUND",
        match dose {
            Some(d) => format!("no certificate to change for dose {d} of this preEnrollmentCode"),
            None => "no certificate to change for this preEnrollmentCode".to_owned(),
        },
    )
}

/// One log record per dose, as a JSON array the writer stores element by element.
fn status_changes(
    pre: &str,
    program: Option<&str>,
    doses: &[i64],
    until: Option<&str>,
) -> Result<PendingBody, Reject> {
    let mut text = String::from("[");
    let mut rows = Vec::with_capacity(doses.len());
    for (i, dose) in doses.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let element = serde_json::to_string(&StatusChange {
            pre_enrollment_code: pre,
            program_id: program,
            vaccination: DoseOnly { dose: *dose },
            suspend_until: until,
        })
        .map_err(|e| Reject::bad("INVALID_BODY", e.to_string()))?;
        let start = text.len();
        text.push_str(&element);
        rows.push(PendingRow {
            body: Range {
                start,
                end: text.len(),
            },
            issue: None,
        });
    }
    text.push(']');
    Ok(PendingBody {
        text,
        header: 0..0,
        rows,
    })
}

fn check_pre(pre: &str) -> Result<(), Reject> {
    if pre.trim().is_empty() || pre.len() > 512 || pre.chars().any(char::is_control) {
        return Err(Reject::bad(
            "INVALID_PRE_ENROLLMENT_CODE",
            "the preEnrollmentCode in the path must be 1..512 bytes without control characters",
        ));
    }
    Ok(())
}

/// `PUT /divoc/api/v1/certificate`: corrections, one `update` per element.
pub(super) async fn update(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Response {
    if !caller.can_write() {
        return Reject::forbidden().into_response();
    }
    let body = match read_certify_body(&s, req).await {
        Ok(body) => body,
        Err(r) => return r.into_response(),
    };
    if let Some(states) = s.certificate_states.get() {
        for row in &body.rows {
            let Some(text) = body.text.get(row.body.clone()) else {
                continue;
            };
            let Ok(req) = parse_request_json(text) else {
                continue;
            };
            let (Some(pre), Some(dose)) = (
                req.pre_enrollment_code.as_deref(),
                req.vaccination.as_ref().and_then(|v| v.dose),
            ) else {
                return Reject::bad(
                    "MISSING_FIELDS",
                    "an update needs preEnrollmentCode and vaccination.dose",
                )
                .into_response();
            };
            let program = req.program_id.as_deref().unwrap_or("");
            let stored = match states.doses(&caller.tenant, program, pre) {
                Ok(s) => s,
                Err(e) => {
                    return Reject::new(StatusCode::SERVICE_UNAVAILABLE, "STATE_UNAVAILABLE", e)
                        .into_response()
                }
            };
            let Some(state) = stored
                .iter()
                .find(|d| d.dose == dose && d.status != DoseStatus::Revoked)
            else {
                return not_found(Some(dose)).into_response();
            };
            if let DoseStatus::Suspended { .. } = state.status.on(today()) {
                return Reject::new(
                    StatusCode::CONFLICT,
                    "CERTIFICATE_SUSPENDED",
                    format!("dose {dose} is suspended; lift the suspension before correcting it"),
                )
                .into_response();
            }
            if state.corrections >= state.correction_limit {
                return Reject::new(
                    StatusCode::PRECONDITION_FAILED,
                    "CORRECTION_LIMIT",
                    format!(
                        "dose {dose} was corrected {} times, the limit",
                        state.corrections
                    ),
                )
                .into_response();
            }
        }
    }
    submit(&s, &caller.tenant, EventKind::Update, body).await
}

/// `DELETE /divoc/api/v1/certificates/{preEnrollmentCode}`: revocation.
pub(super) async fn revoke(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(pre): Path<String>,
    req: Request,
) -> Response {
    if !caller.can_write() {
        return Reject::forbidden().into_response();
    }
    let rule = Rule {
        kind: EventKind::Revoke,
        eligible: any_dose,
        contiguous: true,
    };
    apply(&s, &caller, rule, change_from_query(pre, &req)).await
}

/// `POST /divoc/api/v1/certificates/{preEnrollmentCode}/suspension`.
pub(super) async fn suspend(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(pre): Path<String>,
    req: Request,
) -> Response {
    if !caller.can_write() {
        return Reject::forbidden().into_response();
    }
    let (parts, body) = req.into_parts();
    let bytes = match read_limited(&parts.headers, body, 64 * 1024).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let change = (|| {
        let req: SuspendBody = serde_json::from_slice(&bytes).map_err(|e| {
            Reject::bad(
                "INVALID_BODY",
                format!("{e}; send {{\"doses\": [1], \"until\": \"YYYY-MM-DD\"}} or {{\"allDoses\": true}}"),
            )
        })?;
        if let Some(u) = &req.until {
            chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d")
                .map_err(|_| Reject::bad("INVALID_DATE", "until must be a date, YYYY-MM-DD"))?;
        }
        Ok(Change {
            pre,
            program: req.program_id,
            wanted: doses(req.doses, req.all_doses)?,
            until: req.until,
        })
    })();
    let rule = Rule {
        kind: EventKind::Suspend,
        eligible: any_dose,
        contiguous: false,
    };
    apply(&s, &caller, rule, change).await
}

/// `DELETE /divoc/api/v1/certificates/{preEnrollmentCode}/suspension`: lifts it (`allDoses`: every
/// suspended dose).
pub(super) async fn lift(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(pre): Path<String>,
    req: Request,
) -> Response {
    if !caller.can_write() {
        return Reject::forbidden().into_response();
    }
    let rule = Rule {
        kind: EventKind::LiftSuspension,
        eligible: suspended_only,
        contiguous: false,
    };
    apply(&s, &caller, rule, change_from_query(pre, &req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_doses_or_all_of_them() {
        assert_eq!(
            parse_query(Some("doses=1&doses=2&programId=C19")).unwrap(),
            (Doses::Listed(vec![1, 2]), Some("C19".into()))
        );
        assert_eq!(
            parse_query(Some("doses=2,3")).unwrap().0,
            Doses::Listed(vec![2, 3])
        );
        assert_eq!(parse_query(Some("allDoses=true")).unwrap().0, Doses::All);
        for bad in [
            None,
            Some("doses=x"),
            Some("doses=1&allDoses=true"),
            Some("dose=1"),
        ] {
            assert!(parse_query(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_change_bodies_are_one_json_object_per_dose() {
        let body = status_changes("P\"1", Some("C19"), &[1, 2], Some("2030-01-01")).unwrap();
        assert_eq!(body.rows.len(), 2);
        let first: serde_json::Value =
            serde_json::from_str(&body.text[body.rows[0].body.clone()]).unwrap();
        assert_eq!(
            first,
            serde_json::json!({"preEnrollmentCode": "P\"1", "programId": "C19",
                "vaccination": {"dose": 1}, "suspendUntil": "2030-01-01"})
        );
        let all: Vec<serde_json::Value> = serde_json::from_str(&body.text).unwrap();
        assert_eq!(all.len(), 2);
        // The source reads them back as requests.
        let req = parse_request_json(&body.text[body.rows[1].body.clone()]).unwrap();
        assert_eq!(req.vaccination.and_then(|v| v.dose), Some(2));
        assert_eq!(req.suspend_until.as_deref(), Some("2030-01-01"));
    }
}
