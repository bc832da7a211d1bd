//! `guard_schema`: when a chat asks for `response_format: {"type": "json_schema", ...}`, the
//! answer is validated against that schema (the `jsonschema` crate). A complete answer that fails
//! may be asked for again, at most `max_retries` times (3 at most), through routing as an internal
//! call that sends the model its own answer and the validation error; what still fails is refused
//! (or flagged). Native answers (a Messages client on Anthropic, a Responses client on OpenAI)
//! are retried the same way: the retried canonical answer goes out in the client's format. A streamed answer is validated at its end, when it can only be refused.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::guard::{Action, Scope, VerdictRecord, Verdicts};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{
    Answer, Hooks, Module, ModuleDeps, ModuleError, StreamDecision, StreamEvent, StreamWindow,
    Verdict,
};
use crate::request::internal::{InternalCall, MAX_INTERNAL_DEPTH, ModelCalls};
use crate::request::{ApiError, RequestCtx};
use crate::wire::openai::{Endpoint, Inbound};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "guard_schema",
    description: "validates answers against the request's response_format JSON schema, asking the model again (at most 3 times) with the validation error before refusing",
    order: 47,
    finish_order: 47,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: SchemaConfig::default_json,
    check: SchemaConfig::check,
    build,
};

const NAME: &str = "guard_schema";
/// The most retries a config may ask for.
const MAX_RETRIES: u8 = 3;
/// The longest streamed answer kept for validation at its end, in bytes.
const MAX_STREAM_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// `block` (the default) refuses an answer that still fails; `flag` lets it through,
    /// recorded.
    pub action: Action,
    /// How many times to ask the model again, sending the validation error (0..=3). Default 1.
    pub max_retries: u8,
    pub scope: Scope,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        SchemaConfig {
            action: Action::Block,
            max_retries: 1,
            scope: Scope::default(),
        }
    }
}

impl ModuleConfig for SchemaConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_retries > MAX_RETRIES {
            return Err(format!(
                "max_retries: must be 0..={MAX_RETRIES} (got {})",
                self.max_retries
            ));
        }
        if self.action == Action::Redact {
            return Err("action: must be block or flag (there is nothing to redact)".into());
        }
        Ok(())
    }
}

fn build(config: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = SchemaConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(GuardSchema {
        config,
        models: deps.models.clone(),
    }))
}

pub struct GuardSchema {
    config: SchemaConfig,
    models: Arc<dyn ModelCalls>,
}

/// The request's schema, compiled once (this module's slot), and its chat for retries.
#[derive(Clone)]
struct Expected {
    validator: Arc<jsonschema::Validator>,
    chat: Arc<Value>,
    streamed: String,
}

/// The first validation error of `text` against `validator`, `None` when it is valid.
fn check(validator: &jsonschema::Validator, text: &str) -> Option<String> {
    let value: Value = match serde_json::from_str(text.trim()) {
        Ok(value) => value,
        Err(e) => return Some(format!("the answer is not JSON: {e}")),
    };
    validator.validate(&value).err().map(|e| e.to_string())
}

/// The assistant text of a canonical (OpenAI-shaped) complete answer.
fn answer_text(body: &Value) -> Option<&str> {
    body["choices"][0]["message"]["content"].as_str()
}

/// Whether `body` is a Responses object (what modules see of a native Responses answer).
fn is_responses_object(body: &Value) -> bool {
    body["object"] == "response"
}

/// The assistant text of a complete answer, canonical or a Responses object.
fn any_answer_text(body: &Value) -> String {
    if !is_responses_object(body) {
        return answer_text(body).unwrap_or_default().to_string();
    }
    let parts = body["output"].as_array().into_iter().flatten();
    parts
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().into_iter().flatten())
        .filter(|part| part["type"] == "output_text")
        .filter_map(|part| part["text"].as_str())
        .collect()
}

impl GuardSchema {
    fn record(ctx: &mut RequestCtx, action: Action, rule: &str, position: &str) {
        ctx.slots
            .get_or_insert_default::<Verdicts>()
            .push(VerdictRecord {
                detector: NAME,
                rule: rule.to_string(),
                action: action.as_str(),
                position: position.to_string(),
            });
    }

    fn refusal() -> ApiError {
        ApiError::ContentPolicy {
            detector: NAME,
            rule: "response_schema".into(),
        }
    }

    /// Asks the model again with its answer and the error; the new canonical answer and its
    /// text.
    async fn retry(
        &self,
        chat: &Value,
        key_id: Option<String>,
        depth: u8,
        tags: Vec<String>,
        previous: &str,
        error: &str,
    ) -> Option<(Value, String)> {
        let mut body = chat.clone();
        let messages = body["messages"].as_array_mut()?;
        messages.push(json!({"role": "assistant", "content": previous}));
        messages.push(json!({"role": "user", "content": format!(
            "Your answer does not match the required JSON schema: {error}. Answer again with only JSON that matches the schema."
        )}));
        body["stream"] = Value::Bool(false);
        if let Some(map) = body.as_object_mut() {
            map.remove("stream_options");
        }
        let call = InternalCall {
            endpoint: Endpoint::ChatCompletions,
            body,
            key_id,
            caller: NAME,
            depth,
            tags,
        };
        match self.models.call(call).await {
            Ok(answer) => {
                let text = answer_text(&answer.body)?.to_string();
                Some((answer.body, text))
            }
            Err(err) => {
                tracing::warn!(module = NAME, error = %err.message(), "schema retry failed");
                None
            }
        }
    }
}

