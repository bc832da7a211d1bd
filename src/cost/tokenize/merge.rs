//! The BPE count of one pre-tokenized piece, by tiktoken's rule: a piece that is a token is one
//! token; otherwise start from its single bytes and, while some adjacent pair of parts joins
//! into a token, join the pair whose token has the lowest rank (the leftmost such pair when
//! the same token could be made in several places). The count is the number of parts left.
//!
//! A short piece (most of them) is merged the way tiktoken does it, scanning all pairs for the
//! lowest rank after each merge. That is quadratic in the piece's length, and a client decides
//! how long a piece is (100 KB of '=' is one piece), so a longer piece is merged with a heap of
//! candidate pairs instead: O(n log n). Both must give the same count; a test holds them to it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// Pieces up to this many bytes take the scan; longer ones the heap.
const SCAN_MAX_BYTES: usize = 32;
/// Longest stretch of one piece merged as a whole. A longer piece (only a pathological text
/// makes one: 64 KB of '=' or of spaces) is counted in stretches of this size, so the heap's
/// buffers, some 28 bytes per byte of the piece, stay under 2 MB whatever the body limit; a
/// merge that would have crossed a stretch's end is lost, about a token per 64 KB.
const EXACT_MAX_BYTES: usize = 64 * 1024;
/// The rank of a pair that does not join into a token.
const NO_TOKEN: u32 = u32::MAX;

/// Buffers for long pieces, reused from piece to piece of one text.
#[derive(Default)]
pub struct Scratch {
    /// Per byte position that starts a part: where the next part starts.
    next: Vec<u32>,
    /// Per byte position that starts a part: where the previous part starts.
    prev: Vec<u32>,
    /// Per byte position that starts a part: the rank of it joined with the next part.
    pair: Vec<u32>,
    /// Candidate joins as [`join_key`]s: lowest rank, then leftmost, first.
    heap: BinaryHeap<Reverse<u64>>,
}

/// Tokens in `piece` under `vocab`.
pub fn count_piece(vocab: &Vocab, piece: &[u8], scratch: &mut Scratch) -> usize {
    match piece.len() {
        0 => 0,
        1 => 1,
        _ if vocab.rank(piece).is_some() => 1,
        len if len <= SCAN_MAX_BYTES => count_by_scan(vocab, piece),
        len if len <= EXACT_MAX_BYTES => count_by_heap(vocab, piece, scratch),
        _ => piece
            .chunks(EXACT_MAX_BYTES)
            .map(|stretch| count_piece(vocab, stretch, scratch))
            .sum(),
    }
}

/// tiktoken's merge loop, on the stack.
fn count_by_scan(vocab: &Vocab, piece: &[u8]) -> usize {
    let len = piece.len().min(SCAN_MAX_BYTES);
    // Part `i` is piece[starts[i]..starts[i + 1]]; pair[i] is the rank of parts i and i + 1
    // joined.
    let mut starts: [usize; SCAN_MAX_BYTES + 1] = std::array::from_fn(|i| i);
    let mut pair = [NO_TOKEN; SCAN_MAX_BYTES];
    for (i, rank) in pair.iter_mut().enumerate().take(len - 1) {
        *rank = vocab.rank(&piece[i..i + 2]).unwrap_or(NO_TOKEN);
    }
    let mut parts = len;
    let join = |starts: &[usize], parts: usize, i: usize| -> u32 {
        if i + 1 < parts {
            vocab
                .rank(&piece[starts[i]..starts[i + 2]])
                .unwrap_or(NO_TOKEN)
        } else {
            NO_TOKEN
        }
    };
    loop {
        let mut lowest = (NO_TOKEN, 0);
        for (i, &rank) in pair.iter().enumerate().take(parts - 1) {
            if rank < lowest.0 {
                lowest = (rank, i);
            }
        }
        let (rank, i) = lowest;
        if rank == NO_TOKEN {
            return parts;
        }
        // Part i + 1 joins part i: its start goes, and those after it move down one.
        starts.copy_within(i + 2..=parts, i + 1);
        pair.copy_within(i + 2..parts, i + 1);
        parts -= 1;
        pair[i] = join(&starts, parts, i);
        if i > 0 {
            pair[i - 1] = join(&starts, parts, i - 1);
        }
    }
}

/// A join's place in the heap: its rank, then where its left part starts. One u64 rather than
/// a pair of u32s: one comparison, in the heap where a long piece spends most of its time.
fn join_key(rank: u32, left: u32) -> u64 {
    (u64::from(rank) << 32) | u64::from(left)
}

