//! Tests of the fast path (`QrPayload::to_matrix`): every symbol is read back by `rqrr`, which
//! reports version, EC level, mask and the raw bit stream (whose first 4 bits are the first
//! segment's mode indicator), and the mask scorer is checked against a plain transcription of the
//! ISO/IEC 18004 penalty rules.

use super::*;
use crate::encode::MASK_PATTERNS;
use crate::mask::{Line, UnmaskedSymbol};
use crate::payload::smallest_version;

/// What rqrr reads from a module matrix.
#[derive(Debug, PartialEq)]
struct ReadBack {
    version: usize,
    /// Format-info EC bits: M = 0, L = 1, H = 2, Q = 3.
    ec: u16,
    /// Mode indicator of the first segment: numeric 1, alphanumeric 2, byte 4.
    first_mode: u8,
    data: Vec<u8>,
}

fn read_matrix(m: &ModuleMatrix) -> ReadBack {
    let grid = rqrr::Grid::new(rqrr::SimpleGrid::from_func(m.width, |x, y| m.is_dark(x, y)));
    let (meta, _) = grid.get_raw_data().unwrap();
    let mut data = Vec::new();
    grid.decode_to(&mut data).unwrap();
    // The stream starts with the first data codeword (block 1 leads the interleaving), placed
    // upwards from the bottom-right corner, right module first: its first 4 bits, unmasked,
    // are the mode indicator.
    let w = m.width;
    let first_mode = [
        (w - 1, w - 1),
        (w - 2, w - 1),
        (w - 1, w - 2),
        (w - 2, w - 2),
    ]
    .iter()
    .fold(0u8, |acc, &(x, y)| {
        let bit = m.is_dark(x, y) ^ iso_mask(usize::from(meta.mask), y, x);
        acc << 1 | u8::from(bit)
    });
    ReadBack {
        version: meta.version.0,
        ec: meta.ecc_level,
        first_mode,
        data,
    }
}

const RQRR_M: u16 = 0;
const RQRR_L: u16 = 1;
const RQRR_Q: u16 = 3;
const MODE_BYTE: u8 = 4;
const MODE_ALPHANUMERIC: u8 = 2;

/// Deterministic pseudo-random bytes (xorshift), so payloads look like compressed data.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Lengths on both sides of every version boundary of a one-segment payload (`version_of(n)` is
/// the smallest version for `n` units), from 1 to `max`.
fn boundary_lengths(max: usize, version_of: impl Fn(usize) -> i16) -> Vec<usize> {
    let versions: Vec<i16> = (0..=max + 1).map(|n| version_of(n.clamp(1, max))).collect();
    (1..=max)
        .filter(|&n| versions[n] != versions[n - 1] || versions[n] != versions[n + 1])
        .collect()
}

#[test]
fn divoc_zip_fast_symbol_is_byte_mode_at_m_in_the_smallest_version() {
    // ISO/IEC 18004 table 7, byte mode at M: 14 bytes in version 1, 26 in 2, 2331 in 40.
    for (len, version) in [(14, 1), (15, 2), (26, 2), (27, 3), (2331, 40)] {
        assert_eq!(divoc_zip_matrix(&noise(len, 1)).unwrap().version(), version);
    }
    let version_of =
        |n: usize| smallest_version(&[Segment::Byte(&vec![0; n])], EcLevel::M, 40).unwrap();
    let lengths = boundary_lengths(MAX_QR_BYTES_M, version_of);
    assert!(lengths.len() >= 78, "{} boundaries", lengths.len());
    for len in lengths {
        let zip = noise(len, len as u64);
        let m = QrPayload::DivocZip(zip.clone()).to_matrix().unwrap();
        let read = read_matrix(&m);
        let expected = ReadBack {
            version: version_of(len) as usize,
            ec: RQRR_M,
            first_mode: MODE_BYTE,
            data: zip,
        };
        assert_eq!(read, expected, "{len} bytes");
        assert_eq!(m.version(), read.version);
    }
}

