//! The answer of a request a cache may store, collected as it passes: the complete answer, or
//! the canonical chunks of a stream, assembled at the end. Only a successful, complete, unrefused
//! answer is ever stored ([`storable`]).

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use crate::modules::Outcome;
use crate::providers::anthropic::stream::Decoder;
use crate::request::{RequestCtx, StreamEvent};

#[derive(Clone, Default)]
pub struct Collected {
    chunks: Vec<Value>,
    complete: Option<Value>,
    /// Decodes a native Anthropic Messages stream into canonical chunks (shared so that the
    /// collection can sit in a request's slots, which clone).
    anthropic: Option<Arc<Mutex<Decoder>>>,
    /// The answer came in a form a cache does not keep (a native OpenAI Responses stream), or a
    /// native stream that would not decode.
    unusable: bool,
}

impl Collected {
    /// A complete (non-streamed) answer's body: canonical, or a Responses object (a Responses
    /// client's native answer from OpenAI), kept in canonical form.
    pub fn complete(&mut self, body: &[u8]) {
        self.complete = serde_json::from_slice::<Value>(body)
            .ok()
            .map(|value| match value["object"].as_str() {
                Some("response") => from_response(&value),
                _ => Some(value),
            })
            .unwrap_or(None);
    }

    /// Keeps a canonical chunk of a stream; a native Anthropic event is decoded to the chunks it
    /// stands for, so an answer streamed natively to a Messages client serves every format.
    pub fn capture(&mut self, event: &StreamEvent) {
        if event.is_native() {
            self.capture_native(event.raw());
            return;
        }
        if let Some(json) = event.json() {
            self.chunks.push(json.clone());
            return;
        }
        let Ok(text) = std::str::from_utf8(event.raw()) else {
            return;
        };
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:").map(str::trim_start)
                && data != "[DONE]"
                && let Ok(chunk) = serde_json::from_str::<Value>(data)
            {
                self.chunks.push(chunk);
            }
        }
    }

    fn capture_native(&mut self, raw: &[u8]) {
        if self.unusable {
            return;
        }
        let name = std::str::from_utf8(raw).ok().and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("event:").map(str::trim))
        });
        // OpenAI's Responses events: the last one carries the whole response, which is the
        // answer; the deltas before it add nothing to it.
        if let Some(name) = name.filter(|n| n.starts_with("response.")) {
            if name == "response.completed" {
                let data = std::str::from_utf8(raw).ok().and_then(|text| {
                    text.lines()
                        .find_map(|line| line.strip_prefix("data:").map(str::trim))
                });
                let response = data.and_then(|d| serde_json::from_str::<Value>(d).ok());
                self.complete = response.and_then(|r| from_response(&r["response"]));
            }
            return;
        }
        let decoder = self
            .anthropic
            .get_or_insert_with(|| Arc::new(Mutex::new(Decoder::new("", 0))));
        let decoded = decoder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_sse(raw);
        match decoded {
            Ok(chunks) => self.chunks.extend(chunks),
            Err(_) => self.unusable = true,
        }
    }

    /// The answer in canonical complete form, if one arrived.
    pub fn answer(&self, ctx: &RequestCtx) -> Option<Value> {
        if self.unusable {
            return None;
        }
        // A native stream that ended before `message_stop` was cut: never an answer.
        if let Some(decoder) = &self.anthropic
            && decoder
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .finish()
                .is_err()
        {
            return None;
        }
        let mut answer = match &self.complete {
            Some(complete) => complete.clone(),
            None if !self.chunks.is_empty() => {
                let refused = self.chunks.iter().any(|c| {
                    c["choices"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|ch| ch["delta"]["refusal"].is_string())
                });
                if refused {
                    return None;
                }
                crate::request::answer::assemble(&self.chunks)
            }
            None => return None,
        };
        // A client that did not ask for stream usage never saw the usage chunk; the context has it.
        if answer.get("usage").is_none_or(Value::is_null) && ctx.usage.reported {
            let t = &ctx.usage.tokens;
            answer["usage"] = json!({"prompt_tokens": t.prompt, "completion_tokens": t.completion,
                "total_tokens": t.prompt + t.completion});
        }
        Some(answer)
    }
}

/// `answer` if it may be stored: the request succeeded in full, no module answered it, and
/// every choice finished normally (not cut, not filtered, not refused).
pub fn storable(ctx: &RequestCtx, outcome: Outcome, answer: Option<Value>) -> Option<Value> {
    if !outcome.is_success()
        || ctx.result.error_class.is_some()
        || ctx.result.status >= 400
        || ctx.route.answered_by.is_some()
    {
        return None;
    }
    let answer = answer?;
    let choices = answer["choices"].as_array()?;
    let finished = !choices.is_empty()
        && choices.iter().all(|c| {
            matches!(
                c["finish_reason"].as_str(),
                Some("stop" | "length" | "tool_calls" | "function_call")
            ) && !c["message"]["refusal"].is_string()
        });
    finished.then_some(answer)
}

/// A Responses object as the canonical chat completion a cache keeps: its output items become the
/// assistant message, its status the finish reason. `None` for one that did not complete.
fn from_response(response: &Value) -> Option<Value> {
    if response["status"].as_str() != Some("completed") {
        return None;
    }
    let message = crate::wire::responses::output_to_chat_messages(response)
        .into_iter()
        .next()?;
    let finish = if message["tool_calls"].is_array() {
        "tool_calls"
    } else {
        "stop"
    };
    let usage = &response["usage"];
    let prompt = usage["input_tokens"].as_u64().unwrap_or(0);
    let completion = usage["output_tokens"].as_u64().unwrap_or(0);
    Some(json!({
        "id": response["id"],
        "object": "chat.completion",
        "created": response["created_at"],
        "model": response["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion},
    }))
}
