//! Upstream providers: adapters of one shape ([`Provider`]), one folder each, chosen by the
//! [`registry::ProviderRegistry`] from the model name. The request path never knows which one.
//!
//! | provider | usage fields | cached input | reasoning |
//! |---|---|---|---|
//! | `openai`, `openai_compatible` | `usage.prompt_tokens`, `usage.completion_tokens`; streams send it in a last chunk with empty `choices` when `stream_options.include_usage` is set | `prompt_tokens_details.cached_tokens` (part of `prompt_tokens`) | `completion_tokens_details.reasoning_tokens` (part of `completion_tokens`); xAI reports it apart and the preset adds it back |
//! | `anthropic` | `usage.input_tokens`, `output_tokens`; streams: `message_start` then cumulative `message_delta` | `cache_read_input_tokens`, `cache_creation_input_tokens`, both NOT part of `input_tokens` (summed into `prompt_tokens`) | not reported apart (thinking is in `output_tokens`) |
//! | `gemini`, `vertex` | `usageMetadata.promptTokenCount`, `candidatesTokenCount`; every stream chunk carries the running total | `cachedContentTokenCount` (part of `promptTokenCount`) | `thoughtsTokenCount`, NOT part of `candidatesTokenCount` (added into `completion_tokens`) |
//! | `bedrock` | `usage.inputTokens`, `outputTokens`; streams: the `metadata` event | `cacheReadInputTokens`, `cacheWriteInputTokens`, NOT part of `inputTokens` (summed) | not reported apart |
//!
//! Some compatible servers send no usage in streams; then the proxy counts tokens itself and marks
//! the trace's usage as estimated.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod http;
pub mod key_pool;
pub mod native;
pub mod openai;
pub mod registry;
pub mod translate;
mod walk;

use bytes::Bytes;
use http_body_util::Full;
use thiserror::Error;

pub use native::{FINAL_RESPONSE_FIELD, NativeCall, ReframeError, Reframed, StreamReframer};
pub use registry::{ProviderRegistry, ResolveError, Route};

use crate::config::{ProviderKind, Timeouts};
use crate::wire::openai::{Endpoint, Inbound, OperationRequest};

#[derive(Debug, Error)]
pub enum UpstreamError {
    #[error("cannot connect to provider {provider}: {detail}")]
    Connect { provider: String, detail: String },
    #[error("provider {provider} did not answer within {after_ms} ms ({phase})")]
    Timeout {
        provider: String,
        phase: &'static str,
        after_ms: u64,
    },
    #[error("provider {provider} broke the exchange: {detail}")]
    Protocol { provider: String, detail: String },
    #[error("cannot build the request for provider {provider}: {detail}")]
    Build { provider: String, detail: String },
    /// The request names something the provider's URL cannot carry (a model name with a path
    /// or query in it): the client's mistake, refused before anything is sent.
    #[error("{message}")]
    Refused {
        param: &'static str,
        message: String,
    },
}

/// Whether `model` can stand as one segment of an upstream URL's path as it is: letters, digits,
/// `.`, `_` and `-`, not starting with `.`. Providers that put the model in the path (Gemini,
/// Azure's deployments) refuse anything else: `/`, `..`, `:`, `?`, `#` or a space there would
/// call another method or resource with the operator's key.
pub fn is_url_safe_model(model: &str) -> bool {
    !model.is_empty()
        && model.len() <= 128
        && !model.starts_with('.')
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What is being called upstream; some providers put the model and the streaming flag in the URL.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamCall<'a> {
    pub endpoint: Endpoint,
    pub model: &'a str,
    pub stream: bool,
    /// The body is in the client's own format (a [`NativeCall`]), not the provider's canonical
    /// one.
    pub native: bool,
    /// The body's content type when it is not JSON (an operation's multipart form).
    pub content_type: Option<&'a str>,
    /// For files and batches: the method and the path below the base URL, query included
    /// (`GET /files/file-1/content`), instead of a POST to the endpoint's path.
    pub resource: Option<(&'a hyper::Method, &'a str)>,
    /// The credential to send with, when the object called was made with it.
    pub credential: Option<&'a str>,
}

