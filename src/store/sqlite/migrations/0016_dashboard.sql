-- 0016: the web console (/ui). Indexes for the trace list's filters, each ending in ts_ms so a
-- filtered page is read newest first straight off the index (keyset pagination on
-- (ts_ms, rowid), which every SQLite index carries), and hourly and daily roll-ups that the writer keeps
-- (summed in memory, written about once a second), so the overview over a month reads some thousands of rows
-- instead of a million traces.
-- (0014 and 0015 belong to other changes; versions are explicit, so the gap is harmless.)

CREATE INDEX traces_key_ts ON traces (key_id, ts_ms);
CREATE INDEX traces_team_ts ON traces (team_id, ts_ms);
-- No provider index: providers are few, so a provider's page is a short walk down traces_ts.
-- Errors and cache outcomes are rare among traces: partial indexes hold only those rows, so they
-- cost a successful, uncached request nothing.
CREATE INDEX traces_errors_ts ON traces (ts_ms) WHERE status >= 400;
CREATE INDEX traces_cache_ts ON traces (cache, ts_ms) WHERE cache IS NOT NULL AND cache <> 'miss';

-- Per UTC hour and per UTC day (grain_ms 3600000 or 86400000), key, team, model and provider
-- ('' when none): a long range reads whole days, and hours only at its two ends. The histograms
-- are sparse (u8 bucket, u32 LE count) pairs over log-spaced latency buckets (see
-- store/dashboard.rs), merged by the writer; p50/p95 are read from their sums.
CREATE TABLE trace_rollup (
    grain_ms          INTEGER NOT NULL,
    start_ms          INTEGER NOT NULL,
    key_id            TEXT NOT NULL,
    team_id           TEXT NOT NULL,
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    cache_hits        INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_nanos        INTEGER NOT NULL,
    saved_nanos       INTEGER NOT NULL,
    latency_us_sum    INTEGER NOT NULL,
    ttft_us_sum       INTEGER NOT NULL,
    ttft_count        INTEGER NOT NULL,
    latency_hist      BLOB NOT NULL,
    ttft_hist         BLOB NOT NULL,
    PRIMARY KEY (grain_ms, start_ms, key_id, team_id, model, provider)
) STRICT;

-- Which traces the roll-ups hold: the writer sums new traces in memory and adds them about once
-- a second, moving this cursor in the same transaction; at open it adds every trace past it
-- (after a crash; and, the first time, every trace already stored, histograms included).
CREATE TABLE rollup_state (
    name       TEXT PRIMARY KEY,
    last_rowid INTEGER NOT NULL
) STRICT;
