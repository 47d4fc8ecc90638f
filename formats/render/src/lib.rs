//! PDF vaccination certificates in many languages.
//!
//! - Templates are data: `config/templates/<tenant>/<lang>.toml` (labels, date format, font
//!   family, direction) plus `config/templates/<tenant>/layout.toml` (positions, colours,
//!   images). `config/languages.toml` maps a recipient's state to a language.
//! - Text is reordered with unicode-bidi, split into runs per font (per-character fallback,
//!   so a Tamil name on an English certificate still gets Tamil glyphs) and shaped with
//!   rustybuzz; the shaped glyph ids and positions go into the content stream unchanged.
//! - Every run is a `/Span` with `/ActualText` and every glyph has a ToUnicode entry, so
//!   `pdftotext` gives back the logical text (reordered matras, right-to-left Urdu).
//! - Fonts are parsed once at [`Renderer::load`] (hinting stripped, shape plans cached).
//!   Labels are shaped once per template and their glyphs embedded from a subset built at
//!   load (`/S<n>`); per PDF only the data glyphs (name, values) are subset (`/F<n>`). Every
//!   font is a TrueType subset named `ABCDEF+Name`, glyph ids kept (`/CIDToGIDMap /Identity`).
//! - Output depends only on the input: no clock (`/CreationDate` is the credential's
//!   `issuanceDate`), the document `/ID` is a content hash, no hash-map order leaks.
//!
//! Why not printpdf's serializer (the project's reference library, 0.12): the same page
//! through printpdf (`benches/printpdf_compare.rs`, `--features printpdf-compare`) takes
//! 35-77 ms and 350-800 KB per PDF, and `pdffonts` reports its fonts as not subset, which
//! is two orders of magnitude off the 2,000 PDFs/s target. The writer here emits the same
//! objects printpdf would (Type0/CIDFontType2, ToUnicode, FontFile2) from prepared bytes.
//!
//! Right-to-left extraction: poppler lays an `/ActualText` out left to right over its span
//! and then reorders visually, so right-to-left words carry their text in visual order
//! (see `pdf::Content::runs`); left-to-right words carry logical order.

mod config;
mod embed;
mod error;
mod fonts;
mod page;
mod pdf;
mod shape;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use divoc_credential::VaccinationCredential;
use divoc_qr::ModuleMatrix;

pub use config::{Direction, LanguagesConfig, LayoutConfig, TemplateConfig};
pub use error::RenderError;
pub use page::{format_date, mask_identity};

use config::{load_toml, parse_color, FontsConfig, Labels};
use embed::PreparedFont;
use fonts::{Font, Weight};
use pdf::{DocInfo, PreparedImage};
use shape::{shape_line, FontSet, ShapeStyle, ShapedLine};

/// One certificate to print.
pub struct RenderRequest<'a> {
    /// Tenant (a directory under `config/templates/`).
    pub tenant: &'a str,
    /// Explicit language; `None` picks it from the recipient's state.
    pub language: Option<&'a str>,
    /// All credentials (doses) of the beneficiary, in any order.
    pub doses: &'a [VaccinationCredential],
    /// Index in `doses` of the certificate being printed.
    pub current: usize,
    /// The certificate's QR code.
    pub qr: &'a ModuleMatrix,
}

/// A rendered PDF and what shaping reported.
pub struct Rendered {
    /// The PDF file.
    pub pdf: Vec<u8>,
    /// Glyphs that came out as .notdef (characters no configured font covers).
    pub missing_glyphs: usize,
    /// Language actually used.
    pub language: String,
}

/// Resolved colours of a tenant.
#[derive(Clone, Copy)]
struct TenantColors {
    primary: [f32; 3],
    text: [f32; 3],
    muted: [f32; 3],
    header_background: [f32; 3],
}

/// A tenant: its layout, images and templates.
pub(crate) struct Tenant {
    layout: LayoutConfig,
    colors: TenantColors,
    /// Logo, signature.
    images: [PreparedImage; 2],
    templates: BTreeMap<String, Template>,
}

/// One language template with its labels shaped once at load.
pub(crate) struct Template {
    config: TemplateConfig,
    primary: usize,
    rtl: bool,
    shaped: [HashMap<String, ShapedLine>; 2],
    /// Subsets holding exactly the glyphs of the shaped labels, built once at load.
    label_fonts: BTreeMap<usize, PreparedFont>,
}

