//! The conformance suite every store backend runs, written once. `store_suite!(name, make)`
//! expands to one test per case; `make` takes a fresh temp dir and returns an empty store (a
//! file in it for SQLite; a schema of its own on the test server for PostgreSQL, which fails the
//! test when the server is unreachable, or skips with the reason printed under
//! `STOCKYARD_SKIP_PG=1`: see `postgres/testing.rs`).

use serde_json::json;

use super::*;
use crate::ledger::{self, LedgerDraft, LedgerKey};

pub use super::suite_batches::batch_objects_save_and_keep_their_first_costing;
pub use super::suite_counters::counter_shares_lease_within_the_limit_across_nodes;
pub use super::suite_dashboard::dashboard_pages_by_keyset_and_rolls_up_hours_and_days;
pub use super::suite_governance::{
    credentials_add_remove_and_reseal_in_one_transaction, keys_teams_and_admin_keys_save_and_load,
};
pub use super::suite_spend::{
    budget_alerts_are_recorded_once, rate_counts_add_up_and_expire,
    spend_rolls_up_by_every_dimension,
};
pub use super::suite_trace_ids::{
    trace_rows_keep_every_column_as_written, traces_are_found_by_id_in_any_order_and_shape,
};

pub fn key() -> LedgerKey {
    LedgerKey::from_env_value("00112233445566778899aabbccddeeff").unwrap_or_else(|e| panic!("{e}"))
}

pub fn opened(url: &StoreUrl) -> Opened {
    open(url, key()).unwrap_or_else(|e| panic!("open {url}: {e}"))
}

pub fn draft(action: &str, target: &str) -> LedgerDraft {
    LedgerDraft {
        actor: "suite".into(),
        action: action.into(),
        target: target.into(),
        details: json!({"target": target}),
    }
}

fn trace(
    id: &str,
    ts_ms: i64,
    model: &str,
    provider: Option<&str>,
    status: u16,
    cost: i64,
) -> TraceRecord {
    TraceRecord {
        id: id.into(),
        ts_ms,
        endpoint: "/v1/chat/completions".into(),
        requested_model: model.into(),
        provider: provider.map(String::from),
        status,
        tokens: crate::cost::Tokens {
            prompt: 10,
            completion: 5,
            ..Default::default()
        },
        cost_nanos: cost,
        request_id: format!("req-{id}"),
        key_id: Some("k1".into()),
        attempts: 1,
        ..TraceRecord::default()
    }
}

pub fn migrates_from_empty_and_reopens(url: &StoreUrl) {
    let first = opened(url);
    let health = &first.store.health;
    assert!(health.ping().is_ok());
    assert_eq!(health.schema_version().ok(), Some(SCHEMA_VERSION));
    assert_eq!(health.expected_schema_version(), SCHEMA_VERSION);
    assert_eq!(health.backend(), url.backend());
    assert_eq!(schema_version_of(url).ok(), Some(SCHEMA_VERSION));
    drop(first);
    let again = opened(url);
    assert_eq!(
        again.store.health.schema_version().ok(),
        Some(SCHEMA_VERSION)
    );
    let read_only = open_read_only(url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_only.traces.trace_count().ok(), Some(0));
}

