//! Native calls: a client whose own format a provider takes as it is (an Anthropic Messages client
//! calling Anthropic or Claude on Bedrock, a Responses client calling OpenAI). The request goes
//! upstream untranslated (model name aside), so fields the canonical form cannot carry (thinking
//! signatures, `cache_control`, built-in tools, stored conversations) arrive untouched, and the
//! answer returns to the client as it came.
//!
//! The pipeline asks [`super::Provider::native`] and gets a [`NativeCall`]: everything it needs to
//! run such a call without knowing the provider. Usage, text and errors are still read, from a
//! canonical view the call provides beside the pass-through (a side decoder for streams, a
//! canonical answer for complete bodies), so traces and cost are as exact as on any other call.

use bytes::Bytes;
use serde_json::Value;

use super::ChatStreamDecoder;

/// The field of a side-decoder chunk that carries the client's final object (a completed
/// Responses object), which the relay keeps for storage.
pub const FINAL_RESPONSE_FIELD: &str = "x_final_response";

/// An error in a native stream's framing; it ends the body as a transport error would.
pub type ReframeError = Box<dyn std::error::Error + Send + Sync>;

/// One native call, chosen per attempt by the provider from the client's endpoint and the
/// upstream model.
pub trait NativeCall: Send + Sync {
    /// The client's request body as the provider takes it (the upstream model named wherever
    /// this provider expects it).
    fn body(&self, client_body: Value) -> Value;
    /// A decoder run beside the pass-through of a successful stream: canonical chunks for usage,
    /// text and errors (a chunk may carry [`FINAL_RESPONSE_FIELD`]).
    fn side_decoder(&self) -> Box<dyn ChatStreamDecoder>;
    /// For a provider whose stream framing differs from the client's: turns its bytes into the
    /// client's framing, before both the relay and the side decoder see them.
    fn reframer(&self) -> Option<Box<dyn StreamReframer>> {
        None
    }
    /// A complete native answer in the form modules and usage read (a canonical `chat.completion`
    /// where the client's format has one); the client still gets the answer as it came.
    fn canonical_answer(&self, body: Bytes) -> Result<Bytes, String>;
    /// Whether the provider's own error bodies are already in the client's shape (and so pass
    /// through untranslated).
    fn errors_fit_client(&self) -> bool {
        false
    }
}

/// Turns a native stream's bytes, as they arrive, into the client's framing.
pub trait StreamReframer: Send {
    fn push(&mut self, bytes: &[u8]) -> Result<Reframed, ReframeError>;
}

/// What one push of a [`StreamReframer`] gives.
#[derive(Debug, Default)]
pub struct Reframed {
    /// Bytes in the client's framing (maybe none yet: a frame can span pushes).
    pub bytes: Bytes,
    /// The stream must end after these bytes (the provider reported a failure in its framing).
    pub end: bool,
}
