//! The vaccine catalogue (`config/vaccines.toml`): DIVOC's name -> ICD-11 mapping.

use std::path::Path;

use serde::Deserialize;

/// One ICD-11 vaccine class and the names that map to it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaccineEntry {
    pub icd11: String,
    pub prophylaxis: String,
    /// Lower-case, whitespace-free fragments; a name matches when it contains one.
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub manufacturers: Vec<String>,
    #[serde(default)]
    pub total_doses: Option<u8>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VaccineCatalogue {
    #[serde(rename = "vaccine")]
    pub entries: Vec<VaccineEntry>,
}

impl VaccineCatalogue {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let c: Self = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if c.entries.is_empty() {
            return Err("the catalogue has no [[vaccine]] entries".into());
        }
        for e in &c.entries {
            if e.matches.is_empty()
                || e.matches.iter().any(|m| {
                    m.is_empty() || m.chars().any(|c| c.is_whitespace() || c.is_uppercase())
                })
            {
                return Err(format!(
                    "vaccine {}: `match` entries must be non-empty, lower-case and without spaces",
                    e.icd11
                ));
            }
        }
        Ok(c)
    }

    /// DIVOC's rule: lower-case the name, strip whitespace, then "contains".
    pub fn lookup(&self, name: &str) -> Option<&VaccineEntry> {
        let norm: String = name
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        if norm.is_empty() {
            return None;
        }
        self.entries
            .iter()
            .find(|e| e.matches.iter().any(|m| norm.contains(m.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> VaccineCatalogue {
        VaccineCatalogue::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/vaccines.toml"),
        )
        .unwrap()
    }

    #[test]
    fn shipped_catalogue_matches_divoc_rules() {
        let c = shipped();
        assert_eq!(c.lookup("Covishield").unwrap().icd11, "XM9QW8");
        assert_eq!(c.lookup("  COVAXIN ").unwrap().icd11, "XM1NL1");
        assert_eq!(c.lookup("Sputnik V").unwrap().icd11, "XM9QW8");
        assert_eq!(
            c.lookup("Pfizer-BioNTech Comirnaty").unwrap().icd11,
            "XM0GQ8"
        );
        assert_eq!(c.lookup("ZyCoV-D").unwrap().icd11, "XM6AT1");
        assert_eq!(
            c.lookup("Corbevax").unwrap().prophylaxis,
            "COVID-19 vaccine, virus protein subunit"
        );
        assert!(c.lookup("Snake Oil").is_none());
        assert!(c.lookup("").is_none());
        for e in &c.entries {
            for n in &e.names {
                assert_eq!(
                    c.lookup(n).map(|x| &x.icd11),
                    Some(&e.icd11),
                    "display name {n} maps to its own class"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_catalogues() {
        assert!(VaccineCatalogue::parse("").is_err());
        assert!(VaccineCatalogue::parse(
            "[[vaccine]]\nicd11='X'\nprophylaxis='p'\nmatch=['Has Space']"
        )
        .is_err());
        assert!(VaccineCatalogue::parse(
            "[[vaccine]]\nicd11='X'\nprophylaxis='p'\nmatch=['x']\nbogus=1"
        )
        .is_err());
    }
}
