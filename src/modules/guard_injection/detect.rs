//! The injection score: weighted patterns, each counted once per text, plus a bonus for a
//! base64 payload that decodes to instructions. One strong signal (an explicit override) reaches
//! the default threshold alone; weaker ones (`act as`, `hypothetically`) need company.

use base64::Engine;
use regex::{Regex, RegexSet};

use super::InjectionConfig;
use crate::modules::guard::gate::has_run;
use crate::modules::guard::judge::Judge;
use crate::modules::guard::{Finding, Scanner};

/// (rule, weight, pattern); patterns are case-insensitive.
const SIGNALS: &[(&str, f64, &str)] = &[
    (
        "instruction_override",
        1.0,
        r"\b(?:ignore|disregard|forget|override|skip)\b.{0,30}\b(?:previous|prior|above|earlier|preceding|all|your|system|original)\b.{0,20}\b(?:instructions?|rules|prompts?|directives|guidelines|constraints|messages?)\b",
    ),
    (
        "new_instructions",
        0.6,
        r"\b(?:from now on|starting now|new instructions?|your new (?:task|role|instructions?))\b",
    ),
    (
        "system_prompt_leak",
        1.0,
        r"\b(?:reveal|print|show|repeat|output|leak|tell me)\b.{0,25}\b(?:system prompt|hidden (?:prompt|instructions)|initial instructions|your instructions|the text above)\b",
    ),
    (
        "unrestricted_roleplay",
        1.0,
        r"\b(?:you are|you're|act as|pretend (?:to be|you are)|roleplay as|become)\b.{0,30}\b(?:DAN|unfiltered|unrestricted|uncensored|jailbroken|evil|without (?:any )?(?:rules|restrictions|limits|filters))\b",
    ),
    (
        "jailbreak_term",
        0.7,
        r"\b(?:jailbreak|DAN mode|developer mode enabled|do anything now)\b",
    ),
    (
        "no_limits",
        0.5,
        r"\b(?:no (?:longer )?(?:bound|restricted|limited) by|without (?:any )?(?:ethical|moral|safety) (?:guidelines|limits|constraints)|bypass (?:your |the )?(?:safety|filters?|restrictions|guardrails))\b",
    ),
    (
        "role_play",
        0.3,
        r"\b(?:act as|pretend (?:to be|you are)|roleplay|role-play)\b",
    ),
    (
        "hypothetical",
        0.2,
        r"\b(?:hypothetically|in a fictional world|for a story)\b",
    ),
    (
        "fake_delimiter",
        0.6,
        r"(?:<\|im_start\|>|<\|system\|>|\[/?INST\]|###\s*(?:system|instruction)|</?system>)",
    ),
];

/// Words at least one signal needs: a text without any skips the signal set, whose bounded
/// gaps (`.{0,30}`) make it the dearest pattern on a long prompt.
const TRIGGERS: &[&str] = &[
    "ignore",
    "disregard",
    "forget",
    "override",
    "skip",
    "from now on",
    "starting now",
    "new instruction",
    "your new",
    "reveal",
    "print",
    "show",
    "repeat",
    "output",
    "leak",
    "tell me",
    "you are",
    "you're",
    "act as",
    "pretend",
    "roleplay",
    "role-play",
    "become",
    "jailbreak",
    "dan mode",
    "developer mode",
    "do anything now",
    "bound by",
    "restricted by",
    "limited by",
    "without",
    "bypass",
    "hypothetically",
    "fictional",
    "for a story",
    "<|",
    "[inst",
    "[/inst",
    "###",
    "<system",
    "</system",
];

/// What a decoded payload must say to count.
const PAYLOAD_WORDS: &[&str] = &[
    "ignore",
    "instruction",
    "system prompt",
    "jailbreak",
    "disregard",
];

/// The shortest base64 run worth decoding (the `base64` pattern's `{24,}`).
const MIN_PAYLOAD_CHARS: usize = 24;

pub struct InjectionScanner {
    triggers: Regex,
    set: RegexSet,
    regexes: Vec<Regex>,
    base64: Regex,
    threshold: f64,
    judge: Option<Judge>,
}

impl InjectionScanner {
    pub fn new(config: &InjectionConfig) -> Result<InjectionScanner, String> {
        let patterns: Vec<String> = SIGNALS
            .iter()
            .map(|(_, _, p)| format!("(?is){p}"))
            .collect();
        let set = RegexSet::new(&patterns).map_err(|e| format!("signals: {e}"))?;
        let regexes = patterns
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("signals: {e}")))
            .collect::<Result<_, _>>()?;
        // A regex, not the literal gate: the engine's own literal search on these short,
        // common-lettered words is cheaper on prose (`bench scan`).
        let alternatives: Vec<String> = TRIGGERS.iter().map(|t| regex::escape(t)).collect();
        let triggers = Regex::new(&format!("(?i){}", alternatives.join("|")))
            .map_err(|e| format!("triggers: {e}"))?;
        Ok(InjectionScanner {
            triggers,
            set,
            regexes,
            base64: Regex::new(&format!(r"[A-Za-z0-9+/]{{{MIN_PAYLOAD_CHARS},}}={{0,2}}"))
                .map_err(|e| e.to_string())?,
            threshold: config.threshold,
            judge: config.judge.clone(),
        })
    }

    /// The text's score and its strongest signal with where it starts.
    pub fn score(&self, text: &str) -> (f64, Option<(&'static str, usize, usize)>) {
        let mut score = 0.0;
        let mut strongest: Option<(f64, &'static str, usize, usize)> = None;
        let signals: Vec<usize> = if self.triggers.is_match(text) {
            self.set.matches(text).into_iter().collect()
        } else {
            Vec::new()
        };
        for i in signals {
            let (rule, weight, _) = SIGNALS[i];
            score += weight;
            if strongest.is_none_or(|(w, ..)| weight > w)
                && let Some(m) = self.regexes[i].find(text)
            {
                strongest = Some((weight, rule, m.start(), m.end()));
            }
        }
        if has_run(text.as_bytes(), MIN_PAYLOAD_CHARS, |b| {
            b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
        }) {
            for m in self.base64.find_iter(text) {
                if decodes_to_instructions(m.as_str()) {
                    score += 1.0;
                    strongest = Some((1.0, "encoded_payload", m.start(), m.end()));
                    break;
                }
            }
        }
        (score, strongest.map(|(_, rule, s, e)| (rule, s, e)))
    }
}

fn decodes_to_instructions(candidate: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(candidate) else {
        return false;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return false;
    };
    let lower = text.to_ascii_lowercase();
    PAYLOAD_WORDS.iter().any(|w| lower.contains(w))
}

impl Scanner for InjectionScanner {
    fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let (score, strongest) = self.score(text);
        if score >= self.threshold
            && let Some((rule, start, end)) = strongest
        {
            out.push(Finding::new(rule, "INJECTION", start, end));
        }
    }

    fn pending_tail(&self, text: &str) -> usize {
        // Phrases span words; keep the last line's worth.
        text.len() - text.rfind(['\n', '.', '!', '?']).map_or(0, |i| i + 1)
    }

    fn judge(&self) -> Option<&Judge> {
        self.judge.as_ref()
    }
}
