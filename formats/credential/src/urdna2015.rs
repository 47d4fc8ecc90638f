//! RDF Dataset Canonicalization: RDFC-1.0, the W3C Recommendation of the URDNA2015 algorithm.
//!
//! Signatures over JSON-LD credentials are computed over the canonical N-Quads of the document, so
//! this must be bit-exact with other implementations (jsonld.js / rdf-canonize, PyLD). The full
//! algorithm is implemented, including "Hash N-Degree Quads" for blank nodes whose first-degree
//! hashes collide. Because that step is exponential on adversarial ("poison") graphs, a work budget
//! bounds it and canonicalization fails with [`CanonError::TooComplex`] instead of hanging.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::error::CanonError;
use crate::rdf::{write_quad, Dataset, Escaping, Quad, Term};

/// Upper bound on Hash N-Degree Quads invocations plus permutations explored for one dataset.
/// Credentials need none (their blank nodes have distinct first-degree hashes); the bound only
/// exists to stop poison graphs.
const WORK_BUDGET: u64 = 100_000;

/// Largest group of related blank nodes whose permutations are enumerated (8! = 40,320).
const MAX_GROUP: usize = 8;

/// Canonicalizes `dataset` and returns canonical N-Quads (sorted lines, each ending in `\n`).
///
/// The dataset is treated as a set: duplicate quads are ignored.
pub fn canonicalize(dataset: &Dataset, escaping: Escaping) -> Result<String, CanonError> {
    if !dataset.quads.windows(2).all(|w| w[0] < w[1]) {
        let mut normalized = dataset.clone();
        normalized.normalize();
        return canonicalize(&normalized, escaping);
    }
    let labels = canonical_labels(dataset, escaping)?;
    Ok(serialize_with_labels(dataset, &labels, escaping))
}

/// Serializes `dataset` with the given canonical labels (`labels[b]` is the `c14n` number of blank
/// node `b`), sorting the lines in code point order.
pub(crate) fn serialize_with_labels(
    dataset: &Dataset,
    labels: &[u32],
    escaping: Escaping,
) -> String {
    let blank = |b: u32, out: &mut String| {
        out.push_str("_:c14n");
        push_u32(out, labels.get(b as usize).copied().unwrap_or(u32::MAX));
    };
    // All lines go into one buffer; sorting ranges avoids an allocation per line.
    let mut buf = String::with_capacity(dataset.quads.len() * 128);
    let mut ranges = Vec::with_capacity(dataset.quads.len());
    for q in &dataset.quads {
        let start = buf.len();
        write_quad(&mut buf, q, escaping, &blank);
        ranges.push(start..buf.len());
    }
    // Byte order of UTF-8 is code point order, which RDFC-1.0 prescribes.
    ranges.sort_unstable_by(|a, b| buf[a.clone()].cmp(&buf[b.clone()]));
    ranges.dedup_by(|a, b| buf[a.clone()] == buf[b.clone()]);
    let mut out = String::with_capacity(buf.len());
    for r in ranges {
        out.push_str(&buf[r]);
    }
    out
}

fn push_u32(out: &mut String, n: u32) {
    use std::fmt::Write as _;
    let _ = write!(out, "{n}");
}

/// Computes the canonical label number of every blank node of `dataset`.
/// Blank node indexes that no quad mentions get `u32::MAX`.
///
/// `dataset` must not contain duplicate quads (see [`Dataset::normalize`]).
pub fn canonical_labels(dataset: &Dataset, escaping: Escaping) -> Result<Vec<u32>, CanonError> {
    let mut state = State::new(dataset, escaping);
    state.run()?;
    Ok(state.canonical.labels(dataset.blank_count as usize))
}

/// Issues identifiers in order (the "identifier issuer" of the spec).
#[derive(Clone, Debug)]
struct Issuer {
    prefix: &'static str,
    map: HashMap<u32, u32>,
    order: Vec<u32>,
}

impl Issuer {
    fn new(prefix: &'static str) -> Self {
        Issuer {
            prefix,
            map: HashMap::new(),
            order: Vec::new(),
        }
    }

