//! `RequestCtx`: what one request knows as it moves through the chain, in a few typed parts that
//! say who asked ([`Identity`]), what was asked ([`RequestParts`]), where it went
//! ([`RouteState`]), what it used and cost ([`UsageCost`]), when things happened ([`Timings`]) and
//! how it ended ([`ResultFacts`]). State private to one module goes in `slots`, a type map.

use std::net::IpAddr;
use std::sync::Arc;
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
    pub identity: Identity,
    pub request: RequestParts,
    pub route: RouteState,
    pub usage: UsageCost,
    pub timings: Timings,
    pub result: ResultFacts,
    pub slots: hyper::http::Extensions,
    /// Held from admission (past the header gate) until the last hook ran.
    inflight: Option<InflightGuard>,
    /// The share of the server's body budget this request's body holds.
    body_permit: Option<OwnedSemaphorePermit>,
}

/// Who asked.
pub struct Identity {
    pub request_id: String,
    /// The client's address, when the listener knows it.
    pub client_addr: Option<IpAddr>,
    /// Short id of the client key that authenticated (a hash prefix, never the key).
    pub key_id: Option<String>,
    /// What a virtual key may do (budgets, limits, models, team); `None` for static keys and in
    /// local mode.
    pub grant: Option<Arc<super::grant::Grant>>,
    /// The `user` field of the request body, when the client sent one.
    pub user: Option<String>,
    /// For a model call a module made itself: that module.
    pub internal: Option<&'static str>,
    /// How many internal calls deep (0 for a client's request).
    pub internal_depth: u8,
}

/// What was asked, as received and as parsed.
pub struct RequestParts {
    pub endpoint: Endpoint,
    /// The request's URI: some formats name the model and streaming in the path (Gemini's
    /// `models/{model}:streamGenerateContent?alt=sse`).
    pub uri: hyper::Uri,
    /// The request's method: files and batches are read and deleted, not only posted.
    pub method: hyper::Method,
    pub headers: HeaderMap,
    /// The request body as received.
    pub body: Bytes,
    /// The body in the canonical form.
    pub parsed: Option<Inbound>,
    /// The request as the client wrote it, for formats answered in their own shape
    /// (`/v1/messages`, `/v1/responses`).
    pub client_request: Option<Arc<serde_json::Value>>,
    /// The model the client asked for (before routing).
    pub requested_model: String,
    pub stream: bool,
    pub client_wants_usage: bool,
    /// The client speaks the provider's own format: request and answer pass through as they are.
    pub native: bool,
    /// For a native stream: the provider's decoder, run beside the pass-through for usage.
    pub native_decoder: Option<Box<dyn crate::providers::ChatStreamDecoder>>,
    /// The id of a Responses answer, chosen before the call.
    pub response_id: Option<String>,
    /// Why only a provider taking the client's format natively can serve this request (a feature
    /// only it has, an id only it may know); any other route refuses with this error.
    pub native_only: Option<super::error::ApiError>,
    /// Tags of the request (the `tags` module: headers, key metadata, rules), for the modules
    /// that choose by them (`route_rules`) and for the trace and spend reports.
    pub tags: Vec<String>,
    /// A module changed the canonical request in a way the client's own JSON does not show (a
    /// trimmed conversation, a rendered template): no provider may take the client's body as it
    /// is, so the request goes through the canonical form.
    pub canonical_only: bool,
}

/// Where the request went, or who answered instead.
#[derive(Default)]
pub struct RouteState {
    /// The route of the attempt that answered (or was last tried).
    pub taken: Option<Route>,
    /// How the upstream is to be tried; left by a module (routing), else one default attempt.
    pub plan: Option<Box<dyn AttemptPlan>>,
    /// Upstream calls made so far.
    pub attempts: u32,
    /// The deployment that answered (or was last tried).
    pub deployment: Option<String>,
    /// A/B variant, when the route split by a request tag.
    pub variant: Option<String>,
    /// The module that answered in place of the upstream, if one did.
    pub answered_by: Option<&'static str>,
    /// The module that refused the request, if one did.
    pub refused_by: Option<&'static str>,
    /// The model asked for after alias resolution (left by routing), for modules that key on
    /// what will answer rather than on what the client wrote (a cache).
    pub target_model: Option<String>,
    /// The `route_rules` rule that chose the model, if one fired.
    pub rule: Option<String>,
    /// The prompt template rendered into the request, `name@version` plus `#variant` under an
    /// A/B split.
    pub prompt: Option<String>,
    /// The provider credential to send with (a stored credential's id, or `config`), when an
    /// object the provider holds was made with it; after the call, the one used.
    pub credential: Option<String>,
}

