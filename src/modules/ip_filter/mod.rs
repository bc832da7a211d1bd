//! `ip_filter`: allow and deny lists of client addresses and CIDR ranges, for every client and
//! per key, checked in `on_headers` (after `auth` named the key) so a refused client costs no
//! body read: 403 `address_not_allowed` in the client's format. Behind a reverse proxy the
//! client's address is read from `client_ip_header` (`X-Forwarded-For`), but only when the peer
//! is one of `trusted_proxies`; anyone else could write that header.
//!
//! A deny list wins over an allow list; a non-empty allow list admits only what it names. A key's
//! lists apply on top of the global ones. Model calls a module makes itself are not filtered.

mod net;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use self::net::{Net, any_contains, client_address};
use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::request::{ApiError, RequestCtx};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "ip_filter",
    description: "allow and deny lists of client addresses and CIDR ranges, global and per key, behind trusted proxies; 403",
    // Right after `auth` (10), which names the key a per-key list is for.
    order: 12,
    finish_order: 12,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: IpFilterConfig::default_json,
    check: IpFilterConfig::check,
    build,
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpFilterConfig {
    /// Addresses or CIDR ranges admitted; empty admits every address not denied.
    pub allow: Vec<String>,
    /// Addresses or CIDR ranges refused, whatever `allow` says.
    pub deny: Vec<String>,
    /// Peers whose `client_ip_header` is believed (a load balancer, a reverse proxy).
    pub trusted_proxies: Vec<String>,
    /// The header a trusted proxy puts the client's address in. Default `x-forwarded-for`.
    pub client_ip_header: String,
    /// Lists for one virtual key (by key id), on top of the global ones.
    pub keys: BTreeMap<String, KeyLists>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyLists {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl Default for IpFilterConfig {
    fn default() -> Self {
        IpFilterConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            trusted_proxies: Vec::new(),
            client_ip_header: "x-forwarded-for".into(),
            keys: BTreeMap::new(),
        }
    }
}

fn nets(field: &str, list: &[String]) -> Result<Vec<Net>, String> {
    list.iter()
        .enumerate()
        .map(|(i, text)| Net::parse(text).map_err(|e| format!("{field}[{i}]: {e}")))
        .collect()
}

/// The lists, parsed.
#[derive(Default)]
struct Lists {
    allow: Vec<Net>,
    deny: Vec<Net>,
}

impl Lists {
    fn parse(field: &str, allow: &[String], deny: &[String]) -> Result<Lists, String> {
        Ok(Lists {
            allow: nets(&format!("{field}allow"), allow)?,
            deny: nets(&format!("{field}deny"), deny)?,
        })
    }

    /// `None` if `ip` may pass; else which list refused it.
    fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if any_contains(&self.deny, ip) {
            return Some("deny");
        }
        if !self.allow.is_empty() && !any_contains(&self.allow, ip) {
            return Some("allow");
        }
        None
    }
}

impl ModuleConfig for IpFilterConfig {
    fn validate(&self) -> Result<(), String> {
        Parsed::from(self).map(|_| ())
    }
}

struct Parsed {
    global: Lists,
    trusted: Vec<Net>,
    header: hyper::header::HeaderName,
    keys: BTreeMap<String, Lists>,
}

impl Parsed {
    fn from(config: &IpFilterConfig) -> Result<Parsed, String> {
        let header = hyper::header::HeaderName::from_bytes(config.client_ip_header.as_bytes())
            .map_err(|_| {
                format!(
                    "client_ip_header: {:?} is not a valid header name",
                    config.client_ip_header
                )
            })?;
        let mut keys = BTreeMap::new();
        for (key, lists) in &config.keys {
            keys.insert(
                key.clone(),
                Lists::parse(&format!("keys.{key}."), &lists.allow, &lists.deny)?,
            );
        }
        Ok(Parsed {
            global: Lists::parse("", &config.allow, &config.deny)?,
            trusted: nets("trusted_proxies", &config.trusted_proxies)?,
            header,
            keys,
        })
    }
}

fn build(config: &serde_json::Value, _deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = IpFilterConfig::parse(config).map_err(ModuleError::Config)?;
    let parsed = Parsed::from(&config).map_err(ModuleError::Config)?;
    Ok(Arc::new(IpFilter { parsed }))
}

pub struct IpFilter {
    parsed: Parsed,
}

#[async_trait]
impl Module for IpFilter {
    fn name(&self) -> &'static str {
        "ip_filter"
    }

    fn hooks(&self) -> Hooks {
        Hooks::NONE
    }

    fn on_headers(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        if ctx.identity.internal.is_some() {
            return Ok(Verdict::Continue);
        }
        let p = &self.parsed;
        let key = ctx
            .identity
            .grant
            .as_ref()
            .map(|g| g.key_id.as_str())
            .or(ctx.identity.key_id.as_deref());
        let key_lists = key.and_then(|k| p.keys.get(k).map(|l| (k, l)));
        let Some(peer) = ctx.identity.client_addr else {
            // No address to judge (not a TCP client): only an allow list must refuse it.
            let restricted =
                !p.global.allow.is_empty() || key_lists.is_some_and(|(_, l)| !l.allow.is_empty());
            return Ok(match restricted {
                true => Verdict::Reject(ApiError::AddressNotAllowed {
                    message: "the client's address is unknown and an allow list is set".into(),
                }),
                false => Verdict::Continue,
            });
        };
        let header = ctx
            .request
            .headers
            .get(&p.header)
            .and_then(|v| v.to_str().ok());
        let ip = client_address(peer, header, &p.trusted);
        let refused = match p.global.refuses(ip) {
            Some(list) => Some(format!("modules.ip_filter.{list}")),
            None => key_lists.and_then(|(key, lists)| {
                lists
                    .refuses(ip)
                    .map(|list| format!("modules.ip_filter.keys.{key}.{list}"))
            }),
        };
        Ok(match refused {
            Some(list) => {
                let why = if list.ends_with("deny") {
                    "is on the deny list"
                } else {
                    "is not on the allow list"
                };
                Verdict::Reject(ApiError::AddressNotAllowed {
                    message: format!("client address {ip} {why} ({list})"),
                })
            }
            None => Verdict::Continue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_errors_name_the_field() {
        for (config, field) in [
            (json!({"allow": ["10.0.0.0/8", "nope"]}), "allow[1]"),
            (json!({"deny": ["10.0.0.0/40"]}), "deny[0]"),
            (json!({"trusted_proxies": ["x"]}), "trusted_proxies[0]"),
            (
                json!({"keys": {"k1": {"allow": ["1.2.3"]}}}),
                "keys.k1.allow[0]",
            ),
            (
                json!({"client_ip_header": "bad header"}),
                "client_ip_header",
            ),
            (json!({"alow": []}), "alow"),
        ] {
            let err = IpFilterConfig::check(&config).err().unwrap_or_default();
            assert!(
                err.starts_with(field) || err.contains(field),
                "{field}: {err}"
            );
        }
    }
}
