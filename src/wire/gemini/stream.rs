//! Canonical stream chunks as Gemini's streamed `GenerateContentResponse`s: each text delta one
//! response, function calls (whose arguments arrive in fragments) whole in the response that
//! finishes, and usage in the last. Framing: SSE `data:` events (`alt=sse`), or one JSON array
//! written as it goes (`[`, then `,`-separated objects, then `]`), Google's default.

use serde_json::{Value, json};

use super::response::{call_parts, finish_reason, usage_metadata};

#[derive(Default)]
pub struct Encoder {
    sse: bool,
    started: bool,
    model: Option<Value>,
    /// Tool calls by index: id, name, argument fragments.
    calls: Vec<(Value, String, String)>,
    finish: Option<String>,
    usage: Option<Value>,
}

impl Encoder {
    pub fn new(sse: bool) -> Encoder {
        Encoder {
            sse,
            ..Encoder::default()
        }
    }

    fn frame(&mut self, response: &Value) -> String {
        if self.sse {
            return format!("data: {response}\r\n\r\n");
        }
        let lead = if self.started { ",\r\n" } else { "[" };
        self.started = true;
        format!("{lead}{response}")
    }

    /// One canonical chunk; the bytes to send (maybe none).
    pub fn push(&mut self, chunk: &Value) -> String {
        if self.model.is_none() && chunk["model"].is_string() {
            self.model = Some(chunk["model"].clone());
        }
        if chunk["usage"].is_object() {
            self.usage = Some(chunk["usage"].clone());
        }
        let mut out = String::new();
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().unwrap_or(0) as usize;
                while self.calls.len() <= index {
                    self.calls.push((Value::Null, String::new(), String::new()));
                }
                let slot = &mut self.calls[index];
                if call["id"].is_string() {
                    slot.0 = call["id"].clone();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    slot.1.push_str(name);
                }
                if let Some(args) = call["function"]["arguments"].as_str() {
                    slot.2.push_str(args);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish = Some(reason.to_string());
            }
            if let Some(text) = delta["content"].as_str()
                && !text.is_empty()
            {
                let response = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                    "index": 0}], "modelVersion": self.model.clone().unwrap_or(Value::Null)});
                out.push_str(&self.frame(&response));
            }
        }
        out
    }

    /// The last response (finish reason, whole function calls, usage) and the array's close.
    pub fn finish(&mut self) -> String {
        let calls: Vec<Value> = self
            .calls
            .iter()
            .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
        let parts = call_parts(&Value::Array(calls));
        let reason = finish_reason(self.finish.as_deref().unwrap_or("stop"));
        let mut response = json!({"candidates": [{"content": {"role": "model", "parts": parts},
            "finishReason": reason, "index": 0}], "modelVersion": self.model.clone().unwrap_or(Value::Null)});
        if let Some(usage) = &self.usage {
            response["usageMetadata"] = usage_metadata(usage);
        }
        let mut out = self.frame(&response);
        if !self.sse {
            out.push(']');
        }
        out
    }

    /// A failure mid-stream, as Google reports one: an error object in the stream.
    pub fn fail(&mut self, status: u16, message: &str) -> String {
        let error = super::error(
            status,
            json!({"error": {"message": message}})
                .to_string()
                .as_bytes(),
        );
        let mut out = self.frame(&error);
        if !self.sse {
            out.push(']');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_array_stream_is_one_valid_array() {
        let mut e = Encoder::new(false);
        let mut out =
            e.push(&json!({"model": "m", "choices": [{"index": 0, "delta": {"content": "Hel"}}]}));
        out.push_str(&e.push(&json!({"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]})));
        out.push_str(
            &e.push(&json!({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 2}})),
        );
        out.push_str(&e.finish());
        let parsed: Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(parsed.as_array().map(Vec::len), Some(3));
        assert_eq!(parsed[2]["usageMetadata"]["totalTokenCount"], 4);
        assert_eq!(parsed[2]["candidates"][0]["finishReason"], "STOP");
    }
}
