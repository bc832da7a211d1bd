//! Tests of the console's SQLite queries (`dashboard.rs`).

use super::*;

/// Sets one field of a filter.
type SetFilter = fn(&mut TraceFilter);

/// The index SQLite picks for a trace-list page with this filter.
fn plan(c: &Connection, filter: &TraceFilter) -> String {
    let (terms, params) = where_terms(filter, None);
    let sql = format!(
        "EXPLAIN QUERY PLAN SELECT {SUMMARY_COLUMNS} FROM traces {terms} \
         ORDER BY ts_ms DESC, rowid DESC LIMIT 51"
    );
    let mut stmt = c.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows = stmt
        .query_map(params_from_iter(params), |r| r.get::<_, String>(3))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{e}"));
    rows.join("; ")
}

#[test]
fn each_single_filter_pages_off_its_own_index() {
    let (_dir, path, opened) = crate::store::open_temp_sqlite();
    drop(opened);
    let c = Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
    let cases: [(SetFilter, &str); 5] = [
        (|f| f.key_id = Some("k1".into()), "traces_key_ts"),
        (|f| f.team_id = Some("t1".into()), "traces_team_ts"),
        (|f| f.model = Some("gpt-4o".into()), "traces_model_ts"),
        (
            |f| f.status = Some(StatusFilter::Errors),
            "traces_errors_ts",
        ),
        (|f| f.cache = Some("hit".into()), "traces_cache_ts"),
    ];
    for (set, index) in cases {
        let mut filter = TraceFilter::default();
        set(&mut filter);
        let plan = plan(&c, &filter);
        assert!(plan.contains(index), "{filter:?}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{filter:?} sorts: {plan}");
    }
}
