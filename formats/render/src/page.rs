//! The certificate page: what is printed (from the credentials) and where (from the layout).

use divoc_credential::credential::{Dose, Evidence};
use divoc_credential::VaccinationCredential;
use divoc_qr::ModuleMatrix;

use crate::config::Labels;
use crate::fonts::Weight;
use crate::pdf::Content;
use crate::shape::{shape_line, ShapeStyle, ShapedLine};
use crate::{Renderer, Template, Tenant};

/// Everything printed on a certificate, as display strings.
pub struct CertificateText {
    /// Name.
    pub name: String,
    /// Age.
    pub age: String,
    /// Gender (translated when the template knows it).
    pub gender: String,
    /// Identity with all but the last four characters masked.
    pub identity: String,
    /// refId / preEnrollmentCode.
    pub beneficiary_id: String,
    /// Vaccine.
    pub vaccine: String,
    /// Formatted date.
    pub date: String,
    /// Batch.
    pub batch: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// "x of y".
    pub dose: String,
    /// Facility name, district, state.
    pub facility: String,
    /// Vaccinator.
    pub vaccinator: String,
    /// Certificate id.
    pub certificate_id: String,
    /// One row per dose: dose, vaccine, date, batch, facility.
    pub history: Vec<[String; 5]>,
}

/// Masks an identity: the `did:...:` prefix is dropped and only the last four characters
/// stay readable (`XXXXXXXX1234`).
pub fn mask_identity(id: &str) -> String {
    let core = if id.starts_with("did:") {
        id.rsplit(':').next().unwrap_or("")
    } else {
        id
    };
    let n = core.chars().count();
    core.chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { 'X' } else { c })
        .collect()
}

fn dose_text(d: &Option<Dose>) -> String {
    match d {
        Some(Dose::Number(n)) => n.to_string(),
        Some(Dose::Text(t)) => t.clone(),
        None => String::new(),
    }
}

fn dose_number(e: &Evidence) -> u32 {
    match &e.dose {
        Some(Dose::Number(n)) => *n,
        Some(Dose::Text(t)) => t.trim().parse().unwrap_or(u32::MAX),
        None => u32::MAX,
    }
}

/// Formats an ISO date (`2021-05-01...`) with the template's pattern; anything else prints
/// as given.
pub fn format_date(raw: &str, pattern: &str, months: &[String]) -> String {
    let b = raw.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10))
    {
        return raw.to_string();
    }
    let month_index = raw[5..7].parse::<usize>().unwrap_or(0);
    let month = month_index
        .checked_sub(1)
        .and_then(|i| months.get(i))
        .map_or(&raw[5..7], String::as_str);
    pattern
        .replace("{yyyy}", &raw[0..4])
        .replace("{mm}", &raw[5..7])
        .replace("{dd}", &raw[8..10])
        .replace("{month}", month)
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// Collects the printed strings for dose `current` of `doses`.
pub fn certificate_text(
    template: &Template,
    doses: &[VaccinationCredential],
    current: usize,
) -> Option<CertificateText> {
    let cfg = &template.config;
    let cred = doses.get(current)?;
    let ev = cred.evidence.first()?;
    let subject = &cred.credential_subject;
    let date = |e: &Evidence| {
        format_date(
            e.date.as_deref().unwrap_or(""),
            &cfg.date_format,
            &cfg.months,
        )
    };
    let facility = ev.facility.as_ref().map_or(String::new(), |f| {
        let mut parts = vec![opt(&f.name)];
        if let Some(a) = &f.address {
            parts.push(opt(&a.district));
            parts.push(opt(&a.address_region));
        }
        parts.retain(|p| !p.trim().is_empty());
        parts.join(", ")
    });
    let gender = opt(&subject.gender);
    let mut rows: Vec<&Evidence> = doses.iter().filter_map(|c| c.evidence.first()).collect();
    rows.sort_by(|a, b| {
        (dose_number(a), a.date.as_deref().unwrap_or(""))
            .cmp(&(dose_number(b), b.date.as_deref().unwrap_or("")))
    });
    Some(CertificateText {
        name: opt(&subject.name),
        age: opt(&subject.age),
        gender: cfg.genders.get(&gender).cloned().unwrap_or(gender),
        identity: mask_identity(&subject.id),
        beneficiary_id: opt(&subject.ref_id),
        vaccine: opt(&ev.vaccine),
        date: date(ev),
        batch: opt(&ev.batch),
        manufacturer: opt(&ev.manufacturer),
        dose: cfg
            .labels
            .dose_of
            .replace("{x}", &dose_text(&ev.dose))
            .replace("{y}", &dose_text(&ev.total_doses)),
        facility,
        vaccinator: ev.verifier.as_ref().map_or(String::new(), |v| opt(&v.name)),
        certificate_id: opt(&ev.certificate_id),
        history: rows
            .iter()
            .map(|e| {
                [
                    dose_text(&e.dose),
                    opt(&e.vaccine),
                    date(e),
                    opt(&e.batch),
                    e.facility.as_ref().map_or(String::new(), |f| opt(&f.name)),
                ]
            })
            .collect(),
    })
}

