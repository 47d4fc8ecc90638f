//! Text -> positioned glyphs: bidi reordering (unicode-bidi), per-character font fallback,
//! and rustybuzz shaping of every (bidi run, font) segment.

use unicode_bidi::{BidiInfo, Level};

use crate::fonts::{Font, FontId, Weight};

/// All loaded fonts, in fallback order (`family * 2 + weight`).
pub struct FontSet {
    /// Loaded fonts.
    pub fonts: Vec<Font>,
    /// Family names, index = family.
    pub families: Vec<String>,
}

impl FontSet {
    /// Font id of a family and weight.
    pub fn id(family: usize, weight: Weight) -> FontId {
        family * 2 + usize::from(weight == Weight::Bold)
    }
}

/// One shaped glyph, in 1/1000 em of its font.
#[derive(Debug, Clone, Copy)]
pub struct Glyph {
    /// Glyph id.
    pub gid: u16,
    /// Advance.
    pub advance: f32,
    /// Horizontal offset from the pen.
    pub x_offset: f32,
    /// Vertical offset from the baseline.
    pub y_offset: f32,
    /// Byte range in the run text this glyph stands for in ToUnicode (empty for all but the
    /// first glyph of a cluster).
    pub text: (u32, u32),
}

/// A run of glyphs of one font and direction.
#[derive(Debug, Clone)]
pub struct ShapedRun {
    /// Font.
    pub font: FontId,
    /// Glyphs in visual (left-to-right) order.
    pub glyphs: Vec<Glyph>,
    /// The run's characters in logical order (ActualText).
    pub text: String,
    /// Total advance in 1/1000 em.
    pub width: f32,
    /// Right-to-left run (glyphs are still stored left to right).
    pub rtl: bool,
}

/// A shaped single line: runs in visual order.
#[derive(Debug, Clone, Default)]
pub struct ShapedLine {
    /// Runs, left to right.
    pub runs: Vec<ShapedRun>,
    /// Width in 1/1000 em.
    pub width: f32,
    /// Glyphs that came out as .notdef (id 0): characters no font covers.
    pub missing: usize,
}

/// How to choose fonts for a line.
#[derive(Debug, Clone, Copy)]
pub struct ShapeStyle {
    /// Family tried first.
    pub primary: usize,
    /// Weight.
    pub weight: Weight,
    /// Paragraph direction.
    pub rtl: bool,
    /// Whether other families may supply characters the primary lacks.
    pub fallback: bool,
}

/// Shapes one line of text.
pub fn shape_line(fonts: &FontSet, text: &str, style: ShapeStyle) -> ShapedLine {
    let mut line = ShapedLine::default();
    if text.is_empty() {
        return line;
    }
    let base = if style.rtl {
        Level::rtl()
    } else {
        Level::ltr()
    };
    let bidi = BidiInfo::new(text, Some(base));
    for para in &bidi.paragraphs {
        let (levels, runs) = bidi.visual_runs(para, para.range.clone());
        for run in runs {
            let rtl = levels[run.start].is_rtl();
            let mut segments = font_segments(fonts, &text[run.clone()], style);
            if rtl {
                segments.reverse();
            }
            for (font, seg) in segments {
                let shaped = shape_segment(fonts, font, seg, rtl);
                line.width += shaped.width;
                line.missing += shaped.glyphs.iter().filter(|g| g.gid == 0).count();
                line.runs.push(shaped);
            }
        }
    }
    line
}

/// Splits a same-direction run into maximal pieces one font can show: a character stays
/// with the current font while it covers it (so marks, spaces and digits stay with their
/// base), else goes to the first family in fallback order that has it.
fn font_segments<'t>(fonts: &FontSet, text: &'t str, style: ShapeStyle) -> Vec<(FontId, &'t str)> {
    let primary = FontSet::id(style.primary, style.weight);
    let family_count = fonts.families.len();
    let mut out: Vec<(FontId, &'t str)> = Vec::new();
    let mut current: Option<FontId> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let covered_by_current = current.is_some_and(|f| fonts.fonts[f].covers(c));
        let chosen = if covered_by_current {
            current
        } else if is_joiner(c) {
            current.or(Some(primary))
        } else if !style.fallback || fonts.fonts[primary].covers(c) {
            Some(primary)
        } else {
            (0..family_count)
                .map(|fam| FontSet::id(fam, style.weight))
                .find(|&f| fonts.fonts[f].covers(c))
                .or(current)
                .or(Some(primary))
        };
        if chosen != current {
            if let Some(f) = current {
                if i > start {
                    out.push((f, &text[start..i]));
                }
            }
            start = i;
            current = chosen;
        }
    }
    if let Some(f) = current {
        out.push((f, &text[start..]));
    }
    out
}

/// ZWJ/ZWNJ control conjunct formation and belong to whatever font shows their neighbours.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

fn shape_segment(fonts: &FontSet, font_id: FontId, text: &str, rtl: bool) -> ShapedRun {
    let font = &fonts.fonts[font_id];
    let mut buf = rustybuzz::UnicodeBuffer::new();
    buf.push_str(text);
    buf.set_direction(if rtl {
        rustybuzz::Direction::RightToLeft
    } else {
        rustybuzz::Direction::LeftToRight
    });
    let out = font.shape(buf);
    let scale = 1000.0 / font.units_per_em;
    let infos = out.glyph_infos();
    let positions = out.glyph_positions();

    // Cluster boundaries (byte offsets, logical order) give each cluster's text.
    let mut starts: Vec<u32> = infos.iter().map(|i| i.cluster).collect();
    starts.sort_unstable();
    starts.dedup();
    let cluster_end = |c: u32| -> u32 {
        match starts.binary_search(&c) {
            Ok(i) => starts.get(i + 1).copied().unwrap_or(text.len() as u32),
            Err(_) => c,
        }
    };
    let mut seen = std::collections::HashSet::with_capacity(infos.len());
    let mut glyphs = Vec::with_capacity(infos.len());
    let mut width = 0.0;
    for (info, pos) in infos.iter().zip(positions) {
        let range = if seen.insert(info.cluster) {
            (info.cluster, cluster_end(info.cluster))
        } else {
            (info.cluster, info.cluster)
        };
        let advance = pos.x_advance as f32 * scale;
        width += advance;
        glyphs.push(Glyph {
            gid: info.glyph_id as u16,
            advance,
            x_offset: pos.x_offset as f32 * scale,
            y_offset: pos.y_offset as f32 * scale,
            text: range,
        });
    }
    ShapedRun {
        font: font_id,
        glyphs,
        text: text.to_string(),
        width,
        rtl,
    }
}
