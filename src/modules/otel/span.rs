//! One finished request as an OTLP span (JSON encoding of OTLP/HTTP), named and attributed after
//! the OpenTelemetry GenAI semantic conventions: `gen_ai.operation.name`, `gen_ai.provider.name`
//! (and the older `gen_ai.system`), `gen_ai.request.model`, `gen_ai.response.model`,
//! `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `error.type`; Stockyard's own facts
//! under `stockyard.*`. No key, user or body is ever an attribute.
//! <https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/>

use serde_json::{Value, json};

use crate::request::RequestCtx;
use crate::wire::openai::Endpoint;

/// `SPAN_KIND_CLIENT`: the semantic conventions model a GenAI call as a client span.
const KIND_CLIENT: u8 = 3;

/// A span ready to export, with its attributes already rendered.
pub struct SpanRecord(pub Value);

pub fn from_ctx(ctx: &RequestCtx) -> SpanRecord {
    let operation = match ctx.request.endpoint {
        Endpoint::Embeddings => "embeddings",
        Endpoint::Completions => "text_completion",
        _ => "chat",
    };
    let model = ctx.request.requested_model.as_str();
    let (trace_id, parent) = parent_of(ctx);
    let start_ns = (ctx.timings.ts_ms as u128) * 1_000_000;
    let end_ns = start_ns + ctx.timings.started.elapsed().as_nanos();
    let mut attributes = vec![
        string("gen_ai.operation.name", operation),
        string("gen_ai.request.model", model),
        int("http.response.status_code", i64::from(ctx.result.status)),
        string("stockyard.request_id", &ctx.identity.request_id),
        string("stockyard.endpoint", ctx.request.endpoint.as_str()),
        boolean("stockyard.stream", ctx.request.stream),
    ];
    if let Some(provider) = ctx.provider_name() {
        attributes.push(string("gen_ai.provider.name", provider));
        attributes.push(string("gen_ai.system", provider));
    }
    if let Some(upstream) = ctx.upstream_model() {
        attributes.push(string("gen_ai.response.model", upstream));
    }
    let tokens = &ctx.usage.tokens;
    if tokens.prompt > 0 || tokens.completion > 0 {
        attributes.push(int("gen_ai.usage.input_tokens", tokens.prompt as i64));
        attributes.push(int("gen_ai.usage.output_tokens", tokens.completion as i64));
    }
    if ctx.usage.cost_nanos > 0 {
        attributes.push(double(
            "stockyard.cost_usd",
            ctx.usage.cost_nanos as f64 / 1e9,
        ));
    }
    if let Some(ttft) = ctx.timings.ttft {
        attributes.push(double("stockyard.ttft_ms", ttft.as_secs_f64() * 1e3));
    }
    if let Some(deployment) = &ctx.route.deployment {
        attributes.push(string("stockyard.deployment", deployment));
    }
    if let Some(by) = ctx.route.answered_by {
        attributes.push(string("stockyard.answered_by", by));
    }
    let failed = ctx.result.status >= 400 || ctx.result.error_class.is_some();
    if failed {
        let kind = ctx
            .result
            .error_class
            .map_or_else(|| ctx.result.status.to_string(), |c| c.as_str().to_string());
        attributes.push(string("error.type", &kind));
    }
    let mut span = json!({
        "traceId": trace_id,
        "spanId": random_hex(8),
        "name": format!("{operation} {model}"),
        "kind": KIND_CLIENT,
        "startTimeUnixNano": start_ns.to_string(),
        "endTimeUnixNano": end_ns.to_string(),
        "attributes": attributes,
        // STATUS_CODE_ERROR = 2; unset (0) otherwise, as the conventions ask for success.
        "status": if failed { json!({"code": 2}) } else { json!({}) },
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = parent.into();
    }
    SpanRecord(span)
}

/// The client's W3C `traceparent` (`00-<trace>-<span>-<flags>`), so the proxy's span joins the
/// caller's trace; a new trace otherwise.
fn parent_of(ctx: &RequestCtx) -> (String, Option<String>) {
    let header = ctx
        .request
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    if let Some(parts) = header.map(|h| h.split('-').collect::<Vec<_>>())
        && parts.len() == 4
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts[1]
            .bytes()
            .chain(parts[2].bytes())
            .all(|b| b.is_ascii_hexdigit())
        && parts[1].bytes().any(|b| b != b'0')
    {
        return (
            parts[1].to_ascii_lowercase(),
            Some(parts[2].to_ascii_lowercase()),
        );
    }
    (random_hex(16), None)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}

fn string(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// OTLP/JSON carries 64-bit integers as strings (the protobuf JSON mapping).
fn int(key: &str, value: i64) -> Value {
    json!({"key": key, "value": {"intValue": value.to_string()}})
}

fn double(key: &str, value: f64) -> Value {
    json!({"key": key, "value": {"doubleValue": value}})
}

fn boolean(key: &str, value: bool) -> Value {
    json!({"key": key, "value": {"boolValue": value}})
}

/// One export request body: the spans under one resource and scope.
pub fn export_body(service_name: &str, spans: Vec<Value>) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [string("service.name", service_name)]},
            "scopeSpans": [{
                "scope": {"name": "stockyard", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    })
}
