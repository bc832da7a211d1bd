//! `prompt_templates`: named, versioned prompt templates (stored in the database, managed with
//! `stockyard prompts put|get|list|rollback` and `/admin/prompts`, every change in the ledger),
//! rendered into a request that names one.
//!
//! A request names a template with the header `x-stockyard-prompt: name@version`, or `name` for
//! the version in force, and gives its variables as a JSON object in the header
//! `x-stockyard-prompt-vars` (a header, so every client format can send it: Messages and
//! Responses bodies have no free-form field). For Chat Completions clients the body's `metadata`
//! object supplies variables too; the header wins on a name both give. The template's messages,
//! rendered with MiniJinja (an undefined variable is an error, 400), go before the request's
//! own. A version with weighted variants splits requests between them, sticky per `user` (else
//! per key, else at random); the trace records `name@version#variant` (column `prompt`).
//!
//! Templates are read from memory ([`book::PromptBook`], loaded at start-up and swapped by the
//! admin path on each change), never from disk on the request path. Runs after `tags` and
//! before `route_rules` (order 34), so rules see the rendered prompt.

pub mod book;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;

use self::book::PromptBook;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::request::{ApiError, RequestCtx};
use crate::wire::openai::{ChatMessage, Inbound, Role};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "prompt_templates",
    description: "renders named, versioned prompt templates (x-stockyard-prompt: name@version) with A/B variants",
    order: 34,
    finish_order: 34,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: PromptTemplatesConfig::default_json,
    check: PromptTemplatesConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptTemplatesConfig {
    /// Header naming the template, `name@version` or `name`. Default `x-stockyard-prompt`.
    pub header: String,
    /// Header carrying the variables, a JSON object. Default `x-stockyard-prompt-vars`.
    pub vars_header: String,
}

impl Default for PromptTemplatesConfig {
    fn default() -> Self {
        PromptTemplatesConfig {
            header: "x-stockyard-prompt".into(),
            vars_header: "x-stockyard-prompt-vars".into(),
        }
    }
}

impl ModuleConfig for PromptTemplatesConfig {
    fn validate(&self) -> Result<(), String> {
        for (field, value) in [("header", &self.header), ("vars_header", &self.vars_header)] {
            if hyper::header::HeaderName::from_bytes(value.as_bytes()).is_err() {
                return Err(format!("{field}: {value:?} is not a header name"));
            }
        }
        Ok(())
    }
}

fn build(value: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = PromptTemplatesConfig::parse(value).map_err(ModuleError::Config)?;
    Ok(Arc::new(PromptTemplates {
        config,
        book: book::book(deps),
    }))
}

pub struct PromptTemplates {
    config: PromptTemplatesConfig,
    book: Arc<PromptBook>,
}

fn role_of(text: &str) -> Role {
    match text {
        "system" => Role::System,
        "developer" => Role::Developer,
        "assistant" => Role::Assistant,
        _ => Role::User,
    }
}

impl PromptTemplates {
    fn invalid(&self, param: &str, message: String) -> Verdict {
        Verdict::Reject(ApiError::InvalidField {
            param: Some(param.to_string()),
            message,
        })
    }

    /// The variables: the chat body's `metadata`, then the header's object over it.
    fn vars(&self, ctx: &RequestCtx) -> Result<Map<String, Value>, String> {
        let mut vars = match &ctx.request.parsed {
            Some(Inbound::Chat(chat)) => chat
                .rest
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            _ => Map::new(),
        };
        if let Some(value) = ctx.request.headers.get(self.config.vars_header.as_str()) {
            let text = value
                .to_str()
                .map_err(|_| "must be ASCII JSON".to_string())?;
            let parsed: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
            let Value::Object(header) = parsed else {
                return Err("must be a JSON object".into());
            };
            vars.extend(header);
        }
        Ok(vars)
    }
}

#[async_trait]
impl Module for PromptTemplates {
    fn name(&self) -> &'static str {
        "prompt_templates"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.identity.internal.is_some() {
            return Ok(Verdict::Continue);
        }
        let header = self.config.header.as_str();
        let Some(reference) = ctx.request.headers.get(header) else {
            return Ok(Verdict::Continue);
        };
        let Ok(reference) = reference.to_str().map(|r| r.trim().to_string()) else {
            return Ok(self.invalid(header, format!("header {header}: must be ASCII")));
        };
        let template = match self.book.find(&reference) {
            Ok(template) => template,
            Err(e) => return Ok(self.invalid(header, format!("header {header}: {e}"))),
        };
        if !matches!(ctx.request.parsed, Some(Inbound::Chat(_))) {
            return Ok(self.invalid(
                header,
                format!("header {header}: prompt templates apply to chat requests only"),
            ));
        }
        let vars = match self.vars(ctx) {
            Ok(vars) => Value::Object(vars),
            Err(e) => {
                let vars_header = self.config.vars_header.as_str();
                return Ok(self.invalid(vars_header, format!("header {vars_header}: {e}")));
            }
        };
        // Sticky per user, else per key, so one person sees one variant; else at random.
        let sticky = ctx
            .identity
            .user
            .clone()
            .or_else(|| ctx.identity.key_id.clone())
            .unwrap_or_else(|| ctx.identity.request_id.clone());
        let digest = sha2::Sha256::digest(sticky.as_bytes());
        let mut draw = [0u8; 8];
        draw.copy_from_slice(&digest[..8]);
        let variant = template.pick(u64::from_le_bytes(draw));
        let rendered = match template.render(variant, &vars) {
            Ok(rendered) => rendered,
            Err(e) => {
                let name = reference.split('@').next().unwrap_or_default();
                return Ok(self.invalid(
                    self.config.vars_header.as_str(),
                    format!("prompt template {name}@{}: {e}", template.version),
                ));
            }
        };
        let Some(Inbound::Chat(chat)) = ctx.request.parsed.as_mut() else {
            return Ok(Verdict::Continue);
        };
        let rendered: Vec<ChatMessage> = rendered
            .into_iter()
            .map(|(role, content)| ChatMessage {
                role: role_of(&role),
                content: Some(Value::String(content)),
                rest: Map::new(),
            })
            .collect();
        chat.messages.splice(0..0, rendered);
        ctx.request_edited().map_err(|e| ModuleError::Failed {
            module: "prompt_templates",
            message: format!("cannot encode the rendered request: {e}"),
        })?;
        super::estimate::forget(ctx);
        let name = reference.split('@').next().unwrap_or_default();
        let mut label = format!("{name}@{}", template.version);
        if template.stored.variants.len() > 1 {
            label.push('#');
            label.push_str(&template.stored.variants[variant].name);
        }
        ctx.route.prompt = Some(label);
        Ok(Verdict::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_field() {
        let err = |v: Value| PromptTemplatesConfig::parse(&v).err().unwrap_or_default();
        assert!(err(json!({"header": "a b"})).starts_with("header"));
        assert!(err(json!({"vars_header": ""})).starts_with("vars_header"));
        assert!(err(json!({"headers": "x"})).contains("headers"));
    }
}
