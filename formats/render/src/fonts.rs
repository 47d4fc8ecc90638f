//! Fonts: parsed once at load (shaping face, metrics, glyph offsets), subset per PDF.
//!
//! The subsetter keeps glyph ids unchanged (unused glyphs become empty), so shaped glyph
//! ids go into the content stream as-is with `/CIDToGIDMap /Identity`; only the `glyf`,
//! `loca`, `hmtx` bytes of the glyphs a PDF uses are copied, which is a few microseconds.

use std::collections::BTreeSet;
use std::path::Path;

use self_cell::self_cell;

use crate::error::RenderError;

self_cell!(
    /// The font bytes together with the rustybuzz face that borrows them.
    struct FaceCell {
        owner: Vec<u8>,
        #[covariant]
        dependent: Face,
    }
);

/// Newtype so self_cell can name the borrowed face type.
struct Face<'a>(rustybuzz::Face<'a>);

/// Regular or bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weight {
    /// Regular.
    Regular,
    /// Bold.
    Bold,
}

/// Index of a loaded font: `family * 2 + weight`.
pub type FontId = usize;

/// One loaded TrueType font.
pub struct Font {
    /// PostScript-ish base name (file stem), used in `/BaseFont`.
    pub name: String,
    cell: FaceCell,
    /// Units per em.
    pub units_per_em: f32,
    /// Ascender, descender, cap height in font units.
    pub ascent: i16,
    /// Descender (negative).
    pub descent: i16,
    /// Cap height.
    pub cap_height: i16,
    /// Bounding box.
    pub bbox: [i16; 4],
    tables: Vec<Table>,
    /// Glyph outlines with TrueType hinting instructions removed (see [`strip_hinting`]):
    /// glyph `g` is `glyf[glyph_offsets[g]..glyph_offsets[g + 1]]`.
    glyf: Vec<u8>,
    glyph_offsets: Vec<u32>,
    hmtx: (usize, usize),
    number_of_h_metrics: u16,
    /// Shape plans by (direction, script): compiling a plan costs more than shaping a short
    /// string, so each combination is compiled once and shared.
    plans: PlanCache,
}

type PlanKey = (rustybuzz::Direction, rustybuzz::Script);
type PlanCache = std::sync::RwLock<Vec<(PlanKey, std::sync::Arc<rustybuzz::ShapePlan>)>>;

