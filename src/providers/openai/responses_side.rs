//! Reads OpenAI's own Responses stream while it passes through untouched (a Responses client
//! calling OpenAI): text deltas for estimation, usage from `response.completed`, and failures
//! (`response.failed`, `error`) as errors, so the trace and cost are as exact as on any stream.
//! Reference: <https://platform.openai.com/docs/api-reference/responses-streaming>.

use serde_json::{Value, json};

use crate::providers::{FINAL_RESPONSE_FIELD, SseEventDecoder};
use crate::wire::sse::RawEvent;

#[derive(Default)]
pub struct ResponsesSide {
    finished: bool,
}

impl SseEventDecoder for ResponsesSide {
    fn event(&mut self, raw_event: &[u8]) -> Result<Vec<Value>, String> {
        let event = RawEvent {
            bytes: bytes::Bytes::copy_from_slice(raw_event),
        };
        let Some(data) = event.data() else {
            return Ok(Vec::new());
        };
        let Ok(value) = serde_json::from_str::<Value>(&data) else {
            return Ok(Vec::new());
        };
        match value["type"].as_str().unwrap_or_default() {
            "response.output_text.delta" => {
                let delta = value["delta"].as_str().unwrap_or_default();
                Ok(vec![
                    json!({"choices": [{"index": 0, "delta": {"content": delta}}]}),
                ])
            }
            "response.completed" | "response.incomplete" => {
                self.finished = true;
                let response = &value["response"];
                let usage = &response["usage"];
                let count = |v: &Value| v.as_u64().unwrap_or(0);
                Ok(vec![json!({
                    "choices": [],
                    "usage": {
                        "prompt_tokens": count(&usage["input_tokens"]),
                        "completion_tokens": count(&usage["output_tokens"]),
                        "prompt_tokens_details": {"cached_tokens": count(&usage["input_tokens_details"]["cached_tokens"])},
                        "completion_tokens_details": {"reasoning_tokens": count(&usage["output_tokens_details"]["reasoning_tokens"])},
                    },
                    FINAL_RESPONSE_FIELD: response,
                })])
            }
            "response.failed" => {
                let message = value["response"]["error"]["message"]
                    .as_str()
                    .unwrap_or("the response failed");
                Err(format!("provider error mid-stream: {message}"))
            }
            // OpenAI follows an `error` event with `response.failed`, which ends the stream;
            // an `error` alone is caught at the end (no `response.completed`).
            "error" => Ok(Vec::new()),
            _ => Ok(Vec::new()),
        }
    }

    fn finish(&mut self) -> Result<Vec<Value>, String> {
        if self.finished {
            Ok(Vec::new())
        } else {
            Err("the upstream stream ended before response.completed".into())
        }
    }
}