/// Top of the signature block (image plus nothing above it).
fn s_top(layout: &crate::LayoutConfig) -> f32 {
    layout.signature.y + layout.signature.height
}

/// Horizontal placement of a line inside its box (in reading direction).
#[derive(Clone, Copy)]
enum Align {
    Start,
    Center,
}

/// Draws onto a content stream, mirroring x for right-to-left templates.
pub struct Painter<'r> {
    renderer: &'r Renderer,
    tenant: &'r Tenant,
    template: &'r Template,
    /// Stream being built.
    pub content: Content,
    /// .notdef glyphs emitted.
    pub missing: usize,
}

impl<'r> Painter<'r> {
    /// A painter for one page.
    pub fn new(renderer: &'r Renderer, tenant: &'r Tenant, template: &'r Template) -> Self {
        Painter {
            renderer,
            tenant,
            template,
            content: Content::new(),
            missing: 0,
        }
    }

    fn rtl(&self) -> bool {
        self.template.rtl
    }

    /// Left edge of a box given in left-to-right coordinates.
    fn mx(&self, x: f32, w: f32) -> f32 {
        if self.rtl() {
            self.tenant.layout.page.width - x - w
        } else {
            x
        }
    }

    fn shaped(&self, text: &str, weight: Weight) -> std::borrow::Cow<'r, ShapedLine> {
        if self.renderer.fallback {
            if let Some(line) = self.template.cache(weight).get(text) {
                return std::borrow::Cow::Borrowed(line);
            }
        }
        std::borrow::Cow::Owned(shape_line(
            &self.renderer.fonts,
            text,
            ShapeStyle {
                primary: self.template.primary,
                weight,
                rtl: self.rtl(),
                fallback: self.renderer.fallback,
            },
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        text: &str,
        weight: Weight,
        size: f32,
        x: f32,
        width: f32,
        y: f32,
        align: Align,
        color: [f32; 3],
    ) {
        if text.is_empty() {
            return;
        }
        let line = self.shaped(text, weight);
        let label_font = matches!(line, std::borrow::Cow::Borrowed(_));
        self.missing += line.missing;
        let natural = line.width * size / 1000.0;
        // Shrink rather than overflow into the neighbouring column.
        let size = if natural > width && natural > 0.0 {
            size * width / natural
        } else {
            size
        };
        let w = line.width * size / 1000.0;
        let left = self.mx(x, width);
        let start = match (align, self.rtl()) {
            (Align::Center, _) => left + (width - w) / 2.0,
            (Align::Start, false) => left,
            (Align::Start, true) => left + width - w,
        };
        self.content.fill_color(color);
        self.content.runs(
            &self.renderer.fonts.fonts,
            &line.runs,
            start,
            y,
            size,
            label_font,
        );
    }

    fn bar(&mut self, x: f32, y: f32, w: f32, h: f32, color: [f32; 3]) {
        self.content.fill_color(color);
        let left = self.mx(x, w);
        self.content.rect(left, y, w, h);
        self.content.fill();
    }

    /// Draws the whole certificate.
    pub fn certificate(&mut self, t: &CertificateText, qr: &ModuleMatrix) {
        let layout = &self.tenant.layout;
        let colors = self.tenant.colors;
        let labels: &Labels = &self.template.config.labels;
        let page_w = layout.page.width;

        // Header.
        let logo = &layout.logo;
        self.content.image(
            0,
            self.mx(logo.x, logo.width),
            logo.y,
            logo.width,
            logo.height,
        );
        let title = layout.title;
        let margin = layout.details.x;
        let inner = page_w - 2.0 * margin;
        self.text(
            &labels.title,
            Weight::Bold,
            title.size,
            margin + logo.width + 10.0,
            inner - 2.0 * (logo.width + 10.0),
            title.y,
            Align::Center,
            colors.primary,
        );
        self.text(
            &labels.subtitle,
            Weight::Regular,
            title.subtitle_size,
            margin + logo.width + 10.0,
            inner - 2.0 * (logo.width + 10.0),
            title.subtitle_y,
            Align::Center,
            colors.muted,
        );
        self.bar(margin, title.rule_y, inner, 1.5, colors.primary);

        // Details.
        let d = layout.details;
        let mut y = d.top;
        let value_x = d.x + d.label_width;
        let rows_a: [(&str, &str); 5] = [
            (&labels.name, &t.name),
            (&labels.age, &t.age),
            (&labels.gender, &t.gender),
            (&labels.identity, &t.identity),
            (&labels.beneficiary_id, &t.beneficiary_id),
        ];
        let rows_b: [(&str, &str); 8] = [
            (&labels.vaccine, &t.vaccine),
            (&labels.date, &t.date),
            (&labels.batch, &t.batch),
            (&labels.manufacturer, &t.manufacturer),
            (&labels.dose, &t.dose),
            (&labels.facility, &t.facility),
            (&labels.vaccinator, &t.vaccinator),
            (&labels.certificate_id, &t.certificate_id),
        ];
        for (heading, rows) in [
            (&labels.beneficiary_details, &rows_a[..]),
            (&labels.vaccination_details, &rows_b[..]),
        ] {
            self.text(
                heading,
                Weight::Bold,
                d.heading_size,
                d.x,
                d.label_width + d.value_width,
                y,
                Align::Start,
                colors.primary,
            );
            y -= d.row_height;
            for (label, value) in rows {
                self.text(
                    label,
                    Weight::Regular,
                    d.label_size,
                    d.x,
                    d.label_width - 8.0,
                    y,
                    Align::Start,
                    colors.muted,
                );
                self.text(
                    value,
                    Weight::Bold,
                    d.value_size,
                    value_x,
                    d.value_width,
                    y,
                    Align::Start,
                    colors.text,
                );
                y -= d.row_height;
            }
            y -= d.row_height * 0.3;
        }

        // QR: a 1-bit image mask inside a 4-module quiet zone.
        let q = layout.qr;
        let width = qr.width;
        let module = q.size / (width as f32 + 8.0);
        let qx = self.mx(q.x, q.size) + 4.0 * module;
        let qy = q.y + 4.0 * module;
        self.content.fill_color([0.0, 0.0, 0.0]);
        let mask = crate::pdf::QrMask::new(width, |x, y| qr.is_dark(x, y));
        self.content.qr(mask, qx, qy, module * width as f32);
        self.text(
            &labels.scan_qr,
            Weight::Regular,
            q.caption_size,
            q.x,
            q.caption_width,
            q.y - q.caption_size,
            Align::Start,
            colors.muted,
        );

        // History table.
        let h = &layout.history;
        let total: f32 = h.columns.iter().sum();
        self.text(
            &labels.history,
            Weight::Bold,
            d.heading_size,
            h.x,
            total,
            h.top,
            Align::Start,
            colors.primary,
        );
        let header_y = h.top - h.row_height;
        self.bar(
            h.x,
            header_y - h.row_height * 0.35,
            total,
            h.row_height,
            colors.header_background,
        );
        let headers = [
            labels.history_dose.as_str(),
            labels.history_vaccine.as_str(),
            labels.history_date.as_str(),
            labels.history_batch.as_str(),
            labels.history_facility.as_str(),
        ];
        let columns = h.columns;
        let mut cell_x = [0.0f32; 5];
        let mut acc = h.x;
        for (i, w) in columns.iter().enumerate() {
            cell_x[i] = acc;
            acc += w;
        }
        for (i, head) in headers.iter().enumerate() {
            self.text(
                head,
                Weight::Bold,
                h.size,
                cell_x[i] + 4.0,
                columns[i] - 8.0,
                header_y,
                Align::Start,
                colors.primary,
            );
        }
        // Many doses (boosters) must not run into the QR and signature below: squeeze the
        // rows into the space left instead.
        let floor = (q.y + q.size).max(s_top(layout)) + 6.0;
        let room = (header_y - h.row_height * 0.35 - floor).max(0.0);
        let rows = t.history.len().max(1) as f32;
        let row_height = h.row_height.min(room / rows);
        let row_size = h.size * (row_height / h.row_height).max(0.3);
        let first_row_y = header_y - h.row_height;
        for (n, row) in t.history.iter().enumerate() {
            let row_y = first_row_y - row_height * n as f32;
            for (i, cell) in row.iter().enumerate() {
                self.text(
                    cell,
                    Weight::Regular,
                    row_size,
                    cell_x[i] + 4.0,
                    columns[i] - 8.0,
                    row_y,
                    Align::Start,
                    colors.text,
                );
            }
            self.bar(h.x, row_y - row_height * 0.35, total, 0.5, colors.muted);
        }

        // Signature and footer.
        let s = &layout.signature;
        self.content
            .image(1, self.mx(s.x, s.width), s.y, s.width, s.height);
        self.text(
            &labels.signatory,
            Weight::Regular,
            layout.footer.size + 1.0,
            s.x - 20.0,
            s.width + 40.0,
            s.y - 12.0,
            Align::Center,
            colors.muted,
        );
        self.bar(margin, layout.footer.y + 14.0, inner, 0.75, colors.primary);
        self.text(
            &labels.footer,
            Weight::Regular,
            layout.footer.size,
            margin,
            inner,
            layout.footer.y,
            Align::Center,
            colors.muted,
        );
    }
}
