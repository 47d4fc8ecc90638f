//! A lean PDF 1.7 writer for one-page certificates: content stream building with shaped
//! glyph runs, Type0/CIDFontType2 font embedding (subset, ToUnicode, `/W`), images.
//!
//! Why not printpdf's serializer: it re-subsets every font through allsorts and builds an
//! lopdf object graph per document; this writer copies prepared bytes, which is what makes
//! thousands of PDFs per second possible (see the bench and the crate docs).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::embed::{prepare_font, write_font, PreparedFont};
use crate::fonts::{Font, FontId};
use crate::shape::{Glyph, ShapedRun};

/// Writes a non-negative integer (hot path: no `fmt` machinery).
pub fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes `v` with at most two decimals (deterministic, no exponent).
pub fn num(out: &mut Vec<u8>, v: f32) {
    let scaled = (f64::from(v) * 100.0).round() as i64;
    if scaled < 0 {
        out.push(b'-');
    }
    let a = scaled.unsigned_abs();
    uint(out, a / 100);
    let frac = a % 100;
    if frac != 0 {
        out.push(b'.');
        out.push(b'0' + (frac / 10) as u8);
        if frac % 10 != 0 {
            out.push(b'0' + (frac % 10) as u8);
        }
    }
}

pub(crate) fn hex_u16(out: &mut Vec<u8>, v: u16) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((v >> shift) & 0xF)]);
    }
}

/// `<FEFF...>`: a PDF text string in UTF-16BE.
pub fn utf16_hex(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(b"<FEFF");
    for u in s.encode_utf16() {
        hex_u16(out, u);
    }
    out.push(b'>');
}

/// Glyphs a document uses per font, with the text each stands for (ToUnicode).
#[derive(Default)]
pub struct FontUsage {
    /// font -> glyph -> text (first cluster text seen wins), for per-document subsets.
    pub glyphs: BTreeMap<FontId, BTreeMap<u16, String>>,
    /// Fonts whose template-wide label subset (`/S<id>`) the page uses.
    pub static_used: BTreeSet<FontId>,
}

/// A QR symbol as a 1-bit image mask: one sample per module, rows top to bottom, each row
/// padded to a whole byte; 0 = dark (painted in the fill colour), 1 = light.
pub struct QrMask {
    /// Modules per side.
    pub width: usize,
    /// Packed samples.
    pub bits: Vec<u8>,
}

impl QrMask {
    /// Packs a module matrix.
    pub fn new(width: usize, is_dark: impl Fn(usize, usize) -> bool) -> QrMask {
        let row_bytes = width.div_ceil(8);
        let mut bits = vec![0xffu8; row_bytes * width];
        for y in 0..width {
            for x in 0..width {
                if is_dark(x, y) {
                    bits[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
                }
            }
        }
        QrMask { width, bits }
    }
}

/// A page content stream under construction.
pub struct Content {
    /// Raw operators.
    pub ops: Vec<u8>,
    /// Fonts used.
    pub usage: FontUsage,
    /// The QR drawn with [`Content::qr`], written as the page's `/QR` image mask.
    pub qr: Option<QrMask>,
}

impl Content {
    /// Empty stream.
    pub fn new() -> Content {
        Content {
            ops: Vec::with_capacity(32 * 1024),
            usage: FontUsage::default(),
            qr: None,
        }
    }

    /// Sets the fill colour.
    pub fn fill_color(&mut self, c: [f32; 3]) {
        for v in c {
            num(&mut self.ops, v);
            self.ops.push(b' ');
        }
        self.ops.extend_from_slice(b"rg\n");
    }

    /// Adds a rectangle to the current path.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32) {
        for v in [x, y, w, h] {
            num(&mut self.ops, v);
            self.ops.push(b' ');
        }
        self.ops.extend_from_slice(b"re\n");
    }

    /// Fills the current path.
    pub fn fill(&mut self) {
        self.ops.extend_from_slice(b"f\n");
    }

    /// Draws a QR symbol as a 1-bit image mask filling a `size` x `size` box at (x, y), in the
    /// current fill colour. An image mask is ~1.7 KB for a version-25 symbol against ~35 KB of
    /// rectangle operators to compress, and viewers scale it without smoothing
    /// (`/Interpolate false`), so modules stay crisp at any zoom.
    pub fn qr(&mut self, mask: QrMask, x: f32, y: f32, size: f32) {
        self.ops.extend_from_slice(b"q ");
        for v in [size, 0.0, 0.0, size, x, y] {
            num(&mut self.ops, v);
            self.ops.push(b' ');
        }
        self.ops.extend_from_slice(b"cm /QR Do Q\n");
        self.qr = Some(mask);
    }

