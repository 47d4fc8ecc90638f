//! Independent checks with poppler-utils and zbar-tools: the text extracts as the original
//! strings, fonts are embedded subsets, no .notdef boxes are drawn, the QR decodes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use divoc_render::{RenderRequest, Renderer};
use unicode_normalization::UnicodeNormalization;

const IGNORE: &str = "needs poppler-utils/zbar-tools; tests/run-all.sh installs them";

fn tool(name: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name} ({e}); {IGNORE}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn normalize(s: &str) -> String {
    // poppler wraps right-to-left and embedded left-to-right text in bidi embedding
    // controls; they are formatting, not content.
    let visible: String = s
        .chars()
        .filter(|c| !matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .collect();
    let words: Vec<String> = visible
        .nfc()
        .collect::<String>()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // pdftotext -layout drops the space where right-to-left text meets digits or Latin
    // (a poppler reordering quirk), so such boundaries compare without the space.
    let mut out = String::new();
    for w in words {
        let joins = match (out.chars().last(), w.chars().next()) {
            (Some(a), Some(b)) => {
                is_rtl(a) != is_rtl(b) && (a.is_alphanumeric() && b.is_alphanumeric())
            }
            _ => true,
        };
        if !joins {
            out.push(' ');
        }
        out.push_str(&w);
    }
    out
}

fn is_rtl(c: char) -> bool {
    matches!(c, '\u{0590}'..='\u{08FF}' | '\u{FB1D}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}')
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("divoc-render-tests").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn render(r: &Renderer, lang: &str, name: &str) -> Vec<u8> {
    let doses = doses(name, "Kerala");
    let qr = qr();
    r.render(&RenderRequest {
        tenant: "default",
        language: Some(lang),
        doses: &doses,
        current: 0,
        qr: &qr,
    })
    .unwrap()
}

/// Renders page 1 at `dpi` and returns the PNG path.
fn rasterize(pdf: &Path, dpi: u32) -> PathBuf {
    rasterize_as(pdf, dpi, "")
}

fn rasterize_as(pdf: &Path, dpi: u32, suffix: &str) -> PathBuf {
    let stem = pdf.with_extension("");
    let prefix = PathBuf::from(format!("{}{suffix}", stem.display()));
    tool(
        "pdftoppm",
        &[
            "-r",
            &dpi.to_string(),
            "-png",
            "-singlefile",
            pdf.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    prefix.with_extension("png")
}

/// Grey levels of a PNG (any colour type), row-major.
fn load_gray(path: &Path) -> (usize, usize, Vec<u8>) {
    let mut dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let gray = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| {
            if channels >= 3 {
                ((u32::from(p[0]) * 3 + u32::from(p[1]) * 6 + u32::from(p[2])) / 10) as u8
            } else {
                p[0]
            }
        })
        .collect();
    (info.width as usize, info.height as usize, gray)
}

/// Finds .notdef boxes: connected dark components whose bounding box is a taller-than-wide
/// rectangle with a fully dark outline and a light interior (Noto's .notdef is a hollow
/// box). Letters never have all four corners and edges inked; the QR finder patterns are
/// square and are excluded by the aspect ratio.
fn notdef_boxes(width: usize, height: usize, gray: &[u8]) -> Vec<(usize, usize, usize, usize)> {
    // Any visible ink: the 1px outline of a small box is anti-aliased to mid grey.
    let dark = |x: usize, y: usize| gray[y * width + x] < 215;
    let mut label = vec![0u32; width * height];
    let mut found = Vec::new();
    let mut next = 1;
    for start in 0..width * height {
        if label[start] != 0 || !dark(start % width, start / width) {
            continue;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let mut stack = vec![start];
        let mut pixels = 0usize;
        label[start] = next;
        while let Some(p) = stack.pop() {
            let (x, y) = (p % width, p / width);
            pixels += 1;
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
            let neighbours = [
                (x.wrapping_sub(1), y),
                (x + 1, y),
                (x, y.wrapping_sub(1)),
                (x, y + 1),
            ];
            for (nx, ny) in neighbours {
                if nx < width && ny < height && label[ny * width + nx] == 0 && dark(nx, ny) {
                    label[ny * width + nx] = next;
                    stack.push(ny * width + nx);
                }
            }
        }
        let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
        next += 1;
        if w < 4 || h < 7 || h * 10 < w * 12 || h > w * 3 || h > 60 {
            continue;
        }
        let mine = |x: usize, y: usize| label[y * width + x] == next - 1;
        let edge: Vec<bool> = (x0..=x1)
            .flat_map(|x| [mine(x, y0), mine(x, y1)])
            .chain((y0..=y1).flat_map(|y| [mine(x0, y), mine(x1, y)]))
            .collect();
        let inked = edge.iter().filter(|&&b| b).count() * 100 / edge.len();
        let corners = [mine(x0, y0), mine(x1, y0), mine(x0, y1), mine(x1, y1)];
        let interior = (w - 2) * (h - 2);
        let outline_only = pixels * 100 < (w * h - interior + interior / 5) * 100 + 1;
        if inked >= 90 && corners.iter().all(|&c| c) && outline_only {
            found.push((x0, y0, w, h));
        }
    }
    found
}

fn labels(lang: &str) -> Vec<String> {
    let path = config_dir().join(format!("templates/default/{lang}.toml"));
    let doc: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    doc["labels"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, v)| !v.as_str().unwrap().contains('{'))
        .map(|(_, v)| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs poppler-utils/zbar-tools; tests/run-all.sh installs them"]
fn every_language_extracts_renders_and_scans() {
    let r = renderer();
    let dir = work_dir("pages");
    let pages = PathBuf::from("/tmp/render-pages");
    std::fs::create_dir_all(&pages).unwrap();
    for (lang, name) in NAMES {
        let pdf = dir.join(format!("certificate-{lang}.pdf"));
        std::fs::write(&pdf, render(&r, lang, name)).unwrap();

        let text = tool("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]).stdout;
        let text = normalize(&String::from_utf8(text).unwrap());
        let mut wanted = labels(lang);
        wanted.push(name.to_string());
        wanted.push("281740953215".to_string());
        wanted.push("XXXXXXXX5678".to_string());
        for w in wanted {
            assert!(
                text.contains(&normalize(&w)),
                "{lang}: {w:?} not in extracted text:\n{text}"
            );
        }

        let fonts = String::from_utf8(tool("pdffonts", &[pdf.to_str().unwrap()]).stdout).unwrap();
        let rows: Vec<&str> = fonts.lines().skip(2).collect();
        assert!(!rows.is_empty(), "{lang}: no fonts\n{fonts}");
        for row in rows {
            let cols: Vec<&str> = row.split_whitespace().collect();
            let (font_name, flags) = (cols[0], &cols[cols.len() - 5..cols.len() - 2]);
            let tag = font_name.split('+').next().unwrap();
            assert!(
                font_name.contains('+')
                    && tag.len() == 6
                    && tag.chars().all(|c| c.is_ascii_uppercase()),
                "{lang}: font {font_name} has no subset tag"
            );
            assert_eq!(
                flags,
                ["yes", "yes", "yes"],
                "{lang}: emb/sub/uni not all yes: {row}"
            );
        }

        let png = rasterize(&pdf, 100);
        let (w, h, gray) = load_gray(&png);
        let boxes = notdef_boxes(w, h, &gray);
        assert!(boxes.is_empty(), "{lang}: .notdef boxes at {boxes:?}");
        std::fs::copy(&png, pages.join(format!("certificate-{lang}.png"))).unwrap();

        // Scanned as a phone camera sees a print: 200 dpi.
        let scan = rasterize_as(&pdf, 200, "scan");
        let scanned = tool(
            "zbarimg",
            &[
                "--raw",
                "-q",
                "--oneshot",
                "-Sbinary",
                scan.to_str().unwrap(),
            ],
        )
        .stdout;
        assert!(
            scanned == qr_payload(),
            "{lang}: QR does not scan to the exact DIVOC ZIP payload"
        );
    }
}

#[test]
#[ignore = "needs poppler-utils/zbar-tools; tests/run-all.sh installs them"]
fn notdef_detector_flags_a_font_without_the_glyphs() {
    let mut r = renderer();
    r.set_font_fallback(false);
    let dir = work_dir("negative");
    let pdf = dir.join("notdef.pdf");
    std::fs::write(&pdf, render(&r, "en", "முத்துலட்சுமி")).unwrap();
    let png = rasterize(&pdf, 100);
    let (w, h, gray) = load_gray(&png);
    let boxes = notdef_boxes(w, h, &gray);
    assert!(
        boxes.len() >= 3,
        "detector missed the .notdef boxes: {boxes:?}"
    );
}

#[test]
#[ignore = "needs poppler-utils/zbar-tools; tests/run-all.sh installs them"]
fn names_in_any_script_extract_on_every_template() {
    let r = renderer();
    let dir = work_dir("mixed");
    for (lang, _) in NAMES {
        for (script, name) in NAMES {
            let pdf = dir.join(format!("{lang}-{script}.pdf"));
            std::fs::write(&pdf, render(&r, lang, name)).unwrap();
            let text = tool("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]).stdout;
            let mut text = normalize(&String::from_utf8(text).unwrap());
            let mut wanted = normalize(name);
            if lang == "ur" && script != "ur" {
                // poppler's reordering moves a combining mark that ends a left-to-right
                // word inside a right-to-left line (the Bengali nukta) to the start of the
                // word; the page itself is right (the pixel check below). Compare without
                // marks in that one situation.
                let strip = |s: &str| {
                    s.chars()
                        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
                        .collect::<String>()
                };
                text = strip(&text);
                wanted = strip(&wanted);
            }
            assert!(
                text.contains(&wanted),
                "{lang} certificate, {script} name {name:?} not in:\n{text}"
            );
            let png = rasterize(&pdf, 100);
            let (w, h, gray) = load_gray(&png);
            let boxes = notdef_boxes(w, h, &gray);
            assert!(
                boxes.is_empty(),
                "{lang} certificate, {script} name: .notdef boxes at {boxes:?}"
            );
        }
    }
}

#[test]
#[ignore = "needs poppler-utils/zbar-tools; tests/run-all.sh installs them"]
fn six_doses_fit_above_the_qr_and_all_extract() {
    let r = renderer();
    let dir = work_dir("boosters");
    let doses: Vec<_> = (1..=6)
        .map(|d| {
            credential(
                "Ananya Kshatriya",
                "Kerala",
                d,
                &format!("28174095320{d}"),
                &format!("2021-0{d}-1{d}"),
            )
        })
        .collect();
    let qr = qr();
    let pdf = dir.join("six.pdf");
    let bytes = r
        .render(&RenderRequest {
            tenant: "default",
            language: Some("en"),
            doses: &doses,
            current: 5,
            qr: &qr,
        })
        .unwrap();
    std::fs::write(&pdf, bytes).unwrap();
    let text = normalize(
        &String::from_utf8(tool("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]).stdout)
            .unwrap(),
    );
    for d in 1..=6 {
        let row = format!("{d} COVISHIELD 1{d} ");
        assert!(
            text.contains(&row) && text.contains(&format!("4121Z0{d}5")),
            "dose {d} row missing:\n{text}"
        );
    }
    let png = rasterize(&pdf, 100);
    std::fs::copy(&png, "/tmp/render-pages/certificate-en-six-doses.png").unwrap();
    let scan = rasterize_as(&pdf, 200, "scan");
    let scanned = tool(
        "zbarimg",
        &[
            "--raw",
            "-q",
            "--oneshot",
            "-Sbinary",
            scan.to_str().unwrap(),
        ],
    )
    .stdout;
    assert!(
        scanned == qr_payload(),
        "six doses: QR does not scan to the exact payload"
    );
}
