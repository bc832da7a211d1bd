//! The route table. Proxied endpoints go to the pipeline; the rest are small handlers here.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::App;
use crate::proxy::complete::json_response;
use crate::proxy::pipeline;
use crate::proxy::{ApiError, ProxyBody, RequestCtx};
use crate::wire::openai::Endpoint;

const PROXIED: &[(&str, Endpoint)] = &[
    ("/v1/chat/completions", Endpoint::ChatCompletions),
    ("/v1/completions", Endpoint::Completions),
    ("/v1/embeddings", Endpoint::Embeddings),
    ("/v1/messages", Endpoint::Messages),
    ("/v1/responses", Endpoint::Responses),
    ("/v1/images/generations", Endpoint::ImagesGenerations),
    ("/v1/images/edits", Endpoint::ImagesEdits),
    ("/v1/images/variations", Endpoint::ImagesVariations),
    ("/v1/audio/speech", Endpoint::AudioSpeech),
    ("/v1/audio/transcriptions", Endpoint::AudioTranscriptions),
    ("/v1/audio/translations", Endpoint::AudioTranslations),
    ("/v1/moderations", Endpoint::Moderations),
    ("/v1/rerank", Endpoint::Rerank),
];

pub async fn route(app: &Arc<App>, request: Request<Incoming>) -> Response<ProxyBody> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    if let Some((_, endpoint)) = PROXIED.iter().find(|(p, _)| *p == path)
        && method == Method::POST
    {
        return pipeline::handle(&app.proxy, *endpoint, request).await;
    }
    // Everything else answers here; the pipeline stamps its own answers, and the rest get the
    // same `x-request-id` (the client's, or a new one).
    let client_id = request.headers().get("x-request-id").cloned();
    let mut response = route_other(app, request, path, method).await;
    if !response.headers().contains_key("x-request-id")
        && let Ok(id) =
            hyper::header::HeaderValue::from_str(&pipeline::request_id_from(client_id.as_ref()))
    {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

/// The client format a path belongs to, for errors about the path or method itself: Anthropic's
/// and Google's SDKs read only their own error shape.
fn format_of(path: &str) -> Endpoint {
    if path == "/v1/messages" || path.starts_with("/v1/messages/") {
        Endpoint::Messages
    } else if path.starts_with("/v1beta/") || path.starts_with("/v1/models/") && path.contains(':')
    {
        Endpoint::GenerateContent
    } else {
        Endpoint::ChatCompletions
    }
}

async fn route_other(
    app: &Arc<App>,
    request: Request<Incoming>,
    path: String,
    method: Method,
) -> Response<ProxyBody> {
    if PROXIED.iter().any(|(p, _)| *p == path) {
        let format = format_of(&path);
        return crate::proxy::complete::error_in_format(
            format,
            ApiError::MethodNotAllowed {
                method: method.to_string(),
                path,
            },
        );
    }
    // Files and batches: every method, the object's id in the path (the pipeline reads both).
    for endpoint in [Endpoint::Files, Endpoint::Batches, Endpoint::MessageBatches] {
        let prefix = crate::wire::openai::resource::prefix(endpoint);
        if path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|r| r.starts_with('/'))
        {
            return pipeline::handle(&app.proxy, endpoint, request).await;
        }
    }
    if let Some((_, call)) = crate::wire::gemini::target(&path) {
        return match (&method, call) {
            (&Method::POST, "generateContent" | "streamGenerateContent") => {
                let request = query_key_to_header(request);
                pipeline::handle(&app.proxy, Endpoint::GenerateContent, request).await
            }
            _ => {
                let status = StatusCode::NOT_FOUND;
                let body = crate::wire::gemini::error(
                    status.as_u16(),
                    json!({"error": {"message": format!(
                        "{method} {path} is not served; Stockyard serves POST :generateContent and :streamGenerateContent"
                    )}})
                    .to_string()
                    .as_bytes(),
                );
                json_response(status, Bytes::from(body.to_string()), HeaderMap::new())
            }
        };
    }
    match (method, path.as_str()) {
        (Method::GET, "/v1/models") => models(app, request).await,
        (Method::POST, "/v1/messages/count_tokens") => count_tokens(app, request).await,
        (Method::GET, p) if p.starts_with("/v1/responses/") => {
            stored_response(app, request, p).await
        }
        (Method::GET, "/health") => ok_json(json!({"status": "ok"})),
        // Load balancers probe with HEAD: the same answer, without the body.
        (Method::HEAD, "/health") => {
            let mut response = ok_json(json!({"status": "ok"}));
            *response.body_mut() = ProxyBody::empty();
            response
        }
        (Method::GET, "/ready") => ready(app).await,
        (Method::GET, "/metrics") => metrics(app),
        (_, "/mcp" | "/mcp/sse" | "/mcp/messages") => mcp(app, request).await,
        (_, p) if p == "/admin" || p.starts_with("/admin/") => {
            crate::admin::http::route(app, request).await
        }
        (_, p) if p == "/ui" || p.starts_with("/ui/") => crate::ui::route(app, request).await,
        (method, "/v1/models" | "/health" | "/ready" | "/v1/messages/count_tokens") => {
            crate::proxy::complete::error_in_format(
                format_of(&path),
                ApiError::MethodNotAllowed {
                    method: method.to_string(),
                    path,
                },
            )
        }
        _ => crate::proxy::complete::error_in_format(format_of(&path), ApiError::NotFound { path }),
    }
}

