//! The vaccine catalogue the generator draws from, embedded from `config/vaccines.toml` at compile
//! time so generated events always use the same catalogue the validate operator loads.

use std::sync::LazyLock;

use serde::Deserialize;

/// The workspace catalogue, embedded so the generator needs no file at run time.
const CATALOGUE_TOML: &str = include_str!("../../../config/vaccines.toml");

#[derive(Debug, Deserialize)]
struct CatalogueFile {
    vaccine: Vec<CatalogueEntry>,
}

#[derive(Debug, Deserialize)]
struct CatalogueEntry {
    icd11: String,
    #[serde(rename = "match")]
    matches: Vec<String>,
    names: Vec<String>,
    manufacturers: Vec<String>,
    total_doses: u8,
}

/// One display name the generator may put in `vaccination.name`, with its manufacturer and dose
/// count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaccineProduct {
    pub name: String,
    pub manufacturer: String,
    pub icd11: String,
    pub total_doses: u8,
}

/// The catalogue products whose display name the catalogue itself maps to an ICD-11 entry.
///
/// Names that match no entry's `match` strings are left out: emitting them would turn "valid"
/// events into `unknown_vaccine` rejections and break the generator's expected counts.
pub static PRODUCTS: LazyLock<Vec<VaccineProduct>> = LazyLock::new(|| {
    // The text is compiled in and `catalogue_parses` checks it, so a failure here is a build defect.
    let file: CatalogueFile =
        toml::from_str(CATALOGUE_TOML).expect("embedded config/vaccines.toml parses");
    let mut out = Vec::new();
    for entry in &file.vaccine {
        for (i, name) in entry.names.iter().enumerate() {
            if catalogue_match(&file.vaccine, name).map(|e| e.icd11.as_str())
                != Some(entry.icd11.as_str())
            {
                continue;
            }
            let manufacturer = entry
                .manufacturers
                .get(i)
                .or(entry.manufacturers.last())
                .cloned()
                .unwrap_or_default();
            out.push(VaccineProduct {
                name: name.clone(),
                manufacturer,
                icd11: entry.icd11.clone(),
                total_doses: entry.total_doses.clamp(1, 3),
            });
        }
    }
    out
});

/// DIVOC's rule (reference section 6): lower-case, strip whitespace, first entry with a "contains".
fn catalogue_match<'a>(entries: &'a [CatalogueEntry], name: &str) -> Option<&'a CatalogueEntry> {
    let key = normalise(name);
    entries.iter().find(|e| {
        e.matches
            .iter()
            .any(|m| key.contains(normalise(m).as_str()))
    })
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The ICD-11 code a name maps to under the catalogue's matching rule, if any.
pub fn icd11_for(name: &str) -> Option<String> {
    let file: CatalogueFile = toml::from_str(CATALOGUE_TOML).ok()?;
    catalogue_match(&file.vaccine, name).map(|e| e.icd11.clone())
}

/// Display names in the catalogue that its own `match` lists do not recognise.
pub fn unmatched_catalogue_names() -> Vec<String> {
    let Ok(file) = toml::from_str::<CatalogueFile>(CATALOGUE_TOML) else {
        return Vec::new();
    };
    file.vaccine
        .iter()
        .flat_map(|e| {
            e.names
                .iter()
                .filter(|n| catalogue_match(&file.vaccine, n).is_none())
                .cloned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_and_covers_every_entry() {
        let file: CatalogueFile = toml::from_str(CATALOGUE_TOML).unwrap();
        assert!(!PRODUCTS.is_empty());
        for entry in &file.vaccine {
            assert!(
                PRODUCTS.iter().any(|p| p.icd11 == entry.icd11),
                "no usable display name for {}",
                entry.icd11
            );
        }
        for p in PRODUCTS.iter() {
            assert_eq!(icd11_for(&p.name).as_deref(), Some(p.icd11.as_str()));
            assert!((1..=3).contains(&p.total_doses));
            assert!(!p.manufacturer.is_empty());
        }
        assert!(icd11_for("Snake Oil").is_none());
        assert_eq!(
            unmatched_catalogue_names(),
            Vec::<String>::new(),
            "catalogue names its own match rules miss"
        );
    }
}
