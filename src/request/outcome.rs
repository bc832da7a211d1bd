//! What a module may decide at each hook, and how the request ended, as `on_finish` learns it.

use super::answer::CanonicalAnswer;
use super::error::ApiError;

/// The decision of `on_headers` and `on_request`.
pub enum Verdict {
    Continue,
    /// Answer the client with this; the upstream is not called. Egress renders it in the
    /// client's format, streamed or not, and `on_finish` and the trace see it like any answer.
    Answer(CanonicalAnswer),
    Reject(ApiError),
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An answer reached the client in full (from the upstream or a module).
    Success,
    /// The upstream failed or answered with an error status (`status` is what the client got).
    UpstreamError { status: u16 },
    /// The client went away before the end.
    Cancelled,
    /// A module refused the request (`by` names it) or the request itself was invalid (`None`).
    Refused {
        by: Option<&'static str>,
        status: u16,
    },
    /// The proxy itself could not serve it (a limit, an internal error, shutdown).
    Failed { status: u16 },
}

impl Outcome {
    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }
}
