//! The request as every part of the request path sees it: its context, the errors it can end
//! with, and how the upstream is to be tried. Below both the pipeline (`proxy`) and the modules,
//! so a module never imports the pipeline.

pub mod attempt;
pub mod context;
pub mod error;
pub mod inflight;

pub use context::RequestCtx;
pub use error::{ApiError, ErrorSource};
