//! The attempt plan for one request: the primary group, then its fallbacks in order.
//!
//! Within a group the strategy's order is walked: a retryable failure (connect error, timeout
//! before the response head, 429, 5xx, a stream failing before content) moves to the next
//! deployment whose breaker admits traffic and which has capacity, after an exponential backoff
//! with jitter (at least the provider's `retry-after`), until the group's `max_attempts` or its
//! `max_total_ms` is spent; then the next fallback group begins. A context-window or content-policy
//! refusal goes straight to the fallbacks when the group says so. A client error ends the plan.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::RoutingShared;
use super::breaker::Availability;
use super::stats::{DeploymentStats, Ticket};
use super::strategy;
use super::table::Group;
use crate::request::attempt::{Attempt, AttemptFailure, AttemptPlan, FailureKind};
use crate::request::{ApiError, RequestCtx};
use crate::store::now_ms;

/// Left in the request context by a committed attempt, for the routing module's `on_finish`.
/// (The slot map needs `Clone`; the ticket inside must be released exactly once.)
#[derive(Clone)]
pub struct CommittedSlot(pub Arc<std::sync::Mutex<Option<CommittedDeployment>>>);

pub struct CommittedDeployment {
    /// The deployment's breaker key ([`super::breaker::key`]).
    pub breaker_key: String,
    /// `None` for a plain model, which has no breaker.
    pub breaker: Option<super::config::BreakerConfig>,
    pub stats: Arc<DeploymentStats>,
    pub ticket: Ticket,
}

struct Current {
    group: usize,
    deployment: usize,
    ticket: Option<Ticket>,
}

pub struct RoutePlan {
    shared: Arc<RoutingShared>,
    groups: Vec<Arc<Group>>,
    stream: bool,
    tag: Option<String>,
    started: Instant,
    group_idx: usize,
    order: Vec<usize>,
    cursor: usize,
    tried_in_group: u32,
    variant: Option<String>,
    current: Option<Current>,
    any_attempt: bool,
    /// Why groups were skipped without an attempt, for the 503 message.
    unavailable: Vec<Skipped>,
    group_started: bool,
}

/// A group skipped without an attempt.
struct Skipped {
    name: String,
    /// A plain model's group (the user configured no group, so the message names the model).
    plain: bool,
    earliest_ms: Option<i64>,
}

impl Skipped {
    fn of(group: &Group, earliest_ms: Option<i64>) -> Skipped {
        Skipped {
            name: group.name.clone(),
            plain: group.breaker.is_none(),
            earliest_ms,
        }
    }
}

enum Pick {
    Now(usize),
    Later { index: usize, until_ms: i64 },
    Nothing { earliest_ms: Option<i64> },
}

impl RoutePlan {
    pub fn new(
        shared: Arc<RoutingShared>,
        groups: Vec<Arc<Group>>,
        stream: bool,
        tag: Option<String>,
    ) -> RoutePlan {
        RoutePlan {
            shared,
            groups,
            stream,
            tag,
            started: Instant::now(),
            group_idx: 0,
            order: Vec::new(),
            cursor: 0,
            tried_in_group: 0,
            variant: None,
            current: None,
            any_attempt: false,
            unavailable: Vec::new(),
            group_started: false,
        }
    }

    fn advance_group(&mut self) {
        self.group_idx += 1;
        self.group_started = false;
    }

