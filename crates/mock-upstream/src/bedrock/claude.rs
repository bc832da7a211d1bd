//! Claude on Bedrock through InvokeModel (`invoke`) and InvokeModelWithResponseStream
//! (`invoke-with-response-stream`), for model ids containing `anthropic.` (an inference-profile
//! prefix or a foundation-model ARN is fine). The body is Anthropic's Messages body without
//! `model` and `stream` and with `"anthropic_version": "bedrock-2023-05-31"`
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html>).
//!
//! The answer is exactly what `POST /v1/messages` answers for the same body (content, thinking,
//! `tool_use`, usage, `id`; `anthropic/messages.rs` renders both), with `model` = the decoded model
//! id. The stream sends each Anthropic event but `ping` as one `chunk` frame whose payload is
//! `{"bytes": "<standard base64 of the event's JSON>"}`
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html>);
//! the stream faults count the `content_block_delta` chunks, as in `anthropic/mod.rs`, and end as
//! ConverseStream's do (`eventstream.rs`).
//!
//! Like Bedrock, a body with `model` or `stream`, without `anthropic_version` (or with another
//! value), or without a positive `max_tokens` or a `messages` list gets a 400
//! `ValidationException` ("Malformed input request: ...").

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::error;
use super::eventstream::{Event, into_steps_counting};
use crate::anthropic;
use crate::anthropic::messages::{Rendered, render};
use crate::openai::{Reply, to_json};
use crate::script::Behavior;

/// The only `anthropic_version` Bedrock takes for the Messages API.
pub(crate) const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The Anthropic event the stream faults count.
const DELTA: &str = "content_block_delta";

/// The payload of a `chunk` frame.
#[derive(Serialize)]
struct Chunk {
    bytes: String,
}

/// Whether `model_id` names a Claude model, which InvokeModel answers with a Messages body.
pub(crate) fn serves(model_id: &str) -> bool {
    model_id.contains("anthropic.")
}

/// Answers one InvokeModel (`stream` false) or InvokeModelWithResponseStream call on
/// `model_id`; `n` numbers the id and the signature.
pub(crate) fn reply(model_id: &str, req: &Value, b: &Behavior, n: usize, stream: bool) -> Reply {
    if let Err(message) = check(req) {
        return error::validation(&message);
    }
    match render(req, model_id, b, n, stream) {
        Rendered::Json(body) => Reply::Json(Bytes::from(body)),
        Rendered::Events(events) => {
            // Bedrock relays Anthropic's content events, not its keep-alive pings.
            let events: Vec<_> = events.into_iter().filter(|e| e.name != "ping").collect();
            let chunks: Vec<Event> = events
                .iter()
                .map(|e| Event {
                    event_type: "chunk",
                    payload: to_json(&Chunk {
                        bytes: crate::base64::encode(&e.data),
                    }),
                })
                .collect();
            let is_delta = |i: usize, _: &Event| events.get(i).is_some_and(|e| e.name == DELTA);
            Reply::EventStream(into_steps_counting(&chunks, b, is_delta))
        }
    }
}

/// Refuses what Bedrock refuses, in its wording.
fn check(req: &Value) -> Result<(), String> {
    for key in ["model", "stream"] {
        if req.get(key).is_some() {
            return Err(malformed(&format!(
                "extraneous key [{key}] is not permitted"
            )));
        }
    }
    match req.get("anthropic_version") {
        None | Some(Value::Null) => {
            return Err(malformed("required key [anthropic_version] not found"));
        }
        Some(Value::String(v)) if v == ANTHROPIC_VERSION => {}
        Some(v) => {
            return Err(malformed(&format!(
                "anthropic_version: must be \"{ANTHROPIC_VERSION}\" (got {v})"
            )));
        }
    }
    anthropic::check_body(req, true).map_err(|m| malformed(&m))
}

fn malformed(detail: &str) -> String {
    format!("Malformed input request: #: {detail}, please reformat your input and try again.")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{check, serves};

    #[test]
    fn claude_ids_are_recognized_with_prefixes_and_arns() {
        assert!(serves("anthropic.claude-sonnet-4-5-20250929-v1:0"));
        assert!(serves("us.anthropic.claude-haiku-4-5-20251001-v1:0"));
        assert!(serves(
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"
        ));
        assert!(!serves("amazon.titan-embed-text-v2:0"));
    }

    #[test]
    fn check_refuses_model_stream_and_a_missing_version() {
        let ok =
            json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []});
        assert_eq!(check(&ok), Ok(()));
        let with = |key: &str, value| {
            let mut req = ok.clone();
            req[key] = value;
            check(&req).unwrap_err()
        };
        assert!(with("model", json!("m")).contains("extraneous key [model]"));
        assert!(with("stream", json!(false)).contains("extraneous key [stream]"));
        assert!(with("anthropic_version", json!("2023-06-01")).contains("bedrock-2023-05-31"));
        let mut missing = ok.clone();
        missing
            .as_object_mut()
            .map(|o| o.remove("anthropic_version"));
        assert!(
            check(&missing)
                .unwrap_err()
                .contains("required key [anthropic_version] not found")
        );
        assert!(with("max_tokens", json!(0)).contains("max_tokens"));
    }
}