impl Template {
    fn cache(&self, weight: Weight) -> &HashMap<String, ShapedLine> {
        &self.shaped[usize::from(weight == Weight::Bold)]
    }
}

/// Renders certificates; cheap to share (`Send + Sync`), all state is read-only.
pub struct Renderer {
    fonts: FontSet,
    tenants: BTreeMap<String, Tenant>,
    languages: LanguagesConfig,
    fallback: bool,
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

impl Renderer {
    /// Loads fonts (`fonts/fonts.toml`), the state -> language map (`languages.toml`) and
    /// every tenant under `templates/` from a config directory.
    pub fn load(config_dir: &Path) -> Result<Renderer, RenderError> {
        let fonts_dir = config_dir.join("fonts");
        let fonts_cfg: FontsConfig = load_toml(&fonts_dir.join("fonts.toml"))?;
        let mut fonts = Vec::new();
        let mut families = Vec::new();
        for fam in &fonts_cfg.family {
            fonts.push(Font::load(&fonts_dir.join(&fam.regular))?);
            fonts.push(Font::load(&fonts_dir.join(&fam.bold))?);
            families.push(fam.name.clone());
        }
        let fonts = FontSet { fonts, families };
        let languages_path = config_dir.join("languages.toml");
        let languages: LanguagesConfig = load_toml(&languages_path)?;

        let templates_dir = config_dir.join("templates");
        let entries = std::fs::read_dir(&templates_dir).map_err(|source| RenderError::Io {
            path: templates_dir.clone(),
            source,
        })?;
        let mut tenant_dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        tenant_dirs.sort();
        let mut tenants = BTreeMap::new();
        for dir in tenant_dirs {
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            tenants.insert(name, load_tenant(config_dir, &dir, &fonts)?);
        }
        if tenants.is_empty() {
            return Err(RenderError::Config {
                path: templates_dir,
                message: "no tenant directories".into(),
            });
        }
        for (state, lang) in std::iter::once((&"default".to_string(), &languages.default))
            .chain(languages.states.iter())
        {
            if !tenants.values().any(|t| t.templates.contains_key(lang)) {
                return Err(RenderError::Config {
                    path: languages_path,
                    message: format!(
                        "{state:?} maps to language {lang:?}, which no tenant has a template for"
                    ),
                });
            }
        }
        Ok(Renderer {
            fonts,
            tenants,
            languages,
            fallback: true,
        })
    }

    /// Turns per-character font fallback off (diagnostics: shows what the primary font of
    /// a template lacks). On by default.
    pub fn set_font_fallback(&mut self, enabled: bool) {
        self.fallback = enabled;
    }

    /// Tenants and their languages.
    /// Whether `tenant` has its own templates.
    pub fn has_tenant(&self, tenant: &str) -> bool {
        self.tenants.contains_key(tenant)
    }

    /// Checks that `tenant` has a template in `language` (an error lists what exists).
    pub fn check_language(&self, tenant: &str, language: &str) -> Result<(), RenderError> {
        let t = self
            .tenants
            .get(tenant)
            .ok_or_else(|| RenderError::UnknownTenant {
                tenant: tenant.to_owned(),
                available: list(self.tenants.keys()),
            })?;
        if t.templates.contains_key(language) {
            Ok(())
        } else {
            Err(RenderError::UnknownLanguage {
                tenant: tenant.to_owned(),
                language: language.to_owned(),
                available: list(t.templates.keys()),
            })
        }
    }

    pub fn tenants(&self) -> BTreeMap<&str, Vec<&str>> {
        self.tenants
            .iter()
            .map(|(n, t)| (n.as_str(), t.templates.keys().map(String::as_str).collect()))
            .collect()
    }

    /// The language a recipient from `state` gets (case-insensitive match; the configured
    /// default otherwise).
    pub fn language_for_state(&self, state: Option<&str>) -> &str {
        let Some(state) = state.map(str::trim) else {
            return &self.languages.default;
        };
        self.languages
            .states
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(state))
            .map_or(&self.languages.default, |(_, l)| l)
    }

    /// Renders one certificate as a PDF.
    pub fn render(&self, req: &RenderRequest) -> Result<Vec<u8>, RenderError> {
        self.render_with_report(req).map(|r| r.pdf)
    }