#[test]
fn hcert_fast_symbol_is_alphanumeric_at_q_in_the_smallest_version() {
    // ISO/IEC 18004 table 7, alphanumeric at Q: 16 characters in version 1 (byte mode: 11),
    // 29 in version 2, 2420 in 40. Fitting those proves the alphanumeric segment.
    let text = |n: usize| {
        let set = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
        let noise = noise(n, n as u64);
        let mut t = String::from("HC1:");
        t.extend(
            noise[4..]
                .iter()
                .map(|b| char::from(set[*b as usize % set.len()])),
        );
        t
    };
    for (len, version) in [(16, 1), (17, 2), (29, 2), (30, 3), (MAX_HCERT_CHARS, 40)] {
        let m = QrPayload::Hcert(text(len)).to_matrix().unwrap();
        assert_eq!(m.version(), version, "{len} characters");
    }
    let version_of = |n: usize| {
        smallest_version(&[Segment::Alphanumeric(&vec![b'A'; n])], EcLevel::Q, 40).unwrap()
    };
    for len in boundary_lengths(MAX_HCERT_CHARS, version_of)
        .into_iter()
        .filter(|&n| n >= 4)
    {
        let hc1 = text(len);
        let read = read_matrix(&QrPayload::Hcert(hc1.clone()).to_matrix().unwrap());
        let expected = ReadBack {
            version: version_of(len) as usize,
            ec: RQRR_Q,
            first_mode: MODE_ALPHANUMERIC,
            data: hc1.into_bytes(),
        };
        assert_eq!(read, expected, "{len} characters");
    }
}

#[test]
fn shc_fast_symbol_is_byte_then_numeric_at_l_up_to_version_22() {
    let jws = |n: usize| -> String {
        let alphabet = b"eyJhbGciOiJFUzI1NiJ9.-_ABCXYZxyz0189";
        noise(n, n as u64)
            .iter()
            .map(|b| char::from(alphabet[*b as usize % alphabet.len()]))
            .collect()
    };
    for len in [1, 10, 100, 300, 640, 999, MAX_SHC_JWS_CHARS] {
        let payload = QrPayload::shc_from_jws(&jws(len)).unwrap();
        let m = payload.to_matrix().unwrap();
        let read = read_matrix(&m);
        let version = smallest_version(&payload.segments().unwrap(), EcLevel::L, 22).unwrap();
        let expected = ReadBack {
            version: version as usize,
            ec: RQRR_L,
            first_mode: MODE_BYTE,
            data: payload.as_bytes().to_vec(),
        };
        assert_eq!(read, expected, "JWS of {len} characters");
        // qrcode's own encoder picks the same version for the same segments.
        assert_eq!(payload.to_qr().unwrap().width(), m.width);
    }
    // 1195 JWS characters in byte mode would need version 30: V22 proves the numeric segment.
    let full = QrPayload::shc_from_jws(&jws(MAX_SHC_JWS_CHARS)).unwrap();
    assert_eq!(full.to_matrix().unwrap().version(), 22);
    assert!(matches!(
        QrPayload::shc_from_jws(&jws(MAX_SHC_JWS_CHARS + 1))
            .unwrap()
            .to_matrix(),
        Err(QrError::TooLong { .. })
    ));
}

