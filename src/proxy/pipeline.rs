//! `handle`: one proxied request, every phase in order.
//!
//! 1. Load the chain in force (once; the request runs to its end on it).
//! 2. `on_headers` of each module, from the headers alone (authentication): a refusal is answered
//!    at once, with nothing read and no trace row.
//! 3. Admission ([`super::admission`]): a place among the requests in flight (503 when full).
//! 4. Read the body, never past the chain's `max_body_bytes` (413), within the body timeout (408)
//!    and the server's budget of body bytes in flight (503); parse it into typed structs that keep
//!    unknown fields (400 naming the field). Then `on_request` of each module, in chain order:
//!    continue, answer directly, or refuse.
//! 5. Attempts: the plan a module left (routing: retries, fallbacks, breakers), else one attempt at
//!    the model's default route (404 for an unknown model). Each attempt rewrites the body for its
//!    provider (upstream model name; usage asked for on streams) and sends it through the
//!    provider's pooled client (502 unreachable, 504 timeout); a failed attempt goes back to the plan.
//! 6. A stream commits once its first content arrives (late commit), so a failure before that can
//!    still be retried; after it, failures become error events.
//! 7. Non-streamed: read the answer, record usage, `on_response`, reply ([`super::complete`]).
//!    Streamed: the response body is the relay ([`super::relay`]), which runs the stream
//!    watchers per event as it passes. A module's own answer takes the same two roads.
//! 8. `on_finish` of each module, always, in finish order: cost, ..., then the trace record.
//!
//! Steps 5 and 6 are in [`super::attempts`].

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use tracing::Instrument;

use super::admission::Admission;
use super::attempts::{Committed, attempt_loop};
use super::complete::{answered, error_response, stamp};
use super::{ProxyBody, RequestCtx, stream, usage};
use crate::modules::chain::hook_failed;
use crate::modules::{Chain, ChainHandle};
use crate::providers::ProviderRegistry;
use crate::request::ApiError;
use crate::request::{CanonicalAnswer, ErrorCode, Outcome, Verdict};
use crate::wire::openai::resource::ResourceError;
use crate::wire::openai::{Endpoint, Inbound, OperationRequest, ResourceRequest};

/// What every request shares.
pub struct Proxy {
    pub chain: ChainHandle,
    pub providers: Arc<ProviderRegistry>,
    pub admission: Admission,
}

/// How the request ended before any upstream call.
enum Early {
    Error(ApiError),
    /// A module answered.
    Answer(CanonicalAnswer),
}

impl From<ApiError> for Early {
    fn from(err: ApiError) -> Self {
        Early::Error(err)
    }
}

pub async fn handle(
    proxy: &Proxy,
    endpoint: Endpoint,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let (parts, body) = request.into_parts();
    // Boxed: the context is over a kilobyte, and the handler's future would otherwise hold it
    // several times over (the argument, its local, the guard's), and be moved whole.
    let ctx = Box::new(context_for(endpoint, parts));
    // Every log line of this request, streamed body and finish included, carries its id.
    let span = tracing::info_span!("request", request_id = %ctx.identity.request_id);
    handle_in_span(proxy, ctx, body).instrument(span).await
}

async fn handle_in_span(
    proxy: &Proxy,
    mut ctx: Box<RequestCtx>,
    body: Incoming,
) -> Response<ProxyBody> {
    let chain = proxy.chain.load_full();
    // Steps 2 and 3: nothing is read, counted in flight or traced for a client the gate refuses.
    if let Err(err) = admit(&chain, &proxy.admission, &mut ctx) {
        let response = error_response(&mut ctx, err);
        return stamp(response, &mut ctx);
    }
    let mut guard = FinishOnDrop {
        chain: chain.clone(),
        ctx: Some(ctx),
    };
    let Some(ctx) = guard.ctx.as_deref_mut() else {
        return ApiError::Internal {
            message: "request context missing".into(),
        }
        .into_response();
    };

    let committed = match prepare(&chain, &proxy.admission, ctx, body).await {
        Ok(()) => attempt_loop(&chain, &proxy.providers, ctx).await,
        Err(Early::Answer(answer)) => answered(&chain, ctx, answer).await,
        Err(Early::Error(err)) => Err(err),
    };
    let response = match committed {
        Ok(Committed::Stream { upstream, prefix }) => {
            // The relay task owns the context from here and finishes it.
            if let Some(ctx) = guard.ctx.take() {
                return stream::start(chain, *ctx, upstream, prefix);
            }
            return ApiError::Internal {
                message: "request context missing".into(),
            }
            .into_response();
        }
        Ok(Committed::Bytes(upstream)) => {
            if let Some(ctx) = guard.ctx.take() {
                return super::bytes_relay::start(chain, *ctx, upstream);
            }
            return ApiError::Internal {
                message: "request context missing".into(),
            }
            .into_response();
        }
        Ok(Committed::Complete(response)) => response,
        Err(err) => error_response(ctx, err),
    };
    let response = stamp(response, ctx);
    // Finishing inline costs a few microseconds of latency but no task spawn (and no wake-up
    // of another worker thread), which is most of what a spawn costs.
    finish(&chain, ctx).await;
    guard.ctx = None;
    response
}