/// Google's clients may send the key as `?key=`: it becomes the `x-goog-api-key` header (which
/// authentication reads) and leaves the URI, so no log line or trace carries it.
fn query_key_to_header(request: Request<Incoming>) -> Request<Incoming> {
    let (mut parts, body) = request.into_parts();
    let Some(query) = parts.uri.query() else {
        return Request::from_parts(parts, body);
    };
    let mut key = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("key=") {
            Some(value) => {
                key = Some(value.to_string());
                false
            }
            None => true,
        })
        .collect();
    if let Some(key) = key {
        if !parts.headers.contains_key("x-goog-api-key")
            && let Ok(value) = hyper::header::HeaderValue::from_str(&key)
        {
            parts.headers.insert("x-goog-api-key", value);
        }
        let path_and_query = if kept.is_empty() {
            parts.uri.path().to_string()
        } else {
            format!("{}?{}", parts.uri.path(), kept.join("&"))
        };
        if let Ok(uri) = path_and_query.parse() {
            parts.uri = uri;
        }
    }
    Request::from_parts(parts, body)
}

pub fn ok_json(value: serde_json::Value) -> Response<ProxyBody> {
    json_response(
        StatusCode::OK,
        Bytes::from(value.to_string()),
        HeaderMap::new(),
    )
}

/// The gate of a `/v1` route that is not proxied: the chain's header hooks (authentication)
/// and admission, exactly as for a proxied request. The context it returns holds the client's
/// identity and its place in flight.
fn gate(
    app: &App,
    endpoint: Endpoint,
    request: Request<Incoming>,
) -> Result<(RequestCtx, Incoming), ApiError> {
    let (parts, body) = request.into_parts();
    let mut ctx = pipeline::context_for(endpoint, parts);
    pipeline::admit(&app.proxy.chain.load(), &app.proxy.admission, &mut ctx)?;
    Ok((ctx, body))
}

