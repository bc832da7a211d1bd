//! Upstream providers: adapters of one shape ([`Provider`]), one folder each, chosen by the
//! [`registry::ProviderRegistry`] from the model name. The request path never knows which one.
//!
//! | provider | usage fields | cached input | reasoning |
//! |---|---|---|---|
//! | `openai`, `openai_compatible` | `usage.prompt_tokens`, `usage.completion_tokens`; streams send it in a last chunk with empty `choices` when `stream_options.include_usage` is set | `prompt_tokens_details.cached_tokens` (part of `prompt_tokens`) | `completion_tokens_details.reasoning_tokens` (part of `completion_tokens`) |
//!
//! Some compatible servers send no usage in streams; then the proxy counts tokens itself and marks
//! the trace's usage as estimated.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod http;
pub mod openai;
pub mod registry;

use bytes::Bytes;
use http_body_util::Full;
use thiserror::Error;

pub use registry::{ProviderRegistry, ResolveError, Route};

use crate::config::{ProviderKind, Timeouts};
use crate::wire::openai::Endpoint;

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
}

/// An upstream adapter. Implementations build the HTTP request for an endpoint; the shared
/// [`http::HttpClient`] sends it.
pub trait Provider: Send + Sync {
    fn name(&self) -> &str;
    fn kind(&self) -> ProviderKind;
    fn timeouts(&self) -> &Timeouts;
    /// Models this provider declares, for `GET /v1/models`.
    fn declared_models(&self) -> &[String];
    /// Builds the upstream request for `endpoint` carrying `body` (already rewritten for this
    /// provider: upstream model name, usage requested).
    fn build_request(
        &self,
        endpoint: Endpoint,
        body: Bytes,
    ) -> Result<hyper::Request<Full<Bytes>>, UpstreamError>;
    fn client(&self) -> &http::HttpClient;
    /// The same provider with other timeouts (and so its own connection pool), for a deployment
    /// or group that overrides them.
    fn with_timeouts(&self, timeouts: Timeouts) -> Result<std::sync::Arc<dyn Provider>, String>;
}
