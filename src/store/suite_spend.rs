//! The store suite's cases for spend rollups, budget alerts and rate-limit counts (listed in
//! `suite.rs`'s `store_suite!`, so every backend runs them).

use super::*;
use crate::cost::Tokens;

const DAY: i64 = 86_400_000;

fn opened(url: &StoreUrl) -> Opened {
    open(url, super::suite::key()).unwrap_or_else(|e| panic!("open {url}: {e}"))
}

#[allow(clippy::too_many_arguments)]
fn trace(
    id: &str,
    ts_ms: i64,
    key: Option<&str>,
    team: Option<&str>,
    user: Option<&str>,
    model: &str,
    cost: i64,
) -> TraceRecord {
    TraceRecord {
        id: id.into(),
        ts_ms,
        endpoint: "/v1/chat/completions".into(),
        requested_model: model.into(),
        provider: Some("openai".into()),
        status: 200,
        tokens: Tokens {
            prompt: 7,
            completion: 3,
            ..Tokens::default()
        },
        cost_nanos: cost,
        request_id: format!("req-{id}"),
        key_id: key.map(String::from),
        team_id: team.map(String::from),
        user: user.map(String::from),
        key_metadata: Some(r#"{"env":"prod"}"#.into()),
        attempts: 1,
        ..TraceRecord::default()
    }
}

fn sums(store: &Store, by: SpendBy, since_ms: i64) -> Vec<(String, i64, i64)> {
    store
        .spend
        .spend(by, since_ms)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| (r.key, r.requests, r.cost_nanos))
        .collect()
}

pub fn spend_rolls_up_by_every_dimension(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let rows = [
        trace(
            "a1",
            10 * DAY + 5,
            Some("vk_a"),
            Some("red"),
            Some("ann"),
            "gpt-4o",
            1_000,
        ),
        trace(
            "a2",
            10 * DAY + 9,
            Some("vk_a"),
            Some("red"),
            None,
            "gpt-4o",
            2_000,
        ),
        trace(
            "b1",
            11 * DAY + 1,
            Some("vk_b"),
            Some("red"),
            Some("ann"),
            "claude",
            500,
        ),
        trace("c1", 11 * DAY + 2, Some("vk_c"), None, None, "gpt-4o", 40),
        trace("n1", 11 * DAY + 3, None, None, None, "local", 0),
    ];
    writes
        .append_traces(&rows)
        .unwrap_or_else(|e| panic!("{e}"));
    // Retried: neither rows nor sums double.
    writes
        .append_traces(&rows[1..3])
        .unwrap_or_else(|e| panic!("{e}"));

    let s = |v: &[(&str, i64, i64)]| -> Vec<(String, i64, i64)> {
        v.iter().map(|(k, n, c)| (k.to_string(), *n, *c)).collect()
    };
    assert_eq!(
        sums(&store, SpendBy::Key, 0),
        s(&[
            ("vk_a", 2, 3_000),
            ("vk_b", 1, 500),
            ("vk_c", 1, 40),
            ("(none)", 1, 0)
        ])
    );
    assert_eq!(
        sums(&store, SpendBy::Team, 0),
        s(&[("red", 3, 3_500), ("(none)", 2, 40)])
    );
    assert_eq!(
        sums(&store, SpendBy::User, 0),
        s(&[("(none)", 3, 2_040), ("ann", 2, 1_500)])
    );
    assert_eq!(
        sums(&store, SpendBy::Model, 0),
        s(&[("gpt-4o", 3, 3_040), ("claude", 1, 500), ("local", 1, 0)])
    );
    assert_eq!(
        sums(&store, SpendBy::Provider, 0),
        s(&[("openai", 5, 3_540)])
    );
    assert_eq!(
        sums(&store, SpendBy::Day, 0),
        s(&[("1970-01-11", 2, 3_000), ("1970-01-12", 3, 540)])
    );
    // A cut-off inside a day counts that whole day.
    assert_eq!(
        sums(&store, SpendBy::Key, 11 * DAY + 12 * 3_600_000),
        s(&[("vk_b", 1, 500), ("vk_c", 1, 40), ("(none)", 1, 0)])
    );
    let tokens = store.spend.spend(SpendBy::Team, 0).unwrap_or_default();
    assert_eq!(
        (tokens[0].prompt_tokens, tokens[0].completion_tokens),
        (21, 9)
    );
    let traced = store.traces.traces(&TraceQuery {
        limit: 10,
        ..TraceQuery::default()
    });
    let traced = traced.unwrap_or_default();
    let a1 = traced.iter().find(|t| t.id == "a1");
    assert_eq!(
        a1.map(|t| (
            t.team_id.as_deref(),
            t.key_metadata.as_deref(),
            t.user.as_deref()
        )),
        Some((Some("red"), Some(r#"{"env":"prod"}"#), Some("ann")))
    );
}

pub fn budget_alerts_are_recorded_once(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let alert = |percent: u8, ts_ms: i64| BudgetAlert {
        ts_ms,
        scope: "key".into(),
        subject: "vk_a".into(),
        period: "day".into(),
        period_start_ms: 10 * DAY,
        percent,
        spend_nanos: 800,
        limit_nanos: 1_000,
    };
    for a in [alert(80, 1), alert(80, 2), alert(100, 3)] {
        writes
            .record_budget_alert(&a)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let stored = store.spend.budget_alerts(10 * DAY).unwrap_or_default();
    let seen: Vec<(u8, i64)> = stored.iter().map(|a| (a.percent, a.ts_ms)).collect();
    assert_eq!(
        seen,
        [(80, 1), (100, 3)],
        "the first of each crossing is kept"
    );
    assert!(
        store
            .spend
            .budget_alerts(11 * DAY)
            .unwrap_or_default()
            .is_empty()
    );
}

pub fn rate_counts_add_up_and_expire(url: &StoreUrl) {
    let Opened { store, mut writes } = opened(url);
    let count = |counter: &str, start: i64, value: i64| RateCount {
        counter: counter.into(),
        window_start_ms: start,
        window_ms: 60_000,
        value,
    };
    writes
        .add_rate_counts(
            &[
                count("rpm:key:a", 60_000, 3),
                count("tpm:key:a", 60_000, 100),
            ],
            60_001,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    writes
        .add_rate_counts(
            &[
                count("rpm:key:a", 60_000, 2),
                count("tpm:key:a", 60_000, -40),
            ],
            60_002,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let open_now = store.rate_limits.rate_counts(60_500).unwrap_or_default();
    let seen: Vec<(&str, i64)> = open_now
        .iter()
        .map(|c| (c.counter.as_str(), c.value))
        .collect();
    assert_eq!(seen, [("rpm:key:a", 5), ("tpm:key:a", 60)]);
    assert!(
        store
            .rate_limits
            .rate_counts(120_000)
            .unwrap_or_default()
            .is_empty(),
        "window over"
    );
    // A later batch prunes the windows that ended.
    writes
        .add_rate_counts(&[count("rpm:key:a", 120_000, 1)], 120_001)
        .unwrap_or_else(|e| panic!("{e}"));
    let all = store.rate_limits.rate_counts(0).unwrap_or_default();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].window_start_ms, all[0].value), (120_000, 1));
}
