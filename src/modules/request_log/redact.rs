//! Redaction before storage, with the guardrails' own detectors (`guard_pii`, `guard_secrets`):
//! a body that is JSON has its string values redacted (so a timestamp is never taken for a phone
//! number), anything else (a stream's events) its text. The placeholders are typed and numbered
//! per body (`[EMAIL_1]`); the originals are never kept.

use serde_json::Value;

use crate::modules::guard::{Finding, Placeholders, Scanner, each_text_mut};
use crate::modules::guard_pii::{PiiConfig, PiiScanner};
use crate::modules::guard_secrets::{SecretsConfig, SecretsScanner};

pub struct Redactor {
    scanners: Vec<Box<dyn Scanner>>,
}

impl Redactor {
    pub fn new(pii: bool, secrets: bool) -> Result<Redactor, String> {
        let mut scanners: Vec<Box<dyn Scanner>> = Vec::new();
        if pii {
            scanners.push(Box::new(PiiScanner::new(&PiiConfig::default())?));
        }
        if secrets {
            scanners.push(Box::new(SecretsScanner::new(&SecretsConfig::default())?));
        }
        Ok(Redactor { scanners })
    }

    pub fn is_empty(&self) -> bool {
        self.scanners.is_empty()
    }

    fn text(&self, text: &str, map: &mut Placeholders, found: &mut Vec<Finding>) -> Option<String> {
        found.clear();
        for scanner in &self.scanners {
            scanner.scan(text, found);
        }
        (!found.is_empty()).then(|| map.redact(text, found))
    }

    /// How many findings `text` holds.
    pub fn count(&self, text: &str) -> usize {
        let mut found = Vec::new();
        for scanner in &self.scanners {
            scanner.scan(text, &mut found);
        }
        found.len()
    }

    /// A stream's events redacted; but when the answer's text, joined across events, holds more
    /// findings than the events do one by one (a value split between two events), the events
    /// cannot be redacted safely: the joined text is stored instead, redacted.
    pub fn stream(&self, events: String, text: &str) -> String {
        if self.is_empty() {
            return events;
        }
        if self.count(text) > self.count(&events) {
            return format!(
                "(the answer's text; its events are not kept because a redacted value spanned two of them)\n{}",
                self.body(text.to_string())
            );
        }
        self.body(events)
    }

    /// `body` with every finding replaced by its placeholder.
    pub fn body(&self, body: String) -> String {
        if self.is_empty() {
            return body;
        }
        let mut map = Placeholders::default();
        let mut found = Vec::new();
        if let Ok(mut value) = serde_json::from_str::<Value>(&body)
            && (value.is_object() || value.is_array())
        {
            each_text_mut(&mut value, &mut |text| {
                self.text(text, &mut map, &mut found)
            });
            return value.to_string();
        }
        self.text(&body, &mut map, &mut found).unwrap_or(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_keys_are_replaced_in_json_and_in_text() {
        let redactor = Redactor::new(true, true).unwrap_or_else(|e| panic!("{e}"));
        let body = r#"{"created":1712345678,"messages":[{"content":"mail anna@example.com, key AKIAIOSFODNN7EXAMPLX"}]}"#;
        let out = redactor.body(body.to_string());
        assert!(
            !out.contains("anna@example.com") && !out.contains("AKIAIOSFODNN7EXAMPLX"),
            "{out}"
        );
        assert!(
            out.contains("[EMAIL_1]") && out.contains("1712345678"),
            "{out}"
        );
        let out = redactor.body("data: {\"delta\":\"anna@example.com\"}\n\n".to_string());
        assert!(!out.contains("anna@example.com"), "{out}");
        let events = "data: {\"delta\":\"anna@exa\"}\n\ndata: {\"delta\":\"mple.com\"}\n\n";
        let out = redactor.stream(events.to_string(), "anna@example.com");
        assert!(
            out.contains("[EMAIL_1]") && !out.contains("mple.com"),
            "{out}"
        );
    }
}
