//! What only a shared database asks of this backend: nodes that start together migrate once,
//! writers on several nodes append to one ledger chain, reads answer on a tokio worker thread,
//! no error shows the URL's password, a server that never answers fails the open in bounded
//! time, and a node reads the cache entries another node stored.

use std::sync::{Arc, Barrier};

use serde_json::json;

use super::testing;
use crate::ledger::{self, LedgerDraft};
use crate::store::suite::key;
use crate::store::{StoreUrl, open, open_read_only, schema_version_of};

fn draft(target: String) -> LedgerDraft {
    LedgerDraft {
        actor: "node".into(),
        action: "module.update".into(),
        target: target.clone(),
        details: json!({ "target": target }),
    }
}

#[test]
fn nodes_starting_together_migrate_once() {
    let Some(schema) = testing::schema() else {
        return;
    };
    let start = Arc::new(Barrier::new(4));
    let opened: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let start = start.clone();
                let url = schema.url.clone();
                s.spawn(move || {
                    start.wait();
                    open(&url, key()).is_ok()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .collect()
    });
    assert_eq!(opened, [true; 4]);
    assert_eq!(
        schema_version_of(&schema.url).ok(),
        Some(super::SCHEMA_VERSION)
    );
}

#[test]
fn writers_on_several_nodes_append_to_one_chain() {
    let Some(schema) = testing::schema() else {
        return;
    };
    let nodes = 3;
    let each = 15;
    let start = Arc::new(Barrier::new(nodes));
    std::thread::scope(|s| {
        for node in 0..nodes {
            let start = start.clone();
            let url = schema.url.clone();
            s.spawn(move || {
                let mut opened = open(&url, key()).unwrap_or_else(|e| panic!("open: {e}"));
                start.wait();
                for i in 0..each {
                    opened
                        .writes
                        .apply_admin(None, &draft(format!("n{node}-{i}")), i)
                        .unwrap_or_else(|e| panic!("append: {e}"));
                }
            });
        }
    });
    let reader = open_read_only(&schema.url).unwrap_or_else(|e| panic!("{e}"));
    let entries = reader.ledger.ledger().unwrap_or_default();
    assert_eq!(entries.len(), nodes * each as usize);
    let verified = ledger::verify(&entries, Some(&key())).map(|v| v.head.seq);
    assert_eq!(verified, Ok(entries.len() as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_work_on_a_runtime_thread() {
    let Some(schema) = testing::schema() else {
        return;
    };
    // The open, the queries and the drop at the end all happen here, on a tokio worker, where a
    // `block_on` (or a runtime waiting for its threads as it drops) would panic: the backend's
    // own runtime does the work and answers on std channels (`conn.rs`).
    let mut opened = open(&schema.url, key()).unwrap_or_else(|e| panic!("{e}"));
    opened
        .writes
        .apply_admin(None, &draft("t".into()), 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(opened.store.traces.trace_count().ok(), Some(0));
    assert_eq!(opened.store.ledger.ledger().map(|e| e.len()).ok(), Some(1));
    assert!(opened.store.health.ping().is_ok());
}

#[test]
fn errors_never_show_the_password() {
    // Nothing listens on port 1: the connection fails, and the message names the store without
    // its password.
    let url = StoreUrl::parse("postgres://postgres:hunter2secret@127.0.0.1:1/test")
        .unwrap_or_else(|e| panic!("{e}"));
    let message = open(&url, key())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
    let message = open_read_only(&url)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(!message.contains("hunter2secret"), "{message}");
}

#[test]
fn a_server_that_accepts_and_never_answers_fails_the_open_within_the_connect_bound() {
    // The listener's backlog completes the TCP handshake, so only the startup exchange hangs:
    // the driver's connect timeout (1 s here) does not cover it, the backend's bound (twice
    // that) does.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = silent.local_addr().map(|a| a.port()).unwrap_or_default();
    let url = StoreUrl::parse(&format!(
        "postgres://postgres:hunter2secret@127.0.0.1:{port}/test?connect_timeout=1"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let start = std::time::Instant::now();
    let message = open(&url, key())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(4),
        "{message}"
    );
    assert!(message.contains("no answer within 2000 ms"), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
}

#[test]
fn retention_deletes_in_batches_and_stats_name_the_tables() {
    use crate::store::TraceRecord;
    use crate::store::maintenance::RetentionKind;
    let Some(schema) = testing::schema() else {
        return;
    };
    let mut opened = open(&schema.url, key()).unwrap_or_else(|e| panic!("{e}"));
    let traces: Vec<TraceRecord> = (0..5)
        .map(|i| TraceRecord {
            id: format!("t{i}"),
            ts_ms: i,
            endpoint: "/v1/chat/completions".into(),
            requested_model: "m".into(),
            request_id: format!("r{i}"),
            request_body: Some("body".into()),
            ..TraceRecord::default()
        })
        .collect();
    opened
        .writes
        .append_traces(&traces)
        .unwrap_or_else(|e| panic!("{e}"));
    let w = &mut opened.writes;
    assert_eq!(w.delete_older(RetentionKind::Bodies, 3, 10).ok(), Some(3));
    assert_eq!(w.delete_older(RetentionKind::Traces, 4, 2).ok(), Some(2));
    assert_eq!(w.delete_older(RetentionKind::Traces, 4, 2).ok(), Some(2));
    assert_eq!(w.delete_older(RetentionKind::Traces, 4, 2).ok(), Some(0));
    assert_eq!(opened.store.traces.trace_count().ok(), Some(1));
    let stats = opened
        .store
        .maintenance
        .db_stats()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(stats.tables.iter().any(|t| t.name == "traces"), "{stats:?}");
    let refused = opened
        .store
        .maintenance
        .backup_into(std::path::Path::new("/tmp/never.db"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(refused.contains("pg_dump"), "{refused}");
}

#[test]
fn cache_entries_read_by_key_by_semantic_partition_and_as_keys() {
    use crate::store::{CacheEntry, CacheKind, CachePurge};
    let Some(schema) = testing::schema() else {
        return;
    };
    let mut opened = open(&schema.url, key()).unwrap_or_else(|e| panic!("{e}"));
    let entry = |kind, key: &str, partition: &str, created_ms, expires_ms| CacheEntry {
        kind,
        namespace: "key:k1".into(),
        key: key.into(),
        model: "m".into(),
        partition: partition.into(),
        created_ms,
        expires_ms,
        saved_nanos: 7,
        answer: json!({"object": "chat.completion", "k": key}),
        embedding: (kind == CacheKind::Semantic).then(|| vec![0.6, 0.8]),
    };
    for e in [
        entry(CacheKind::Exact, "a", "", 10, 1_000),
        entry(CacheKind::Exact, "old", "", 10, 50),
        entry(CacheKind::Semantic, "s1", "p", 10, 1_000),
        entry(CacheKind::Semantic, "s2", "p", 20, 1_000),
        entry(CacheKind::Semantic, "s3", "other", 30, 1_000),
    ] {
        opened
            .writes
            .save_cache_entry(&e)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let cache = &opened.store.cache;
    assert!(cache.is_shared() && opened.store.responses.is_shared());
    let found = cache.cache_entry(CacheKind::Exact, "key:k1", "a", 100);
    let found = found.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.map(|e| e.answer["k"].clone()), Some(json!("a")));
    // Expired, another kind, another namespace: none.
    for (kind, namespace, k) in [
        (CacheKind::Exact, "key:k1", "old"),
        (CacheKind::Semantic, "key:k1", "a"),
        (CacheKind::Exact, "key:k2", "a"),
    ] {
        assert_eq!(cache.cache_entry(kind, namespace, k, 100).ok(), Some(None));
    }
    let since = cache
        .semantic_since("key:k1", "p", 15, 100)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].key, "s2");
    assert_eq!(since[0].embedding.as_deref(), Some(&[0.6f32, 0.8][..]));

    opened
        .writes
        .purge_cache(&CachePurge {
            kind: Some(CacheKind::Semantic),
            ..CachePurge::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let mut keys = cache.cache_keys().unwrap_or_else(|e| panic!("{e}"));
    keys.sort_by(|a, b| (a.0.as_str(), &a.1, &a.2).cmp(&(b.0.as_str(), &b.1, &b.2)));
    let exact = |k: &str| (CacheKind::Exact, "key:k1".to_string(), k.to_string());
    assert_eq!(keys, [exact("a"), exact("old")]);
}

#[test]
fn console_text_search_tags_and_dimension_values() {
    use crate::store::TraceRecord;
    use crate::store::dashboard::{Dimension, TraceFilter};
    let Some(schema) = testing::schema() else {
        return;
    };
    let mut opened = open(&schema.url, key()).unwrap_or_else(|e| panic!("{e}"));
    let now = crate::store::now_ms();
    let traces: Vec<TraceRecord> = (0..6)
        .map(|i| TraceRecord {
            id: format!("t{i}"),
            ts_ms: now - 1000 + i,
            endpoint: "/v1/chat/completions".into(),
            requested_model: if i < 3 { "alpha" } else { "beta" }.into(),
            request_id: format!("r{i}"),
            request_body: Some(if i % 2 == 0 { "Find ME_100%" } else { "other" }.into()),
            tags: Some(
                if i == 5 {
                    r#"["prod","eu"]"#
                } else {
                    r#"["production"]"#
                }
                .into(),
            ),
            ..TraceRecord::default()
        })
        .collect();
    opened
        .writes
        .append_traces(&traces)
        .unwrap_or_else(|e| panic!("{e}"));
    let d = &opened.store.dashboard;
    let text = |t: &str| {
        let filter = TraceFilter {
            text: Some(t.into()),
            ..TraceFilter::default()
        };
        let page = d
            .trace_page(&filter, None, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        (
            page.rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            page.next.is_some(),
        )
    };
    // Case is ignored as SQLite's LIKE ignores it; `_` and `%` match only themselves.
    assert_eq!(text("find me_100%"), (vec!["t4".into(), "t2".into()], true));
    assert_eq!(text("me_1000"), (vec![], false));
    let tagged = d
        .trace_page(
            &TraceFilter {
                tag: Some("prod".into()),
                ..TraceFilter::default()
            },
            None,
            10,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<String> = tagged.rows.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, ["t5"], "a tag matches whole, never part of another");
    let models = d
        .dimension_values(Dimension::Model, now - 86_400_000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(models, ["alpha", "beta"]);
    assert_eq!(
        d.trace("t3").ok().flatten().map(|t| t.requested_model),
        Some("beta".into())
    );
}

/// Counter shares on a schema of its own, kept as long as the counters use them.
struct SchemaShares {
    shares: Arc<dyn crate::store::CounterStore>,
    _schema: Option<testing::PgSchema>,
}

impl SchemaShares {
    /// The schema's shares; the in-memory ones (so the suite still runs) when PostgreSQL tests
    /// are skipped.
    fn new() -> SchemaShares {
        let Some(schema) = testing::schema() else {
            return SchemaShares {
                shares: Arc::new(crate::store::counters::LocalShares::default()),
                _schema: None,
            };
        };
        let opened = open(&schema.url, key()).unwrap_or_else(|e| panic!("{e}"));
        SchemaShares {
            shares: opened.store.counters.clone(),
            _schema: Some(schema),
        }
    }
}

impl crate::store::CounterStore for SchemaShares {
    fn is_shared(&self) -> bool {
        self.shares.is_shared()
    }
    fn sync(
        &self,
        steps: Vec<crate::store::counters::shares::ShareSync>,
    ) -> Result<Vec<crate::store::counters::shares::Synced>, crate::store::StoreError> {
        self.shares.sync(steps)
    }
    fn seed(&self, c: &str, s: i64, e: i64, v: i64) -> Result<bool, crate::store::StoreError> {
        self.shares.seed(c, s, e, v)
    }
    fn prune(&self, now_ms: i64) -> Result<u64, crate::store::StoreError> {
        self.shares.prune(now_ms)
    }
}

// The hot-counter suite on leases of PostgreSQL rows: what a node of several sees.
crate::hot_counters_suite!(leased_postgres, |clock: Arc<crate::store::ManualClock>| {
    crate::store::counters::LeasedCounters::start(
        Arc::new(SchemaShares::new()),
        clock,
        "node-1".into(),
    )
});
