//! The request path. [`pipeline::handle`] runs every phase of a proxied request in order; the
//! other files are its parts.

pub mod admission;
mod attempts;
pub mod body;
mod bytes_relay;
pub mod complete;
pub mod egress;
pub mod internal;
pub mod pipeline;
mod relay;
mod respond;
pub mod stream;
mod stream_hooks;
pub mod transcode;
pub mod usage;

pub use crate::request::{ApiError, RequestCtx};
pub use body::ProxyBody;
