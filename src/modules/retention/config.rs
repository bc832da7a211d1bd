//! `[modules.retention]`: how long each kind of data is kept. An absent limit keeps that kind
//! forever; spend roll-ups are never touched, and the audit ledger is kept whatever is set.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::modules::registry::ModuleConfig;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Trace rows older than this are deleted (`30d`, `12h`); absent: kept forever.
    pub traces: Option<String>,
    /// Captured request and response bodies older than this are blanked; the rows stay.
    pub bodies: Option<String>,
    /// Stored Responses API answers older than this are deleted.
    pub responses: Option<String>,
    /// MCP tool-call rows older than this are deleted; their audit ledger entries stay.
    pub mcp_calls: Option<String>,
    /// Largest size of the response cache (`2GB`, `500MB`): a ceiling on the cache module's own
    /// byte budget, enforced by evicting the least recently used entries.
    pub cache: Option<String>,
    /// How often the background pass runs (`1h`). Default one hour.
    pub interval: String,
    /// Rows per delete transaction: small enough that a trace batch never waits long for the
    /// write lock. Default 500.
    pub batch_rows: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            traces: None,
            bodies: None,
            responses: None,
            mcp_calls: None,
            cache: None,
            interval: "1h".into(),
            batch_rows: 500,
        }
    }
}

/// `90s`, `30m`, `12h`, `30d` as a duration.
pub fn parse_age(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

/// `2GB`, `500MB`, `64KB`, `1024` (bytes; powers of 1024) as bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_uppercase();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text.as_str(), ""),
    };
    let n: u64 = number.parse().ok()?;
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KB" | "K" => 1 << 10,
        "MB" | "M" => 1 << 20,
        "GB" | "G" => 1 << 30,
        "TB" | "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(unit)
}

impl RetentionConfig {
    pub fn interval(&self) -> Duration {
        parse_age(&self.interval).unwrap_or(Duration::from_secs(3_600))
    }
}

impl ModuleConfig for RetentionConfig {
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("traces", &self.traces),
            ("bodies", &self.bodies),
            ("responses", &self.responses),
            ("mcp_calls", &self.mcp_calls),
        ] {
            if let Some(v) = value
                && parse_age(v).is_none_or(|d| d.is_zero())
            {
                problems.push(format!(
                    "{field}: {v:?} is not a positive age like 12h or 30d"
                ));
            }
        }
        if let Some(v) = &self.cache
            && parse_size(v).is_none()
        {
            problems.push(format!("cache: {v:?} is not a size like 500MB or 2GB"));
        }
        if parse_age(&self.interval).is_none_or(|d| d < Duration::from_secs(1)) {
            problems.push(format!(
                "interval: {:?} is not a duration of at least 1s like 10m or 1h",
                self.interval
            ));
        }
        if !(1..=100_000).contains(&self.batch_rows) {
            problems.push(format!(
                "batch_rows: must be 1..=100000 (got {})",
                self.batch_rows
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_parse_and_bad_ones_are_named() {
        assert_eq!(parse_age("30d"), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_size("2GB"), Some(2 << 30));
        assert_eq!(parse_size("500mb"), Some(500 << 20));
        let bad = RetentionConfig {
            traces: Some("forever".into()),
            cache: Some("lots".into()),
            ..RetentionConfig::default()
        };
        let message = bad.validate().err().unwrap_or_default();
        assert!(message.contains("traces: \"forever\""), "{message}");
        assert!(message.contains("cache: \"lots\""), "{message}");
    }
}