    /// Renders and also reports missing glyphs and the language used.
    pub fn render_with_report(&self, req: &RenderRequest) -> Result<Rendered, RenderError> {
        let tenant = self
            .tenants
            .get(req.tenant)
            .ok_or_else(|| RenderError::UnknownTenant {
                tenant: req.tenant.to_string(),
                available: list(self.tenants.keys()),
            })?;
        let cred = req.doses.get(req.current).ok_or_else(|| {
            RenderError::Request(format!(
                "current = {} but only {} doses were given",
                req.current,
                req.doses.len()
            ))
        })?;
        let language = match req.language {
            Some(l) => l,
            None => {
                let state = cred
                    .credential_subject
                    .address
                    .as_ref()
                    .and_then(|a| a.address_region.as_deref());
                self.language_for_state(state)
            }
        };
        let template =
            tenant
                .templates
                .get(language)
                .ok_or_else(|| RenderError::UnknownLanguage {
                    tenant: req.tenant.to_string(),
                    language: language.to_string(),
                    available: list(tenant.templates.keys()),
                })?;
        let text = page::certificate_text(template, req.doses, req.current)
            .ok_or_else(|| RenderError::Request("the current credential has no evidence".into()))?;
        let mut painter = page::Painter::new(self, tenant, template);
        painter.certificate(&text, req.qr);
        let missing = painter.missing;
        let creation = creation_date(cred.issued_at());
        let info = DocInfo {
            title: &text.certificate_id,
            creation_date: &creation,
            page: (tenant.layout.page.width, tenant.layout.page.height),
        };
        let images = [&tenant.images[0], &tenant.images[1]];
        let pdf = pdf::write_document(
            painter.content,
            &self.fonts.fonts,
            &template.label_fonts,
            &images,
            &info,
        );
        Ok(Rendered {
            pdf,
            missing_glyphs: missing,
            language: language.to_string(),
        })
    }
}

/// `2021-05-01T10:20:30.000Z` -> `D:20210501102030Z` (digits only; anything else gives a
/// fixed date so output stays deterministic).
fn creation_date(iso: &str) -> String {
    let digits: String = iso.chars().filter(char::is_ascii_digit).take(14).collect();
    if digits.len() == 14 {
        format!("D:{digits}Z")
    } else {
        "D:19700101000000Z".into()
    }
}

fn all_labels(l: &Labels) -> [&str; 27] {
    [
        &l.title,
        &l.subtitle,
        &l.beneficiary_details,
        &l.vaccination_details,
        &l.name,
        &l.age,
        &l.gender,
        &l.identity,
        &l.beneficiary_id,
        &l.vaccine,
        &l.date,
        &l.batch,
        &l.manufacturer,
        &l.dose,
        &l.dose_of,
        &l.facility,
        &l.vaccinator,
        &l.certificate_id,
        &l.history,
        &l.history_dose,
        &l.history_vaccine,
        &l.history_date,
        &l.history_batch,
        &l.history_facility,
        &l.scan_qr,
        &l.signatory,
        &l.footer,
    ]
}