#[async_trait]
impl Module for GuardSchema {
    fn name(&self) -> &'static str {
        NAME
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW | Hooks::RESPONSE | Hooks::STREAM_END
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.identity.internal.is_some() || !self.config.scope.covers(ctx) {
            return Ok(Verdict::Continue);
        }
        let Some(Inbound::Chat(chat)) = &ctx.request.parsed else {
            return Ok(Verdict::Continue);
        };
        let format = &chat.rest.get("response_format");
        let Some(schema) = format
            .filter(|f| f["type"] == "json_schema")
            .map(|f| &f["json_schema"]["schema"])
            .filter(|s| !s.is_null())
        else {
            return Ok(Verdict::Continue);
        };
        let validator = match jsonschema::validator_for(schema) {
            Ok(validator) => validator,
            Err(e) => {
                return Ok(Verdict::Reject(ApiError::InvalidField {
                    param: Some("response_format.json_schema.schema".into()),
                    message: format!(
                        "the response format's schema is not a valid JSON Schema: {e}"
                    ),
                }));
            }
        };
        let chat = serde_json::to_value(chat).unwrap_or(Value::Null);
        ctx.slots.insert(Expected {
            validator: Arc::new(validator),
            chat: Arc::new(chat),
            streamed: String::new(),
        });
        Ok(Verdict::Continue)
    }

    async fn on_response(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        let Some(expected) = ctx.slots.get::<Expected>().cloned() else {
            return Ok(());
        };
        let Ok(body) = serde_json::from_slice::<Value>(&answer.body) else {
            return Ok(());
        };
        // Modules see answers canonical (a native Messages answer included: a replacement is
        // expressed in the client's format on the way out), except a native Responses answer,
        // which they see as the Responses object it is.
        let text = any_answer_text(&body);
        let Some(mut error) = check(&expected.validator, &text) else {
            return Ok(());
        };
        let mut previous = text;
        let tries = if ctx.identity.internal_depth + 1 > MAX_INTERNAL_DEPTH {
            0
        } else {
            self.config.max_retries
        };
        let key_id = ctx.identity.key_id.clone();
        let depth = ctx.identity.internal_depth + 1;
        for attempt in 1..=tries {
            Self::record(
                ctx,
                Action::Flag,
                "response_schema",
                &format!("output:retry{attempt}"),
            );
            let Some((new_body, new_text)) = self
                .retry(
                    &expected.chat,
                    key_id.clone(),
                    depth,
                    ctx.request.tags.clone(),
                    &previous,
                    &error,
                )
                .await
            else {
                break;
            };
            match check(&expected.validator, &new_text) {
                None => {
                    let new_body = if is_responses_object(&body) {
                        // Modules saw the provider's Responses object: answer in kind.
                        let request = ctx.request.client_request.as_deref().cloned();
                        crate::wire::responses::response::from_chat(
                            &new_body,
                            &request.unwrap_or(Value::Null),
                            ctx.request.response_id.as_deref(),
                        )
                        .map_err(|e| ModuleError::Failed {
                            module: NAME,
                            message: format!("cannot express the retried answer: {e}"),
                        })?
                    } else {
                        new_body
                    };
                    answer.body = serde_json::to_vec(&new_body).map(Into::into).map_err(|e| {
                        ModuleError::Failed {
                            module: NAME,
                            message: format!("cannot encode the retried answer: {e}"),
                        }
                    })?;
                    return Ok(());
                }
                Some(next) => {
                    error = next;
                    previous = new_text;
                }
            }
        }
        Self::record(ctx, self.config.action, "response_schema", "output");
        if self.config.action == Action::Block {
            return Err(ModuleError::Refused(Self::refusal()));
        }
        Ok(())
    }

    /// Watches streams to keep their text for validation at the end.
    fn stream_window(&self) -> Option<StreamWindow> {
        Some(StreamWindow::WATCH)
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        if let Some(expected) = ctx.slots.get_mut::<Expected>()
            && expected.streamed.len() + event.text().len() <= MAX_STREAM_BYTES
        {
            expected.streamed.push_str(event.text());
        }
        StreamDecision::Pass
    }

    async fn on_stream_end(&self, ctx: &mut RequestCtx) -> Option<ApiError> {
        let expected = ctx.slots.remove::<Expected>()?;
        check(&expected.validator, &expected.streamed)?;
        Self::record(
            ctx,
            self.config.action,
            "response_schema",
            "output:stream_end",
        );
        (self.config.action == Action::Block).then(Self::refusal)
    }
}
