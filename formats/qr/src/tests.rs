//! Unit tests. Capacities come from ISO/IEC 18004 table 7 and the SMART Health Cards QR FAQ, and
//! every symbol is read back with `rqrr` (an independent decoder), so nothing here checks our
//! encoder against itself.

use super::*;

/// Reads a symbol with rqrr straight from its module grid: (version, rqrr's EC code, payload).
/// rqrr reports the format-info bits: M = 0, L = 1, H = 2, Q = 3.
fn read_back(code: &QrCode) -> (usize, u16, Vec<u8>) {
    let m = qr_matrix(code);
    let grid = rqrr::SimpleGrid::from_func(m.width, |x, y| m.is_dark(x, y));
    let mut out = Vec::new();
    let meta = rqrr::Grid::new(grid).decode_to(&mut out).unwrap();
    (meta.version.0, meta.ecc_level, out)
}

const RQRR_M: u16 = 0;
const RQRR_L: u16 = 1;
const RQRR_Q: u16 = 3;

fn version(code: &QrCode) -> i16 {
    match code.version() {
        Version::Normal(v) => v,
        Version::Micro(v) => panic!("micro version {v}"),
    }
}

fn jws_of_len(n: usize) -> String {
    let alphabet = b"eyJhbGciOiJFUzI1NiJ9.-_ABCXYZxyz0189";
    (0..n)
        .map(|i| char::from(alphabet[i * 7 % alphabet.len()]))
        .collect()
}

