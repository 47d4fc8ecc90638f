//! Typed model of DIVOC's native vaccination credential (v1 and the DDCC-flavoured v2).
//!
//! Field names and nesting follow DIVOC's credential template exactly, because the JSON-LD
//! contexts only define these terms: any other member is an undefined term and makes
//! canonicalization (and so signing) fail. Members DIVOC's template always emits are still
//! optional here because real DIVOC data omits some (its own signed test vector has no
//! `certificateId` and empty-string doses); absent members are simply not serialized.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::loader::{CREDENTIALS_V1_URL, DEFAULT_VACCINATION_V1_URL, DEFAULT_VACCINATION_V2_URL};

/// `type` of every vaccination credential.
pub const CREDENTIAL_TYPES: [&str; 2] = ["VerifiableCredential", "ProofOfVaccinationCredential"];

/// Which DIVOC context (and so which optional fields) a credential uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialVersion {
    /// `/v1/certify`: context vaccination v1.
    V1,
    /// `/v3/certify`: context vaccination v2, adds `dob`, `icd11Code`, `prophylaxis`.
    V2,
}

/// The URLs a deployment serves its vaccination contexts under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaccinationNamespace {
    /// URL of the v1 context.
    pub v1: String,
    /// URL of the v2 context.
    pub v2: String,
}

impl Default for VaccinationNamespace {
    fn default() -> Self {
        VaccinationNamespace {
            v1: DEFAULT_VACCINATION_V1_URL.into(),
            v2: DEFAULT_VACCINATION_V2_URL.into(),
        }
    }
}

impl CredentialVersion {
    /// The credential's `@context` for this version.
    pub fn contexts(self, ns: &VaccinationNamespace) -> Vec<String> {
        let vac = match self {
            CredentialVersion::V1 => &ns.v1,
            CredentialVersion::V2 => &ns.v2,
        };
        vec![CREDENTIALS_V1_URL.to_string(), vac.clone()]
    }

    /// The `@context` of a credential signed with `suite`, with or without `credentialStatus`:
    /// credentials v1 or v2, the vaccination context, then the suite's and the status list's
    /// contexts where the base context does not define their terms.
    pub fn contexts_for(
        self,
        ns: &VaccinationNamespace,
        suite: crate::suite::ProofSuite,
        with_status: bool,
    ) -> Vec<String> {
        let mut contexts = self.contexts(ns);
        contexts[0] = suite.base_context().to_string();
        contexts.extend(suite.suite_context().map(str::to_owned));
        if with_status && !suite.is_vc2() {
            contexts.push(crate::status_list::StatusEntry::VC11_CONTEXT.to_owned());
        }
        contexts
    }
}

/// A DIVOC vaccination credential (with or without proof).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaccinationCredential {
    /// `[credentials v1, vaccination vN]`.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// `["VerifiableCredential", "ProofOfVaccinationCredential"]`.
    #[serde(rename = "type")]
    pub types: Vec<String>,
    /// The vaccinated person.
    pub credential_subject: CredentialSubject,
    /// Issuer URL or DID.
    pub issuer: String,
    /// ISO-8601 date-time (VC 1.1); empty on a VC 2.0 credential, which has `validFrom`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuance_date: String,
    /// ISO-8601 date-time (VC 2.0 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// The vaccination(s); DIVOC emits exactly one.
    pub evidence: Vec<Evidence>,
    /// Always the string `"true"`.
    pub non_transferable: String,
    /// Where verifiers find the revocation and suspension bits (programs with status lists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_status: Vec<crate::status_list::StatusEntry>,
    /// The proof, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
}

/// `credentialSubject`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialSubject {
    /// Always `"Person"`.
    #[serde(rename = "type")]
    pub subject_type: String,
    /// Recipient identity as an IRI (see [`subject_id`]).
    pub id: String,
    /// Beneficiary reference (the preEnrollmentCode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_id: Option<String>,
    /// Hospital id, used by some deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uhid: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Age in years, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<String>,
    /// Nationality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// Date of birth (v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// Postal address (recipient and facility).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    /// addressLine1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// addressLine2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address2: Option<String>,
    /// District.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_region: Option<String>,
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_country: Option<String>,
    /// Pincode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// A dose number: DIVOC's template emits numbers, but its data sometimes carries strings
/// (its own test vector has `""`). Both must round-trip unchanged, since they canonicalize
/// differently (`"1"^^xsd:integer` versus `"1"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dose {
    /// A JSON number.
    Number(u32),
    /// A JSON string.
    Text(String),
}

