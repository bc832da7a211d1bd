//! A provider's keys: the one from its config or the environment (memory only) and any stored
//! credentials (`stockyard providers add`, opened from the store at start-up or when added),
//! used in turn. A key that got a 429 rests until its `retry-after` while the others serve, and
//! the request that got the 429 goes again at once with the next free key, so the routing layer
//! sees a 429 only when every key is resting.
//!
//! Each adapter holds its pool behind an `Arc` shared with its copies (`with_timeouts`), so an
//! admin change swaps the keys in place: in force on the next request, no restart, and the
//! request path never names a key source. A request carries its [`KeyTicket`] as an extension
//! from `build_request` to [`super::http::HttpClient::send`], which reports the 429.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};

use super::UpstreamError;
use crate::secret::Secret;

/// How a key travels: the header and whether it is `Bearer KEY` or the key alone.
#[derive(Clone, Debug)]
pub struct KeyStyle {
    pub header: HeaderName,
    pub bearer: bool,
}

/// One key, its header value built once (marked sensitive so hyper never logs it).
pub struct PoolKey {
    /// The stored credential's id; `None` for the key from the config or the environment.
    id: Option<String>,
    header: Secret<HeaderValue>,
    resting_until_ms: AtomicI64,
}

impl PoolKey {
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    fn free_at(&self, now_ms: i64) -> bool {
        self.resting_until_ms.load(Ordering::Relaxed) <= now_ms
    }
}

/// The key a request was sent with, so the response can rest it after a 429.
#[derive(Clone)]
pub struct KeyTicket {
    pool: Arc<KeyPool>,
    key: Arc<PoolKey>,
}

pub struct KeyPool {
    provider: String,
    style: KeyStyle,
    keys: ArcSwap<Vec<Arc<PoolKey>>>,
    next: AtomicUsize,
    /// A provider that exists only through stored credentials: with none left it refuses
    /// requests instead of sending them without a key.
    needs_key: AtomicBool,
}

impl std::fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPool({}, {} keys)", self.provider, self.len())
    }
}

impl KeyPool {
    /// A pool holding `static_key` (from the config or the environment), if any.
    pub fn new(
        provider: &str,
        style: KeyStyle,
        static_key: Option<&Secret<String>>,
    ) -> Result<Arc<KeyPool>, String> {
        let pool = KeyPool {
            provider: provider.to_string(),
            style,
            keys: ArcSwap::from_pointee(Vec::new()),
            next: AtomicUsize::new(0),
            needs_key: AtomicBool::new(false),
        };
        if let Some(key) = static_key {
            let header = pool.header_for(key.expose()).map_err(|_| {
                format!("providers.{provider}: api key has characters not allowed in a header")
            })?;
            pool.keys.store(Arc::new(vec![Arc::new(PoolKey {
                id: None,
                header,
                resting_until_ms: AtomicI64::new(0),
            })]));
        }
        Ok(Arc::new(pool))
    }

    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of the stored credentials in the pool, and whether a key from the config or the
    /// environment is in it too.
    pub fn sources(&self) -> (Vec<String>, bool) {
        let keys = self.keys.load();
        let ids = keys.iter().filter_map(|k| k.id.clone()).collect();
        (ids, keys.iter().any(|k| k.id.is_none()))
    }

    /// The header value for `key`; an `Err` names no part of the key.
    pub fn header_for(&self, key: &str) -> Result<Secret<HeaderValue>, String> {
        let text = if self.style.bearer {
            format!("Bearer {key}")
        } else {
            key.to_string()
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| "the key has characters not allowed in an HTTP header".to_string())?;
        value.set_sensitive(true);
        Ok(Secret::new(value))
    }

