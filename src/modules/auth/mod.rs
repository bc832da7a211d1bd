//! `auth`: checks the client's key against the configured keys (`[auth] keys` or
//! `STOCKYARD_API_KEYS`), from the headers alone, before the body is read. The key may come as
//! `Authorization: Bearer KEY` (OpenAI's SDKs), `x-api-key: KEY` (Anthropic's) or
//! `x-goog-api-key: KEY` (Google's). With no keys configured the proxy is in local mode and every
//! request passes; with keys the module cannot be disabled. Keys are compared in constant time
//! and never recorded: the trace gets a short hash. Refusals are counted per minute and source
//! ([`failures`]), not traced one by one.

pub mod failures;

use std::sync::Arc;

use async_trait::async_trait;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Module, ModuleDeps, ModuleError, Verdict};
use crate::request::{ApiError, RequestCtx};
use crate::secret::Secret;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "auth",
    description: "requires a configured client key on every /v1 route, checked from the headers before the body is read (local mode when none)",
    order: 10,
    finish_order: 30,
    enabled_by_default: true,
    required,
    default_config: AuthConfig::default_json,
    check: AuthConfig::check,
    build,
};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {}

impl ModuleConfig for AuthConfig {}

/// Once keys exist, turning auth off would open the proxy to anyone who reaches the port.
fn required(deps: &ModuleDeps) -> Option<&'static str> {
    (!deps.auth_keys.is_empty()).then_some(
        "client keys are configured, so every request must authenticate; remove the keys \
         (local mode, loopback only) to run without authentication",
    )
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    AuthConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(Auth {
        keys: deps.auth_keys.clone(),
        failures: deps
            .shared
            .get_or_init(|| failures::AuthFailures::new(deps.writer.clone())),
    }))
}

pub struct Auth {
    keys: Arc<Vec<Secret<String>>>,
    failures: Arc<failures::AuthFailures>,
}

/// Checks `headers` against `keys`: `Ok(None)` in local mode, `Ok(Some(key_id))` for a valid key.
/// Also used by `GET /v1/models`, which is not a proxied request but needs the same gate.
pub fn check(keys: &[Secret<String>], headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if keys.is_empty() {
        return Ok(None);
    }
    let presented = presented_key(headers).ok_or(ApiError::MissingKey)?;
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

/// The key as each official SDK sends it: OpenAI's as a bearer token, Anthropic's in
/// `x-api-key`, Google's in `x-goog-api-key`. The bearer token wins when several are present.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
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

    fn on_headers(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        match check(&self.keys, &ctx.request.headers) {
            Ok(key_id) => {
                ctx.identity.key_id = key_id;
                Ok(Verdict::Continue)
            }
            Err(err) => {
                self.failures.record(ctx.identity.client_addr, err.code());
                Ok(Verdict::Reject(err))
            }
        }
    }

    async fn on_shutdown(&self) {
        self.failures.flush();
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

    #[test]
    fn every_sdk_header_carries_the_key() {
        let keys = vec![Secret::new("sk-one".to_string())];
        for name in ["x-api-key", "x-goog-api-key"] {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static("sk-one"));
            assert!(matches!(check(&keys, &h), Ok(Some(_))), "{name}");
            h.insert(name, HeaderValue::from_static("sk-nope"));
            assert!(
                matches!(check(&keys, &h), Err(ApiError::InvalidKey)),
                "{name}"
            );
        }
        let mut h = headers(Some("Bearer sk-one"));
        h.insert("x-api-key", HeaderValue::from_static("sk-nope"));
        assert!(matches!(check(&keys, &h), Ok(Some(_))), "bearer wins");
    }
}
