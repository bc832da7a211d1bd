//! Fitting a chat conversation into a token budget, as pure functions over its messages, with
//! the count of one message given by the caller (the model's tokenizer, chat framing included).

use serde_json::Value;

use crate::wire::openai::{ChatMessage, Role};

/// What a cut message's text ends with, so a reader (and the model) knows it was cut.
pub const CUT_MARK: &str = "\n[truncated by stockyard]";

/// Leading system and developer messages: never dropped.
fn system_prefix(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .take_while(|m| matches!(m.role, Role::System | Role::Developer))
        .count()
}

fn has_tool_calls(message: &ChatMessage) -> bool {
    message
        .rest
        .get("tool_calls")
        .and_then(Value::as_array)
        .is_some_and(|calls| !calls.is_empty())
}

/// The end (exclusive) of the unit starting at `start`: an assistant message that calls tools
/// takes the tool results after it along, so a call never loses its result or the reverse.
fn unit_end(messages: &[ChatMessage], start: usize) -> usize {
    let mut end = start + 1;
    if has_tool_calls(&messages[start]) {
        while end < messages.len() && matches!(messages[end].role, Role::Tool | Role::Function) {
            end += 1;
        }
    }
    end
}

/// Drops the oldest units after the system prompt until `total(messages) <= budget`, keeping
/// the last unit (the turn being asked about) whatever it costs. A conversation left starting
/// with an assistant or tool message loses those too (providers want a user turn first).
/// Returns how many messages went, or `None` when even the system prompt and the last unit
/// exceed the budget (nothing is changed then).
pub fn drop_oldest(
    messages: &mut Vec<ChatMessage>,
    budget: u64,
    count: &dyn Fn(&ChatMessage) -> u64,
) -> Option<usize> {
    let counts: Vec<u64> = messages.iter().map(count).collect();
    let mut total: u64 = counts.iter().sum();
    let prefix = system_prefix(messages);
    // Units from the oldest: (start, end).
    let mut units = Vec::new();
    let mut at = prefix;
    while at < messages.len() {
        let end = unit_end(messages, at);
        units.push((at, end));
        at = end;
    }
    let Some(&(last_start, _)) = units.last() else {
        return (total <= budget).then_some(0);
    };
    let mut cut = prefix;
    for &(start, end) in &units {
        let leading_non_user = !matches!(messages.get(start).map(|m| m.role), Some(Role::User));
        if total <= budget && !(cut > prefix && leading_non_user) {
            break;
        }
        if start >= last_start {
            break;
        }
        total -= counts[start..end].iter().sum::<u64>();
        cut = end;
    }
    if total > budget {
        return None;
    }
    let dropped = cut - prefix;
    messages.drain(prefix..cut);
    Some(dropped)
}

/// The text of `message` that is longest: its string content, or its longest text part.
fn longest_text(message: &mut ChatMessage) -> Option<&mut String> {
    match message.content.as_mut()? {
        Value::String(text) => Some(text),
        Value::Array(parts) => parts
            .iter_mut()
            .filter_map(|p| match p.get_mut("text") {
                Some(Value::String(text)) => Some(text),
                _ => None,
            })
            .max_by_key(|t| t.len()),
        _ => None,
    }
}

/// The longest prefix of `text` (at a char boundary) of at most `max_tokens` tokens.
fn prefix_within(text: &str, max_tokens: u64, count_text: &dyn Fn(&str) -> u64) -> usize {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    // Binary search over char boundaries: the count only grows with the prefix.
    let (mut lo, mut hi) = (0usize, bounds.len() - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count_text(&text[..bounds[mid]]) <= max_tokens {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    bounds[lo]
}

/// Cuts the longest message's text (then the next longest, if that was not enough) until the
/// conversation fits. Returns how many messages were cut, or `None` when cutting every text
/// cannot fit it (nothing is changed then).
pub fn truncate_longest(
    messages: &mut [ChatMessage],
    budget: u64,
    count: &dyn Fn(&ChatMessage) -> u64,
    count_text: &dyn Fn(&str) -> u64,
) -> Option<usize> {
    let mut work: Vec<ChatMessage> = messages.to_vec();
    let mut total: u64 = work.iter().map(count).sum();
    let mark = count_text(CUT_MARK);
    let mut cut = 0;
    let mut done = vec![false; work.len()];
    while total > budget {
        // The message with the most text tokens not cut yet.
        let pick = (0..work.len())
            .filter(|&i| !done[i])
            .filter_map(|i| {
                let text = longest_text(&mut work[i])?;
                Some((count_text(text), i))
            })
            .max()?;
        let (text_tokens, i) = pick;
        done[i] = true;
        let excess = total - budget;
        if text_tokens <= mark {
            continue;
        }
        let keep = text_tokens.saturating_sub(excess).saturating_sub(mark);
        let before = count(&work[i]);
        if let Some(text) = longest_text(&mut work[i]) {
            let end = prefix_within(text, keep, count_text);
            text.truncate(end);
            text.push_str(CUT_MARK);
        }
        let after = count(&work[i]);
        total = total - before + after;
        cut += 1;
    }
    messages.clone_from_slice(&work);
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(value: Value) -> Vec<ChatMessage> {
        serde_json::from_value(value).unwrap_or_default()
    }

    /// One token per word, plus 3 per message (the chat framing).
    fn words(text: &str) -> u64 {
        text.split_whitespace().count() as u64
    }

    fn count(m: &ChatMessage) -> u64 {
        m.texts().iter().map(|t| words(t)).sum::<u64>() + 3
    }

    fn roles(messages: &[ChatMessage]) -> Vec<String> {
        messages
            .iter()
            .map(|m| format!("{:?}", m.role).to_lowercase())
            .collect()
    }

    #[test]
    fn drops_oldest_turns_after_the_system_prompt_keeping_tool_pairs() {
        let mut convo = messages(json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "one two three four five"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "six seven eight nine ten"},
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "last question"},
        ]));
        let total: u64 = convo.iter().map(count).sum();
        // Room for dropping the first user turn only: the tool pair must go as one, and the
        // assistant messages left leading go too.
        let dropped = drop_oldest(&mut convo, total - 8, &count);
        assert_eq!(dropped, Some(4));
        assert_eq!(roles(&convo), ["system", "user"]);
    }

    #[test]
    fn drop_refuses_when_the_last_turn_alone_is_too_big() {
        let mut convo = messages(json!([
            {"role": "system", "content": "s"},
            {"role": "user", "content": "old"},
            {"role": "user", "content": "a b c d e f g h i j"},
        ]));
        assert_eq!(drop_oldest(&mut convo, 8, &count), None);
        assert_eq!(convo.len(), 3);
    }

    #[test]
    fn truncates_the_longest_message() {
        let long = (0..100)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut convo = messages(json!([
            {"role": "user", "content": long},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "and?"},
        ]));
        let cut = truncate_longest(&mut convo, 60, &count, &words);
        assert_eq!(cut, Some(1));
        let total: u64 = convo.iter().map(count).sum();
        assert!(total <= 60, "{total}");
        let text = convo[0].texts()[0].to_string();
        assert!(
            text.starts_with("w0 w1") && text.ends_with(CUT_MARK),
            "{text}"
        );
    }
}
