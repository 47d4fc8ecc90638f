//! The FHIR R4 resources we emit and read, as typed serde structs. Only the elements our
//! outputs use are modelled; unknown elements are ignored when reading (FHIR readers must not
//! choke on extensions they do not know). Absent/empty elements are never serialized, which is
//! also what SMART Health Card minimisation needs.

use serde::{Deserialize, Serialize};

/// Any resource we put in a Bundle; serialized with its `resourceType` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType")]
pub enum Resource {
    /// Patient.
    Patient(Patient),
    /// Immunization.
    Immunization(Immunization),
    /// Composition (DDCC document header).
    Composition(Composition),
    /// Organization (DDCC issuer).
    Organization(Organization),
    /// Practitioner (DDCC vaccinator).
    Practitioner(Practitioner),
    /// ImmunizationRecommendation (DDCC next dose).
    ImmunizationRecommendation(ImmunizationRecommendation),
}

/// `Bundle.type` values we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleType {
    /// SMART Health Card and plain bundles.
    Collection,
    /// DDCC:VS document (first entry is the Composition).
    Document,
}

/// The `resourceType` of a Bundle: a one-value enum, so reading checks it (a struct-level
/// serde tag would be written but not checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BundleResourceType {
    /// `"Bundle"`.
    #[default]
    Bundle,
}

/// A Bundle; serialized with `"resourceType":"Bundle"` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Always `Bundle`.
    pub resource_type: BundleResourceType,
    /// Logical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Persistent identifier (documents must have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Bundle type.
    #[serde(rename = "type")]
    pub bundle_type: BundleType,
    /// When the bundle was assembled (documents must have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Entries.
    #[serde(default)]
    pub entry: Vec<BundleEntry>,
}

/// One Bundle entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    /// `resource:N` (SHC) or `urn:uuid:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    /// The resource.
    pub resource: Resource,
}

/// Coding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coding {
    /// Code system URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Display (stripped by SHC minimisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    /// A coding with system, code and optional display.
    pub fn new(system: &str, code: &str, display: Option<&str>) -> Self {
        Coding {
            system: Some(system.to_string()),
            code: Some(code.to_string()),
            display: display.map(str::to_string),
        }
    }
}

/// CodeableConcept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CodeableConcept {
    /// Codings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    /// Plain text (stripped by SHC minimisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// A concept with one coding.
    pub fn single(coding: Coding) -> Self {
        CodeableConcept {
            coding: vec![coding],
            text: None,
        }
    }
}

/// Identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    /// Namespace URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// HumanName.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HumanName {
    /// The full name as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Given names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
}

/// Reference.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reference {
    /// `resource:N`, `urn:uuid:...` or a relative URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Text alternative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Reference {
    /// A literal reference.
    pub fn to(reference: impl Into<String>) -> Self {
        Reference {
            reference: Some(reference.into()),
            display: None,
        }
    }
    /// A display-only reference.
    pub fn display(display: impl Into<String>) -> Self {
        Reference {
            reference: None,
            display: Some(display.into()),
        }
    }
}

/// Period.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Period {
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// Extension (only the value types DDCC uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// Extension definition URL.
    pub url: String,
    /// `valueCoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_coding: Option<Coding>,
    /// `valueCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_code: Option<String>,
    /// `valueDate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_date: Option<String>,
    /// `valueString`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
}

/// Resource metadata (profiles claimed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Meta {
    /// Profile canonical URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<String>,
}

/// Patient.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// Logical id (never in SHC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    /// `male | female | other | unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
}

/// Immunization.performer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImmunizationPerformer {
    /// Who (or which facility) performed it.
    pub actor: Reference,
}

/// Immunization.protocolApplied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolApplied {
    /// Target disease.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_disease: Vec<CodeableConcept>,
    /// Dose number (number form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_number_positive_int: Option<u32>,
    /// Dose number (text form, when the source is not a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_number_string: Option<String>,
    /// Doses in the series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_doses_positive_int: Option<u32>,
}