    fn get(&self, b: u32) -> Option<u32> {
        self.map.get(&b).copied()
    }

    fn issue(&mut self, b: u32) -> u32 {
        if let Some(n) = self.map.get(&b) {
            return *n;
        }
        let n = self.order.len() as u32;
        self.map.insert(b, n);
        self.order.push(b);
        n
    }

    fn push_label(&self, out: &mut String, n: u32) {
        out.push_str(self.prefix);
        push_u32(out, n);
    }

    fn labels(&self, count: usize) -> Vec<u32> {
        let mut v = vec![u32::MAX; count];
        for (n, b) in self.order.iter().enumerate() {
            if let Some(slot) = v.get_mut(*b as usize) {
                *slot = n as u32;
            }
        }
        v
    }
}

struct State<'a> {
    quads: &'a [Quad],
    escaping: Escaping,
    /// blank node -> indexes of the quads mentioning it
    blank_quads: Vec<Vec<usize>>,
    first_degree: Vec<Option<String>>,
    canonical: Issuer,
    work: u64,
}

fn sha256_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

fn blank_of(t: &Term) -> Option<u32> {
    match t {
        Term::Blank(b) => Some(*b),
        _ => None,
    }
}

impl<'a> State<'a> {
    fn new(dataset: &'a Dataset, escaping: Escaping) -> Self {
        let n = dataset.blank_count as usize;
        let mut blank_quads = vec![Vec::new(); n];
        for (i, q) in dataset.quads.iter().enumerate() {
            let comps = [Some(&q.subject), Some(&q.object), q.graph.as_ref()];
            for b in comps.into_iter().flatten().filter_map(blank_of) {
                if let Some(list) = blank_quads.get_mut(b as usize) {
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
            }
        }
        State {
            quads: &dataset.quads,
            escaping,
            blank_quads,
            first_degree: vec![None; n],
            canonical: Issuer::new("_:c14n"),
            work: 0,
        }
    }

    fn run(&mut self) -> Result<(), CanonError> {
        // Steps 3-4: first-degree hashes; unique ones get canonical ids in hash order.
        let mut by_hash: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for b in 0..self.blank_quads.len() as u32 {
            if self.blank_quads[b as usize].is_empty() {
                continue;
            }
            let h = self.hash_first_degree(b);
            by_hash.entry(h).or_default().push(b);
        }
        let mut shared: Vec<Vec<u32>> = Vec::new();
        for nodes in by_hash.into_values() {
            if nodes.len() == 1 {
                self.canonical.issue(nodes[0]);
            } else {
                shared.push(nodes);
            }
        }
        // Step 5: the remaining groups, in hash order, via Hash N-Degree Quads.
        for nodes in shared {
            let mut results: Vec<(String, Issuer)> = Vec::new();
            for &b in &nodes {
                if self.canonical.get(b).is_some() {
                    continue;
                }
                let mut temp = Issuer::new("_:b");
                temp.issue(b);
                results.push(self.hash_n_degree(b, &temp)?);
            }
            results.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, issuer) in results {
                for &b in &issuer.order {
                    self.canonical.issue(b);
                }
            }
        }
        Ok(())
    }

    fn hash_first_degree(&mut self, b: u32) -> String {
        if let Some(h) = &self.first_degree[b as usize] {
            return h.clone();
        }
        let blank = |x: u32, out: &mut String| out.push_str(if x == b { "_:a" } else { "_:z" });
        let mut lines: Vec<String> = self.blank_quads[b as usize]
            .iter()
            .map(|&qi| {
                let mut line = String::with_capacity(128);
                write_quad(&mut line, &self.quads[qi], self.escaping, &blank);
                line
            })
            .collect();
        lines.sort_unstable();
        let h = sha256_hex(lines.concat().as_bytes());
        self.first_degree[b as usize] = Some(h.clone());
        h
    }

