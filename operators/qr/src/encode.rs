//! The fast encoders behind [`crate::QrPayload::to_matrix`]:
//!
//! - one-segment symbols (DIVOC ZIP bytes at M, HC1 alphanumeric at Q) by `fast_qr`, with mode
//!   and level forced so its automatic choices (mode from the content, level Q) never apply;
//! - the SMART Health Card byte + numeric symbol (which `fast_qr` cannot mix) by `qrcode`'s bit,
//!   error-correction and canvas modules, with the mask chosen by [`crate::mask`] instead of
//!   `qrcode`'s slow `apply_best_mask`.

use qrcode::bits::Bits;
use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::{EcLevel, Version};

use crate::mask::UnmaskedSymbol;
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

/// One-segment symbol by `fast_qr`: `data` in `mode` at `kind`'s level, smallest version.
/// `data` must already be validated for `mode` (fast_qr does not check the character set).
pub(crate) fn single_segment(
    data: &[u8],
    mode: fast_qr::Mode,
    kind: PayloadKind,
) -> Result<ModuleMatrix, QrError> {
    let ecl = match kind.ec_level() {
        EcLevel::L => fast_qr::ECL::L,
        EcLevel::M => fast_qr::ECL::M,
        EcLevel::Q => fast_qr::ECL::Q,
        EcLevel::H => fast_qr::ECL::H,
    };
    let code = fast_qr::QRBuilder::new(data)
        .mode(mode)
        .ecl(ecl)
        .build()
        .map_err(|e| QrError::Encode(format!("fast_qr: {e}")))?;
    let width = code.size;
    let modules = code
        .data
        .get(..width * width)
        .ok_or_else(|| QrError::Encode(format!("fast_qr returned a {width}-module symbol")))?
        .iter()
        .map(|m| m.value())
        .collect();
    Ok(ModuleMatrix { width, modules })
}

/// Multi-segment symbol by `qrcode`'s building blocks at `kind`'s level, smallest allowed
/// version, mask chosen by the bit-parallel penalty scorer.
pub(crate) fn multi_segment(
    segments: &[Segment<'_>],
    kind: PayloadKind,
) -> Result<ModuleMatrix, QrError> {
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
    let pattern = match UnmaskedSymbol::read(width, |x, y| {
        let m = canvas.get(x as i16, y as i16);
        // Empty modules are the format information, drawn with the mask.
        (m.is_dark(), !matches!(m, Module::Masked(_)))
    }) {
        Some(symbol) => MASK_PATTERNS[symbol.best_mask()],
        // Wider than the scorer's lines (above version 25; SHC stops at 22): qrcode's choice.
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
