//! The OpenAI Responses API (`POST /v1/responses`) as an inbound format: a client speaks Responses,
//! the proxy speaks the canonical chat format (OpenAI Chat Completions) to every provider that is
//! not OpenAI itself (for OpenAI the body passes through natively). All functions here are pure.
//!
//! - [`request::to_chat`]: Responses request -> canonical chat request;
//!   [`request::prepend_history`] splices a stored conversation in for `previous_response_id`,
//!   and [`request::history_to_store`] gives what to store after the answer.
//! - [`response::from_chat`]: canonical `chat.completion` -> Responses `response` object;
//!   [`response::output_to_chat_messages`] turns its `output` back into canonical messages.
//! - [`stream::Encoder`]: canonical `chat.completion.chunk`s -> typed Responses SSE events whose
//!   terminal `response.completed` carries exactly what [`response::from_chat`] builds from the
//!   equivalent non-streamed completion.
//! - [`error`]: this route answers errors in the OpenAI shape, like chat.
//!
//! Reference: the Responses API reference and the openai-python SDK types generated from it
//! (`src/openai/types/responses/*.py`); golden files in `tests/fixtures/responses/`.
//!
//! # Mapping decisions
//!
//! | Responses | canonical chat | note |
//! |---|---|---|
//! | `input` string | one `user` message | |
//! | `message` items (user/system/developer) | same role; `input_text` -> `text` part, `input_image.image_url` -> `image_url` part | a lone text part becomes a plain string |
//! | `input_image.file_id`, `input_file`, `input_audio` | - | rejected (files live at OpenAI) unless `drop_unsupported` |
//! | assistant `message` (`output_text`, `refusal`) | assistant `content` / `refusal` | |
//! | `function_call` items | assistant `tool_calls`; consecutive calls and the text and reasoning before them form one assistant message | |
//! | `function_call_output` | `tool` message | text parts only; images in tool output rejected |
//! | `reasoning` items | assistant `reasoning_content` (summary or reasoning text) and `x_thinking_blocks` (our own `encrypted_content`) | OpenAI's encrypted content is opaque to other providers and dropped; an item with nothing usable is dropped |
//! | `item_reference`, built-in tool calls and their outputs | - | rejected unless `drop_unsupported` |
//! | `instructions` | leading `system` message | `system` because every provider knows it; presets map roles further |
//! | function `tools` | chat `tools` | built-in tools (web_search, file_search, computer, mcp, custom, ...) rejected unless dropped |
//! | `tool_choice` | same values; `{type:function,name}` -> `{type:function,function:{name}}` | `allowed_tools` and built-in choices rejected unless dropped |
//! | `text.format` | `response_format` (`json_object`, `json_schema{name,schema,strict,description}`) | `text.verbosity` -> `verbosity` |
//! | `reasoning.effort` | `reasoning_effort` | `reasoning.summary` ignored: reasoning text is always returned when the provider gives it |
//! | `max_output_tokens` | `max_completion_tokens` | presets rename it where needed |
//! | `temperature`, `top_p`, `parallel_tool_calls`, `stream` | same | a stream always asks for the usage chunk |
//! | `user`, `safety_identifier` | `user` (the first one set) | |
//! | `metadata`, `store`, `previous_response_id`, `include` | not sent upstream | proxy concerns, echoed in the response object |
//! | `prompt_cache_key`, `service_tier`, `max_tool_calls`, `stream_options` | dropped | hints only (max_tool_calls limits built-in tools, which are rejected anyway) |
//! | `background: true`, `conversation`, `prompt`, `truncation: "auto"`, `top_logprobs` | - | rejected unless dropped |
//! | anything else | passed through | like the chat route, unknown parameters reach the upstream |
//!
//! Usage: `input_tokens` = `prompt_tokens` (which by the canonical convention already includes
//! cached and cache-write tokens), `input_tokens_details.cached_tokens` = `cached_tokens`,
//! `output_tokens` = `completion_tokens` (reasoning included), `output_tokens_details.
//! reasoning_tokens` = `reasoning_tokens`, `total_tokens` as reported (or the sum). Cache-write
//! tokens have no Responses field; they stay inside `input_tokens`.
//!
//! Ids are derived, never random, so the same completion always gives the same response:
//! `resp_<base>`, `msg_<base>`, `rs_<base>` where `<base>` is the completion id without its
//! `chatcmpl-` prefix (or the caller's response id without `resp_`), and `fc_<call id without
//! call_>` for function calls.

pub mod error;
pub mod request;
pub mod response;
pub mod stream;

use serde_json::Value;