/// Every name a client may send: configured names, `provider/model` for declared models, and the
/// price table's models of the `openai` provider (bare and prefixed) when it is configured. A
/// virtual key with a model list sees only the names it may use.
async fn models(app: &App, request: Request<Incoming>) -> Response<ProxyBody> {
    let grant = match gate(app, Endpoint::ChatCompletions, request) {
        Ok((ctx, _)) => ctx.identity.grant.clone(),
        Err(err) => return err.into_response(),
    };
    let registry = &app.proxy.providers;
    let mut data = Vec::new();
    let mut push = |id: String, owner: &str| {
        data.push(json!({"id": id, "object": "model", "created": 0, "owned_by": owner}));
    };
    for model in registry.models() {
        push(model.name.clone(), &model.provider);
    }
    // The routing module's aliases and deployment groups, as configured now (admin changes
    // included): names a client may send like any model.
    let chain = app.proxy.chain.load();
    if let Some(routing) = chain
        .states()
        .iter()
        .find(|s| s.name == "routing" && s.enabled)
    {
        for table in ["aliases", "groups"] {
            for name in routing.config[table]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                push(name.clone(), "stockyard");
            }
        }
    }
    let prices = app.admin.prices().load();
    for provider in registry.providers() {
        let mut names: Vec<String> = provider.declared_models().to_vec();
        if names.is_empty() {
            names = prices.models_of(price_table_provider(provider.kind(), provider.name()));
        }
        for name in names {
            push(format!("{}/{name}", provider.name()), provider.name());
            // A bare name too, when it resolves to this provider.
            if registry
                .resolve(&name)
                .is_ok_and(|route| route.provider.name() == provider.name())
            {
                push(name, provider.name());
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    data.retain(|m| seen.insert(m["id"].as_str().unwrap_or_default().to_string()));
    if let Some(grant) = grant {
        data.retain(|m| {
            m["id"]
                .as_str()
                .is_some_and(|id| crate::modules::auth::models::allowed(&grant, id))
        });
    }
    ok_json(json!({"object": "list", "data": data}))
}

/// `/mcp`, the MCP gateway (`modules/mcp`): authenticated and admitted like `/v1`, then served
/// by the module while it is enabled. Errors are JSON-RPC error objects with their HTTP status.
async fn mcp(app: &App, request: Request<Incoming>) -> Response<ProxyBody> {
    use crate::modules::mcp::server::{self, Answer};
    let rpc_error =
        |status: StatusCode, message: &str| render_mcp(Answer::error(status, -32001, message));
    let deps = app.admin.deps();
    let Some((gateway, installed)) =
        crate::modules::mcp::gateway(deps).and_then(|g| g.current().map(|i| (g, i)))
    else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            "the MCP gateway is off; enable it with `stockyard modules enable mcp`",
        );
    };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let (ctx, body) = match gate(app, Endpoint::ChatCompletions, request) {
        Ok(admitted) => admitted,
        Err(err) => return rpc_error(err.status(), &err.message()),
    };
    let grant = ctx.identity.grant.as_ref();
    let caller = crate::modules::mcp::Caller {
        key_id: grant
            .map(|g| g.key_id.clone())
            .or_else(|| ctx.identity.key_id.clone()),
        team_id: grant.and_then(|g| g.team_id().map(str::to_string)),
    };
    if path == "/mcp/sse" {
        return match method {
            hyper::Method::GET => render_mcp(server::open_event_stream(&gateway, &caller)),
            _ => rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "GET /mcp/sse opens the stream",
            ),
        };
    }
    let limit = app.proxy.chain.load().max_body_bytes();
    let body = match app
        .proxy
        .admission
        .read_body(body, &ctx.request.headers, limit)
        .await
    {
        Ok((body, _permit)) => body,
        Err(err) => return rpc_error(err.status(), &err.message()),
    };
    if path == "/mcp/messages" {
        return match method {
            hyper::Method::POST => render_mcp(server::post_message(
                gateway, installed, caller, &query, &body,
            )),
            _ => rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST /mcp/messages sends a message",
            ),
        };
    }
    let answer = server::handle(
        gateway,
        installed,
        &caller,
        &method,
        &ctx.request.headers,
        &body,
    )
    .await;
    render_mcp(answer)
}

fn render_mcp(answer: crate::modules::mcp::server::Answer) -> Response<ProxyBody> {
    let content_type = if answer.event_stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let has_body = answer.body.is_some() || answer.stream.is_some();
    let body = match (answer.stream, answer.body) {
        (Some(stream), _) => ProxyBody::Channel(stream),
        (None, body) => body.map_or_else(ProxyBody::empty, ProxyBody::full),
    };
    let mut response = Response::new(body);
    *response.status_mut() = answer.status;
    if has_body {
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
    }
    for (name, value) in answer.headers {
        response.headers_mut().insert(name, value);
    }
    response
}