fn load_tenant(config_dir: &Path, dir: &Path, fonts: &FontSet) -> Result<Tenant, RenderError> {
    let layout_path = dir.join("layout.toml");
    let layout: LayoutConfig = load_toml(&layout_path)?;
    let colors = TenantColors {
        primary: parse_color(&layout.colors.primary, &layout_path)?,
        text: parse_color(&layout.colors.text, &layout_path)?,
        muted: parse_color(&layout.colors.muted, &layout_path)?,
        header_background: parse_color(&layout.colors.header_background, &layout_path)?,
    };
    let images = [
        load_png(&config_dir.join(&layout.logo.image))?,
        load_png(&config_dir.join(&layout.signature.image))?,
    ];
    let entries = std::fs::read_dir(dir).map_err(|source| RenderError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "toml")
                && p.file_stem().is_some_and(|s| s != "layout")
        })
        .collect();
    paths.sort();
    let mut templates = BTreeMap::new();
    for path in paths {
        let config: TemplateConfig = load_toml(&path)?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != config.language {
            return Err(RenderError::Config {
                path,
                message: format!(
                    "language {:?} does not match the file name",
                    config.language
                ),
            });
        }
        let primary = fonts
            .families
            .iter()
            .position(|f| *f == config.font_family)
            .ok_or_else(|| RenderError::Config {
                path: path.clone(),
                message: format!(
                    "font_family {:?} is not in fonts/fonts.toml (have: {})",
                    config.font_family,
                    list(fonts.families.iter())
                ),
            })?;
        let rtl = config.direction == Direction::Rtl;
        let mut shaped: [HashMap<String, ShapedLine>; 2] = [HashMap::new(), HashMap::new()];
        for (slot, weight) in shaped.iter_mut().zip([Weight::Regular, Weight::Bold]) {
            let style = ShapeStyle {
                primary,
                weight,
                rtl,
                fallback: true,
            };
            for label in all_labels(&config.labels) {
                slot.insert(label.to_string(), shape_line(fonts, label, style));
            }
        }
        let mut label_glyphs: BTreeMap<usize, BTreeMap<u16, String>> = BTreeMap::new();
        // Visit labels in file order, not HashMap order: the first text seen for a glyph
        // goes into ToUnicode, and the bytes must not change between processes.
        let ordered = shaped.iter().flat_map(|cache| {
            all_labels(&config.labels)
                .into_iter()
                .filter_map(move |l| cache.get(l))
        });
        for line in ordered {
            for run in &line.runs {
                let glyphs = label_glyphs.entry(run.font).or_default();
                for g in &run.glyphs {
                    let text = glyphs.entry(g.gid).or_default();
                    if text.is_empty() && g.text.1 > g.text.0 {
                        text.push_str(
                            run.text
                                .get(g.text.0 as usize..g.text.1 as usize)
                                .unwrap_or(""),
                        );
                    }
                }
            }
        }
        let label_fonts = label_glyphs
            .iter()
            .map(|(&id, glyphs)| (id, embed::prepare_font(&fonts.fonts[id], glyphs)))
            .collect();
        templates.insert(
            config.language.clone(),
            Template {
                config,
                primary,
                rtl,
                shaped,
                label_fonts,
            },
        );
    }
    Ok(Tenant {
        layout,
        colors,
        images,
        templates,
    })
}

/// Decodes a PNG once and deflates its RGB and alpha planes for embedding.
fn load_png(path: &Path) -> Result<PreparedImage, RenderError> {
    let bad = |message: String| RenderError::Image {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| RenderError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(e.to_string()))?;
    let pixels = &buf[..frame.buffer_size()];
    let (channels, has_alpha, gray) = match frame.color_type {
        png::ColorType::Rgb => (3, false, false),
        png::ColorType::Rgba => (4, true, false),
        png::ColorType::Grayscale => (1, false, true),
        png::ColorType::GrayscaleAlpha => (2, true, true),
        png::ColorType::Indexed => return Err(bad("indexed colour was not expanded".into())),
    };
    let mut rgb = Vec::with_capacity(pixels.len());
    let mut alpha = Vec::new();
    for px in pixels.chunks_exact(channels) {
        if gray {
            rgb.extend_from_slice(&[px[0], px[0], px[0]]);
        } else {
            rgb.extend_from_slice(&px[..3]);
        }
        if has_alpha {
            alpha.push(px[channels - 1]);
        }
    }
    Ok(PreparedImage {
        width: frame.width,
        height: frame.height,
        rgb: pdf::deflate_level(&rgb, 9),
        alpha: has_alpha.then(|| pdf::deflate_level(&alpha, 9)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_all_but_last_four_and_strips_did_prefix() {
        assert_eq!(
            mask_identity("did:in.gov.uidai.aadhaar:123456781234"),
            "XXXXXXXX1234"
        );
        assert_eq!(mask_identity("AB12"), "AB12");
        assert_eq!(mask_identity("did:x:"), "");
    }

    #[test]
    fn formats_dates_and_passes_through_garbage() {
        let months: Vec<String> = ["Jan", "Feb", "Mar", "Apr", "May"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            format_date("2021-05-03T10:00:00Z", "{dd} {month} {yyyy}", &months),
            "03 May 2021"
        );
        assert_eq!(format_date("2021-13-03", "{dd} {month}", &months), "03 13");
        assert_eq!(format_date("soon", "{dd}", &months), "soon");
    }

    #[test]
    fn renderer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Renderer>();
    }
}