    /// Draws image resource `/Im{index}` into a box.
    pub fn image(&mut self, index: usize, x: f32, y: f32, w: f32, h: f32) {
        self.ops.extend_from_slice(b"q ");
        for v in [w, 0.0, 0.0, h, x, y] {
            num(&mut self.ops, v);
            self.ops.push(b' ');
        }
        let _ = writeln!(self.ops, "cm /Im{index} Do Q");
    }

    /// Draws shaped runs starting at pen position (x, y) with the given size. Each word is
    /// wrapped in a `/Span` with `/ActualText`, so extraction yields the logical text even
    /// where shaping reordered or fused characters; spaces stay outside the spans as real
    /// glyphs so extractors still see word gaps where they are.
    /// `label_font` selects the template's prepared label subset (`/S<id>`, built at load
    /// from the same shaped labels) instead of the per-document subset (`/F<id>`).
    pub fn runs(
        &mut self,
        fonts: &[Font],
        runs: &[ShapedRun],
        x: f32,
        y: f32,
        size: f32,
        label_font: bool,
    ) {
        let mut pen = x;
        self.ops.extend_from_slice(b"BT\n");
        for run in runs {
            let font = &fonts[run.font];
            if label_font {
                self.usage.static_used.insert(run.font);
                self.ops.extend_from_slice(b"/S");
            } else {
                self.ops.extend_from_slice(b"/F");
            }
            uint(&mut self.ops, run.font as u64);
            self.ops.push(b' ');
            num(&mut self.ops, size);
            self.ops.extend_from_slice(b" Tf 1 0 0 1 ");
            num(&mut self.ops, pen);
            self.ops.push(b' ');
            num(&mut self.ops, y);
            self.ops.extend_from_slice(b" Tm\n");
            let is_space = |g: &Glyph| {
                g.text.1 > g.text.0
                    && run
                        .text
                        .get(g.text.0 as usize..g.text.1 as usize)
                        .is_some_and(|t| t.chars().all(char::is_whitespace))
            };
            let mut rise = 0.0f32;
            let mut i = 0;
            while i < run.glyphs.len() {
                let space = is_space(&run.glyphs[i]);
                let mut j = i + 1;
                while j < run.glyphs.len() && is_space(&run.glyphs[j]) == space {
                    j += 1;
                }
                let segment = &run.glyphs[i..j];
                if space {
                    self.show(font, run, segment, size, &mut rise, label_font);
                } else {
                    let from = segment
                        .iter()
                        .filter(|g| g.text.1 > g.text.0)
                        .map(|g| g.text.0)
                        .min()
                        .unwrap_or(0);
                    let to = segment.iter().map(|g| g.text.1).max().unwrap_or(0);
                    let word = run.text.get(from as usize..to as usize).unwrap_or("");
                    self.ops.extend_from_slice(b"/Span <</ActualText ");
                    if run.rtl {
                        // poppler spreads ActualText characters left to right over the span
                        // and then applies its visual-to-logical bidi reordering, so a
                        // right-to-left word carries its characters in visual order.
                        let visual: String = word.chars().rev().collect();
                        utf16_hex(&mut self.ops, &visual);
                    } else {
                        utf16_hex(&mut self.ops, word);
                    }
                    self.ops.extend_from_slice(b">> BDC ");
                    self.show(font, run, segment, size, &mut rise, label_font);
                    self.ops.extend_from_slice(b"EMC\n");
                }
                i = j;
            }
            if rise != 0.0 {
                self.ops.extend_from_slice(b"0 Ts\n");
            }
            pen += run.width * size / 1000.0;
        }
        self.ops.extend_from_slice(b"ET\n");
    }