    fn hash_related(
        &mut self,
        related: u32,
        quad: usize,
        issuer: &Issuer,
        position: char,
    ) -> String {
        let mut input = String::with_capacity(160);
        input.push(position);
        if position != 'g' {
            input.push('<');
            input.push_str(&self.quads[quad].predicate);
            input.push('>');
        }
        if let Some(n) = self.canonical.get(related) {
            self.canonical.push_label(&mut input, n);
        } else if let Some(n) = issuer.get(related) {
            issuer.push_label(&mut input, n);
        } else {
            input.push_str(&self.hash_first_degree(related));
        }
        sha256_hex(input.as_bytes())
    }

    fn spend(&mut self) -> Result<(), CanonError> {
        self.work += 1;
        if self.work > WORK_BUDGET {
            return Err(CanonError::TooComplex);
        }
        Ok(())
    }

    fn hash_n_degree(&mut self, id: u32, issuer: &Issuer) -> Result<(String, Issuer), CanonError> {
        self.spend()?;
        // Group the adjacent blank nodes by their related hash.
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let quad_ids = self.blank_quads[id as usize].clone();
        for qi in quad_ids {
            let q = &self.quads[qi];
            let comps = [
                (blank_of(&q.subject), 's'),
                (blank_of(&q.object), 'o'),
                (q.graph.as_ref().and_then(blank_of), 'g'),
            ];
            for (related, pos) in comps {
                if let Some(r) = related.filter(|r| *r != id) {
                    let h = self.hash_related(r, qi, issuer, pos);
                    groups.entry(h).or_default().push(r);
                }
            }
        }
        let mut issuer = issuer.clone();
        let mut data = String::new();
        for (hash, related) in groups {
            data.push_str(&hash);
            let mut chosen_path = String::new();
            let mut chosen_issuer: Option<Issuer> = None;
            if related.len() > MAX_GROUP {
                return Err(CanonError::TooComplex);
            }
            for perm in permutations(&related) {
                self.spend()?;
                let mut issuer_copy = issuer.clone();
                let mut path = String::new();
                let mut recursion = Vec::new();
                let mut skip = false;
                for &r in &perm {
                    if let Some(n) = self.canonical.get(r) {
                        self.canonical.push_label(&mut path, n);
                    } else {
                        if issuer_copy.get(r).is_none() {
                            recursion.push(r);
                        }
                        let n = issuer_copy.issue(r);
                        issuer_copy.push_label(&mut path, n);
                    }
                    if worse(&path, &chosen_path) {
                        skip = true;
                        break;
                    }
                }
                if skip {
                    continue;
                }
                for r in recursion {
                    let (h, result_issuer) = self.hash_n_degree(r, &issuer_copy)?;
                    let n = issuer_copy.issue(r);
                    issuer_copy.push_label(&mut path, n);
                    path.push('<');
                    path.push_str(&h);
                    path.push('>');
                    issuer_copy = result_issuer;
                    if worse(&path, &chosen_path) {
                        skip = true;
                        break;
                    }
                }
                if skip {
                    continue;
                }
                if chosen_issuer.is_none() || path < chosen_path {
                    chosen_path = path;
                    chosen_issuer = Some(issuer_copy);
                }
            }
            data.push_str(&chosen_path);
            if let Some(ci) = chosen_issuer {
                issuer = ci;
            }
        }
        Ok((sha256_hex(data.as_bytes()), issuer))
    }
}

/// The spec's pruning rule: a partial path that is already longer-or-equal and greater than the
/// chosen path can never win.
fn worse(path: &str, chosen: &str) -> bool {
    !chosen.is_empty() && path.len() >= chosen.len() && path > chosen
}

/// All permutations of `items` (Heap's algorithm). Callers bound `items.len()` by [`MAX_GROUP`].
fn permutations(items: &[u32]) -> Vec<Vec<u32>> {
    let mut a = items.to_vec();
    let n = a.len();
    let mut out = vec![a.clone()];
    let mut c = vec![0usize; n];
    let mut i = 0;
    while i < n {
        if c[i] < i {
            if i % 2 == 0 {
                a.swap(0, i);
            } else {
                a.swap(c[i], i);
            }
            out.push(a.clone());
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
