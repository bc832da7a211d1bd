//! One vocabulary in a compact form: for a byte string, whether it is a token and where it
//! stands in rank order.
//!
//! The tokens' bytes stay where `include_bytes!` put them, in the binary's read-only data, as
//! a length byte then the bytes of each token, in rank order (a token's id is its rank; see
//! data/README.md). On top of that blob sits one array built at load: an open-addressing hash
//! table (4 bytes per slot, three slots for every two tokens) of each token's offset in the
//! blob. The blob lists tokens in rank order, so offsets order tokens exactly as ranks do, and
//! merging only ever compares ranks: the offset serves as the rank, and no table from rank to
//! offset is needed. For o200k_base the table takes 1.2 MB besides the 1.6 MB of the blob; a
//! general-purpose map of owned byte strings would take several times as much.

use std::hash::BuildHasher;

/// Bits of a slot that hold an offset; the rest hold high bits of the token's hash, so that most
/// slots of other tokens are passed over without reading their bytes.
const OFFSET_BITS: u32 = 21;
const OFFSET_MASK: u32 = (1 << OFFSET_BITS) - 1;
/// A slot no token has taken. Its offset bits are all ones, past any blob the table may index.
const EMPTY: u32 = u32::MAX;
/// Offsets a table may hold lie below this: o200k_base's blob is 1,597,668 bytes.
const MAX_BLOB: usize = OFFSET_MASK as usize;

/// Fixed, not random, so that probe lengths are the same in every process. The table holds only
/// the vocabulary's own tokens, so a client choosing texts cannot lengthen a probe past the
/// longest run of taken slots, which a load factor of two thirds keeps short.
const HASH_SEED: u64 = 0x5eed_70c3_b10c_0001;

pub struct Vocab {
    blob: &'static [u8],
    /// Slots, each `EMPTY` or a token's offset in `blob` with its hash's high bits above it.
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
        let mut offsets = Vec::new();
        let mut at = 0usize;
        while let Some(&len) = blob.get(at) {
            let end = at + 1 + usize::from(len);
            if end > blob.len() || at >= MAX_BLOB {
                break;
            }
            offsets.push(at as u32);
            at = end;
        }
        let capacity = (offsets.len() * 3 / 2).max(2);
        let mut vocab = Vocab {
            blob,
            slots: vec![EMPTY; capacity].into_boxed_slice(),
            hasher: foldhash::quality::FixedState::with_seed(HASH_SEED),
            longest: 0,
        };
        // In rank order: see `insert`.
        for offset in offsets {
            vocab.insert(offset);
            vocab.longest = vocab.longest.max(vocab.token_at(offset).len());
        }
        vocab
    }

    fn insert(&mut self, offset: u32) {
        let hash = self.hasher.hash_one(self.token_at(offset));
        let mut at = self.home(hash);
        // A byte string listed twice (tiktoken's files list each once) is found at its lower
        // rank: both start probing at the same slot, and the first inserted sits nearer it.
        while self.slots[at] != EMPTY {
            at = self.after(at);
        }
        self.slots[at] = offset | tag(hash);
    }

    /// The slot a probe for `hash` starts at: its low 32 bits scaled to the table's length.
    fn home(&self, hash: u64) -> usize {
        (((hash & u64::from(u32::MAX)) * self.slots.len() as u64) >> 32) as usize
    }

    fn after(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() {
            0
        } else {
            at + 1
        }
    }

    /// The rank of `bytes` if they are a token, as an order: the token's offset in the blob,
    /// which is not its id but orders tokens as their ids do (all that merging compares).
    pub fn rank(&self, bytes: &[u8]) -> Option<u32> {
        if bytes.len() > self.longest {
            return None;
        }
        let hash = self.hasher.hash_one(bytes);
        let tag = tag(hash);
        let mut at = self.home(hash);
        // Ends: the table is never more than two thirds full, so an empty slot comes.
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            let offset = slot & OFFSET_MASK;
            if slot & !OFFSET_MASK == tag && self.token_at(offset) == bytes {
                return Some(offset);
            }
            at = self.after(at);
        }
    }

    /// The bytes of the token whose length byte is at `offset`; empty past the blob's end.
    fn token_at(&self, offset: u32) -> &'static [u8] {
        let start = offset as usize;
        let len = self.blob.get(start).map_or(0, |&len| usize::from(len));
        self.blob.get(start + 1..start + 1 + len).unwrap_or(&[])
    }

    /// How many tokens the vocabulary has.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|&&slot| slot != EMPTY).count()
    }

    /// Bytes held on the heap (the blob itself is in the binary).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u32>()
    }
}

/// The high bits of `hash`, in the place a slot keeps them.
fn tag(hash: u64) -> u32 {
    ((hash >> (64 - (32 - OFFSET_BITS))) as u32) << OFFSET_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_is_found_in_rank_order_and_other_strings_are_not() {
        static BLOB: &[u8] = b"\x01a\x01b\x02ab\x03abc\x00\x04abab";
        let vocab = Vocab::from_blob(BLOB);
        assert_eq!(vocab.len(), 6);
        let mut previous = None;
        for token in [&b"a"[..], b"b", b"ab", b"abc", b"", b"abab"] {
            let rank = vocab
                .rank(token)
                .unwrap_or_else(|| panic!("{token:?} not found"));
            assert_eq!(vocab.token_at(rank), token);
            assert!(previous < Some(rank), "{token:?} out of rank order");
            previous = Some(rank);
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
        assert!(vocab.rank(b"ab") > vocab.rank(b"a"));
        assert_eq!(vocab.rank(b"abc"), None);
        assert_eq!(vocab.token_at(70), b"");
    }

    #[test]
    fn a_string_listed_twice_is_found_at_its_first_place() {
        static BLOB: &[u8] = b"\x01x\x02xy\x01x";
        let vocab = Vocab::from_blob(BLOB);
        assert_eq!(vocab.rank(b"x"), Some(0));
    }
}