/// What the answer used and what it cost.
#[derive(Default)]
pub struct UsageCost {
    pub tokens: Tokens,
    /// Images, audio seconds, characters, queries: what operations bill besides tokens.
    pub units: crate::cost::Units,
    /// A price-file name more specific than the model's, tried first (an image's
    /// `hd/1024-x-1024/dall-e-3`).
    pub price_name: Option<String>,
    /// Billed at batch prices.
    pub batch: bool,
    /// Whether the upstream reported usage (else `tokens` are estimated at finish).
    pub reported: bool,
    pub estimated: bool,
    /// Completion text seen in the answer, kept for estimation when no usage arrives.
    pub completion_text: String,
    pub cost_nanos: i64,
    pub price_known: bool,
    /// What an answer given from a cache saved: the price the upstream call would have had.
    pub saved_nanos: i64,
    /// Usage the answer reports for other requests (a batch's results): at finish each is
    /// priced and traced as a request of its own, at batch prices.
    pub parts: Vec<BilledPart>,
}

/// One request's usage inside an answer (a line of a batch's output).
#[derive(Clone, Debug)]
pub struct BilledPart {
    pub endpoint: Endpoint,
    pub model: String,
    pub tokens: Tokens,
    /// Put on the part's trace (`batch:<id>`), so a batch's requests can be found together.
    pub tag: String,
}

/// When things happened.
pub struct Timings {
    pub started: Instant,
    /// Wall-clock start, milliseconds since the epoch.
    pub ts_ms: i64,
    /// Time spent waiting on the upstream (headers and body), excluded from overhead.
    pub upstream_time: Duration,
    /// Time from start to the upstream's response head.
    pub upstream_latency: Option<Duration>,
    pub ttft: Option<Duration>,
    pub overhead: Duration,
}

/// How the request ended, as the client saw it.
#[derive(Default)]
pub struct ResultFacts {
    pub status: u16,
    /// `None` on success; why it failed otherwise.
    pub error_class: Option<ErrorCode>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The answer in the client's format, when a module keeps it (stored Responses).
    pub client_answer: Option<serde_json::Value>,
    /// Headers modules add to the response, whatever it is (an answer, an error, a stream's
    /// head); each name given here replaces the same name from the upstream.
    pub response_headers: HeaderMap,
    /// What a response cache did: `hit`, `semantic-hit`, `miss` or `skip` (`None`: no cache ran).
    pub cache: Option<&'static str>,
}

impl RequestCtx {
    pub fn new(
        endpoint: Endpoint,
        request_id: String,
        headers: HeaderMap,
        client_addr: Option<IpAddr>,
    ) -> RequestCtx {
        RequestCtx {
            identity: Identity {
                request_id,
                client_addr,
                key_id: None,
                grant: None,
                user: None,
                internal: None,
                internal_depth: 0,
            },
            request: RequestParts {
                endpoint,
                uri: hyper::Uri::default(),
                method: hyper::Method::POST,
                headers,
                body: Bytes::new(),
                parsed: None,
                client_request: None,
                requested_model: String::new(),
                stream: false,
                client_wants_usage: false,
                native: false,
                native_decoder: None,
                response_id: None,
                native_only: None,
                tags: Vec::new(),
                canonical_only: false,
            },
            route: RouteState::default(),
            usage: UsageCost::default(),
            timings: Timings {
                started: Instant::now(),
                ts_ms: crate::store::now_ms(),
                upstream_time: Duration::ZERO,
                upstream_latency: None,
                ttft: None,
                overhead: Duration::ZERO,
            },
            result: ResultFacts::default(),
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
        self.usage.tokens = Tokens {
            prompt: usage.prompt_tokens,
            completion: usage.completion_tokens,
            cached_input: usage.cached_tokens(),
            cache_write: usage.cache_write_tokens(),
            reasoning: usage.reasoning_tokens(),
        };
        self.usage.reported = true;
    }

    /// The timeouts of the route taken; the defaults for an answer no upstream gave.
    pub fn timeouts(&self) -> crate::config::Timeouts {
        self.route
            .taken
            .as_ref()
            .map(|r| *r.provider.timeouts())
            .unwrap_or_default()
    }

    pub fn provider_name(&self) -> Option<&str> {
        self.route.taken.as_ref().map(|r| r.provider.name())
    }

    pub fn upstream_model(&self) -> Option<&str> {
        self.route.taken.as_ref().map(|r| r.upstream_model.as_str())
    }

    /// After a module changed `request.parsed`: re-encodes the body the upstream (and the trace)
    /// gets from it, and keeps the client's own JSON, which no longer says the same, from going
    /// upstream natively.
    pub fn request_edited(&mut self) -> Result<(), serde_json::Error> {
        if let Some(parsed) = &self.request.parsed {
            self.request.body = parsed.to_bytes()?;
        }
        self.request.canonical_only = true;
        Ok(())
    }

    /// Proxy time so far: everything except waiting on the upstream.
    pub fn overhead_now(&self) -> Duration {
        self.timings
            .started
            .elapsed()
            .saturating_sub(self.timings.upstream_time)
    }
}
