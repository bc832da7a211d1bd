//! The pre-tokenizer: cuts a text into the pieces that BPE then counts one at a time, with
//! OpenAI's public tiktoken patterns for cl100k_base and o200k_base. A count is exact only if
//! the pieces are exactly tiktoken's, so the patterns below keep tiktoken's alternatives in
//! tiktoken's order (the first alternative that matches at a position wins).
//!
//! tiktoken writes a whitespace run that is not the last thing in the text as `\s+(?!\S)`: the
//! run minus its last character, which is left to start the next piece (so " world" stays one
//! word). The regex crate has no look-ahead, so that alternative becomes two patterns here:
//! `\s+$` (a run that ends the text is taken whole) and `\s+\s`, whose match gives its last
//! character back. Each search is anchored where the previous piece ended, so every byte of
//! the text lands in exactly one piece.

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

/// cl100k_base's pattern, as three patterns: everything but the look-ahead (with `\s+$` taking
/// the look-ahead's place at the end of the text), the look-ahead rewritten, and tiktoken's
/// last alternative, a lone whitespace run.
pub const CL100K_PATTERNS: [&str; 3] = [
    concat!(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)",
        r"|[^\r\n\p{L}\p{N}]?\p{L}+",
        r"|\p{N}{1,3}",
        r"| ?[^\s\p{L}\p{N}]+[\r\n]*",
        r"|\s*[\r\n]+",
        r"|\s+$",
    ),
    GIVES_BACK_ITS_LAST_CHAR,
    r"\s+",
];

/// o200k_base's pattern, cut the same way as [`CL100K_PATTERNS`]. Words split on case changes
/// (so "camelCase" is two pieces) and keep their English contraction ("they'll") attached.
pub const O200K_PATTERNS: [&str; 3] = [
    concat!(
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"|\p{N}{1,3}",
        r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"|\s*[\r\n]+",
        r"|\s+$",
    ),
    GIVES_BACK_ITS_LAST_CHAR,
    r"\s+",
];

/// tiktoken's `\s+(?!\S)` short of the end of the text: the whole run plus one more whitespace
/// character, which [`Pieces`] gives back. Pattern 1 in both lists.
const GIVES_BACK_ITS_LAST_CHAR: &str = r"\s+\s";
const GIVE_BACK_PATTERN: usize = 1;

pub struct Splitter {
    /// `None` only if the patterns failed to compile, which the tests rule out for ours; the
    /// text is then counted as one piece, a close estimate rather than a panic on a request.
    regex: Option<Regex>,
}

impl Splitter {
    pub fn new(patterns: &[&str]) -> Splitter {
        match Regex::new_many(patterns) {
            Ok(regex) => Splitter { regex: Some(regex) },
            Err(error) => {
                tracing::error!(%error, "tokenizer patterns do not compile; counting texts unsplit");
                Splitter { regex: None }
            }
        }
    }

    /// The pieces of `text`, in order; together they are exactly `text`.
    pub fn pieces<'t>(&'t self, text: &'t str) -> Pieces<'t> {
        Pieces {
            regex: self.regex.as_ref(),
            text,
            at: 0,
        }
    }

    #[cfg(test)]
    pub fn compiled(&self) -> bool {
        self.regex.is_some()
    }
}

pub struct Pieces<'t> {
    regex: Option<&'t Regex>,
    text: &'t str,
    /// Where the next piece starts: the end of the previous one.
    at: usize,
}

impl<'t> Iterator for Pieces<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let rest = self.text.get(self.at..).filter(|rest| !rest.is_empty())?;
        let Some(regex) = self.regex else {
            self.at = self.text.len();
            return Some(rest);
        };
        // Searched in `rest`, not in `text` with a start offset, so that `$` and the anchor
        // see the same text tiktoken's iterator does.
        let found = regex.find(Input::new(rest).anchored(Anchored::Yes))?;
        let mut len = found.end();
        if found.pattern().as_usize() == GIVE_BACK_PATTERN {
            let given_back = rest[..len].chars().next_back().map_or(0, char::len_utf8);
            len -= given_back;
        }
        // Every pattern takes at least one character (the give-back one at least two), so a
        // piece is never empty; the guard keeps a mistake from looping forever.
        if len == 0 {
            return None;
        }
        self.at += len;
        Some(&rest[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(patterns: &[&str], text: &str) -> Vec<String> {
        let splitter = Splitter::new(patterns);
        assert!(splitter.compiled());
        splitter.pieces(text).map(str::to_owned).collect()
    }

    #[test]
    fn whitespace_before_a_word_goes_with_the_word_and_a_final_run_stays_whole() {
        let text = "Hello  world\n\n  \t x  ";
        assert_eq!(
            pieces(&O200K_PATTERNS, text),
            ["Hello", " ", " world", "\n\n", "  \t", " x", "  "]
        );
        assert_eq!(
            pieces(&CL100K_PATTERNS, text),
            ["Hello", " ", " world", "\n\n", "  \t", " x", "  "]
        );
    }

    #[test]
    fn o200k_splits_case_changes_and_keeps_contractions() {
        assert_eq!(
            pieces(&O200K_PATTERNS, "camelCase THEY'LL 12345"),
            ["camel", "Case", " THEY'LL", " ", "123", "45"]
        );
        assert_eq!(
            pieces(&CL100K_PATTERNS, "camelCase THEY'LL 12345"),
            ["camelCase", " THEY", "'LL", " ", "123", "45"]
        );
    }

    #[test]
    fn the_pieces_are_the_whole_text() {
        let text = "ünïcödé ✓✓✓ 日本語のテキスト  🎉🎉\r\n\tend";
        for patterns in [&CL100K_PATTERNS, &O200K_PATTERNS] {
            assert_eq!(pieces(patterns, text).concat(), text);
        }
    }
}
