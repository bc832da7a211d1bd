//! Model calls a module makes itself: an embeddings request for a semantic cache, a completion for
//! a judge. They go through the same chain (routing, retries, breakers, cost, trace) as a client's,
//! without HTTP to the proxy itself, and the trace marks them internal. The pipeline implements
//! [`ModelCalls`]; modules see only this trait.

use async_trait::async_trait;
use serde_json::Value;

use super::error::ApiError;
use crate::wire::openai::Endpoint;

pub struct InternalCall {
    /// Chat completions or embeddings.
    pub endpoint: Endpoint,
    /// The request body in that endpoint's OpenAI shape.
    pub body: Value,
    /// The client key the call is made for (its spend and limits), if any.
    pub key_id: Option<String>,
    /// The module making the call, recorded in the trace.
    pub caller: &'static str,
}

pub struct InternalAnswer {
    /// The answer in the endpoint's OpenAI shape.
    pub body: Value,
    /// What the call cost, in nano-dollars.
    pub cost_nanos: i64,
    /// The deployment that answered.
    pub deployment: Option<String>,
}

#[async_trait]
pub trait ModelCalls: Send + Sync {
    async fn call(&self, call: InternalCall) -> Result<InternalAnswer, ApiError>;
}
