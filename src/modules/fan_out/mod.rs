//! `fan_out`: a model name a client may ask for (`best-of-3`) that sends the request to several
//! models at once and answers with the first successful answer (`mode = "first"`), or with all
//! of them as `choices` (`mode = "all"`, Chat Completions clients; each choice names its
//! `model`). Each call is a model call of this module's own ([`ModelCalls`]): it goes through
//! routing, retries, breakers, cost and trace like a client's, is traced with
//! `internal_caller = fan_out` under the client's key, and is priced there; the client's own
//! trace row is marked `answered_by = fan_out` and carries no cost, so spend is not counted
//! twice. Under `first`, the calls still running when the first answer arrives run to their end
//! (the upstream bills them anyway), so they are traced and priced too.
//!
//! Runs before `routing` (order 49), which would not know the name. Non-streamed requests only:
//! a streamed one is refused with a 400 naming `stream`. The response headers
//! `x-stockyard-fan-out` (the model(s) that answered) and `x-stockyard-fan-out-failed` (those
//! that did not) say what happened.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;
use hyper::header::HeaderValue;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use self::config::{FanOutConfig, FanOutGroup, Mode};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::request::internal::{InternalAnswer, InternalCall, ModelCalls};
use crate::request::{ApiError, CanonicalAnswer, RequestCtx};
use crate::wire::openai::{Endpoint, Inbound};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "fan_out",
    description: "sends one request to several models at once: the first successful answer, or all as choices",
    order: 49,
    finish_order: 49,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: FanOutConfig::default_json,
    check: FanOutConfig::check,
    build,
};

fn build(value: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = FanOutConfig::parse(value).map_err(ModuleError::Config)?;
    Ok(Arc::new(FanOut {
        config,
        models: deps.models.clone(),
    }))
}

pub struct FanOut {
    config: FanOutConfig,
    models: Arc<dyn ModelCalls>,
}

/// One member's result: its model, and its answer or why it failed.
type Reply = (String, Result<InternalAnswer, ApiError>);

fn header(ctx: &mut RequestCtx, name: &'static str, models: &[String]) {
    if models.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&models.join(",")) {
        ctx.result.response_headers.insert(name, value);
    }
}

/// The answers of `all`, as one `chat.completion`: every choice in member order, renumbered and
/// naming its model, and the usage summed.
fn merge(answers: &[(String, InternalAnswer)], name: &str) -> Value {
    let mut choices = Vec::new();
    let (mut prompt, mut completion) = (0u64, 0u64);
    for (model, answer) in answers {
        for choice in answer.body["choices"].as_array().into_iter().flatten() {
            let mut choice = choice.clone();
            choice["index"] = json!(choices.len());
            choice["model"] = json!(model);
            choices.push(choice);
        }
        prompt += answer.body["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
        completion += answer.body["usage"]["completion_tokens"]
            .as_u64()
            .unwrap_or(0);
    }
    let first = answers.first().map(|(_, a)| &a.body);
    json!({
        "id": first.map_or(Value::Null, |b| b["id"].clone()),
        "object": "chat.completion",
        "created": first.map_or(Value::Null, |b| b["created"].clone()),
        "model": name,
        "choices": choices,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion},
    })
}

impl FanOut {
    /// Starts every member's call, each in a task of its own so that it runs to its end (and is
    /// traced and priced) even when the client's request no longer waits for it.
    fn start(&self, ctx: &RequestCtx, group: &FanOutGroup, body: &Value) -> JoinSet<Reply> {
        let mut calls = JoinSet::new();
        for model in &group.models {
            let mut body = body.clone();
            body["model"] = json!(model);
            let call = InternalCall::for_request(ctx, Endpoint::ChatCompletions, body, "fan_out");
            let models = self.models.clone();
            let model = model.clone();
            calls.spawn(async move { (model, models.call(call).await) });
        }
        calls
    }
}