#[test]
fn fast_path_validates_like_the_qrcode_path() {
    assert_eq!(
        divoc_zip_matrix(&[0; MAX_QR_BYTES_M + 1]).err(),
        Some(QrError::TooLarge(MAX_QR_BYTES_M + 1))
    );
    let zip = zip_certificate(br#"{"credentialSubject":{"name":"Anil"}}"#);
    assert_eq!(
        divoc_zip_matrix(&zip).unwrap(),
        QrPayload::DivocZip(zip).to_matrix().unwrap()
    );
    for bad in [
        QrPayload::Hcert("HC1:lower".into()),
        QrPayload::Hcert("NOPREFIX".into()),
        QrPayload::Shc("shc:/567".into()),
    ] {
        assert_eq!(bad.to_matrix().err(), bad.to_qr().err(), "{bad:?}");
        assert!(matches!(bad.to_matrix(), Err(QrError::Malformed { .. })));
    }
}

/// ISO/IEC 18004 table 10 (i = row, j = column).
fn iso_mask(mask: usize, i: usize, j: usize) -> bool {
    match mask {
        0 => (i + j) % 2 == 0,
        1 => i % 2 == 0,
        2 => j % 3 == 0,
        3 => (i + j) % 3 == 0,
        4 => (i / 2 + j / 3) % 2 == 0,
        5 => (i * j) % 2 + (i * j) % 3 == 0,
        6 => ((i * j) % 2 + (i * j) % 3) % 2 == 0,
        _ => ((i + j) % 2 + (i * j) % 3) % 2 == 0,
    }
}

/// ISO/IEC 18004 section 7.8.3 penalty, module by module, everything outside the symbol light.
fn plain_penalty(m: &[bool], w: usize) -> u32 {
    let wi = w as isize;
    let at = |x: isize, y: isize| {
        (0..wi).contains(&x) && (0..wi).contains(&y) && m[(y * wi + x) as usize]
    };
    let mut p = 0;
    for transpose in [false, true] {
        let get = |line: isize, k: isize| if transpose { at(line, k) } else { at(k, line) };
        for line in 0..wi {
            // Rule 1: runs of 5 or more of one color.
            let mut run = 1;
            for k in 1..=wi {
                if k < wi && get(line, k) == get(line, k - 1) {
                    run += 1;
                } else {
                    if run >= 5 {
                        p += 3 + (run - 5);
                    }
                    run = 1;
                }
            }
            // Rule 3: 1011101 with 4 light modules on one side (light outside the symbol).
            let finder = [
                true, false, true, true, true, false, true, false, false, false, false,
            ];
            for start in -12..wi + 12 {
                let after = (0..11).all(|k| get(line, start + k) == finder[k as usize]);
                let before = (0..11).all(|k| get(line, start + k) == finder[10 - k as usize]);
                p += 40 * (u32::from(after) + u32::from(before));
            }
        }
    }
    // Rule 2: 2 x 2 blocks of one color.
    for y in 0..wi - 1 {
        for x in 0..wi - 1 {
            let c = at(x, y);
            if at(x + 1, y) == c && at(x, y + 1) == c && at(x + 1, y + 1) == c {
                p += 3;
            }
        }
    }
    // Rule 4: 10 per full 5% away from half dark.
    let dark = m.iter().filter(|&&d| d).count() as f64;
    let off = (dark * 100.0 / (w * w) as f64 - 50.0).abs();
    p + 10 * (off / 5.0).floor() as u32
}

#[test]
fn mask_scorer_matches_the_plain_iso_rules() {
    for (case, width) in [21, 25, 57, 117, 121, 177].into_iter().enumerate() {
        let dark = noise(width * width, 7 + case as u64);
        let maskable = noise(width * width, 99 + case as u64);
        // Mostly dark or mostly light in some cases, so rule 4 and long runs are exercised.
        let bias = [128u8, 40, 220, 128, 10, 128][case];
        let module = |x: usize, y: usize| {
            let i = y * width + x;
            (dark[i] < bias, maskable[i] < 200)
        };
        let wide = UnmaskedSymbol::<Line>::read(width, module).unwrap();
        let narrow = UnmaskedSymbol::<u128>::read(width, module);
        assert_eq!(narrow.is_some(), width <= 120);
        for mask in 0..8 {
            let masked: Vec<bool> = (0..width * width)
                .map(|i| {
                    let (x, y) = (i % width, i / width);
                    let (d, maskable) = module(x, y);
                    d ^ (maskable && iso_mask(mask, y, x))
                })
                .collect();
            let expected = plain_penalty(&masked, width);
            assert_eq!(wide.penalty(mask), expected, "width {width}, mask {mask}");
            if let Some(narrow) = &narrow {
                assert_eq!(
                    narrow.penalty(mask),
                    expected,
                    "u128, width {width}, mask {mask}"
                );
            }
        }
    }
    assert!(UnmaskedSymbol::<Line>::read(185, |_, _| (false, false)).is_none());
}

#[test]
fn mask_numbers_match_qrcode_patterns() {
    // The scorer's mask k must be the pattern `MASK_PATTERNS[k]` that qrcode then applies.
    let payload = QrPayload::shc_from_jws("eyJhbGciOiJFUzI1NiJ9.abc-_xyz").unwrap();
    let segments = payload.segments().unwrap();
    let version = qrcode::Version::Normal(smallest_version(&segments, EcLevel::L, 22).unwrap());
    let mut bits = qrcode::bits::Bits::new(version);
    for s in &segments {
        s.push(&mut bits).unwrap();
    }
    bits.push_terminator(EcLevel::L).unwrap();
    let (data, ec) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::L).unwrap();
    let mut canvas = qrcode::canvas::Canvas::new(version, EcLevel::L);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    let width = version.width() as usize;
    let unmasked = |x: usize, y: usize| canvas.get(x as i16, y as i16);
    let symbol = UnmaskedSymbol::<u128>::read(width, |x, y| {
        let m = unmasked(x, y);
        (m.is_dark(), !matches!(m, qrcode::canvas::Module::Masked(_)))
    })
    .unwrap();
    for (k, pattern) in MASK_PATTERNS.iter().enumerate() {
        let mut masked = canvas.clone();
        masked.apply_mask(*pattern);
        for y in 0..width {
            for x in 0..width {
                if matches!(unmasked(x, y), qrcode::canvas::Module::Unmasked(_)) {
                    assert_eq!(
                        symbol.masked_is_dark(k, x, y),
                        masked.get(x as i16, y as i16).is_dark(),
                        "mask {k} at ({x}, {y})"
                    );
                }
            }
        }
    }
    // And the symbol says which mask it carries: the one the scorer picked.
    let grid = rqrr::Grid::new(rqrr::SimpleGrid::from_func(width, |x, y| {
        payload.to_matrix().unwrap().is_dark(x, y)
    }));
    let (meta, _) = grid.get_raw_data().unwrap();
    assert_eq!(usize::from(meta.mask), symbol.best_mask());
}

