//! Turning a QR code into something to show: a PNG, an SVG, or the bare module matrix for a
//! vector renderer (PDF). All three leave the 4-module quiet zone the QR standard requires.

use qrcode::{Color, QrCode};

use crate::QrError;

/// Light modules around the symbol that a reader needs (ISO/IEC 18004: 4 for QR codes).
pub const QUIET_ZONE_MODULES: usize = 4;

/// Largest PNG side accepted, in pixels (16 MB of pixels): bounds memory whatever the scale.
pub const MAX_PNG_SIDE: usize = 4096;

/// The symbol's modules, row-major, `true` = dark, without the quiet zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleMatrix {
    /// Modules per side (21 for version 1, +4 per version).
    pub width: usize,
    /// `width * width` modules, row by row.
    pub modules: Vec<bool>,
}

/// A horizontal run of dark modules: one rectangle for a vector renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DarkRun {
    /// Column of the first module (0 = left edge of the symbol, quiet zone excluded).
    pub x: usize,
    /// Row (0 = top).
    pub y: usize,
    /// Modules in the run.
    pub len: usize,
}

impl ModuleMatrix {
    /// The modules of `code`.
    pub fn from_code(code: &QrCode) -> Self {
        ModuleMatrix {
            width: code.width(),
            modules: code
                .to_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect(),
        }
    }

    /// Whether the module at column `x`, row `y` is dark (`false` outside the symbol).
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.modules[y * self.width + x]
    }

    /// Side length including the quiet zone on both sides, in modules.
    pub fn side_with_quiet_zone(&self) -> usize {
        self.width + 2 * QUIET_ZONE_MODULES
    }

    /// Horizontal runs of dark modules, row by row: draw each as a rectangle at
    /// `(x + QUIET_ZONE_MODULES, y + QUIET_ZONE_MODULES)` of `len` × 1 modules.
    pub fn dark_runs(&self) -> impl Iterator<Item = DarkRun> + '_ {
        let width = self.width;
        (0..width).flat_map(move |y| {
            let row = &self.modules[y * width..(y + 1) * width];
            let mut x = 0;
            std::iter::from_fn(move || {
                while x < width && !row[x] {
                    x += 1;
                }
                if x == width {
                    return None;
                }
                let start = x;
                while x < width && row[x] {
                    x += 1;
                }
                Some(DarkRun {
                    x: start,
                    y,
                    len: x - start,
                })
            })
        })
    }
}

/// The module matrix of `code` (see [`ModuleMatrix`]).
pub fn qr_matrix(code: &QrCode) -> ModuleMatrix {
    ModuleMatrix::from_code(code)
}

/// Renders a QR code as an 8-bit grayscale PNG (`scale` pixels per module, 4-module quiet zone).
/// The image side may be at most [`MAX_PNG_SIDE`] pixels.
pub fn qr_png(code: &QrCode, scale: u32) -> Result<Vec<u8>, QrError> {
    let modules = code.width();
    let max_scale = MAX_PNG_SIDE / (modules + 2 * QUIET_ZONE_MODULES);
    let scale = scale as usize;
    if scale == 0 || scale > max_scale {
        return Err(QrError::BadScale {
            scale: scale as u32,
            modules,
            max: max_scale as u32,
        });
    }
    let side = (modules + 2 * QUIET_ZONE_MODULES) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (y, row_colors) in colors.chunks_exact(modules).enumerate() {
        // Paint one pixel row of this module row, then copy it down `scale - 1` times.
        let first = ((y + QUIET_ZONE_MODULES) * scale) * side;
        let row = &mut pixels[first..first + side];
        for (x, _) in row_colors
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == Color::Dark)
        {
            let start = (x + QUIET_ZONE_MODULES) * scale;
            row[start..start + scale].fill(0);
        }
        for dy in 1..scale {
            pixels.copy_within(first..first + side, first + dy * side);
        }
    }
    let side = side as u32; // at most MAX_PNG_SIDE
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| QrError::Encode(e.to_string()))?;
        w.write_image_data(&pixels)
            .map_err(|e| QrError::Encode(e.to_string()))?;
    }
    Ok(out)
}

/// Renders a QR code as SVG (at least 256 × 256 user units, 4-module quiet zone).
pub fn qr_svg(code: &QrCode) -> String {
    code.render::<qrcode::render::svg::Color>()
        .min_dimensions(256, 256)
        .build()
}
