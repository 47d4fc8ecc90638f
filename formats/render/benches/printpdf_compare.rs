//! The same certificate page built with printpdf 0.12 (the project's reference PDF
//! library), to show what its per-document pipeline costs compared with divoc-render's
//! writer. Text is shaped with rustybuzz and emitted as glyph ids (`TextItem::GlyphIds`,
//! cluster text as the ToUnicode `cid`), the QR as merged-run rectangles, fonts subset by
//! printpdf on save; the two images are left out, which only flatters printpdf.
//!
//! `CARGO_TARGET_DIR=/tmp/target-render cargo bench -p divoc-render --features printpdf-compare --bench printpdf_compare`

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use printpdf::{
    Codepoint, Color, FontId, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};
use qrcode::{EcLevel, QrCode};

const LANGS: [(&str, &str, &str); 5] = [
    ("en", "NotoSans", "Ananya Kshatriya"),
    ("hi", "NotoSansDevanagari", "अनन्या क्षत्रिय"),
    ("ta", "NotoSansTamil", "முத்துலட்சுமி"),
    ("bn", "NotoSansBengali", "সৌমিত্র চট্টোপাধ্যায়"),
    ("ur", "NotoNaskhArabic", "محمد عمران"),
];

struct Face {
    bytes: Vec<u8>,
    parsed: ParsedFont,
}

fn load(dir: &Path, file: &str) -> Face {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let parsed = ParsedFont::from_bytes(&bytes, 0, &mut Vec::new()).unwrap();
    Face { bytes, parsed }
}

/// Shapes `text` and returns printpdf glyph items (advance differences as offsets).
fn shaped(face: &Face, text: &str, rtl: bool) -> Vec<Codepoint> {
    let rb = rustybuzz::Face::from_slice(&face.bytes, 0).unwrap();
    let mut buf = rustybuzz::UnicodeBuffer::new();
    buf.push_str(text);
    if rtl {
        buf.set_direction(rustybuzz::Direction::RightToLeft);
    }
    let out = rustybuzz::shape(&rb, &[], buf);
    let upem = f32::from(rb.units_per_em() as u16);
    out.glyph_infos()
        .iter()
        .zip(out.glyph_positions())
        .map(|(i, p)| {
            let default = rb
                .glyph_hor_advance(rustybuzz::ttf_parser::GlyphId(i.glyph_id as u16))
                .unwrap_or(0);
            let cluster = text
                .get(i.cluster as usize..)
                .and_then(|t| t.chars().next())
                .map(String::from);
            Codepoint {
                gid: i.glyph_id as u16,
                offset: (default as f32 - p.x_advance as f32) * 1000.0 / upem,
                cid: cluster,
            }
        })
        .collect()
}

fn text_ops(ops: &mut Vec<Op>, font: &FontId, glyphs: Vec<Codepoint>, x: f32, y: f32, size: f32) {
    ops.push(Op::StartTextSection);
    ops.push(Op::SetFont {
        font: PdfFontHandle::External(font.clone()),
        size: Pt(size),
    });
    ops.push(Op::SetTextCursor {
        pos: Point { x: Pt(x), y: Pt(y) },
    });
    ops.push(Op::ShowText {
        items: vec![TextItem::GlyphIds(glyphs)],
    });
    ops.push(Op::EndTextSection);
}

fn page(
    label_face: &Face,
    label_bold: &Face,
    latin: &Face,
    labels: &[String],
    name: &str,
    rtl: bool,
    qr: &QrCode,
) -> Vec<u8> {
    let mut doc = PdfDocument::new("certificate");
    let f_label = doc.add_font(&label_face.parsed);
    let f_bold = doc.add_font(&label_bold.parsed);
    let f_latin = doc.add_font(&latin.parsed);
    let mut ops = Vec::new();
    ops.push(Op::SetFillColor {
        col: Color::Rgb(Rgb {
            r: 0.1,
            g: 0.2,
            b: 0.5,
            icc_profile: None,
        }),
    });
    let mut y = 790.0;
    for (i, label) in labels.iter().enumerate() {
        let font = if i < 4 { &f_bold } else { &f_label };
        let face = if i < 4 { label_bold } else { label_face };
        text_ops(&mut ops, font, shaped(face, label, rtl), 40.0, y, 10.0);
        y -= 21.0;
        if y < 80.0 {
            y = 790.0;
        }
    }
    text_ops(
        &mut ops,
        &f_bold,
        shaped(label_bold, name, rtl),
        190.0,
        700.0,
        11.0,
    );
    for (i, value) in [
        "XXXXXXXX5678",
        "12345678901234",
        "COVISHIELD",
        "20-06-2021",
        "4121Z025",
        "Serum Institute of India",
        "Primary Health Centre Adyar",
        "Dr. Kavitha Raman",
        "281740953215",
    ]
    .iter()
    .enumerate()
    {
        text_ops(
            &mut ops,
            &f_latin,
            shaped(latin, value, false),
            190.0,
            680.0 - 21.0 * i as f32,
            10.5,
        );
    }
    let width = qr.width();
    let colors = qr.to_colors();
    let module = 170.0 / (width as f32 + 8.0);
    for row in 0..width {
        let mut col = 0;
        while col < width {
            if colors[row * width + col] == qrcode::Color::Dark {
                let start = col;
                while col < width && colors[row * width + col] == qrcode::Color::Dark {
                    col += 1;
                }
                ops.push(Op::DrawRectangle {
                    rectangle: Rect::from_xywh(
                        Pt(385.0 + (4 + start) as f32 * module),
                        Pt(638.0 - (4 + row) as f32 * module),
                        Pt((col - start) as f32 * module),
                        Pt(module),
                    ),
                });
            } else {
                col += 1;
            }
        }
    }
    let page = PdfPage::new(Mm(210.0), Mm(297.0), ops);
    doc.with_pages(vec![page])
        .save(&PdfSaveOptions::default(), &mut Vec::new())
}

fn bench(c: &mut Criterion) {
    let config = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"));
    let fonts = config.join("fonts");
    let latin = load(&fonts, "NotoSans-Bold.ttf");
    let qr = QrCode::with_error_correction_level(
        format!("{{\"pad\":\"{}\"}}", "x".repeat(700)).as_bytes(),
        EcLevel::M,
    )
    .unwrap();
    let mut group = c.benchmark_group("printpdf_one_thread");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    for (lang, family, name) in LANGS {
        let regular = load(&fonts, &format!("{family}-Regular.ttf"));
        let bold = load(&fonts, &format!("{family}-Bold.ttf"));
        let template: toml::Table =
            std::fs::read_to_string(config.join(format!("templates/default/{lang}.toml")))
                .unwrap()
                .parse()
                .unwrap();
        let labels: Vec<String> = template["labels"]
            .as_table()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let rtl = lang == "ur";
        let sample = page(&regular, &bold, &latin, &labels, name, rtl, &qr);
        std::fs::write(
            std::env::temp_dir().join(format!("printpdf-{lang}.pdf")),
            &sample,
        )
        .unwrap();
        group.bench_function(BenchmarkId::from_parameter(lang), |b| {
            b.iter(|| page(&regular, &bold, &latin, &labels, name, rtl, &qr))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
