//! The `route_rules` module's config: rules in order, each a target model and the conditions
//! (all of them) under which it applies.

use serde::{Deserialize, Serialize};

use crate::modules::registry::ModuleConfig;

/// The largest compiled regex a rule may hold, so a config cannot make matching slow.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteRulesConfig {
    /// Evaluated in order; the first whose conditions all hold sets the model.
    pub rules: Vec<RouteRule>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Recorded in the trace (column `route_rule`) when the rule fires.
    pub name: String,
    /// The model the request goes to (a model, an alias or a routing group).
    pub model: String,
    /// Globs on the model the client asked for; empty: any model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Holds when the prompt has at most this many tokens (the model's tokenizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
    /// Holds when the prompt has at least this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u64>,
    /// A regular expression (Rust `regex` syntax) the last user message must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user_matches: Option<String>,
    /// A request header that must be present (lower case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The value `header` must have (exactly); absent: any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<String>,
    /// A virtual key's metadata field that must be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_metadata: Option<String>,
    /// The value `key_metadata` must have (exactly); absent: any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_metadata_value: Option<String>,
    /// A UTC time range, `HH:MM-HH:MM`, start included, end excluded; a range past midnight
    /// (`22:00-06:00`) wraps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_time: Option<String>,
    /// A tag the request must carry (from the `tags` module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl RouteRule {
    fn has_condition(&self) -> bool {
        !self.models.is_empty()
            || self.max_prompt_tokens.is_some()
            || self.min_prompt_tokens.is_some()
            || self.last_user_matches.is_some()
            || self.header.is_some()
            || self.key_metadata.is_some()
            || self.utc_time.is_some()
            || self.tag.is_some()
    }
}

/// `HH:MM-HH:MM` as minutes of the day, start and end.
pub fn parse_time_range(text: &str) -> Result<(u32, u32), String> {
    let minutes = |part: &str| -> Option<u32> {
        let (h, m) = part.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let parsed = text
        .split_once('-')
        .and_then(|(a, b)| Some((minutes(a)?, minutes(b)?)));
    match parsed {
        Some((start, end)) if start != end => Ok((start, end)),
        Some(_) => Err(format!("{text:?} is an empty range")),
        None => Err(format!("{text:?} is not a range like 09:00-17:30")),
    }
}

pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

impl ModuleConfig for RouteRulesConfig {
    fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("rules[{i}].{field}");
            if rule.name.trim().is_empty() {
                return Err(format!("{}: must not be empty", at("name")));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(format!("{}: {:?} is used twice", at("name"), rule.name));
            }
            if rule.model.trim().is_empty() {
                return Err(format!("{}: must name the target model", at("model")));
            }
            if !rule.has_condition() {
                return Err(format!(
                    "rules[{i}]: give at least one condition (models, max_prompt_tokens, \
                     min_prompt_tokens, last_user_matches, header, key_metadata, utc_time, tag)"
                ));
            }
            if let (Some(min), Some(max)) = (rule.min_prompt_tokens, rule.max_prompt_tokens)
                && min > max
            {
                return Err(format!(
                    "{}: {min} is above max_prompt_tokens {max}",
                    at("min_prompt_tokens")
                ));
            }
            if let Some(pattern) = &rule.last_user_matches {
                compile_regex(pattern).map_err(|e| format!("{}: {e}", at("last_user_matches")))?;
            }
            if let Some(header) = &rule.header
                && hyper::header::HeaderName::from_bytes(header.as_bytes()).is_err()
            {
                return Err(format!("{}: {header:?} is not a header name", at("header")));
            }
            if rule.header_value.is_some() && rule.header.is_none() {
                return Err(format!("{}: needs {}", at("header_value"), at("header")));
            }
            if rule.key_metadata_value.is_some() && rule.key_metadata.is_none() {
                return Err(format!(
                    "{}: needs {}",
                    at("key_metadata_value"),
                    at("key_metadata")
                ));
            }
            if let Some(range) = &rule.utc_time {
                parse_time_range(range).map_err(|e| format!("{}: {e}", at("utc_time")))?;
            }
        }
        Ok(())
    }
}
