//! Cheap first passes that let a scanner skip its regular expressions on text where they cannot
//! match. Most prompts are ordinary prose that no guardrail objects to, so the common case is
//! "nothing here", and it should cost one vectorised pass over the text, not one regex per rule.
//!
//! A gate may say yes when its rule then finds nothing (the rule decides), but never no when
//! the rule would match: every gate is a necessary condition of its rules.

use aho_corasick::{AhoCorasick, MatchKind};

/// Characters that Unicode's simple case folding maps onto ASCII letters (the Kelvin sign onto
/// `k`, the long s onto `s`): a `(?i)` regex matches them where an ASCII-lowercased search does
/// not, so a text holding one takes every rule.
const FOLDS_TO_ASCII: &[char] = &['\u{212A}', '\u{017F}'];

/// Literals found in one pass, ASCII case ignored; each belongs to a rule.
pub struct LiteralGate {
    /// Leftmost-first, which lets the crate use its vectorised searcher: answers "any literal
    /// here?" in one fast pass, the common case being no.
    any: AhoCorasick,
    /// Standard semantics, so overlapping literals are all reported (one literal may sit inside
    /// another rule's); slower, and only run when `any` found something.
    search: AhoCorasick,
    /// The rule of each literal, by the literal's index.
    rule_of: Vec<usize>,
    rules: usize,
    /// Rules that have a literal the gate cannot search for (one with non-ASCII letters, whose
    /// case variants an ASCII search misses), or none at all: they always run.
    always: Vec<usize>,
}

impl LiteralGate {
    /// `rules[i]` lists the literals of which rule `i` needs at least one to match; an empty
    /// list means the rule always runs.
    pub fn new<S: AsRef<str>>(rules: &[Vec<S>]) -> Result<LiteralGate, String> {
        let mut literals = Vec::new();
        let mut rule_of = Vec::new();
        let mut always = Vec::new();
        for (rule, needs) in rules.iter().enumerate() {
            let searchable = !needs.is_empty()
                && needs
                    .iter()
                    .all(|l| l.as_ref().is_ascii() && !l.as_ref().is_empty());
            if !searchable {
                always.push(rule);
                continue;
            }
            for literal in needs {
                literals.push(literal.as_ref().to_ascii_lowercase());
                rule_of.push(rule);
            }
        }
        let any = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&literals)
            .map_err(|e| format!("literal gate: {e}"))?;
        let search = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&literals)
            .map_err(|e| format!("literal gate: {e}"))?;
        Ok(LiteralGate {
            any,
            search,
            rule_of,
            rules: rules.len(),
            always,
        })
    }

    /// Which rules may match `text`: `hits[i]` is false only when rule `i` cannot.
    pub fn hits(&self, text: &str) -> Vec<bool> {
        let mut hits = vec![false; self.rules];
        for &rule in &self.always {
            hits[rule] = true;
        }
        if !text.is_ascii() && text.contains(FOLDS_TO_ASCII) {
            hits.iter_mut().for_each(|h| *h = true);
            return hits;
        }
        let lowered = text.to_ascii_lowercase();
        if !self.any.is_match(&lowered) {
            return hits;
        }
        for found in self.search.find_overlapping_iter(&lowered) {
            hits[self.rule_of[found.pattern().as_usize()]] = true;
        }
        hits
    }
}

/// Whether `bytes` holds a run of at least `n` bytes that are all in `class`. It looks at the
/// last byte a run starting here would need and walks back from it, so on prose (short words)
/// it touches a fraction of the bytes.
pub fn has_run(bytes: &[u8], n: usize, class: impl Fn(u8) -> bool) -> bool {
    if n == 0 {
        return true;
    }
    let mut start = 0;
    while start + n <= bytes.len() {
        let end = start + n - 1;
        // A run starting anywhere in start..=j would have to cover the byte at j.
        match (start..=end).rev().find(|&j| !class(bytes[j])) {
            None => return true,
            Some(j) => start = j + 1,
        }
    }
    false
}

/// Whether `text` has an ASCII digit, a chunk at a time so the compiler vectorises the test.
pub fn has_digit(text: &str) -> bool {
    text.as_bytes()
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |any, b| any | b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_reports_the_rules_whose_literals_occur_in_any_ascii_case() {
        let gate = LiteralGate::new(&[vec!["Explosive"], vec!["sk-", "AKIA"], vec!["dosage"]])
            .expect("gate");
        assert_eq!(gate.hits("an EXPLOSIVE akia key"), vec![true, true, false]);
        assert_eq!(gate.hits("nothing to see"), vec![false, false, false]);
    }

    #[test]
    fn overlapping_literals_are_all_reported() {
        let gate = LiteralGate::new(&[vec!["dan mode"], vec!["mode"]]).expect("gate");
        assert_eq!(gate.hits("DAN MODE"), vec![true, true]);
    }

    #[test]
    fn a_rule_without_a_searchable_literal_always_runs() {
        let gate =
            LiteralGate::new(&[vec!["straße"], Vec::<&str>::new(), vec!["x"]]).expect("gate");
        assert_eq!(gate.hits("plain"), vec![true, true, false]);
    }

    #[test]
    fn text_with_a_letter_that_folds_onto_ascii_takes_every_rule() {
        // U+212A KELVIN SIGN folds to k under (?i): "\u{212A}ey" matches (?i)key.
        let gate = LiteralGate::new(&[vec!["key"], vec!["other"]]).expect("gate");
        assert_eq!(gate.hits("a \u{212A}ey"), vec![true, true]);
        assert_eq!(gate.hits("a café key"), vec![true, false]);
    }

    #[test]
    fn runs_are_found_wherever_they_are() {
        let class = |b: u8| b.is_ascii_alphanumeric();
        assert!(has_run(b"abcdef", 6, class));
        assert!(!has_run(b"abc def", 4, class));
        assert!(has_run(b"a b cd efghij k", 6, class));
        assert!(!has_run(b"a b cd efghi k", 6, class));
        assert!(has_run(b"", 0, class));
        assert!(!has_run(b"abc", 4, class));
        let prose = "the quarterly planning notes, and list ".repeat(50);
        assert!(!has_run(prose.as_bytes(), 24, class));
        let with_token = format!("{prose}Zm9yZ2V0IGFsbCBwcmV2aW91cw== {prose}");
        assert!(has_run(with_token.as_bytes(), 24, class));
    }

    #[test]
    fn digits_are_found_past_the_first_chunk() {
        assert!(!has_digit(&"x".repeat(200)));
        assert!(has_digit(&format!("{}7", "x".repeat(200))));
    }
}
