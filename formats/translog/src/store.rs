//! The log on disk: one file per tree level (`level-00.bin` holds the leaf hashes, level l the
//! hashes of the complete runs of 2^l leaves), 32 bytes per hash, appended in order. Appends are
//! buffered until [`FileLog::flush`] (which fsyncs), so a pipeline flushes once per epoch; a crash
//! leaves at most a torn tail, which [`FileLog::open`] cuts off and repairs, and
//! [`FileLog::truncate`] takes the log back to a committed size (an aborted epoch).
//!
//! Memory: the unflushed hashes plus one hash per level; proofs read O(log^2 n) hashes from the
//! files (the operating system caches the upper levels, which are small).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::merkle::{node_hash, Hash, ProofError, Subtrees};

pub struct FileLog {
    dir: PathBuf,
    files: Vec<File>,
    /// Hashes written to each level's file.
    flushed: Vec<u64>,
    /// Hashes appended to each level since the last flush.
    pending: Vec<Vec<Hash>>,
}

fn io_err(path: &Path, e: std::io::Error) -> ProofError {
    ProofError::Storage(format!("{}: {e}", path.display()))
}

impl FileLog {
    /// Opens (or creates) the log in `dir`, cut back to the leaves fully written and with every
    /// upper level complete for them.
    pub fn open(dir: &Path) -> Result<Self, ProofError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut log = Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            flushed: Vec::new(),
            pending: Vec::new(),
        };
        log.ensure_level(0)?;
        let leaves = log.file_len(0)? / 32;
        log.truncate(leaves)?;
        Ok(log)
    }

    fn path(&self, level: usize) -> PathBuf {
        self.dir.join(format!("level-{level:02}.bin"))
    }

    fn ensure_level(&mut self, level: usize) -> Result<(), ProofError> {
        while self.files.len() <= level {
            let path = self.path(self.files.len());
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            let len = file.metadata().map_err(|e| io_err(&path, e))?.len() / 32;
            self.files.push(file);
            self.flushed.push(len);
            self.pending.push(Vec::new());
        }
        Ok(())
    }

    fn file_len(&self, level: usize) -> Result<u64, ProofError> {
        let path = self.path(level);
        Ok(self.files[level]
            .metadata()
            .map_err(|e| io_err(&path, e))?
            .len())
    }

    fn count(&self, level: usize) -> u64 {
        self.flushed.get(level).copied().unwrap_or(0)
            + self.pending.get(level).map_or(0, |p| p.len() as u64)
    }

    fn read(&self, level: usize, index: u64) -> Result<Hash, ProofError> {
        let flushed = self.flushed[level];
        if index >= flushed {
            return self.pending[level]
                .get((index - flushed) as usize)
                .copied()
                .ok_or_else(|| {
                    ProofError::Storage(format!("no subtree {index} at level {level}"))
                });
        }
        let mut h = [0u8; 32];
        self.files[level]
            .read_exact_at(&mut h, index * 32)
            .map_err(|e| io_err(&self.path(level), e))?;
        Ok(h)
    }

    /// Appends a leaf hash; returns its index. Durable after the next [`FileLog::flush`].
    pub fn push(&mut self, leaf: Hash) -> Result<u64, ProofError> {
        let index = self.size();
        let mut hash = leaf;
        let mut level = 0;
        loop {
            self.ensure_level(level)?;
            self.pending[level].push(hash);
            let n = self.count(level);
            if n % 2 == 1 {
                return Ok(index);
            }
            let left = self.read(level, n - 2)?;
            hash = node_hash(&left, &hash);
            level += 1;
        }
    }

    /// Writes and fsyncs everything appended since the last flush.
    pub fn flush(&mut self) -> Result<(), ProofError> {
        for level in 0..self.files.len() {
            if self.pending[level].is_empty() {
                continue;
            }
            let bytes: Vec<u8> = self.pending[level].iter().flatten().copied().collect();
            let path = self.path(level);
            self.files[level]
                .write_all(&bytes)
                .and_then(|()| self.files[level].sync_data())
                .map_err(|e| io_err(&path, e))?;
            self.flushed[level] += self.pending[level].len() as u64;
            self.pending[level].clear();
        }
        Ok(())
    }

    /// Takes the log back to its first `size` leaves (dropping anything unflushed), rebuilding
    /// upper-level hashes a crash left unwritten.
    pub fn truncate(&mut self, size: u64) -> Result<(), ProofError> {
        for p in &mut self.pending {
            p.clear();
        }
        let leaves = self.file_len(0)? / 32;
        if size > leaves {
            return Err(ProofError::Storage(format!(
                "cannot go back to {size} leaves: only {leaves} were written"
            )));
        }
        let mut level = 0;
        loop {
            let want = size >> level;
            if level > 0 && want == 0 && level >= self.files.len() {
                break;
            }
            self.ensure_level(level)?;
            let path = self.path(level);
            let have = self.file_len(level)? / 32;
            if have > want || self.file_len(level)? % 32 != 0 {
                self.files[level]
                    .set_len(want.min(have) * 32)
                    .map_err(|e| io_err(&path, e))?;
            }
            self.flushed[level] = want.min(have);
            // Complete runs whose hash never reached this level's file.
            for i in self.flushed[level]..want {
                let h = node_hash(
                    &self.read(level - 1, 2 * i)?,
                    &self.read(level - 1, 2 * i + 1)?,
                );
                self.pending[level].push(h);
            }
            if want == 0 {
                // Nothing above can be complete either.
                for upper in level + 1..self.files.len() {
                    self.files[upper]
                        .set_len(0)
                        .map_err(|e| io_err(&self.path(upper), e))?;
                    self.flushed[upper] = 0;
                }
                break;
            }
            level += 1;
        }
        self.flush()
    }
}

