//! Embedding a font subset: Type0 + CIDFontType2 + descriptor + FontFile2 + ToUnicode.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::fonts::Font;
use crate::pdf::{deflate, fnv1a, hex_u16, num, uint, Writer};

/// Six capital letters derived from the glyph set: the subset tag PDF requires.
fn subset_tag(font: &Font, gids: &BTreeSet<u16>) -> String {
    let mut h = fnv1a(font.name.as_bytes(), 0xcbf2_9ce4_8422_2325);
    for g in gids {
        h = fnv1a(&g.to_le_bytes(), h);
    }
    (0..6)
        .map(|i| char::from(b'A' + ((h >> (i * 8)) % 26) as u8))
        .collect()
}

/// A subset font ready to embed: everything except the object numbers.
pub struct PreparedFont {
    name: String,
    widths: Vec<u8>,
    descriptor: Vec<u8>,
    program: Vec<u8>,
    program_len: usize,
    to_unicode: Vec<u8>,
}

/// Subsets and compresses a font for the glyphs in `glyphs` (gid -> text).
pub fn prepare_font(font: &Font, glyphs: &BTreeMap<u16, String>) -> PreparedFont {
    let gids: BTreeSet<u16> = glyphs.keys().copied().collect();
    let name = format!("{}+{}", subset_tag(font, &gids), font.name);
    let scale = 1000.0 / font.units_per_em;
    let s = |v: i16| (f32::from(v) * scale).round() as i32;
    let mut widths = Vec::with_capacity(gids.len() * 6);
    let mut prev: Option<u16> = None;
    for &g in &gids {
        if prev.is_none_or(|p| p + 1 != g) {
            if prev.is_some() {
                widths.push(b']');
            }
            widths.push(b' ');
            uint(&mut widths, u64::from(g));
            widths.extend_from_slice(b" [");
        } else {
            widths.push(b' ');
        }
        num(&mut widths, font.advance_milli(g));
        prev = Some(g);
    }
    if prev.is_some() {
        widths.push(b']');
    }
    let descriptor = format!(
        "/Flags 4 /FontBBox [{} {} {} {}] /ItalicAngle 0 /Ascent {} /Descent {} /CapHeight {} /StemV 80",
        s(font.bbox[0]),
        s(font.bbox[1]),
        s(font.bbox[2]),
        s(font.bbox[3]),
        s(font.ascent),
        s(font.descent),
        s(font.cap_height),
    )
    .into_bytes();
    let raw = font.subset(&gids);
    PreparedFont {
        name,
        widths,
        descriptor,
        program: deflate(&raw),
        program_len: raw.len(),
        to_unicode: to_unicode_cmap(glyphs),
    }
}

pub(crate) fn write_font(w: &mut Writer, f: &PreparedFont, obj: usize) {
    let name = &f.name;
    w.begin(obj);
    let _ = write!(
        w.out,
        "<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H /DescendantFonts [{} 0 R] /ToUnicode {} 0 R >>\nendobj\n",
        obj + 1,
        obj + 4
    );
    w.begin(obj + 1);
    let _ = write!(
        w.out,
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {} 0 R /CIDToGIDMap /Identity /DW 0 /W [",
        obj + 2
    );
    w.out.extend_from_slice(&f.widths);
    w.out.extend_from_slice(b" ] >>\nendobj\n");
    w.begin(obj + 2);
    let _ = write!(w.out, "<< /Type /FontDescriptor /FontName /{name} ");
    w.out.extend_from_slice(&f.descriptor);
    let _ = write!(w.out, " /FontFile2 {} 0 R >>\nendobj\n", obj + 3);
    w.stream(obj + 3, &format!(" /Length1 {}", f.program_len), &f.program);
    // ToUnicode is small: stored uncompressed, a deflate call costs more than it saves.
    w.begin(obj + 4);
    let _ = write!(w.out, "<< /Length {} >>\nstream\n", f.to_unicode.len());
    w.out.extend_from_slice(&f.to_unicode);
    w.out.extend_from_slice(b"\nendstream\nendobj\n");
}

fn to_unicode_cmap(glyphs: &BTreeMap<u16, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + glyphs.len() * 16);
    out.extend_from_slice(
        b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let mapped: Vec<(&u16, &String)> = glyphs.iter().filter(|(_, t)| !t.is_empty()).collect();
    for chunk in mapped.chunks(100) {
        let _ = writeln!(out, "{} beginbfchar", chunk.len());
        for (gid, text) in chunk {
            out.push(b'<');
            hex_u16(&mut out, **gid);
            out.extend_from_slice(b"> <");
            for u in text.encode_utf16() {
                hex_u16(&mut out, u);
            }
            out.extend_from_slice(b">\n");
        }
        out.extend_from_slice(b"endbfchar\n");
    }
    out.extend_from_slice(b"endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    out
}
