//! Holder names: ICAO 9303 (Part 3, section 6) transliteration of Latin-script names to the
//! machine-readable `^[A-Z<]*$` form the DCC requires in `fnt`/`gnt`, validation of
//! caller-supplied transliterations, and the rule for splitting DIVOC's single `name`.

use crate::error::{HcertError, Result};

/// Maximum length of every DCC name field (schema `maxLength`).
pub const MAX_NAME_LEN: usize = 80;

/// Checks a caller-supplied transliterated name (`fnt` / `gnt`) against the DCC schema:
/// `^[A-Z<]*$`, at most 80 characters.
pub fn validate_transliterated(field: &'static str, value: &str) -> Result<()> {
    let bad = |reason: String| HcertError::InvalidTransliteration {
        field,
        value: value.to_string(),
        reason,
    };
    if value.len() > MAX_NAME_LEN {
        return Err(bad(format!("{} characters", value.len())));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_uppercase() || *c == '<'))
    {
        return Err(bad(format!("character {c:?} is not A-Z or '<'")));
    }
    Ok(())
}

/// ICAO 9303 transliteration of a Latin-script name, e.g. `"Lövström"` -> `"LOEVSTROEM"`,
/// `"d'Červenková Panklová"` -> `"DCERVENKOVA<PANKLOVA"`.
///
/// Rules: letters are upper-cased; diacritics follow the ICAO 9303 table (Ä/Æ -> AE, Ö/Ø/Œ -> OE,
/// Ü -> UE, ß -> SS, Þ -> TH, Ĳ -> IJ, other accented letters lose the accent); spaces and hyphens
/// become one `<` (runs collapse, none at either end); apostrophes, periods and commas are
/// dropped. The result is truncated to 80 characters (ICAO allows truncation). Any other
/// character — digits, or a non-Latin script such as Devanagari — is an error, because guessing
/// there produces a wrong name; callers must supply the registry's transliteration instead.
pub fn transliterate_icao(name: &str) -> Result<String> {
    let mut out = String::with_capacity(name.len());
    let mut pending_filler = false;
    for ch in name.trim().chars() {
        if matches!(ch, ' ' | '-' | '\u{2010}' | '\u{2011}' | '\t') {
            pending_filler = !out.is_empty();
            continue;
        }
        if matches!(ch, '\'' | '\u{2019}' | '`' | '.' | ',') {
            continue;
        }
        // Upper-casing first halves the table; Rust maps 'ß' to "SS" here already.
        for up in ch.to_uppercase() {
            let mapped = map_upper(up).ok_or_else(|| HcertError::NonLatinName {
                name: name.to_string(),
                ch,
            })?;
            if pending_filler {
                out.push('<');
                pending_filler = false;
            }
            out.push_str(mapped);
        }
    }
    if out.len() > MAX_NAME_LEN {
        out.truncate(MAX_NAME_LEN);
        while out.ends_with('<') {
            out.pop();
        }
    }
    Ok(out)
}

/// One upper-case letter to its ICAO 9303 form; `None` when it is not a Latin letter we know.
fn map_upper(c: char) -> Option<&'static str> {
    const PLAIN: [&str; 26] = [
        "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R",
        "S", "T", "U", "V", "W", "X", "Y", "Z",
    ];
    if c.is_ascii_uppercase() {
        return Some(PLAIN[(c as u8 - b'A') as usize]);
    }
    Some(match c {
        'Ä' | 'Æ' => "AE",
        'Ö' | 'Ø' | 'Œ' => "OE",
        'Ü' => "UE",
        'ẞ' => "SS",
        'Þ' => "TH",
        'Ĳ' => "IJ",
        'Á' | 'À' | 'Â' | 'Ã' | 'Å' | 'Ā' | 'Ă' | 'Ą' | 'Ǎ' => "A",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'Ð' | 'Đ' | 'Ď' => "D",
        'É' | 'È' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'Ĥ' | 'Ħ' => "H",
        'Í' | 'Ì' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' | 'Ǐ' => "I",
        'Ĵ' => "J",
        'Ķ' => "K",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' | 'Ŋ' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ō' | 'Ŏ' | 'Ő' | 'Ǒ' => "O",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' => "S",
        'Ţ' | 'Ť' | 'Ŧ' | 'Ț' => "T",
        'Ù' | 'Ú' | 'Û' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' | 'Ǔ' => "U",
        'Ŵ' => "W",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => return None,
    })
}

/// A holder name split into the DCC's family and given parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts {
    /// Surname (`fn`).
    pub family: String,
    /// Forename(s) (`gn`), absent for mononyms.
    pub given: Option<String>,
}

/// Splits DIVOC's single `name` field. Rule: the last whitespace-separated word is the family
/// name, everything before it the given name(s); a single word is a family name only. This is
/// only a default for registries without separate fields — Indian, Chinese, Hungarian and many
/// other naming orders break it, so callers that know the parts should pass them explicitly.
pub fn split_name(full: &str) -> Option<NameParts> {
    let words: Vec<&str> = full.split_whitespace().collect();
    let (family, given) = words.split_last()?;
    Some(NameParts {
        family: (*family).to_string(),
        given: if given.is_empty() {
            None
        } else {
            Some(given.join(" "))
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icao_examples() {
        // Expected values taken from the DCC schema examples and the official test data.
        assert_eq!(transliterate_icao("Lövström").unwrap(), "LOEVSTROEM");
        assert_eq!(
            transliterate_icao("d'Červenková Panklová").unwrap(),
            "DCERVENKOVA<PANKLOVA"
        );
        assert_eq!(
            transliterate_icao("Jiřina-Maria Alena").unwrap(),
            "JIRINA<MARIA<ALENA"
        );
        assert_eq!(transliterate_icao("Strauß").unwrap(), "STRAUSS");
        assert_eq!(
            transliterate_icao("  Müller -  Lüdenscheidt ").unwrap(),
            "MUELLER<LUEDENSCHEIDT"
        );
        assert_eq!(transliterate_icao("Ærøskøbing").unwrap(), "AEROESKOEBING");
    }

    #[test]
    fn non_latin_is_an_error() {
        assert!(matches!(
            transliterate_icao("भय मित्र"),
            Err(HcertError::NonLatinName { ch: 'भ', .. })
        ));
        assert!(transliterate_icao("Иван").is_err());
        assert!(transliterate_icao("R2D2").is_err());
    }

    #[test]
    fn truncates_to_80() {
        let long = "Abcdefghij ".repeat(10);
        let t = transliterate_icao(&long).unwrap();
        assert!(t.len() <= 80 && !t.ends_with('<'));
        validate_transliterated("fnt", &t).unwrap();
    }

    #[test]
    fn validation() {
        validate_transliterated("fnt", "MITRA<BHAYA").unwrap();
        validate_transliterated("gnt", "").unwrap();
        assert!(validate_transliterated("fnt", "Mitra").is_err());
        assert!(validate_transliterated("fnt", &"A".repeat(81)).is_err());
    }

    #[test]
    fn splitting() {
        assert_eq!(
            split_name("Bhaya  Kumar Mitra"),
            Some(NameParts {
                family: "Mitra".into(),
                given: Some("Bhaya Kumar".into())
            })
        );
        assert_eq!(
            split_name("Madonna"),
            Some(NameParts {
                family: "Madonna".into(),
                given: None
            })
        );
        assert_eq!(split_name("   "), None);
    }
}
