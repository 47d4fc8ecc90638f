//! The fast encoder behind [`crate::QrPayload::to_matrix`], for every kind: `qrcode`'s bit,
//! error-correction and canvas modules build the symbol from our segments (so mode, level and
//! version are exactly what [`crate::QrPayload::segments`] and [`PayloadKind`] prescribe), and
//! the mask is chosen by [`crate::mask`] instead of `qrcode`'s `apply_best_mask`, which is ~95%
//! of `qrcode`'s encode time.
//!
//! Measured alternative: `fast_qr` (one mode per symbol, so no SHC) was 3-4x slower than this for
//! the DIVOC ZIP (v25) and HC1 (v19) symbols; `benches/qr.rs` keeps it as a comparison.

use qrcode::bits::Bits;
use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::Version;

use crate::mask::{Line, UnmaskedSymbol};
use crate::payload::{smallest_version, PayloadKind, Segment};
use crate::{ModuleMatrix, QrError};

/// `qrcode`'s patterns in ISO order 0-7 (the numbering `mask::penalty` uses).
pub(crate) const MASK_PATTERNS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// The symbol of already validated `segments` at `kind`'s level, smallest allowed version, mask
/// chosen by the bit-parallel penalty scorer.
pub(crate) fn symbol(segments: &[Segment<'_>], kind: PayloadKind) -> Result<ModuleMatrix, QrError> {
    let ec = kind.ec_level();
    let version = smallest_version(segments, ec, kind.max_version()).ok_or_else(|| {
        QrError::Encode(format!(
            "no QR version up to {} at level {ec:?} holds these segments",
            kind.max_version()
        ))
    })?;
    let version = Version::Normal(version);
    let encode_err = |e: qrcode::types::QrError| QrError::Encode(e.to_string());
    let mut bits = Bits::new(version);
    for segment in segments {
        segment.push(&mut bits).map_err(encode_err)?;
    }
    bits.push_terminator(ec).map_err(encode_err)?;
    let (data, ec_codewords) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, ec).map_err(encode_err)?;
    let mut canvas = Canvas::new(version, ec);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec_codewords);

    let width = version.width() as usize;
    let module = |x: usize, y: usize| {
        let m = canvas.get(x as i16, y as i16);
        // Empty modules are the format information, drawn with the mask.
        (m.is_dark(), !matches!(m, Module::Masked(_)))
    };
    // `u128` lines are faster; versions above 25 need the wider `Line`.
    let best = match UnmaskedSymbol::<u128>::read(width, module) {
        Some(symbol) => Some(symbol.best_mask()),
        None => UnmaskedSymbol::<Line>::read(width, module).map(|s| s.best_mask()),
    };
    let pattern = match best {
        Some(mask) => MASK_PATTERNS[mask],
        // Wider than any QR symbol: unreachable, but qrcode's own choice is still correct.
        None => return Ok(from_colors(width, canvas.apply_best_mask().into_colors())),
    };
    canvas.apply_mask(pattern);
    Ok(from_colors(width, canvas.into_colors()))
}

fn from_colors(width: usize, colors: Vec<qrcode::Color>) -> ModuleMatrix {
    ModuleMatrix {
        width,
        modules: colors
            .into_iter()
            .map(|c| c == qrcode::Color::Dark)
            .collect(),
    }
}
