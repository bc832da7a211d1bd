//! Steps 5 and 6 of a request: attempts. The plan a module left (routing: retries, fallbacks,
//! breakers), else one attempt at the model's default route, gives the next attempt after each
//! failure; each attempt builds the provider's body (native, passed through with a targeted edit,
//! or translated), sends it, and classifies what came back. A stream commits at its first content
//! (late commit) when the plan has alternatives.

use std::time::Instant;

use bytes::Bytes;
use hyper::Response;

use super::complete::complete;
use super::transcode::UpstreamBody;
use super::{ProxyBody, RequestCtx, stream};
use crate::modules::Chain;
use crate::providers::{NativeCall, ProviderRegistry, Route, UpstreamCall, UpstreamError};
use crate::request::ApiError;
use crate::request::attempt::{
    Attempt, AttemptFailure, AttemptPlan, FailureKind, SinglePlan, classify_status,
    parse_retry_after,
};
use crate::wire::openai::{Endpoint, Inbound};

/// An attempt whose answer goes to the client.
pub(super) enum Committed {
    Complete(Response<ProxyBody>),
    /// A stream, with the frames already read while waiting for its first content.
    Stream {
        upstream: Response<UpstreamBody>,
        prefix: Vec<Bytes>,
    },
    /// Bytes relayed as they arrive (speech audio), not events.
    Bytes(Response<UpstreamBody>),
}

/// Steps 5 to 7: ask the plan (a module's, else the model's default route) for attempts until one
/// commits or the plan gives up.
pub(super) async fn attempt_loop(
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
    let native = if ctx.request.canonical_only || ctx.request.endpoint.is_resource() {
        None
    } else {
        route
            .provider
            .native(ctx.request.endpoint, &route.upstream_model)
            .filter(|_| {
                crate::wire::native_allowed(
                    ctx.request.endpoint,
                    &ctx.request.uri,
                    ctx.request.stream,
                )
            })
    };
    ctx.request.native = native.is_some();
    if !ctx.request.native
        && let Some(refused) = &ctx.request.native_only
    {
        return Err(final_error(refused.clone()));
    }
    let endpoint = ctx.request.endpoint;
    if (endpoint.is_operation() || endpoint.is_resource()) && !route.provider.serves(endpoint) {
        return Err(final_error(ApiError::InvalidField {
            param: Some("model".into()),
            message: format!(
                "provider {} does not serve {} (model {:?}); route this model to a provider that does",
                route.provider.name(),
                endpoint.path().trim_start_matches('/'),
                ctx.request.requested_model
            ),
        }));
    }
    let upstream_body = match &native {
        Some(native) => native_body(ctx, native.as_ref()),
        None if endpoint.is_operation() => operation_body(ctx, route),
        None if endpoint.is_resource() => Ok(ctx.request.body.clone()),
        None if route
            .provider
            .passes_openai_body(ctx.request.parsed.as_ref()) =>
        {
            upstream_body(ctx, &route.upstream_model)
        }
        None => translated_body(ctx, route),
    }
    .map_err(final_error)?;
    let content_type = match &ctx.request.parsed {
        Some(Inbound::Operation(op)) if endpoint.is_multipart() => Some(op.content_type()),
        Some(Inbound::Resource(r)) => r.content_type.clone(),
        _ => None,
    };
    let resource = match &ctx.request.parsed {
        Some(Inbound::Resource(r)) => Some((&r.method, r.path.as_str())),
        _ => None,
    };
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
                content_type: content_type.as_deref(),
                resource,
                credential: ctx.route.credential.as_deref(),
            },
            upstream_body,
            &ctx.request.headers,
        )
        .map_err(|e| final_error(ApiError::from(e)))?;
    // Which credential the call goes with: a file or batch made now lives under its account.
    if let Some(ticket) = upstream_request
        .extensions()
        .get::<crate::providers::key_pool::KeyTicket>()
    {
        ctx.route.credential = Some(ticket.credential().to_string());
    }
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
            UpstreamError::Build { .. } | UpstreamError::Refused { .. } => FailureKind::Final,
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
    let streamed_operation =
        matches!(&ctx.request.parsed, Some(Inbound::Operation(op)) if op.streams());
    if (endpoint.answers_with_bytes() || streamed_operation) && status.is_success() {
        return Ok(Committed::Bytes(upstream));
    }
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

/// An operation's body for its provider: the client's own, upstream model named.
fn operation_body(ctx: &RequestCtx, route: &Route) -> Result<Bytes, ApiError> {
    let Some(Inbound::Operation(request)) = &ctx.request.parsed else {
        return Err(ApiError::Internal {
            message: "operation request was not parsed".into(),
        });
    };
    let mut request = request.clone();
    if request.model != route.upstream_model {
        request.set_model(&route.upstream_model);
    }
    route
        .provider
        .operation_body(&request)
        .map_err(|e| ApiError::InvalidField {
            message: format!(
                "provider {} cannot take this request: {e}",
                route.provider.name()
            ),
            param: Some(e.param),
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
/// (same model name, and no usage to ask for), or edited when only the usage is to be asked for
/// and the client set no stream options: either saves a serialization on the common paths.
fn upstream_body(ctx: &mut RequestCtx, upstream_model: &str) -> Result<Bytes, ApiError> {
    let Some(request) = ctx.request.parsed.as_mut() else {
        return Err(ApiError::Internal {
            message: "request was not parsed".into(),
        });
    };
    let rename = request.model() != upstream_model;
    let ask_usage = ctx.request.stream && !ctx.request.client_wants_usage;
    if !rename && ctx.request.endpoint.is_openai() {
        if !ask_usage {
            return Ok(ctx.request.body.clone());
        }
        if let Some(body) = request.body_asking_stream_usage(&ctx.request.body) {
            return Ok(body);
        }
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