#[derive(Clone, Copy)]
struct Table {
    tag: [u8; 4],
    offset: usize,
    len: usize,
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl Font {
    /// Reads and parses a TrueType font file.
    pub fn load(path: &Path) -> Result<Font, RenderError> {
        let data = std::fs::read(path).map_err(|source| RenderError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: &str| RenderError::Font {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        let tables = parse_table_directory(&data).ok_or_else(|| bad("bad table directory"))?;
        let find = |tag: &[u8; 4]| tables.iter().find(|t| &t.tag == tag).copied();
        let head = find(b"head").ok_or_else(|| bad("no head table"))?;
        let hhea = find(b"hhea").ok_or_else(|| bad("no hhea table"))?;
        let maxp = find(b"maxp").ok_or_else(|| bad("no maxp table"))?;
        let loca = find(b"loca")
            .ok_or_else(|| bad("no loca table (only TrueType outlines are supported)"))?;
        let glyf = find(b"glyf")
            .ok_or_else(|| bad("no glyf table (only TrueType outlines are supported)"))?;
        let hmtx = find(b"hmtx").ok_or_else(|| bad("no hmtx table"))?;
        let num_glyphs = be16(&data, maxp.offset + 4).ok_or_else(|| bad("short maxp"))? as usize;
        let long_loca = be16(&data, head.offset + 50).ok_or_else(|| bad("short head"))? == 1;
        let mut glyph_offsets = Vec::with_capacity(num_glyphs + 1);
        for g in 0..=num_glyphs {
            let off = if long_loca {
                be32(&data, loca.offset + g * 4)
            } else {
                be16(&data, loca.offset + g * 2).map(|v| u32::from(v) * 2)
            }
            .ok_or_else(|| bad("short loca"))?;
            if off as usize > glyf.len {
                return Err(bad("loca points past glyf"));
            }
            glyph_offsets.push(off);
        }
        // Strip hinting once here, so per-PDF subsets copy only outlines (the autohinter's
        // fpgm alone is 3.6 KB per font and every glyph carries instructions).
        let mut stripped = Vec::with_capacity(glyf.len);
        let mut stripped_offsets = Vec::with_capacity(glyph_offsets.len());
        for g in 0..num_glyphs {
            stripped_offsets.push(stripped.len() as u32);
            let (a, b) = (glyph_offsets[g] as usize, glyph_offsets[g + 1] as usize);
            if a < b {
                let bytes = &data[glyf.offset + a..glyf.offset + b];
                stripped.extend_from_slice(&strip_hinting(bytes));
                while stripped.len() % 4 != 0 {
                    stripped.push(0);
                }
            }
        }
        stripped_offsets.push(stripped.len() as u32);
        let glyph_offsets = stripped_offsets;
        let number_of_h_metrics = be16(&data, hhea.offset + 34).ok_or_else(|| bad("short hhea"))?;
        if number_of_h_metrics == 0 || usize::from(number_of_h_metrics) * 4 > hmtx.len {
            return Err(bad("bad numberOfHMetrics"));
        }
        let cell = FaceCell::try_new(data, |d| {
            rustybuzz::Face::from_slice(d, 0)
                .map(Face)
                .ok_or_else(|| bad("rustybuzz cannot parse it"))
        })?;
        let face = &cell.borrow_dependent().0;
        let bb = face.global_bounding_box();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("Font")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        Ok(Font {
            name,
            units_per_em: face.units_per_em() as f32,
            ascent: face.ascender(),
            descent: face.descender(),
            cap_height: face.capital_height().unwrap_or(face.ascender()),
            bbox: [bb.x_min, bb.y_min, bb.x_max, bb.y_max],
            tables,
            glyf: stripped,
            glyph_offsets,
            hmtx: (hmtx.offset, hmtx.len),
            number_of_h_metrics,
            plans: PlanCache::default(),
            cell,
        })
    }

    /// The shaping face.
    pub fn face(&self) -> &rustybuzz::Face<'_> {
        &self.cell.borrow_dependent().0
    }

    /// Shapes a buffer (direction set, other properties guessed) with a cached plan.
    pub fn shape(&self, mut buffer: rustybuzz::UnicodeBuffer) -> rustybuzz::GlyphBuffer {
        buffer.guess_segment_properties();
        let key = (buffer.direction(), buffer.script());
        let cached = self.plans.read().ok().and_then(|plans| {
            plans
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, p)| p.clone())
        });
        let plan = match cached {
            Some(plan) => plan,
            None => {
                let plan = std::sync::Arc::new(rustybuzz::ShapePlan::new(
                    self.face(),
                    key.0,
                    Some(key.1),
                    None,
                    &[],
                ));
                if let Ok(mut plans) = self.plans.write() {
                    plans.push((key, plan.clone()));
                }
                plan
            }
        };
        rustybuzz::shape_with_plan(self.face(), &plan, buffer)
    }

    /// Whether the font has a glyph for `c`.
    pub fn covers(&self, c: char) -> bool {
        self.face().glyph_index(c).is_some()
    }

    /// Advance width of a glyph in 1/1000 em (for `/W`).
    pub fn advance_milli(&self, gid: u16) -> f32 {
        let adv = self
            .face()
            .glyph_hor_advance(rustybuzz::ttf_parser::GlyphId(gid))
            .unwrap_or(0);
        f32::from(adv) * 1000.0 / self.units_per_em
    }

    fn data(&self) -> &[u8] {
        self.cell.borrow_owner()
    }