    /// The keys this pool would hold with `stored` as its stored credentials (the static key
    /// stays): built and checked here, swapped in by [`KeyPool::install`], which cannot fail. A
    /// key already in the pool keeps its rest.
    pub fn prepare(
        &self,
        stored: &[(String, Secret<String>)],
    ) -> Result<Vec<Arc<PoolKey>>, String> {
        let current = self.keys.load();
        let mut keys: Vec<Arc<PoolKey>> =
            current.iter().filter(|k| k.id.is_none()).cloned().collect();
        for (id, key) in stored {
            if let Some(existing) = current.iter().find(|k| k.id.as_deref() == Some(id)) {
                keys.push(existing.clone());
                continue;
            }
            let header = self
                .header_for(key.expose())
                .map_err(|e| format!("credential {id}: {e}"))?;
            keys.push(Arc::new(PoolKey {
                id: Some(id.clone()),
                header,
                resting_until_ms: AtomicI64::new(0),
            }));
        }
        Ok(keys)
    }

    pub fn install(&self, keys: Vec<Arc<PoolKey>>, needs_key: bool) {
        self.needs_key.store(needs_key, Ordering::Relaxed);
        self.keys.store(Arc::new(keys));
    }

    /// The next key in turn that is not resting; when every key rests, the one that frees first
    /// (the upstream decides). `None` for an empty pool.
    fn pick(&self, now_ms: i64) -> Option<Arc<PoolKey>> {
        let keys = self.keys.load();
        if keys.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..keys.len())
            .map(|step| &keys[(start + step) % keys.len()])
            .find(|k| k.free_at(now_ms))
            .or_else(|| {
                keys.iter()
                    .min_by_key(|k| k.resting_until_ms.load(Ordering::Relaxed))
            })
            .cloned()
    }

    /// The next key in turn that is free, other than `not`.
    fn pick_free(&self, now_ms: i64, not: &PoolKey) -> Option<Arc<PoolKey>> {
        let keys = self.keys.load();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..keys.len())
            .map(|step| &keys[(start + step) % keys.len()])
            .find(|k| !std::ptr::eq(k.as_ref(), not) && k.free_at(now_ms))
            .cloned()
    }

    /// Puts the next key on `request` and the ticket in its extensions. With no key: keyless
    /// for a provider that runs without one (a local server), refused for one whose stored
    /// credentials were all removed.
    pub fn authorize(
        self: &Arc<Self>,
        request: &mut hyper::Request<Full<Bytes>>,
    ) -> Result<(), UpstreamError> {
        self.authorize_as(request, None)
    }

    /// Like [`KeyPool::authorize`], with the key `pin` names ([`KeyTicket::credential`]) when it
    /// is still in the pool: a file or batch lives under the account of the key that made it.
    pub fn authorize_as(
        self: &Arc<Self>,
        request: &mut hyper::Request<Full<Bytes>>,
        pin: Option<&str>,
    ) -> Result<(), UpstreamError> {
        let pinned = pin.and_then(|pin| {
            self.keys
                .load()
                .iter()
                .find(|k| k.id.as_deref().unwrap_or(CONFIG_CREDENTIAL) == pin)
                .cloned()
        });
        match pinned.or_else(|| self.pick(crate::store::now_ms())) {
            Some(key) => {
                request
                    .headers_mut()
                    .insert(self.style.header.clone(), key.header.expose().clone());
                request.extensions_mut().insert(KeyTicket {
                    pool: self.clone(),
                    key,
                });
                Ok(())
            }
            None if self.needs_key.load(Ordering::Relaxed) => Err(UpstreamError::Build {
                provider: self.provider.clone(),
                detail: "it has no credential left (removed); add one with `stockyard providers \
                         add`"
                    .into(),
            }),
            None => Ok(()),
        }
    }
}

/// How the key from the config or the environment is named where a credential id goes.
pub const CONFIG_CREDENTIAL: &str = "config";

impl KeyTicket {
    /// The key's stored credential id, or [`CONFIG_CREDENTIAL`]; never the key itself.
    pub fn credential(&self) -> &str {
        self.key.id.as_deref().unwrap_or(CONFIG_CREDENTIAL)
    }