/// A request the provider's format cannot express; becomes a 400 naming `param`.
#[derive(Debug, Error)]
#[error("{param}: {message}")]
pub struct Untranslatable {
    pub param: String,
    pub message: String,
}

/// A translated request as bytes, or the parameter that cannot be translated.
pub fn request_body<E: Into<Untranslatable>>(
    translated: Result<serde_json::Value, E>,
) -> Result<Bytes, Untranslatable> {
    let value = translated.map_err(Into::into)?;
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| Untranslatable {
            param: "messages".into(),
            message: e.to_string(),
        })
}

/// A native answer run through `translate`, as JSON bytes.
pub fn answer_body<E: std::fmt::Display>(
    body: &[u8],
    translate: impl FnOnce(&serde_json::Value) -> Result<serde_json::Value, E>,
) -> Result<Bytes, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let translated = translate(&value).map_err(|e| e.to_string())?;
    serde_json::to_vec(&translated)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// Turns a provider's native stream, bytes as they arrive, into canonical chat chunks.
/// An `Err` is a failure the client must see as one (a provider error event, or a stream that
/// ended without its terminal event); its text is the message.
pub trait ChatStreamDecoder: Send {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<serde_json::Value>, String>;
    fn finish(&mut self) -> Result<Vec<serde_json::Value>, String>;
}

/// A decoder of one SSE event at a time (Anthropic, Gemini); [`SseFraming`] feeds it.
pub trait SseEventDecoder: Send {
    fn event(&mut self, raw_event: &[u8]) -> Result<Vec<serde_json::Value>, String>;
    fn finish(&mut self) -> Result<Vec<serde_json::Value>, String>;
}

/// Cuts raw bytes into SSE events for an [`SseEventDecoder`].
pub struct SseFraming<D> {
    splitter: crate::wire::sse::SseSplitter,
    inner: D,
}

impl<D> SseFraming<D> {
    pub fn new(inner: D) -> SseFraming<D> {
        SseFraming {
            splitter: crate::wire::sse::SseSplitter::default(),
            inner,
        }
    }
}

impl<D: SseEventDecoder> ChatStreamDecoder for SseFraming<D> {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<serde_json::Value>, String> {
        let mut chunks = Vec::new();
        for event in self.splitter.push(bytes) {
            chunks.extend(self.inner.event(&event.bytes)?);
        }
        Ok(chunks)
    }

    fn finish(&mut self) -> Result<Vec<serde_json::Value>, String> {
        self.inner.finish()
    }
}