    /// One `TJ` (split where the text rise changes) placing glyphs exactly as shaped:
    /// offsets and advances that differ from the font's own widths become adjustments.
    fn show(
        &mut self,
        font: &Font,
        run: &ShapedRun,
        glyphs: &[Glyph],
        size: f32,
        rise: &mut f32,
        label_font: bool,
    ) {
        let mut scratch = BTreeMap::new();
        let used = if label_font {
            &mut scratch
        } else {
            self.usage.glyphs.entry(run.font).or_default()
        };
        self.ops.push(b'[');
        let mut in_hex = false;
        for g in glyphs {
            if (g.y_offset - *rise).abs() > 0.01 {
                if in_hex {
                    self.ops.push(b'>');
                    in_hex = false;
                }
                self.ops.extend_from_slice(b"] TJ ");
                num(&mut self.ops, g.y_offset * size / 1000.0);
                self.ops.extend_from_slice(b" Ts [");
                *rise = g.y_offset;
            }
            if g.x_offset.abs() > 0.01 {
                adjust(&mut self.ops, &mut in_hex, -g.x_offset);
            }
            if !in_hex {
                self.ops.push(b'<');
                in_hex = true;
            }
            hex_u16(&mut self.ops, g.gid);
            let extra = g.advance - g.x_offset - font.advance_milli(g.gid);
            if extra.abs() > 0.01 {
                adjust(&mut self.ops, &mut in_hex, -extra);
            }
            let entry = used.entry(g.gid).or_default();
            if entry.is_empty() && g.text.1 > g.text.0 {
                if let Some(t) = run.text.get(g.text.0 as usize..g.text.1 as usize) {
                    entry.push_str(t);
                }
            }
        }
        if in_hex {
            self.ops.push(b'>');
        }
        self.ops.extend_from_slice(b"] TJ\n");
    }
}

impl Default for Content {
    fn default() -> Self {
        Content::new()
    }
}

fn adjust(ops: &mut Vec<u8>, in_hex: &mut bool, amount: f32) {
    if *in_hex {
        ops.push(b'>');
        *in_hex = false;
    }
    ops.push(b' ');
    num(ops, amount);
    ops.push(b' ');
}

/// An image decoded and compressed once at load.
pub struct PreparedImage {
    /// Pixels wide.
    pub width: u32,
    /// Pixels high.
    pub height: u32,
    /// Deflated RGB samples.
    pub rgb: Vec<u8>,
    /// Deflated alpha samples, when the PNG has transparency.
    pub alpha: Option<Vec<u8>>,
}

/// Document metadata.
pub struct DocInfo<'a> {
    /// Title.
    pub title: &'a str,
    /// `D:YYYYMMDDHHmmSSZ` from the credential, never the clock.
    pub creation_date: &'a str,
    /// Page size.
    pub page: (f32, f32),
}

pub(crate) struct Writer {
    pub(crate) out: Vec<u8>,
    offsets: Vec<usize>,
}

impl Writer {
    pub(crate) fn begin(&mut self, id: usize) {
        if self.offsets.len() <= id {
            self.offsets.resize(id + 1, 0);
        }
        self.offsets[id] = self.out.len();
        let _ = writeln!(self.out, "{id} 0 obj");
    }

    pub(crate) fn stream(&mut self, id: usize, dict_extra: &str, data: &[u8]) {
        self.begin(id);
        let _ = write!(
            self.out,
            "<< /Length {} /Filter /FlateDecode{dict_extra} >>\nstream\n",
            data.len()
        );
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\nendstream\nendobj\n");
    }
}

/// Deflates (zlib format) with the fastest level: certificates are small and speed
/// matters more than the last bytes. The compressor (zlib-rs, several times faster than
/// miniz here) is kept per thread: allocating its ~300 KB of tables per stream cost more
/// than compressing.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::new(1), true));
    }
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 128);
        loop {
            let consumed = c.total_in() as usize;
            let status = c.compress_vec(
                &data[consumed.min(data.len())..],
                &mut out,
                flate2::FlushCompress::Finish,
            );
            match status {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => out.reserve(out.capacity().max(256)),
                // Only on a corrupted stream state; fall back to the one-shot encoder.
                Err(_) => return deflate_level(data, 1),
            }
        }
        out
    })
}

