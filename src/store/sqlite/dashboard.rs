//! The console's queries on SQLite (see `store/dashboard.rs`), and the writer's upkeep of the
//! hourly and daily roll-ups it reads.
//!
//! The trace list pages by `(ts_ms, rowid)` newest first: every index on `traces` ends in `ts_ms`
//! and carries the rowid, so a page of any single filter is a range read off one index, however
//! deep the page. Rowids are stable except across a `VACUUM` of the table; a cursor made before
//! one may skip or repeat a few rows, which a console page can live with.

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Transaction, params_from_iter};

use super::read::{SqliteReader, TRACE_COLUMNS, trace_from_row};
use crate::store::dashboard::{
    DashboardStore, Dimension, HOUR_MS, Overview, OverviewQuery, Stats, StatusFilter,
    TEXT_SCAN_ROWS, TraceCursor, TraceFilter, TracePage, TraceSummary,
};
use crate::store::{StoreError, TraceRecord};

const SUMMARY_COLUMNS: &str = "rowid, id, ts_ms, endpoint, requested_model, provider, status, \
     error_class, stream, latency_us, ttft_us, prompt_tokens, completion_tokens, cost_nanos, key_id, \
     team_id, cache, attempts";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, TraceSummary)> {
    Ok((
        r.get(0)?,
        TraceSummary {
            id: r.get(1)?,
            ts_ms: r.get(2)?,
            endpoint: r.get(3)?,
            requested_model: r.get(4)?,
            provider: r.get(5)?,
            status: r.get(6)?,
            error_class: r.get(7)?,
            stream: r.get(8)?,
            latency_us: r.get(9)?,
            ttft_us: r.get(10)?,
            prompt_tokens: r.get(11)?,
            completion_tokens: r.get(12)?,
            cost_nanos: r.get(13)?,
            key_id: r.get(14)?,
            team_id: r.get(15)?,
            cache: r.get(16)?,
            attempts: r.get(17)?,
        },
    ))
}

