//! `auth`: checks the client's bearer key against the configured keys (`[auth] keys` or
//! `STOCKYARD_API_KEYS`). With no keys configured the proxy is in local mode and every request
//! passes. Keys are compared in constant time and never recorded: the trace gets a short hash.

use std::sync::Arc;

use async_trait::async_trait;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Module, ModuleDeps, ModuleError, Verdict};
use crate::proxy::{ApiError, RequestCtx};
use crate::secret::Secret;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "auth",
    description: "requires a configured client key as a bearer token on /v1 (local mode when none)",
    order: 10,
    enabled_by_default: true,
    default_config: AuthConfig::default_json,
    check: AuthConfig::check,
    build,
};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {}

impl ModuleConfig for AuthConfig {}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    AuthConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(Auth {
        keys: deps.auth_keys.clone(),
    }))
}

pub struct Auth {
    keys: Arc<Vec<Secret<String>>>,
}

/// Checks `headers` against `keys`: `Ok(None)` in local mode, `Ok(Some(key_id))` for a valid key.
/// Also used by `GET /v1/models`, which is not a proxied request but needs the same gate.
pub fn check(keys: &[Secret<String>], headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if keys.is_empty() {
        return Ok(None);
    }
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(ApiError::MissingKey)?;
    // Check every key (no early exit) so timing does not tell which key nearly matched.
    let matched = keys
        .iter()
        .fold(false, |found, key| key.matches(presented) | found);
    if matched {
        Ok(Some(key_id(presented)))
    } else {
        Err(ApiError::InvalidKey)
    }
}

/// A short, stable, non-reversible id for a key: the first 12 hex digits of its SHA-256.
pub fn key_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("key_{}", &hex::encode(digest)[..12])
}

#[async_trait]
impl Module for Auth {
    fn name(&self) -> &'static str {
        "auth"
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        match check(&self.keys, &ctx.headers) {
            Ok(key_id) => {
                ctx.key_id = key_id;
                Ok(Verdict::Continue)
            }
            Err(err) => Ok(Verdict::Reject(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(auth: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_static(a));
        }
        h
    }

    #[test]
    fn local_mode_lets_everyone_in() {
        assert!(matches!(check(&[], &headers(None)), Ok(None)));
    }

    #[test]
    fn keys_are_required_and_checked() {
        let keys = vec![
            Secret::new("sk-one".to_string()),
            Secret::new("sk-two".to_string()),
        ];
        assert!(matches!(
            check(&keys, &headers(None)),
            Err(ApiError::MissingKey)
        ));
        assert!(matches!(
            check(&keys, &headers(Some("Bearer sk-three"))),
            Err(ApiError::InvalidKey)
        ));
        let id = check(&keys, &headers(Some("Bearer sk-two")))
            .ok()
            .flatten()
            .unwrap_or_default();
        assert!(id.starts_with("key_") && !id.contains("sk-two"));
    }
}