    /// The first usable deployment from the cursor on, wrapping; else the one that frees up first.
    fn pick(&mut self, group: &Group, now: i64) -> Pick {
        let n = self.order.len();
        let mut later: Option<(usize, i64)> = None;
        for step in 0..n {
            let index = self.order[(self.cursor + step) % n];
            let d = &group.deployments[index];
            if !d.stats.has_capacity(d.rpm, d.tpm, now) {
                let next_minute = (now / 60_000 + 1) * 60_000;
                if later.is_none_or(|(_, t)| next_minute < t) {
                    later = Some((index, next_minute));
                }
                continue;
            }
            let breaker = group.breaker.as_ref();
            match self.shared.peek(breaker, &d.breaker_key, now) {
                Availability::Available | Availability::Probe => {
                    if self.shared.acquire(breaker, &d.breaker_key, now) {
                        self.cursor = (self.cursor + step + 1) % n;
                        return Pick::Now(index);
                    }
                }
                Availability::Unavailable { until_ms } => {
                    if later.is_none_or(|(_, t)| until_ms < t) {
                        later = Some((index, until_ms));
                    }
                }
            }
        }
        match later {
            Some((index, until_ms)) => Pick::Later { index, until_ms },
            None => Pick::Nothing { earliest_ms: None },
        }
    }

    fn backoff(&self, group: &Group, retry_after: Option<Duration>) -> Duration {
        let retry = &group.retry;
        let exp = self.tried_in_group.saturating_sub(1).min(16);
        let ceiling = retry
            .base_backoff_ms
            .saturating_mul(1 << exp)
            .min(retry.max_backoff_ms);
        // Jitter in [ceiling/2, ceiling] spreads retries without making them much shorter.
        let jittered = ceiling / 2 + fastrand::u64(0..=ceiling / 2);
        Duration::from_millis(jittered).max(retry_after.unwrap_or_default())
    }

    fn report_failure(&mut self, failure: &AttemptFailure) {
        let Some(current) = self.current.take() else {
            return;
        };
        let group = &self.groups[current.group];
        let d = &group.deployments[current.deployment];
        let now = now_ms();
        let breaker = group.breaker.as_ref();
        match failure.kind {
            FailureKind::RateLimited { retry_after } => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                self.shared.rate_limited(
                    breaker,
                    &d.breaker_key,
                    now + wait.as_millis() as i64,
                    now,
                );
            }
            FailureKind::ContextWindow | FailureKind::ContentPolicy | FailureKind::Final => {
                // The request's fault, not the deployment's; a half-open probe is given back.
                self.shared.record(breaker, &d.breaker_key, false, now);
            }
            _ => self.shared.record(breaker, &d.breaker_key, true, now),
        }
        drop(current.ticket);
    }

    fn unavailable_error(&self) -> ApiError {
        let now = now_ms();
        let parts: Vec<String> = self
            .unavailable
            .iter()
            .map(|skipped| {
                let name = &skipped.name;
                let wait = |t: i64| (t - now).max(0) as f64 / 1000.0;
                match (skipped.plain, skipped.earliest_ms) {
                    (true, Some(t)) => format!(
                        "model {name:?}: rate limited by its provider, available again in {:.1} s",
                        wait(t)
                    ),
                    (true, None) => format!("model {name:?}: not available"),
                    (false, Some(t)) => format!(
                        "group {name:?}: earliest deployment available again in {:.1} s",
                        wait(t)
                    ),
                    (false, None) => format!("group {name:?}: no deployment available"),
                }
            })
            .collect();
        // The soonest any of them comes back, for clients (the SDKs) to wait that long.
        let retry_after_s = self
            .unavailable
            .iter()
            .filter_map(|skipped| skipped.earliest_ms)
            .min()
            .map(|t| ((t - now).max(0) as u64).div_ceil(1000).max(1));
        ApiError::Unavailable {
            message: format!(
                "every deployment is unavailable (circuit open, over capacity or rate limited); {}",
                parts.join("; ")
            ),
            retry_after_s,
        }
    }
}

