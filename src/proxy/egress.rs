//! Egress: the canonical answer (OpenAI chat) in the client's own format. Chat, completions and
//! embeddings clients get it as it is; Anthropic Messages clients (`/v1/messages`) get Anthropic's
//! shapes; Responses clients (`/v1/responses`) get the Responses object and its typed events.
//! Errors use Anthropic's shape on `/v1/messages` and OpenAI's everywhere else.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::RequestCtx;
use crate::wire::openai::Endpoint;
use crate::wire::{anthropic, gemini, responses};

/// Per-stream state of the client's format.
pub enum StreamEgress {
    OpenAi,
    /// The provider speaks the client's format (Anthropic to Anthropic, Responses to OpenAI):
    /// bytes pass as they are; only a failure Stockyard itself reports needs the client's shape.
    Native(Endpoint),
    Anthropic(Box<anthropic::stream::Encoder>),
    Responses(Box<responses::stream::Encoder>),
    /// Gemini's streamed responses, as SSE or one JSON array.
    Gemini(Box<gemini::stream::Encoder>),
}

impl StreamEgress {
    pub fn for_request(ctx: &RequestCtx) -> StreamEgress {
        if ctx.request.native {
            return StreamEgress::Native(ctx.request.endpoint);
        }
        match ctx.request.endpoint {
            Endpoint::Messages => {
                StreamEgress::Anthropic(Box::new(anthropic::stream::Encoder::new()))
            }
            Endpoint::Responses => {
                let request = ctx
                    .request
                    .client_request
                    .as_deref()
                    .cloned()
                    .unwrap_or(Value::Null);
                let encoder =
                    responses::stream::Encoder::new(&request, ctx.request.response_id.as_deref());
                StreamEgress::Responses(Box::new(encoder))
            }
            Endpoint::GenerateContent => StreamEgress::Gemini(Box::new(
                gemini::stream::Encoder::new(gemini::wants_sse(ctx.request.uri.query())),
            )),
            _ => StreamEgress::OpenAi,
        }
    }

    pub fn is_openai(&self) -> bool {
        matches!(self, StreamEgress::OpenAi)
    }

    /// Whether upstream events reach the client as they came (so a provider's own error event
    /// already told the client).
    pub fn forwards_raw(&self) -> bool {
        matches!(self, StreamEgress::OpenAi | StreamEgress::Native(_))
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
            StreamEgress::OpenAi | StreamEgress::Native(_) => {
                out.extend_from_slice(raw);
                Ok(())
            }
            StreamEgress::Anthropic(encoder) => {
                let Some(json) = json else { return Ok(()) };
                let events = encoder.push(json).map_err(|e| e.to_string())?;
                out.extend_from_slice(anthropic::stream::format_sse(&events).as_bytes());
                Ok(())
            }
            StreamEgress::Responses(encoder) => {
                let Some(json) = json else { return Ok(()) };
                let events = encoder.push(json).map_err(|e| e.to_string())?;
                out.extend_from_slice(responses::stream::to_sse(&events).as_bytes());
                Ok(())
            }
            StreamEgress::Gemini(encoder) => {
                let Some(json) = json else { return Ok(()) };
                out.extend_from_slice(encoder.push(json).as_bytes());
                Ok(())
            }
        }
    }

    /// What ends a stream that finished cleanly; a Responses stream leaves its final object in
    /// `ctx.result.client_answer` (for storage).
    pub fn finish(&mut self, ctx: &mut RequestCtx) -> Bytes {
        match self {
            StreamEgress::OpenAi | StreamEgress::Native(_) => Bytes::new(),
            StreamEgress::Anthropic(encoder) => {
                Bytes::from(anthropic::stream::format_sse(&encoder.finish()))
            }
            StreamEgress::Responses(encoder) => {
                let events = match encoder.finish() {
                    Ok(events) => events,
                    Err(e) => encoder.fail("stream_incomplete", &e.to_string()),
                };
                ctx.result.client_answer = encoder.final_response().cloned();
                Bytes::from(responses::stream::to_sse(&events))
            }
            StreamEgress::Gemini(encoder) => Bytes::from(encoder.finish()),
        }
    }

    /// The failure event in the client's format (`canonical` is the OpenAI-shaped SSE event).
    pub fn error_event(&mut self, canonical: Bytes, message: &str) -> Bytes {
        self.error_event_coded(canonical, message, None)
    }

    /// Like [`StreamEgress::error_event`], for a failure of the proxy's own making (a guardrail
    /// ending the stream): the client's format carries `code` rather than an upstream failure.
    pub fn error_event_coded(
        &mut self,
        canonical: Bytes,
        message: &str,
        code: Option<&str>,
    ) -> Bytes {
        let responses_code = code.unwrap_or("upstream_error");
        let anthropic_type = if code.is_some() {
            "invalid_request_error"
        } else {
            "api_error"
        };
        match self {
            StreamEgress::OpenAi => canonical,
            StreamEgress::Native(Endpoint::Responses) => {
                let event = serde_json::json!({"type": "error", "code": responses_code, "message": message, "param": null});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            StreamEgress::Native(Endpoint::GenerateContent) => {
                let error = gemini::error(
                    502,
                    serde_json::json!({"error": {"message": message}})
                        .to_string()
                        .as_bytes(),
                );
                Bytes::from(format!("data: {error}\r\n\r\n"))
            }
            StreamEgress::Gemini(encoder) => {
                Bytes::from(encoder.fail(if code.is_some() { 400 } else { 502 }, message))
            }
            StreamEgress::Anthropic(_) | StreamEgress::Native(_) => {
                let event = anthropic::stream::error_event(message, anthropic_type);
                Bytes::from(anthropic::stream::format_sse(&[event]))
            }
            StreamEgress::Responses(encoder) => Bytes::from(responses::stream::to_sse(
                &encoder.fail(responses_code, message),
            )),
        }
    }
}

/// A complete canonical answer in the client's format.
pub fn answer(ctx: &mut RequestCtx, body: Bytes) -> Result<Bytes, String> {
    match ctx.request.endpoint {
        Endpoint::Messages => {
            let chat: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let message = anthropic::response::from_chat(&chat).map_err(|e| e.to_string())?;
            serde_json::to_vec(&message)
                .map(Bytes::from)
                .map_err(|e| e.to_string())
        }
        Endpoint::Responses => {
            let chat: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let request = ctx
                .request
                .client_request
                .as_deref()
                .cloned()
                .unwrap_or(Value::Null);
            let response =
                responses::response::from_chat(&chat, &request, ctx.request.response_id.as_deref())
                    .map_err(|e| e.to_string())?;
            let bytes = serde_json::to_vec(&response)
                .map(Bytes::from)
                .map_err(|e| e.to_string())?;
            ctx.result.client_answer = Some(response);
            Ok(bytes)
        }
        Endpoint::GenerateContent => {
            let chat: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            serde_json::to_vec(&gemini::response::from_chat(&chat))
                .map(Bytes::from)
                .map_err(|e| e.to_string())
        }
        _ => Ok(body),
    }
}

/// An OpenAI-shaped error body in the client's format.
pub fn error(endpoint: Endpoint, status: u16, body: Bytes) -> Bytes {
    match endpoint {
        Endpoint::Messages | Endpoint::MessageBatches => {
            Bytes::from(anthropic::error::from_openai(status, &body).to_string())
        }
        Endpoint::GenerateContent => Bytes::from(gemini::error(status, &body).to_string()),
        _ => body,
    }
}