pub fn traces_append_query_count_and_spend(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let day = 86_400_000;
    let rows = [
        trace("01", day, "gpt-4o", Some("openai"), 200, 300),
        trace("02", day + 1, "claude", Some("anthropic"), 200, 500),
        trace("03", 2 * day, "gpt-4o", Some("openai"), 502, 100),
        trace("04", 2 * day + 5, "local", None, 200, 0),
    ];
    writes
        .append_traces(&rows)
        .unwrap_or_else(|e| panic!("{e}"));
    // A retried batch must not double rows.
    writes
        .append_traces(&rows[..2])
        .unwrap_or_else(|e| panic!("{e}"));
    let t = &store.traces;
    assert_eq!(t.trace_count().ok(), Some(4));

    let all = t.traces(&TraceQuery {
        limit: 10,
        ..TraceQuery::default()
    });
    let ids: Vec<String> = all.unwrap_or_default().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["04", "03", "02", "01"], "newest first");
    let gpt = t.traces(&TraceQuery {
        limit: 10,
        model: Some("gpt-4o".into()),
        status: None,
    });
    assert_eq!(gpt.map(|r| r.len()).ok(), Some(2));
    let failed = t.traces(&TraceQuery {
        limit: 10,
        model: None,
        status: Some(502),
    });
    let failed = failed.unwrap_or_default();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].tokens.prompt, failed[0].key_id.as_deref()),
        (10, Some("k1"))
    );
    let one = t.traces(&TraceQuery {
        limit: 1,
        ..TraceQuery::default()
    });
    assert_eq!(one.map(|r| r.len()).ok(), Some(1));

    // Spend comes from the rollups, which the retried batch did not double either.
    let t = &store.spend;
    let by_model = t.spend(SpendBy::Model, 0).unwrap_or_default();
    let keys: Vec<(&str, i64, i64)> = by_model
        .iter()
        .map(|r| (r.key.as_str(), r.requests, r.cost_nanos))
        .collect();
    assert_eq!(
        keys,
        [("claude", 1, 500), ("gpt-4o", 2, 400), ("local", 1, 0)]
    );
    assert_eq!(by_model[1].prompt_tokens, 20);
    let by_provider = t.spend(SpendBy::Provider, 0).unwrap_or_default();
    let keys: Vec<&str> = by_provider.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["anthropic", "openai", "(none)"]);
    let by_day = t.spend(SpendBy::Day, 2 * day).unwrap_or_default();
    let keys: Vec<(&str, i64)> = by_day
        .iter()
        .map(|r| (r.key.as_str(), r.requests))
        .collect();
    assert_eq!(keys, [("1970-01-03", 2)], "only traces since the cut-off");
}

pub fn ledger_appends_in_order_and_verifies(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let mut sealed = Vec::new();
    for (i, target) in ["a", "b", "c"].into_iter().enumerate() {
        let entry = writes
            .apply_admin(None, &draft("module.update", target), i as i64 + 1)
            .unwrap_or_else(|e| panic!("{e}"));
        sealed.push(entry);
    }
    let entries = store.ledger.ledger().unwrap_or_default();
    assert_eq!(entries, sealed);
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let verified = ledger::verify(&entries, Some(&key())).map(|v| v.head.seq);
    assert_eq!(verified, Ok(3));
}

