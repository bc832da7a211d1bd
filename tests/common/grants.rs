//! A test-only module that gives a request the [`Grant`] described in its `x-test-grant` header,
//! the way `auth` gives one to a virtual key, so the modules that enforce grants (budgets, rate
//! limits) are tested over real sockets on exactly what they read: `ctx.identity.grant`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use stockyard::modules::registry::{ModuleSpec, never_required};
use stockyard::modules::{Module, ModuleError, Verdict};
use stockyard::request::{Grant, Limits, RequestCtx, TeamGrant};

pub static GRANTS: ModuleSpec = ModuleSpec {
    name: "test_grants",
    description: "test: the grant of the x-test-grant header, as auth gives a virtual key's",
    // Right after auth, before rate limits and budgets.
    order: 11,
    finish_order: 95,
    enabled_by_default: true,
    required: never_required,
    default_config: || json!({}),
    check: |_| Ok(()),
    build: |_, _| Ok(Arc::new(Grants)),
};

struct Grants;

#[async_trait]
impl Module for Grants {
    fn name(&self) -> &'static str {
        "test_grants"
    }

    fn on_headers(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let Some(text) = ctx
            .request
            .headers
            .get("x-test-grant")
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(Verdict::Continue);
        };
        let spec: Value =
            serde_json::from_str(text).map_err(|e| ModuleError::Config(e.to_string()))?;
        let limits =
            |v: &Value| -> Limits { serde_json::from_value(v.clone()).unwrap_or_default() };
        let team = spec.get("team").map(|t| {
            Arc::new(TeamGrant {
                id: t["id"].as_str().unwrap_or_default().to_string(),
                limits: limits(&t["limits"]),
            })
        });
        let metadata: BTreeMap<String, String> =
            serde_json::from_value(spec["metadata"].clone()).unwrap_or_default();
        let key_id = spec["key"].as_str().unwrap_or_default().to_string();
        ctx.identity.key_id = Some(key_id.clone());
        ctx.identity.grant = Some(Arc::new(Grant {
            key_name: key_id.clone(),
            limits_id: key_id.clone(),
            key_id,
            team,
            limits: limits(&spec["limits"]),
            metadata,
        }));
        Ok(Verdict::Continue)
    }
}

/// The `x-test-grant` header for key `key` with `limits`, in `team` (id, limits) if given.
pub fn grant(key: &str, limits: Value, team: Option<(&str, Value)>) -> String {
    let mut spec = json!({"key": key, "limits": limits, "metadata": {"env": "test"}});
    if let Some((id, limits)) = team {
        spec["team"] = json!({"id": id, "limits": limits});
    }
    spec.to_string()
}
