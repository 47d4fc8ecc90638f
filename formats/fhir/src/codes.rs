//! Code maps shipped in `config/shc-codes.toml`: DIVOC vaccine names to CVX / SNOMED CT (and an
//! ICD-11 fallback for DDCC), ISO country codes, and DDCC settings.

use std::path::Path;

use serde::Deserialize;

use crate::error::FhirError;

/// CDC CVX code system.
pub const CVX_SYSTEM: &str = "http://hl7.org/fhir/sid/cvx";
/// SNOMED CT code system.
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
/// ICD-11 MMS code system (DDCC only; never an SHC vaccine code).
pub const ICD11_SYSTEM: &str = "http://id.who.int/icd11/mms";
/// ISO 3166-1 alpha-3 code system (DDCC `country`).
pub const ISO3166_SYSTEM: &str = "urn:iso:std:iso:3166";

/// The whole `shc-codes.toml` file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirCodes {
    /// Vaccine entries, tried in file order.
    #[serde(rename = "vaccine")]
    pub vaccines: Vec<VaccineCodes>,
    /// Country code entries.
    #[serde(rename = "country", default)]
    pub countries: Vec<CountryCodes>,
    /// DDCC:VS settings.
    pub ddcc: DdccSettings,
    /// Where the map was loaded from, for error messages.
    #[serde(skip)]
    pub source: String,
}

/// One vaccine product (or product family) and its codes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaccineCodes {
    /// Human label for the entry (documentation and error messages).
    pub label: String,
    /// Lower-case, whitespace-free substrings of the DIVOC vaccine name.
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    /// CDC CVX code.
    pub cvx: String,
    /// CVX short description.
    pub cvx_display: String,
    /// SNOMED CT code.
    pub snomed: String,
    /// SNOMED CT term.
    pub snomed_display: String,
    /// ICD-11 MMS code, the DDCC fallback when a credential carries no `icd11Code`.
    pub icd11: String,
}

/// ISO 3166-1 codes of one country.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryCodes {
    /// Alpha-2 code (`IN`).
    pub alpha2: String,
    /// Alpha-3 code (`IND`).
    pub alpha3: String,
    /// Lower-case names that also identify the country.
    #[serde(default)]
    pub names: Vec<String>,
}

/// `[ddcc]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DdccSettings {
    /// DDCC:VS core data set version written to `certificate.version`.
    pub core_data_set_version: String,
    /// Canonical base URL of the DDCC IG StructureDefinitions.
    pub profile_base: String,
    /// Alpha-2 country used when the credential names none.
    pub default_country_alpha2: String,
}

/// DIVOC's name normalisation: lower-case with all whitespace removed.
pub fn normalize_vaccine_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl FhirCodes {
    /// Loads and validates the code map from a TOML file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FhirError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| FhirError::Io {
            what: format!("reading code map {}", path.display()),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates a code map; `source` names it in error messages.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, FhirError> {
        let mut codes: FhirCodes = toml::from_str(text).map_err(|e| FhirError::Config {
            file: source.to_string(),
            message: e.to_string(),
        })?;
        codes.source = source.to_string();
        codes.validate()?;
        Ok(codes)
    }

    fn validate(&self) -> Result<(), FhirError> {
        let bad = |message: String| FhirError::Config {
            file: self.source.clone(),
            message,
        };
        for v in &self.vaccines {
            if v.matches.is_empty() {
                return Err(bad(format!("vaccine '{}' has no match strings", v.label)));
            }
            for m in &v.matches {
                if m.is_empty() || *m != normalize_vaccine_name(m) {
                    return Err(bad(format!(
                        "vaccine '{}': match string '{m}' must be non-empty, lower-case, without whitespace",
                        v.label
                    )));
                }
            }
            if v.cvx.is_empty() || !v.cvx.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!(
                    "vaccine '{}': cvx '{}' is not a numeric CVX code (ICD-11 codes do not belong here)",
                    v.label, v.cvx
                )));
            }
            if v.snomed.is_empty() || !v.snomed.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!(
                    "vaccine '{}': snomed '{}' is not a numeric SNOMED CT id",
                    v.label, v.snomed
                )));
            }
        }
        for c in &self.countries {
            let ok2 = c.alpha2.len() == 2 && c.alpha2.bytes().all(|b| b.is_ascii_uppercase());
            let ok3 = c.alpha3.len() == 3 && c.alpha3.bytes().all(|b| b.is_ascii_uppercase());
            if !ok2 || !ok3 {
                return Err(bad(format!(
                    "country {}/{}: alpha2 must be 2 and alpha3 3 upper-case letters",
                    c.alpha2, c.alpha3
                )));
            }
        }
        if self.alpha3(&self.ddcc.default_country_alpha2).is_none() {
            return Err(bad(format!(
                "ddcc.default_country_alpha2 '{}' has no [[country]] entry",
                self.ddcc.default_country_alpha2
            )));
        }
        Ok(())
    }

    /// The codes for a DIVOC vaccine name (first entry whose match string the normalised name
    /// contains), or an error naming the vaccine and the file to extend.
    pub fn vaccine(&self, name: &str) -> Result<&VaccineCodes, FhirError> {
        let norm = normalize_vaccine_name(name);
        self.vaccines
            .iter()
            .find(|v| v.matches.iter().any(|m| norm.contains(m.as_str())))
            .ok_or_else(|| FhirError::UnmappedVaccine {
                vaccine: name.to_string(),
                file: self.source.clone(),
            })
    }

    /// Alpha-3 code for an alpha-2 code or a listed country name (case-insensitive).
    pub fn alpha3(&self, country: &str) -> Option<&str> {
        let c = country.trim();
        self.countries
            .iter()
            .find(|e| {
                e.alpha2.eq_ignore_ascii_case(c)
                    || e.alpha3.eq_ignore_ascii_case(c)
                    || e.names.iter().any(|n| n.eq_ignore_ascii_case(c))
            })
            .map(|e| e.alpha3.as_str())
    }
}
