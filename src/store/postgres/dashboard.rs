//! The console's queries on PostgreSQL (see `store/dashboard.rs`). The trace list pages by
//! `(ts_ms, row_id)` newest first, `row_id` being the BIGSERIAL that stands in for SQLite's rowid;
//! every trace index ends in both, so a page of one filter is a range read off one index. The
//! roll-ups it reads are kept with each trace batch (`rollups.rs`).

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::read::{PgReader, TRACE_COLUMNS, get, narrow, trace_from_row};
use crate::store::dashboard::{
    DashboardStore, Dimension, HOUR_MS, Overview, OverviewQuery, Stats, StatusFilter,
    TEXT_SCAN_ROWS, TraceCursor, TraceFilter, TracePage, TraceSummary,
};
use crate::store::{StoreError, TraceRecord};

const DAY_MS: i64 = 24 * HOUR_MS;

const SUMMARY_COLUMNS: &str = "row_id, id, ts_ms, endpoint, requested_model, provider, status, \
     error_class, stream, latency_us, ttft_us, prompt_tokens, completion_tokens, cost_nanos, key_id, \
     team_id, cache, attempts";

fn summary_from_row(r: &Row) -> Result<(i64, TraceSummary), StoreError> {
    Ok((
        get(r, 0)?,
        TraceSummary {
            id: get(r, 1)?,
            ts_ms: get(r, 2)?,
            endpoint: get(r, 3)?,
            requested_model: get(r, 4)?,
            provider: get(r, 5)?,
            status: narrow(r, 6)?,
            error_class: get(r, 7)?,
            stream: get(r, 8)?,
            latency_us: get(r, 9)?,
            ttft_us: get(r, 10)?,
            prompt_tokens: get(r, 11)?,
            completion_tokens: get(r, 12)?,
            cost_nanos: get(r, 13)?,
            key_id: get(r, 14)?,
            team_id: get(r, 15)?,
            cache: get(r, 16)?,
            attempts: narrow(r, 17)?,
        },
    ))
}

/// A statement's parameters, numbered as they are bound.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync + Send>>);

impl Params {
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(value));
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The WHERE clause of a filter (all but the text search). Partial indexes are used only when
/// the query repeats their predicates, so those are written out as the migration has them.
fn where_terms(filter: &TraceFilter, after: Option<TraceCursor>, p: &mut Params) -> String {
    let mut terms: Vec<String> = Vec::new();
    for (column, value) in [
        ("requested_model", &filter.model),
        ("provider", &filter.provider),
        ("key_id", &filter.key_id),
        ("team_id", &filter.team_id),
    ] {
        if let Some(v) = value {
            terms.push(format!("{column} = {}", p.bind(v.clone())));
        }
    }
    terms.extend(filter.partial_index_terms().map(String::from));
    if let Some(tag) = &filter.tag {
        // Tags are a JSON array per row; a tag matches whole, never as part of another.
        terms.push(format!(
            "tags IS NOT NULL AND (tags::jsonb) ? {}",
            p.bind(tag.clone())
        ));
    }
    match &filter.cache {
        Some(c) if c != "miss" => {
            terms.push(format!("cache = {}", p.bind(c.clone())));
            terms.push("cache IS NOT NULL AND cache <> 'miss'".into());
        }
        Some(_) => terms.push("cache = 'miss'".into()),
        None => {}
    }
    match filter.status {
        Some(StatusFilter::Ok) => terms.push("status < 400".into()),
        Some(StatusFilter::Errors) => terms.push("status >= 400".into()),
        Some(StatusFilter::Exact(s)) => {
            terms.push(format!("status = {s}"));
            if s >= 400 {
                terms.push("status >= 400".into());
            }
        }
        None => {}
    }
    if let Some(since) = filter.since_ms {
        terms.push(format!("ts_ms >= {}", p.bind(since)));
    }
    if let Some(until) = filter.until_ms {
        terms.push(format!("ts_ms < {}", p.bind(until)));
    }
    if let Some(c) = after {
        terms.push(format!(
            "(ts_ms, row_id) < ({}, {})",
            p.bind(c.ts_ms),
            p.bind(c.row)
        ));
    }
    if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    }
}

