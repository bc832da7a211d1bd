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
//! 7. Non-streamed: read the answer, record usage, `on_response`, reply. Streamed: hand the body to
//!    the relay task ([`super::stream`]), which runs `on_chunk` per event as it passes.
//! 8. `on_finish` of each module, always, off the response path: cost, then the trace record.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;

use super::admission::Admission;
use super::transcode::UpstreamBody;
use super::{ProxyBody, RequestCtx, egress, stream, usage};
use crate::modules::chain::hook_failed;
use crate::modules::{Answer, Chain, ChainHandle};
use crate::providers::{NativeCall, ProviderRegistry, Route, UpstreamCall, UpstreamError};
use crate::request::ApiError;
use crate::request::attempt::{
    Attempt, AttemptFailure, AttemptPlan, FailureKind, SinglePlan, classify_status,
    parse_retry_after,
};
use crate::request::{CanonicalAnswer, ErrorCode, Outcome, Verdict};
use crate::wire::openai::{Endpoint, Inbound, Usage};

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
    let chain = proxy.chain.load_full();
    let (parts, body) = request.into_parts();
    let mut ctx = context_for(endpoint, parts);
    // Steps 2 and 3: nothing is read, counted in flight or traced for a client the gate refuses.
    if let Err(err) = admit(&chain, &proxy.admission, &mut ctx) {
        let response = error_response(&mut ctx, err);
        return stamp(response, &mut ctx);
    }
    let mut guard = FinishOnDrop {
        chain: chain.clone(),
        ctx: Some(ctx),
    };
    let Some(ctx) = guard.ctx.as_mut() else {
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
                return stream::start(chain, ctx, upstream, prefix);
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
    RequestCtx::new(
        endpoint,
        request_id(&parts.headers),
        parts.headers,
        client_addr,
    )
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
struct FinishOnDrop {
    chain: Arc<Chain>,
    ctx: Option<RequestCtx>,
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
        runtime.spawn(async move { finish(&chain, &mut ctx).await });
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
    let mut request = if ctx.request.endpoint.is_openai() {
        Inbound::parse(ctx.request.endpoint, &ctx.request.body).map_err(parse_error)?
    } else {
        // Parsed once: the client's own JSON is kept for answers in its format and native calls.
        let value: serde_json::Value =
            serde_json::from_slice(&ctx.request.body).map_err(|e| ApiError::InvalidJson {
                message: format!("request body is not valid JSON: {e}"),
            })?;
        let (request, refused) =
            Inbound::from_client_format(ctx.request.endpoint, &value).map_err(parse_error)?;
        if let Some(refused) = refused {
            // Kept for any provider but OpenAI itself.
            ctx.slots.insert(Arc::new(refused));
        }
        ctx.request.client_request = Some(Arc::new(value));
        request
    };
    ctx.request.requested_model = request.model().to_string();
    ctx.request.stream = request.is_stream();
    ctx.request.client_wants_usage = request.client_wants_stream_usage();
    if !ctx.request.endpoint.is_openai() {
        if ctx.request.endpoint == Endpoint::Responses {
            ctx.request.response_id =
                Some(format!("resp_{}", crate::ids::uuid_v7().replace('-', "")));
        }
        // Other formats carry usage in their own final events: always ask for it, never strip it.
        request.request_stream_usage();
        ctx.request.client_wants_usage = true;
    }
    ctx.request.parsed = Some(request);

    for module in chain.modules() {
        match module.on_request(ctx).await {
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

/// A module's canonical answer, through the same egress as an upstream's: as a stream of
/// canonical events when the client asked for one, else as one complete answer.
async fn answered(
    chain: &Chain,
    ctx: &mut RequestCtx,
    answer: CanonicalAnswer,
) -> Result<Committed, ApiError> {
    let encode = |value: &serde_json::Value| Bytes::from(format!("data: {value}\n\n"));
    let (body, content_type) = if ctx.request.stream {
        let mut frames: Vec<Bytes> = answer.into_chunks().iter().map(encode).collect();
        frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
        (UpstreamBody::canned(frames), "text/event-stream")
    } else {
        let complete = answer.into_complete();
        (
            UpstreamBody::canned(vec![Bytes::from(complete.to_string())]),
            "application/json",
        )
    };
    let mut upstream = Response::new(body);
    upstream
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if ctx.request.stream {
        return Ok(Committed::Stream {
            upstream,
            prefix: Vec::new(),
        });
    }
    complete(chain, ctx, upstream, None)
        .await
        .map(Committed::Complete)
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
        Ok(Committed::Stream { .. }) => {
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

/// An attempt whose answer goes to the client.
enum Committed {
    Complete(Response<ProxyBody>),
    /// A stream, with the frames already read while waiting for its first content.
    Stream {
        upstream: Response<UpstreamBody>,
        prefix: Vec<Bytes>,
    },
}

/// Steps 5 to 7: ask the plan (a module's, else the model's default route) for attempts until one
/// commits or the plan gives up.
async fn attempt_loop(
    chain: &Chain,
    providers: &ProviderRegistry,
    ctx: &mut RequestCtx,
) -> Result<Committed, ApiError> {
    let mut plan: Box<dyn AttemptPlan> = match ctx.route.plan.take() {
        Some(plan) => plan,
        None => Box::new(SinglePlan::resolve(
            providers,
            &ctx.request.requested_model,
        )?),
    };
    let mut last: Option<AttemptFailure> = None;
    loop {
        let Some(attempt) = plan.next(last.as_ref())? else {
            return Err(last.map(|f| f.error).unwrap_or(ApiError::Internal {
                message: "no upstream attempt was made".into(),
            }));
        };
        if !attempt.delay.is_zero() {
            tokio::time::sleep(attempt.delay).await;
        }
        ctx.route.attempts += 1;
        ctx.route.taken = Some(attempt.route.clone());
        ctx.route.deployment = Some(attempt.deployment.clone());
        ctx.route.variant.clone_from(&attempt.variant);
        let late_commit = attempt.late_commit.filter(|_| plan.has_alternatives());
        match try_once(chain, ctx, &attempt, late_commit).await {
            Ok(committed) => {
                plan.committed(ctx);
                return Ok(committed);
            }
            Err(failure) if failure.kind == FailureKind::Final => return Err(failure.error),
            Err(failure) => {
                tracing::debug!(deployment = %attempt.deployment, kind = ?failure.kind, "attempt failed");
                last = Some(failure);
            }
        }
    }
}

/// One upstream call, classified.
async fn try_once(
    chain: &Chain,
    ctx: &mut RequestCtx,
    attempt: &Attempt,
    late_commit: Option<std::time::Duration>,
) -> Result<Committed, AttemptFailure> {
    let route = &attempt.route;
    let final_error = |error: ApiError| AttemptFailure {
        kind: FailureKind::Final,
        error,
    };
    // A client whose format the provider takes as it is: its request goes untranslated (model
    // name aside), so what the canonical form cannot carry arrives untouched.
    let native = route
        .provider
        .native(ctx.request.endpoint, &route.upstream_model);
    ctx.request.native = native.is_some();
    if !ctx.request.native
        && let Some(refused) = ctx.slots.get::<Arc<crate::wire::openai::ParseError>>()
    {
        return Err(final_error(ApiError::InvalidField {
            param: refused.param.clone(),
            message: refused.message.clone(),
        }));
    }
    if !ctx.request.native
        && let Some(unknown) = ctx
            .slots
            .get::<crate::modules::responses::UnknownPrevious>()
    {
        return Err(final_error(ApiError::InvalidField {
            param: Some("previous_response_id".into()),
            message: format!("no stored response with id {:?}", unknown.0),
        }));
    }
    let upstream_body = match &native {
        Some(native) => native_body(ctx, native.as_ref()),
        None if route
            .provider
            .passes_openai_body(ctx.request.parsed.as_ref()) =>
        {
            upstream_body(ctx, &route.upstream_model)
        }
        None => translated_body(ctx, route),
    }
    .map_err(final_error)?;
    let upstream_request = route
        .provider
        .build_request(
            &UpstreamCall {
                endpoint: if ctx.request.native && ctx.request.endpoint == Endpoint::Responses {
                    Endpoint::Responses
                } else {
                    ctx.request.endpoint.upstream()
                },
                model: &route.upstream_model,
                stream: ctx.request.stream,
                native: ctx.request.native,
            },
            upstream_body,
            &ctx.request.headers,
        )
        .map_err(|e| final_error(ApiError::from(e)))?;
    let sent = Instant::now();
    let result = route
        .provider
        .client()
        .send(
            route.provider.name(),
            upstream_request,
            route.provider.timeouts().first_byte,
        )
        .await;
    ctx.timings.upstream_time += sent.elapsed();
    ctx.timings.upstream_latency = Some(ctx.timings.started.elapsed());
    let upstream = result.map_err(|e| {
        let kind = match e {
            UpstreamError::Connect { .. } => FailureKind::Connect,
            UpstreamError::Timeout { .. } => FailureKind::Timeout,
            UpstreamError::Protocol { .. } => FailureKind::Protocol,
            UpstreamError::Build { .. } => FailureKind::Final,
        };
        AttemptFailure {
            kind,
            error: ApiError::from(e),
        }
    })?;

    let status = upstream.status();
    let (parts, body) = upstream.into_parts();
    let streaming = ctx.request.stream && status.is_success();
    let body = match &native {
        Some(native) if streaming => {
            ctx.request.native_decoder = Some(native.side_decoder());
            match native.reframer() {
                Some(reframer) => UpstreamBody::reframed(body, reframer),
                None => UpstreamBody::Plain(body),
            }
        }
        None if streaming => match route.provider.chat_stream_decoder(&route.upstream_model) {
            Some(decoder) => UpstreamBody::transcoded(body, decoder),
            None => UpstreamBody::Plain(body),
        },
        _ => UpstreamBody::Plain(body),
    };
    let upstream = Response::from_parts(parts, body);
    if ctx.request.stream && status.is_success() {
        // A native stream is not read ahead: the relay's side decoder is what understands it.
        let late_commit = late_commit.filter(|_| !ctx.request.native);
        return match late_commit {
            None => Ok(Committed::Stream {
                upstream,
                prefix: Vec::new(),
            }),
            Some(window) => {
                let (upstream, prefix) = stream::wait_for_content(ctx, upstream, window).await?;
                Ok(Committed::Stream { upstream, prefix })
            }
        };
    }
    match complete(chain, ctx, upstream, native.as_deref()).await {
        Ok(response) => Ok(Committed::Complete(response)),
        Err(ApiError::Upstream {
            status,
            body,
            headers,
        }) => {
            let retry_after = parse_retry_after(&headers);
            let kind = classify_status(status.as_u16(), &body, retry_after);
            Err(AttemptFailure {
                kind,
                error: ApiError::Upstream {
                    status,
                    body,
                    headers,
                },
            })
        }
        Err(error) => Err(final_error(error)),
    }
}

/// The client's own body, for a provider that speaks the client's format, as the native call
/// wants it (upstream model named).
fn native_body(ctx: &RequestCtx, native: &dyn NativeCall) -> Result<Bytes, ApiError> {
    let body = native.body(
        ctx.request
            .client_request
            .as_deref()
            .cloned()
            .unwrap_or_default(),
    );
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal {
            message: format!("cannot encode the request: {e}"),
        })
}

/// The provider's native body for a provider of another dialect, from the canonical request.
fn translated_body(ctx: &RequestCtx, route: &Route) -> Result<Bytes, ApiError> {
    let untranslatable = |e: crate::providers::Untranslatable| ApiError::InvalidField {
        message: format!(
            "provider {} cannot take this request: {e}",
            route.provider.name()
        ),
        param: Some(e.param),
    };
    let encode_error = |e: serde_json::Error| ApiError::Internal {
        message: format!("cannot encode the canonical request: {e}"),
    };
    match &ctx.request.parsed {
        Some(Inbound::Chat(request)) => {
            let mut chat = serde_json::to_value(request).map_err(encode_error)?;
            if ctx.request.stream {
                // Usage is always asked for (the relay withholds it from clients that did not ask).
                chat["stream_options"]["include_usage"] = serde_json::Value::Bool(true);
            }
            route
                .provider
                .translate_chat(&chat, &route.upstream_model)
                .map_err(untranslatable)
        }
        Some(Inbound::Embedding(request)) => {
            let value = serde_json::to_value(request).map_err(encode_error)?;
            route
                .provider
                .translate_embeddings(&value, &route.upstream_model)
                .map_err(untranslatable)
        }
        _ => Err(ApiError::InvalidField {
            param: Some("model".into()),
            message: format!(
                "provider {} does not serve {}",
                route.provider.name(),
                ctx.request.endpoint.as_str()
            ),
        }),
    }
}

/// The body as the provider should get it. The client's bytes are reused when nothing changes
/// (same model name, and no usage to ask for), which saves a serialization on the common path.
fn upstream_body(ctx: &mut RequestCtx, upstream_model: &str) -> Result<Bytes, ApiError> {
    let Some(request) = ctx.request.parsed.as_mut() else {
        return Err(ApiError::Internal {
            message: "request was not parsed".into(),
        });
    };
    let rename = request.model() != upstream_model;
    let ask_usage = ctx.request.stream && !ctx.request.client_wants_usage;
    if !rename && !ask_usage && ctx.request.endpoint.is_openai() {
        return Ok(ctx.request.body.clone());
    }
    let mut request = request.clone();
    if rename {
        request.set_model(upstream_model);
    }
    if ask_usage {
        request.request_stream_usage();
    }
    request.to_bytes().map_err(|e| ApiError::Internal {
        message: format!("cannot encode the upstream request: {e}"),
    })
}

#[derive(Deserialize)]
struct UsageEnvelope {
    #[serde(default)]
    usage: Option<Usage>,
}

/// Step 7 for a complete answer (or an upstream error, passed through).
async fn complete(
    chain: &Chain,
    ctx: &mut RequestCtx,
    upstream: Response<UpstreamBody>,
    native: Option<&dyn NativeCall>,
) -> Result<Response<ProxyBody>, ApiError> {
    let status = upstream.status();
    let headers = passthrough_headers(upstream.headers());
    let provider = ctx.provider_name().unwrap_or_default().to_string();
    let total = ctx.timeouts().total;
    let deadline = tokio::time::Instant::from_std(ctx.timings.started + total);
    let reading = Instant::now();
    let collected = tokio::time::timeout_at(deadline, upstream.into_body().collect()).await;
    ctx.timings.upstream_time += reading.elapsed();
    let body = match collected {
        Err(_) => {
            return Err(ApiError::UpstreamTimeout {
                message: format!(
                    "provider {provider} did not finish its answer within {} ms",
                    total.as_millis()
                ),
            });
        }
        Ok(Err(e)) => {
            return Err(ApiError::UpstreamProtocol {
                message: format!("provider {provider} broke off its answer: {e}"),
            });
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let foreign = ctx
        .route
        .taken
        .as_ref()
        .filter(|r| r.provider.translates_answers())
        .map(|r| r.provider.clone());
    if !status.is_success() {
        // Another format's error body, in the OpenAI shape like every other error.
        let body = match &foreign {
            Some(provider) if !native.is_some_and(|n| n.errors_fit_client()) => {
                provider.translate_error(status.as_u16(), &body)
            }
            _ => body,
        };
        return Err(ApiError::Upstream {
            status,
            body,
            headers: Box::new(headers),
        });
    }
    // A native answer goes to the client as it came; its canonical form serves usage only.
    let native_answer = ctx.request.native.then(|| body.clone());
    let body = match (native, &foreign) {
        (Some(native), _) => {
            native
                .canonical_answer(body)
                .map_err(|e| ApiError::UpstreamProtocol {
                    message: format!(
                        "provider {provider} answered with a body that does not translate: {e}"
                    ),
                })?
        }
        (None, Some(foreign)) if ctx.request.endpoint == Endpoint::Embeddings => {
            let request = match &ctx.request.parsed {
                Some(Inbound::Embedding(r)) => serde_json::to_value(r).unwrap_or_default(),
                _ => serde_json::Value::Null,
            };
            foreign
                .translate_embeddings_answer(
                    &body,
                    ctx.upstream_model().unwrap_or_default(),
                    &request,
                )
                .map_err(|e| ApiError::UpstreamProtocol {
                    message: format!(
                        "provider {provider} answered with a body that does not translate: {e}"
                    ),
                })?
        }
        (None, Some(foreign)) => foreign
            .translate_answer(&body, ctx.upstream_model().unwrap_or_default())
            .map_err(|e| ApiError::UpstreamProtocol {
                message: format!(
                    "provider {provider} answered with a body that does not translate: {e}"
                ),
            })?,
        (None, None) => body,
    };
    let parsed = if ctx.request.native && ctx.request.endpoint == Endpoint::Responses {
        // A Responses object answering a Responses client: its usage has its own field names.
        serde_json::from_slice::<serde_json::Value>(&body).map(|response| {
            ctx.record_usage(&Usage::from_responses(&response["usage"]));
            ctx.request.response_id = response["id"].as_str().map(String::from);
            ctx.result.client_answer = Some(response);
            UsageEnvelope { usage: None }
        })
    } else {
        serde_json::from_slice::<UsageEnvelope>(&body)
    };
    match parsed {
        Ok(UsageEnvelope { usage: None }) if ctx.usage.reported => {}
        // An embeddings answer that counts nothing (Gemini's batch API) is counted by the tokenizer.
        Ok(UsageEnvelope { usage: Some(usage) })
            if usage.prompt_tokens == 0 && ctx.request.endpoint == Endpoint::Embeddings => {}
        Ok(UsageEnvelope { usage: Some(usage) }) => ctx.record_usage(&usage),
        Ok(UsageEnvelope { usage: None }) => ctx.usage.completion_text = completion_text(&body),
        Err(_) => {
            return Err(ApiError::UpstreamProtocol {
                message: format!("provider {provider} answered with a body that is not valid JSON"),
            });
        }
    }
    let mut answer = Answer {
        status: status.as_u16(),
        body,
    };
    for module in chain.modules() {
        if let Err(err) = module.on_response(ctx, &mut answer).await
            && hook_failed(module.as_ref(), &err)
        {
            return Err(ApiError::Internal {
                message: err.to_string(),
            });
        }
    }
    ctx.result.status = answer.status;
    let body = match native_answer {
        Some(native) => Ok(native),
        None => egress::answer(ctx, answer.body),
    }
    .map_err(|e| ApiError::Internal {
        message: format!("cannot express the answer in the client's format: {e}"),
    })?;
    ctx.result.bytes_out = body.len() as u64;
    Ok(json_response(
        StatusCode::from_u16(answer.status).unwrap_or(status),
        body,
        headers,
    ))
}

/// The assistant text of a complete answer, for estimation when it carries no usage.
fn completion_text(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let mut text = String::new();
    for choice in value["choices"].as_array().into_iter().flatten() {
        if let Some(t) = choice["message"]["content"]
            .as_str()
            .or_else(|| choice["text"].as_str())
        {
            text.push_str(t);
        }
        for call in choice["message"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            text.push_str(call["function"]["name"].as_str().unwrap_or_default());
            text.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    text
}

/// Whether the provider's own error bodies are already in the client's shape (a native call that
/// says so), so they pass through untranslated.
fn provider_errors_fit_client(ctx: &RequestCtx) -> bool {
    ctx.request.native
        && ctx.route.taken.as_ref().is_some_and(|r| {
            r.provider
                .native(ctx.request.endpoint, &r.upstream_model)
                .is_some_and(|n| n.errors_fit_client())
        })
}

fn error_response(ctx: &mut RequestCtx, err: ApiError) -> Response<ProxyBody> {
    ctx.result.status = err.status().as_u16();
    ctx.result.error_class = Some(err.error_code());
    let status = err.status().as_u16();
    let from_provider = matches!(err, ApiError::Upstream { .. });
    let mut response = err.into_response();
    let keep_as_is =
        ctx.request.endpoint.is_openai() || (from_provider && provider_errors_fit_client(ctx));
    if !keep_as_is && let ProxyBody::Full(Some(body)) = response.body_mut() {
        *body = egress::error(ctx.request.endpoint, status, body.clone());
    }
    ctx.result.bytes_out = hyper::body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    response
}

pub fn json_response(status: StatusCode, body: Bytes, headers: HeaderMap) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    response
}

/// Adds `x-request-id` and `x-stockyard-overhead-ms` (the proxy's own time, upstream excluded).
pub fn stamp(mut response: Response<ProxyBody>, ctx: &mut RequestCtx) -> Response<ProxyBody> {
    ctx.timings.overhead = ctx.overhead_now();
    let headers = response.headers_mut();
    if let Some(deployment) = &ctx.route.deployment
        && let Ok(value) = HeaderValue::from_str(deployment)
    {
        headers.insert(HeaderName::from_static("x-stockyard-deployment"), value);
        headers.insert(
            HeaderName::from_static("x-stockyard-attempts"),
            HeaderValue::from(ctx.route.attempts),
        );
    }
    if let Ok(id) = HeaderValue::from_str(&ctx.identity.request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), id);
    }
    let overhead_ms = format!("{:.3}", ctx.timings.overhead.as_secs_f64() * 1000.0);
    if let Ok(value) = HeaderValue::from_str(&overhead_ms) {
        headers.insert(HeaderName::from_static("x-stockyard-overhead-ms"), value);
    }
    response
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
    for module in chain.finishing() {
        module.on_finish(ctx, outcome).await;
    }
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
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(crate::ids::uuid_v7)
}

/// Upstream headers a client should see: content type, `retry-after`, rate-limit state (OpenAI's
/// `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`), and the provider's processing headers.
pub fn passthrough_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in upstream {
        let n = name.as_str();
        if n == "content-type"
            || n == "retry-after"
            || n == "retry-after-ms"
            || n.starts_with("x-ratelimit-")
            || n.starts_with("anthropic-ratelimit-")
            || n.starts_with("openai-")
        {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headers_of_every_provider_pass_through() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-remaining-requests", "9"),
            ("anthropic-ratelimit-tokens-remaining", "1000"),
            ("retry-after", "3"),
            ("set-cookie", "secret=1"),
            ("content-type", "application/json"),
        ] {
            upstream.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let kept = passthrough_headers(&upstream);
        assert_eq!(kept.len(), 4);
        assert!(kept.get("set-cookie").is_none());
        assert_eq!(kept["anthropic-ratelimit-tokens-remaining"], "1000");
    }
}
