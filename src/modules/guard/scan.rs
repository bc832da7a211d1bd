//! What every detector family implements: a scan of one piece of text that reports findings by
//! rule and byte range, and how much of a stream's tail may still grow into a match.

use std::borrow::Cow;

/// One match: the rule that fired and where, never the matched text itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule's name (`email`, `aws_access_key_id`, `deny:phrase`), as the error and the trace
    /// give it.
    pub rule: Cow<'static, str>,
    /// The placeholder's type for redaction (`EMAIL` gives `[EMAIL_1]`).
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
}

impl Finding {
    pub fn new(rule: &'static str, kind: &'static str, start: usize, end: usize) -> Finding {
        Finding {
            rule: Cow::Borrowed(rule),
            kind,
            start,
            end,
        }
    }
}

pub trait Scanner: Send + Sync + 'static {
    /// Appends what `text` matches to `out`, in any order.
    fn scan(&self, text: &str, out: &mut Vec<Finding>);

    /// How many bytes at the end of a stream's text so far may still become part of a match once
    /// more text arrives; everything before them can go to the client at once. The default keeps
    /// the last run of characters that are not whitespace (a token still being written).
    fn pending_tail(&self, text: &str) -> usize {
        tail_after(text, char::is_whitespace)
    }

    /// The most of a stream's tail worth keeping for a match, in bytes.
    fn max_lookbehind(&self) -> usize {
        512
    }

    /// Rules on the request as a whole (model lists, sizes), checked before any text.
    fn check_request(&self, _ctx: &crate::request::RequestCtx) -> Option<Finding> {
        None
    }

    /// The most output tokens an answer may have, counted as it streams.
    fn max_output_tokens(&self) -> Option<u64> {
        None
    }

    /// A model asked to judge the request when the text rules found nothing.
    fn judge(&self) -> Option<&super::judge::Judge> {
        None
    }
}

/// The length of the suffix of `text` after the last character for which `stop` holds.
pub fn tail_after(text: &str, stop: impl Fn(char) -> bool) -> usize {
    match text.char_indices().rev().find(|(_, c)| stop(*c)) {
        Some((i, c)) => text.len() - i - c.len_utf8(),
        None => text.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_unfinished_token() {
        assert_eq!(tail_after("hello wor", char::is_whitespace), 3);
        assert_eq!(tail_after("hello ", char::is_whitespace), 0);
        assert_eq!(tail_after("abc", char::is_whitespace), 3);
    }
}
