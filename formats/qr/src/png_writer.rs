//! A PNG writer made for QR images: 8-bit grayscale, black and white only, every module a
//! `scale` × `scale` square.
//!
//! A general PNG encoder filters and deflates every one of the `side²` pixels. Here the image is
//! a few hundred "bands" of identical pixel rows, and each row is runs of 0 or 255, so the zlib
//! stream is written directly with the fixed Huffman code: each run is one literal plus a copy at
//! distance 1, each repeated row one copy at distance `side + 1` (the row above), and the Adler-32
//! checksum is updated per run and per row instead of per byte. Output is plain PNG (filter type 0
//! on every row) that any decoder reads; 8-bit grayscale is what `divoc verify` accepts.

use crate::render::{ModuleMatrix, QUIET_ZONE_MODULES};

const DARK: u8 = 0;
const LIGHT: u8 = 255;

/// Writes `matrix` as PNG at `scale` pixels per module with the quiet zone. The caller bounds
/// `scale` so the side is at most `MAX_PNG_SIDE` (copy distances must stay within 32 KiB).
pub(crate) fn write_png(matrix: &ModuleMatrix, scale: usize) -> Vec<u8> {
    let side = matrix.side_with_quiet_zone() * scale;
    let mut z = ZlibWriter::new(side);
    let quiet_rows = QUIET_ZONE_MODULES * scale;
    let mut runs: Vec<(u8, usize)> = Vec::with_capacity(matrix.width + 2);
    z.band(&[(LIGHT, side)], quiet_rows);
    for y in 0..matrix.width {
        runs.clear();
        let mut x = 0; // pixels written so far in this row
        for run in matrix.dark_runs_in_row(y) {
            let start = (run.x + QUIET_ZONE_MODULES) * scale;
            runs.push((LIGHT, start - x));
            runs.push((DARK, run.len * scale));
            x = start + run.len * scale;
        }
        runs.push((LIGHT, side - x));
        z.band(&runs, scale);
    }
    z.band(&[(LIGHT, side)], quiet_rows);
    let idat = z.finish();

    let mut png = Vec::with_capacity(idat.len() + 64);
    png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = [0u8; 13];
    ihdr[..4].copy_from_slice(&(side as u32).to_be_bytes());
    ihdr[4..8].copy_from_slice(&(side as u32).to_be_bytes());
    ihdr[8] = 8; // bit depth; color type 0 (grayscale), compression, filter, interlace all 0
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32fast::hash(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// RFC 1950 zlib stream of one RFC 1951 fixed-Huffman block.
struct ZlibWriter {
    bits: BitWriter,
    /// Bytes per raw row: the filter byte and `side` pixels.
    row_len: usize,
    adler_a: u64,
    adler_b: u64,
}

const ADLER_MOD: u64 = 65521;

impl ZlibWriter {
    fn new(side: usize) -> Self {
        let mut bits = BitWriter {
            // Typically ~40 bytes per pixel column; avoids regrowing in the loop.
            out: Vec::with_capacity(side * 48),
            ..BitWriter::default()
        };
        bits.out.extend_from_slice(&[0x78, 0x01]); // deflate, 32 KiB window, no dictionary
        bits.put(1, 1); // BFINAL
        bits.put(1, 2); // BTYPE = 01, fixed Huffman codes
        ZlibWriter {
            bits,
            row_len: side + 1,
            adler_a: 1,
            adler_b: 0,
        }
    }

    /// `rows` (at least 1) identical raw rows: filter byte 0, then the pixel `runs`
    /// (value, length), which must add up to `side`.
    fn band(&mut self, runs: &[(u8, usize)], rows: usize) {
        if rows == 0 {
            return;
        }
        // First row: literals and distance-1 copies.
        self.bits.literal(0);
        let (mut sum, mut weighted) = (0u64, 0u64);
        let mut at = 1; // position in the raw row (0 is the filter byte, which adds nothing)
        for &(value, len) in runs.iter().filter(|r| r.1 > 0) {
            self.bits.run(value, len);
            // Adler-32 terms of the run: sum of bytes, and sum of byte × (row_len - position).
            let (v, c, p) = (u64::from(value), len as u64, at as u64);
            sum += v * c;
            weighted += v * (c * (self.row_len as u64 - p) - c * (c - 1) / 2);
            at += len;
        }
        debug_assert_eq!(at, self.row_len, "runs cover the row");
        // The other rows: one long copy of the row above.
        if rows > 1 {
            self.bits.copy((rows - 1) * self.row_len, self.row_len);
        }
        let (n, sum, weighted) = (self.row_len as u64, sum % ADLER_MOD, weighted % ADLER_MOD);
        for _ in 0..rows {
            self.adler_b = (self.adler_b + n % ADLER_MOD * self.adler_a + weighted) % ADLER_MOD;
            self.adler_a = (self.adler_a + sum) % ADLER_MOD;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.bits.huffman(0, 7); // end of block (symbol 256)
        let adler = ((self.adler_b << 16) | self.adler_a) as u32;
        let mut out = self.bits.finish();
        out.extend_from_slice(&adler.to_be_bytes());
        out
    }
}

/// Deflate's bit order: values LSB first, Huffman codes MSB first.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    pending: u32,
}

/// Length codes 257-285: first length and extra bits (RFC 1951 section 3.2.5).
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Distance codes 0-29: first distance and extra bits.
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u32; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// A code already in stream bit order: `bits` (LSB first) and how many.
#[derive(Clone, Copy, Default)]
struct Code {
    bits: u32,
    len: u32,
}

impl Code {
    /// `self` then `next`.
    fn then(self, next: Code) -> Code {
        Code {
            bits: self.bits | next.bits << self.len,
            len: self.len + next.len,
        }
    }
}

/// Per run length 1-258 (in bytes): literal + distance-1 copy of the rest, for a dark (0) and
/// a light (255) run; `len` 0 marks lengths that need more than one 27-bit code.
struct RunCodes {
    dark: [Code; 259],
    light: [Code; 259],
}

fn run_codes() -> &'static RunCodes {
    static TABLE: std::sync::OnceLock<RunCodes> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = RunCodes {
            dark: [Code::default(); 259],
            light: [Code::default(); 259],
        };
        for (value, table) in [(DARK, &mut t.dark), (LIGHT, &mut t.light)] {
            let literal = literal_code(value);
            table[1] = literal;
            table[2] = literal.then(literal);
            table[3] = literal.then(literal).then(literal);
            for (len, code) in table.iter_mut().enumerate().skip(4) {
                *code = literal.then(match_code(len - 1, 1));
            }
        }
        t
    })
}

