//! Claude on Bedrock for an Anthropic Messages client: Anthropic's own body through InvokeModel,
//! and the answer read with Anthropic's translators. Streams come in Bedrock's binary event-stream
//! framing, each `chunk` frame holding one Anthropic event, and are unwrapped into Anthropic SSE
//! ([`ClaudeReframer`]) before the relay and the side decoder see them.
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html>

use base64::Engine;
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use super::eventstream;
use crate::providers::anthropic::{adapter, native};
use crate::providers::{ChatStreamDecoder, NativeCall, ReframeError, Reframed, StreamReframer};

/// Whether a Bedrock model id is Claude's, which takes Anthropic's body natively.
pub fn is_claude(upstream_model: &str) -> bool {
    upstream_model.contains("anthropic.")
}

pub struct Claude {
    upstream_model: String,
}

impl Claude {
    pub fn new(upstream_model: &str) -> Claude {
        Claude {
            upstream_model: upstream_model.to_string(),
        }
    }
}

impl NativeCall for Claude {
    /// Bedrock names the model in the URL and the API version in the body; the streaming choice
    /// is the URL too.
    fn body(&self, mut client_body: Value) -> Value {
        if let Some(fields) = client_body.as_object_mut() {
            fields.remove("model");
            fields.remove("stream");
            fields.insert("anthropic_version".into(), "bedrock-2023-05-31".into());
        }
        client_body
    }

    fn side_decoder(&self) -> Box<dyn ChatStreamDecoder> {
        adapter::sse_decoder(&self.upstream_model)
    }

    fn reframer(&self) -> Option<Box<dyn StreamReframer>> {
        Some(Box::new(ClaudeReframer::default()))
    }

    fn canonical_answer(&self, body: Bytes) -> Result<Bytes, String> {
        native::canonical_message(&body)
    }
}

/// Bedrock's binary framing of Claude's events, re-framed as Anthropic SSE.
#[derive(Default)]
pub struct ClaudeReframer {
    frames: eventstream::Decoder,
}

impl StreamReframer for ClaudeReframer {
    /// Each `chunk` frame's payload is `{"bytes": base64(one Anthropic event)}`; an exception
    /// frame becomes Anthropic's `error` event and ends the stream.
    /// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html>
    fn push(&mut self, bytes: &[u8]) -> Result<Reframed, ReframeError> {
        let mut out = BytesMut::new();
        for frame in self.frames.push(bytes)? {
            if frame.message_type.as_deref() == Some("exception") {
                let message = serde_json::from_slice::<Value>(&frame.payload)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(String::from))
                    .unwrap_or_else(|| "Bedrock stream exception".into());
                let kind = match frame.exception_type.as_deref() {
                    Some("throttlingException") => "rate_limit_error",
                    Some("validationException") => "invalid_request_error",
                    _ => "api_error",
                };
                let event = json!({"type": "error", "error": {"type": kind, "message": message}});
                out.extend_from_slice(format!("event: error\ndata: {event}\n\n").as_bytes());
                return Ok(Reframed {
                    bytes: out.freeze(),
                    end: true,
                });
            }
            let payload: Value = serde_json::from_slice(&frame.payload).unwrap_or_default();
            let Some(encoded) = payload["bytes"].as_str() else {
                continue;
            };
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
                continue;
            };
            let Ok(event) = serde_json::from_slice::<Value>(&decoded) else {
                continue;
            };
            let name = event["type"].as_str().unwrap_or("message").to_string();
            out.extend_from_slice(format!("event: {name}\ndata: {event}\n\n").as_bytes());
        }
        Ok(Reframed {
            bytes: out.freeze(),
            end: false,
        })
    }
}
