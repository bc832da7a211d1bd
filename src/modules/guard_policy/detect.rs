//! The policy scanner: deny phrases, deny regexes and topic keywords, and the request-wide checks
//! on the model and sizes. One literal gate over every phrase and keyword runs first, so a
//! phrase's regex (with its word boundaries and Unicode case folding) only runs on a text that
//! holds the phrase; deny regexes, which have no literal to gate on, always run.

use std::borrow::Cow;

use regex::{Regex, RegexSet};

use super::PolicyConfig;
use crate::modules::guard::gate::LiteralGate;
use crate::modules::guard::{Finding, Scanner};
use crate::request::RequestCtx;

pub struct PolicyScanner {
    has_regex: bool,
    /// Words in the longest deny phrase or topic keyword.
    max_phrase_words: usize,
    deny: Vec<(String, Regex)>,
    /// The deny regexes (the tail of `deny` from `deny_regexes_from` on), in one set.
    deny_regex_set: Option<RegexSet>,
    deny_regexes_from: usize,
    allow: Option<Regex>,
    topics: Vec<(String, Vec<Regex>)>,
    /// Over the deny phrases (rules `0..deny_regexes_from`), then every topic keyword in order.
    gate: LiteralGate,
    topic_min_hits: usize,
    model_allow: Vec<String>,
    model_deny: Vec<String>,
    max_prompt_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    max_messages: Option<usize>,
}

fn phrase(p: &str) -> String {
    format!(r"(?i)\b{}\b", regex::escape(p.trim()))
}