/// Splits a PNG into chunks, checking each CRC: (type, data).
fn png_chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut at = 8;
    let mut chunks = Vec::new();
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let body = &png[at + 4..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc32fast::hash(body), crc, "chunk CRC");
        chunks.push((body[..4].try_into().unwrap(), body[4..].to_vec()));
        at += 12 + len;
    }
    chunks
}

#[test]
fn png_stream_checks_out_with_an_independent_inflater() {
    // miniz_oxide's zlib decoder verifies the Adler-32 trailer (png's decoder skips it).
    let payloads = [
        QrPayload::Hcert("HC1:ABC".into()),
        QrPayload::DivocZip(noise(961, 3)),
        QrPayload::shc_from_jws("eyJhbGciOiJFUzI1NiJ9.abc").unwrap(),
    ];
    for payload in payloads {
        let m = payload.to_matrix().unwrap();
        for scale in [1, 2, 3, 4, 7, 10] {
            let png = matrix_png(&m, scale).unwrap();
            let chunks = png_chunks(&png);
            let kinds: Vec<&[u8]> = chunks.iter().map(|c| &c.0[..]).collect();
            assert_eq!(kinds, [&b"IHDR"[..], b"IDAT", b"IEND"]);
            let side = m.side_with_quiet_zone() * scale as usize;
            let ihdr = &chunks[0].1;
            assert_eq!(&ihdr[..4], (side as u32).to_be_bytes());
            assert_eq!(&ihdr[4..8], (side as u32).to_be_bytes());
            assert_eq!(&ihdr[8..], [8, 0, 0, 0, 0], "8-bit grayscale, no interlace");
            let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&chunks[1].1).unwrap();
            let mut bad_adler = chunks[1].1.clone();
            *bad_adler.last_mut().unwrap() ^= 1;
            assert!(miniz_oxide::inflate::decompress_to_vec_zlib(&bad_adler).is_err());
            assert_eq!(raw.len(), side * (side + 1));
            for (py, row) in raw.chunks_exact(side + 1).enumerate() {
                assert_eq!(row[0], 0, "filter type None");
                for (px, &value) in row[1..].iter().enumerate() {
                    let (x, y) = (px / scale as usize, py / scale as usize);
                    let q = QUIET_ZONE_MODULES;
                    let dark = x >= q && y >= q && m.is_dark(x - q, y - q);
                    assert_eq!(value, if dark { 0 } else { 255 }, "pixel ({px}, {py})");
                }
            }
        }
    }
}
