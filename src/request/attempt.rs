//! Attempts: how the pipeline calls the upstream once or several times.
//!
//! A module (routing) may leave an [`AttemptPlan`] in the request context; the pipeline asks it for
//! the next attempt after each failure, until one commits (a complete answer, or a stream whose first
//! content arrived) or the plan gives up. Without a plan the pipeline makes one attempt at the
//! model's default route ([`SinglePlan`]). The plan decides retries, backoff, fallbacks and which
//! deployment answers; the pipeline only classifies what happened.

use std::time::Duration;

use super::RequestCtx;
use super::error::ApiError;
use crate::providers::{ProviderRegistry, Route};

/// One call to make.
#[derive(Clone)]
pub struct Attempt {
    pub route: Route,
    /// Stable id of the deployment (`group/provider/model`), for headers, traces and breakers.
    pub deployment: String,
    /// Wait this long before sending (backoff).
    pub delay: Duration,
    /// For streams: hold the status and first frames up to this long for the first content, so a
    /// failure before any content can still be retried. `None` streams through at once.
    pub late_commit: Option<Duration>,
    /// A/B variant chosen for this request, if the group splits by tag.
    pub variant: Option<String>,
}

/// What went wrong with an attempt, as the plan needs to know it.
#[derive(Debug)]
pub struct AttemptFailure {
    pub kind: FailureKind,
    /// What the client gets if the plan gives up now.
    pub error: ApiError,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Could not connect.
    Connect,
    /// No response head in time.
    Timeout,
    /// The connection broke before the response head.
    Protocol,
    /// 429: rate limited, with the provider's `retry-after` when given.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx from the provider.
    ServerError,
    /// The prompt does not fit the model's context window.
    ContextWindow,
    /// Refused by the provider's content policy.
    ContentPolicy,
    /// A stream failed before its first content.
    StreamBeforeContent,
    /// The client's fault, or otherwise not worth another try.
    Final,
}

pub trait AttemptPlan: Send {
    /// The next attempt after `last` failed (`None` at the start); `Ok(None)` to give up with the
    /// last error; `Err` when nothing can be tried at all (e.g. every deployment's breaker is open).
    fn next(&mut self, last: Option<&AttemptFailure>) -> Result<Option<Attempt>, ApiError>;
    /// The attempt returned by the last `next` committed (its answer goes to the client); the plan
    /// may leave what it needs at finish in `ctx.slots`.
    fn committed(&mut self, _ctx: &mut RequestCtx) {}
    /// Whether a failure of the current attempt could still be retried or fallen back from.
    fn has_alternatives(&self) -> bool {
        false
    }
}

/// One attempt at the model's default route; no retries.
pub struct SinglePlan {
    attempt: Option<Attempt>,
}

impl SinglePlan {
    pub fn resolve(providers: &ProviderRegistry, model: &str) -> Result<SinglePlan, ApiError> {
        let route = providers
            .resolve(model)
            .map_err(|e| ApiError::UnknownModel {
                message: e.to_string(),
            })?;
        let deployment = format!("{}/{}", route.provider.name(), route.upstream_model);
        Ok(SinglePlan {
            attempt: Some(Attempt {
                route,
                deployment,
                delay: Duration::ZERO,
                late_commit: None,
                variant: None,
            }),
        })
    }
}

impl AttemptPlan for SinglePlan {
    fn next(&mut self, _last: Option<&AttemptFailure>) -> Result<Option<Attempt>, ApiError> {
        Ok(self.attempt.take())
    }
}

/// Classifies an upstream error answer (status and body) for the plan.
pub fn classify_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> FailureKind {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    match status {
        429 => FailureKind::RateLimited { retry_after },
        500..=599 => FailureKind::ServerError,
        400 | 413
            if text.contains("context_length_exceeded")
                || text.contains("context window")
                || text.contains("maximum context length")
                || text.contains("prompt is too long") =>
        {
            FailureKind::ContextWindow
        }
        400 | 403
            if text.contains("content_policy")
                || text.contains("content_filter")
                || text.contains("content management policy") =>
        {
            FailureKind::ContentPolicy
        }
        _ => FailureKind::Final,
    }
}

/// `retry-after` (seconds or an HTTP date) or `retry-after-ms`; the providers' key pools read it
/// too, so it lives with them.
pub use crate::providers::http::parse_retry_after;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status(503, b"", None), FailureKind::ServerError);
        assert_eq!(
            classify_status(429, b"", Some(Duration::from_secs(2))),
            FailureKind::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            classify_status(
                400,
                br#"{"error":{"code":"context_length_exceeded"}}"#,
                None
            ),
            FailureKind::ContextWindow
        );
        assert_eq!(
            classify_status(
                400,
                br#"{"error":{"code":"content_policy_violation"}}"#,
                None
            ),
            FailureKind::ContentPolicy
        );
        assert_eq!(classify_status(400, b"bad", None), FailureKind::Final);
        assert_eq!(classify_status(401, b"", None), FailureKind::Final);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = hyper::HeaderMap::new();
        h.insert("retry-after", hyper::header::HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after-ms",
            hyper::header::HeaderValue::from_static("250"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = hyper::HeaderMap::new();
        h.insert(
            "retry-after",
            hyper::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
    }
}
