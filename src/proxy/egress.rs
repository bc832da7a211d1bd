//! Egress: the canonical answer (OpenAI chat) in the client's own format. Chat, completions and
//! embeddings clients get it as it is; Anthropic Messages clients (`/v1/messages`) get Anthropic's
//! shapes: the answer, each stream event, and errors.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::wire::anthropic;
use crate::wire::openai::Endpoint;

/// Per-stream state of the client's format.
pub enum StreamEgress {
    OpenAi,
    Anthropic(Box<anthropic::stream::Encoder>),
}

impl StreamEgress {
    pub fn for_endpoint(endpoint: Endpoint) -> StreamEgress {
        match endpoint {
            Endpoint::Messages => {
                StreamEgress::Anthropic(Box::new(anthropic::stream::Encoder::new()))
            }
            _ => StreamEgress::OpenAi,
        }
    }

    pub fn is_openai(&self) -> bool {
        matches!(self, StreamEgress::OpenAi)
    }

    /// Appends one canonical event (`raw`, parsed as `json` when it carries data) in the client's
    /// format. An event the client's format cannot carry is an error message.
    pub fn push(
        &mut self,
        raw: &[u8],
        json: Option<&Value>,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        match self {
            StreamEgress::OpenAi => {
                out.extend_from_slice(raw);
                Ok(())
            }
            StreamEgress::Anthropic(encoder) => {
                let Some(json) = json else { return Ok(()) };
                let events = encoder.push(json).map_err(|e| e.to_string())?;
                out.extend_from_slice(anthropic::stream::format_sse(&events).as_bytes());
                Ok(())
            }
        }
    }

    /// What ends a stream that finished cleanly.
    pub fn finish(&mut self) -> Bytes {
        match self {
            StreamEgress::OpenAi => Bytes::new(),
            StreamEgress::Anthropic(encoder) => {
                Bytes::from(anthropic::stream::format_sse(&encoder.finish()))
            }
        }
    }

    /// The failure event in the client's format (`canonical` is the OpenAI-shaped SSE event).
    pub fn error_event(&self, canonical: Bytes, message: &str) -> Bytes {
        match self {
            StreamEgress::OpenAi => canonical,
            StreamEgress::Anthropic(_) => {
                let event = anthropic::stream::error_event(message, "api_error");
                Bytes::from(anthropic::stream::format_sse(&[event]))
            }
        }
    }
}

/// A complete canonical answer in the client's format.
pub fn answer(endpoint: Endpoint, body: Bytes) -> Result<Bytes, String> {
    match endpoint {
        Endpoint::Messages => {
            let chat: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let message = anthropic::response::from_chat(&chat).map_err(|e| e.to_string())?;
            serde_json::to_vec(&message)
                .map(Bytes::from)
                .map_err(|e| e.to_string())
        }
        _ => Ok(body),
    }
}

/// An OpenAI-shaped error body in the client's format.
pub fn error(endpoint: Endpoint, status: u16, body: Bytes) -> Bytes {
    match endpoint {
        Endpoint::Messages => Bytes::from(anthropic::error::from_openai(status, &body).to_string()),
        _ => body,
    }
}
