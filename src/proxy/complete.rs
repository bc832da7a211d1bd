//! Step 7 of a request for a complete answer, and the response helpers every path shares: reading
//! an upstream's complete answer (usage, translation, `on_response`, egress into the client's
//! format), a module's canonical answer, error responses in the client's shape, and the headers
//! Stockyard stamps on every answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::attempts::Committed;
use super::transcode::UpstreamBody;
use super::{ProxyBody, RequestCtx, egress};
use crate::modules::ModuleError;
use crate::modules::chain::hook_failed;
use crate::modules::{Answer, Chain};
use crate::providers::NativeCall;
use crate::request::ApiError;
use crate::request::CanonicalAnswer;
use crate::wire::openai::{Endpoint, Inbound, Usage};

/// A module's canonical answer, through the same egress as an upstream's: as a stream of
/// canonical events when the client asked for one, else as one complete answer.
pub(super) async fn answered(
    chain: &Chain,
    ctx: &mut RequestCtx,
    answer: CanonicalAnswer,
) -> Result<Committed, ApiError> {
    // A Completions client's canonical form is the legacy `text_completion`.
    let legacy = ctx.request.endpoint == Endpoint::Completions;
    let shape = |value: serde_json::Value| {
        if legacy {
            crate::request::answer::to_text_completion(&value)
        } else {
            value
        }
    };
    let encode = |value: serde_json::Value| Bytes::from(format!("data: {}\n\n", shape(value)));
    let (body, content_type) = if ctx.request.stream {
        let mut frames: Vec<Bytes> = answer.into_chunks().into_iter().map(encode).collect();
        frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
        (UpstreamBody::canned(frames), "text/event-stream")
    } else {
        let complete = shape(answer.into_complete());
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

/// What is read of a whole answer: its usage (with byte keys, `wire/byte_keys.rs`), every other
/// field skipped though still checked to be JSON.
#[derive(Default)]
struct UsageEnvelope {
    usage: Option<Usage>,
}
crate::wire::byte_keys::deserialize_with_byte_keys!(UsageEnvelope, "an answer object", {
    b"usage" => usage,
});

/// Step 7 for a complete answer (or an upstream error, passed through).
pub(super) async fn complete(
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
    if let Some(Inbound::Operation(request)) = &ctx.request.parsed {
        let request = request.clone();
        return operation_answer(chain, ctx, status, headers, body, &request).await;
    }
    if let Some(Inbound::Resource(_)) = &ctx.request.parsed {
        return resource_answer(chain, ctx, status, headers, body).await;
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
    // What the modules were given, to tell whether one of them replaced the answer.
    let canonical = body.clone();
    let mut answer = Answer {
        status: status.as_u16(),
        body,
    };
    run_on_response(chain, ctx, &mut answer).await?;
    ctx.result.status = answer.status;
    // A native answer goes out as it came unless a module replaced it (a redaction, a retried
    // answer). Modules saw it canonical, so the replacement is expressed in the client's format
    // like any, unless the provider's answer already was the client's format and modules saw that.
    let same = |a: &Bytes, b: &Bytes| a.as_ptr() == b.as_ptr() && a.len() == b.len();
    let unchanged = same(&answer.body, &canonical);
    let body = match native_answer {
        Some(native) if unchanged => Ok(native),
        Some(native) if same(&native, &canonical) => {
            if ctx.result.client_answer.is_some() {
                ctx.result.client_answer = serde_json::from_slice(&answer.body).ok();
            }
            Ok(answer.body)
        }
        _ => egress::answer(ctx, answer.body),
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

/// Step 7 for an operation (images, audio, moderations, rerank): the answer in the common shape
/// (a provider's own dialect translated back), what it bills, `on_response`, and the answer as it
/// came otherwise (its content type kept: a transcription may be plain text or subtitles).
async fn operation_answer(
    chain: &Chain,
    ctx: &mut RequestCtx,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    request: &crate::wire::openai::OperationRequest,
) -> Result<Response<ProxyBody>, ApiError> {
    let provider = ctx.provider_name().unwrap_or_default().to_string();
    // Translated and priced as the model actually called (an alias's images are the model's).
    let mut request = request.clone();
    if let Some(model) = ctx.upstream_model() {
        model.clone_into(&mut request.model);
    }
    let body = match &ctx.route.taken {
        Some(route) => route
            .provider
            .operation_answer(&request, body)
            .map_err(|e| ApiError::UpstreamProtocol {
                message: format!(
                    "provider {provider} answered with a body that does not translate: {e}"
                ),
            })?,
        None => body,
    };
    let metered = request.meter(&body);
    ctx.usage.units = metered.units;
    ctx.usage.price_name = metered.price_name;
    ctx.usage.tokens.prompt = metered.prompt_tokens.unwrap_or(0);
    ctx.usage.tokens.completion = metered.completion_tokens.unwrap_or(0);
    // What the operation bills is counted, never estimated from text; the rest is a resource's.
    resource_answer(chain, ctx, status, headers, body).await
}

/// Step 7 for files and batches: the answer as it came (a file's bytes keep their content
/// type), after `on_response` (which may record the object, narrow a list to what the caller
/// may see, or read a batch's output for pricing). The call itself bills nothing.
async fn resource_answer(
    chain: &Chain,
    ctx: &mut RequestCtx,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response<ProxyBody>, ApiError> {
    ctx.usage.reported = true;
    let mut answer = Answer {
        status: status.as_u16(),
        body,
    };
    run_on_response(chain, ctx, &mut answer).await?;
    ctx.result.status = answer.status;
    ctx.result.bytes_out = answer.body.len() as u64;
    Ok(json_response(
        StatusCode::from_u16(answer.status).unwrap_or(status),
        answer.body,
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
pub(super) fn provider_errors_fit_client(ctx: &RequestCtx) -> bool {
    ctx.request.native
        && ctx.route.taken.as_ref().is_some_and(|r| {
            r.provider
                .native(ctx.request.endpoint, &r.upstream_model)
                .is_some_and(|n| n.errors_fit_client())
        })
}

pub(super) fn error_response(ctx: &mut RequestCtx, err: ApiError) -> Response<ProxyBody> {
    ctx.result.status = err.status().as_u16();
    ctx.result.error_class = Some(err.error_code());
    // A provider's own error body that is already in the client's format goes out as it came.
    let from_provider = matches!(err, ApiError::Upstream { .. });
    let response = if from_provider && provider_errors_fit_client(ctx) {
        err.into_response()
    } else {
        error_in_format(ctx.request.endpoint, err)
    };
    ctx.result.bytes_out = hyper::body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    response
}

/// `err` in the error shape of the client format `endpoint` belongs to (for an error about a
/// path or method, before any request context exists).
pub fn error_in_format(endpoint: Endpoint, err: ApiError) -> Response<ProxyBody> {
    let status = err.status().as_u16();
    let mut response = err.into_response();
    if !endpoint.is_openai()
        && let ProxyBody::Full(Some(body)) = response.body_mut()
    {
        *body = egress::error(endpoint, status, body.clone());
    }
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

/// Adds `x-request-id`, `x-stockyard-overhead-ms` (the proxy's own time, upstream excluded) and
/// the headers modules left in `ctx.result.response_headers`. Every response of a proxied request
/// passes here (answer, error, stream head), so that is where module headers go.
pub fn stamp(mut response: Response<ProxyBody>, ctx: &mut RequestCtx) -> Response<ProxyBody> {
    ctx.timings.overhead = ctx.overhead_now();
    let headers = response.headers_mut();
    // A name the modules set replaces the upstream's values for it (all of the modules' values
    // kept): `extend` with a whole map does that in one lookup per name, moving the values.
    headers.extend(std::mem::take(&mut ctx.result.response_headers));
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
    if let Ok(value) = HeaderValue::from_str(&millis_text(ctx.timings.overhead)) {
        headers.insert(HeaderName::from_static("x-stockyard-overhead-ms"), value);
    }
    response
}

/// `1.234`: milliseconds to the microsecond, rounded. By hand: the float `format!` it replaces
/// cost more than the rest of the stamp on every response.
fn millis_text(time: Duration) -> String {
    let micros = (time.as_nanos() + 500) / 1000;
    let mut text = (micros / 1000).to_string();
    let fraction = (micros % 1000) as u32;
    text.push('.');
    for digit in [fraction / 100, fraction / 10 % 10, fraction % 10] {
        text.push(char::from(b'0' + digit as u8));
    }
    text
}

/// Upstream headers a client should see: content type, `retry-after`, rate-limit state (OpenAI's
/// `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`), and the provider's processing headers.
pub fn passthrough_headers(upstream: &HeaderMap) -> HeaderMap {
    // Room for what is kept, the modules' headers (six for rate limits) and the stamp's four,
    // so the map is allocated once rather than grown and rehashed twice on the way.
    let mut headers = HeaderMap::with_capacity(16);
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

/// Every module's `on_response`, in chain order: a refusal or a failed hook (by the module's fail
/// policy) ends the request with its error.
async fn run_on_response(
    chain: &Chain,
    ctx: &mut RequestCtx,
    answer: &mut Answer,
) -> Result<(), ApiError> {
    for hooked in chain.responding() {
        let module = &hooked.module;
        match hooked.on_response(ctx, answer).await {
            Ok(()) => {}
            Err(ModuleError::Refused(refusal)) => return Err(refusal),
            Err(err) if hook_failed(module.as_ref(), &err) => {
                return Err(ApiError::Internal {
                    message: err.to_string(),
                });
            }
            Err(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_written_in_milliseconds_to_the_microsecond() {
        assert_eq!(millis_text(Duration::from_nanos(0)), "0.000");
        assert_eq!(millis_text(Duration::from_nanos(1_234_499)), "1.234");
        assert_eq!(millis_text(Duration::from_nanos(1_234_500)), "1.235");
        assert_eq!(millis_text(Duration::from_micros(12_005)), "12.005");
        assert_eq!(millis_text(Duration::from_micros(999_999)), "999.999");
    }

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

    #[test]
    fn a_header_a_module_set_replaces_the_upstreams_and_keeps_all_its_values() {
        let mut response = Response::new(ProxyBody::full(Bytes::new()));
        let upstream = response.headers_mut();
        upstream.insert("x-ratelimit-remaining-requests", HeaderValue::from(9));
        upstream.append("x-upstream", HeaderValue::from(1));
        let mut ctx = RequestCtx::new(
            Endpoint::ChatCompletions,
            "req_1".into(),
            HeaderMap::new(),
            None,
        );
        let ours = &mut ctx.result.response_headers;
        ours.insert("x-ratelimit-remaining-requests", HeaderValue::from(2));
        ours.append("x-ratelimit-remaining-requests", HeaderValue::from(3));
        let stamped = stamp(response, &mut ctx);
        let headers = stamped.headers();
        let remaining: Vec<_> = headers
            .get_all("x-ratelimit-remaining-requests")
            .iter()
            .collect();
        assert_eq!(remaining, ["2", "3"]);
        assert_eq!(headers["x-upstream"], "1");
        assert_eq!(headers["x-request-id"], "req_1");
        assert!(ctx.result.response_headers.is_empty());
    }
}