pub fn module_state_and_prices_save_and_load(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    assert_eq!(store.modules.module_states().ok(), Some(vec![]));
    assert_eq!(store.modules.stored_prices().ok(), Some(None));
    for (name, enabled) in [("trace", true), ("cost", false), ("trace", false)] {
        let state = ModuleState {
            name: name.into(),
            enabled,
            config: json!({"n": name, "enabled": enabled}),
            scope: "global".into(),
        };
        writes
            .apply_admin(
                Some(&Persist::ModuleState(state)),
                &draft("module.update", name),
                1,
            )
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let states = store.modules.module_states().unwrap_or_default();
    let seen: Vec<(&str, bool)> = states
        .iter()
        .map(|s| (s.name.as_str(), s.enabled))
        .collect();
    assert_eq!(
        seen,
        [("cost", false), ("trace", false)],
        "by name, newest wins"
    );
    assert_eq!(states[1].config, json!({"n": "trace", "enabled": false}));

    for body in ["{\"v\":1}", "{\"v\":2}"] {
        let change = Persist::Prices { body: body.into() };
        writes
            .apply_admin(Some(&change), &draft("prices.update", "prices"), 2)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        store.modules.stored_prices().ok(),
        Some(Some("{\"v\":2}".into()))
    );
    assert_eq!(store.ledger.ledger().map(|e| e.len()).ok(), Some(5));
}

pub fn breakers_save_and_restore(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let record = |deployment: &str, phase, updated_ms| BreakerRecord {
        deployment: deployment.into(),
        phase,
        reason: format!("{deployment} reason"),
        updated_ms,
    };
    writes
        .save_breaker(&record("g/p/b", BreakerPhase::Open { until_ms: 9 }, 1))
        .unwrap_or_else(|e| panic!("{e}"));
    writes
        .save_breaker(&record("g/p/a", BreakerPhase::HalfOpen { probes: 3 }, 2))
        .unwrap_or_else(|e| panic!("{e}"));
    // An operator's change, persisted with its ledger entry; newest wins.
    let forced = record("g/p/b", BreakerPhase::Closed, 3);
    writes
        .apply_admin(
            Some(&Persist::Breaker(forced.clone())),
            &draft("breaker.reset", "g/p/b"),
            3,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let stored = store.breakers.breakers().unwrap_or_default();
    assert_eq!(
        stored,
        [
            // Probe counts are not kept: a probe in flight at shutdown is gone.
            record("g/p/a", BreakerPhase::HalfOpen { probes: 0 }, 2),
            forced,
        ]
    );
}

pub fn responses_save_and_get_with_owner(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let answer = |id: &str, owner: Option<&str>, text: &str| StoredResponse {
        id: id.into(),
        created_ms: 7,
        response: json!({"id": id, "output_text": text}),
        history: json!([{"role": "user", "content": "hi"}]),
        owner: owner.map(String::from),
    };
    let mine = answer("resp_1", Some("key-a"), "one");
    let local = answer("resp_2", None, "two");
    for r in [&mine, &local] {
        writes.save_response(r).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(store.responses.response("resp_1").ok(), Some(Some(mine)));
    assert_eq!(store.responses.response("resp_2").ok(), Some(Some(local)));
    assert_eq!(store.responses.response("resp_9").ok(), Some(None));
    let replaced = answer("resp_1", Some("key-a"), "again");
    writes
        .save_response(&replaced)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store.responses.response("resp_1").ok(),
        Some(Some(replaced))
    );
}

pub fn auth_failure_counts_add_and_merge(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let count = |minute_ms: i64, source: &str, reason: &str, count: i64| AuthFailureCount {
        minute_ms,
        source: source.into(),
        reason: reason.into(),
        count,
    };
    writes
        .add_auth_failures(&[
            count(0, "10.0.0.1", "bad_key", 2),
            count(60_000, "10.0.0.1", "bad_key", 1),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    writes
        .add_auth_failures(&[
            count(60_000, "10.0.0.1", "bad_key", 4),
            count(60_000, "10.0.0.2", "missing", 1),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store.auth_failures.auth_failures(0).unwrap_or_default(),
        [
            count(0, "10.0.0.1", "bad_key", 2),
            count(60_000, "10.0.0.1", "bad_key", 5),
            count(60_000, "10.0.0.2", "missing", 1),
        ]
    );
    assert_eq!(
        store
            .auth_failures
            .auth_failures(60_000)
            .map(|c| c.len())
            .ok(),
        Some(2)
    );
}

/// An empty store for one test, and whatever must live as long as it (a PostgreSQL schema,
/// dropped with it).
pub struct TestStore {
    pub url: StoreUrl,
    _keep: Option<Box<dyn std::any::Any>>,
}

impl TestStore {
    pub fn plain(url: StoreUrl) -> Option<TestStore> {
        Some(TestStore { url, _keep: None })
    }

    /// A schema of its own on the test server; `None` when PostgreSQL tests are skipped.
    pub fn postgres() -> Option<TestStore> {
        let schema = super::postgres::testing::schema()?;
        Some(TestStore {
            url: schema.url.clone(),
            _keep: Some(Box::new(schema)),
        })
    }
}

/// Expands to one test per case, each on a fresh, empty store from `$make_store(&Path)`, which
/// returns `None` to skip (after printing why).
macro_rules! store_suite {
    ($name:ident, $make_store:expr) => {
        mod $name {
            use super::*;

            fn run(case: fn(&$crate::store::StoreUrl)) {
                let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
                #[allow(clippy::redundant_closure_call)]
                let made: Option<$crate::store::suite::TestStore> = ($make_store)(dir.path());
                if let Some(store) = made {
                    case(&store.url);
                }
            }

            $crate::store::suite::store_suite!(@cases
                migrates_from_empty_and_reopens,
                traces_append_query_count_and_spend,
                ledger_appends_in_order_and_verifies,
                module_state_and_prices_save_and_load,
                breakers_save_and_restore,
                responses_save_and_get_with_owner,
                auth_failure_counts_add_and_merge,
                spend_rolls_up_by_every_dimension,
                budget_alerts_are_recorded_once,
                rate_counts_add_up_and_expire,
                keys_teams_and_admin_keys_save_and_load,
                credentials_add_remove_and_reseal_in_one_transaction,
                dashboard_pages_by_keyset_and_rolls_up_hours_and_days,
                batch_objects_save_and_keep_their_first_costing,
                counter_shares_lease_within_the_limit_across_nodes,
                traces_are_found_by_id_in_any_order_and_shape,
                trace_rows_keep_every_column_as_written,
            );
        }
    };
    (@cases $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                run($crate::store::suite::$case);
            }
        )*
    };
}
pub(crate) use store_suite;

store_suite!(sqlite, |dir: &std::path::Path| TestStore::plain(
    StoreUrl::Sqlite(dir.join("suite.db"))
));

store_suite!(postgres, |_: &std::path::Path| TestStore::postgres());
