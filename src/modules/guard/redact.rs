//! Redaction with typed placeholders, and the map that restores the originals in the answer to the
//! same request. One map per request (a context slot), shared by every guardrail, so the same value
//! always gets the same placeholder and `[EMAIL_1]` means one address across the conversation.

use std::collections::HashMap;

use super::Finding;

#[derive(Clone, Default)]
pub struct Placeholders {
    by_value: HashMap<String, String>,
    by_placeholder: HashMap<String, String>,
    counts: HashMap<&'static str, usize>,
}

impl Placeholders {
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }

    fn placeholder(&mut self, kind: &'static str, value: &str) -> String {
        if let Some(existing) = self.by_value.get(value) {
            return existing.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let placeholder = format!("[{kind}_{n}]");
        self.by_value.insert(value.to_string(), placeholder.clone());
        self.by_placeholder
            .insert(placeholder.clone(), value.to_string());
        placeholder
    }

    /// `text` with each finding replaced by its placeholder. Overlapping findings merge into the
    /// first one's placeholder.
    pub fn redact(&mut self, text: &str, findings: &mut [Finding]) -> String {
        findings.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for finding in findings.iter() {
            if finding.start < at || !text.is_char_boundary(finding.start) {
                continue;
            }
            let end = finding.end.min(text.len());
            if !text.is_char_boundary(end) {
                continue;
            }
            out.push_str(&text[at..finding.start]);
            let placeholder = self.placeholder(finding.kind, &text[finding.start..end]);
            out.push_str(&placeholder);
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// `text` with every known placeholder put back to its original value; `None` when there was
    /// none to put back.
    pub fn restore(&self, text: &str) -> Option<String> {
        if self.is_empty() || !text.contains('[') {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut changed = false;
        while let Some(open) = rest.find('[') {
            let Some(close) = rest[open..].find(']') else {
                break;
            };
            let candidate = &rest[open..open + close + 1];
            out.push_str(&rest[..open]);
            match self.by_placeholder.get(candidate) {
                Some(original) => {
                    out.push_str(original);
                    changed = true;
                }
                None => out.push_str(candidate),
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

impl Placeholders {
    /// The start of the first known placeholder in `text` that begins before `boundary` and ends
    /// after it (one the stream split between a held chunk and the new one).
    pub fn spanning(&self, text: &str, boundary: usize) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let longest = self.by_placeholder.keys().map(String::len).max()?;
        let window = boundary.saturating_sub(longest);
        let mut at = window;
        while let Some(open) = text.get(at..boundary).and_then(|s| s.find('[')) {
            let start = at + open;
            let end = text[start..].find(']').map(|close| start + close + 1);
            if let Some(end) = end
                && end > boundary
                && self.by_placeholder.contains_key(&text[start..end])
            {
                return Some(start);
            }
            at = start + 1;
        }
        None
    }

    /// How many bytes at the end of `text` may be the beginning of a placeholder still being
    /// written (`[EMA`), so that a stream holds them until it knows.
    pub fn partial_at_end(&self, text: &str) -> usize {
        let Some(longest) = self.by_placeholder.keys().map(String::len).max() else {
            return 0;
        };
        let Some(open) = text.rfind('[') else {
            return 0;
        };
        let rest = &text[open + 1..];
        let could_be = rest.len() < longest
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if could_be { text.len() - open } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_value_gets_the_same_placeholder_and_comes_back() {
        let mut map = Placeholders::default();
        let text = "mail a@b.io or a@b.io, not c@d.io";
        let mut findings = vec![
            Finding::new("email", "EMAIL", 5, 11),
            Finding::new("email", "EMAIL", 15, 21),
            Finding::new("email", "EMAIL", 27, 33),
        ];
        let redacted = map.redact(text, &mut findings);
        assert_eq!(redacted, "mail [EMAIL_1] or [EMAIL_1], not [EMAIL_2]");
        assert_eq!(map.restore(&redacted).as_deref(), Some(text));
        assert_eq!(map.restore("[OTHER_1] [x"), None);
    }

    #[test]
    fn a_placeholder_split_at_a_boundary_is_found_and_its_start_held() {
        let mut map = Placeholders::default();
        let mut findings = vec![Finding::new("email", "EMAIL", 0, 6)];
        map.redact("a@b.io", &mut findings);
        let text = "write to [EMAIL_1] today";
        assert_eq!(map.spanning(text, 13), Some(9));
        assert_eq!(map.spanning(text, 9), None);
        assert_eq!(map.spanning(text, 20), None);
        assert_eq!(map.partial_at_end("write to [EMA"), 4);
        assert_eq!(map.partial_at_end("write to [x"), 0);
        assert_eq!(map.partial_at_end("done [EMAIL_1]"), 0);
    }
}
