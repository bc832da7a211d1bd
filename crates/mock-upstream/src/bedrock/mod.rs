//! AWS Bedrock Runtime answers, so the proxy's Bedrock adapter can be tested end to end. Every path
//! ending in `/model/{modelId}/{action}` is Bedrock's, whatever comes before it (Bedrock itself
//! has no prefix); `modelId` is percent-decoded (`anthropic.claude-sonnet-4-5-20250929-v1%3A0`),
//! and the recorded path keeps it as sent, so tests can check the encoding. The actions served:
//!
//! | action | answer |
//! |---|---|
//! | `converse` | a Converse answer (`converse.rs`) |
//! | `converse-stream` | the same answer as `application/vnd.amazon.eventstream` frames (`eventstream.rs`) |
//! | `invoke` | InvokeModel for the embedding models: Titan Text Embeddings V2 and Cohere Embed (`invoke.rs`); for Claude (`anthropic.` in the model id), Anthropic's Messages answer (`claude.rs`); for the image models (Nova Canvas, Titan Image Generator, Stability AI) and the rerank models (Cohere, Amazon), their answers (`media.rs`) |
//! | `invoke-with-response-stream` | Claude only: the Messages stream, each event base64 in a `chunk` frame (`claude.rs`) |
//!
//! Every response carries an `x-amzn-requestid` header (UUID-shaped, numbered by request). Errors
//! (status faults, bad JSON, a bad `"mock"` object, a Converse request without `messages`,
//! unknown actions) answer `{"message"}` with the error's name in `x-amzn-ErrorType`
//! (`error.rs`). The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`,
//! `x-amz-content-sha256`) are only recorded, never checked. Shapes follow
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html> and
//! the workspace's golden files in `tests/fixtures/bedrock/`.
//!
//! # The answer
//!
//! `output.message.content` holds, when the request enables thinking
//! (`additionalModelRequestFields.thinking.type` `enabled` or `adaptive`, as for Claude, or
//! `additionalModelRequestFields.reasoningConfig.type` `enabled`, as for Nova), first a
//! `reasoningContent` block `{"reasoningText": {"text": THINKING_TEXT, "signature":
//! "sig_mock_<n>"}}`; then either a text block with the behaviour's content (`stopReason:
//! "end_turn"`) or, when `toolConfig.toolChoice` forces a call (`any`: the first tool; `tool`:
//! the one it names), a `toolUse` block `{"toolUseId": "tooluse_mock_1", "name", "input":
//! {"city": "Paris"}}` (`stopReason: "tool_use"`). `metrics.latencyMs` is 1.
//!
//! # Token counts
//!
//! Deterministic, like `openai/`: a "word" is a whitespace-separated run.
//!
//! | `usage` field | value |
//! |---|---|
//! | `cacheReadInputTokens` | R = `Behavior::cached_tokens` |
//! | `cacheWriteInputTokens` | W = `Behavior::cache_write_tokens` |
//! | `inputTokens` | P − R − W, at least 0, where P = words in the `text` blocks of `system` + per message: words in its `text` blocks + 4 |
//! | `outputTokens` | words in the answer text (a `toolUse` answer counts 1) + `Behavior::reasoning_tokens` |
//! | `totalTokens` | `inputTokens` + `outputTokens` + R + W |
//!
//! As in Anthropic's rule, `inputTokens` excludes cache reads and writes (Bedrock's prompt-caching
//! docs: total input = inputTokens + cacheReadInputTokens + cacheWriteInputTokens). Image,
//! document, `toolUse`, `toolResult` and `reasoningContent` blocks count no words; neither does
//! the mock's own reasoning text. `omit_usage` leaves `usage` out (of the answer and of the
//! stream's `metadata` event, which still carries `metrics`).
//!
//! # The stream
//!
//! Each event is one binary frame (headers `:event-type`, `:content-type: application/json`,
//! `:message-type: event`; a JSON payload):
//!
//! 1. `messageStart {"role": "assistant"}`;
//! 2. with thinking on, block 0: `contentBlockDelta`s with `reasoningContent.text` pieces of
//!    [`THINKING_TEXT`](crate::THINKING_TEXT), one with `reasoningContent.signature`, then
//!    `contentBlockStop`;
//! 3. the answer block: `contentBlockDelta`s `{"delta": {"text"}}` split over `Behavior::chunks`,
//!    or `contentBlockStart {"start": {"toolUse": {"toolUseId", "name"}}}` then `toolUse.input`
//!    deltas `{"city":` and `"Paris"}`; then `contentBlockStop`;
//! 4. `messageStop {"stopReason"}`;
//! 5. `metadata {"usage", "metrics"}`.
//!
//! The stream faults count `contentBlockDelta` events of any kind ("deltas"):
//! `reset_after_chunks` and `exception_after_chunks` cut the stream right after the Nth (before
//! the first when N = 0; after the last when N exceeds them), the first resetting the connection,
//! the second sending an exception frame (`:message-type: exception`, `:exception-type:
//! throttlingException`, payload `{"message": "Too many requests"}`) and ending the body
//! cleanly; on a tie the exception goes out, then the connection is reset. `malformed_body` puts
//! one well-framed `contentBlockDelta` whose payload is half a delta's JSON before the first
//! delta.

pub(crate) mod claude;
pub(crate) mod converse;
pub(crate) mod error;
pub(crate) mod eventstream;
pub(crate) mod invoke;
pub(crate) mod media;

use serde_json::Value;

use crate::openai::{Reply, words};
use crate::script::Behavior;

