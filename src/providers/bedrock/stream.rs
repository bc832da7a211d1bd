//! ConverseStream events -> canonical `chat.completion.chunk`s. The caller decodes the binary body
//! with [`super::eventstream::Decoder`] and hands each [`Frame`] to [`Decoder::push`]; at the end
//! of the body it calls [`Decoder::finish`].
//!
//! | event (`:event-type`) | chunks |
//! |---|---|
//! | `messageStart {role}` | the role chunk (`delta: {role: assistant, content: ""}`); emitted before any other chunk even if `messageStart` is missing |
//! | `contentBlockStart {start: {toolUse: {toolUseId, name}}}` | the first delta of a tool call: `index` (counting the answer's tool calls from 0), `id`, `type`, `function.name`, `arguments: ""` |
//! | `contentBlockDelta {delta: {text}}` | a `content` delta |
//! | `contentBlockDelta {delta: {toolUse: {input}}}` | an `arguments` delta for that block's tool call (same `index`) |
//! | `contentBlockDelta {delta: {reasoningContent: {text}}}` | a `reasoning_content` delta; the text, its `signature` and any `redactedContent` are also collected for the block |
//! | `contentBlockStop` of a reasoning block | a delta with `x_thinking_blocks: [{type: thinking, thinking, signature}]` or `[{type: redacted_thinking, data}]`, the whole block, for replay |
//! | `messageStop {stopReason}` | the finish chunk, `finish_reason` by [`super::finish_reason`] |
//! | `metadata {usage, metrics}` | the usage chunk (`choices: []`) by [`super::canonical_usage`] |
//! | `:message-type: exception` (`throttlingException`, `modelStreamErrorException`, `validationException`, `internalServerException`, `serviceUnavailableException`) or `:message-type: error` | `Err(TranslateError::ProviderError)` |
//!
//! [`Decoder::finish`] errors when no `messageStop` arrived, so a truncated stream never looks
//! clean. Unknown events and fields (such as the `p` padding Bedrock adds) are ignored.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::error::stream_exception;
use super::eventstream::Frame;
use super::{TranslateError, canonical_usage, finish_reason, now_secs};

#[derive(Default)]
struct ReasoningBlock {
    text: String,
    signature: Option<String>,
    redacted: Option<String>,
}

/// Stateful decoder for one ConverseStream answer.
pub struct Decoder {
    model: String,
    created: u64,
    started: bool,
    /// contentBlockIndex -> tool call index.
    tools: HashMap<u64, usize>,
    reasoning: HashMap<u64, ReasoningBlock>,
    stopped: bool,
    done: bool,
}

impl Decoder {
    /// `model` is the name the client asked for; it is echoed in every chunk.
    pub fn new(model: &str) -> Decoder {
        Decoder {
            model: model.to_string(),
            created: now_secs(),
            started: false,
            tools: HashMap::new(),
            reasoning: HashMap::new(),
            stopped: false,
            done: false,
        }
    }