impl Subtrees for FileLog {
    fn size(&self) -> u64 {
        self.count(0)
    }

    fn perfect(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let level = level as usize;
        if level >= self.files.len() || index >= self.count(level) {
            return Err(ProofError::Storage(format!(
                "no subtree {index} at level {level}"
            )));
        }
        self.read(level, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, inclusion_proof, leaf_hash, root, MemoryTree};

    fn leaf(i: u64) -> Hash {
        leaf_hash(&i.to_be_bytes())
    }

    #[test]
    fn the_file_log_agrees_with_the_memory_tree_across_flushes_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = MemoryTree::new();
        let mut log = FileLog::open(dir.path()).unwrap();
        for i in 0..300u64 {
            assert_eq!(log.push(leaf(i)).unwrap(), i);
            mem.push(leaf(i));
            if i % 37 == 0 {
                log.flush().unwrap();
            }
            if i % 29 == 0 {
                let n = i + 1;
                assert_eq!(root(&log, n).unwrap(), root(&mem, n).unwrap());
            }
        }
        log.flush().unwrap();
        drop(log);
        let log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.size(), 300);
        for (a, b) in [(1u64, 300u64), (17, 255), (256, 300)] {
            assert_eq!(
                consistency_proof(&log, a, b).unwrap(),
                consistency_proof(&mem, a, b).unwrap()
            );
        }
        assert_eq!(
            inclusion_proof(&log, 123, 300).unwrap(),
            inclusion_proof(&mem, 123, 300).unwrap()
        );
    }

    #[test]
    fn truncation_and_torn_writes_come_back_to_a_consistent_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileLog::open(dir.path()).unwrap();
        for i in 0..100u64 {
            log.push(leaf(i)).unwrap();
        }
        log.flush().unwrap();
        let committed = root(&log, 77).unwrap();
        // An aborted epoch: back to 77, then different leaves.
        log.truncate(77).unwrap();
        assert_eq!(log.size(), 77);
        assert_eq!(root(&log, 77).unwrap(), committed);
        for i in 0..10u64 {
            log.push(leaf(1000 + i)).unwrap();
        }
        log.flush().unwrap();
        let mut mem = MemoryTree::new();
        for i in 0..77 {
            mem.push(leaf(i));
        }
        for i in 0..10 {
            mem.push(leaf(1000 + i));
        }
        assert_eq!(root(&log, 87).unwrap(), root(&mem, 87).unwrap());
        drop(log);
        // A crash mid-flush: a torn leaf and upper levels that never got written.
        let l0 = dir.path().join("level-00.bin");
        let f = OpenOptions::new().append(true).open(&l0).unwrap();
        (&f).write_all(&[7u8; 20]).unwrap();
        for level in 1..7 {
            let p = dir.path().join(format!("level-{level:02}.bin"));
            if p.exists() {
                std::fs::write(&p, b"").unwrap();
            }
        }
        let log = FileLog::open(dir.path()).unwrap();
        assert_eq!(log.size(), 87);
        assert_eq!(root(&log, 87).unwrap(), root(&mem, 87).unwrap());
    }
}