impl AttemptPlan for RoutePlan {
    fn next(&mut self, last: Option<&AttemptFailure>) -> Result<Option<Attempt>, ApiError> {
        let mut backoff = Duration::ZERO;
        if let Some(failure) = last {
            self.report_failure(failure);
            let Some(group) = self.groups.get(self.group_idx).cloned() else {
                return Ok(None);
            };
            match failure.kind {
                FailureKind::Final => return Ok(None),
                FailureKind::ContextWindow if group.fallback_on_context_window => {
                    self.advance_group()
                }
                FailureKind::ContentPolicy if group.fallback_on_content_policy => {
                    self.advance_group()
                }
                FailureKind::ContextWindow | FailureKind::ContentPolicy => return Ok(None),
                FailureKind::RateLimited { retry_after }
                    if self.tried_in_group < group.retry.max_attempts =>
                {
                    backoff = self.backoff(&group, None);
                    // The retry-after is honoured through the cool-down: another deployment may
                    // answer at once; this one only after its retry-after.
                    let _ = retry_after;
                }
                _ if self.tried_in_group < group.retry.max_attempts => {
                    backoff = self.backoff(&group, None)
                }
                _ => self.advance_group(),
            }
        }

        loop {
            let Some(group) = self.groups.get(self.group_idx).cloned() else {
                return if self.any_attempt {
                    Ok(None)
                } else {
                    Err(self.unavailable_error())
                };
            };
            if !self.group_started {
                let (order, variant) = strategy::order(&group, self.stream, self.tag.as_deref());
                self.order = order;
                self.variant = variant;
                self.cursor = 0;
                self.tried_in_group = 0;
                self.group_started = true;
                backoff = Duration::ZERO;
            }
            let budget = Duration::from_millis(group.retry.max_total_ms);
            let now = now_ms();
            let (index, delay) = match self.pick(&group, now) {
                Pick::Now(index) => (index, backoff),
                Pick::Later { index, until_ms } => {
                    // Wait for a deployment to free up (a 429's retry-after) only when retrying
                    // within budget; a fresh request fails over or fails fast instead.
                    let wait = Duration::from_millis((until_ms - now).max(0) as u64).max(backoff);
                    let retrying =
                        self.tried_in_group > 0 && self.tried_in_group < group.retry.max_attempts;
                    if !retrying || self.started.elapsed() + wait > budget {
                        self.unavailable.push(Skipped::of(&group, Some(until_ms)));
                        self.advance_group();
                        continue;
                    }
                    (index, wait)
                }
                Pick::Nothing { earliest_ms } => {
                    self.unavailable.push(Skipped::of(&group, earliest_ms));
                    self.advance_group();
                    continue;
                }
            };
            if self.any_attempt && self.started.elapsed() + delay > budget {
                // Out of time for this group: release what pick() took and move on.
                let d = &group.deployments[index];
                self.shared
                    .record(group.breaker.as_ref(), &d.breaker_key, false, now);
                self.advance_group();
                continue;
            }
            let d = &group.deployments[index];
            self.tried_in_group += 1;
            self.any_attempt = true;
            self.current = Some(Current {
                group: self.group_idx,
                deployment: index,
                ticket: Some(d.stats.enter(now)),
            });
            return Ok(Some(Attempt {
                route: d.route.clone(),
                deployment: d.id.clone(),
                delay,
                late_commit: group.late_commit,
                variant: self.variant.clone(),
            }));
        }
    }

    fn committed(&mut self, ctx: &mut RequestCtx) {
        let Some(mut current) = self.current.take() else {
            return;
        };
        let group = &self.groups[current.group];
        let d = &group.deployments[current.deployment];
        if let Some(ticket) = current.ticket.take() {
            ctx.slots
                .insert(CommittedSlot(Arc::new(std::sync::Mutex::new(Some(
                    CommittedDeployment {
                        breaker_key: d.breaker_key.clone(),
                        breaker: group.breaker,
                        stats: d.stats.clone(),
                        ticket,
                    },
                )))));
        }
    }

    fn has_alternatives(&self) -> bool {
        let Some(group) = self.groups.get(self.group_idx) else {
            return false;
        };
        self.tried_in_group < group.retry.max_attempts || self.group_idx + 1 < self.groups.len()
    }
}
