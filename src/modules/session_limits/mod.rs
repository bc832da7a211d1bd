//! `session_limits`: for agents, a ceiling on requests, tokens and cost per session within a
//! window, so a looping agent is stopped with a 429 (in the client's format) that names the
//! limit. The session is named by a header (`x-stockyard-session`) or the request's
//! `metadata.session_id`, and counted per client key, so two keys never share a session.
//!
//! Requests are reserved before the call (atomically, so a burst cannot all pass); tokens and
//! cost are added when the request finishes, from its real usage, and a session already at its
//! token or cost ceiling is refused. Counts live in memory ([`MemoryCounters`]) in fixed windows
//! and are not persisted: a session is short-lived, and a restart forgets it.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use self::config::SessionLimitsConfig;
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome, Verdict};
use crate::request::{ApiError, RequestCtx};
use crate::store::counters::{MemoryCounters, Window, counter_key};
use crate::store::{Reservation, ReserveError};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "session_limits",
    description: "ceilings on requests, tokens and cost per agent session (x-stockyard-session) in a window; 429 naming the limit",
    // After `rate_limits` (25), before `budgets` (30).
    order: 27,
    // After `cost` (10): the session is charged the request's real usage and cost.
    finish_order: 16,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: SessionLimitsConfig::default_json,
    check: SessionLimitsConfig::check,
    build,
};

/// The counters, shared by every chain so a toggle or a config change keeps the counts.
struct Sessions(MemoryCounters);

fn build(config: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = SessionLimitsConfig::parse(config).map_err(ModuleError::Config)?;
    let sessions = deps
        .shared
        .get_or_init(|| Sessions(MemoryCounters::default()));
    Ok(Arc::new(SessionLimits { config, sessions }))
}

pub struct SessionLimits {
    config: SessionLimitsConfig,
    sessions: Arc<Sessions>,
}

/// The session a request belongs to (this module's slot), for charging it at the end.
#[derive(Clone)]
struct Session {
    counters: Arc<Names>,
    hold: Option<Reservation>,
}

impl SessionLimits {
    fn window(&self) -> Window {
        Window::fixed_ms(i64::try_from(self.config.window_ms).unwrap_or(3_600_000))
    }

    /// The session named by the header, else by the body's `metadata`, as the client wrote it.
    fn session_of(&self, ctx: &RequestCtx) -> Option<String> {
        let from_header = ctx
            .request
            .headers
            .get(self.config.header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(id) = from_header {
            return Some(id.to_string());
        }
        let field = self.config.metadata_field.as_str();
        let in_metadata = |value: &Value| value["metadata"][field].as_str().map(String::from);
        if let Some(client) = &ctx.request.client_request {
            return in_metadata(client);
        }
        match ctx.request.parsed.as_ref()? {
            crate::wire::openai::Inbound::Chat(chat) => chat
                .rest
                .get("metadata")
                .and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .map(String::from),
            _ => None,
        }
        .filter(|id| !id.is_empty())
    }

    /// "per 60 min window", for refusals only.
    fn per(&self) -> String {
        match self.config.window_ms {
            ms if ms % 60_000 == 0 => format!("per {} min window", ms / 60_000),
            ms if ms % 1000 == 0 => format!("per {} s window", ms / 1000),
            ms => format!("per {ms} ms window"),
        }
    }

    fn refusal(&self, what: String, reset_ms: i64) -> ApiError {
        let retry_after_s = u64::try_from((reset_ms + 999) / 1000).unwrap_or(1).max(1);
        ApiError::RateLimited {
            message: format!("session limit reached: {what}; retry in {retry_after_s} s"),
            retry_after_s,
        }
    }
}

/// A session's counter names, built once per request and kept for its end.
struct Names {
    requests: String,
    tokens: String,
    cost: String,
}

impl Names {
    fn of(key: &str, session: &str) -> Names {
        let name = |kind: &str| counter_key(&["session", kind, key, session]);
        Names {
            requests: name("requests"),
            tokens: name("tokens"),
            cost: name("cost"),
        }
    }
}

#[async_trait]
impl Module for SessionLimits {
    fn name(&self) -> &'static str {
        "session_limits"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW | Hooks::FINISH_NOW
    }

    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let Some(session) = self.session_of(ctx) else {
            return Ok(Verdict::Continue);
        };
        let key = ctx
            .identity
            .grant
            .as_ref()
            .map(|g| g.key_id.as_str())
            .or(ctx.identity.key_id.as_deref())
            .unwrap_or("-");
        let names = Arc::new(Names::of(key, &session));
        let window = self.window();
        let counters = &self.sessions.0;
        let now = crate::store::now_ms();
        let reset_ms = window.resets_at(now) - now;
        for (kind, limit, field, counter) in [
            (
                "tokens",
                self.config
                    .max_tokens
                    .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                "max_tokens",
                &names.tokens,
            ),
            (
                "cost",
                self.config.max_cost_nanos,
                "max_cost_nanos",
                &names.cost,
            ),
        ] {
            let Some(limit) = limit else { continue };
            let used = counters.read_now(counter, window);
            if used >= limit {
                let what = format!(
                    "session {session:?} used {used} {} of its {limit} {} (modules.session_limits.{field})",
                    if kind == "cost" {
                        "nano-dollars"
                    } else {
                        "tokens"
                    },
                    self.per()
                );
                return Ok(Verdict::Reject(self.refusal(what, reset_ms)));
            }
        }
        let mut hold = None;
        if let Some(limit) = self.config.max_requests {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            match counters.reserve_now(&names.requests, 1, limit, window) {
                Ok(reservation) => hold = Some(reservation),
                Err(ReserveError::Exceeded(over)) => {
                    let what = format!(
                        "session {session:?} made {} requests of its {limit} {} (modules.session_limits.max_requests)",
                        over.current,
                        self.per()
                    );
                    return Ok(Verdict::Reject(self.refusal(what, reset_ms)));
                }
                Err(ReserveError::Store(e)) => {
                    tracing::warn!(error = %e, "session limit not checked");
                }
            }
        }
        ctx.slots.insert(Session {
            counters: names,
            hold,
        });
        Ok(Verdict::Continue)
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, outcome: Outcome) {
        let Some(session) = ctx.slots.remove::<Session>() else {
            return;
        };
        let counters = &self.sessions.0;
        let window = self.window();
        // A request that never reached a provider (refused later in the chain) is not counted.
        if let Some(hold) = session.hold {
            let ran = ctx.route.attempts > 0 || ctx.route.answered_by.is_some();
            counters.settle_now(&hold, i64::from(ran));
        }
        if matches!(outcome, Outcome::Refused { .. }) {
            return;
        }
        let tokens = ctx
            .usage
            .tokens
            .prompt
            .saturating_add(ctx.usage.tokens.completion);
        if self.config.max_tokens.is_some() && tokens > 0 {
            let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
            counters.add_now(&session.counters.tokens, tokens, window);
        }
        if self.config.max_cost_nanos.is_some() && ctx.usage.cost_nanos > 0 {
            counters.add_now(&session.counters.cost, ctx.usage.cost_nanos, window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_field() {
        for (config, field) in [
            (json!({"window_ms": 5}), "window_ms"),
            (json!({"max_requests": 0}), "max_requests"),
            (json!({"max_cost_nanos": -1}), "max_cost_nanos"),
            (json!({"header": "bad header"}), "header"),
            (json!({"max_request": 3}), "max_request"),
        ] {
            let err = SessionLimitsConfig::check(&config)
                .err()
                .unwrap_or_default();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