fn huffman_code(code: u32, len: u32) -> Code {
    Code {
        bits: code.reverse_bits() >> (32 - len),
        len,
    }
}

/// A literal byte in the fixed code: 0-143 are 8 bits from 0x30, 144-255 9 bits from 0x190.
fn literal_code(byte: u8) -> Code {
    let v = u32::from(byte);
    if v < 144 {
        huffman_code(0x30 + v, 8)
    } else {
        huffman_code(0x190 + v - 144, 9)
    }
}

/// One match of `len` (3-258) bytes at `distance` (1-32768): length code, its extra bits,
/// distance code, its extra bits (at most 8 + 5 + 5 + 13 = 31 bits).
fn match_code(len: usize, distance: usize) -> Code {
    let i = LENGTH_BASE.partition_point(|&b| usize::from(b) <= len) - 1;
    let symbol = 257 + i as u32;
    // Length symbols 256-279 are 7 bits from 0, 280-287 8 bits from 0xC0.
    let length = if symbol < 280 {
        huffman_code(symbol - 256, 7)
    } else {
        huffman_code(0xC0 + symbol - 280, 8)
    };
    let d = DISTANCE_BASE.partition_point(|&b| usize::from(b) <= distance) - 1;
    length
        .then(Code {
            bits: (len - usize::from(LENGTH_BASE[i])) as u32,
            len: LENGTH_EXTRA[i],
        })
        .then(huffman_code(d as u32, 5))
        .then(Code {
            bits: (distance - usize::from(DISTANCE_BASE[d])) as u32,
            len: DISTANCE_EXTRA[d],
        })
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.pending;
        self.pending += count;
        if self.pending >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.pending -= 32;
        }
    }

    fn code(&mut self, c: Code) {
        self.put(c.bits, c.len);
    }

    /// `len` bytes of `value` (0 or 255): a literal, then a distance-1 copy of the rest.
    fn run(&mut self, value: u8, len: usize) {
        let table = if value == DARK {
            &run_codes().dark
        } else {
            &run_codes().light
        };
        match table.get(len) {
            Some(&c) => self.code(c),
            None => {
                self.literal(value);
                self.copy(len - 1, 1);
            }
        }
    }

    fn huffman(&mut self, code: u32, len: u32) {
        self.code(huffman_code(code, len));
    }

    fn literal(&mut self, byte: u8) {
        self.code(literal_code(byte));
    }

    /// Copies `len` (at least 3) bytes from `distance` (1 to 32768) back, in matches of at most
    /// 258 bytes each (overlapping copies repeat the source, as deflate specifies).
    fn copy(&mut self, len: usize, distance: usize) {
        let mut left = len;
        while left > 0 {
            // Never leave a remainder under 3, the shortest match.
            let n = match left {
                0..=258 => left,
                259..=260 => left - 3,
                _ => 258,
            };
            self.one_match(n, distance);
            left -= n;
        }
    }

    fn one_match(&mut self, len: usize, distance: usize) {
        let c = match_code(len, distance);
        // Up to 31 bits: in two parts so `put` never holds more than 63.
        self.put(c.bits & 0xffff, c.len.min(16));
        if c.len > 16 {
            self.put(c.bits >> 16, c.len - 16);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.pending > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.pending = self.pending.saturating_sub(8);
        }
        self.out
    }
}
