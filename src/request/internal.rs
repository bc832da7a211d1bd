//! Model calls a module makes itself: an embeddings request for a semantic cache, a completion for
//! a judge. They go through the same chain (routing, retries, breakers, cost, trace) as a client's,
//! without HTTP to the proxy itself, and the trace marks them internal. The pipeline implements
//! [`ModelCalls`]; modules see only this trait.

use async_trait::async_trait;
use serde_json::Value;

use super::RequestCtx;
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
    /// How many internal calls deep this one is (1 for a call made for a client's request).
    pub depth: u8,
    /// The tags of the request the call is made for, so its spend counts under them too.
    pub tags: Vec<String>,
}

/// The deepest an internal call may nest: a module's call whose own hooks call again is refused
/// past this, so a module that forgets to skip its own calls cannot recurse without end.
pub const MAX_INTERNAL_DEPTH: u8 = 2;

impl InternalCall {
    /// A call made while handling `parent`: for the same key, one level deeper.
    pub fn for_request(
        parent: &RequestCtx,
        endpoint: Endpoint,
        body: Value,
        caller: &'static str,
    ) -> InternalCall {
        InternalCall {
            endpoint,
            body,
            key_id: parent.identity.key_id.clone(),
            caller,
            depth: parent.identity.internal_depth + 1,
            tags: parent.request.tags.clone(),
        }
    }
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
