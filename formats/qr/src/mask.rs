//! Choosing the data mask of a symbol quickly: the ISO/IEC 18004 penalty rules (section 7.8.3)
//! evaluated with bit-parallel operations on one bit set per row and per column: a `u128` up to
//! version 25 (117 modules), a 192-bit [`Line`] above.
//!
//! `qrcode`'s own `Canvas::apply_best_mask` clones the canvas eight times and scores each copy
//! module by module, which is ~95% of its encode time. Here the unmasked symbol is read once into
//! bit rows, each mask is an XOR with a precomputed pattern, and every rule is a handful of shifts
//! and popcounts per line. The mask chosen is the one with the lowest total penalty, as the
//! standard prescribes; the only simplification is that the 30 format-information modules
//! (not drawn yet when masks are compared) count as masked data modules, as `fast_qr` does too.
//! Any mask is decodable; the penalty only steers away from patterns that confuse scanners.

use std::ops::{BitAnd, BitXor, Not, Shl, Shr};
use std::sync::OnceLock;

/// Light modules kept left of each line: the first quiet-zone modules, so rule 3 also finds a
/// finder-like pattern that touches the symbol edge (the quiet zone supplies its light side).
const PAD: usize = 4;

/// A row or column of modules as a bit set (bit `PAD + i` = module `i`), with just the
/// operations the penalty rules need. Shifts take 1 to 63 bits.
pub(crate) trait Bits:
    Copy
    + Default
    + BitAnd<Output = Self>
    + BitXor<Output = Self>
    + Not<Output = Self>
    + Shr<u32, Output = Self>
    + Shl<u32, Output = Self>
{
    /// Capacity in bits.
    const BITS: usize;
    /// Widest symbol a line holds, quiet zone on both sides included.
    const MAX_WIDTH: usize = Self::BITS - 2 * PAD;
    fn ones(self) -> u32;
    fn set(&mut self, bit: usize);
    /// The low `Self::BITS` bits of `line`.
    fn from_line(line: Line) -> Self;
    #[cfg(test)]
    fn get(self, bit: usize) -> bool;

    /// Bits `from..to` set.
    fn range(from: usize, to: usize) -> Self {
        let mut l = Self::default();
        for bit in from..to {
            l.set(bit);
        }
        l
    }
}

impl Bits for u128 {
    const BITS: usize = 128;
    fn ones(self) -> u32 {
        self.count_ones()
    }
    fn set(&mut self, bit: usize) {
        *self |= 1 << bit;
    }
    fn from_line(line: Line) -> Self {
        u128::from(line.0[0]) | u128::from(line.0[1]) << 64
    }
    #[cfg(test)]
    fn get(self, bit: usize) -> bool {
        self >> bit & 1 == 1
    }
}

/// 192 bits: every QR symbol (version 40 has 177 modules) plus its quiet zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Line([u64; 3]);

impl Bits for Line {
    const BITS: usize = 192;
    fn ones(self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }
    fn from_line(line: Line) -> Self {
        line
    }
    #[cfg(test)]
    fn get(self, bit: usize) -> bool {
        self.0[bit / 64] >> (bit % 64) & 1 == 1
    }
}

impl BitAnd for Line {
    type Output = Line;
    fn bitand(self, o: Line) -> Line {
        Line([self.0[0] & o.0[0], self.0[1] & o.0[1], self.0[2] & o.0[2]])
    }
}

impl BitXor for Line {
    type Output = Line;
    fn bitxor(self, o: Line) -> Line {
        Line([self.0[0] ^ o.0[0], self.0[1] ^ o.0[1], self.0[2] ^ o.0[2]])
    }
}

impl Not for Line {
    type Output = Line;
    fn not(self) -> Line {
        Line([!self.0[0], !self.0[1], !self.0[2]])
    }
}

/// Towards bit 0 by `k` (1 to 63) bits: bit `i` of the result is bit `i + k`.
impl Shr<u32> for Line {
    type Output = Line;
    fn shr(self, k: u32) -> Line {
        debug_assert!((1..64).contains(&k));
        let w = self.0;
        Line([
            w[0] >> k | w[1] << (64 - k),
            w[1] >> k | w[2] << (64 - k),
            w[2] >> k,
        ])
    }
}

