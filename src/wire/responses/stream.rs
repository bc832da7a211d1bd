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

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::response::{
    Envelope, envelope, function_call_item, item_status, message_item, output_text_part,
    reasoning_item, refusal_part, status_for, summary_part, usage_from_chat,
};
use super::{Ids, TranslateError, call_item_id};

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

#[derive(Debug)]
enum Item {
    Reasoning {
        id: String,
        text: String,
        blocks: Vec<Value>,
        /// The summary part was announced (`reasoning_summary_part.added`).
        part_open: bool,
        done: bool,
    },
    Message {
        id: String,
        parts: Vec<Part>,
        done: bool,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        done: bool,
    },
}

#[derive(Debug)]
struct Part {
    refusal: bool,
    text: String,
    done: bool,
}

impl Part {
    fn value(&self) -> Value {
        if self.refusal {
            refusal_part(&self.text)
        } else {
            output_text_part(&self.text)
        }
    }
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

    /// Status of a message item closed now: known once the finish reason is.
    fn closing_status(&self) -> &'static str {
        let (status, _) = status_for(self.finish_reason.as_deref());
        item_status(status)
    }

    fn open_reasoning_item(&mut self, ev: &mut Vec<Event>) -> usize {
        if let Some(index) = self.open_reasoning {
            return index;
        }
        self.close_message(ev);
        let id = self.ids.reasoning(self.reasoning_made);
        self.reasoning_made += 1;
        let index = self.items.len();
        emit(
            &mut self.seq,
            ev,
            "response.output_item.added",
            json!({"output_index": index, "item": reasoning_item(&id, "", &[])}),
        );
        self.items.push(Item::Reasoning {
            id,
            text: String::new(),
            blocks: Vec::new(),
            part_open: false,
            done: false,
        });
        self.open_reasoning = Some(index);
        index
    }

    fn open_message_item(&mut self, ev: &mut Vec<Event>) -> usize {
        if let Some(index) = self.open_message {
            return index;
        }
        self.close_reasoning(ev);
        let id = self.ids.message(self.messages_made);
        self.messages_made += 1;
        let index = self.items.len();
        emit(
            &mut self.seq,
            ev,
            "response.output_item.added",
            json!({"output_index": index, "item": message_item(&id, Vec::new(), "in_progress")}),
        );
        self.items.push(Item::Message {
            id,
            parts: Vec::new(),
            done: false,
        });
        self.open_message = Some(index);
        index
    }

    fn reasoning_text(&mut self, text: &str, ev: &mut Vec<Event>) {
        let index = self.open_reasoning_item(ev);
        let Some(Item::Reasoning {
            id,
            text: buffer,
            part_open,
            ..
        }) = self.items.get_mut(index)
        else {
            return;
        };
        if !*part_open {
            *part_open = true;
            emit(
                &mut self.seq,
                ev,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "part": summary_part("")}),
            );
        }
        buffer.push_str(text);
        emit(
            &mut self.seq,
            ev,
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text}),
        );
    }

    /// Thinking blocks join the open reasoning item, or the last one (a signature can arrive just
    /// after its thinking text), or a new one (redacted thinking alone).
    fn thinking_blocks(&mut self, blocks: &[Value], ev: &mut Vec<Event>) {
        let last = self
            .items
            .iter()
            .rposition(|i| matches!(i, Item::Reasoning { .. }));
        let index = match self.open_reasoning.or(last) {
            Some(index) => index,
            None => self.open_reasoning_item(ev),
        };
        if let Some(Item::Reasoning { blocks: mine, .. }) = self.items.get_mut(index) {
            merge_blocks(mine, blocks);
        }
    }

    fn message_text(&mut self, refusal: bool, text: &str, ev: &mut Vec<Event>) {
        let index = self.open_message_item(ev);
        let Some(Item::Message { id, parts, .. }) = self.items.get_mut(index) else {
            return;
        };
        let new_part = parts.last().is_none_or(|p| p.done || p.refusal != refusal);
        if new_part {
            let content_index = parts.len();
            if let Some(last) = parts.last_mut() {
                close_part(&mut self.seq, ev, id, index, content_index - 1, last);
            }
            let part = Part {
                refusal,
                text: String::new(),
                done: false,
            };
            emit(
                &mut self.seq,
                ev,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": content_index, "part": part.value()}),
            );
            parts.push(part);
        }
        let content_index = parts.len() - 1;
        if let Some(part) = parts.last_mut() {
            part.text.push_str(text);
        }
        if refusal {
            emit(
                &mut self.seq,
                ev,
                "response.refusal.delta",
                json!({"item_id": id, "output_index": index, "content_index": content_index, "delta": text}),
            );
        } else {
            emit(
                &mut self.seq,
                ev,
                "response.output_text.delta",
                json!({"item_id": id, "output_index": index, "content_index": content_index, "delta": text, "logprobs": []}),
            );
        }
    }

    fn tool_call(
        &mut self,
        position: usize,
        call: &Value,
        ev: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let key = call
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let name_delta = call.pointer("/function/name").and_then(Value::as_str);
        let index = match self.calls.get(&key) {
            Some(&index) => index,
            None => {
                self.close_reasoning(ev);
                self.close_message(ev);
                let call_id = match call.get("id").and_then(Value::as_str) {
                    Some(id) => id.to_string(),
                    None => self.ids.call(key),
                };
                let name = name_delta.unwrap_or("").to_string();
                let index = self.items.len();
                emit(
                    &mut self.seq,
                    ev,
                    "response.output_item.added",
                    json!({"output_index": index, "item": function_call_item(&call_id, &name, "", "in_progress")}),
                );
                self.items.push(Item::Call {
                    id: call_item_id(&call_id),
                    call_id,
                    name,
                    arguments: String::new(),
                    done: false,
                });
                self.calls.insert(key, index);
                return self.call_arguments(index, key, call, ev);
            }
        };
        if let (Some(Item::Call { name, .. }), Some(late)) = (self.items.get_mut(index), name_delta)
            && name.is_empty()
        {
            *name = late.to_string();
        }
        self.call_arguments(index, key, call, ev)
    }

    fn call_arguments(
        &mut self,
        index: usize,
        key: u64,
        call: &Value,
        ev: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let Some(delta) = nonempty_str(call.pointer("/function/arguments")) else {
            return Ok(());
        };
        let Some(Item::Call {
            id,
            arguments,
            done,
            ..
        }) = self.items.get_mut(index)
        else {
            return Ok(());
        };
        if *done {
            return Err(TranslateError::Malformed(format!(
                "arguments for tool call {key} arrived after its finish_reason"
            )));
        }
        arguments.push_str(delta);
        emit(
            &mut self.seq,
            ev,
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": index, "delta": delta}),
        );
        Ok(())
    }

    fn close_reasoning(&mut self, ev: &mut Vec<Event>) {
        if let Some(index) = self.open_reasoning.take() {
            self.close_item(index, ev);
        }
    }

    fn close_message(&mut self, ev: &mut Vec<Event>) {
        if let Some(index) = self.open_message.take() {
            self.close_item(index, ev);
        }
    }

    fn close_all(&mut self, ev: &mut Vec<Event>) {
        self.open_reasoning = None;
        self.open_message = None;
        for index in 0..self.items.len() {
            self.close_item(index, ev);
        }
    }

    fn close_item(&mut self, index: usize, ev: &mut Vec<Event>) {
        let status = self.closing_status();
        let seq = &mut self.seq;
        let Some(item) = self.items.get_mut(index) else {
            return;
        };
        match item {
            Item::Reasoning {
                id,
                text,
                blocks,
                part_open,
                done,
            } => {
                if *done {
                    return;
                }
                *done = true;
                if *part_open {
                    emit(
                        seq,
                        ev,
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                    );
                    emit(
                        seq,
                        ev,
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "part": summary_part(text)}),
                    );
                }
                emit(
                    seq,
                    ev,
                    "response.output_item.done",
                    json!({"output_index": index, "item": reasoning_item(id, text, blocks)}),
                );
            }
            Item::Message { id, parts, done } => {
                if *done {
                    return;
                }
                *done = true;
                let last = parts.len().saturating_sub(1);
                if let Some(part) = parts.last_mut() {
                    close_part(seq, ev, id, index, last, part);
                }
                let values = parts.iter().map(Part::value).collect();
                emit(
                    seq,
                    ev,
                    "response.output_item.done",
                    json!({"output_index": index, "item": message_item(id, values, status)}),
                );
            }
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                done,
            } => {
                if *done {
                    return;
                }
                *done = true;
                emit(
                    seq,
                    ev,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": arguments}),
                );
                emit(
                    seq,
                    ev,
                    "response.output_item.done",
                    json!({"output_index": index, "item": function_call_item(call_id, name, arguments, "completed")}),
                );
            }
        }
    }
}