/// The WHERE terms of a filter (all but the text search) with their parameters.
///
/// Partial indexes (errors, cache outcomes) are used only when the query repeats their WHERE
/// terms literally, so those terms are written out as the migration has them.
fn where_terms(filter: &TraceFilter, after: Option<TraceCursor>) -> (String, Vec<SqlValue>) {
    let mut terms: Vec<String> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    let mut text_eq = |terms: &mut Vec<String>, column: &str, value: &Option<String>| {
        if let Some(v) = value {
            terms.push(format!("{column} = ?"));
            params.push(SqlValue::Text(v.clone()));
        }
    };
    text_eq(&mut terms, "requested_model", &filter.model);
    text_eq(&mut terms, "provider", &filter.provider);
    text_eq(&mut terms, "key_id", &filter.key_id);
    text_eq(&mut terms, "team_id", &filter.team_id);
    terms.extend(filter.partial_index_terms().map(String::from));
    if let Some(tag) = &filter.tag {
        // Tags are a JSON array per row; a tag matches whole, never as a substring of another.
        terms.push(
            "tags IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?)".into(),
        );
        params.push(SqlValue::Text(tag.clone()));
    }
    match &filter.cache {
        Some(c) if c != "miss" => {
            terms.push("cache = ?".into());
            terms.push("cache IS NOT NULL AND cache <> 'miss'".into());
            params.push(SqlValue::Text(c.clone()));
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
        terms.push("ts_ms >= ?".into());
        params.push(SqlValue::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        terms.push("ts_ms < ?".into());
        params.push(SqlValue::Integer(until));
    }
    if let Some(c) = after {
        terms.push("ts_ms <= ? AND (ts_ms < ? OR rowid < ?)".into());
        params.extend([
            SqlValue::Integer(c.ts_ms),
            SqlValue::Integer(c.ts_ms),
            SqlValue::Integer(c.row),
        ]);
    }
    let sql = if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    };
    (sql, params)
}

/// `%text%` for LIKE, with the wildcards in `text` escaped.
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

fn page(
    c: &Connection,
    filter: &TraceFilter,
    after: Option<TraceCursor>,
    limit: usize,
) -> Result<TracePage, StoreError> {
    let limit = limit.clamp(1, 500);
    let (terms, params) = where_terms(filter, after);
    let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) else {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM traces {terms} ORDER BY ts_ms DESC, rowid DESC LIMIT {}",
            limit + 1
        );
        let mut stmt = c.prepare(&sql)?;
        let mut rows = stmt
            .query_map(params_from_iter(params), summary_from_row)?
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
    // Bodies have no index: read the newest rows of the range in order, at most TEXT_SCAN_ROWS,
    // and keep those that match.
    let sql = format!(
        "SELECT rowid, ts_ms, (request_body LIKE ?1 ESCAPE '\\' OR response_body LIKE ?1 ESCAPE '\\') \
         FROM traces {} ORDER BY ts_ms DESC, rowid DESC LIMIT {TEXT_SCAN_ROWS}",
        terms
    );
    let mut all = vec![SqlValue::Text(like_pattern(text))];
    all.extend(params);
    // Numbered `?1` first, then plain `?`s: SQLite numbers a plain `?` after the largest so far.
    let mut stmt = c.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(all))?;
    let mut hits: Vec<i64> = Vec::new();
    let mut scanned = 0i64;
    let mut last = None;
    let mut more = false;
    while let Some(r) = rows.next()? {
        scanned += 1;
        let (row, ts): (i64, i64) = (r.get(0)?, r.get(1)?);
        last = Some(cursor(row, ts));
        if r.get::<_, Option<bool>>(2)?.unwrap_or(false) {
            if hits.len() == limit {
                more = true;
                break;
            }
            hits.push(row);
            last = Some(cursor(row, ts));
        }
    }
    let capped = !more && scanned >= TEXT_SCAN_ROWS;
    let mut found = Vec::with_capacity(hits.len());
    let mut one = c.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM traces WHERE rowid = ?1"
    ))?;
    for row in &hits {
        if let Some((_, s)) = one.query_row([row], summary_from_row).optional()? {
            found.push(s);
        }
    }
    let next = if more {
        hits.last()
            .zip(found.last())
            .map(|(row, s)| cursor(*row, s.ts_ms))
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

const DAY_MS: i64 = 24 * HOUR_MS;

fn overview(c: &Connection, q: &OverviewQuery) -> Result<Overview, StoreError> {
    let since = q.since_ms - q.since_ms.rem_euclid(HOUR_MS);
    let bucket_ms = if q.until_ms - since > 3 * DAY_MS {
        DAY_MS
    } else {
        HOUR_MS
    };
    let mut params = Vec::new();
    let ranges: Vec<String> = pieces(since, q.until_ms)
        .into_iter()
        .map(|(grain, from, to)| {
            params.extend([
                SqlValue::Integer(grain),
                SqlValue::Integer(from),
                SqlValue::Integer(to),
            ]);
            "(grain_ms = ? AND start_ms >= ? AND start_ms < ?)".to_string()
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
        sql.push_str(&format!(" AND {} = ?", dim.column()));
        params.push(SqlValue::Text(value.clone()));
    }
    let mut stmt = c.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut total = Stats::default();
    let mut series: BTreeMap<i64, Stats> = BTreeMap::new();
    let mut by: HashMap<String, Stats> = HashMap::new();
    let mut rows_read = 0;
    while let Some(r) = rows.next()? {
        rows_read += 1;
        let hour: i64 = r.get(0)?;
        let mut s = Stats {
            requests: r.get(2)?,
            errors: r.get(3)?,
            cache_hits: r.get(4)?,
            prompt_tokens: r.get(5)?,
            completion_tokens: r.get(6)?,
            cost_nanos: r.get(7)?,
            saved_nanos: r.get(8)?,
            latency_us_sum: r.get(9)?,
            ttft_us_sum: r.get(10)?,
            ttft_count: r.get(11)?,
            ..Stats::default()
        };
        let latency: Vec<u8> = r.get(12)?;
        let ttft: Vec<u8> = r.get(13)?;
        s.latency.merge_encoded(&latency);
        s.ttft.merge_encoded(&ttft);
        total.merge(&s);
        series
            .entry(hour - hour.rem_euclid(bucket_ms))
            .or_default()
            .merge(&s);
        // The key column borrowed last: the blobs above are read first.
        let name: String = r.get(1)?;
        by.entry(name).or_default().merge(&s);
    }
    let mut by: Vec<(String, Stats)> = by.into_iter().collect();
    by.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
    Ok(Overview {
        total,
        bucket_ms,
        series: series.into_iter().collect(),
        by,
        rows_read,
    })
}

impl DashboardStore for SqliteReader {
    fn trace_page(
        &self,
        filter: &TraceFilter,
        after: Option<TraceCursor>,
        limit: usize,
    ) -> Result<TracePage, StoreError> {
        self.with(|c| page(c, filter, after, limit))
    }

    fn trace(&self, id: &str) -> Result<Option<TraceRecord>, StoreError> {
        self.with(|c| {
            let Some(row) = super::trace_rows::row_of(c, id)? else {
                return Ok(None);
            };
            let sql = format!("SELECT {TRACE_COLUMNS} FROM traces WHERE row_id = ?1");
            Ok(c.query_row(&sql, [row], trace_from_row).optional()?)
        })
    }

    fn overview(&self, query: &OverviewQuery) -> Result<Overview, StoreError> {
        self.with(|c| overview(c, query))
    }

    fn dimension_values(&self, dim: Dimension, since_ms: i64) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let sql = format!(
                "SELECT DISTINCT {col} FROM trace_rollup WHERE grain_ms = 86400000 \
                 AND start_ms >= ?1 AND {col} <> '' ORDER BY 1 LIMIT 500",
                col = dim.column()
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([since_ms - since_ms.rem_euclid(DAY_MS)], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
    }
}

/// A roll-up row's key: grain, start, key, team, model, provider.
type RollupKey = (i64, i64, String, String, String, String);

/// Pending roll-ups are written once this many traces wait, or after [`FLUSH_EVERY`].
const FLUSH_ROWS: usize = 50_000;
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The roll-up sums of traces already stored but not yet added to `trace_rollup`: summing in
/// memory and writing once a second keeps the roll-ups off each request's commit (a batch of one
/// at low load). `rollup_state.last_rowid` says which traces the table holds, written in the same
/// transaction as the sums, so after a crash [`catch_up`] adds the rest from the traces.
pub struct PendingRollups {
    /// By the row's key written out as bytes (see [`PendingRollups::add`]), so that finding an
    /// existing group allocates nothing; the key's parts are kept beside the sums. foldhash:
    /// the keys are the proxy's own records, hashed twice for every trace.
    groups: HashMap<Vec<u8>, (RollupKey, Stats), foldhash::fast::RandomState>,
    last_rowid: i64,
    rows: usize,
    since: std::time::Instant,
    /// Reused for each lookup's key.
    scratch: Vec<u8>,
}

impl Default for PendingRollups {
    fn default() -> Self {
        PendingRollups {
            groups: HashMap::default(),
            last_rowid: 0,
            rows: 0,
            since: std::time::Instant::now(),
            scratch: Vec::new(),
        }
    }
}

impl PendingRollups {
    /// Counts a trace stored at `rowid` (once its batch committed). Runs once per trace on the
    /// writer thread: an existing group is found without allocating.
    pub fn add(&mut self, t: &TraceRecord, rowid: i64) {
        let key = t.key_id.as_deref().unwrap_or_default();
        let team = t.team_id.as_deref().unwrap_or_default();
        let provider = t.provider.as_deref().unwrap_or_default();
        for grain in [HOUR_MS, DAY_MS] {
            let start = t.ts_ms - t.ts_ms.rem_euclid(grain);
            self.scratch.clear();
            // The two numbers at fixed width, then the names each ended by a NUL, which never
            // appears in them: the key is unambiguous, and no number is formatted as text.
            self.scratch.extend_from_slice(&grain.to_le_bytes());
            self.scratch.extend_from_slice(&start.to_le_bytes());
            for name in [key, team, t.requested_model.as_str(), provider] {
                self.scratch.extend_from_slice(name.as_bytes());
                self.scratch.push(0);
            }
            match self.groups.get_mut(self.scratch.as_slice()) {
                Some((_, stats)) => stats.add(t),
                None => {
                    let parts = (
                        grain,
                        start,
                        key.to_string(),
                        team.to_string(),
                        t.requested_model.clone(),
                        provider.to_string(),
                    );
                    let mut stats = Stats::default();
                    stats.add(t);
                    self.groups.insert(self.scratch.clone(), (parts, stats));
                }
            }
        }
        self.last_rowid = self.last_rowid.max(rowid);
        if self.rows == 0 {
            self.since = std::time::Instant::now();
        }
        self.rows += 1;
    }

    pub fn due(&self) -> bool {
        self.rows >= FLUSH_ROWS || (self.rows > 0 && self.since.elapsed() >= FLUSH_EVERY)
    }

    /// Adds the sums to `trace_rollup` in one transaction, with the cursor.
    pub fn flush(&mut self, conn: &mut Connection) -> Result<(), StoreError> {
        if self.rows == 0 {
            return Ok(());
        }
        let tx = conn.transaction()?;
        write_groups(&tx, &self.groups, self.last_rowid)?;
        tx.commit()?;
        self.groups.clear();
        self.rows = 0;
        Ok(())
    }
}

/// After a `VACUUM` of a file from before schema version 22, whose `traces` rowids are implicit
/// and may be renumbered: moves the cursor to the newest trace (a compaction of a stopped
/// server's file, or a backup copy, which then lacks at most the second of roll-ups still in the
/// server's memory). Since 0022 a row keeps its `row_id` (an INTEGER PRIMARY KEY) through a
/// `VACUUM`, so the cursor stays true and is left alone: the copy's next open adds the traces past
/// it, the ones a hot backup caught before their roll-ups were written.
pub(super) fn reset_cursor(conn: &Connection) -> Result<(), StoreError> {
    let has: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'rollup_state'",
        [],
        |r| r.get(0),
    )?;
    let numbered: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('traces') WHERE name = 'row_id' AND pk = 1",
        [],
        |r| r.get(0),
    )?;
    if has && !numbered {
        conn.execute(
            "INSERT INTO rollup_state (name, last_rowid) \
             VALUES ('trace_rollup', (SELECT COALESCE(MAX(rowid), 0) FROM traces)) \
             ON CONFLICT (name) DO UPDATE SET last_rowid = excluded.last_rowid",
            [],
        )?;
    }
    Ok(())
}

/// Adds the traces the roll-ups do not hold yet (after a crash, or every stored trace when the
/// table is new) and writes them; the writer's connection calls this once at open.
pub(super) fn catch_up(conn: &mut Connection) -> Result<(), StoreError> {
    let cursor: i64 = conn
        .query_row(
            "SELECT last_rowid FROM rollup_state WHERE name = 'trace_rollup'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut pending = PendingRollups::default();
    {
        let mut stmt = conn.prepare(
            "SELECT rowid, ts_ms, key_id, team_id, requested_model, provider, status, cache, \
             prompt_tokens, completion_tokens, cost_nanos, saved_nanos, latency_us, ttft_us \
             FROM traces WHERE rowid > ?1",
        )?;
        let mut rows = stmt.query([cursor])?;
        while let Some(r) = rows.next()? {
            let t = TraceRecord {
                ts_ms: r.get(1)?,
                key_id: r.get(2)?,
                team_id: r.get(3)?,
                requested_model: r.get(4)?,
                provider: r.get(5)?,
                status: r.get(6)?,
                cache: r.get(7)?,
                tokens: crate::cost::Tokens {
                    prompt: r.get::<_, i64>(8)?.max(0) as u64,
                    completion: r.get::<_, i64>(9)?.max(0) as u64,
                    ..Default::default()
                },
                cost_nanos: r.get(10)?,
                saved_nanos: r.get(11)?,
                latency_us: r.get(12)?,
                ttft_us: r.get(13)?,
                ..TraceRecord::default()
            };
            pending.add(&t, r.get(0)?);
        }
    }
    if pending.rows > 0 {
        tracing::info!(
            traces = pending.rows,
            "adding traces to the console's roll-ups"
        );
    }
    pending.flush(conn)
}

/// Adds `groups` to `trace_rollup`, one read and one upsert per row touched (the histograms are
/// merged here, since SQL cannot add them), and moves the cursor to `last_rowid`.
fn write_groups(
    tx: &Transaction<'_>,
    groups: &HashMap<Vec<u8>, (RollupKey, Stats), foldhash::fast::RandomState>,
    last_rowid: i64,
) -> Result<(), StoreError> {
    let mut read = tx.prepare_cached(
        "SELECT latency_hist, ttft_hist FROM trace_rollup WHERE grain_ms = ?1 AND start_ms = ?2 \
         AND key_id = ?3 AND team_id = ?4 AND model = ?5 AND provider = ?6",
    )?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO trace_rollup (grain_ms, start_ms, key_id, team_id, model, provider, requests, \
         errors, cache_hits, prompt_tokens, completion_tokens, cost_nanos, saved_nanos, \
         latency_us_sum, ttft_us_sum, ttft_count, latency_hist, ttft_hist) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
         ON CONFLICT (grain_ms, start_ms, key_id, team_id, model, provider) DO UPDATE SET \
         requests = requests + excluded.requests, errors = errors + excluded.errors, \
         cache_hits = cache_hits + excluded.cache_hits, \
         prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
         completion_tokens = completion_tokens + excluded.completion_tokens, \
         cost_nanos = cost_nanos + excluded.cost_nanos, saved_nanos = saved_nanos + excluded.saved_nanos, \
         latency_us_sum = latency_us_sum + excluded.latency_us_sum, \
         ttft_us_sum = ttft_us_sum + excluded.ttft_us_sum, ttft_count = ttft_count + excluded.ttft_count, \
         latency_hist = excluded.latency_hist, ttft_hist = excluded.ttft_hist",
    )?;
    for ((grain, start, key, team, model, provider), s) in groups.values() {
        let mut s = s.clone();
        let stored: Option<(Vec<u8>, Vec<u8>)> = read
            .query_row(
                rusqlite::params![grain, start, key, team, model, provider],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((latency, ttft)) = stored {
            s.latency.merge_encoded(&latency);
            s.ttft.merge_encoded(&ttft);
        }
        upsert.execute(rusqlite::params![
            grain,
            start,
            key,
            team,
            model,
            provider,
            s.requests,
            s.errors,
            s.cache_hits,
            s.prompt_tokens,
            s.completion_tokens,
            s.cost_nanos,
            s.saved_nanos,
            s.latency_us_sum,
            s.ttft_us_sum,
            s.ttft_count,
            s.latency.encode(),
            s.ttft.encode(),
        ])?;
    }
    tx.execute(
        "INSERT INTO rollup_state (name, last_rowid) VALUES ('trace_rollup', ?1) \
         ON CONFLICT (name) DO UPDATE SET last_rowid = max(last_rowid, excluded.last_rowid)",
        [last_rowid],
    )?;
    Ok(())
}

#[cfg(test)]
#[path = "dashboard_tests.rs"]
mod tests;
