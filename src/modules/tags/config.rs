//! The `tags` module's config: where tags come from, and what a tag may look like.

use serde::{Deserialize, Serialize};

use crate::modules::registry::ModuleConfig;

/// The longest tag kept.
pub const MAX_TAG_BYTES: usize = 64;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagsConfig {
    /// Header carrying comma-separated tags (`x-stockyard-tags: a,b`). Empty: no tags from
    /// headers. Default `x-stockyard-tags`.
    pub header: String,
    /// A virtual key's metadata field whose comma-separated value is tags as they are. Empty:
    /// none. Default `tags`.
    pub key_tags_field: String,
    /// Key metadata fields each turned into one `field:value` tag (`team_name` gives
    /// `team_name:search`). Default none.
    pub key_metadata: Vec<String>,
    /// Rules that add a tag when all their conditions hold, in order.
    pub rules: Vec<TagRule>,
    /// Most tags a request keeps; later ones are dropped. Default 16.
    pub max_tags: usize,
}

impl Default for TagsConfig {
    fn default() -> Self {
        TagsConfig {
            header: "x-stockyard-tags".into(),
            key_tags_field: "tags".into(),
            key_metadata: Vec::new(),
            rules: Vec::new(),
            max_tags: 16,
        }
    }
}

/// Adds `tag` when every condition given holds (a rule with none always adds it).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagRule {
    pub tag: String,
    /// Glob (`*`, `?`) on the model the client asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The endpoint: `chat_completions`, `completions`, `embeddings`, `messages`, `responses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A request header that must be present (lower case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The value `header` must have (exactly); absent: any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<String>,
}

const ENDPOINTS: &[&str] = &[
    "chat_completions",
    "completions",
    "embeddings",
    "messages",
    "responses",
];

/// Why `tag` is not a valid tag: 1 to 64 bytes of letters, digits and `_ . : / -`.
pub fn tag_problem(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > MAX_TAG_BYTES {
        return Some(format!(
            "tag {tag:?} must be 1..={MAX_TAG_BYTES} bytes long"
        ));
    }
    let bad = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')));
    bad.map(|c| format!("tag {tag:?} has {c:?}; tags are letters, digits and _ . : / - only"))
}

impl ModuleConfig for TagsConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.header.is_empty()
            && hyper::header::HeaderName::from_bytes(self.header.as_bytes()).is_err()
        {
            return Err(format!("header: {:?} is not a header name", self.header));
        }
        if self.max_tags == 0 || self.max_tags > 256 {
            return Err(format!("max_tags: must be 1..=256 (got {})", self.max_tags));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(problem) = tag_problem(&rule.tag) {
                return Err(format!("rules[{i}].tag: {problem}"));
            }
            if let Some(endpoint) = &rule.endpoint
                && !ENDPOINTS.contains(&endpoint.as_str())
            {
                return Err(format!(
                    "rules[{i}].endpoint: {endpoint:?} is not one of {}",
                    ENDPOINTS.join(", ")
                ));
            }
            if let Some(header) = &rule.header
                && hyper::header::HeaderName::from_bytes(header.as_bytes()).is_err()
            {
                return Err(format!(
                    "rules[{i}].header: {header:?} is not a header name"
                ));
            }
            if rule.header_value.is_some() && rule.header.is_none() {
                return Err(format!("rules[{i}].header_value: needs rules[{i}].header"));
            }
        }
        Ok(())
    }
}
