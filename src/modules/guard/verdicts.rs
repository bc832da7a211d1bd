//! The verdicts of every guardrail on one request, kept in a context slot and written to the
//! trace's `verdicts` column: detector, rule, action and position, never the matched text.

use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VerdictRecord {
    pub detector: &'static str,
    pub rule: String,
    pub action: &'static str,
    /// `input:messages[1].content@12` (JSON path and byte offset) or `output@340`.
    pub position: String,
}

#[derive(Clone, Default)]
pub struct Verdicts(pub Vec<VerdictRecord>);

/// The most verdicts one request records; past it they are counted, not listed.
pub const MAX_VERDICTS: usize = 64;

impl Verdicts {
    pub fn push(&mut self, record: VerdictRecord) {
        if self.0.len() < MAX_VERDICTS {
            self.0.push(record);
        }
    }

    /// The JSON the trace stores, `None` when no guardrail fired.
    pub fn to_json(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        serde_json::to_string(&self.0).ok()
    }
}
