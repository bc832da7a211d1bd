//! Modules that exist only for tests, built on the public `Module` contract exactly as a feature
//! module would be, and added to a proxy with `App::open_with`. Each proves one part of the
//! contract: answering with a canonical answer, holding and ending streams, reserving before
//! routing and settling after cost, hooks in either form (async or plain) running in one order,
//! and making internal model calls through routing.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use stockyard::modules::registry::{ModuleSpec, never_required};
use stockyard::modules::{
    CanonicalAnswer, Hooks, Module, ModuleDeps, ModuleError, Outcome, StreamDecision, StreamEvent,
    StreamWindow, Verdict,
};
use stockyard::request::internal::InternalCall;
use stockyard::request::{ApiError, RequestCtx};
use stockyard::wire::openai::Endpoint;

fn no_config() -> Value {
    json!({})
}

fn any_config(_: &Value) -> Result<(), String> {
    Ok(())
}

// ---- canned: answers `canned-model` itself, from a canonical stream ----

/// The text the canned module answers with, in three deltas.
pub const CANNED_TEXT: &str = "Canned hello from a module.";
pub const CANNED_MODEL: &str = "canned-model";

pub static CANNED: ModuleSpec = ModuleSpec {
    name: "test_canned",
    description: "test: answers canned-model from a canned canonical stream",
    order: 15,
    finish_order: 50,
    enabled_by_default: true,
    required: never_required,
    default_config: no_config,
    check: any_config,
    build: |_, _| Ok(Arc::new(Canned)),
};

struct Canned;

pub fn canned_chunks() -> Vec<Value> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-canned", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": CANNED_MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for part in ["Canned hello ", "from a ", "module."] {
        chunks.push(chunk(json!({"content": part}), Value::Null));
    }
    chunks.push(chunk(json!({}), json!("stop")));
    chunks.push(
        json!({"id": "chatcmpl-canned", "object": "chat.completion.chunk",
        "created": 1_700_000_000, "model": CANNED_MODEL, "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}),
    );
    chunks
}

#[async_trait]
impl Module for Canned {
    fn name(&self) -> &'static str {
        "test_canned"
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.request.requested_model != CANNED_MODEL {
            return Ok(Verdict::Continue);
        }
        Ok(Verdict::Answer(CanonicalAnswer::Stream(canned_chunks())))
    }
}

// ---- guard: ends a stream when a marker appears, even split across events ----

/// Two words, so the mock (which splits at word starts) can put them in two chunks.
pub const MARKER: &str = "FORBIDDEN WORD";

pub static GUARD: ModuleSpec = ModuleSpec {
    name: "test_guard",
    description: "test: holds a window of events and ends the stream on a marker",
    order: 60,
    finish_order: 50,
    enabled_by_default: true,
    required: never_required,
    default_config: no_config,
    check: any_config,
    build: |_, _| Ok(Arc::new(Guard)),
};

struct Guard;

/// The text seen so far that may still begin the marker.
#[derive(Clone, Default)]
struct Tail(String);

#[async_trait]
impl Module for Guard {
    fn name(&self) -> &'static str {
        "test_guard"
    }

    fn stream_window(&self) -> Option<StreamWindow> {
        Some(StreamWindow {
            max_events: 8,
            max_bytes: 64 * 1024,
        })
    }

    fn on_event(&self, ctx: &mut RequestCtx, event: &mut StreamEvent) -> StreamDecision {
        let tail = ctx.slots.get_or_insert_default::<Tail>();
        tail.0.push_str(event.text());
        if tail.0.contains(MARKER) {
            return StreamDecision::End(ApiError::InvalidField {
                param: None,
                message: "the answer contained a blocked marker".into(),
            });
        }
        // Keep only the longest suffix that is a prefix of the marker: held until it resolves.
        let keep = (1..MARKER.len())
            .rev()
            .find(|n| tail.0.ends_with(&MARKER[..*n]))
            .unwrap_or(0);
        let cut = tail.0.len() - keep;
        tail.0.drain(..cut);
        if keep > 0 {
            StreamDecision::Hold
        } else {
            StreamDecision::Release
        }
    }
}

// ---- budget probe: reserves before routing, settles after cost ----

#[derive(Clone, Debug, Default)]
pub struct BudgetLog {
    /// (route known when reserving, reserved nanos)
    pub reserved: Vec<(bool, i64)>,
    /// (settled cost nanos, price known, outcome)
    pub settled: Vec<(i64, bool, Outcome)>,
    /// Each hook call of this probe and of the plain probe, in the order they ran.
    pub calls: Vec<&'static str>,
}

pub static BUDGET: ModuleSpec = ModuleSpec {
    name: "test_budget",
    description: "test: reserves in on_request before routing, settles in on_finish after cost",
    order: 12,
    finish_order: 15,
    enabled_by_default: true,
    required: never_required,
    default_config: no_config,
    check: any_config,
    build: build_budget,
};

fn build_budget(_: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    Ok(Arc::new(Budget {
        log: budget_log(deps),
    }))
}

struct Budget {
    log: Arc<Mutex<BudgetLog>>,
}

/// What a request reserved, kept in the context until finish.
#[derive(Clone)]
struct Hold(i64);

