//! An answer a module gives in place of the upstream's, in the canonical form (OpenAI chat). It
//! goes through the same egress as an upstream answer, so an OpenAI Chat, Completions, Responses
//! or Messages client gets it in its own format, streamed or not as it asked: a complete answer is
//! split into chunks for a streaming client, and chunks are assembled for one that is not.

use serde_json::{Map, Value, json};

pub enum CanonicalAnswer {
    /// A complete `chat.completion` object (or, on `/v1/embeddings`, the embeddings list).
    Complete(Value),
    /// `chat.completion.chunk` objects in order: content and tool-call deltas, finish, usage.
    Stream(Vec<Value>),
}

impl CanonicalAnswer {
    /// The answer as one `chat.completion`.
    pub fn into_complete(self) -> Value {
        match self {
            CanonicalAnswer::Complete(value) => value,
            CanonicalAnswer::Stream(chunks) => assemble(&chunks),
        }
    }

    /// The answer as `chat.completion.chunk`s.
    pub fn into_chunks(self) -> Vec<Value> {
        match self {
            CanonicalAnswer::Complete(value) => split(&value),
            CanonicalAnswer::Stream(chunks) => chunks,
        }
    }
}

/// A `chat.completion` or `chat.completion.chunk` in the legacy Completions shape
/// (`text_completion`, each choice's text in `text`), for a `/v1/completions` client.
pub fn to_text_completion(chat: &Value) -> Value {
    let choices: Vec<Value> = chat["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|choice| {
            let text = choice["message"]["content"]
                .as_str()
                .or_else(|| choice["delta"]["content"].as_str())
                .unwrap_or("");
            json!({"index": choice["index"].clone(), "text": text, "logprobs": null,
                "finish_reason": choice["finish_reason"].clone()})
        })
        .collect();
    let mut answer = json!({
        "id": chat["id"].clone(),
        "object": "text_completion",
        "created": chat["created"].clone(),
        "model": chat["model"].clone(),
        "choices": choices,
    });
    if chat.get("usage").is_some_and(|u| !u.is_null()) {
        answer["usage"] = chat["usage"].clone();
    }
    answer
}

/// Joins chunks into the `chat.completion` they stream: content and tool-call arguments
/// concatenated in order, the last finish reason, the usage if any chunk carried it.
pub fn assemble(chunks: &[Value]) -> Value {
    let first = chunks.first().cloned().unwrap_or(Value::Null);
    let mut choices: Vec<Value> = Vec::new();
    let mut usage = Value::Null;
    for chunk in chunks {
        if chunk.get("usage").is_some_and(|u| !u.is_null()) {
            usage = chunk["usage"].clone();
        }
        for delta_choice in chunk["choices"].as_array().into_iter().flatten() {
            let index = delta_choice["index"].as_u64().unwrap_or(0) as usize;
            while choices.len() <= index {
                choices.push(json!({
                    "index": choices.len(),
                    "message": {"role": "assistant", "content": null},
                    "finish_reason": null,
                }));
            }
            let choice = &mut choices[index];
            let delta = &delta_choice["delta"];
            if let Some(text) = delta["content"].as_str() {
                let message = &mut choice["message"];
                let joined = format!("{}{text}", message["content"].as_str().unwrap_or(""));
                message["content"] = Value::String(joined);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                merge_tool_call(&mut choice["message"], call);
            }
            if delta_choice["finish_reason"].is_string() {
                choice["finish_reason"] = delta_choice["finish_reason"].clone();
            }
        }
    }
    let mut answer = json!({
        "id": first["id"].clone(),
        "object": "chat.completion",
        "created": first["created"].clone(),
        "model": first["model"].clone(),
        "choices": choices,
    });
    if !usage.is_null() {
        answer["usage"] = usage;
    }
    answer
}

fn merge_tool_call(message: &mut Value, call: &Value) {
    let index = call["index"].as_u64().unwrap_or(0) as usize;
    if !message["tool_calls"].is_array() {
        message["tool_calls"] = Value::Array(Vec::new());
    }
    let Some(calls) = message["tool_calls"].as_array_mut() else {
        return;
    };
    while calls.len() <= index {
        calls.push(json!({"id": null, "type": "function",
            "function": {"name": "", "arguments": ""}}));
    }
    let slot = &mut calls[index];
    if let Some(id) = call["id"].as_str() {
        slot["id"] = Value::String(id.to_string());
    }
    for field in ["name", "arguments"] {
        if let Some(part) = call["function"][field].as_str() {
            let joined = format!("{}{part}", slot["function"][field].as_str().unwrap_or(""));
            slot["function"][field] = Value::String(joined);
        }
    }
}

/// Splits a `chat.completion` into the chunks a stream of it would carry: the role, the content,
/// each tool call whole, the finish reason, then the usage alone (as OpenAI sends it when asked).
pub fn split(answer: &Value) -> Vec<Value> {
    let chunk = |choices: Value| {
        json!({
            "id": answer["id"].clone(),
            "object": "chat.completion.chunk",
            "created": answer["created"].clone(),
            "model": answer["model"].clone(),
            "choices": choices,
        })
    };
    let mut chunks = Vec::new();
    for choice in answer["choices"].as_array().into_iter().flatten() {
        let index = choice["index"].clone();
        let message = &choice["message"];
        chunks.push(chunk(
            json!([{"index": index, "delta": {"role": "assistant", "content": ""},
            "finish_reason": null}]),
        ));
        if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
            chunks.push(chunk(json!([{"index": index, "delta": {"content": text},
                "finish_reason": null}])));
        }
        for (i, call) in message["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut delta_call = Map::new();
            delta_call.insert("index".into(), json!(i));
            delta_call.insert("id".into(), call["id"].clone());
            delta_call.insert("type".into(), json!("function"));
            delta_call.insert("function".into(), call["function"].clone());
            chunks.push(chunk(json!([{"index": index,
                "delta": {"tool_calls": [Value::Object(delta_call)]}, "finish_reason": null}])));
        }
        let finish = if choice["finish_reason"].is_string() {
            choice["finish_reason"].clone()
        } else {
            json!("stop")
        };
        chunks.push(chunk(
            json!([{"index": index, "delta": {}, "finish_reason": finish}]),
        ));
    }
    if answer.get("usage").is_some_and(|u| !u.is_null()) {
        let mut last = chunk(json!([]));
        last["usage"] = answer["usage"].clone();
        chunks.push(last);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion() -> Value {
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
    }

    #[test]
    fn a_complete_answer_survives_a_split_and_an_assembly() {
        let chunks = split(&completion());
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert_eq!(
            chunks.last().map(|c| c["usage"]["total_tokens"].clone()),
            Some(json!(7))
        );
        assert_eq!(assemble(&chunks), completion());
    }

    #[test]
    fn completions_clients_get_the_text_completion_shape() {
        let text = to_text_completion(&completion());
        assert_eq!(text["object"], "text_completion");
        assert_eq!(text["choices"][0]["text"], "Hello there");
        assert_eq!(text["usage"]["total_tokens"], 7);
        let chunk = to_text_completion(&split(&completion())[1]);
        assert_eq!(chunk["choices"][0]["text"], "Hello there");
    }

    #[test]
    fn deltas_are_joined_in_order() {
        let chunks = vec![
            json!({"id": "c", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
            json!({"id": "c", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": "lo",
                    "tool_calls": [{"index": 0, "id": "t", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"id": "c", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                    "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}]}),
        ];
        let answer = assemble(&chunks);
        assert_eq!(answer["choices"][0]["message"]["content"], "Hello");
        assert_eq!(
            answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
        assert!(answer.get("usage").is_none());
    }
}
