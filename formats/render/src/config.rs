//! Typed configuration read from `config/`: fonts, state -> language map, per-tenant layout
//! and per-language templates. Every struct denies unknown fields so a typo in a TOML file is
//! an error naming the file, not a silently ignored setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::RenderError;

/// `config/fonts/fonts.toml`: the font families, in fallback order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FontsConfig {
    /// Families; a character no earlier family covers is looked up in the next one.
    pub family: Vec<FontFamilyConfig>,
}

/// One font family (a Regular and a Bold TrueType file under `config/fonts/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FontFamilyConfig {
    /// Name templates refer to (`font_family`).
    pub name: String,
    /// Regular weight file name, relative to `config/fonts/`.
    pub regular: String,
    /// Bold weight file name, relative to `config/fonts/`.
    pub bold: String,
}

/// `config/languages.toml`: which language a recipient's state prints in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguagesConfig {
    /// Language used when the state is unknown or not listed.
    pub default: String,
    /// State name (as in `credentialSubject.address.addressRegion`) -> language code.
    pub states: BTreeMap<String, String>,
}

/// Text direction of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Left to right.
    Ltr,
    /// Right to left (the layout is mirrored).
    Rtl,
}

/// `config/templates/<tenant>/<lang>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Language code (must match the file name).
    pub language: String,
    /// The language's own name, for listings.
    pub language_name: String,
    /// Text direction.
    pub direction: Direction,
    /// Primary font family (a `name` in fonts.toml); other families are fallbacks.
    pub font_family: String,
    /// Date pattern with `{dd}`, `{mm}`, `{yyyy}` and `{month}` (from `months`).
    pub date_format: String,
    /// Month names January..December, used by `{month}`.
    #[serde(default)]
    pub months: Vec<String>,
    /// Every printed label.
    pub labels: Labels,
    /// Translations of gender values (`Male` -> ...); values not listed print as given.
    #[serde(default)]
    pub genders: BTreeMap<String, String>,
}

/// The labels of a certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Document title.
    pub title: String,
    /// Line under the title (issuer).
    pub subtitle: String,
    /// Heading of the beneficiary block.
    pub beneficiary_details: String,
    /// Heading of the vaccination block.
    pub vaccination_details: String,
    /// "Name".
    pub name: String,
    /// "Age".
    pub age: String,
    /// "Gender".
    pub gender: String,
    /// "ID verified" (masked identity).
    pub identity: String,
    /// "Beneficiary reference ID".
    pub beneficiary_id: String,
    /// "Vaccine name".
    pub vaccine: String,
    /// "Date of dose".
    pub date: String,
    /// "Batch number".
    pub batch: String,
    /// "Manufacturer".
    pub manufacturer: String,
    /// "Dose number".
    pub dose: String,
    /// Pattern for "dose x of y", with `{x}` and `{y}`.
    pub dose_of: String,
    /// "Vaccinated at".
    pub facility: String,
    /// "Vaccinated by".
    pub vaccinator: String,
    /// "Certificate ID".
    pub certificate_id: String,
    /// Heading of the dose history table.
    pub history: String,
    /// History column: dose.
    pub history_dose: String,
    /// History column: vaccine.
    pub history_vaccine: String,
    /// History column: date.
    pub history_date: String,
    /// History column: batch.
    pub history_batch: String,
    /// History column: facility.
    pub history_facility: String,
    /// Caption of the QR code.
    pub scan_qr: String,
    /// Caption under the signature.
    pub signatory: String,
    /// Footer line.
    pub footer: String,
}

/// `config/templates/<tenant>/layout.toml`: positions in PDF points, origin bottom-left,
/// written for left-to-right; right-to-left templates mirror every x.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutConfig {
    /// Page size (A4 = 595.28 x 841.89).
    pub page: PageSize,
    /// Colours as `#rrggbb`.
    pub colors: Colors,
    /// Issuer logo.
    pub logo: ImageBox,
    /// Signature image.
    pub signature: ImageBox,
    /// Title block.
    pub title: TitleBox,
    /// Label/value table of the certificate.
    pub details: DetailsBox,
    /// QR code placement.
    pub qr: QrBox,
    /// Dose history table.
    pub history: HistoryBox,
    /// Footer.
    pub footer: TextBox,
}

/// Page size in points.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSize {
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// Colours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Colors {
    /// Title, headings and rules.
    pub primary: String,
    /// Values.
    pub text: String,
    /// Labels.
    pub muted: String,
    /// Background of table headers.
    pub header_background: String,
}

/// An image placed on the page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageBox {
    /// PNG file, relative to the config directory.
    pub image: String,
    /// Left edge.
    pub x: f32,
    /// Bottom edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// Title and subtitle, centred.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TitleBox {
    /// Baseline of the title.
    pub y: f32,
    /// Title size.
    pub size: f32,
    /// Baseline of the subtitle.
    pub subtitle_y: f32,
    /// Subtitle size.
    pub subtitle_size: f32,
    /// Rule under the header.
    pub rule_y: f32,
}

/// The label/value rows.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailsBox {
    /// Baseline of the first heading.
    pub top: f32,
    /// Left edge of labels.
    pub x: f32,
    /// Width of the label column.
    pub label_width: f32,
    /// Width of the value column.
    pub value_width: f32,
    /// Distance between rows.
    pub row_height: f32,
    /// Label size.
    pub label_size: f32,
    /// Value size.
    pub value_size: f32,
    /// Heading size.
    pub heading_size: f32,
}

/// QR code square (including its 4-module quiet zone).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrBox {
    /// Left edge.
    pub x: f32,
    /// Bottom edge.
    pub y: f32,
    /// Side length.
    pub size: f32,
    /// Caption size.
    pub caption_size: f32,
    /// Width of the caption line under the QR (starts at `x`).
    pub caption_width: f32,
}

/// The dose history table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryBox {
    /// Baseline of the heading.
    pub top: f32,
    /// Left edge.
    pub x: f32,
    /// Row height.
    pub row_height: f32,
    /// Text size.
    pub size: f32,
    /// Column widths: dose, vaccine, date, batch, facility.
    pub columns: [f32; 5],
}

/// A line of text.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBox {
    /// Baseline.
    pub y: f32,
    /// Size.
    pub size: f32,
}

/// Reads and parses one TOML file into `T`, naming the file in every error.
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RenderError> {
    let text = std::fs::read_to_string(path).map_err(|source| RenderError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| RenderError::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses `#rrggbb` into 0..1 components.
pub fn parse_color(value: &str, path: &Path) -> Result<[f32; 3], RenderError> {
    let bad = || RenderError::Config {
        path: PathBuf::from(path),
        message: format!("colour {value:?} is not #rrggbb"),
    };
    let hex = value.strip_prefix('#').ok_or_else(bad)?;
    if hex.len() != 6 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0.0; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        let byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| bad())?;
        *slot = f32::from(byte) / 255.0;
    }
    Ok(out)
}