    /// Decodes one event-stream frame.
    pub fn push(&mut self, frame: &Frame) -> Result<Vec<Value>, TranslateError> {
        match frame.message_type.as_deref() {
            Some("exception") => {
                let kind = frame
                    .exception_type
                    .as_deref()
                    .unwrap_or("internalServerException");
                return Err(stream_exception(kind, &frame.payload));
            }
            Some("error") => {
                let kind = frame
                    .error_code
                    .as_deref()
                    .unwrap_or("internalServerException");
                let payload = json!({ "message": frame.error_message.clone().unwrap_or_default() });
                return Err(stream_exception(kind, payload.to_string().as_bytes()));
            }
            _ => {}
        }
        let Some(event_type) = frame.event_type.as_deref() else {
            return Err(TranslateError::Malformed(
                "event-stream message without :event-type".into(),
            ));
        };
        let payload: Value = if frame.payload.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&frame.payload).map_err(|e| {
                TranslateError::Malformed(format!("{event_type} payload is not JSON: {e}"))
            })?
        };
        self.push_event(event_type, &payload)
    }

    /// Decodes one event given its type and parsed payload.
    pub fn push_event(
        &mut self,
        event_type: &str,
        payload: &Value,
    ) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            return Err(TranslateError::Malformed(
                "event after the end of the stream".into(),
            ));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
        let block = payload.get("contentBlockIndex").and_then(Value::as_u64);
        match event_type {
            "messageStart" => {}
            "contentBlockStart" => {
                if let Some(tool) = payload.get("start").and_then(|s| s.get("toolUse")) {
                    let block =
                        block.ok_or_else(|| missing("contentBlockStart", "contentBlockIndex"))?;
                    let id = tool
                        .get("toolUseId")
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("contentBlockStart.toolUse", "toolUseId"))?;
                    let name = tool
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("contentBlockStart.toolUse", "name"))?;
                    let index = self.tools.len();
                    self.tools.insert(block, index);
                    out.push(self.chunk(
                        json!({"tool_calls": [{
                            "index": index,
                            "id": id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }]}),
                        None,
                    ));
                }
            }
            "contentBlockDelta" => {
                let block =
                    block.ok_or_else(|| missing("contentBlockDelta", "contentBlockIndex"))?;
                let delta = payload
                    .get("delta")
                    .ok_or_else(|| missing("contentBlockDelta", "delta"))?;
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(self.chunk(json!({ "content": text }), None));
                    }
                } else if let Some(tool) = delta.get("toolUse") {
                    let index = *self.tools.get(&block).ok_or_else(|| {
                        TranslateError::Malformed(format!(
                            "toolUse delta for block {block} without a contentBlockStart"
                        ))
                    })?;
                    let piece = tool
                        .get("input")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    out.push(self.chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        None,
                    ));
                } else if let Some(reasoning) = delta.get("reasoningContent") {
                    let state = self.reasoning.entry(block).or_default();
                    if let Some(sig) = reasoning.get("signature").and_then(Value::as_str) {
                        state
                            .signature
                            .get_or_insert_with(String::new)
                            .push_str(sig);
                    }
                    if let Some(data) = reasoning.get("redactedContent").and_then(Value::as_str) {
                        state
                            .redacted
                            .get_or_insert_with(String::new)
                            .push_str(data);
                    }
                    if let Some(text) = reasoning.get("text").and_then(Value::as_str)
                        && !text.is_empty()
                    {
                        state.text.push_str(text);
                        out.push(self.chunk(json!({ "reasoning_content": text }), None));
                    }
                }
            }
            "contentBlockStop" => {
                let block =
                    block.ok_or_else(|| missing("contentBlockStop", "contentBlockIndex"))?;
                if let Some(state) = self.reasoning.remove(&block) {
                    let thinking = match state.redacted {
                        Some(data) => json!({"type": "redacted_thinking", "data": data}),
                        None => {
                            let mut b = json!({"type": "thinking", "thinking": state.text});
                            if let Some(sig) = state.signature {
                                b["signature"] = json!(sig);
                            }
                            b
                        }
                    };
                    out.push(self.chunk(json!({ "x_thinking_blocks": [thinking] }), None));
                }
            }
            "messageStop" => {
                let reason = payload
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing("messageStop", "stopReason"))?;
                out.push(self.chunk(json!({}), Some(finish_reason(reason))));
                self.stopped = true;
            }
            "metadata" => {
                if let Some(usage) = payload.get("usage") {
                    out.push(json!({
                        "id": "chatcmpl-bedrock",
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": canonical_usage(usage),
                    }));
                }
            }
            // Events added after this was written are skipped rather than failing the answer.
            _ => {}
        }
        Ok(out)
    }

    /// Ends the stream: an error unless `messageStop` arrived.
    pub fn finish(&mut self) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            return Ok(Vec::new());
        }
        self.done = true;
        if !self.stopped {
            return Err(TranslateError::Malformed(
                "ConverseStream ended without messageStop (truncated)".into(),
            ));
        }
        Ok(Vec::new())
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": "chatcmpl-bedrock",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        })
    }
}

