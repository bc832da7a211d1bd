//! The request as every part of the request path sees it: its context, the errors it can end
//! with, and how the upstream is to be tried. Below both the pipeline (`proxy`) and the modules,
//! so a module never imports the pipeline.

pub mod answer;
pub mod attempt;
pub mod bearer;
pub mod context;
pub mod error;
pub mod grant;
pub mod inflight;
pub mod internal;
pub mod outcome;
pub mod stream_event;

pub use answer::CanonicalAnswer;
pub use context::{BilledPart, RequestCtx};
pub use error::{ApiError, ErrorCode, ErrorSource};
pub use grant::{Budget, Grant, Limits, Period, TeamGrant};
pub use outcome::{Outcome, Verdict};
pub use stream_event::{StreamDecision, StreamEvent, StreamWindow};