/// A model the budget probe has no work for: the chain must skip its waiting hooks.
pub const QUIET_MODEL: &str = "gpt-4o";

#[async_trait]
impl Module for Budget {
    fn name(&self) -> &'static str {
        "test_budget"
    }

    fn has_work(&self, _hook: Hooks, ctx: &RequestCtx) -> bool {
        ctx.request.requested_model != QUIET_MODEL
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let estimate = 1_000_000;
        let mut log = self.log.lock().unwrap();
        log.calls.push("async request");
        log.reserved.push((
            ctx.route.taken.is_some() || ctx.route.plan.is_some(),
            estimate,
        ));
        drop(log);
        ctx.slots.insert(Hold(estimate));
        Ok(Verdict::Continue)
    }

    async fn on_finish(&self, ctx: &mut RequestCtx, outcome: Outcome) {
        let mut log = self.log.lock().unwrap();
        log.calls.push("async finish");
        if ctx.slots.remove::<Hold>().is_some() {
            log.settled
                .push((ctx.usage.cost_nanos, ctx.usage.price_known, outcome));
        }
    }
}

/// The log of the budget probe built with `deps`.
pub fn budget_log(deps: &ModuleDeps) -> Arc<Mutex<BudgetLog>> {
    deps.shared.get_or_init(|| Mutex::new(BudgetLog::default()))
}

// ---- plain probe: the plain hook forms, placed around the budget probe's async ones ----

/// Before the budget probe in request order, after it in finish order: if the chain ran one form
/// before the other instead of one order for both, the calls would interleave differently.
pub static PLAIN: ModuleSpec = ModuleSpec {
    name: "test_plain",
    description: "test: on_request_now and on_finish_now, logged beside the budget probe's calls",
    order: 11,
    finish_order: 16,
    enabled_by_default: true,
    required: never_required,
    default_config: no_config,
    check: any_config,
    build: |_, deps| {
        Ok(Arc::new(Plain {
            log: budget_log(deps),
        }))
    },
};

struct Plain {
    log: Arc<Mutex<BudgetLog>>,
}

#[async_trait]
impl Module for Plain {
    fn name(&self) -> &'static str {
        "test_plain"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW | Hooks::FINISH_NOW
    }

    fn on_request_now(&self, _ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        self.log.lock().unwrap().calls.push("plain request");
        Ok(Verdict::Continue)
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        // After `cost` (finish order 10): the plain form sees what the async chain computed.
        let priced = ctx.usage.cost_nanos > 0;
        self.log.lock().unwrap().calls.push(if priced {
            "plain finish, priced"
        } else {
            "plain finish, unpriced"
        });
    }
}

// ---- embed probe: an internal embeddings call through routing ----

pub const EMBED_PROBE_MODEL: &str = "embed-probe";

pub static EMBED_PROBE: ModuleSpec = ModuleSpec {
    name: "test_embed_probe",
    description: "test: answers embed-probe with the length of an internal embeddings call",
    order: 16,
    finish_order: 50,
    enabled_by_default: true,
    required: never_required,
    default_config: no_config,
    check: any_config,
    build: |_, deps| {
        Ok(Arc::new(EmbedProbe {
            models: deps.models.clone(),
        }))
    },
};

struct EmbedProbe {
    models: Arc<dyn stockyard::request::internal::ModelCalls>,
}

#[async_trait]
impl Module for EmbedProbe {
    fn name(&self) -> &'static str {
        "test_embed_probe"
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        // Its own internal call must not call itself again.
        if ctx.request.requested_model != EMBED_PROBE_MODEL || ctx.identity.internal.is_some() {
            return Ok(Verdict::Continue);
        }
        let answer = self
            .models
            .call(InternalCall::for_request(
                ctx,
                Endpoint::Embeddings,
                json!({"model": "embed-group", "input": "hello"}),
                "test_embed_probe",
            ))
            .await;
        let text = match answer {
            Ok(answer) => format!(
                "dims={} via={} cost={}",
                answer.body["data"][0]["embedding"]
                    .as_array()
                    .map_or(0, Vec::len),
                answer.deployment.unwrap_or_default(),
                answer.cost_nanos
            ),
            Err(err) => return Ok(Verdict::Reject(err)),
        };
        Ok(Verdict::Answer(CanonicalAnswer::Complete(json!({
            "id": "chatcmpl-probe", "object": "chat.completion", "created": 1, "model": EMBED_PROBE_MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        }))))
    }
}

// ---- hoarder: holds everything, so its window must end the stream ----

pub static HOARDER: ModuleSpec = ModuleSpec {
    name: "test_hoarder",
    description: "test: holds every event of a stream, past its window",
    order: 61,
    finish_order: 50,
    enabled_by_default: true,
    required: never_required,
    default_config: no_config,
    check: any_config,
    build: |_, _| Ok(Arc::new(Hoarder)),
};

struct Hoarder;

#[async_trait]
impl Module for Hoarder {
    fn name(&self) -> &'static str {
        "test_hoarder"
    }

    fn stream_window(&self) -> Option<StreamWindow> {
        Some(StreamWindow {
            max_events: 2,
            max_bytes: 64 * 1024,
        })
    }

    fn on_event(&self, _ctx: &mut RequestCtx, _event: &mut StreamEvent) -> StreamDecision {
        StreamDecision::Hold
    }
}
