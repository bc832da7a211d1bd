//! `RequestCtx`: what one request knows as it moves through the chain. Facts that several modules
//! read are named fields; state private to one module goes in `slots`, a type map.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::HeaderMap;
use tokio::sync::OwnedSemaphorePermit;

use super::attempt::AttemptPlan;
use super::error::ErrorCode;
use super::inflight::InflightGuard;
use crate::cost::Tokens;
use crate::providers::Route;
use crate::wire::openai::{Endpoint, Inbound, Usage};

pub struct RequestCtx {
    pub request_id: String,
    pub endpoint: Endpoint,
    pub started: Instant,
    /// Wall-clock start, milliseconds since the epoch.
    pub ts_ms: i64,
    pub headers: HeaderMap,
    /// The client's address, when the listener knows it.
    pub client_addr: Option<IpAddr>,
    /// Short id of the client key that authenticated (a hash prefix, never the key).
    pub key_id: Option<String>,
    /// The request body as received.
    pub body: Bytes,
    pub request: Option<Inbound>,
    /// The request as the client wrote it, for formats answered in their own shape
    /// (`/v1/messages`, `/v1/responses`).
    pub client_request: Option<std::sync::Arc<serde_json::Value>>,
    /// The answer in the client's format, when a module keeps it (stored Responses).
    pub client_answer: Option<serde_json::Value>,
    /// The client speaks the provider's own format: request and answer pass through as they are.
    pub native: bool,
    /// For a native stream: the provider's decoder, run beside the pass-through for usage.
    pub native_decoder: Option<Box<dyn crate::providers::ChatStreamDecoder>>,
    /// The id of a Responses answer, chosen before the call.
    pub response_id: Option<String>,
    /// The model the client asked for (before routing).
    pub requested_model: String,
    pub route: Option<Route>,
    /// How the upstream is to be tried; left by a module (routing), else one default attempt.
    pub plan: Option<Box<dyn AttemptPlan>>,
    /// Upstream calls made so far.
    pub attempts: u32,
    /// The module that answered in place of the upstream, if one did.
    pub answered_by: Option<&'static str>,
    /// The module that refused the request, if one did.
    pub refused_by: Option<&'static str>,
    /// For a model call a module made itself: that module.
    pub internal: Option<&'static str>,
    /// The deployment that answered (or was last tried).
    pub deployment: Option<String>,
    /// A/B variant, when the route split by a request tag.
    pub variant: Option<String>,
    pub stream: bool,
    pub client_wants_usage: bool,
    pub tokens: Tokens,
    /// Whether the upstream reported usage (else `tokens` are estimated at finish).
    pub usage_reported: bool,
    pub usage_estimated: bool,
    /// Completion text seen in the answer, kept for estimation when no usage arrives.
    pub completion_text: String,
    pub cost_nanos: i64,
    pub price_known: bool,
    pub status: u16,
    /// `None` on success; why it failed otherwise.
    pub error_class: Option<ErrorCode>,
    /// Time spent waiting on the upstream (headers and body), excluded from overhead.
    pub upstream_time: Duration,
    /// Time from start to the upstream's response head.
    pub upstream_latency: Option<Duration>,
    pub ttft: Option<Duration>,
    pub overhead: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub slots: hyper::http::Extensions,
    /// Held from admission (past the header gate) until the last hook ran.
    inflight: Option<InflightGuard>,
    /// The share of the server's body budget this request's body holds.
    body_permit: Option<OwnedSemaphorePermit>,
}

impl RequestCtx {
    pub fn new(
        endpoint: Endpoint,
        request_id: String,
        headers: HeaderMap,
        client_addr: Option<IpAddr>,
    ) -> RequestCtx {
        RequestCtx {
            request_id,
            endpoint,
            started: Instant::now(),
            ts_ms: crate::store::now_ms(),
            headers,
            client_addr,
            key_id: None,
            body: Bytes::new(),
            request: None,
            client_request: None,
            client_answer: None,
            response_id: None,
            native: false,
            native_decoder: None,
            requested_model: String::new(),
            route: None,
            plan: None,
            attempts: 0,
            answered_by: None,
            refused_by: None,
            internal: None,
            deployment: None,
            variant: None,
            stream: false,
            client_wants_usage: false,
            tokens: Tokens::default(),
            usage_reported: false,
            usage_estimated: false,
            completion_text: String::new(),
            cost_nanos: 0,
            price_known: false,
            status: 0,
            error_class: None,
            upstream_time: Duration::ZERO,
            upstream_latency: None,
            ttft: None,
            overhead: Duration::ZERO,
            bytes_in: 0,
            bytes_out: 0,
            slots: hyper::http::Extensions::new(),
            inflight: None,
            body_permit: None,
        }
    }

    /// Counts the request as in flight until it is dropped (shutdown waits for it).
    pub fn admit(&mut self, guard: InflightGuard) {
        self.inflight = Some(guard);
    }

    /// Keeps the body's share of the server's body budget until the request ends.
    pub fn hold_body_permit(&mut self, permit: OwnedSemaphorePermit) {
        self.body_permit = Some(permit);
    }

    pub fn record_usage(&mut self, usage: &Usage) {
        self.tokens = Tokens {
            prompt: usage.prompt_tokens,
            completion: usage.completion_tokens,
            cached_input: usage.cached_tokens(),
            cache_write: usage.cache_write_tokens(),
            reasoning: usage.reasoning_tokens(),
        };
        self.usage_reported = true;
    }

    /// The timeouts of the route taken; the defaults for an answer no upstream gave.
    pub fn timeouts(&self) -> crate::config::Timeouts {
        self.route
            .as_ref()
            .map(|r| *r.provider.timeouts())
            .unwrap_or_default()
    }

    pub fn provider_name(&self) -> Option<&str> {
        self.route.as_ref().map(|r| r.provider.name())
    }

    pub fn upstream_model(&self) -> Option<&str> {
        self.route.as_ref().map(|r| r.upstream_model.as_str())
    }

    /// Proxy time so far: everything except waiting on the upstream.
    pub fn overhead_now(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.upstream_time)
    }
}
