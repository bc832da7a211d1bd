//! The configuration every guardrail module shares: what to do on a match, on which side of the
//! call to look, and for whom; the family's own settings sit under `detector`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::request::RequestCtx;

/// What a guardrail does with a match.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse with 400 `content_policy_violation` (or end a stream with that error).
    Block,
    /// Replace the match with a typed placeholder (`[EMAIL_1]`) before it reaches the provider.
    Redact,
    /// Let it through and record the verdict.
    Flag,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Redact => "redact",
            Action::Flag => "flag",
        }
    }
}

/// Whom a guardrail applies to; every list left empty means everyone. A request is in scope when
/// each non-empty list names it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    /// Team ids.
    pub teams: Vec<String>,
    /// Virtual key ids (or a static key's hash prefix, as traces name it).
    pub keys: Vec<String>,
    /// Models as the client names them.
    pub models: Vec<String>,
}

impl Scope {
    pub fn covers(&self, ctx: &RequestCtx) -> bool {
        let grant = ctx.identity.grant.as_deref();
        let in_list = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
        };
        in_list(&self.teams, grant.and_then(|g| g.team_id()))
            && in_list(
                &self.keys,
                grant
                    .map(|g| g.key_id.as_str())
                    .or(ctx.identity.key_id.as_deref()),
            )
            && in_list(&self.models, Some(ctx.request.requested_model.as_str()))
    }
}

/// A detector family: its name, its defaults and how its scanner is built.
pub trait Family: Send + Sync + 'static {
    type Config: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static;
    type Scanner: super::Scanner;
    const NAME: &'static str;
    const DEFAULT_ACTION: Action;
    /// Whether answers are scanned unless the config says otherwise.
    const DEFAULT_OUTPUT: bool;

    fn validate(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    fn scanner(config: &Self::Config) -> Result<Self::Scanner, String>;
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default, bound = "")]
pub struct GuardConfig<F: Family> {
    /// What to do on a match: `block`, `redact` or `flag`.
    pub action: Action,
    /// With `redact`: put the original values back in the answer to this same request, so a
    /// user's own data returns to them without ever reaching the provider.
    pub restore: bool,
    /// Scan the request (messages, tool results, tool-call arguments).
    pub input: bool,
    /// Scan the answer (content, tool-call arguments), streamed or not.
    pub output: bool,
    pub scope: Scope,
    /// The family's own settings.
    pub detector: F::Config,
}

impl<F: Family> Default for GuardConfig<F> {
    fn default() -> Self {
        GuardConfig {
            action: F::DEFAULT_ACTION,
            restore: false,
            input: true,
            output: F::DEFAULT_OUTPUT,
            scope: Scope::default(),
            detector: F::Config::default(),
        }
    }
}

impl<F: Family> crate::modules::registry::ModuleConfig for GuardConfig<F> {
    fn validate(&self) -> Result<(), String> {
        if self.restore && self.action != Action::Redact {
            return Err("restore: needs action = \"redact\"".into());
        }
        F::validate(&self.detector).map_err(|e| format!("detector.{e}"))?;
        F::scanner(&self.detector)
            .map(|_| ())
            .map_err(|e| format!("detector.{e}"))
    }
}
