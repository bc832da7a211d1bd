//! `POST /v1/messages/count_tokens` answered locally: `{"input_tokens": N}` for a Messages request,
//! with a caller-given text tokenizer (the proxy has no Claude tokenizer, so N is an estimate).
//!
//! Counted: the `system` text; per message its text, thinking text (Anthropic drops thinking of
//! earlier turns from the context, so this over-counts a little, the safe side for budgets), each
//! `tool_use` block's name and input JSON, and each `tool_result`'s text; each tool definition as
//! its JSON text. Images count [`IMAGE_TOKENS`] each, Anthropic's cost of an image at the largest
//! size it keeps (about 1.15 megapixels, width x height / 750); other blocks (documents, server
//! tool results) are not counted.

use serde_json::{Value, json};

use super::TranslateError;
use crate::wire::translate::invalid;

/// Tokens charged for one image: (1092 x 1092) / 750, the most Anthropic charges before it
/// scales an image down.
pub const IMAGE_TOKENS: u64 = 1590;

pub fn count_tokens(body: &Value, count: &dyn Fn(&str) -> u64) -> Result<Value, TranslateError> {
    let mut total = 0;
    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => total += count(s),
        Some(Value::Array(blocks)) => total += blocks_tokens(blocks, count),
        Some(_) => return Err(invalid("system", "must be a string or an array of blocks")),
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "must be an array"))?;
    for (i, msg) in messages.iter().enumerate() {
        match msg.get("content") {
            Some(Value::String(s)) => total += count(s),
            Some(Value::Array(blocks)) => total += blocks_tokens(blocks, count),
            _ => {
                return Err(invalid(
                    format!("messages[{i}].content"),
                    "must be a string or an array of blocks",
                ));
            }
        }
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        total += count(&tool.to_string());
    }
    Ok(json!({"input_tokens": total}))
}

fn blocks_tokens(blocks: &[Value], count: &dyn Fn(&str) -> u64) -> u64 {
    let text = |b: &Value, k: &str| b.get(k).and_then(Value::as_str).map(count).unwrap_or(0);
    blocks
        .iter()
        .map(|b| match b.get("type").and_then(Value::as_str) {
            Some("text") => text(b, "text"),
            Some("thinking") => text(b, "thinking"),
            Some("image") => IMAGE_TOKENS,
            Some("tool_use") => {
                text(b, "name") + b.get("input").map(|i| count(&i.to_string())).unwrap_or(0)
            }
            Some("tool_result") => match b.get("content") {
                Some(Value::String(s)) => count(s),
                Some(Value::Array(inner)) => blocks_tokens(inner, count),
                _ => 0,
            },
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per whitespace-separated word: easy to count by hand.
    fn words(s: &str) -> u64 {
        s.split_whitespace().count() as u64
    }

    #[test]
    fn counts_system_messages_tools_and_images() {
        let body = json!({
            "model": "claude-opus-4-8",
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "look closely", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_1", "name": "zoom", "input": {"level": 2}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a red barn"}]}
                ]}
            ],
            "tools": [{"name": "zoom", "input_schema": {"type": "object"}}]
        });
        // system 2 + "what is this" 3 + image + thinking 2 + name 1 + input JSON 1
        // + result 3 + tool JSON 1.
        let got = count_tokens(&body, &words).expect("counts");
        assert_eq!(
            got,
            json!({"input_tokens": 2 + 3 + IMAGE_TOKENS + 2 + 1 + 1 + 3 + 1})
        );
    }

    #[test]
    fn string_contents_count_and_bad_messages_are_invalid() {
        let body = json!({"system": "one two", "messages": [{"role": "user", "content": "three four five"}]});
        assert_eq!(
            count_tokens(&body, &words).expect("counts"),
            json!({"input_tokens": 5})
        );
        assert!(matches!(
            count_tokens(&json!({"messages": 3}), &words),
            Err(TranslateError::Invalid { .. })
        ));
    }
}