/// The context of a request from its head alone (the listener puts the client's address in the
/// request's extensions).
pub fn context_for(endpoint: Endpoint, parts: hyper::http::request::Parts) -> RequestCtx {
    let client_addr = parts.extensions.get::<ClientAddr>().map(|a| a.0);
    let mut ctx = RequestCtx::new(
        endpoint,
        request_id(&parts.headers),
        parts.headers,
        client_addr,
    );
    ctx.request.uri = parts.uri;
    ctx.request.method = parts.method;
    ctx
}

/// The client's address, as the listener saw it.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Steps 2 and 3: every module's `on_headers` (authentication), then a place among the requests
/// in flight. Also the gate of the routes that are not proxied (`/v1/models` and the like), so
/// every route requires what proxied ones require.
pub fn admit(chain: &Chain, admission: &Admission, ctx: &mut RequestCtx) -> Result<(), ApiError> {
    for module in chain.modules() {
        match module.on_headers(ctx) {
            Ok(Verdict::Continue) => {}
            Ok(Verdict::Reject(err)) => {
                ctx.route.refused_by = Some(module.name());
                return Err(err);
            }
            Ok(Verdict::Answer(_)) => {
                return Err(ApiError::Internal {
                    message: format!("module {} answered before the body was read", module.name()),
                });
            }
            Err(err) if hook_failed(module.as_ref(), &err) => {
                return Err(ApiError::Internal {
                    message: err.to_string(),
                });
            }
            Err(_) => {}
        }
    }
    ctx.admit(admission.enter()?);
    Ok(())
}

/// Runs `on_finish` for a request whose handler was dropped before it finished (the client went
/// away mid-request), so that request is still traced, as cancelled.
pub(super) struct FinishOnDrop {
    chain: Arc<Chain>,
    ctx: Option<Box<RequestCtx>>,
}

impl FinishOnDrop {
    pub(super) fn new(chain: Arc<Chain>, ctx: RequestCtx) -> FinishOnDrop {
        FinishOnDrop {
            chain,
            ctx: Some(Box::new(ctx)),
        }
    }

    pub(super) fn ctx(&mut self) -> Option<&mut RequestCtx> {
        self.ctx.as_deref_mut()
    }

    /// The request finished on its own: nothing left to do on drop.
    pub(super) fn disarm(&mut self) {
        self.ctx = None;
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        let Some(mut ctx) = self.ctx.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let chain = self.chain.clone();
        ctx.result.error_class.get_or_insert(ErrorCode::Cancelled);
        if ctx.result.status == 0 {
            // nginx's "client closed request": nothing was sent.
            ctx.result.status = 499;
        }
        ctx.timings.overhead = ctx.overhead_now();
        let span = tracing::Span::current();
        runtime.spawn(async move { finish(&chain, &mut ctx).await }.instrument(span));
    }
}

/// Step 4: read, parse, run `on_request`.
async fn prepare(
    chain: &Chain,
    admission: &Admission,
    ctx: &mut RequestCtx,
    body: Incoming,
) -> Result<(), Early> {
    let (body, permit) = admission
        .read_body(body, &ctx.request.headers, chain.max_body_bytes())
        .await?;
    ctx.hold_body_permit(permit);
    parse_and_run(chain, ctx, body).await
}