impl PolicyScanner {
    pub fn new(config: &PolicyConfig) -> Result<PolicyScanner, String> {
        let mut deny = Vec::new();
        for (i, p) in config.deny.iter().enumerate() {
            let re = Regex::new(&phrase(p)).map_err(|e| format!("deny[{i}]: {e}"))?;
            deny.push((format!("deny[{i}]"), re));
        }
        let deny_regexes_from = deny.len();
        for (i, p) in config.deny_regex.iter().enumerate() {
            let re = Regex::new(p).map_err(|e| format!("deny_regex[{i}]: {e}"))?;
            deny.push((format!("deny_regex[{i}]"), re));
        }
        let deny_regex_set = if config.deny_regex.is_empty() {
            None
        } else {
            Some(RegexSet::new(&config.deny_regex).map_err(|e| format!("deny_regex: {e}"))?)
        };
        let allow = if config.allow.is_empty() {
            None
        } else {
            let alternatives: Vec<String> = config
                .allow
                .iter()
                .map(|p| regex::escape(p.trim()))
                .collect();
            Some(
                Regex::new(&format!(r"(?i)\b(?:{})\b", alternatives.join("|")))
                    .map_err(|e| format!("allow: {e}"))?,
            )
        };
        let mut topics = Vec::new();
        for (topic, words) in &config.topics {
            let res = words
                .iter()
                .map(|w| Regex::new(&phrase(w)).map_err(|e| format!("topics.{topic}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            topics.push((format!("topic:{topic}"), res));
        }
        let literals: Vec<Vec<&str>> = config
            .deny
            .iter()
            .chain(config.topics.values().flatten())
            .map(|p| vec![p.trim()])
            .collect();
        let gate = LiteralGate::new(&literals)?;
        let max_phrase_words = config
            .deny
            .iter()
            .chain(config.topics.values().flatten())
            .map(|p| p.split_whitespace().count())
            .max()
            .unwrap_or(1)
            .max(1);
        Ok(PolicyScanner {
            has_regex: !config.deny_regex.is_empty(),
            max_phrase_words,
            deny,
            deny_regex_set,
            deny_regexes_from,
            allow,
            topics,
            gate,
            topic_min_hits: config.topic_min_hits.unwrap_or(2),
            model_allow: config.model_allow.clone(),
            model_deny: config.model_deny.clone(),
            max_prompt_tokens: config.max_prompt_tokens,
            max_output_tokens: config.max_output_tokens,
            max_messages: config.max_messages,
        })
    }
}

impl Scanner for PolicyScanner {
    fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let hits = self.gate.hits(text);
        let (phrase_hits, mut keyword_hits) = hits.split_at(self.deny_regexes_from);
        let mut denied: Vec<usize> = (0..self.deny_regexes_from)
            .filter(|&i| phrase_hits[i])
            .collect();
        // `is_match` first: it may stop early and skips the overlapping search on clean text.
        if let Some(set) = &self.deny_regex_set
            && set.is_match(text)
        {
            denied.extend(set.matches(text).iter().map(|i| self.deny_regexes_from + i));
        }
        // The allowed spans only matter once something is denied.
        let mut allowed: Option<Vec<(usize, usize)>> = None;
        for i in denied {
            let (rule, re) = &self.deny[i];
            for m in re.find_iter(text) {
                let allowed = allowed.get_or_insert_with(|| {
                    self.allow
                        .as_ref()
                        .map(|re| re.find_iter(text).map(|m| (m.start(), m.end())).collect())
                        .unwrap_or_default()
                });
                let exempt = allowed
                    .iter()
                    .any(|(s, e)| *s <= m.start() && m.end() <= *e);
                if !exempt {
                    out.push(Finding {
                        rule: Cow::Owned(rule.clone()),
                        kind: "POLICY",
                        start: m.start(),
                        end: m.end(),
                    });
                }
            }
        }
        for (rule, words) in &self.topics {
            let (gated, rest) = keyword_hits.split_at(words.len());
            keyword_hits = rest;
            let needed = self.topic_min_hits.min(words.len());
            if gated.iter().filter(|h| **h).count() < needed {
                continue;
            }
            let hits: Vec<(usize, usize)> = words
                .iter()
                .zip(gated)
                .filter(|(_, gated)| **gated)
                .filter_map(|(re, _)| re.find(text).map(|m| (m.start(), m.end())))
                .collect();
            if hits.len() >= needed
                && let Some(&(start, end)) = hits.iter().min()
            {
                out.push(Finding {
                    rule: Cow::Owned(rule.clone()),
                    kind: "TOPIC",
                    start,
                    end,
                });
            }
        }
    }

    /// A phrase of n words may still be completing while its first n-1 words are out, so the
    /// last n words stay; a regular expression may span anything up to the look-behind.
    fn pending_tail(&self, text: &str) -> usize {
        if self.has_regex {
            return text.len();
        }
        tail_words(text, self.max_phrase_words)
    }

    fn check_request(&self, ctx: &RequestCtx) -> Option<Finding> {
        let model = ctx.request.requested_model.as_str();
        if (!self.model_allow.is_empty() && !self.model_allow.iter().any(|m| m == model))
            || self.model_deny.iter().any(|m| m == model)
        {
            return Some(Finding::new("model", "MODEL", 0, 0));
        }
        let parsed = ctx.request.parsed.as_ref()?;
        if let Some(limit) = self.max_messages
            && parsed.message_count() > limit
        {
            return Some(Finding::new("max_messages", "LIMIT", 0, 0));
        }
        if let Some(limit) = self.max_prompt_tokens
            && crate::cost::tokenize::prompt_tokens(model, parsed) > limit
        {
            return Some(Finding::new("max_prompt_tokens", "LIMIT", 0, 0));
        }
        if let Some(limit) = self.max_output_tokens
            && parsed
                .max_output_tokens()
                .is_some_and(|asked| asked > limit)
        {
            return Some(Finding::new("max_output_tokens", "LIMIT", 0, 0));
        }
        None
    }

    fn max_output_tokens(&self) -> Option<u64> {
        self.max_output_tokens
    }
}

/// The length of the suffix of `text` holding its last `words` words (the last one possibly
/// unfinished), with the whitespace between them.
fn tail_words(text: &str, words: usize) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices().rev() {
        if c.is_whitespace() {
            if in_word {
                count += 1;
                if count == words {
                    return text.len() - i - c.len_utf8();
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::tail_words;

    #[test]
    fn the_tail_keeps_as_many_words_as_the_longest_phrase() {
        assert_eq!(tail_words("it is project fal", 2), "project fal".len());
        assert_eq!(tail_words("it is project ", 2), "is project ".len());
        assert_eq!(tail_words("one", 3), 3);
    }
}
