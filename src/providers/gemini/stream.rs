//! Decoder of `streamGenerateContent?alt=sse`: each SSE event's `data:` is one complete
//! `GenerateContentResponse` carrying the next slice of the answer. The caller splits the byte
//! stream into events (`proxy::sse::SseSplitter`) and hands each event's data to [`Decoder::push`];
//! at the end of the body it calls [`Decoder::finish`].
//!
//! Output, in order, per candidate (`choices[].index` = candidate index):
//! 1. a role chunk (`delta: {role: assistant, content: ""}`) before anything else;
//! 2. `content` deltas for text parts, `reasoning_content` deltas for `thought: true` parts, and
//!    one complete tool-call delta per `functionCall` part (Gemini never splits a call): `index`
//!    counts the candidate's calls from 0, `id` is `functionCall.id` or `call_<n>` (n counts the
//!    calls of the whole stream, as in [`super::response`]), `arguments` is the whole JSON;
//!    `thoughtSignature`s travel as `x_thought_signature` on the tool call or the delta;
//! 3. a finish chunk when a `finishReason` arrives (mapped by [`super::response::finish_reason`]);
//! 4. at [`Decoder::finish`], one usage chunk (`choices: []`) from the LAST `usageMetadata` seen,
//!    which Gemini repeats cumulatively on every event.
//!
//! A stream whose body ends before any `finishReason` is truncated: `finish` returns an error so it
//! never looks clean. An `{"error": {...}}` event becomes `TranslateError::ProviderError`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::response::{completion_id, finish_reason, tool_call, usage};
use super::{TranslateError, now_secs};

#[derive(Default)]
struct CandidateState {
    started: bool,
    calls: usize,
    finished: bool,
}

/// Stateful decoder for one streamed answer.
pub struct Decoder {
    model: String,
    created: u64,
    id: Option<String>,
    candidates: BTreeMap<u64, CandidateState>,
    call_counter: usize,
    usage: Option<Value>,
    done: bool,
}

impl Decoder {
    /// `model` is the name the client asked for; it is echoed in every chunk.
    pub fn new(model: &str) -> Decoder {
        Decoder {
            model: model.to_string(),
            created: now_secs(),
            id: None,
            candidates: BTreeMap::new(),
            call_counter: 0,
            usage: None,
            done: false,
        }
    }

