//! Guardrails on tool results: the `guard_secrets` and `guard_pii` detectors, with their default
//! settings, over every text string of a result (names and types excepted). A match becomes a
//! typed placeholder (`[AWS_KEY_1]`) before the result reaches the client, or fails the call when
//! the module's `guard.action` is `block`. The matched text is never logged or recorded.

use serde_json::Value;

use super::config::GuardSettings;
use crate::modules::guard::{Finding, Placeholders, Scanner, each_text_mut};
use crate::modules::guard_pii::{PiiConfig, PiiScanner};
use crate::modules::guard_secrets::{SecretsConfig, SecretsScanner};

pub struct ResultGuard {
    scanners: Vec<Box<dyn Scanner>>,
}

impl ResultGuard {
    pub fn none() -> ResultGuard {
        ResultGuard {
            scanners: Vec::new(),
        }
    }

    pub fn new(settings: &GuardSettings) -> Result<ResultGuard, String> {
        let mut scanners: Vec<Box<dyn Scanner>> = Vec::new();
        if settings.secrets {
            scanners.push(Box::new(SecretsScanner::new(&SecretsConfig::default())?));
        }
        if settings.pii {
            scanners.push(Box::new(PiiScanner::new(&PiiConfig::default())?));
        }
        Ok(ResultGuard { scanners })
    }

    /// Redacts every finding in `value`'s texts in place; returns how many there were.
    pub fn apply(&self, value: &mut Value) -> usize {
        if self.scanners.is_empty() {
            return 0;
        }
        let mut placeholders = Placeholders::default();
        let mut count = 0;
        each_text_mut(value, &mut |text: &str| {
            let mut findings: Vec<Finding> = Vec::new();
            for scanner in &self.scanners {
                scanner.scan(text, &mut findings);
            }
            if findings.is_empty() {
                return None;
            }
            count += findings.len();
            Some(placeholders.redact(text, &mut findings))
        });
        count
    }
}
