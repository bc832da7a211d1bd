//! Client-facing wire formats. Each type names the fields the proxy must understand and keeps every
//! other field in a flattened map, so an unknown parameter reaches the upstream untouched.

pub mod anthropic;
pub mod byte_keys;
pub mod gemini;
pub mod multipart;
pub mod openai;
pub mod responses;
pub mod sse;
pub mod translate;

/// Lays the facts a format keeps in its URL (Gemini's model and streaming method) into the
/// parsed body, where the translators read them.
pub fn add_path_facts(endpoint: openai::Endpoint, uri: &hyper::Uri, body: &mut serde_json::Value) {
    if endpoint == openai::Endpoint::GenerateContent {
        gemini::add_path_facts(uri, body);
    }
}

/// Whether a request may pass through natively in its client's framing: a Gemini stream asked
/// for as one JSON array (no `alt=sse`) is built by the encoder instead, since upstream streams
/// are always taken as SSE.
pub fn native_allowed(endpoint: openai::Endpoint, uri: &hyper::Uri, stream: bool) -> bool {
    endpoint != openai::Endpoint::GenerateContent || !stream || gemini::wants_sse(uri.query())
}