/// An item as it appears in a response object whose status is `status`.
fn item_value(item: &Item, status: &str) -> Value {
    match item {
        Item::Reasoning {
            id, text, blocks, ..
        } => reasoning_item(id, text, blocks),
        Item::Message { id, parts, done } => {
            let item_status = match (status, done) {
                ("incomplete", _) | ("failed", false) => "incomplete",
                (_, false) => "in_progress",
                _ => "completed",
            };
            message_item(id, parts.iter().map(Part::value).collect(), item_status)
        }
        Item::Call {
            call_id,
            name,
            arguments,
            done,
            ..
        } => {
            let item_status = match (status, done) {
                (_, true) => "completed",
                ("failed", false) => "incomplete",
                _ => "in_progress",
            };
            function_call_item(call_id, name, arguments, item_status)
        }
    }
}

fn close_part(
    seq: &mut u64,
    ev: &mut Vec<Event>,
    item_id: &str,
    output_index: usize,
    content_index: usize,
    part: &mut Part,
) {
    if part.done {
        return;
    }
    part.done = true;
    if part.refusal {
        emit(
            seq,
            ev,
            "response.refusal.done",
            json!({"item_id": item_id, "output_index": output_index, "content_index": content_index, "refusal": part.text}),
        );
    } else {
        emit(
            seq,
            ev,
            "response.output_text.done",
            json!({"item_id": item_id, "output_index": output_index, "content_index": content_index, "text": part.text, "logprobs": []}),
        );
    }
    emit(
        seq,
        ev,
        "response.content_part.done",
        json!({"item_id": item_id, "output_index": output_index, "content_index": content_index, "part": part.value()}),
    );
}

