//! Canonical `chat.completion.chunk`s -> Responses streaming events (`event: NAME` / `data: JSON`,
//! every payload carrying its `type` and a `sequence_number` counting from 0). Who calls: the
//! `/v1/responses` route when `stream` is true and the provider is not OpenAI.
//!
//! The event order follows OpenAI's: `response.created`, `response.in_progress`, then per output
//! item `response.output_item.added`, its content events, `response.output_item.done`, and last
//! `response.completed` (or `response.incomplete` for `length` / `content_filter`), whose
//! `response` is exactly what [`super::response::from_chat`] builds from the equivalent
//! non-streamed completion (same ids, items, usage; tested).
//!
//! | chunk delta | events |
//! |---|---|
//! | `reasoning_content` | a `reasoning` item; `response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta` |
//! | `x_thinking_blocks` | merged into the reasoning item (its `encrypted_content`); no event of their own |
//! | `content` | a `message` item; `response.content_part.added` (`output_text`), `response.output_text.delta` |
//! | `refusal` | a `refusal` content part; `response.refusal.delta` |
//! | `tool_calls[]` | one `function_call` item per chunk tool-call `index`, created on its first delta; `response.function_call_arguments.delta` |
//! | `finish_reason` | every open item is closed (`*.done` events) |
//! | `usage` (any chunk, last one wins) | the terminal response's `usage` |
//! | top-level `error` | `error` then `response.failed` |
//!
//! Items are numbered (`output_index`) in order of first appearance. A reasoning or message item is
//! closed as soon as another item starts, as OpenAI does; function-call items stay open until the
//! finish reason because some providers interleave the argument deltas of parallel calls, and each
//! delta must still land on its own item.
//!
//! A stream that ends without a finish reason is an error from [`Encoder::finish`], never a clean
//! `response.completed`: the caller then sends [`Encoder::fail`]'s events.
//!
//! This file holds the encoder's lifecycle: the first chunk's `response.created`, the dispatch of
//! each delta, and the terminal or failed response. `items.rs` opens, fills and closes the output
//! items and emits their events; the tests are in `tests.rs`.

mod items;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::response::{Envelope, envelope, status_for, usage_from_chat};
use super::{Ids, TranslateError};
use items::{Item, item_value};

