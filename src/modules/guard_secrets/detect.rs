//! The secrets scanner: one pattern per known key format (each anchored on its fixed prefix, which
//! the regex engine finds with a literal search), then a generic pass over long tokens that
//! measures their entropy. Key-shaped text that is plainly not a key (`sk-xxxx...`, a regex that
//! describes a key format, a UUID, a hex digest) stays out through entropy and shape checks.

use regex::Regex;

use super::SecretsConfig;
use crate::modules::guard::gate::{LiteralGate, has_run};
use crate::modules::guard::{Finding, Scanner, tail_after};

struct Rule {
    name: &'static str,
    re: Regex,
    /// Least entropy (bits per character) of the match, so placeholders don't count.
    min_entropy: f64,
}

pub struct SecretsScanner {
    rules: Vec<Rule>,
    /// Each rule's fixed prefix (`LITERALS`): a rule runs only on text that holds one.
    gate: LiteralGate,
    private_key: Regex,
    generic: Option<(Regex, f64)>,
    min_token_chars: usize,
}

const RULES: &[(&str, &str, f64)] = &[
    (
        "anthropic_api_key",
        r"\bsk-ant-[a-z0-9]{2,10}-[A-Za-z0-9_-]{32,120}",
        3.5,
    ),
    (
        "openai_api_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}",
        3.5,
    ),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b", 3.5),
    (
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        3.0,
    ),
    (
        "aws_secret_access_key",
        r#"(?i)aws.{0,20}secret.{0,20}[=:"' ]+[A-Za-z0-9/+]{40}\b"#,
        3.5,
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{60,100})\b",
        3.5,
    ),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,100}", 3.0),
    (
        "stripe_key",
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,100}\b",
        3.5,
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}",
        3.5,
    ),
];

/// What each rule of `RULES` (same order) cannot match without: its fixed prefixes. The gate
/// ignores case, which only lets more text through to the rule.
const LITERALS: &[&[&str]] = &[
    &["sk-ant-"],
    &["sk-"],
    &["AIza"],
    &["AKIA", "ASIA", "ABIA", "ACCA"],
    &["aws"],
    &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    &["xox"],
    &["sk_", "rk_", "pk_"],
    &["eyJ"],
];

/// The bytes a generic token is made of (the `generic` pattern's class).
fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'_' | b'=' | b'-')
}

impl SecretsScanner {
    pub fn new(config: &SecretsConfig) -> Result<SecretsScanner, String> {
        let mut rules = Vec::new();
        for (name, pattern, min_entropy) in RULES {
            rules.push(Rule {
                name,
                re: Regex::new(pattern).map_err(|e| format!("{name}: {e}"))?,
                min_entropy: *min_entropy,
            });
        }
        // A rule without its literals would be skipped by the zip below: never silently.
        if LITERALS.len() != RULES.len() {
            return Err("every secrets rule needs its literals".into());
        }
        let literals: Vec<Vec<&str>> = LITERALS.iter().map(|l| l.to_vec()).collect();
        let gate = LiteralGate::new(&literals)?;
        let private_key = Regex::new(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\sA-Za-z0-9+/=:,-]{32,}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        )
        .map_err(|e| format!("private_key: {e}"))?;
        let generic = if config.generic_tokens {
            let pattern = format!(r"[A-Za-z0-9+/_=-]{{{},}}", config.min_token_chars);
            Some((
                Regex::new(&pattern).map_err(|e| format!("generic: {e}"))?,
                config.entropy_threshold,
            ))
        } else {
            None
        };
        Ok(SecretsScanner {
            rules,
            gate,
            private_key,
            generic,
            min_token_chars: config.min_token_chars,
        })
    }
}

impl Scanner for SecretsScanner {
    fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let before = out.len();
        // One pass for every rule's prefix, then only the rules whose prefix is there (`bench
        // scan` measures it).
        let hits = self.gate.hits(text);
        for (rule, _) in self.rules.iter().zip(hits).filter(|(_, hit)| *hit) {
            for m in rule.re.find_iter(text) {
                if entropy(m.as_str()) >= rule.min_entropy && !described_format(m.as_str()) {
                    out.push(Finding::new(rule.name, "SECRET", m.start(), m.end()));
                }
            }
        }
        if text.contains("-----BEGIN") {
            for m in self.private_key.find_iter(text) {
                out.push(Finding::new("private_key", "SECRET", m.start(), m.end()));
            }
        }
        // Inside a key block still arriving, the block is judged whole once its end comes.
        let open_block = text
            .rfind("-----BEGIN")
            .filter(|begin| !text[*begin..].contains("-----END"));
        if let Some((re, threshold)) = &self.generic
            && has_run(text.as_bytes(), self.min_token_chars, token_byte)
        {
            for m in re.find_iter(text) {
                if open_block.is_some_and(|begin| m.start() > begin) {
                    continue;
                }
                let token = m
                    .as_str()
                    .trim_matches(|c| c == '-' || c == '=' || c == '_');
                let taken = out[before..]
                    .iter()
                    .any(|f| f.start < m.end() && m.start() < f.end);
                if !taken && looks_random(token, *threshold) {
                    out.push(Finding::new(
                        "high_entropy_token",
                        "SECRET",
                        m.start(),
                        m.end(),
                    ));
                }
            }
        }
    }

    /// A private key block spans lines: from its header on, everything may still be part of it.
    fn pending_tail(&self, text: &str) -> usize {
        if let Some(begin) = text.rfind("-----BEGIN")
            && !text[begin..].contains("-----END")
        {
            return text.len() - begin;
        }
        // `-----BEGIN` itself may be arriving in pieces.
        let token = tail_after(text, |c| c.is_whitespace() || c == '"' || c == '\'');
        token.max(tail_after(text, |c| c != '-' && !c.is_ascii_uppercase() && c != ' ').min(40))
    }

    fn max_lookbehind(&self) -> usize {
        8 * 1024
    }
}

/// A pattern that describes a key format (`sk-[A-Za-z0-9]{48}`) rather than holding one.
fn described_format(token: &str) -> bool {
    token.contains("[A-Z") || token.contains("[a-z") || token.contains("[0-9")
}

/// Mixed-case letters and digits, no long runs of one class, and high entropy: what a generated
/// token looks like, and what a UUID, a hex digest or a path is not.
fn looks_random(token: &str, threshold: f64) -> bool {
    let bytes = token.as_bytes();
    let upper = bytes.iter().any(u8::is_ascii_uppercase);
    let lower = bytes.iter().any(u8::is_ascii_lowercase);
    let digit = bytes.iter().any(u8::is_ascii_digit);
    if !(upper && lower && digit) {
        return false;
    }
    // Paths and identifiers made of words (`/usr/local/...`, `this_is_a_long_name`).
    let separators = bytes
        .iter()
        .filter(|b| matches!(b, b'/' | b'_' | b'-'))
        .count();
    if separators * 6 > bytes.len() {
        return false;
    }
    entropy(token) >= threshold
}

/// Shannon entropy in bits per character.
pub fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in text.bytes() {
        counts[b as usize] += 1;
    }
    let len = text.len() as f64;
    if len == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}
