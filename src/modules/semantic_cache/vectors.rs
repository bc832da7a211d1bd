//! Nearest-neighbour search over the semantic cache's vectors, brute force, in memory.
//!
//! Vectors are stored unit length, so cosine similarity is a dot product. Each partition (one
//! namespace, model, system prompt and parameter set: only entries that could answer each other)
//! keeps its vectors twice: quantised to `i8` in one contiguous array, which the scan reads (a
//! quarter of the bytes of `f32`, and the integer dot product vectorises), and as `f32`, which
//! re-scores the best few candidates exactly. At 100k entries of 256 dimensions the scan reads
//! 25 MB, within a few milliseconds on one core.

use std::collections::HashMap;

/// How many of the best quantised candidates are re-scored exactly.
const RESCORE: usize = 4;

/// Rows of one partition, parallel arrays indexed by row.
#[derive(Default)]
pub struct Partition {
    dims: usize,
    quantised: Vec<i8>,
    floats: Vec<f32>,
    /// Each row's entry key (namespace-unique).
    pub keys: Vec<String>,
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

fn quantise(v: &[f32]) -> impl Iterator<Item = i8> + '_ {
    v.iter()
        .map(|x| (x * 127.0).round().clamp(-127.0, 127.0) as i8)
}

/// The integer dot product, in lanes of 32 so the compiler keeps it in vector registers.
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 32];
    let mut ca = a.chunks_exact(32);
    let mut cb = b.chunks_exact(32);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..32 {
            lanes[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let tail: i32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    lanes.iter().sum::<i32>() + tail
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
        }
        if v.len() != self.dims || v.is_empty() {
            return false;
        }
        self.quantised.extend(quantise(v));
        self.floats.extend_from_slice(v);
        self.keys.push(key);
        true
    }

    /// Removes the row of `key` (the last row takes its place).
    pub fn remove(&mut self, key: &str) {
        let Some(row) = self.keys.iter().position(|k| k == key) else {
            return;
        };
        let last = self.keys.len() - 1;
        let d = self.dims;
        if row != last {
            self.quantised
                .copy_within(last * d..(last + 1) * d, row * d);
            self.floats.copy_within(last * d..(last + 1) * d, row * d);
        }
        self.quantised.truncate(last * d);
        self.floats.truncate(last * d);
        self.keys.swap_remove(row);
    }

    /// The row most similar to the unit vector `query`, with its exact similarity.
    pub fn nearest(&self, query: &[f32]) -> Option<Nearest> {
        if query.len() != self.dims || self.keys.is_empty() {
            return None;
        }
        let q: Vec<i8> = quantise(query).collect();
        // The best few by the quantised score, kept sorted, best first.
        let mut best: [(i32, usize); RESCORE] = [(i32::MIN, usize::MAX); RESCORE];
        for (row, v) in self.quantised.chunks_exact(self.dims).enumerate() {
            let score = dot_i8(v, &q);
            if score > best[RESCORE - 1].0 {
                let mut at = RESCORE - 1;
                while at > 0 && best[at - 1].0 < score {
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