/// An upstream adapter. Implementations build the HTTP request for an endpoint; the shared
/// [`http::HttpClient`] sends it.
///
/// The request path works in the canonical format (OpenAI chat). A provider of another format
/// says so ([`Provider::passes_openai_body`], [`Provider::translates_answers`]) and translates on
/// the way out and back; a provider that takes a client's own format says so per call
/// ([`Provider::native`]).
pub trait Provider: Send + Sync {
    /// Whether the parsed request (`None` when none was parsed) goes upstream as OpenAI's body,
    /// model renamed; otherwise it goes through [`Provider::translate_chat`] or
    /// [`Provider::translate_embeddings`].
    fn passes_openai_body(&self, _request: Option<&Inbound>) -> bool {
        true
    }
    /// Whether answers and error bodies come back through the `translate_*` methods (they are not
    /// OpenAI's own shape, or need a provider's fixes).
    fn translates_answers(&self) -> bool {
        false
    }
    /// The native call for a client of `endpoint` whose format this provider takes as it is, for
    /// `upstream_model`; `None` when the request goes the canonical way.
    fn native(&self, _endpoint: Endpoint, _upstream_model: &str) -> Option<Box<dyn NativeCall>> {
        None
    }
    /// For another format: the native chat body for a canonical chat request.
    fn translate_chat(
        &self,
        _chat: &serde_json::Value,
        _upstream_model: &str,
    ) -> Result<Bytes, Untranslatable> {
        Err(Untranslatable {
            param: "model".into(),
            message: format!("provider {} takes OpenAI requests as they are", self.name()),
        })
    }
    /// For another format: a native chat answer as a canonical `chat.completion`.
    fn translate_answer(&self, body: &[u8], _upstream_model: &str) -> Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(body))
    }
    /// For another format: the native embeddings body for an OpenAI embeddings request.
    fn translate_embeddings(
        &self,
        _request: &serde_json::Value,
        _upstream_model: &str,
    ) -> Result<Bytes, Untranslatable> {
        Err(Untranslatable {
            param: "model".into(),
            message: format!("provider {} does not serve embeddings", self.name()),
        })
    }
    /// For another format: a native embeddings answer as an OpenAI one (`request` is the
    /// client's, for its `encoding_format`).
    fn translate_embeddings_answer(
        &self,
        body: &[u8],
        _upstream_model: &str,
        _request: &serde_json::Value,
    ) -> Result<Bytes, String> {
        Ok(Bytes::copy_from_slice(body))
    }
    /// For another format: a native error body in the OpenAI error shape.
    fn translate_error(&self, _status: u16, body: &[u8]) -> Bytes {
        Bytes::copy_from_slice(body)
    }
    /// Whether it serves `endpoint`, an operation (images, audio, moderations, rerank). A
    /// provider that does not is refused with a 400 saying so, before any call.
    fn serves(&self, _endpoint: Endpoint) -> bool {
        false
    }
    /// An operation's body as this provider takes it: by default the client's own (the upstream
    /// model already named in it).
    fn operation_body(&self, request: &OperationRequest) -> Result<Bytes, Untranslatable> {
        request.to_bytes().map_err(|e| Untranslatable {
            param: "model".into(),
            message: e.to_string(),
        })
    }
    /// A successful operation answer in OpenAI's (or the common rerank) shape: by default as it
    /// came. `request` is the client's, its model the upstream one.
    fn operation_answer(&self, _request: &OperationRequest, body: Bytes) -> Result<Bytes, String> {
        Ok(body)
    }
    /// For another format: a decoder of its chat stream.
    fn chat_stream_decoder(&self, _upstream_model: &str) -> Option<Box<dyn ChatStreamDecoder>> {
        None
    }
    fn name(&self) -> &str;
    /// Where requests go (without a trailing slash): part of a deployment's identity, so state
    /// kept about one upstream (a breaker) is not applied to another after the URL changes.
    fn base_url(&self) -> &str;
    fn kind(&self) -> ProviderKind;
    fn timeouts(&self) -> &Timeouts;
    /// Models this provider declares, for `GET /v1/models`.
    fn declared_models(&self) -> &[String];
    /// Builds the upstream request for `endpoint` carrying `body` (already rewritten for this
    /// provider: upstream model name, usage requested).
    /// `client_headers` are the client's request headers, for the few a provider forwards
    /// (`anthropic-beta`); never its credentials.
    fn build_request(
        &self,
        call: &UpstreamCall<'_>,
        body: Bytes,
        client_headers: &hyper::HeaderMap,
    ) -> Result<hyper::Request<Full<Bytes>>, UpstreamError>;
    fn client(&self) -> &http::HttpClient;
    /// The provider's keys, when it sends a key (Bedrock signs with AWS credentials instead):
    /// shared by its copies, swapped in place by admin changes.
    fn key_pool(&self) -> Option<&std::sync::Arc<key_pool::KeyPool>> {
        None
    }
    /// The same provider with other timeouts (and so its own connection pool), for a deployment
    /// or group that overrides them.
    fn with_timeouts(&self, timeouts: Timeouts) -> Result<std::sync::Arc<dyn Provider>, String>;
}
