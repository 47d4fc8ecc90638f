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
        x < self.width && y < self.width && self.modules.get(y * self.width + x) == Some(&true)
    }

    /// Side length including the quiet zone on both sides, in modules.
    pub fn side_with_quiet_zone(&self) -> usize {
        self.width + 2 * QUIET_ZONE_MODULES
    }

    /// QR version (1-40) of a symbol this wide.
    pub fn version(&self) -> usize {
        self.width.saturating_sub(17) / 4
    }

    /// Horizontal runs of dark modules, row by row: draw each as a rectangle at
    /// `(x + QUIET_ZONE_MODULES, y + QUIET_ZONE_MODULES)` of `len` × 1 modules.
    pub fn dark_runs(&self) -> impl Iterator<Item = DarkRun> + '_ {
        (0..self.width).flat_map(move |y| self.dark_runs_in_row(y))
    }

    /// The dark runs of row `y` (none if `y` is outside the symbol).
    pub fn dark_runs_in_row(&self, y: usize) -> impl Iterator<Item = DarkRun> + '_ {
        let width = self.width;
        let row = self
            .modules
            .get(y * width..(y + 1) * width)
            .unwrap_or_default();
        let mut x = 0;
        std::iter::from_fn(move || {
            while x < row.len() && !row[x] {
                x += 1;
            }
            if x == row.len() {
                return None;
            }
            let start = x;
            while x < row.len() && row[x] {
                x += 1;
            }
            Some(DarkRun {
                x: start,
                y,
                len: x - start,
            })
        })
    }
}

/// The module matrix of `code` (see [`ModuleMatrix`]).
pub fn qr_matrix(code: &QrCode) -> ModuleMatrix {
    ModuleMatrix::from_code(code)
}

/// Renders a `qrcode` symbol as PNG: [`matrix_png`] of its modules (kept for callers holding a
/// [`QrCode`]).
pub fn qr_png(code: &QrCode, scale: u32) -> Result<Vec<u8>, QrError> {
    matrix_png(&ModuleMatrix::from_code(code), scale)
}

/// Renders a `qrcode` symbol as SVG: [`matrix_svg`] of its modules.
pub fn qr_svg(code: &QrCode) -> String {
    matrix_svg(&ModuleMatrix::from_code(code))
}

/// Renders a symbol as an 8-bit grayscale PNG (`scale` pixels per module, 4-module quiet zone,
/// black on white). The image side may be at most [`MAX_PNG_SIDE`] pixels.
///
/// 8-bit grayscale because that is what `divoc verify` (cli/src/verify.rs) reads. Written
/// by a QR-specific PNG writer (`png_writer.rs`) that emits runs and repeated rows straight into
/// the deflate stream instead of compressing every pixel.
pub fn matrix_png(matrix: &ModuleMatrix, scale: u32) -> Result<Vec<u8>, QrError> {
    let modules = matrix.width;
    let max_scale = MAX_PNG_SIDE / matrix.side_with_quiet_zone();
    let scale = scale as usize;
    if scale == 0 || scale > max_scale {
        return Err(QrError::BadScale {
            scale: scale as u32,
            modules,
            max: max_scale as u32,
        });
    }
    Ok(crate::png_writer::write_png(matrix, scale))
}

/// Renders a symbol as SVG: a white square and one black `<path>` whose subpaths are the dark
/// runs (`M x y h len v1 h-len z`), in module units through the `viewBox`, 4-module quiet zone.
/// The `width`/`height` are at least 256 pixels, a whole number of pixels per module.
pub fn matrix_svg(matrix: &ModuleMatrix) -> String {
    use std::fmt::Write;
    let side = matrix.side_with_quiet_zone();
    let px = side * 256usize.div_ceil(side);
    let mut svg = String::with_capacity(256 + matrix.width * matrix.width);
    // `write!` to a String cannot fail.
    let _ = write!(
        svg,
        "<?xml version=\"1.0\" standalone=\"yes\"?>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{px}\" height=\"{px}\" \
         viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\""
    );
    // Numbers pushed by hand: `write!` per run was most of the SVG time.
    for run in matrix.dark_runs() {
        svg.push('M');
        push_decimal(&mut svg, run.x + QUIET_ZONE_MODULES);
        svg.push(' ');
        push_decimal(&mut svg, run.y + QUIET_ZONE_MODULES);
        svg.push('h');
        push_decimal(&mut svg, run.len);
        svg.push_str("v1h-");
        push_decimal(&mut svg, run.len);
        svg.push('z');
    }
    svg.push_str("\"/></svg>");
    svg
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}
