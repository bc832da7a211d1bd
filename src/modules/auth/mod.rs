//! `auth`: checks the client's key, from the headers alone, before the body is read: first
//! against the static keys (`[auth] keys` or `STOCKYARD_API_KEYS`), then against the virtual
//! keys ([`table`], in memory, made with `stockyard keys create`). The key may come as
//! `Authorization: Bearer KEY` (OpenAI's SDKs), `x-api-key: KEY` (Anthropic's) or
//! `x-goog-api-key: KEY` (Google's). With neither static nor virtual keys the proxy is in local
//! mode and every request passes; once either exists the module cannot be disabled. Static keys
//! are compared in constant time; virtual keys are found by their keyed hash ([`hasher`]).
//! Neither is ever recorded: the trace gets a short hash of a static key, or a virtual key's id.
//! A virtual key leaves its grant (limits, team, metadata) in the context, and once the body is
//! parsed its allowed models are checked ([`models`], 403 naming the model). Refusals are counted
//! per minute and source ([`failures`]), not traced one by one.

pub mod failures;
pub mod hasher;
pub mod models;
pub mod table;

use std::sync::Arc;

use async_trait::async_trait;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::table::{KeyTable, Lookup};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::request::grant::Grant;
use crate::request::{ApiError, RequestCtx};
use crate::secret::Secret;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "auth",
    description: "requires a static or virtual client key on every /v1 route, checked from the headers before the body is read, and a virtual key's allowed models (local mode when no keys)",
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
    if !deps.auth_keys.is_empty() {
        return Some(
            "client keys are configured, so every request must authenticate; remove the keys \
             (local mode, loopback only) to run without authentication",
        );
    }
    table::of(deps)
        .is_some_and(|t| t.load().has_virtual_keys())
        .then_some(
            "virtual keys exist, so every request must authenticate (revoked keys count: \
             revoking every key does not reopen the proxy)",
        )
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    AuthConfig::parse(config).map_err(ModuleError::Config)?;
    Ok(Arc::new(Auth {
        keys: StaticKeys::new(deps.auth_keys.clone()),
        table: table::of(deps),
        failures: deps
            .shared
            .get_or_init(|| failures::AuthFailures::new(deps.writer.clone())),
    }))
}

pub struct Auth {
    keys: StaticKeys,
    table: Option<Arc<KeyTable>>,
    failures: Arc<failures::AuthFailures>,
}

/// Who a request authenticated as: nobody (local mode), a static key (its short id) or a
/// virtual key (its id and grant).
#[derive(Debug, Default)]
pub struct Authenticated {
    pub key_id: Option<String>,
    pub grant: Option<Arc<Grant>>,
}

/// Checks `headers` against the static `keys`, then the virtual keys of `table`. Local mode
/// (`Ok` with nobody) only when there are neither.
/// The static client keys with their trace ids, computed once (a SHA-256 per key) rather than
/// for every request.
pub struct StaticKeys {
    keys: Arc<Vec<Secret<String>>>,
    ids: Vec<String>,
}

impl StaticKeys {
    pub fn new(keys: Arc<Vec<Secret<String>>>) -> StaticKeys {
        let ids = keys.iter().map(|k| key_id(k.expose())).collect();
        StaticKeys { keys, ids }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id of the static key `presented` is. Every key is compared, in constant time, with
    /// no early exit, so timing does not tell which key nearly matched.
    fn find(&self, presented: &str) -> Option<&str> {
        let found = self.keys.iter().enumerate().fold(None, |found, (i, key)| {
            if key.matches(presented) {
                Some(i)
            } else {
                found
            }
        });
        found.map(|i| self.ids[i].as_str())
    }
}

pub fn authenticate(
    keys: &StaticKeys,
    table: Option<&KeyTable>,
    headers: &HeaderMap,
) -> Result<Authenticated, ApiError> {
    let virtual_keys = table.is_some_and(|t| t.load().has_virtual_keys());
    if keys.is_empty() && !virtual_keys {
        return Ok(Authenticated::default());
    }
    let presented = presented_key(headers).ok_or(ApiError::MissingKey)?;
    if let Some(id) = keys.find(presented) {
        return Ok(Authenticated {
            key_id: Some(id.to_string()),
            grant: None,
        });
    }
    match table.map(|t| t.lookup(presented, crate::store::now_ms)) {
        Some(Lookup::Valid(grant)) => Ok(Authenticated {
            key_id: Some(grant.key_id.clone()),
            grant: Some(grant),
        }),
        Some(Lookup::Revoked) => Err(ApiError::RevokedKey),
        Some(Lookup::Expired) => Err(ApiError::ExpiredKey),
        Some(Lookup::Unknown) | None => Err(ApiError::InvalidKey),
    }
}

/// Checks `headers` against the static `keys` alone: `Ok(None)` in local mode, `Ok(Some(key_id))`
/// for a valid key.
pub fn check(keys: &[Secret<String>], headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    authenticate(&StaticKeys::new(Arc::new(keys.to_vec())), None, headers).map(|who| who.key_id)
}

/// The key as each official SDK sends it: OpenAI's as a bearer token, Anthropic's in
/// `x-api-key`, Google's in `x-goog-api-key`. The bearer token wins when several are present.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::request::bearer::bearer_token);
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

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST_NOW | Hooks::SHUTDOWN
    }

    fn on_headers(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        match authenticate(&self.keys, self.table.as_deref(), &ctx.request.headers) {
            Ok(who) => {
                ctx.identity.key_id = who.key_id;
                ctx.identity.grant = who.grant;
                Ok(Verdict::Continue)
            }
            Err(err) => {
                self.failures.record(ctx.identity.client_addr, err.code());
                Ok(Verdict::Reject(err))
            }
        }
    }

    /// The body is parsed by now: a virtual key may only ask for the models its globs (and its
    /// team's) allow. Runs at the module's order, before routing resolves anything.
    fn on_request_now(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        // A file or batch call names no model (its provider is chosen by the `batches` module).
        let names_model = !ctx.request.endpoint.is_resource();
        if let Some(grant) = &ctx.identity.grant
            && names_model
            && !models::allowed(grant, &ctx.request.requested_model)
        {
            return Ok(Verdict::Reject(ApiError::ModelNotAllowed {
                model: ctx.request.requested_model.clone(),
            }));
        }
        Ok(Verdict::Continue)
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
