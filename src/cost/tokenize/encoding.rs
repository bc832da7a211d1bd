//! One tokenizer: a vocabulary and the pre-tokenizer that goes with it. Counting a text is
//! splitting it into pieces and adding up each piece's BPE count, as tiktoken does.

use super::merge::{self, Scratch};
use super::split::Splitter;
use super::vocab::Vocab;

pub struct Encoding {
    vocab: Vocab,
    splitter: Splitter,
}

impl Encoding {
    pub fn new(blob: &'static [u8], patterns: &[&str]) -> Encoding {
        Encoding {
            vocab: Vocab::from_blob(blob),
            splitter: Splitter::new(patterns),
        }
    }

    /// Tokens of `text`, as tiktoken's `encode_ordinary` would make them.
    pub fn count(&self, text: &str) -> usize {
        let mut scratch = Scratch::default();
        self.splitter
            .pieces(text)
            .map(|piece| merge::count_piece(&self.vocab, piece.as_bytes(), &mut scratch))
            .sum()
    }

    #[cfg(test)]
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    #[cfg(test)]
    pub fn splitter(&self) -> &Splitter {
        &self.splitter
    }
}