fn missing(event: &str, field: &str) -> TranslateError {
    TranslateError::Malformed(format!("{event} without {field}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::providers::bedrock::eventstream::{self, encode_event, encode_exception};
    use crate::providers::bedrock::test_support::{assert_json_eq, parse, strip_created};

    /// The JSON fixture events as the binary body Bedrock would send.
    fn body(events: &str) -> Vec<u8> {
        let events = parse(events);
        let mut bytes = Vec::new();
        for event in events.as_array().expect("array of events") {
            let payload = event["payload"].to_string();
            if let Some(kind) = event["exception"].as_str() {
                bytes.extend(encode_exception(kind, payload.as_bytes()));
            } else {
                let kind = event["event"].as_str().expect("event name");
                bytes.extend(encode_event(kind, payload.as_bytes()));
            }
        }
        bytes
    }

    fn decode(bytes: &[u8], cuts: &[usize]) -> Result<Vec<Value>, TranslateError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut frames = eventstream::Decoder::new();
        let mut decoder = Decoder::new("claude-sonnet-4-5");
        let mut chunks = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            let decoded = frames
                .push(&bytes[at..cut])
                .map_err(|e| TranslateError::Malformed(e.to_string()))?;
            for frame in decoded {
                chunks.extend(decoder.push(&frame)?);
            }
            at = cut;
        }
        frames
            .finish()
            .map_err(|e| TranslateError::Malformed(e.to_string()))?;
        chunks.extend(decoder.finish()?);
        Ok(chunks.into_iter().map(strip_created).collect())
    }

    const EVENTS: &str = include_str!("../../../tests/fixtures/bedrock/stream_tools.events.json");

    #[test]
    fn stream_matches_golden_chunks() {
        let chunks = decode(&body(EVENTS), &[]).expect("decodes");
        let expected = parse(include_str!(
            "../../../tests/fixtures/bedrock/stream_tools.chunks.json"
        ));
        assert_json_eq(&Value::Array(chunks), &expected);
    }

    #[test]
    fn exception_mid_stream_is_a_provider_error() {
        let bytes = body(include_str!(
            "../../../tests/fixtures/bedrock/stream_exception.events.json"
        ));
        match decode(&bytes, &[]) {
            Err(TranslateError::ProviderError { status, body, .. }) => {
                assert_eq!(status, 424);
                assert_eq!(body["error"]["code"], json!("model_stream_error"));
            }
            other => panic!("expected ProviderError, got {other:?}"),
        }
    }

    #[test]
    fn stream_without_message_stop_is_truncated() {
        let events: Vec<Value> = parse(EVENTS)
            .as_array()
            .expect("array")
            .iter()
            .filter(|e| e["event"] != json!("messageStop") && e["event"] != json!("metadata"))
            .cloned()
            .collect();
        let bytes = body(&Value::Array(events).to_string());
        assert!(matches!(
            decode(&bytes, &[]),
            Err(TranslateError::Malformed(_))
        ));
    }

    #[test]
    fn error_message_frames_are_provider_errors() {
        let frame = eventstream::encode_frame(
            &[
                (
                    ":message-type",
                    eventstream::HeaderValue::String("error".into()),
                ),
                (
                    ":error-code",
                    eventstream::HeaderValue::String("ThrottlingException".into()),
                ),
                (
                    ":error-message",
                    eventstream::HeaderValue::String("slow down".into()),
                ),
            ],
            b"",
        );
        match decode(&frame, &[]) {
            Err(TranslateError::ProviderError {
                status, message, ..
            }) => {
                assert_eq!(status, 429);
                assert_eq!(message, "slow down");
            }
            other => panic!("expected ProviderError, got {other:?}"),
        }
    }

    fn arguments(chunks: &[Value]) -> BTreeMap<u64, String> {
        let mut args: BTreeMap<u64, String> = BTreeMap::new();
        for chunk in chunks {
            for choice in chunk["choices"].as_array().into_iter().flatten() {
                for call in choice["delta"]["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let piece = call["function"]["arguments"].as_str().unwrap_or("");
                    args.entry(call["index"].as_u64().unwrap_or(0))
                        .or_default()
                        .push_str(piece);
                }
            }
        }
        args
    }

    proptest! {
        #[test]
        fn any_split_yields_the_same_chunks(cuts in proptest::collection::vec(any::<usize>(), 0..16)) {
            let bytes = body(EVENTS);
            let whole = decode(&bytes, &[]).expect("decodes");
            let split = decode(&bytes, &cuts).expect("decodes");
            prop_assert_eq!(&split, &whole);

            // Tool-call argument deltas reassemble to the same JSON as the non-streamed answer.
            let answer = crate::providers::bedrock::to_chat(
                &parse(include_str!("../../../tests/fixtures/bedrock/converse_response_tools.json")),
                "claude-sonnet-4-5",
            ).expect("translates");
            let calls = answer["choices"][0]["message"]["tool_calls"].as_array().cloned().unwrap_or_default();
            let streamed = arguments(&split);
            prop_assert_eq!(streamed.len(), calls.len());
            for (k, call) in calls.iter().enumerate() {
                let want: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("")).expect("json");
                let got: Value = serde_json::from_str(&streamed[&(k as u64)]).expect("json");
                prop_assert_eq!(got, want);
            }
        }
    }
}
