//! `responses`: makes `store` and `previous_response_id` of the Responses API work with every
//! provider. `on_request` puts the stored conversation of `previous_response_id` in front of the
//! new input (404 when it is unknown); `on_finish` stores the answer and the conversation so far
//! under the answer's id, unless the client sent `"store": false`. `GET /v1/responses/{id}` reads
//! the same store. A stored answer belongs to the client key that created it: to any other key it
//! is unknown, exactly like an id never stored, so its existence is not revealed.

pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::store::ResponseStore;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome, Verdict};
use crate::request::{ApiError, RequestCtx};
use crate::store::{StoredResponse, now_ms};
use crate::wire::openai::{Endpoint, Inbound};
use crate::wire::responses::request::{history_to_store, prepend_history};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "responses",
    description: "stores Responses API answers so previous_response_id and GET /v1/responses/{id} work with every provider",
    order: 40,
    finish_order: 50,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: ResponsesConfig::default_json,
    check: ResponsesConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponsesConfig {
    /// Answers kept in memory for fast follow-up turns; older ones are read from the database.
    pub cache_entries: usize,
}

impl Default for ResponsesConfig {
    fn default() -> Self {
        ResponsesConfig {
            cache_entries: 10_000,
        }
    }
}

impl ModuleConfig for ResponsesConfig {
    fn validate(&self) -> Result<(), String> {
        if self.cache_entries == 0 {
            return Err("cache_entries: must be at least 1".into());
        }
        Ok(())
    }
}

fn build(config: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = ResponsesConfig::parse(config).map_err(ModuleError::Config)?;
    let stored = store(deps);
    stored.set_capacity(config.cache_entries);
    Ok(Arc::new(Responses { store: stored }))
}

/// The stored answers of this proxy, made the first time anything asks.
pub fn store(deps: &ModuleDeps) -> Arc<ResponseStore> {
    deps.shared
        .get_or_init(|| ResponseStore::new(deps.writer.clone(), deps.store.responses.clone()))
}

pub struct Responses {
    store: Arc<ResponseStore>,
}

/// The Responses request with the stored history in front (what the answer continues).
#[derive(Clone)]
struct Expanded(Arc<Value>);

#[async_trait]
impl Module for Responses {
    fn name(&self) -> &'static str {
        "responses"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::FINISH
    }

    /// Only Responses API requests are stored and chained.
    fn has_work(&self, _hook: Hooks, ctx: &RequestCtx) -> bool {
        ctx.request.endpoint == Endpoint::Responses
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.request.endpoint != Endpoint::Responses {
            return Ok(Verdict::Continue);
        }
        let Some(request) = ctx.request.client_request.clone() else {
            return Ok(Verdict::Continue);
        };
        let previous = match request.get("previous_response_id") {
            None | Some(Value::Null) => return Ok(Verdict::Continue),
            Some(Value::String(previous)) => previous.as_str(),
            // Skipped, the earlier conversation would be dropped without a word.
            Some(_) => {
                return Ok(Verdict::Reject(ApiError::InvalidField {
                    param: Some("previous_response_id".into()),
                    message: "expected a string".into(),
                }));
            }
        };
        let Some(stored) = self
            .store
            .get_owned(previous, ctx.identity.key_id.as_deref())
            .await
        else {
            let unknown = ApiError::InvalidField {
                param: Some("previous_response_id".into()),
                message: format!("no stored response with id {previous:?}"),
            };
            // With client keys an id is only ever this key's own: one not stored for it (unknown,
            // or another key's) is refused on every route, so a native call cannot resolve
            // another key's conversation under the proxy's shared provider key. In local mode
            // it may be OpenAI's own, which a native call resolves there.
            if ctx.identity.key_id.is_some() {
                return Ok(Verdict::Reject(unknown));
            }
            ctx.request.native_only = Some(unknown);
            return Ok(Verdict::Continue);
        };
        let history = stored.history.as_array().cloned().unwrap_or_default();
        let expanded = prepend_history(&history, (*request).clone());
        // Read like the request itself: OpenAI-only features refuse only a non-OpenAI route.
        let mut chat = match Inbound::from_client_format(Endpoint::Responses, &expanded) {
            Ok((chat, refused)) => {
                if let Some(refused) = refused {
                    ctx.request.native_only = Some(ApiError::InvalidField {
                        param: refused.param,
                        message: refused.message,
                    });
                }
                chat
            }
            Err(e) => {
                return Ok(Verdict::Reject(ApiError::InvalidField {
                    param: e.param,
                    message: e.message,
                }));
            }
        };
        if ctx.request.stream {
            chat.request_stream_usage();
        }
        ctx.request.parsed = Some(chat);
        // The stored conversation is now part of the prompt: a count made before is stale.
        super::estimate::forget(ctx);
        ctx.slots.insert(Expanded(Arc::new(expanded)));
        Ok(Verdict::Continue)
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        if ctx.request.endpoint != Endpoint::Responses || ctx.result.error_class.is_some() {
            return;
        }
        let (Some(answer), Some(id), Some(request)) = (
            ctx.result.client_answer.take(),
            ctx.request.response_id.clone(),
            ctx.request.client_request.clone(),
        ) else {
            return;
        };
        if request.get("store") == Some(&Value::Bool(false)) {
            return;
        }
        let responses_request = ctx
            .slots
            .remove::<Expanded>()
            .map(|e| e.0)
            .unwrap_or(request);
        let chat = match &ctx.request.parsed {
            Some(Inbound::Chat(chat)) => serde_json::to_value(chat).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let history = history_to_store(&responses_request, &chat, &answer);
        let record = StoredResponse {
            id,
            created_ms: now_ms(),
            response: answer,
            history: Value::Array(history),
            owner: ctx.identity.key_id.clone(),
        };
        self.store.put(record).await;
    }
}