/// Away from bit 0 by `k` (1 to 63) bits: bit `i + k` of the result is bit `i`.
impl Shl<u32> for Line {
    type Output = Line;
    fn shl(self, k: u32) -> Line {
        debug_assert!((1..64).contains(&k));
        let w = self.0;
        Line([
            w[0] << k,
            w[1] << k | w[0] >> (64 - k),
            w[2] << k | w[1] >> (64 - k),
        ])
    }
}

/// Mask patterns repeat every 12 rows and every 12 columns (periods 2, 3, 4 and 6).
const PERIOD: usize = 12;

/// ISO/IEC 18004 mask conditions, numbered 0-7 (`x` = column, `y` = row); `true` inverts the
/// module. Same order and formulas as `qrcode::canvas::MaskPattern`.
fn mask_inverts(mask: usize, x: usize, y: usize) -> bool {
    match mask {
        0 => (x + y) % 2 == 0,
        1 => y % 2 == 0,
        2 => x % 3 == 0,
        3 => (x + y) % 3 == 0,
        4 => (y / 2 + x / 3) % 2 == 0,
        5 => (x * y) % 2 + (x * y) % 3 == 0,
        6 => ((x * y) % 2 + (x * y) % 3) % 2 == 0,
        _ => ((x + y) % 2 + (x * y) % 3) % 2 == 0,
    }
}

/// Per mask: `rows[y % 12]` has bit `PAD + x` set where the mask inverts `(x, y)`; `cols[x % 12]`
/// has bit `PAD + y` set likewise.
struct PatternTable {
    rows: [[Line; PERIOD]; 8],
    cols: [[Line; PERIOD]; 8],
}

fn patterns() -> &'static PatternTable {
    static TABLE: OnceLock<PatternTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = PatternTable {
            rows: [[Line::default(); PERIOD]; 8],
            cols: [[Line::default(); PERIOD]; 8],
        };
        for mask in 0..8 {
            for phase in 0..PERIOD {
                for i in 0..Line::MAX_WIDTH {
                    if mask_inverts(mask, i, phase) {
                        t.rows[mask][phase].set(PAD + i);
                    }
                    if mask_inverts(mask, phase, i) {
                        t.cols[mask][phase].set(PAD + i);
                    }
                }
            }
        }
        t
    })
}

/// An unmasked symbol as bit lines: bit `PAD + i` of line `j` is module `i` of row (or column)
/// `j`. `dark` holds the colors before masking, `maskable` the modules a mask applies to.
pub(crate) struct UnmaskedSymbol<L: Bits> {
    width: usize,
    dark_rows: Vec<L>,
    maskable_rows: Vec<L>,
    dark_cols: Vec<L>,
    maskable_cols: Vec<L>,
    /// The symbol's modules (`PAD..PAD + width`).
    inside: L,
    /// Where rule 3's 11-module windows may start: in the left quiet zone up to where they end
    /// in the right one.
    windows: L,
    /// [`patterns`] as `L`.
    row_patterns: [[L; PERIOD]; 8],
    col_patterns: [[L; PERIOD]; 8],
}

impl<L: Bits> UnmaskedSymbol<L> {
    /// Reads a `width` × `width` symbol through `module(x, y) -> (dark, maskable)`. `None` if the
    /// symbol is wider than `L::MAX_WIDTH`.
    pub(crate) fn read(
        width: usize,
        module: impl Fn(usize, usize) -> (bool, bool),
    ) -> Option<Self> {
        if width > L::MAX_WIDTH {
            return None;
        }
        let t = patterns();
        let mut s = UnmaskedSymbol {
            width,
            dark_rows: vec![L::default(); width],
            maskable_rows: vec![L::default(); width],
            dark_cols: vec![L::default(); width],
            maskable_cols: vec![L::default(); width],
            inside: L::range(PAD, PAD + width),
            windows: L::range(0, (width + 2 * PAD).saturating_sub(10)),
            row_patterns: t.rows.map(|phases| phases.map(L::from_line)),
            col_patterns: t.cols.map(|phases| phases.map(L::from_line)),
        };
        for y in 0..width {
            for x in 0..width {
                let (dark, maskable) = module(x, y);
                if dark {
                    s.dark_rows[y].set(PAD + x);
                    s.dark_cols[x].set(PAD + y);
                }
                if maskable {
                    s.maskable_rows[y].set(PAD + x);
                    s.maskable_cols[x].set(PAD + y);
                }
            }
        }
        Some(s)
    }