/// The actions the mock answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Action {
    Converse,
    ConverseStream,
    Invoke,
    InvokeStream,
}

/// The model id (percent-decoded) and action of a Bedrock path.
pub(crate) struct Target<'a> {
    pub(crate) model_id: String,
    pub(crate) action: &'a str,
}

/// The target of `path`, if it is a Bedrock path: the action is the last segment and the model id
/// everything between the last `/model/` and it (an unencoded ARN's `/` included, leniently).
pub(crate) fn target(path: &str) -> Option<Target<'_>> {
    let (_, rest) = path.rsplit_once("/model/")?;
    let (model_id, action) = rest.rsplit_once('/')?;
    (!model_id.is_empty() && !action.is_empty()).then(|| Target {
        model_id: percent_decode(model_id),
        action,
    })
}

/// Whether `path` belongs to Bedrock, so its errors take Bedrock's shape.
pub(crate) fn serves(path: &str) -> bool {
    target(path).is_some()
}

impl Action {
    pub(crate) fn of(action: &str) -> Option<Action> {
        match action {
            "converse" => Some(Action::Converse),
            "converse-stream" => Some(Action::ConverseStream),
            "invoke" => Some(Action::Invoke),
            "invoke-with-response-stream" => Some(Action::InvokeStream),
            _ => None,
        }
    }
}

/// Answers one call; `n` numbers the signature and the request id.
pub(crate) fn reply(action: Action, model_id: &str, req: &Value, b: &Behavior, n: usize) -> Reply {
    match action {
        Action::Converse => converse::reply(req, b, n, false),
        Action::ConverseStream => converse::reply(req, b, n, true),
        Action::Invoke if claude::serves(model_id) => claude::reply(model_id, req, b, n, false),
        Action::Invoke if media::serves(model_id) => media::reply(model_id, req, n),
        Action::Invoke => invoke::reply(model_id, req, n),
        Action::InvokeStream if claude::serves(model_id) => {
            claude::reply(model_id, req, b, n, true)
        }
        Action::InvokeStream => error::validation(&format!(
            "the mock serves InvokeModelWithResponseStream only for anthropic.* models (got {model_id:?})"
        )),
    }
}

/// The `x-amzn-requestid` of request number `n`: UUID-shaped, like Bedrock's.
pub(crate) fn request_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", n)
}

/// `inputTokens` by the rule in the module doc: the prompt's words minus cache reads and writes.
pub(crate) fn input_tokens(req: &Value, b: &Behavior) -> u64 {
    prompt_words(req)
        .saturating_sub(b.cached_tokens)
        .saturating_sub(b.cache_write_tokens)
}

/// P in the module doc: words in the system blocks, plus per message its words and 4.
fn prompt_words(req: &Value) -> u64 {
    let system = req.get("system").map_or(0, block_words);
    let messages: u64 = req
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, |messages| {
            messages
                .iter()
                .map(|m| m.get("content").map_or(0, block_words) + 4)
                .sum()
        });
    system + messages
}

/// Words in the `text` of each `{"text"}` block of a list.
fn block_words(blocks: &Value) -> u64 {
    blocks.as_array().map_or(0, |blocks| {
        blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(words)
            .sum()
    })
}

/// `%XX` escapes to bytes; anything else, including a malformed escape, is kept as is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|&c| char::from(c).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits are at most 0xff, so the cast keeps every bit.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Action, percent_decode, prompt_words, request_id, target};

    #[test]
    fn targets_decode_the_model_id_and_keep_the_action() {
        let t = target("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse").unwrap();
        assert_eq!(t.model_id, "anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(Action::of(t.action), Some(Action::Converse));
        let arn =
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/converse-stream";
        let t = target(arn).unwrap();
        assert_eq!(
            t.model_id,
            "arn:aws:bedrock:us-east-1:1:inference-profile/us.x"
        );
        assert_eq!(Action::of(t.action), Some(Action::ConverseStream));
        assert_eq!(
            target("/prefix/model/amazon.titan-embed-text-v2:0/invoke")
                .unwrap()
                .model_id,
            "amazon.titan-embed-text-v2:0"
        );
        assert!(target("/v1/models").is_none());
        assert!(target("/model/x/").is_none());
        assert!(target("/model//converse").is_none());
        assert_eq!(
            Action::of("invoke-with-response-stream"),
            Some(Action::InvokeStream)
        );
        assert_eq!(Action::of("invoke-with-bidirectional-stream"), None);
    }

    #[test]
    fn percent_decode_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%3Ab%2fc"), "a:b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn prompt_words_count_system_text_blocks_and_four_per_message() {
        let req = json!({
            "system": [{"text": "Be terse."}, {"cachePoint": {"type": "default"}}],
            "messages": [
                {"role": "user", "content": [
                    {"text": "one two three"},
                    {"image": {"format": "png", "source": {"bytes": "AA=="}}}
                ]},
                {"role": "assistant", "content": [
                    {"reasoningContent": {"reasoningText": {"text": "not counted", "signature": "s"}}},
                    {"text": "four five"},
                    {"toolUse": {"toolUseId": "t", "name": "f", "input": {"a": "not counted"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "t", "content": [{"text": "not counted"}]}}
                ]}
            ]
        });
        // system 2; messages (3 + 4) + (2 + 4) + (0 + 4).
        assert_eq!(prompt_words(&req), 2 + 7 + 6 + 4);
    }

    #[test]
    fn request_ids_are_uuid_shaped() {
        assert_eq!(request_id(1), "00000000-0000-4000-8000-000000000001");
        assert_eq!(request_id(255).len(), 36);
    }
}