/// Deflates at a given level (0-9) with a fresh encoder.
pub fn deflate_level(data: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Assembles the whole PDF.
pub fn write_document(
    content: Content,
    fonts: &[Font],
    static_fonts: &BTreeMap<FontId, PreparedFont>,
    images: &[&PreparedImage],
    info: &DocInfo,
) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(120 * 1024),
        offsets: vec![0],
    };
    w.out.extend_from_slice(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n");
    // Fixed ids: 1 catalog, 2 pages, 3 page, 4 contents, 5 info; then fonts, images.
    let mut next = 6;
    let dynamic: Vec<(FontId, PreparedFont)> = content
        .usage
        .glyphs
        .iter()
        .filter(|(_, g)| !g.is_empty())
        .map(|(&id, g)| (id, prepare_font(&fonts[id], g)))
        .collect();
    // (resource name, font, object number)
    let mut font_refs: Vec<(String, &PreparedFont, usize)> = Vec::new();
    for id in &content.usage.static_used {
        if let Some(f) = static_fonts.get(id) {
            font_refs.push((format!("S{id}"), f, next));
            next += 5;
        }
    }
    for (id, f) in &dynamic {
        font_refs.push((format!("F{id}"), f, next));
        next += 5;
    }
    let mut image_refs = Vec::new();
    for img in images {
        image_refs.push(next);
        next += if img.alpha.is_some() { 2 } else { 1 };
    }
    let qr_ref = content.qr.as_ref().map(|_| next);

    w.begin(1);
    w.out
        .extend_from_slice(b"<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    w.begin(2);
    w.out
        .extend_from_slice(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
    w.begin(3);
    w.out
        .extend_from_slice(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ");
    num(&mut w.out, info.page.0);
    w.out.push(b' ');
    num(&mut w.out, info.page.1);
    w.out.extend_from_slice(b"] /Resources << /Font <<");
    for (resource, _, obj) in &font_refs {
        let _ = write!(w.out, " /{resource} {obj} 0 R");
    }
    w.out.extend_from_slice(b" >> /XObject <<");
    for (i, obj) in image_refs.iter().enumerate() {
        let _ = write!(w.out, " /Im{i} {obj} 0 R");
    }
    if let Some(obj) = qr_ref {
        let _ = write!(w.out, " /QR {obj} 0 R");
    }
    w.out
        .extend_from_slice(b" >> >> /Contents 4 0 R >>\nendobj\n");
    let compressed = deflate(&content.ops);
    w.stream(4, "", &compressed);
    w.begin(5);
    w.out
        .extend_from_slice(b"<< /Producer (divoc-render) /Title ");
    utf16_hex(&mut w.out, info.title);
    let _ = write!(
        w.out,
        " /CreationDate ({}) >>\nendobj\n",
        info.creation_date
    );

    for (_, f, obj) in &font_refs {
        write_font(&mut w, f, *obj);
    }
    for (img, &obj) in images.iter().zip(&image_refs) {
        w.begin(obj);
        let _ = write!(
            w.out,
            "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode /Length {}",
            img.width,
            img.height,
            img.rgb.len()
        );
        if img.alpha.is_some() {
            let _ = write!(w.out, " /SMask {} 0 R", obj + 1);
        }
        w.out.extend_from_slice(b" >>\nstream\n");
        w.out.extend_from_slice(&img.rgb);
        w.out.extend_from_slice(b"\nendstream\nendobj\n");
        if let Some(alpha) = &img.alpha {
            w.begin(obj + 1);
            let _ = write!(
                w.out,
                "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length {} >>\nstream\n",
                img.width,
                img.height,
                alpha.len()
            );
            w.out.extend_from_slice(alpha);
            w.out.extend_from_slice(b"\nendstream\nendobj\n");
        }
    }

    if let (Some(mask), Some(obj)) = (&content.qr, qr_ref) {
        w.begin(obj);
        let _ = write!(
            w.out,
            "<< /Type /XObject /Subtype /Image /Width {0} /Height {0} /ImageMask true /BitsPerComponent 1 /Interpolate false /Length {1} >>\nstream\n",
            mask.width,
            mask.bits.len()
        );
        w.out.extend_from_slice(&mask.bits);
        w.out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    let xref = w.out.len();
    let count = w.offsets.len();
    let _ = write!(w.out, "xref\n0 {count}\n0000000000 65535 f \n");
    for off in &w.offsets[1..] {
        let _ = writeln!(w.out, "{off:010} 00000 n ");
    }
    // The document id is a hash of the content, so equal input gives equal bytes.
    let id_a = fnv1a(&compressed, 0xcbf2_9ce4_8422_2325);
    let id_b = fnv1a(info.title.as_bytes(), id_a);
    let _ = write!(
        w.out,
        "trailer\n<< /Size {count} /Root 1 0 R /Info 5 0 R /ID [<{id_a:016X}{id_b:016X}> <{id_a:016X}{id_b:016X}>] >>\nstartxref\n{xref}\n%%EOF\n"
    );
    w.out
}

pub(crate) fn fnv1a(data: &[u8], seed: u64) -> u64 {
    data.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}