pub use error::{error_to_openai, translate_error_to_openai};
pub use request::{chat_messages_to_items, history_to_store, prepend_history, to_chat};
pub use response::{from_chat, output_to_chat_messages};
pub use stream::{Encoder, Event, to_sse};

pub use crate::wire::translate::{TranslateError, TranslateOptions};

/// Marks `encrypted_content` that this proxy wrote: the canonical `x_thinking_blocks` (Anthropic
/// thinking text with its signature, redacted thinking) as JSON. A client sends the reasoning item
/// back on its next turn and the blocks come back intact; anything without this prefix is some
/// other vendor's opaque blob.
const THINKING_PREFIX: &str = "stockyard.thinking.v1:";

pub(crate) fn encode_thinking_blocks(blocks: &[Value]) -> Option<String> {
    if blocks.is_empty() {
        return None;
    }
    let json = serde_json::to_string(blocks).ok()?;
    Some(format!("{THINKING_PREFIX}{json}"))
}

pub(crate) fn decode_thinking_blocks(encrypted: &str) -> Option<Vec<Value>> {
    let json = encrypted.strip_prefix(THINKING_PREFIX)?;
    match serde_json::from_str::<Value>(json).ok()? {
        Value::Array(blocks) => Some(blocks),
        _ => None,
    }
}

/// Derives the ids of one response and its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ids {
    base: String,
}

impl Ids {
    /// From the caller's response id (`resp_...`) when given, else from the completion id.
    pub(crate) fn new(response_id: Option<&str>, completion_id: &str) -> Ids {
        let base = match response_id {
            Some(id) => id.strip_prefix("resp_").unwrap_or(id),
            None => completion_id
                .strip_prefix("chatcmpl-")
                .or_else(|| completion_id.strip_prefix("chatcmpl_"))
                .unwrap_or(completion_id),
        };
        let base = if base.is_empty() { "0" } else { base };
        Ids {
            base: base.to_string(),
        }
    }

    pub(crate) fn response(&self) -> String {
        format!("resp_{}", self.base)
    }

    /// The `n`-th message item (usually there is one).
    pub(crate) fn message(&self, n: usize) -> String {
        numbered("msg", &self.base, n)
    }

    pub(crate) fn reasoning(&self, n: usize) -> String {
        numbered("rs", &self.base, n)
    }

    /// A call id for a provider that sent none (never OpenAI; some local servers).
    pub(crate) fn call(&self, index: u64) -> String {
        format!("call_{}_{index}", self.base)
    }
}

fn numbered(prefix: &str, base: &str, n: usize) -> String {
    if n == 0 {
        format!("{prefix}_{base}")
    } else {
        format!("{prefix}_{base}_{n}")
    }
}

/// The `fc_...` item id of a function call, from its `call_...` id.
pub(crate) fn call_item_id(call_id: &str) -> String {
    format!("fc_{}", call_id.strip_prefix("call_").unwrap_or(call_id))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the tests of this folder.
    use serde_json::Value;

    /// Parses an SSE text into `(event, data)` pairs; `data: [DONE]` and comments are skipped.
    pub fn parse_sse(text: &str) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for block in text.replace("\r\n", "\n").split("\n\n") {
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            let value = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("bad JSON in SSE block {block:?}: {e}"));
            out.push((name, value));
        }
        out
    }

    pub(crate) use crate::wire::translate::assert_json_eq;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_strip_the_known_prefixes() {
        let ids = Ids::new(None, "chatcmpl-abc123");
        assert_eq!(ids.response(), "resp_abc123");
        assert_eq!(ids.message(0), "msg_abc123");
        assert_eq!(ids.message(2), "msg_abc123_2");
        assert_eq!(ids.reasoning(0), "rs_abc123");
        assert_eq!(
            Ids::new(Some("resp_xyz"), "chatcmpl-abc").response(),
            "resp_xyz"
        );
        assert_eq!(Ids::new(None, "").response(), "resp_0");
        assert_eq!(call_item_id("call_9"), "fc_9");
        assert_eq!(call_item_id("toolu_01"), "fc_toolu_01");
    }

    #[test]
    fn thinking_blocks_round_trip_and_foreign_blobs_are_ignored() {
        let blocks = vec![
            json!({"type":"thinking","thinking":"a","signature":"sig"}),
            json!({"type":"redacted_thinking","data":"xyz"}),
        ];
        let encoded = encode_thinking_blocks(&blocks).unwrap();
        assert_eq!(decode_thinking_blocks(&encoded), Some(blocks));
        assert_eq!(decode_thinking_blocks("gAAAAABopenai-blob"), None);
        assert_eq!(encode_thinking_blocks(&[]), None);
    }
}