#[async_trait]
impl Module for FanOut {
    fn name(&self) -> &'static str {
        "fan_out"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.identity.internal.is_some() {
            return Ok(Verdict::Continue);
        }
        let Some(group) = self.config.groups.get(&ctx.request.requested_model) else {
            return Ok(Verdict::Continue);
        };
        let name = ctx.request.requested_model.clone();
        if ctx.request.stream {
            return Ok(Verdict::Reject(ApiError::InvalidField {
                param: Some("stream".into()),
                message: format!(
                    "model {name} fans out to several models and cannot stream; send stream: false"
                ),
            }));
        }
        if group.mode == Mode::All && ctx.request.endpoint != Endpoint::ChatCompletions {
            return Ok(Verdict::Reject(ApiError::InvalidField {
                param: Some("model".into()),
                message: format!(
                    "model {name} answers with several choices, which only /v1/chat/completions can carry"
                ),
            }));
        }
        let Some(Inbound::Chat(chat)) = &ctx.request.parsed else {
            return Ok(Verdict::Reject(ApiError::InvalidField {
                param: Some("model".into()),
                message: format!("model {name} fans out chat requests only"),
            }));
        };
        let mut body = serde_json::to_value(chat).map_err(|e| ModuleError::Failed {
            module: "fan_out",
            message: format!("cannot encode the request: {e}"),
        })?;
        if let Some(map) = body.as_object_mut() {
            map.remove("stream");
            map.remove("stream_options");
        }
        let mut calls = self.start(ctx, group, &body);
        let mut answers: Vec<(String, InternalAnswer)> = Vec::new();
        let mut failed: Vec<(String, ApiError)> = Vec::new();
        while let Some(joined) = calls.join_next().await {
            let (model, result) = match joined {
                Ok(reply) => reply,
                Err(e) => {
                    return Err(ModuleError::Failed {
                        module: "fan_out",
                        message: format!("a fan-out call failed to run: {e}"),
                    });
                }
            };
            match result {
                Ok(answer) => {
                    answers.push((model, answer));
                    if group.mode == Mode::First {
                        // The others run on, detached, to be traced and priced.
                        calls.detach_all();
                        break;
                    }
                }
                Err(err) => failed.push((model, err)),
            }
        }
        let failed_models: Vec<String> = failed.iter().map(|(m, _)| m.clone()).collect();
        header(ctx, "x-stockyard-fan-out-failed", &failed_models);
        if answers.is_empty() {
            // Every call failed: the client gets the first member's error.
            let first = group
                .models
                .iter()
                .find_map(|m| failed.iter().find(|(f, _)| f == m))
                .map(|(_, e)| e.clone());
            return Ok(Verdict::Reject(first.unwrap_or(ApiError::Internal {
                message: format!("model {name}: no fan-out call answered"),
            })));
        }
        // In member order, so `all` answers the same way whichever call was fastest.
        answers.sort_by_key(|(m, _)| group.models.iter().position(|g| g == m));
        let answered: Vec<String> = answers.iter().map(|(m, _)| m.clone()).collect();
        header(ctx, "x-stockyard-fan-out", &answered);
        let answer = match group.mode {
            Mode::First => answers.swap_remove(0).1.body,
            Mode::All => merge(&answers, &name),
        };
        Ok(Verdict::Answer(CanonicalAnswer::Complete(answer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_field() {
        let err = |v: Value| FanOutConfig::parse(&v).err().unwrap_or_default();
        assert!(
            err(json!({"groups": {"duo": {"models": ["a"]}}})).starts_with("groups.duo.models")
        );
        assert!(
            err(json!({"groups": {"duo": {"models": ["a", ""]}}}))
                .starts_with("groups.duo.models[1]")
        );
        assert!(
            err(json!({"groups": {"duo": {"models": ["a", "b"], "mode": "any"}}}))
                .starts_with("groups.duo.mode")
        );
        assert!(
            err(json!({"groups": {"a": {"models": ["x", "y"]}, "b": {"models": ["a", "y"]}}}))
                .starts_with("groups.b.models[0]")
        );
    }
}