    /// The ISO penalty of the symbol under mask `mask` (0-7).
    pub(crate) fn penalty(&self, mask: usize) -> u32 {
        let w = self.width;
        let (inside, windows) = (self.inside, self.windows);
        let mut total = 0;
        let mut dark_modules = 0;
        let mut previous_row = L::default();
        for y in 0..w {
            let row =
                self.dark_rows[y] ^ (self.row_patterns[mask][y % PERIOD] & self.maskable_rows[y]);
            total += line_penalty(row, inside, windows);
            if y > 0 {
                total += 3 * same_color_blocks(previous_row, row, inside);
            }
            dark_modules += row.ones();
            previous_row = row;
        }
        for x in 0..w {
            let col =
                self.dark_cols[x] ^ (self.col_patterns[mask][x % PERIOD] & self.maskable_cols[x]);
            total += line_penalty(col, inside, windows);
        }
        total + balance_penalty(dark_modules, (w * w) as u32)
    }

    /// Whether module `(x, y)` is dark under mask `mask` (for tests against other maskers).
    #[cfg(test)]
    pub(crate) fn masked_is_dark(&self, mask: usize, x: usize, y: usize) -> bool {
        let row = self.dark_rows[y] ^ (self.row_patterns[mask][y % PERIOD] & self.maskable_rows[y]);
        let col = self.dark_cols[x] ^ (self.col_patterns[mask][x % PERIOD] & self.maskable_cols[x]);
        let (by_row, by_col) = (row.get(PAD + x), col.get(PAD + y));
        assert_eq!(by_row, by_col, "row and column views of ({x}, {y}) agree");
        by_row
    }

    /// The mask (0-7) with the lowest penalty; the lowest number on a tie.
    pub(crate) fn best_mask(&self) -> usize {
        (0..8).min_by_key(|&mask| self.penalty(mask)).unwrap_or(0)
    }
}

/// Rules 1 and 3 for one row or column.
fn line_penalty<L: Bits>(line: L, inside: L, windows: L) -> u32 {
    run_penalty(line & inside) + run_penalty(!line & inside) + 40 * finder_like(line, windows)
}

/// Rule 1 for the set bits of `v`: each run of `5 + i` modules costs `3 + i`.
fn run_penalty<L: Bits>(v: L) -> u32 {
    // Bit i of `fives` is set when bits i..i+4 all are: a run of length L sets L - 4 such bits.
    let pairs = v & (v >> 1);
    let fives = pairs & (pairs >> 2) & (v >> 4);
    let runs = (fives & !(fives << 1)).ones();
    // Sum over runs of (3 + L - 5) = (L - 4) + 2.
    fives.ones() + 2 * runs
}

/// Rule 3: windows `dark light dark dark dark light dark` with 4 light modules after
/// (`10111010000`) or before (`00001011101`) it. Outside the symbol everything is light.
fn finder_like<L: Bits>(line: L, windows: L) -> u32 {
    let (d, l) = (line, !line);
    // Bit i: modules i..i+6 are `1011101`.
    let core = d & (l >> 1) & (d >> 2) & (d >> 3) & (d >> 4) & (l >> 5) & (d >> 6);
    // Bit i: modules i..i+3 are light.
    let light_pairs = l & (l >> 1);
    let four_light = light_pairs & (light_pairs >> 2);
    let after = core & (four_light >> 7) & windows;
    let before = four_light & (core >> 4) & windows;
    after.ones() + before.ones()
}

/// Rule 2: 2 × 2 blocks of one color with their top row in `upper`.
fn same_color_blocks<L: Bits>(upper: L, lower: L, inside: L) -> u32 {
    let vertical_same = !(upper ^ lower);
    let horizontal_same = !(upper ^ (upper >> 1));
    (vertical_same & (vertical_same >> 1) & horizontal_same & inside & (inside >> 1)).ones()
}

/// Rule 4: 10 points per full 5% the dark share is away from 50%.
fn balance_penalty(dark: u32, total: u32) -> u32 {
    let percent_off = (dark * 100).abs_diff(total * 50) / total;
    10 * (percent_off / 5)
}
