//! The request path. [`pipeline::handle`] runs every phase of a proxied request in order; the
//! other files are its parts.

pub mod admission;
pub mod attempt;
pub mod body;
pub mod context;
pub mod egress;
pub mod error;
pub mod inflight;
pub mod pipeline;
pub mod sse;
pub mod stream;
pub mod transcode;
pub mod usage;

pub use body::ProxyBody;
pub use context::RequestCtx;
pub use error::ApiError;