/// `%text%` for ILIKE (SQLite's LIKE ignores ASCII case too), with the wildcards escaped.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

async fn page(
    c: &Client,
    filter: &TraceFilter,
    after: Option<TraceCursor>,
    limit: usize,
) -> Result<TracePage, StoreError> {
    let limit = limit.clamp(1, 500);
    let mut p = Params::default();
    let terms = where_terms(filter, after, &mut p);
    let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) else {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces {terms} ORDER BY ts_ms DESC, row_id DESC LIMIT {}",
            limit + 1
        );
        let mut rows = c
            .query(&sql, &p.refs())
            .await?
            .iter()
            .map(summary_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = more
            .then(|| rows.last().map(|(row, s)| cursor(*row, s.ts_ms)))
            .flatten();
        return Ok(TracePage {
            rows: rows.into_iter().map(|(_, s)| s).collect(),
            next,
            scan_capped: false,
        });
    };
    // Bodies have no index: look at the newest TEXT_SCAN_ROWS rows of the range at most.
    let pattern = p.bind(like_pattern(text));
    let window = format!(
        "WITH win AS (SELECT row_id, ts_ms, (request_body ILIKE {pattern} OR \
         response_body ILIKE {pattern}) AS hit FROM traces {terms} \
         ORDER BY ts_ms DESC, row_id DESC LIMIT {TEXT_SCAN_ROWS})"
    );
    let hits: Vec<(i64, i64)> = c
        .query(
            &format!(
                "{window} SELECT row_id, ts_ms FROM win WHERE hit \
                 ORDER BY ts_ms DESC, row_id DESC LIMIT {}",
                limit + 1
            ),
            &p.refs(),
        )
        .await?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect::<Result<_, StoreError>>()?;
    let more = hits.len() > limit;
    let hits = &hits[..hits.len().min(limit)];
    let (capped, last) = if more {
        (false, None)
    } else {
        let r = c.query_one(
            &format!(
                "{window} SELECT COUNT(*), (SELECT row_id FROM win ORDER BY ts_ms, row_id LIMIT 1), \
                 (SELECT ts_ms FROM win ORDER BY ts_ms, row_id LIMIT 1) FROM win"
            ),
            &p.refs(),
        ).await?;
        let scanned: i64 = get(&r, 0)?;
        let last = match (get::<Option<i64>>(&r, 1)?, get::<Option<i64>>(&r, 2)?) {
            (Some(row), Some(ts)) => Some(cursor(row, ts)),
            _ => None,
        };
        (scanned >= TEXT_SCAN_ROWS, last)
    };
    let ids: Vec<i64> = hits.iter().map(|(row, _)| *row).collect();
    let found = c
        .query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM traces WHERE row_id = ANY($1) \
                 ORDER BY ts_ms DESC, row_id DESC"
            ),
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| summary_from_row(r).map(|(_, s)| s))
        .collect::<Result<Vec<_>, _>>()?;
    let next = if more {
        hits.last().map(|(row, ts)| cursor(*row, *ts))
    } else if capped {
        last
    } else {
        None
    };
    Ok(TracePage {
        rows: found,
        next,
        scan_capped: capped,
    })
}

fn cursor(row: i64, ts_ms: i64) -> TraceCursor {
    TraceCursor { ts_ms, row }
}

/// The pieces of `[since, until)` to read: whole UTC days from the daily roll-up, the hours at
/// either end from the hourly one, as `(grain, from, to)`.
fn pieces(since: i64, until: i64) -> Vec<(i64, i64, i64)> {
    let first_day = since + (DAY_MS - since.rem_euclid(DAY_MS)) % DAY_MS;
    let last_day = until - until.rem_euclid(DAY_MS);
    if last_day - first_day < DAY_MS {
        return vec![(HOUR_MS, since, until)];
    }
    vec![
        (HOUR_MS, since, first_day),
        (DAY_MS, first_day, last_day),
        (HOUR_MS, last_day, until),
    ]
}