/// One Responses SSE event: its name (also its `type`) and its JSON payload.
pub type Event = (&'static str, Value);

/// Formats events as SSE text: `event: NAME\ndata: JSON\n\n` each.
pub fn to_sse(events: &[Event]) -> String {
    let mut out = String::new();
    for (name, data) in events {
        out.push_str("event: ");
        out.push_str(name);
        out.push_str("\ndata: ");
        out.push_str(&data.to_string());
        out.push_str("\n\n");
    }
    out
}
/// Turns one canonical stream into Responses events. Feed every chunk to [`Encoder::push`], then
/// call [`Encoder::finish`] at the end of the upstream stream (`[DONE]`), or [`Encoder::fail`] when
/// the upstream broke (timeout, reset, truncated).
pub struct Encoder {
    request: Value,
    response_id: Option<String>,
    ids: Ids,
    created_at: Value,
    model: Option<Value>,
    seq: u64,
    started: bool,
    ended: bool,
    items: Vec<Item>,
    open_reasoning: Option<usize>,
    open_message: Option<usize>,
    /// Chunk tool-call `index` -> `output_index` of its item.
    calls: BTreeMap<u64, usize>,
    messages_made: usize,
    reasoning_made: usize,
    finish_reason: Option<String>,
    usage: Option<Value>,
    final_response: Option<Value>,
}

impl Encoder {
    /// `request` is the client's Responses request (echoed in every response object);
    /// `response_id` overrides the derived `resp_...` id.
    pub fn new(request: &Value, response_id: Option<&str>) -> Encoder {
        Encoder {
            request: request.clone(),
            response_id: response_id.map(str::to_string),
            ids: Ids::new(response_id, ""),
            created_at: json!(0),
            model: None,
            seq: 0,
            started: false,
            ended: false,
            items: Vec::new(),
            open_reasoning: None,
            open_message: None,
            calls: BTreeMap::new(),
            messages_made: 0,
            reasoning_made: 0,
            finish_reason: None,
            usage: None,
            final_response: None,
        }
    }

    /// The response object of the terminal event, once [`Encoder::finish`] or
    /// [`Encoder::fail`] sent it (for storing the conversation).
    pub fn final_response(&self) -> Option<&Value> {
        self.final_response.as_ref()
    }

    /// Events for one canonical chunk. A chunk carrying a top-level `error` ends the stream with
    /// `error` and `response.failed`.
    pub fn push(&mut self, chunk: &Value) -> Result<Vec<Event>, TranslateError> {
        let mut ev = Vec::new();
        if self.ended {
            return Ok(ev);
        }
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the provider reported an error mid-stream");
            let code = error
                .get("code")
                .and_then(Value::as_str)
                .or_else(|| error.get("type").and_then(Value::as_str))
                .unwrap_or("server_error");
            return Ok(self.fail(code, message));
        }
        if !chunk.is_object() {
            return Err(TranslateError::Malformed(
                "a stream chunk is not a JSON object".into(),
            ));
        }
        self.start(chunk, &mut ev);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Responses has no `n`; only the first choice is ever asked for.
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.get("delta") {
                self.delta(delta, &mut ev)?;
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
                self.close_all(&mut ev);
            }
        }
        Ok(ev)
    }

    /// The terminal `response.completed` / `response.incomplete`. Errors if the upstream stream
    /// ended before its first chunk or without a finish reason: then send [`Encoder::fail`].
    pub fn finish(&mut self) -> Result<Vec<Event>, TranslateError> {
        if self.ended {
            return Ok(Vec::new());
        }
        if !self.started {
            return Err(TranslateError::Malformed(
                "the stream ended before its first chunk".into(),
            ));
        }
        let Some(reason) = self.finish_reason.clone() else {
            return Err(TranslateError::Malformed(
                "the stream ended without a finish_reason".into(),
            ));
        };
        let mut ev = Vec::new();
        self.close_all(&mut ev);
        let (status, incomplete_details) = status_for(Some(&reason));
        let usage = self.usage.as_ref().map_or(Value::Null, usage_from_chat);
        let response = self.snapshot(status, incomplete_details, usage, Value::Null);
        let name = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        emit(&mut self.seq, &mut ev, name, json!({"response": response}));
        self.final_response = Some(response);
        self.ended = true;
        Ok(ev)
    }

    /// Ends the stream as failed: an `error` event, then (if `response.created` went out)
    /// `response.failed` with what was produced so far. Idempotent.
    pub fn fail(&mut self, code: &str, message: &str) -> Vec<Event> {
        let mut ev = Vec::new();
        if self.ended {
            return ev;
        }
        self.ended = true;
        emit(
            &mut self.seq,
            &mut ev,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        if self.started {
            let usage = self.usage.as_ref().map_or(Value::Null, usage_from_chat);
            let error = json!({"code": code, "message": message});
            let response = self.snapshot("failed", Value::Null, usage, error);
            emit(
                &mut self.seq,
                &mut ev,
                "response.failed",
                json!({"response": response}),
            );
            self.final_response = Some(response);
        }
        ev
    }

    fn start(&mut self, chunk: &Value, ev: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        let chunk_id = chunk.get("id").and_then(Value::as_str).unwrap_or("");
        self.ids = Ids::new(self.response_id.as_deref(), chunk_id);
        self.created_at = chunk.get("created").cloned().unwrap_or(json!(0));
        self.model = chunk.get("model").cloned();
        let response = self.snapshot("in_progress", Value::Null, Value::Null, Value::Null);
        emit(
            &mut self.seq,
            ev,
            "response.created",
            json!({"response": response}),
        );
        emit(
            &mut self.seq,
            ev,
            "response.in_progress",
            json!({"response": response}),
        );
    }

    fn delta(&mut self, delta: &Value, ev: &mut Vec<Event>) -> Result<(), TranslateError> {
        if let Some(text) = nonempty_str(delta.get("reasoning_content")) {
            self.reasoning_text(text, ev);
        }
        if let Some(blocks) = delta
            .get("x_thinking_blocks")
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty())
        {
            self.thinking_blocks(blocks, ev);
        }
        if let Some(text) = nonempty_str(delta.get("content")) {
            self.message_text(false, text, ev);
        }
        if let Some(text) = nonempty_str(delta.get("refusal")) {
            self.message_text(true, text, ev);
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                self.tool_call(position, call, ev)?;
            }
        }
        Ok(())
    }

    fn snapshot(
        &self,
        status: &'static str,
        incomplete_details: Value,
        usage: Value,
        error: Value,
    ) -> Value {
        let output = self.items.iter().map(|i| item_value(i, status)).collect();
        envelope(
            Envelope {
                ids: &self.ids,
                created_at: self.created_at.clone(),
                model: self.model.clone(),
                status,
                incomplete_details,
                output,
                usage,
                error,
            },
            &self.request,
        )
    }
}

fn nonempty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn emit(seq: &mut u64, ev: &mut Vec<Event>, name: &'static str, data: Value) {
    let mut payload = match data {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    payload.insert("type".into(), name.into());
    payload.insert("sequence_number".into(), (*seq).into());
    *seq += 1;
    ev.push((name, Value::Object(payload)));
}
