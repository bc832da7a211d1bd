//! One vocabulary in a compact form: the rank of a byte string, or none if it is not a token.
//!
//! The tokens' bytes stay where `include_bytes!` put them, in the binary's read-only data, as
//! a length byte then the bytes of each token, in rank order (a token's id is its rank; see
//! data/README.md). On top of that blob sit two arrays built at load: where each token starts
//! (4 bytes per token) and an open-addressing hash table of ranks (4 bytes per slot, at least
//! two slots per token so that probes stay short). For o200k_base the two take 2.8 MB, besides
//! the 1.6 MB of the blob; a general-purpose map of owned byte strings would take several
//! times as much.

use std::hash::BuildHasher;

/// Bits of a slot that hold a rank; the rest hold high bits of the token's hash, so that most
/// slots of other tokens are passed over without reading their bytes.
const RANK_BITS: u32 = 18;
const RANK_MASK: u32 = (1 << RANK_BITS) - 1;
/// A slot no token has taken. Its rank bits are all ones, a rank no vocabulary may reach.
const EMPTY: u32 = u32::MAX;
/// Tokens a vocabulary may have: o200k_base has 199,998.
const MAX_TOKENS: usize = RANK_MASK as usize;

/// Fixed, not random, so that probe lengths are the same in every process. The table holds only
/// the vocabulary's own tokens, so a client choosing texts cannot lengthen a probe past the
/// longest run of taken slots, which load factor under one half keeps short.
const HASH_SEED: u64 = 0x5eed_70c3_b10c_0001;

pub struct Vocab {
    blob: &'static [u8],
    /// Offset in `blob` of each token's length byte, by rank.
    starts: Box<[u32]>,
    /// A power of two of slots, each `EMPTY` or a rank with its hash's high bits above it.
    slots: Box<[u32]>,
    hasher: foldhash::quality::FixedState,
    /// The length of the longest token (128 bytes in both vocabularies): a longer string, as
    /// a long piece's joins soon are, is answered without hashing it.
    longest: usize,
}

impl Vocab {
    /// Reads `blob` as length-prefixed tokens in rank order. It cannot fail: a blob cut short
    /// ends the vocabulary at the last whole token (a test checks that the committed files hold
    /// every token of the reference tokenizer).
    pub fn from_blob(blob: &'static [u8]) -> Vocab {
        let mut starts = Vec::new();
        let mut at = 0usize;
        while let Some(&len) = blob.get(at) {
            let end = at + 1 + usize::from(len);
            let Ok(start) = u32::try_from(at) else { break };
            if end > blob.len() || starts.len() >= MAX_TOKENS {
                break;
            }
            starts.push(start);
            at = end;
        }
        let capacity = (starts.len() * 2).next_power_of_two().max(2);
        let mut vocab = Vocab {
            blob,
            starts: starts.into_boxed_slice(),
            slots: vec![EMPTY; capacity].into_boxed_slice(),
            hasher: foldhash::quality::FixedState::with_seed(HASH_SEED),
            longest: 0,
        };
        for rank in 0..vocab.starts.len() as u32 {
            vocab.insert(rank);
            vocab.longest = vocab.longest.max(vocab.token(rank).len());
        }
        vocab
    }

    fn insert(&mut self, rank: u32) {
        let hash = self.hasher.hash_one(self.token(rank));
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        // A byte string listed twice (tiktoken's files list each once) is found at its lower
        // rank: both start probing at the same slot, and the first inserted sits nearer it.
        while self.slots[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = rank | tag(hash);
    }

    /// The rank of `bytes` if they are a token.
    pub fn rank(&self, bytes: &[u8]) -> Option<u32> {
        if bytes.len() > self.longest {
            return None;
        }
        let hash = self.hasher.hash_one(bytes);
        let tag = tag(hash);
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        // Ends: the table is never more than half full, so an empty slot comes.
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            let rank = slot & RANK_MASK;
            if slot & !RANK_MASK == tag && self.token(rank) == bytes {
                return Some(rank);
            }
            at = (at + 1) & mask;
        }
    }

    /// The bytes of the token of `rank`; empty for a rank past the last.
    pub fn token(&self, rank: u32) -> &'static [u8] {
        let Some(&start) = self.starts.get(rank as usize) else {
            return &[];
        };
        let start = start as usize;
        let len = self.blob.get(start).map_or(0, |&len| usize::from(len));
        self.blob.get(start + 1..start + 1 + len).unwrap_or(&[])
    }

    /// How many tokens the vocabulary has.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Bytes held on the heap (the blob itself is in the binary).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        (self.starts.len() + self.slots.len()) * std::mem::size_of::<u32>()
    }
}

/// The high bits of `hash`, in the place a slot keeps them.
fn tag(hash: u64) -> u32 {
    ((hash >> (64 - (32 - RANK_BITS))) as u32) << RANK_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_is_found_at_its_rank_and_other_strings_are_not() {
        static BLOB: &[u8] = b"\x01a\x01b\x02ab\x03abc\x00\x04abab";
        let vocab = Vocab::from_blob(BLOB);
        assert_eq!(vocab.len(), 6);
        for (rank, token) in [&b"a"[..], b"b", b"ab", b"abc", b"", b"abab"]
            .iter()
            .enumerate()
        {
            assert_eq!(vocab.rank(token), Some(rank as u32), "{token:?}");
            assert_eq!(vocab.token(rank as u32), *token);
        }
        assert_eq!(vocab.rank(b"ba"), None);
        assert_eq!(vocab.rank(b"abcd"), None);
        assert_eq!(vocab.rank(&[b'a'; 300]), None);
    }

    #[test]
    fn a_blob_cut_short_ends_at_its_last_whole_token() {
        static BLOB: &[u8] = b"\x01a\x02ab\x05abc";
        let vocab = Vocab::from_blob(BLOB);
        assert_eq!(vocab.len(), 2);
        assert_eq!(vocab.rank(b"ab"), Some(1));
        assert_eq!(vocab.rank(b"abc"), None);
        assert_eq!(vocab.token(7), b"");
    }
}