async fn overview(c: &Client, q: &OverviewQuery) -> Result<Overview, StoreError> {
    let since = q.since_ms - q.since_ms.rem_euclid(HOUR_MS);
    let bucket_ms = if q.until_ms - since > 3 * DAY_MS {
        DAY_MS
    } else {
        HOUR_MS
    };
    let mut p = Params::default();
    let ranges: Vec<String> = pieces(since, q.until_ms)
        .into_iter()
        .map(|(grain, from, to)| {
            format!(
                "(grain_ms = {} AND start_ms >= {} AND start_ms < {})",
                p.bind(grain),
                p.bind(from),
                p.bind(to)
            )
        })
        .collect();
    let mut sql = format!(
        "SELECT start_ms, {}, requests, errors, cache_hits, prompt_tokens, completion_tokens, \
         cost_nanos, saved_nanos, latency_us_sum, ttft_us_sum, ttft_count, latency_hist, ttft_hist \
         FROM trace_rollup WHERE ({})",
        q.by.column(),
        ranges.join(" OR ")
    );
    for (dim, value) in &q.only {
        sql.push_str(&format!(
            " AND {} = {}",
            dim.column(),
            p.bind(value.clone())
        ));
    }
    let mut total = Stats::default();
    let mut series: BTreeMap<i64, Stats> = BTreeMap::new();
    let mut by: HashMap<String, Stats> = HashMap::new();
    let rows = c.query(&sql, &p.refs()).await?;
    for r in &rows {
        let hour: i64 = get(r, 0)?;
        let mut s = Stats {
            requests: get(r, 2)?,
            errors: get(r, 3)?,
            cache_hits: get(r, 4)?,
            prompt_tokens: get(r, 5)?,
            completion_tokens: get(r, 6)?,
            cost_nanos: get(r, 7)?,
            saved_nanos: get(r, 8)?,
            latency_us_sum: get(r, 9)?,
            ttft_us_sum: get(r, 10)?,
            ttft_count: get(r, 11)?,
            ..Stats::default()
        };
        s.latency.merge_encoded(get::<&[u8]>(r, 12)?);
        s.ttft.merge_encoded(get::<&[u8]>(r, 13)?);
        total.merge(&s);
        series
            .entry(hour - hour.rem_euclid(bucket_ms))
            .or_default()
            .merge(&s);
        by.entry(get(r, 1)?).or_default().merge(&s);
    }
    let mut by: Vec<(String, Stats)> = by.into_iter().collect();
    by.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
    Ok(Overview {
        total,
        bucket_ms,
        series: series.into_iter().collect(),
        by,
        rows_read: rows.len(),
    })
}

impl DashboardStore for PgReader {
    fn trace_page(
        &self,
        filter: &TraceFilter,
        after: Option<TraceCursor>,
        limit: usize,
    ) -> Result<TracePage, StoreError> {
        let filter = filter.clone();
        self.with(move |c| async move { page(&c, &filter, after, limit).await })
    }

    fn trace(&self, id: &str) -> Result<Option<TraceRecord>, StoreError> {
        let id = id.to_string();
        self.with(move |c| async move {
            let sql = format!("SELECT {TRACE_COLUMNS} FROM traces WHERE id = $1");
            c.query_opt(&sql, &[&id])
                .await?
                .map(|r| trace_from_row(&r))
                .transpose()
        })
    }

    fn overview(&self, query: &OverviewQuery) -> Result<Overview, StoreError> {
        let query = query.clone();
        self.with(move |c| async move { overview(&c, &query).await })
    }

    fn dimension_values(&self, dim: Dimension, since_ms: i64) -> Result<Vec<String>, StoreError> {
        let since = since_ms - since_ms.rem_euclid(DAY_MS);
        self.with(move |c| async move {
            let sql = format!(
                "SELECT DISTINCT {col} COLLATE \"C\" FROM trace_rollup WHERE grain_ms = 86400000 \
                 AND start_ms >= $1 AND {col} <> '' ORDER BY 1 LIMIT 500",
                col = dim.column()
            );
            c.query(&sql, &[&since])
                .await?
                .iter()
                .map(|r| get(r, 0))
                .collect()
        })
    }
}