    /// Decodes one SSE event's `data` payload.
    pub fn push(&mut self, data: &str) -> Result<Vec<Value>, TranslateError> {
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(Vec::new());
        }
        let event: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::Malformed(format!("stream event is not JSON: {e}")))?;
        self.push_json(&event)
    }

    /// Decodes one already-parsed `GenerateContentResponse`.
    pub fn push_json(&mut self, event: &Value) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            return Err(TranslateError::Malformed(
                "event after the end of the stream".into(),
            ));
        }
        // Some error paths send the error object wrapped in an array.
        let event = match event {
            Value::Array(items) if items.len() == 1 => &items[0],
            other => other,
        };
        if let Some(error) = event.get("error") {
            return Err(super::error::provider_error(error));
        }
        if self.id.is_none() {
            self.id = Some(completion_id(event.get("responseId")));
        }
        if let Some(meta) = event.get("usageMetadata") {
            self.usage = Some(usage(meta));
        }
        let mut out = Vec::new();
        let candidates = match event.get("candidates") {
            None => &Vec::new(),
            Some(Value::Array(c)) => c,
            Some(_) => {
                return Err(TranslateError::Malformed(
                    "candidates is not an array".into(),
                ));
            }
        };
        if candidates.is_empty()
            && event
                .get("promptFeedback")
                .and_then(|f| f.get("blockReason"))
                .is_some()
        {
            self.start(0, &mut out);
            out.push(self.chunk(0, json!({}), Some("content_filter")));
            self.state(0).finished = true;
        }
        for (position, candidate) in candidates.iter().enumerate() {
            let index = candidate
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            self.start(index, &mut out);
            if let Some(parts) = candidate.get("content").and_then(|c| c.get("parts")) {
                let parts = parts.as_array().ok_or_else(|| {
                    TranslateError::Malformed("candidate content.parts is not an array".into())
                })?;
                for part in parts {
                    self.part(index, part, &mut out)?;
                }
            }
            if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
                let has_calls = self.state(index).calls > 0;
                out.push(self.chunk(index, json!({}), Some(finish_reason(reason, has_calls))));
                self.state(index).finished = true;
            }
        }
        Ok(out)
    }

    /// Ends the stream: errors when no candidate finished, else yields the usage chunk (if Gemini
    /// reported usage). Calling it again yields nothing.
    pub fn finish(&mut self) -> Result<Vec<Value>, TranslateError> {
        if self.done {
            return Ok(Vec::new());
        }
        self.done = true;
        if !self.candidates.values().any(|c| c.finished) {
            return Err(TranslateError::Malformed(
                "stream ended before any finishReason (truncated)".into(),
            ));
        }
        Ok(match self.usage.take() {
            Some(usage) => vec![json!({
                "id": self.id(),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage,
            })],
            None => Vec::new(),
        })
    }

    fn part(
        &mut self,
        index: u64,
        part: &Value,
        out: &mut Vec<Value>,
    ) -> Result<(), TranslateError> {
        let signature = part.get("thoughtSignature").and_then(Value::as_str);
        if let Some(call) = part.get("functionCall") {
            let mut delta_call = tool_call(call, signature, &mut self.call_counter)?;
            let state = self.state(index);
            delta_call["index"] = json!(state.calls);
            state.calls += 1;
            out.push(self.chunk(index, json!({ "tool_calls": [delta_call] }), None));
            return Ok(());
        }
        let mut delta = serde_json::Map::new();
        if let Some(text) = part.get("text").and_then(Value::as_str)
            && !text.is_empty()
        {
            let key = if part.get("thought").and_then(Value::as_bool) == Some(true) {
                "reasoning_content"
            } else {
                "content"
            };
            delta.insert(key.into(), json!(text));
        }
        if let Some(signature) = signature {
            delta.insert("x_thought_signature".into(), json!(signature));
        }
        if !delta.is_empty() {
            out.push(self.chunk(index, Value::Object(delta), None));
        }
        Ok(())
    }

    fn start(&mut self, index: u64, out: &mut Vec<Value>) {
        if !self.state(index).started {
            self.state(index).started = true;
            out.push(self.chunk(index, json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn state(&mut self, index: u64) -> &mut CandidateState {
        self.candidates.entry(index).or_default()
    }

    fn id(&self) -> String {
        self.id.clone().unwrap_or_else(|| completion_id(None))
    }

    fn chunk(&self, index: u64, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": null}],
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::providers::gemini::test_support::{assert_json_eq, parse, strip_created};
    use crate::wire::sse::SseSplitter;

    const STREAM: &str = include_str!("../../../tests/fixtures/gemini/stream_tools.sse");

    /// Runs `bytes`, cut into the given pieces, through the SSE splitter and the decoder.
    fn decode(pieces: &[&[u8]]) -> Result<Vec<Value>, TranslateError> {
        let mut splitter = SseSplitter::default();
        let mut decoder = Decoder::new("gemini-2.5-flash");
        let mut chunks = Vec::new();
        for piece in pieces {
            for event in splitter.push(piece) {
                if let Some(data) = event.data() {
                    chunks.extend(decoder.push(&data)?);
                }
            }
        }
        chunks.extend(decoder.finish()?);
        Ok(chunks.into_iter().map(strip_created).collect())
    }

    /// Concatenates the tool-call argument deltas per (choice, tool index).
    fn arguments(chunks: &[Value]) -> BTreeMap<(u64, u64), String> {
        let mut args: BTreeMap<(u64, u64), String> = BTreeMap::new();
        for chunk in chunks {
            for choice in chunk["choices"].as_array().into_iter().flatten() {
                for call in choice["delta"]["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let key = (
                        choice["index"].as_u64().unwrap_or(0),
                        call["index"].as_u64().unwrap_or(0),
                    );
                    let piece = call["function"]["arguments"].as_str().unwrap_or("");
                    args.entry(key).or_default().push_str(piece);
                }
            }
        }
        args
    }

    #[test]
    fn stream_matches_golden_chunks() {
        let chunks = decode(&[STREAM.as_bytes()]).expect("decodes");
        let expected = parse(include_str!(
            "../../../tests/fixtures/gemini/stream_tools.chunks.json"
        ));
        assert_json_eq(&Value::Array(chunks), &expected);
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let cut = STREAM
            .find("\"finishReason\"")
            .and_then(|at| STREAM[..at].rfind("data:"))
            .expect("fixture has a finish event");
        assert!(matches!(
            decode(&[&STREAM.as_bytes()[..cut]]),
            Err(TranslateError::Malformed(_))
        ));
    }

    #[test]
    fn error_event_mid_stream_is_a_provider_error() {
        let mut decoder = Decoder::new("g");
        assert!(
            decoder
                .push(r#"{"candidates":[{"content":{"parts":[{"text":"Hel"}],"role":"model"}}]}"#)
                .is_ok()
        );
        let err = decoder.push(
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        );
        match err {
            Err(TranslateError::ProviderError { status, body, .. }) => {
                assert_eq!(status, 503);
                assert_eq!(body["error"]["message"], json!("The model is overloaded."));
            }
            other => panic!("expected ProviderError, got {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn any_split_yields_the_same_chunks(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..12)) {
            let bytes = STREAM.as_bytes();
            let mut cuts = cuts;
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for cut in cuts {
                pieces.push(&bytes[at..cut]);
                at = cut;
            }
            pieces.push(&bytes[at..]);
            let whole = decode(&[bytes]).expect("decodes");
            let split = decode(&pieces).expect("decodes");
            prop_assert_eq!(&split, &whole);

            // Tool-call arguments reassemble to the same JSON as the non-streamed answer.
            let answer = crate::providers::gemini::to_chat(
                &parse(include_str!("../../../tests/fixtures/gemini/response_tools.json")),
                "gemini-2.5-flash",
            ).expect("translates");
            let streamed = arguments(&split);
            let calls = answer["choices"][0]["message"]["tool_calls"].as_array().cloned().unwrap_or_default();
            prop_assert_eq!(streamed.len(), calls.len());
            for (k, call) in calls.iter().enumerate() {
                let want: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("")).expect("json");
                let got: Value = serde_json::from_str(&streamed[&(0, k as u64)]).expect("json");
                prop_assert_eq!(got, want);
            }
        }
    }
}
