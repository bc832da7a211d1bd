//! [`ModelCalls`] for modules: a model call runs through [`pipeline::run_internal`] on the chain
//! in force, so it takes the same routing, retries, breakers, cost and trace as a client's call,
//! marked internal in the trace. Auth and admission are not run: the call belongs to a request
//! that already passed them. A module that makes such calls must skip its own hook when
//! `ctx.identity.internal` is set, or its call would call itself.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use hyper::HeaderMap;

use super::pipeline;
use super::pipeline::FinishOnDrop;
use crate::modules::ChainHandle;
use crate::providers::ProviderRegistry;
use crate::request::internal::{InternalAnswer, InternalCall, MAX_INTERNAL_DEPTH, ModelCalls};
use crate::request::{ApiError, RequestCtx};

/// Made before the chain (its modules hold it), pointed at the chain once that exists.
#[derive(Default)]
pub struct InternalCalls {
    target: OnceLock<(ChainHandle, Arc<ProviderRegistry>)>,
}

impl InternalCalls {
    pub fn connect(&self, chain: ChainHandle, providers: Arc<ProviderRegistry>) {
        let _ = self.target.set((chain, providers));
    }
}

#[async_trait]
impl ModelCalls for InternalCalls {
    async fn call(&self, call: InternalCall) -> Result<InternalAnswer, ApiError> {
        let Some((chain, providers)) = self.target.get() else {
            return Err(ApiError::Unavailable {
                message: "the proxy is still starting".into(),
                retry_after_s: None,
            });
        };
        if call.depth > MAX_INTERNAL_DEPTH {
            return Err(ApiError::Internal {
                message: format!(
                    "internal model call by {} nested deeper than {MAX_INTERNAL_DEPTH}",
                    call.caller
                ),
            });
        }
        let chain = chain.load_full();
        let mut ctx = RequestCtx::new(call.endpoint, crate::ids::uuid_v7(), HeaderMap::new(), None);
        ctx.identity.internal = Some(call.caller);
        ctx.identity.internal_depth = call.depth;
        ctx.identity.key_id = call.key_id;
        ctx.request.tags = call.tags;
        // If the request that made the call is dropped (its client left), this call still
        // finishes and is traced, as cancelled.
        let mut guard = FinishOnDrop::new(chain.clone(), ctx);
        let Some(ctx) = guard.ctx() else {
            return Err(ApiError::Internal {
                message: "internal call context missing".into(),
            });
        };
        let body = Bytes::from(call.body.to_string());
        let result = pipeline::run_internal(&chain, providers, ctx, body).await;
        ctx.timings.overhead = ctx.overhead_now();
        pipeline::finish(&chain, ctx).await;
        let (cost_nanos, deployment) = (ctx.usage.cost_nanos, ctx.route.deployment.clone());
        guard.disarm();
        let body = result?;
        let body = serde_json::from_slice(&body).map_err(|e| ApiError::UpstreamProtocol {
            message: format!("an internal model call answered with invalid JSON: {e}"),
        })?;
        Ok(InternalAnswer {
            body,
            cost_nanos,
            deployment,
        })
    }
}