    /// After a 429: rests this key until the `retry-after` in `headers` (1 s without one), and
    /// returns `template` again with the next free key (and that key's ticket), if there is one.
    pub fn rest_and_switch(
        &self,
        headers: &hyper::HeaderMap,
        template: Option<&hyper::Request<Full<Bytes>>>,
    ) -> Option<(hyper::Request<Full<Bytes>>, KeyTicket)> {
        let now = crate::store::now_ms();
        let wait = super::http::parse_retry_after(headers).unwrap_or(Duration::from_secs(1));
        self.key
            .resting_until_ms
            .fetch_max(now + wait.as_millis() as i64, Ordering::Relaxed);
        tracing::debug!(
            provider = %self.pool.provider,
            credential = self.key.id.as_deref().unwrap_or("(from the environment)"),
            rest_ms = wait.as_millis() as u64,
            "rate limited: this key rests"
        );
        let template = template?;
        let next = self.pool.pick_free(now, &self.key)?;
        let mut again = copy(template);
        again
            .headers_mut()
            .insert(self.pool.style.header.clone(), next.header.expose().clone());
        Some((
            again,
            KeyTicket {
                pool: self.pool.clone(),
                key: next,
            },
        ))
    }

    /// Whether another key could take over after a 429 (worth keeping a copy of the request).
    pub fn has_alternatives(&self) -> bool {
        self.pool.len() > 1
    }
}

/// The request again (the body is shared bytes, so no payload is copied).
pub(super) fn copy(request: &hyper::Request<Full<Bytes>>) -> hyper::Request<Full<Bytes>> {
    let mut again = hyper::Request::new(request.body().clone());
    *again.method_mut() = request.method().clone();
    *again.uri_mut() = request.uri().clone();
    *again.version_mut() = request.version();
    *again.headers_mut() = request.headers().clone();
    again
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(keys: &[&str]) -> Arc<KeyPool> {
        let style = KeyStyle {
            header: hyper::header::AUTHORIZATION,
            bearer: true,
        };
        let pool = KeyPool::new("p", style, None).unwrap_or_else(|e| panic!("{e}"));
        let stored: Vec<(String, Secret<String>)> = keys
            .iter()
            .map(|k| (format!("id-{k}"), Secret::new(k.to_string())))
            .collect();
        let prepared = pool.prepare(&stored).unwrap_or_else(|e| panic!("{e}"));
        pool.install(prepared, true);
        pool
    }

    fn sent_with(pool: &Arc<KeyPool>) -> (String, KeyTicket) {
        let mut request = hyper::Request::new(Full::new(Bytes::new()));
        pool.authorize(&mut request)
            .unwrap_or_else(|e| panic!("{e}"));
        let header = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let ticket = request.extensions().get::<KeyTicket>().cloned();
        (header, ticket.unwrap_or_else(|| panic!("no ticket")))
    }

    #[test]
    fn keys_take_turns_and_a_rate_limited_one_rests_while_the_others_serve() {
        let p = pool(&["a", "b", "c"]);
        let turns: Vec<String> = (0..6).map(|_| sent_with(&p).0).collect();
        assert_eq!(
            turns,
            [
                "Bearer a", "Bearer b", "Bearer c", "Bearer a", "Bearer b", "Bearer c"
            ]
        );
        let (_, ticket) = sent_with(&p); // a
        let mut limited = hyper::HeaderMap::new();
        limited.insert("retry-after", HeaderValue::from_static("30"));
        let template = hyper::Request::new(Full::new(Bytes::from_static(b"{}")));
        let (again, _) = ticket
            .rest_and_switch(&limited, Some(&template))
            .unwrap_or_else(|| panic!("no other key"));
        assert_ne!(
            again
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer a")
        );
        let later: Vec<String> = (0..4).map(|_| sent_with(&p).0).collect();
        assert!(!later.iter().any(|h| h == "Bearer a"), "{later:?}");
    }

    #[test]
    fn a_provider_left_without_stored_keys_refuses_instead_of_going_keyless() {
        let p = pool(&["a"]);
        p.install(p.prepare(&[]).unwrap_or_default(), true);
        let mut request = hyper::Request::new(Full::new(Bytes::new()));
        let err = p.authorize(&mut request).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("no credential left")));
        p.install(Vec::new(), false);
        assert!(p.authorize(&mut request).is_ok());
        assert!(request.headers().get("authorization").is_none());
    }
}
