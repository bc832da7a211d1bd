//! The caches' admin API: `GET /admin/cache` (entries, bytes, hits, misses and savings of each
//! cache) and `POST /admin/cache/purge` (`{"model": M}`, `{"key": K}`, `{"namespace": N}`,
//! `{"kind": "exact"}` or `{"all": true}`), which goes through [`Admin::apply`] like every change.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use super::apply::{Admin, AdminChange, AdminError};
use super::http::{admin_error, read_json};
use crate::ledger::{LedgerDraft, LedgerEntry};
use crate::modules::cache::ResponseEntries;
use crate::request::ApiError;
use crate::server::App;
use crate::store::writer::CacheOp;
use crate::store::{CacheKind, CachePurge};

pub(super) fn serves(path: &str) -> bool {
    path == "/admin/cache" || path == "/admin/cache/purge"
}

pub(super) async fn route(
    app: &Arc<App>,
    actor: &str,
    method: &Method,
    path: &str,
    request: Request<Incoming>,
) -> Result<Value, ApiError> {
    match (method, path) {
        (&Method::GET, "/admin/cache") => Ok(stats(&app.admin)),
        (&Method::POST, "/admin/cache/purge") => {
            let asked: PurgeRequest = read_json(request).await?;
            let purge = asked
                .into_purge()
                .map_err(|message| ApiError::InvalidField {
                    param: None,
                    message,
                })?;
            let entry = app
                .admin
                .apply(actor, AdminChange::PurgeCache(purge))
                .await
                .map_err(admin_error)?;
            Ok(json!({"removed": entry.details["removed"], "ledger_seq": entry.seq}))
        }
        _ => Err(ApiError::NotFound {
            path: path.to_string(),
        }),
    }
}

/// What `POST /admin/cache/purge` and `stockyard cache purge` take.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    pub model: Option<String>,
    /// A client key's id: its namespace and every sub-namespace under it.
    pub key: Option<String>,
    pub team: Option<String>,
    pub namespace: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub all: bool,
}

impl PurgeRequest {
    pub fn into_purge(self) -> Result<CachePurge, String> {
        let namespace = match (self.key, self.team, self.namespace) {
            (Some(key), None, None) => Some(format!("key:{key}")),
            (None, Some(team), None) => Some(format!("team:{team}")),
            (None, None, namespace) => namespace,
            _ => return Err("give at most one of key, team and namespace".into()),
        };
        let kind =
            match self.kind.as_deref() {
                None => None,
                Some(k) => Some(CacheKind::parse(k).ok_or_else(|| {
                    format!("kind: {k:?} is not one of exact, semantic, embedding")
                })?),
            };
        let purge = CachePurge {
            kind,
            model: self.model,
            namespace,
        };
        if purge == CachePurge::default() && !self.all {
            return Err(
                "say what to purge (model, key, team, namespace, kind) or all: true".into(),
            );
        }
        Ok(purge)
    }
}

/// Every cache's figures, from memory.
pub fn stats(admin: &Admin) -> Value {
    let shared = &admin.deps().shared;
    let mut out = json!({});
    if let Some(exact) = shared.get::<ResponseEntries>() {
        out["exact"] = json!(exact.0.snapshot());
    }
    if let Some(semantic) = shared.get::<crate::modules::semantic_cache::SemanticEntries>() {
        out["semantic"] = semantic.snapshot();
    }
    if let Some(embeddings) = shared.get::<crate::modules::cache::embeddings::EmbeddingEntries>() {
        out["embeddings"] = json!(embeddings.0.snapshot());
    }
    out
}

/// Removes what `purge` matches from memory and the file, and records it in the ledger.
pub(super) async fn purge(
    admin: &Admin,
    actor: &str,
    purge: CachePurge,
) -> Result<LedgerEntry, AdminError> {
    let shared = &admin.deps().shared;
    let mut removed = 0;
    if let Some(exact) = shared.get::<ResponseEntries>() {
        removed += exact.0.purge(&purge);
    }
    if let Some(semantic) = shared.get::<crate::modules::semantic_cache::SemanticEntries>() {
        removed += semantic.purge(&purge);
    }
    if let Some(embeddings) = shared.get::<crate::modules::cache::embeddings::EmbeddingEntries>() {
        removed += embeddings.0.purge(&purge);
    }
    let draft = LedgerDraft {
        actor: actor.to_string(),
        action: "cache.purge".into(),
        target: purge.namespace.clone().unwrap_or_else(|| "*".into()),
        details: json!({"purge": purge, "removed": removed}),
    };
    let entry = admin.writer.admin(None, draft).await?;
    // Queued behind the ledger entry on the one writer thread.
    admin.writer.submit_cache(CacheOp::Purge(purge));
    Ok(entry)
}