/// Immunization.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Immunization {
    /// Logical id (never in SHC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extensions (DDCC brand, market authorisation holder, country, valid-from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// `completed`.
    pub status: String,
    /// The vaccine.
    pub vaccine_code: CodeableConcept,
    /// The patient.
    pub patient: Reference,
    /// Date (or date-time) of vaccination.
    pub occurrence_date_time: String,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Reference>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<Reference>,
    /// Lot number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_number: Option<String>,
    /// Performers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performer: Vec<ImmunizationPerformer>,
    /// Dose / series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol_applied: Vec<ProtocolApplied>,
}

/// Composition.event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompositionEvent {
    /// Period covered (DDCC: certificate validity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// Composition.section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompositionSection {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Section code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    /// Referenced resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<Reference>,
}

/// Composition (the first entry of a `document` Bundle).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Composition {
    /// Logical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extensions (DDCC: signing key id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Document identifier (DDCC: hcid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// `final`.
    pub status: String,
    /// Document type.
    #[serde(rename = "type")]
    pub composition_type: CodeableConcept,
    /// The patient.
    pub subject: Reference,
    /// Composition date.
    pub date: String,
    /// Issuer.
    #[serde(default)]
    pub author: Vec<Reference>,
    /// Title.
    pub title: String,
    /// Validity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event: Vec<CompositionEvent>,
    /// Sections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub section: Vec<CompositionSection>,
}

/// Organization.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Organization {
    /// Logical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Practitioner.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Practitioner {
    /// Logical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
}

/// ImmunizationRecommendation.recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// Vaccine recommended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vaccine_code: Vec<CodeableConcept>,
    /// Disease targeted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_disease: Option<CodeableConcept>,
    /// `due`, `complete`, ...
    pub forecast_status: CodeableConcept,
    /// Dose number recommended next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_number_positive_int: Option<u32>,
    /// Doses in the series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_doses_positive_int: Option<u32>,
    /// The immunizations this is based on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supporting_immunization: Vec<Reference>,
}

/// ImmunizationRecommendation (DDCC nextDose).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationRecommendation {
    /// Logical id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// The patient.
    pub patient: Reference,
    /// When the recommendation was made.
    pub date: String,
    /// Recommendations.
    pub recommendation: Vec<Recommendation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_type_is_serialized_first() {
        let bundle = Bundle {
            resource_type: BundleResourceType::Bundle,
            id: None,
            identifier: None,
            bundle_type: BundleType::Collection,
            timestamp: None,
            entry: vec![BundleEntry {
                full_url: Some("resource:0".into()),
                resource: Resource::Patient(Patient {
                    birth_date: Some("2000".into()),
                    ..Patient::default()
                }),
            }],
        };
        let text = serde_json::to_string(&bundle).unwrap();
        assert_eq!(
            text,
            r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"resource:0","resource":{"resourceType":"Patient","birthDate":"2000"}}]}"#
        );
        assert_eq!(serde_json::from_str::<Bundle>(&text).unwrap(), bundle);
    }

    #[test]
    fn reading_ignores_unknown_elements_but_not_unknown_resources() {
        let text = r#"{"resourceType":"Bundle","type":"collection","meta":{"x":1},"entry":[
            {"resource":{"resourceType":"Patient","active":true,"name":[{"use":"official","family":"F"}]}}]}"#;
        let b: Bundle = serde_json::from_str(text).unwrap();
        let Resource::Patient(p) = &b.entry[0].resource else {
            panic!("not a patient")
        };
        assert_eq!(p.name[0].family.as_deref(), Some("F"));
        let other = r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation"}}]}"#;
        assert!(serde_json::from_str::<Bundle>(other).is_err());
        let wrong = r#"{"resourceType":"Patient","type":"collection"}"#;
        assert!(serde_json::from_str::<Bundle>(wrong).is_err());
    }
}