/// The same merges in O(n log n): parts are a linked list over the byte positions that start
/// them, and the heap holds every current join with its rank. A join the heap still holds
/// after one of its parts changed is stale, and skipped when it comes up: `pair` says what the
/// join at that position is now (a changed part only grows, so a join's rank cannot come back).
fn count_by_heap(vocab: &Vocab, piece: &[u8], scratch: &mut Scratch) -> usize {
    // No request body comes near 4 GiB, the reach of these u32 positions; were one to, one
    // token per byte is an over-estimate and no panic.
    let Ok(end) = u32::try_from(piece.len()) else {
        return piece.len();
    };
    let Scratch {
        next,
        prev,
        pair,
        heap,
    } = scratch;
    next.clear();
    next.extend(1..=end);
    prev.clear();
    prev.extend((0..end).map(|i| i.wrapping_sub(1)));
    pair.clear();
    // The first joins go in as a whole (linear, where pushing one by one is n log n), into
    // the heap's own buffer.
    let mut first_joins = std::mem::take(heap).into_vec();
    first_joins.clear();
    for i in 0..end - 1 {
        let at = i as usize;
        let rank = vocab.rank(&piece[at..at + 2]).unwrap_or(NO_TOKEN);
        pair.push(rank);
        if rank != NO_TOKEN {
            first_joins.push(Reverse(join_key(rank, i)));
        }
    }
    pair.push(NO_TOKEN);
    *heap = BinaryHeap::from(first_joins);

    // The rank of the part at `left` joined with the part after it.
    let join = |next: &[u32], left: u32| -> u32 {
        let right = next[left as usize];
        if right == end {
            return NO_TOKEN;
        }
        let after = next[right as usize];
        vocab
            .rank(&piece[left as usize..after as usize])
            .unwrap_or(NO_TOKEN)
    };

    let mut parts = piece.len();
    while let Some(Reverse(key)) = heap.pop() {
        let (rank, left) = ((key >> 32) as u32, key as u32);
        if pair[left as usize] != rank {
            continue;
        }
        let right = next[left as usize];
        let after = next[right as usize];
        next[left as usize] = after;
        if after != end {
            prev[after as usize] = left;
        }
        pair[right as usize] = NO_TOKEN;
        parts -= 1;

        let joined = join(next, left);
        pair[left as usize] = joined;
        if joined != NO_TOKEN {
            heap.push(Reverse(join_key(joined, left)));
        }
        if left > 0 {
            let before = prev[left as usize];
            let joined = join(next, before);
            pair[before as usize] = joined;
            if joined != NO_TOKEN {
                heap.push(Reverse(join_key(joined, before)));
            }
        }
    }
    parts
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The scan's count and the heap's count of `piece`, which must be 2 to 32 bytes long.
    pub fn by_scan_and_by_heap(vocab: &Vocab, piece: &[u8]) -> (usize, usize) {
        assert!((2..=SCAN_MAX_BYTES).contains(&piece.len()));
        (
            count_by_scan(vocab, piece),
            count_by_heap(vocab, piece, &mut Scratch::default()),
        )
    }

    /// Ranks: a 0, b 1, c 2, x 3, bc 4, ab 5, cx 6, aa 7, aac 8, xxa 9 (which no merge makes:
    /// neither "xx" nor "xa" is a token).
    pub fn toy() -> Vocab {
        static BLOB: &[u8] = b"\x01a\x01b\x01c\x01x\x02bc\x02ab\x02cx\x02aa\x03aac\x03xxa";
        Vocab::from_blob(BLOB)
    }

    #[test]
    fn the_lowest_rank_joins_first() {
        // bc (4) before ab (5): a|bc|x, and neither "abc" nor "bcx" is a token. Joining ab
        // first would give ab|cx, two.
        assert_eq!(by_scan_and_by_heap(&toy(), b"abcx"), (3, 3));
    }

    #[test]
    fn the_leftmost_of_equal_joins_goes_first() {
        // aa|a|c, and neither "aaa" nor "ac" is a token. Joining the right "aa" first would
        // give a|aac, two.
        assert_eq!(by_scan_and_by_heap(&toy(), b"aaac"), (3, 3));
    }

    #[test]
    fn a_piece_that_is_a_token_is_one_even_if_no_merge_makes_it() {
        let vocab = toy();
        let mut scratch = Scratch::default();
        assert_eq!(count_piece(&vocab, b"xxa", &mut scratch), 1);
        assert_eq!(by_scan_and_by_heap(&vocab, b"xxa"), (3, 3));
        assert_eq!(count_piece(&vocab, b"b", &mut scratch), 1);
        assert_eq!(count_piece(&vocab, b"", &mut scratch), 0);
    }

    #[test]
    fn long_pieces_take_the_heap_and_agree_with_the_scan_at_its_limit() {
        let vocab = toy();
        let mut scratch = Scratch::default();
        let piece = b"aaacabcx".repeat(4);
        assert_eq!(piece.len(), SCAN_MAX_BYTES);
        // Each "aaacabcx" is aa|a|c|a|bc|x.
        assert_eq!(by_scan_and_by_heap(&vocab, &piece), (24, 24));
        // The same scratch serves pieces of any length, one after another.
        assert_eq!(count_piece(&vocab, &piece.repeat(3), &mut scratch), 72);
        assert_eq!(count_piece(&vocab, &piece.repeat(2), &mut scratch), 48);
    }

    #[test]
    fn a_piece_past_the_exact_limit_is_counted_by_stretches_in_bounded_memory() {
        let vocab = toy();
        let mut scratch = Scratch::default();
        // 8-byte groups tile every stretch exactly, so no join is lost at their ends.
        let piece = b"aaacabcx".repeat(3 * EXACT_MAX_BYTES / 8);
        assert_eq!(
            count_piece(&vocab, &piece, &mut scratch),
            3 * EXACT_MAX_BYTES / 8 * 6
        );
        for buffer in [&scratch.next, &scratch.prev, &scratch.pair] {
            assert!(
                buffer.capacity() <= 2 * (EXACT_MAX_BYTES + 1),
                "{}",
                buffer.capacity()
            );
        }
    }
}
