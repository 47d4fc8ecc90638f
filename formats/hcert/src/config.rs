//! DCC issuing configuration (`config/dcc-valuesets.toml`): issuer settings and the mapping from
//! DIVOC vaccine names to EU DCC value-set codes (`vp`, `mp`, `ma`).

use std::path::Path;

use serde::Deserialize;

use crate::error::{HcertError, Result};

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DccConfig {
    /// Who issues the DCCs.
    pub issuer: IssuerConfig,
    /// Vaccine mappings, tried in file order; the first match wins.
    #[serde(rename = "vaccine")]
    pub vaccines: Vec<VaccineMapping>,
}

/// Issuer settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// ISO 3166-1 alpha-2 country of the issuer: CWT claim 1 (`iss`) and the UVCI country.
    pub country: String,
    /// Default country of vaccination (`co`) when the facility address has none (alpha-2).
    pub default_vaccination_country: String,
    /// `is`: name of the certificate issuer (max 80 characters).
    pub name: String,
    /// UVCI prefix before the certificate id, e.g. `URN:UVCI:01:IN:`; must end with `:`.
    pub uvci_prefix: String,
    /// `exp = iat + validity_days` days.
    pub validity_days: u32,
}

/// One vaccine: the DIVOC names it matches and its EU value-set codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaccineMapping {
    /// Substrings matched DIVOC-style: the credential's vaccine name, lower-cased with all
    /// whitespace removed, must contain one of these (normalised the same way at load time).
    /// Same convention as `config/vaccines.toml`.
    #[serde(rename = "match")]
    pub patterns: Vec<String>,
    /// `vp`: vaccine or prophylaxis (SNOMED CT / ATC).
    pub vp: String,
    /// `mp`: medicinal product.
    pub mp: String,
    /// `ma`: marketing authorisation holder or manufacturer.
    pub ma: String,
}

/// Normalises a name the way DIVOC's vaccine matching does: lower case, no whitespace.
pub fn normalize_vaccine_name(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl DccConfig {
    /// Loads and validates the config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| HcertError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let bad = |message: String| HcertError::Config {
            path: origin.to_string(),
            message,
        };
        let mut cfg: DccConfig = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let alpha2 = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
        if !alpha2(&cfg.issuer.country) || !alpha2(&cfg.issuer.default_vaccination_country) {
            return Err(bad("issuer.country and issuer.default_vaccination_country must be ISO 3166-1 alpha-2 (two upper-case letters)".into()));
        }
        if cfg.issuer.name.is_empty() || cfg.issuer.name.chars().count() > 80 {
            return Err(bad("issuer.name must be 1..=80 characters".into()));
        }
        if !cfg.issuer.uvci_prefix.starts_with("URN:UVCI:01:")
            || !cfg.issuer.uvci_prefix.ends_with(':')
        {
            return Err(bad(format!(
                "issuer.uvci_prefix {:?} must look like \"URN:UVCI:01:<CC>:\"",
                cfg.issuer.uvci_prefix
            )));
        }
        if cfg.issuer.validity_days == 0 {
            return Err(bad("issuer.validity_days must be at least 1".into()));
        }
        for (i, v) in cfg.vaccines.iter_mut().enumerate() {
            v.patterns = v
                .patterns
                .iter()
                .map(|n| normalize_vaccine_name(n))
                .collect();
            if v.patterns.is_empty() || v.patterns.iter().any(String::is_empty) {
                return Err(bad(format!(
                    "vaccine #{} needs a non-empty match list",
                    i + 1
                )));
            }
            if v.vp.is_empty() || v.mp.is_empty() || v.ma.is_empty() {
                return Err(bad(format!(
                    "vaccine {:?}: vp, mp and ma are required",
                    v.patterns
                )));
            }
        }
        Ok(cfg)
    }

    /// Finds the mapping for a vaccine name (DIVOC "contains" matching), falling back to the
    /// manufacturer name when the vaccine name matches nothing.
    pub fn vaccine_for(&self, vaccine: &str, manufacturer: &str) -> Result<&VaccineMapping> {
        let find = |s: &str| {
            let key = normalize_vaccine_name(s);
            if key.is_empty() {
                return None;
            }
            self.vaccines
                .iter()
                .find(|m| m.patterns.iter().any(|n| key.contains(n.as_str())))
        };
        find(vaccine)
            .or_else(|| find(manufacturer))
            .ok_or_else(|| HcertError::UnknownVaccine {
                vaccine: vaccine.to_string(),
                manufacturer: manufacturer.to_string(),
            })
    }
}
