//! Nearest-neighbour search over the semantic cache's vectors, brute force, in memory.
//!
//! Vectors are stored unit length, so cosine similarity is a dot product. Each partition (one
//! namespace, model, system prompt and parameter set: only entries that could answer each other)
//! keeps its vectors twice, each in one contiguous array: as sign bits (one bit per dimension),
//! which the scan reads, and as `f32`, which re-scores the best candidates exactly.
//!
//! The sign bits are a random-hyperplane hash: two vectors at angle θ differ in about θ/π of
//! their bits, so the nearest by Hamming distance are the nearest by angle, up to noise. At 256
//! dimensions a vector at cosine 0.95 (18°) differs in ~26 bits, an unrelated one in ~128 ± 8, so
//! the true neighbour is among the best [`RESCORE`] by a wide margin, and the exact `f32` score
//! decides among those. The scan reads 32 bytes per entry instead of 1 KiB (3.2 MB at 100k
//! entries, which stays in cache), and a Hamming distance is four XORs and population counts.

use std::collections::HashMap;

/// How many of the best candidates by Hamming distance are re-scored exactly.
const RESCORE: usize = 32;

/// Rows of one partition, parallel arrays indexed by row.
#[derive(Default)]
pub struct Partition {
    dims: usize,
    /// `words` u64s of sign bits per row.
    bits: Vec<u64>,
    words: usize,
    floats: Vec<f32>,
    /// Each row's entry key (namespace-unique).
    pub keys: Vec<String>,
    /// Each key's row.
    rows: HashMap<String, usize>,
}

/// A search result: the row's key and its exact cosine similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct Nearest {
    pub key: String,
    pub similarity: f32,
}

/// Scales `v` to unit length in place; `false` for a zero vector (nothing to compare).
pub fn normalise(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    for x in v.iter_mut() {
        *x /= norm;
    }
    true
}

/// The sign bits of `v`, 64 dimensions per word.
fn sign_bits(v: &[f32]) -> impl Iterator<Item = u64> + '_ {
    v.chunks(64).map(|chunk| {
        chunk
            .iter()
            .enumerate()
            .fold(0u64, |word, (i, x)| word | (u64::from(*x > 0.0) << i))
    })
}

fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Partition {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds a unit vector; a vector of another dimension than the partition's is refused.
    pub fn push(&mut self, key: String, v: &[f32]) -> bool {
        if self.keys.is_empty() {
            self.dims = v.len();
            self.words = v.len().div_ceil(64);
        }
        if v.len() != self.dims || v.is_empty() {
            return false;
        }
        if self.rows.contains_key(&key) {
            self.remove(&key);
        }
        self.bits.extend(sign_bits(v));
        self.floats.extend_from_slice(v);
        self.rows.insert(key.clone(), self.keys.len());
        self.keys.push(key);
        true
    }

    /// Removes the row of `key` (the last row takes its place).
    pub fn remove(&mut self, key: &str) {
        let Some(row) = self.rows.remove(key) else {
            return;
        };
        let last = self.keys.len() - 1;
        let (d, w) = (self.dims, self.words);
        if row != last {
            self.bits.copy_within(last * w..(last + 1) * w, row * w);
            self.floats.copy_within(last * d..(last + 1) * d, row * d);
            if let Some(moved) = self.rows.get_mut(&self.keys[last]) {
                *moved = row;
            }
        }
        self.bits.truncate(last * w);
        self.floats.truncate(last * d);
        self.keys.swap_remove(row);
    }

    /// The row most similar to the unit vector `query`, with its exact similarity.
    pub fn nearest(&self, query: &[f32]) -> Option<Nearest> {
        if query.len() != self.dims || self.keys.is_empty() {
            return None;
        }
        let q: Vec<u64> = sign_bits(query).collect();
        // The best few by Hamming distance, kept sorted, best first.
        let mut best: [(u32, usize); RESCORE] = [(u32::MAX, usize::MAX); RESCORE];
        for (row, v) in self.bits.chunks_exact(self.words).enumerate() {
            let distance = hamming(v, &q);
            if distance < best[RESCORE - 1].0 {
                let score = distance;
                let mut at = RESCORE - 1;
                while at > 0 && best[at - 1].0 > score {
                    best[at] = best[at - 1];
                    at -= 1;
                }
                best[at] = (score, row);
            }
        }
        best.iter()
            .filter(|(_, row)| *row != usize::MAX)
            .map(|&(_, row)| {
                let v = &self.floats[row * self.dims..(row + 1) * self.dims];
                (row, dot_f32(v, query))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(row, similarity)| Nearest {
                key: self.keys[row].clone(),
                similarity,
            })
    }
}

/// Partitions by name.
#[derive(Default)]
pub struct Vectors {
    pub partitions: HashMap<String, Partition>,
}

impl Vectors {
    pub fn push(&mut self, partition: &str, key: String, v: &[f32]) -> bool {
        self.partitions
            .entry(partition.to_string())
            .or_default()
            .push(key, v)
    }

    pub fn remove(&mut self, partition: &str, key: &str) {
        if let Some(p) = self.partitions.get_mut(partition) {
            p.remove(key);
            if p.is_empty() {
                self.partitions.remove(partition);
            }
        }
    }

    pub fn nearest(&self, partition: &str, query: &[f32]) -> Option<Nearest> {
        self.partitions.get(partition)?.nearest(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        let mut state = seed;
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
            })
            .collect();
        normalise(&mut v);
        v
    }

    #[test]
    fn the_nearest_row_is_found_and_removal_keeps_the_rest() {
        let mut p = Partition::default();
        for i in 0..500 {
            assert!(p.push(format!("k{i}"), &unit(i, 64)));
        }
        let found = p.nearest(&unit(123, 64)).unwrap_or_else(|| panic!("none"));
        assert_eq!(found.key, "k123");
        assert!((found.similarity - 1.0).abs() < 1e-5);
        p.remove("k123");
        p.remove("k0");
        assert_eq!(p.len(), 498);
        let found = p.nearest(&unit(123, 64)).unwrap_or_else(|| panic!("none"));
        assert_ne!(found.key, "k123");
        assert!(found.similarity < 0.9);
        assert_eq!(
            p.nearest(&unit(499, 64)).map(|n| n.key),
            Some("k499".into())
        );
        assert!(!p.push("wrong".into(), &unit(1, 32)));
    }
}
