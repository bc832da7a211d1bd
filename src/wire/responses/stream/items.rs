//! The output items of one streamed response (reasoning, message, function call): how the
//! [`Encoder`] opens them, appends deltas to them and closes them, with the events each step
//! emits, and how an item looks inside a response snapshot. Called only from `mod.rs`; an item
//! is closed at most once (`done`), so its `*.done` events go out exactly once.

use serde_json::{Value, json};

use super::{Encoder, Event, emit, nonempty_str};
use crate::wire::responses::response::{
    function_call_item, item_status, message_item, output_text_part, reasoning_item, refusal_part,
    status_for, summary_part,
};
use crate::wire::responses::{TranslateError, call_item_id};

#[derive(Debug)]
pub(super) enum Item {
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
pub(super) struct Part {
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

impl Encoder {
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

    pub(super) fn reasoning_text(&mut self, text: &str, ev: &mut Vec<Event>) {
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
    pub(super) fn thinking_blocks(&mut self, blocks: &[Value], ev: &mut Vec<Event>) {
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

    pub(super) fn message_text(&mut self, refusal: bool, text: &str, ev: &mut Vec<Event>) {
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

    pub(super) fn tool_call(
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

    pub(super) fn close_all(&mut self, ev: &mut Vec<Event>) {
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
pub(super) fn item_value(item: &Item, status: &str) -> Value {
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