/// `evidence[i]`: one vaccination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Evidence {
    /// Base URL + certificate id.
    pub id: String,
    /// Info page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info_url: Option<String>,
    /// Feedback page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_url: Option<String>,
    /// Certificate id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// `["Vaccination"]`.
    #[serde(rename = "type")]
    pub types: Vec<String>,
    /// Batch / lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// Vaccine name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vaccine: Option<String>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// ICD-11 code (v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icd11_code: Option<String>,
    /// ICD-11 term (v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prophylaxis: Option<String>,
    /// Vaccination date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Validity start date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_start: Option<String>,
    /// Validity end date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<String>,
    /// Dose number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose: Option<Dose>,
    /// Total doses in the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_doses: Option<Dose>,
    /// The vaccinator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<Verifier>,
    /// The facility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<Facility>,
}

/// `evidence[i].verifier` (the vaccinator).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verifier {
    /// Vaccinator name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `evidence[i].facility`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facility {
    /// Facility name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Facility address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// An `Ed25519Signature2018` proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proof {
    /// `Ed25519Signature2018`, `Ed25519Signature2020` or `DataIntegrityProof`.
    #[serde(rename = "type")]
    pub proof_type: String,
    /// `eddsa-rdfc-2022` on a `DataIntegrityProof`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cryptosuite: Option<String>,
    /// Signing time.
    pub created: String,
    /// Key id.
    pub verification_method: String,
    /// `assertionMethod`.
    pub proof_purpose: String,
    /// Detached JWS (Ed25519Signature2018).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jws: Option<String>,
    /// Multibase signature (the Data Integrity suites).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_value: Option<String>,
}

impl VaccinationCredential {
    /// Parses a credential from JSON.
    pub fn from_json(v: &Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(v)
    }

    /// When it was issued: `issuanceDate` (VC 1.1) or `validFrom` (VC 2.0).
    pub fn issued_at(&self) -> &str {
        match &self.valid_from {
            Some(v) if self.issuance_date.is_empty() => v,
            _ => &self.issuance_date,
        }
    }

    /// Serializes the credential to JSON (what gets canonicalized and signed).
    pub fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// The version implied by the vaccination context URL (`.../v1` or `.../v2`).
    pub fn version(&self) -> Option<CredentialVersion> {
        match self.context.get(1).map(String::as_str) {
            Some(u) if u.ends_with("/v1") => Some(CredentialVersion::V1),
            Some(u) if u.ends_with("/v2") => Some(CredentialVersion::V2),
            _ => None,
        }
    }
}

/// `credentialSubject.id` from a recipient identity, per DIVOC's rule: used as-is when it is
/// already a URI (`scheme:...`), else `<did_prefix>:<identity>`; an empty or `NA` identity falls
/// back to the preEnrollmentCode.
pub fn subject_id(identity: &str, pre_enrollment_code: &str, did_prefix: &str) -> String {
    let identity = identity.trim();
    let identity = if identity.is_empty() || identity.eq_ignore_ascii_case("NA") {
        pre_enrollment_code
    } else {
        identity
    };
    if crate::jsonld::is_absolute_iri(identity) {
        identity.to_string()
    } else {
        format!("{did_prefix}:{identity}")
    }
}

/// An identity with every digit but the last four replaced by `X` (DIVOC masked Aadhaar numbers
/// this way): `did:in.gov.uidai.aadhaar:123456789012` -> `did:in.gov.uidai.aadhaar:XXXXXXXX9012`.
/// Only the part after the last `:` is masked, so a DID method name keeps its digits.
pub fn mask_identity(identity: &str) -> String {
    let (head, value) = match identity.rfind(':') {
        Some(at) => identity.split_at(at + 1),
        None => ("", identity),
    };
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    let masked: String = value
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen + 4 <= digits {
                'X'
            } else {
                c
            }
        })
        .collect();
    format!("{head}{masked}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_masked_to_their_last_four_digits() {
        assert_eq!(
            mask_identity("did:in.gov.uidai.aadhaar:123456789012"),
            "did:in.gov.uidai.aadhaar:XXXXXXXX9012"
        );
        assert_eq!(mask_identity("P-1234"), "P-1234");
        assert_eq!(mask_identity("98765"), "X8765");
        assert_eq!(mask_identity("did:web2:ab12cd345"), "did:web2:abX2cd345");
    }

    #[test]
    fn subject_ids() {
        assert_eq!(
            subject_id("did:x:1", "P1", "did:in.gov.uidai.aadhaar"),
            "did:x:1"
        );
        assert_eq!(
            subject_id("1234", "P1", "did:in.gov.uidai.aadhaar"),
            "did:in.gov.uidai.aadhaar:1234"
        );
        assert_eq!(
            subject_id("NA", "P1", "did:in.gov.uidai.aadhaar"),
            "did:in.gov.uidai.aadhaar:P1"
        );
        assert_eq!(subject_id(" ", "P1", "did:d"), "did:d:P1");
    }

    #[test]
    fn contexts_per_version() {
        let ns = VaccinationNamespace::default();
        assert_eq!(
            CredentialVersion::V2.contexts(&ns),
            vec![
                CREDENTIALS_V1_URL.to_string(),
                DEFAULT_VACCINATION_V2_URL.to_string()
            ]
        );
    }
}