/// Thinking blocks from deltas: a `thinking` block continues the previous one while that one has
/// no signature yet (a decoder may send text and signature in pieces); anything else is appended.
fn merge_blocks(mine: &mut Vec<Value>, incoming: &[Value]) {
    for block in incoming {
        let is_thinking = block.get("type").and_then(Value::as_str) == Some("thinking");
        if is_thinking
            && let Some(Value::Object(last)) = mine.last_mut()
            && last.get("type").and_then(Value::as_str) == Some("thinking")
            && nonempty_str(last.get("signature")).is_none()
        {
            if let Some(more) = block.get("thinking").and_then(Value::as_str) {
                let text = last
                    .get("thinking")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                last.insert("thinking".into(), Value::String(text + more));
            }
            if let Some(signature) = block.get("signature").filter(|s| !s.is_null()) {
                last.insert("signature".into(), signature.clone());
            }
            continue;
        }
        mine.push(block.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::responses::response::from_chat;
    use crate::wire::responses::testing::{assert_json_eq, parse_sse};
    use crate::wire::sse::SseSplitter;
    use proptest::prelude::*;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// Canonical chunks of an SSE fixture.
    fn chunks(sse: &str) -> Vec<Value> {
        parse_sse(sse).into_iter().map(|(_, data)| data).collect()
    }

    fn encode(request: &Value, chunks: &[Value]) -> Vec<Event> {
        let mut encoder = Encoder::new(request, None);
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(encoder.push(chunk).unwrap());
        }
        events.extend(encoder.finish().unwrap());
        events
    }

    fn assert_events_eq(got: &[Event], want: &[(String, Value)]) {
        let got: Vec<Value> = got
            .iter()
            .map(|(n, d)| json!({"event": n, "data": d}))
            .collect();
        let want: Vec<Value> = want
            .iter()
            .map(|(n, d)| json!({"event": n, "data": d}))
            .collect();
        assert_json_eq(&Value::Array(got), &Value::Array(want));
    }

    /// The `response` of the last event.
    fn terminal(events: &[Event]) -> Value {
        events.last().map(|(_, d)| d["response"].clone()).unwrap()
    }

    #[test]
    fn golden_text_stream() {
        let request = fixture(include_str!(
            "../../../tests/fixtures/responses/request_text.json"
        ));
        let input = chunks(include_str!(
            "../../../tests/fixtures/responses/chunks_text.sse"
        ));
        let want = parse_sse(include_str!(
            "../../../tests/fixtures/responses/events_text.sse"
        ));
        let events = encode(&request, &input);
        assert_events_eq(&events, &want);
        // Formatting and re-parsing loses nothing.
        assert_events_eq(&events, &parse_sse(&to_sse(&events)));
    }

    #[test]
    fn golden_reasoning_and_interleaved_parallel_calls() {
        let request = fixture(include_str!(
            "../../../tests/fixtures/responses/request_items.json"
        ));
        let input = chunks(include_str!(
            "../../../tests/fixtures/responses/chunks_tools.sse"
        ));
        let want = parse_sse(include_str!(
            "../../../tests/fixtures/responses/events_tools.sse"
        ));
        assert_events_eq(&encode(&request, &input), &want);
    }

    #[test]
    fn completed_response_equals_the_non_streamed_answer() {
        for (request, stream, completion) in [
            (
                include_str!("../../../tests/fixtures/responses/request_text.json"),
                include_str!("../../../tests/fixtures/responses/chunks_text.sse"),
                include_str!("../../../tests/fixtures/responses/completion_text.json"),
            ),
            (
                include_str!("../../../tests/fixtures/responses/request_items.json"),
                include_str!("../../../tests/fixtures/responses/chunks_tools.sse"),
                include_str!("../../../tests/fixtures/responses/completion_tools.json"),
            ),
        ] {
            let request = fixture(request);
            let events = encode(&request, &chunks(stream));
            let want = from_chat(&fixture(completion), &request, None).unwrap();
            assert_json_eq(&terminal(&events), &want);
        }
    }

    #[test]
    fn length_finish_ends_with_response_incomplete() {
        let request = json!({"model": "m", "max_output_tokens": 3});
        let input = vec![
            json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "one two"}, "finish_reason": null}]}),
            json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
            json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}}),
        ];
        let events = encode(&request, &input);
        let (name, data) = events.last().unwrap();
        assert_eq!(*name, "response.incomplete");
        assert_eq!(
            data["response"]["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(data["response"]["output"][0]["status"], "incomplete");
        assert_eq!(data["response"]["usage"]["output_tokens"], 3);
        let completion = json!({"id": "chatcmpl-l", "created": 5, "model": "m", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "one two"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}});
        assert_json_eq(
            &data["response"],
            &from_chat(&completion, &request, None).unwrap(),
        );
    }

    #[test]
    fn provider_error_mid_stream_fails_the_response() {
        let mut encoder = Encoder::new(&json!({"model": "m"}), None);
        let mut events = encoder
            .push(&json!({"id": "chatcmpl-e", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "par"}}]}))
            .unwrap();
        events.extend(
            encoder
                .push(&json!({"error": {"message": "overloaded", "type": "overloaded_error"}}))
                .unwrap(),
        );
        let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "error",
                "response.failed"
            ]
        );
        let (_, error) = &events[5];
        assert_eq!(error["code"], "overloaded_error");
        assert_eq!(error["message"], "overloaded");
        let failed = &events[6].1["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(
            failed["error"],
            json!({"code": "overloaded_error", "message": "overloaded"})
        );
        assert_eq!(failed["output"][0]["status"], "incomplete");
        assert_eq!(failed["output"][0]["content"][0]["text"], "par");
        // Nothing after the failure, and no clean finish.
        assert!(encoder.finish().unwrap().is_empty());
        assert!(encoder.push(&json!({"choices": []})).unwrap().is_empty());
        assert_eq!(
            encoder.final_response().map(|r| r["status"].clone()),
            Some(json!("failed"))
        );
    }

    #[test]
    fn truncated_stream_is_an_error_not_a_completion() {
        let mut encoder = Encoder::new(&json!({"model": "m"}), None);
        assert!(matches!(
            encoder.finish(),
            Err(TranslateError::Malformed(_))
        ));
        let failed = encoder.fail("upstream_error", "no answer");
        assert_eq!(
            failed.len(),
            1,
            "no response.created was sent, so only the error event"
        );
        assert_eq!(failed[0].0, "error");

        let mut encoder = Encoder::new(&json!({"model": "m"}), None);
        encoder
            .push(&json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "hal"}}]}))
            .unwrap();
        assert!(matches!(
            encoder.finish(),
            Err(TranslateError::Malformed(_))
        ));
        let failed = encoder.fail("stream_truncated", "the provider stream ended early");
        assert_eq!(
            failed.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["error", "response.failed"]
        );
        assert!(encoder.fail("again", "x").is_empty());
    }

    #[test]
    fn sequence_numbers_count_from_zero_without_gaps() {
        let request = fixture(include_str!(
            "../../../tests/fixtures/responses/request_items.json"
        ));
        let events = encode(
            &request,
            &chunks(include_str!(
                "../../../tests/fixtures/responses/chunks_tools.sse"
            )),
        );
        for (i, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["sequence_number"], i as u64);
            assert_eq!(data["type"], *name);
        }
    }

    #[test]
    fn signature_pieces_merge_into_one_thinking_block() {
        let mut encoder = Encoder::new(&json!({}), None);
        for delta in [
            json!({"reasoning_content": "Let me think", "x_thinking_blocks": [{"type": "thinking", "thinking": "Let me think"}]}),
            json!({"reasoning_content": " more.", "x_thinking_blocks": [{"type": "thinking", "thinking": " more."}]}),
            json!({"x_thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "EqQB"}]}),
            json!({"x_thinking_blocks": [{"type": "redacted_thinking", "data": "cipher"}]}),
            json!({"content": "Answer."}),
        ] {
            encoder
                .push(&json!({"id": "chatcmpl-t", "choices": [{"index": 0, "delta": delta}]}))
                .unwrap();
        }
        encoder.push(&json!({"id": "chatcmpl-t", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})).unwrap();
        let events = encoder.finish().unwrap();
        let response = terminal(&events);
        let messages = crate::wire::responses::output_to_chat_messages(&response);
        assert_json_eq(
            &messages[0]["x_thinking_blocks"],
            &json!([{"type": "thinking", "thinking": "Let me think more.", "signature": "EqQB"},
                    {"type": "redacted_thinking", "data": "cipher"}]),
        );
        assert_eq!(messages[0]["reasoning_content"], "Let me think more.");
    }

    #[test]
    fn arguments_after_the_finish_reason_are_malformed() {
        let mut encoder = Encoder::new(&json!({}), None);
        let call = |args: &str, finish: Value| {
            json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1",
                "function": {"name": "f", "arguments": args}}]}, "finish_reason": finish}]})
        };
        encoder.push(&call("{", json!("tool_calls"))).unwrap();
        assert!(matches!(
            encoder.push(&call("}", Value::Null)),
            Err(TranslateError::Malformed(_))
        ));
    }

    #[test]
    fn the_canonical_stream_split_at_any_byte_gives_the_same_events() {
        let request = fixture(include_str!(
            "../../../tests/fixtures/responses/request_items.json"
        ));
        let sse = include_str!("../../../tests/fixtures/responses/chunks_tools.sse");
        let whole = encode(&request, &chunks(sse));
        proptest!(ProptestConfig::with_cases(64), |(cuts in proptest::collection::vec(0usize..sse.len(), 0..40))| {
            let mut cuts = cuts;
            cuts.sort_unstable();
            cuts.dedup();
            let bytes = sse.as_bytes();
            let mut splitter = SseSplitter::default();
            let mut encoder = Encoder::new(&request, None);
            let mut events = Vec::new();
            let mut start = 0;
            for end in cuts.into_iter().chain([bytes.len()]) {
                for raw in splitter.push(&bytes[start..end]) {
                    let Some(data) = raw.data() else { continue };
                    if data == "[DONE]" { continue; }
                    let chunk: Value = serde_json::from_str(&data).unwrap();
                    events.extend(encoder.push(&chunk).unwrap());
                }
                start = end;
            }
            events.extend(encoder.finish().unwrap());
            prop_assert_eq!(events, whole.clone());
        });
    }

    /// One generated stream: a text split into pieces and parallel calls whose argument pieces
    /// are interleaved in a random order, each call's pieces keeping their own order.
    #[derive(Clone, Debug)]
    struct Script {
        text_pieces: Vec<String>,
        calls: Vec<(String, Vec<String>)>,
        /// Which queue gives the next delta (modulo the non-empty ones).
        picks: Vec<usize>,
        /// How many deltas go in each chunk.
        group: usize,
    }

    fn script() -> impl Strategy<Value = Script> {
        let piece = "[a-z {}\":,0-9é]{1,6}";
        let text = proptest::collection::vec(piece, 0..6);
        let call = (
            "[a-z_]{1,8}",
            proptest::collection::btree_map("[a-z]{1,4}", any::<i32>(), 0..4),
            proptest::collection::vec(1usize..8, 1..6),
        )
            .prop_map(|(name, args, sizes)| {
                let json = serde_json::to_string(&args).unwrap();
                let chars: Vec<char> = json.chars().collect();
                let mut pieces = Vec::new();
                let mut at = 0;
                for size in sizes.iter().cycle() {
                    if at >= chars.len() {
                        break;
                    }
                    let end = (at + size).min(chars.len());
                    pieces.push(chars[at..end].iter().collect());
                    at = end;
                }
                (name, pieces)
            });
        (
            text,
            proptest::collection::vec(call, 0..4),
            proptest::collection::vec(any::<usize>(), 64),
            1usize..4,
        )
            .prop_map(|(text_pieces, calls, picks, group)| Script {
                text_pieces,
                calls,
                picks,
                group,
            })
    }

    /// The canonical chunks of a script, its tool calls (id, name, full arguments), and whether
    /// all the text comes before the first call.
    fn render(script: &Script) -> (Vec<Value>, Vec<(String, String, String)>, bool) {
        #[derive(Clone)]
        enum Delta {
            Text(String),
            Args {
                index: usize,
                first: bool,
                piece: String,
            },
        }
        let mut queues: Vec<Vec<Delta>> = Vec::new();
        queues.push(
            script
                .text_pieces
                .iter()
                .cloned()
                .map(Delta::Text)
                .rev()
                .collect(),
        );
        for (index, (_, pieces)) in script.calls.iter().enumerate() {
            let mut queue: Vec<Delta> = pieces
                .iter()
                .enumerate()
                .map(|(i, piece)| Delta::Args {
                    index,
                    first: i == 0,
                    piece: piece.clone(),
                })
                .collect();
            queue.reverse();
            queues.push(queue);
        }
        let mut order = Vec::new();
        let mut picks = script.picks.iter().cycle();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len())
                .filter(|&i| !queues[i].is_empty())
                .collect();
            let pick = picks.next().copied().unwrap_or(0) % live.len();
            order.extend(queues[live[pick]].pop());
        }
        let first_call = order.iter().position(|d| matches!(d, Delta::Args { .. }));
        let last_text = order.iter().rposition(|d| matches!(d, Delta::Text(_)));
        let text_first = match (first_call, last_text) {
            (Some(call), Some(text)) => text < call,
            _ => true,
        };
        let base = json!({"id": "chatcmpl-prop", "object": "chat.completion.chunk", "created": 7, "model": "m"});
        let mut chunks = Vec::new();
        for group in order.chunks(script.group) {
            let mut content = String::new();
            let mut tool_calls = Vec::new();
            for delta in group {
                match delta {
                    Delta::Text(t) => content.push_str(t),
                    Delta::Args {
                        index,
                        first,
                        piece,
                    } => {
                        let mut call = json!({"index": index, "function": {"arguments": piece}});
                        if *first {
                            call["id"] = json!(format!("call_{index}"));
                            call["type"] = json!("function");
                            call["function"]["name"] = json!(script.calls[*index].0);
                        }
                        tool_calls.push(call);
                    }
                }
            }
            let mut delta = json!({});
            if !content.is_empty() {
                delta["content"] = json!(content);
            }
            if !tool_calls.is_empty() {
                delta["tool_calls"] = json!(tool_calls);
            }
            let mut chunk = base.clone();
            chunk["choices"] = json!([{"index": 0, "delta": delta, "finish_reason": null}]);
            chunks.push(chunk);
        }
        let finish = if script.calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        let mut last = base.clone();
        last["choices"] = json!([{"index": 0, "delta": {}, "finish_reason": finish}]);
        chunks.push(last);
        let mut usage = base;
        usage["choices"] = json!([]);
        usage["usage"] = json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30});
        chunks.push(usage);
        let calls = script
            .calls
            .iter()
            .enumerate()
            .map(|(i, (name, pieces))| (format!("call_{i}"), name.clone(), pieces.concat()))
            .collect();
        (chunks, calls, text_first)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parallel_call_arguments_concatenate_to_the_done_and_completed_values(script in script()) {
            let (chunks, calls, text_first) = render(&script);
            let events = encode(&json!({"model": "m"}), &chunks);

            // Sequence numbers, and every delta lands on an item announced before it.
            let mut announced: BTreeMap<u64, String> = BTreeMap::new();
            let mut deltas: BTreeMap<String, String> = BTreeMap::new();
            let mut done: BTreeMap<String, String> = BTreeMap::new();
            let mut text = String::new();
            for (i, (name, data)) in events.iter().enumerate() {
                prop_assert_eq!(data["sequence_number"].as_u64(), Some(i as u64));
                match *name {
                    "response.output_item.added" => {
                        let index = data["output_index"].as_u64().unwrap();
                        prop_assert_eq!(index, announced.len() as u64);
                        announced.insert(index, data["item"]["id"].as_str().unwrap().to_string());
                    }
                    "response.function_call_arguments.delta" => {
                        let id = data["item_id"].as_str().unwrap().to_string();
                        let index = data["output_index"].as_u64().unwrap();
                        prop_assert_eq!(announced.get(&index), Some(&id));
                        prop_assert!(!done.contains_key(&id), "delta after done");
                        deltas.entry(id).or_default().push_str(data["delta"].as_str().unwrap());
                    }
                    "response.function_call_arguments.done" => {
                        let id = data["item_id"].as_str().unwrap().to_string();
                        done.insert(id, data["arguments"].as_str().unwrap().to_string());
                    }
                    "response.output_text.delta" => text.push_str(data["delta"].as_str().unwrap()),
                    _ => {}
                }
            }
            prop_assert_eq!(events.last().map(|(n, _)| *n), Some("response.completed"));
            let response = terminal(&events);
            let items: Vec<&Value> = response["output"].as_array().unwrap().iter()
                .filter(|i| i["type"] == "function_call").collect();
            prop_assert_eq!(items.len(), calls.len());
            for (call_id, name, arguments) in &calls {
                let item_id = call_item_id(call_id);
                prop_assert_eq!(done.get(&item_id), Some(arguments));
                prop_assert_eq!(deltas.get(&item_id).map(String::as_str).unwrap_or(""), arguments.as_str());
                let item = items.iter().find(|i| i["call_id"] == json!(call_id)).unwrap();
                prop_assert_eq!(&item["arguments"], &json!(arguments));
                prop_assert_eq!(&item["name"], &json!(name));
                prop_assert_eq!(&item["id"], &json!(item_id));
            }
            prop_assert_eq!(&text, &script.text_pieces.concat());
            let completed_text: String = response["output"].as_array().unwrap().iter()
                .filter(|i| i["type"] == "message")
                .flat_map(|i| i["content"].as_array().unwrap().iter())
                .filter_map(|p| p["text"].as_str())
                .collect();
            prop_assert_eq!(completed_text, script.text_pieces.concat());

            // When the text comes first, the stream gives exactly the non-streamed answer.
            if text_first {
                let mut message = json!({"role": "assistant", "content": null});
                if !script.text_pieces.is_empty() {
                    message["content"] = json!(script.text_pieces.concat());
                }
                if !calls.is_empty() {
                    let mut ordered: Vec<&(String, String, String)> = calls.iter().collect();
                    ordered.sort_by_key(|(id, _, _)| announced.values().position(|v| *v == call_item_id(id)));
                    message["tool_calls"] = json!(ordered.iter().map(|(id, name, args)| json!({
                        "id": id, "type": "function", "function": {"name": name, "arguments": args}
                    })).collect::<Vec<_>>());
                }
                let completion = json!({"id": "chatcmpl-prop", "created": 7, "model": "m", "choices": [{
                    "index": 0, "message": message,
                    "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" }}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}});
                let want = from_chat(&completion, &json!({"model": "m"}), None).unwrap();
                prop_assert_eq!(&response, &want);
            }
        }
    }
}