    fn glyph_bytes(&self, gid: u16) -> &[u8] {
        let g = usize::from(gid);
        match (self.glyph_offsets.get(g), self.glyph_offsets.get(g + 1)) {
            (Some(&a), Some(&b)) if a <= b => self.glyf.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// A TrueType font with only `used` glyphs (plus .notdef and composite components)
    /// kept; glyph ids are preserved.
    pub fn subset(&self, used: &BTreeSet<u16>) -> Vec<u8> {
        let num_glyphs = self.glyph_offsets.len() - 1;
        let mut keep: BTreeSet<u16> = used
            .iter()
            .copied()
            .filter(|&g| usize::from(g) < num_glyphs)
            .collect();
        keep.insert(0);
        // Composite glyphs reference components: close over them (bounded depth).
        let mut frontier: Vec<u16> = keep.iter().copied().collect();
        for _ in 0..8 {
            let mut next = Vec::new();
            for g in frontier {
                for c in composite_components(self.glyph_bytes(g)) {
                    if usize::from(c) < num_glyphs && keep.insert(c) {
                        next.push(c);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        let count = keep.last().map_or(1, |&g| usize::from(g) + 1);

        let mut glyf = Vec::new();
        let mut loca = Vec::with_capacity((count + 1) * 4);
        for g in 0..count {
            loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());
            if keep.contains(&(g as u16)) {
                glyf.extend_from_slice(self.glyph_bytes(g as u16));
                while glyf.len() % 4 != 0 {
                    glyf.push(0);
                }
            }
        }
        loca.extend_from_slice(&(glyf.len() as u32).to_be_bytes());

        let data = self.data();
        let nhm = usize::from(self.number_of_h_metrics).min(count);
        let hmtx_src = &data[self.hmtx.0..self.hmtx.0 + self.hmtx.1];
        let mut hmtx = Vec::with_capacity(count * 4);
        for g in 0..nhm {
            // Unused glyphs get zero metrics: PDF viewers take widths from /W, and zeros
            // compress to nothing.
            if keep.contains(&(g as u16)) {
                hmtx.extend_from_slice(&hmtx_src[g * 4..g * 4 + 4]);
            } else {
                hmtx.extend_from_slice(&[0; 4]);
            }
        }
        for g in nhm..count {
            // Trailing glyphs share the last advance and store only their lsb.
            let at = usize::from(self.number_of_h_metrics) * 4
                + (g - usize::from(self.number_of_h_metrics)) * 2;
            let lsb = if g < usize::from(self.number_of_h_metrics) {
                hmtx_src.get(g * 4 + 2..g * 4 + 4)
            } else {
                hmtx_src.get(at..at + 2)
            };
            hmtx.extend_from_slice(lsb.unwrap_or(&[0, 0]));
        }

        let mut out_tables: Vec<([u8; 4], Vec<u8>)> = Vec::new();
        for t in &self.tables {
            let src = &data[t.offset..t.offset + t.len];
            let body = match &t.tag {
                b"glyf" => std::mem::take(&mut glyf),
                b"loca" => std::mem::take(&mut loca),
                b"hmtx" => std::mem::take(&mut hmtx),
                b"head" => {
                    let mut h = src.to_vec();
                    if h.len() >= 54 {
                        h[8..12].copy_from_slice(&[0; 4]);
                        h[50..52].copy_from_slice(&1u16.to_be_bytes());
                    }
                    h
                }
                b"maxp" => {
                    let mut m = src.to_vec();
                    if m.len() >= 6 {
                        m[4..6].copy_from_slice(&(count as u16).to_be_bytes());
                    }
                    m
                }
                b"hhea" => {
                    let mut h = src.to_vec();
                    if h.len() >= 36 {
                        h[34..36].copy_from_slice(&(nhm as u16).to_be_bytes());
                    }
                    h
                }
                b"OS/2" => src.to_vec(),
                // Hinting (stripped), layout, cmap, names and glyph names are not needed by
                // a PDF viewer.
                _ => continue,
            };
            out_tables.push((t.tag, body));
        }
        write_sfnt(&out_tables)
    }
}

/// A glyph without its TrueType instructions (simple: instruction length set to 0;
/// composite: the WE_HAVE_INSTRUCTIONS flag cleared and the trailing program dropped).
/// Malformed glyphs are returned unchanged.
fn strip_hinting(g: &[u8]) -> Vec<u8> {
    let Some(contours) = be16(g, 0) else {
        return g.to_vec();
    };
    if (contours as i16) >= 0 {
        let at = 10 + 2 * usize::from(contours);
        let Some(len) = be16(g, at) else {
            return g.to_vec();
        };
        let rest = at + 2 + usize::from(len);
        if rest > g.len() {
            return g.to_vec();
        }
        let mut out = Vec::with_capacity(g.len() - usize::from(len));
        out.extend_from_slice(&g[..at]);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&g[rest..]);
        return out;
    }
    let mut out = g.to_vec();
    let mut at = 10;
    loop {
        let Some(flags) = be16(g, at) else {
            return g.to_vec();
        };
        out[at..at + 2].copy_from_slice(&(flags & !0x0100).to_be_bytes());
        at += 4;
        at += if flags & 0x0001 != 0 { 4 } else { 2 };
        if flags & 0x0008 != 0 {
            at += 2;
        } else if flags & 0x0040 != 0 {
            at += 4;
        } else if flags & 0x0080 != 0 {
            at += 8;
        }
        if at > g.len() {
            return g.to_vec();
        }
        if flags & 0x0020 == 0 {
            break;
        }
    }
    out.truncate(at);
    out
}

fn parse_table_directory(d: &[u8]) -> Option<Vec<Table>> {
    let n = usize::from(be16(d, 4)?);
    let mut tables = Vec::with_capacity(n);
    for i in 0..n {
        let rec = 12 + i * 16;
        let tag: [u8; 4] = d.get(rec..rec + 4)?.try_into().ok()?;
        let offset = be32(d, rec + 8)? as usize;
        let len = be32(d, rec + 12)? as usize;
        d.get(offset..offset.checked_add(len)?)?;
        tables.push(Table { tag, offset, len });
    }
    Some(tables)
}

/// Glyph ids referenced by a composite glyph.
fn composite_components(g: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let Some(contours) = be16(g, 0) else {
        return out;
    };
    if (contours as i16) >= 0 {
        return out;
    }
    let mut at = 10;
    while let (Some(flags), Some(gid)) = (be16(g, at), be16(g, at + 2)) {
        out.push(gid);
        at += 4;
        at += if flags & 0x0001 != 0 { 4 } else { 2 };
        if flags & 0x0008 != 0 {
            at += 2;
        } else if flags & 0x0040 != 0 {
            at += 4;
        } else if flags & 0x0080 != 0 {
            at += 8;
        }
        if flags & 0x0020 == 0 {
            break;
        }
    }
    out
}

fn write_sfnt(tables: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let n = tables.len() as u16;
    let mut entry_selector = 0u16;
    while (1u16 << (entry_selector + 1)) <= n {
        entry_selector += 1;
    }
    let search_range = (1u16 << entry_selector) * 16;
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&search_range.to_be_bytes());
    out.extend_from_slice(&entry_selector.to_be_bytes());
    out.extend_from_slice(&(n * 16 - search_range).to_be_bytes());
    let mut offset = 12 + tables.len() * 16;
    for (tag, body) in tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(body).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        offset += body.len().div_ceil(4) * 4;
    }
    for (_, body) in tables {
        out.extend_from_slice(body);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    out
}

fn checksum(b: &[u8]) -> u32 {
    b.chunks(4).fold(0u32, |acc, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        acc.wrapping_add(u32::from_be_bytes(w))
    })
}
