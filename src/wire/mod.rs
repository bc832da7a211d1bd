//! Client-facing wire formats. Each type names the fields the proxy must understand and keeps every
//! other field in a flattened map, so an unknown parameter reaches the upstream untouched.

pub mod anthropic;
pub mod multipart;
pub mod openai;
pub mod responses;
pub mod sse;
pub mod translate;