/// The provider name the bundled price table files a provider's models under.
fn price_table_provider(kind: crate::config::ProviderKind, name: &str) -> &str {
    use crate::config::ProviderKind;
    match kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gemini",
        ProviderKind::Vertex => "vertex_ai-language-models",
        ProviderKind::Bedrock => "bedrock_converse",
        ProviderKind::OpenAiCompatible => match name {
            "together" => "together_ai",
            "fireworks" => "fireworks_ai",
            other => other,
        },
    }
}

/// Ready when the store answers, migrations are applied and the writer runs.
async fn ready(app: &Arc<App>) -> Response<ProxyBody> {
    let health = app.store.health.clone();
    let expected = health.expected_schema_version();
    let probe =
        tokio::task::spawn_blocking(move || health.ping().and_then(|_| health.schema_version()))
            .await;
    let writer = app.writer.snapshot();
    let (store_ok, schema_version, store_error) = match probe {
        Ok(Ok(version)) => (true, Some(version), None),
        Ok(Err(e)) => (false, None, Some(e.to_string())),
        Err(e) => (false, None, Some(e.to_string())),
    };
    let migrated = schema_version == Some(expected);
    let ready = store_ok && migrated && writer.alive;
    let body = json!({
        "ready": ready,
        "store": {"ok": store_ok, "error": store_error, "schema_version": schema_version,
                  "expected_schema_version": expected},
        "writer": writer,
        "in_flight": app.proxy.admission.inflight.count(),
        "admission": app.proxy.admission.snapshot(),
        "unauthenticated": app
            .admin
            .deps()
            .shared
            .get::<crate::modules::auth::failures::AuthFailures>()
            .map_or(0, |f| f.total()),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, Bytes::from(body.to_string()), HeaderMap::new())
}

/// `GET /metrics`, the Prometheus text format. Open like `/ready`: its labels carry no key, team
/// or user, and a scraper usually has no credentials.
fn metrics(app: &App) -> Response<ProxyBody> {
    let text = crate::modules::metrics::render(app.admin.deps());
    let mut response = Response::new(ProxyBody::full(text));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `POST /v1/messages/count_tokens`, answered locally with the tokenizer (an estimate for
/// non-OpenAI models), in Anthropic's shapes.
async fn count_tokens(app: &App, request: Request<Incoming>) -> Response<ProxyBody> {
    let anthropic_error = |err: ApiError| {
        let status = err.status();
        let body = crate::proxy::egress::error(Endpoint::Messages, status.as_u16(), err.body());
        json_response(status, body, HeaderMap::new())
    };
    let (ctx, body) = match gate(app, Endpoint::Messages, request) {
        Ok(admitted) => admitted,
        Err(err) => return anthropic_error(err),
    };
    let limit = app.proxy.chain.load().max_body_bytes();
    let body = match app
        .proxy
        .admission
        .read_body(body, &ctx.request.headers, limit)
        .await
    {
        Ok((body, _permit)) => body,
        Err(err) => return anthropic_error(err),
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return anthropic_error(ApiError::InvalidJson {
                message: format!("request body is not valid JSON: {e}"),
            });
        }
    };
    let model = value["model"].as_str().unwrap_or_default().to_string();
    let counter = |text: &str| crate::cost::tokenize::count_text(&model, text);
    match crate::wire::anthropic::count_tokens::count_tokens(&value, &counter) {
        Ok(answer) => ok_json(answer),
        Err(e) => anthropic_error(ApiError::InvalidField {
            param: None,
            message: e.to_string(),
        }),
    }
}

/// `GET /v1/responses/{id}`: a stored Responses answer.
async fn stored_response(app: &App, request: Request<Incoming>, path: &str) -> Response<ProxyBody> {
    let key_id = match gate(app, Endpoint::Responses, request) {
        Ok((ctx, _)) => ctx.identity.key_id,
        Err(err) => return err.into_response(),
    };
    let id = path.trim_start_matches("/v1/responses/");
    // Another key's answer gets the same 404 as an unknown id.
    let stored = crate::modules::responses::store(app.admin.deps());
    match stored.get_owned(id, key_id.as_deref()).await {
        Some(stored) => ok_json(stored.response.clone()),
        None => ApiError::AdminNotFound {
            message: format!("no stored response with id {id:?}"),
        }
        .into_response(),
    }
}