#[test]
fn divoc_zip_is_byte_mode_at_m() {
    // Byte mode at M: version 1 holds 14 bytes, version 2 holds 26 (ISO table 7).
    let fits_v1 = QrPayload::DivocZip(vec![0xAB; 14]).to_qr().unwrap();
    assert_eq!(version(&fits_v1), 1);
    assert_eq!(fits_v1.error_correction_level(), EcLevel::M);
    assert_eq!(
        version(&QrPayload::DivocZip(vec![0xAB; 15]).to_qr().unwrap()),
        2
    );
    let zip = zip_certificate(br#"{"credentialSubject":{"name":"Anil"}}"#);
    let (v, ec, data) = read_back(&QrPayload::DivocZip(zip.clone()).to_qr().unwrap());
    assert_eq!((ec, data), (RQRR_M, zip.clone()));
    assert!(v >= 1);
    // The legacy entry point builds the same symbol.
    assert_eq!(
        qr_code_bytes(&zip).unwrap().to_colors(),
        QrPayload::DivocZip(zip).to_qr().unwrap().to_colors()
    );
}

#[test]
fn divoc_zip_size_limit() {
    let full = QrPayload::DivocZip(vec![7u8; MAX_QR_BYTES_M])
        .to_qr()
        .unwrap();
    assert_eq!(full.version(), Version::Normal(40));
    assert_eq!(
        QrPayload::DivocZip(vec![7u8; MAX_QR_BYTES_M + 1])
            .to_qr()
            .err(),
        Some(QrError::TooLarge(MAX_QR_BYTES_M + 1))
    );
    assert!(matches!(
        qr_code_bytes(&[0u8; 2332]).err(),
        Some(QrError::TooLarge(2332))
    ));
}

#[test]
fn hcert_is_alphanumeric_at_q() {
    // Alphanumeric at Q: version 1 holds 16 characters (byte mode only 11), version 2 holds 29.
    let v1 = QrPayload::Hcert(format!("HC1:{}", "NCF/ 9$%*+-.:AB")[..16].to_string());
    let code = v1.to_qr().unwrap();
    assert_eq!(version(&code), 1);
    assert_eq!(code.error_correction_level(), EcLevel::Q);
    let v2 = QrPayload::Hcert(format!("HC1:{}", "X".repeat(13)));
    assert_eq!(version(&v2.to_qr().unwrap()), 2);
    let text = "HC1:NCFTW2BM75VOO10KHHCUGEE45HB/J0DUIXEUKPAKGSITRD4PH.L0+6R.6USQN$9Q39V$K B9N3B2J7";
    let (_, ec, data) = read_back(&QrPayload::Hcert(text.into()).to_qr().unwrap());
    assert_eq!((ec, data), (RQRR_Q, text.as_bytes().to_vec()));
}

#[test]
fn hcert_validation() {
    let lower = QrPayload::Hcert("HC1:NCFabc".into()).to_qr().err().unwrap();
    assert!(
        matches!(&lower, QrError::Malformed { kind: PayloadKind::Hcert, reason } if reason.contains("'a' at byte 7"))
    );
    let unicode = QrPayload::Hcert("HC1:NCF\u{00e9}".into())
        .to_qr()
        .err()
        .unwrap();
    assert!(unicode
        .to_string()
        .contains("outside the QR alphanumeric set"));
    let no_prefix = QrPayload::Hcert("NCFTW2BM75".into()).to_qr().err().unwrap();
    assert!(no_prefix.to_string().contains("must start with \"HC1:\""));
    // Alphanumeric at Q, version 40: 2420 characters.
    let full = QrPayload::Hcert(format!("HC1:{}", "A".repeat(MAX_HCERT_CHARS - 4)));
    assert_eq!(full.to_qr().unwrap().version(), Version::Normal(40));
    let over = QrPayload::Hcert(format!("HC1:{}", "A".repeat(MAX_HCERT_CHARS - 3)));
    assert_eq!(
        over.to_qr().err().unwrap(),
        QrError::TooLong {
            kind: PayloadKind::Hcert,
            len: MAX_HCERT_CHARS + 1,
            max: MAX_HCERT_CHARS
        }
    );
}

#[test]
fn shc_numeric_matches_the_spec_example() {
    // SMART Health Cards spec: "'X' is encoded as 43, since Ord('X') is 88, and 88-45 is 43".
    // Codes scanned in the field all start shc:/567629 (the JWS header `eyJ`).
    assert_eq!(shc_numeric_encode("X").unwrap(), "43");
    assert_eq!(shc_numeric_encode("eyJ").unwrap(), "567629");
    assert_eq!(shc_numeric_decode("shc:/567629").unwrap(), "eyJ");
    // Lowest and highest JWS characters: '-' (45) and 'z' (122).
    assert_eq!(shc_numeric_encode("-z").unwrap(), "0077");
    let jws = jws_of_len(500);
    assert_eq!(
        shc_numeric_decode(&shc_numeric_encode(&jws).unwrap()).unwrap(),
        jws
    );
}

#[test]
fn shc_numeric_rejects_non_jws_text() {
    for bad in ["ab c", "\u{feff}eyJ", "abc=", "a\n"] {
        assert!(
            matches!(shc_numeric_encode(bad), Err(QrError::Malformed { .. })),
            "{bad:?}"
        );
    }
    for bad in ["567", "56a629", "shc:/1/2/5676", "9999", "shc:/56 76"] {
        assert!(
            matches!(shc_numeric_decode(bad), Err(QrError::Malformed { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn shc_is_byte_then_numeric_at_l() {
    let payload = QrPayload::shc_from_jws(&jws_of_len(300)).unwrap();
    let segments = payload.segments().unwrap();
    assert!(
        matches!(segments[..], [Segment::Byte(b"shc:/"), Segment::Numeric(d)] if d.len() == 600)
    );
    let code = payload.to_qr().unwrap();
    assert_eq!(code.error_correction_level(), EcLevel::L);
    let (_, ec, data) = read_back(&code);
    assert_eq!((ec, data), (RQRR_L, payload.as_bytes().to_vec()));
}

#[test]
fn shc_fits_version_22_up_to_1195_jws_chars() {
    // SMART Health Cards QR FAQ: at level L a V22 code holds a JWS of at most 1195 characters.
    // In byte mode 2395 characters would need version 30, so fitting V22 shows the numeric segment.
    let at_limit = QrPayload::shc_from_jws(&jws_of_len(MAX_SHC_JWS_CHARS)).unwrap();
    let code = at_limit.to_qr().unwrap();
    assert_eq!(code.version(), Version::Normal(22));
    let (v, ec, data) = read_back(&code);
    assert_eq!((v, ec, data), (22, RQRR_L, at_limit.as_bytes().to_vec()));
    let over = QrPayload::shc_from_jws(&jws_of_len(MAX_SHC_JWS_CHARS + 1)).unwrap();
    let err = over.to_qr().err().unwrap();
    assert_eq!(
        err,
        QrError::TooLong {
            kind: PayloadKind::Shc,
            len: 1196,
            max: 1195
        }
    );
    assert!(err.to_string().contains("chunks"), "{err}");
}

#[test]
fn shc_validation() {
    let cases = [
        ("567629", "must start with \"shc:/\""),
        ("shc:/", "no digits"),
        ("shc:/56762", "5 digits"),
        ("shc:/5676x9", "'x' at byte 9"),
        ("shc:/1/2/567629", "chunked"),
        ("shc:/5699", "digit pair 2 (99)"),
    ];
    for (text, expected) in cases {
        let err = QrPayload::Shc(text.into()).to_qr().err().unwrap();
        assert!(
            matches!(&err, QrError::Malformed { kind: PayloadKind::Shc, reason } if reason.contains(expected)),
            "{text}: {err}"
        );
    }
}

#[test]
fn renderings_agree_with_the_symbol() {
    let code = QrPayload::Hcert("HC1:ABC".into()).to_qr().unwrap();
    let m = qr_matrix(&code);
    assert_eq!(m.width, 21);
    assert_eq!(m.modules.len(), 21 * 21);
    // Finder pattern corners are dark, the separator next to them light.
    assert!(m.is_dark(0, 0) && m.is_dark(20, 0) && m.is_dark(0, 20));
    assert!(!m.is_dark(7, 0) && !m.is_dark(21, 0));
    // Runs cover exactly the dark modules.
    let mut painted = vec![false; m.modules.len()];
    for run in m.dark_runs() {
        for x in run.x..run.x + run.len {
            assert!(!painted[run.y * m.width + x]);
            painted[run.y * m.width + x] = true;
        }
    }
    assert_eq!(painted, m.modules);

    let png = qr_png(&code, 3).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), (29 * 3, 29 * 3));
    let px = |x: usize, y: usize| pixels[y * frame.line_size + x];
    for y in 0..29 {
        for x in 0..29 {
            let in_symbol = (4..25).contains(&x) && (4..25).contains(&y);
            let dark = in_symbol && m.is_dark(x - 4, y - 4);
            for (dx, dy) in [(0, 0), (2, 2), (1, 2)] {
                assert_eq!(px(x * 3 + dx, y * 3 + dy), if dark { 0 } else { 255 });
            }
        }
    }

    let svg = qr_svg(&code);
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"));
    assert_eq!(svg, matrix_svg(&m));
    assert_eq!(png, matrix_png(&m, 3).unwrap());
}

#[test]
fn png_scale_is_bounded() {
    let code = QrPayload::DivocZip(vec![1; 10]).to_qr().unwrap();
    assert!(matches!(
        qr_png(&code, 0),
        Err(QrError::BadScale { scale: 0, .. })
    ));
    let max = (MAX_PNG_SIDE / (21 + 8)) as u32;
    assert!(qr_png(&code, max).is_ok());
    let err = qr_png(&code, max + 1).unwrap_err();
    assert!(
        err.to_string().contains(&format!("use 1 to {max}")),
        "{err}"
    );
    assert!(qr_png(&code, u32::MAX).is_err());
}

#[test]
fn payload_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<QrPayload>();
    check::<QrCode>();
    check::<ModuleMatrix>();
    check::<QrError>();
}

/// Dark modules drawn in an SVG from `matrix_svg`, as (x, y) in modules of the whole image
/// (quiet zone included), and the image side in pixels. Parses the `M x y h n v1 h-n z` runs of
/// its one path, in viewBox (module) units.
fn svg_modules(svg: &str, modules: usize) -> (usize, Vec<(usize, usize)>) {
    let attr = |name: &str| -> String {
        svg.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned()
    };
    let width: usize = attr("width").parse().unwrap();
    let side = modules + 2 * QUIET_ZONE_MODULES;
    assert_eq!(width % side, 0, "whole pixels per module");
    assert_eq!(attr("viewBox"), format!("0 0 {side} {side}"));
    assert_eq!(svg.matches("<path").count(), 1, "one path");
    let path = attr("d");
    let mut dark = Vec::new();
    for run in path.split('M').filter(|r| !r.is_empty()) {
        let (xy, rest) = run.split_once('h').unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        let (len, back) = rest.split_once("v1h-").unwrap();
        assert_eq!(back, format!("{len}z"), "run {run:?} closes on itself");
        let (x, y, len): (usize, usize, usize) =
            (x.parse().unwrap(), y.parse().unwrap(), len.parse().unwrap());
        assert!(len >= 1 && x + len <= side - QUIET_ZONE_MODULES, "{run:?}");
        dark.extend((x..x + len).map(|x| (x, y)));
    }
    (width, dark)
}

#[test]
fn svg_draws_the_symbol_inside_a_quiet_zone() {
    let payload = QrPayload::shc_from_jws(&jws_of_len(120)).unwrap();
    let m = payload.to_matrix().unwrap();
    let svg = payload.to_svg().unwrap();
    assert_eq!(svg, matrix_svg(&m));
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"));
    let (width_px, mut dark) = svg_modules(&svg, m.width);
    assert!(width_px >= 256, "{width_px}");
    dark.sort_unstable_by_key(|&(x, y)| (y, x));
    let q = QUIET_ZONE_MODULES;
    let expected: Vec<(usize, usize)> = (0..m.width)
        .flat_map(|y| (0..m.width).map(move |x| (x, y)))
        .filter(|&(x, y)| m.is_dark(x, y))
        .map(|(x, y)| (x + q, y + q))
        .collect();
    assert_eq!(dark, expected);
}

#[test]
fn scanned_text_is_classified_by_prefix() {
    let zip = zip_certificate(b"{}");
    assert_eq!(
        QrPayload::from_scanned(zip.clone()),
        QrPayload::DivocZip(zip)
    );
    assert_eq!(
        QrPayload::from_scanned(b"HC1:NCF".to_vec()),
        QrPayload::Hcert("HC1:NCF".into())
    );
    assert_eq!(
        QrPayload::from_scanned(b"shc:/5676".to_vec()),
        QrPayload::Shc("shc:/5676".into())
    );
    // Not UTF-8 after a known prefix: kept as bytes, not lost.
    let odd = b"HC1:\xff".to_vec();
    assert_eq!(
        QrPayload::from_scanned(odd.clone()),
        QrPayload::DivocZip(odd)
    );
    assert_eq!(
        QrPayload::from_scanned(b"{\"a\":1}".to_vec()).kind(),
        PayloadKind::DivocZip
    );
}
