//! `mock-upstream`: a scriptable fake OpenAI-compatible, Anthropic, Gemini and Bedrock upstream
//! for Stockyard's integration tests (in process, through [`MockUpstream`]) and its benchmark (in
//! process or as the binary).
//!
//! Start reading at `server.rs` (the request path), then:
//! - `script.rs`: [`Behavior`], the faults a test queues, and the per-request `"mock"` override;
//! - `openai/`: the reply for each endpoint (chat, completions, embeddings, models, errors, and
//!   the Responses API `/v1/responses` with its named SSE events) and the token-count rule in its
//!   module doc;
//! - `anthropic/`: the same for the Messages API (`/v1/messages`, `/v1/messages/count_tokens`),
//!   with its own token rule (cache reads and writes are not part of `input_tokens`);
//! - `gemini/`: the Gemini API and Vertex AI (`.../models/{model}:generateContent`,
//!   `:streamGenerateContent?alt=sse` with CRLF-separated events, `:batchEmbedContents`,
//!   `:predict`), with Google's error shape and its token rule (`usageMetadata`);
//! - `bedrock/`: Bedrock Runtime (`/model/{modelId}/converse`, `/converse-stream` in binary
//!   event-stream frames, `/invoke` for Titan and Cohere embeddings, Claude's Messages body, the
//!   image models (Nova Canvas, Titan Image Generator, Stability AI) and the rerank models,
//!   `/invoke-with-response-stream` for Claude), errors named in
//!   `x-amzn-ErrorType`, and its token rule (cache reads and writes not part of `inputTokens`);
//! - `batches.rs`: files and batches (OpenAI's and Anthropic's), the one stateful mode: a batch
//!   completes on its first retrieve, each result with [`BATCH_LINE_USAGE`] tokens;
//! - `body.rs`: whole bodies, and the timed SSE body that can abort mid-stream;
//! - `record.rs`: [`Recorded`], every request the mock got, in order.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mock_upstream::{Behavior, MockUpstream};
//! let mock = MockUpstream::start().await?;
//! mock.push(Behavior { status: Some(429), retry_after_s: Some(1), ..Behavior::default() });
//! // point the proxy at mock.base_url(); the first request gets the 429, later ones a normal answer
//! assert_eq!(mock.request_count(), 0);
//! # Ok(()) }
//! ```

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod anthropic;
mod base64;
mod batches;
mod bedrock;
mod body;
mod gemini;
mod openai;
mod record;
mod script;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use anthropic::THINKING_TEXT;
pub use batches::BATCH_LINE_USAGE;
pub use bedrock::eventstream::{encode_event_frame, encode_exception_frame};
pub use body::StreamAborted;
pub use openai::SPLIT_MARK;
pub use openai::models::MODELS;
pub use openai::operations::{IMAGE_OUTPUT_TOKENS, SPEECH_CHUNKS, TRANSCRIPTION_STREAM_USAGE};
pub use record::Recorded;
pub use script::{Behavior, DEFAULT_CHUNKS, DEFAULT_CONTENT};

/// A running mock server. Dropping it stops the server and closes every open connection.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    task: JoinHandle<()>,
}

impl MockUpstream {
    /// Binds `127.0.0.1:0` and serves in a tokio task.
    pub async fn start() -> std::io::Result<MockUpstream> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Binds `addr` and serves in a tokio task.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(server::Shared::default());
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        Ok(MockUpstream { addr, shared, task })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, ready for a client's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://ADDR/v1beta`, the Gemini API's root (`{root}/models/{model}:generateContent`).
    /// For Vertex AI, [`MockUpstream::base_url`] serves as the root
    /// (`{root}/projects/{p}/locations/{l}/publishers/google/models/{model}:...`).
    pub fn gemini_base_url(&self) -> String {
        format!("http://{}/v1beta", self.addr)
    }

    /// `http://ADDR`, the Bedrock Runtime endpoint (`{endpoint}/model/{modelId}/converse`).
    pub fn bedrock_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues `b` for one request: each request, on any endpoint, takes the next queued behaviour;
    /// once the queue is empty the default answers.
    pub fn push(&self, b: Behavior) {
        self.shared.script.push(b);
    }

    /// Replaces the behaviour used when the queue is empty (initially `Behavior::default()`).
    pub fn set_default(&self, b: Behavior) {
        self.shared.script.set_default(b);
    }

    /// Every request received so far, in arrival order (empty while recording is off).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorder.all()
    }

    /// How many requests arrived, counted even while recording is off.
    pub fn request_count(&self) -> usize {
        self.shared.recorder.count()
    }

    /// Turns recording of whole requests on (the default) or off. A long benchmark turns it off so
    /// memory stays flat; [`MockUpstream::request_count`] keeps counting either way.
    pub fn set_recording(&self, on: bool) {
        self.shared.recorder.set_enabled(on);
    }

    /// Stops accepting, closes every connection, and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The task never returns on its own, so this resolves with the cancellation we just asked
        // for; there is nothing to report.
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