/// Parses the body in the endpoint's format and runs `on_request`.
async fn parse_and_run(chain: &Chain, ctx: &mut RequestCtx, body: Bytes) -> Result<(), Early> {
    ctx.request.body = body;
    ctx.result.bytes_in = ctx.request.body.len() as u64;
    let parse_error = |e: crate::wire::openai::ParseError| match e.param {
        None => ApiError::InvalidJson { message: e.message },
        param => ApiError::InvalidField {
            param,
            message: e.message,
        },
    };
    let content_type = ctx
        .request
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut request = if ctx.request.endpoint.is_resource() {
        // Files and batches: the method and path say what is asked; a create's body is checked.
        let parsed = ResourceRequest::parse(
            ctx.request.endpoint,
            &ctx.request.method,
            &ctx.request.uri,
            content_type.as_deref(),
            &ctx.request.body,
        );
        match parsed {
            Ok(request) => Inbound::Resource(request),
            Err(ResourceError::NotServed(_)) => {
                return Err(ApiError::NotFound {
                    path: ctx.request.uri.path().to_string(),
                }
                .into());
            }
            Err(ResourceError::Invalid(e)) => return Err(parse_error(e).into()),
        }
    } else if ctx.request.endpoint.is_operation() {
        // Images, audio and the like: the content type tells a form from JSON.
        let content_type = content_type.as_deref().unwrap_or("application/json");
        Inbound::Operation(
            OperationRequest::parse(ctx.request.endpoint, content_type, &ctx.request.body)
                .map_err(parse_error)?,
        )
    } else if ctx.request.endpoint.is_openai() {
        Inbound::parse(ctx.request.endpoint, &ctx.request.body).map_err(parse_error)?
    } else {
        // Parsed once: the client's own JSON is kept for answers in its format and native calls.
        let mut value: serde_json::Value =
            serde_json::from_slice(&ctx.request.body).map_err(|e| ApiError::InvalidJson {
                message: format!("request body is not valid JSON: {e}"),
            })?;
        // Formats that name the model (and streaming) in the URL carry them into the body here.
        crate::wire::add_path_facts(ctx.request.endpoint, &ctx.request.uri, &mut value);
        let (request, refused) =
            Inbound::from_client_format(ctx.request.endpoint, &value).map_err(parse_error)?;
        if let Some(refused) = refused {
            // Kept for any provider but OpenAI itself.
            ctx.request.native_only = Some(ApiError::InvalidField {
                param: refused.param,
                message: refused.message,
            });
        }
        ctx.request.client_request = Some(Arc::new(value));
        request
    };
    ctx.request.requested_model = request.model().to_string();
    ctx.identity.user = request.user().map(String::from);
    ctx.request.stream = request.is_stream();
    ctx.request.client_wants_usage = request.client_wants_stream_usage();
    if !ctx.request.endpoint.is_openai() && !ctx.request.endpoint.is_resource() {
        if ctx.request.endpoint == Endpoint::Responses {
            ctx.request.response_id =
                Some(format!("resp_{}", crate::ids::uuid_v7().replace('-', "")));
        }
        // Other formats carry usage in their own final events: always ask for it, never strip it.
        request.request_stream_usage();
        ctx.request.client_wants_usage = true;
    }
    ctx.request.parsed = Some(request);

    for hooked in chain.requesting() {
        let module = &hooked.module;
        match hooked.on_request(ctx).await {
            Ok(Verdict::Continue) => {}
            Ok(Verdict::Reject(err)) => {
                ctx.route.refused_by = Some(module.name());
                return Err(err.into());
            }
            Ok(Verdict::Answer(answer)) => {
                ctx.route.answered_by = Some(module.name());
                return Err(Early::Answer(answer));
            }
            Err(err) if hook_failed(module.as_ref(), &err) => {
                return Err(ApiError::Internal {
                    message: err.to_string(),
                }
                .into());
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// A model call a module makes itself ([`super::internal`]): the same parse, `on_request`,
/// attempts and egress as a client's non-streamed request, without HTTP. The caller finishes
/// the context.
pub async fn run_internal(
    chain: &Chain,
    providers: &ProviderRegistry,
    ctx: &mut RequestCtx,
    body: Bytes,
) -> Result<Bytes, ApiError> {
    let committed = match parse_and_run(chain, ctx, body).await {
        Ok(()) if ctx.request.stream => Err(ApiError::InvalidField {
            param: Some("stream".into()),
            message: "an internal model call cannot stream".into(),
        }),
        Ok(()) => attempt_loop(chain, providers, ctx).await,
        Err(Early::Answer(answer)) => answered(chain, ctx, answer).await,
        Err(Early::Error(err)) => Err(err),
    };
    let response = match committed {
        Ok(Committed::Complete(response)) => response,
        Ok(Committed::Stream { .. } | Committed::Bytes(_)) => {
            return Err(ApiError::Internal {
                message: "an internal model call answered with a stream".into(),
            });
        }
        Err(err) => {
            let _ = error_response(ctx, err.clone());
            return Err(err);
        }
    };
    match response.into_body() {
        ProxyBody::Full(Some(body)) if ctx.result.status < 400 => Ok(body),
        ProxyBody::Full(Some(body)) => Err(ApiError::Upstream {
            status: StatusCode::from_u16(ctx.result.status).unwrap_or(StatusCode::BAD_GATEWAY),
            body,
            headers: Box::default(),
        }),
        _ => Err(ApiError::Internal {
            message: "an internal model call gave no answer".into(),
        }),
    }
}

/// Step 8: estimate usage if the upstream gave none, then every module's `on_finish`, in finish
/// order, with how the request ended.
pub async fn finish(chain: &Chain, ctx: &mut RequestCtx) {
    if !ctx.usage.reported && ctx.result.status < 400 && ctx.route.taken.is_some() {
        let model = ctx.upstream_model().unwrap_or_default().to_string();
        ctx.usage.tokens = usage::estimate(
            &model,
            ctx.request.parsed.as_ref(),
            &ctx.usage.completion_text,
        );
        ctx.usage.estimated = true;
    }
    let outcome = outcome(ctx);
    for hooked in chain.finishing() {
        hooked.on_finish(ctx, outcome).await;
    }
    let parts = std::mem::take(&mut ctx.usage.parts);
    let parts: Vec<RequestCtx> = parts.into_iter().filter_map(|p| part_ctx(ctx, p)).collect();
    for mut part in parts {
        for hooked in chain.finishing() {
            hooked.on_finish(&mut part, Outcome::Success).await;
        }
    }
    // The access line (debug: a busy proxy's info log stays quiet); the request span adds the id.
    tracing::debug!(
        status = ctx.result.status,
        model = %ctx.request.requested_model,
        provider = ctx.provider_name().unwrap_or("-"),
        latency_ms = ctx.timings.started.elapsed().as_millis() as u64,
        "request finished"
    );
}

/// A request inside the answer (a line of a batch's output): priced at batch prices, charged
/// to the same key and team, and traced as a request of its own, by the same finishing modules.
fn part_ctx(parent: &RequestCtx, part: crate::request::BilledPart) -> Option<RequestCtx> {
    let taken = parent.route.taken.as_ref()?;
    let mut ctx = RequestCtx::new(
        part.endpoint,
        crate::ids::uuid_v7(),
        HeaderMap::new(),
        parent.identity.client_addr,
    );
    ctx.identity.key_id.clone_from(&parent.identity.key_id);
    ctx.identity.grant.clone_from(&parent.identity.grant);
    ctx.request.requested_model.clone_from(&part.model);
    ctx.request.tags = vec![part.tag];
    ctx.route.taken = Some(crate::providers::Route {
        provider: taken.provider.clone(),
        upstream_model: part.model,
    });
    ctx.route.attempts = 1;
    ctx.route.credential.clone_from(&parent.route.credential);
    ctx.usage.tokens = part.tokens;
    ctx.usage.reported = true;
    ctx.usage.batch = true;
    ctx.result.status = 200;
    Some(ctx)
}

/// How the request ended, from what the context recorded.
fn outcome(ctx: &RequestCtx) -> Outcome {
    let status = ctx.result.status;
    if ctx.result.error_class == Some(ErrorCode::Cancelled) {
        return Outcome::Cancelled;
    }
    if let Some(by) = ctx.route.refused_by {
        return Outcome::Refused {
            by: Some(by),
            status,
        };
    }
    match ctx.result.error_class {
        None if status < 400 => Outcome::Success,
        Some(ErrorCode::UpstreamStreamError) => Outcome::UpstreamError { status },
        _ if ctx.route.attempts > 0 && ctx.timings.upstream_latency.is_some() => {
            Outcome::UpstreamError { status }
        }
        _ if (400..500).contains(&status) && status != 408 => Outcome::Refused { by: None, status },
        Some(class) if class.is_upstream() => Outcome::UpstreamError { status },
        _ => Outcome::Failed { status },
    }
}

/// The client's `x-request-id` when it is short and printable, else a new UUIDv7.
fn request_id(headers: &HeaderMap) -> String {
    request_id_from(headers.get("x-request-id"))
}

/// [`request_id`] from the header's value, when there was one.
pub fn request_id_from(client: Option<&hyper::header::HeaderValue>) -> String {
    client
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(crate::ids::uuid_v7)
}
