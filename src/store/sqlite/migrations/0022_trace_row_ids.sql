-- 0022: a trace's row is found from its id, so `traces` no longer keeps a unique index on `id`.
--
-- Of the five B-tree inserts an ordinary trace row cost (the table, the unique index on `id`, and
-- the time, model and key indexes), the `id` index was the widest key (36 characters) and its
-- uniqueness check a seek of its own, on the writer thread and at every request. A trace id is a
-- UUIDv7 whose first 64 bits (milliseconds, version, a counter) are unique and time-ordered, and
-- the writer stores the row under exactly that number (`trace_rows.rs`): a lookup by id reads
-- the number back out of the id and checks the stored id. A row that cannot be stored under its
-- id's number (an id of another shape, one arriving after a later one, every row from before this
-- migration) gets the next free number instead and is listed in `trace_ids`.
--
-- `row_id` is an INTEGER PRIMARY KEY, so row numbers are stable: a VACUUM (`stockyard db
-- compact`) may renumber the rows of a table whose rowid is implicit, and both the lookup above
-- and the roll-ups' cursor (`rollup_state`) need them fixed.
--
-- The rebuild copies every row once, in the start-up transaction.

CREATE TABLE traces_by_row (
    row_id            INTEGER PRIMARY KEY,
    id                TEXT NOT NULL,             -- UUIDv7, time-ordered
    ts_ms             INTEGER NOT NULL,
    endpoint          TEXT NOT NULL,
    requested_model   TEXT NOT NULL,
    provider          TEXT,
    upstream_model    TEXT,
    status            INTEGER NOT NULL,
    error_class       TEXT,
    stream            INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    usage_estimated   INTEGER NOT NULL,
    cost_nanos        INTEGER NOT NULL,          -- 1e-9 USD
    price_known       INTEGER NOT NULL,
    latency_us        INTEGER NOT NULL,
    ttft_us           INTEGER,
    upstream_us       INTEGER,
    overhead_us       INTEGER NOT NULL,
    bytes_in          INTEGER NOT NULL,
    bytes_out         INTEGER NOT NULL,
    user              TEXT,
    request_id        TEXT NOT NULL,
    key_id            TEXT,
    request_body      TEXT,
    response_body     TEXT,
    deployment        TEXT,
    attempts          INTEGER NOT NULL DEFAULT 1,
    variant           TEXT,
    answered_by       TEXT,
    internal_caller   TEXT,
    team_id           TEXT,
    key_metadata      TEXT,                      -- JSON object
    cache             TEXT,                      -- hit | semantic-hit | miss | skip
    saved_nanos       INTEGER NOT NULL DEFAULT 0,
    verdicts          TEXT,
    tags              TEXT,                      -- JSON array of strings
    route_rule        TEXT,
    prompt            TEXT
) STRICT;

INSERT INTO traces_by_row (row_id, id, ts_ms, endpoint, requested_model, provider, upstream_model,
    status, error_class, stream, prompt_tokens, completion_tokens, cached_input_tokens,
    cache_write_tokens, reasoning_tokens, usage_estimated, cost_nanos, price_known, latency_us,
    ttft_us, upstream_us, overhead_us, bytes_in, bytes_out, user, request_id, key_id,
    request_body, response_body, deployment, attempts, variant, answered_by, internal_caller,
    team_id, key_metadata, cache, saved_nanos, verdicts, tags, route_rule, prompt)
SELECT rowid, id, ts_ms, endpoint, requested_model, provider, upstream_model,
    status, error_class, stream, prompt_tokens, completion_tokens, cached_input_tokens,
    cache_write_tokens, reasoning_tokens, usage_estimated, cost_nanos, price_known, latency_us,
    ttft_us, upstream_us, overhead_us, bytes_in, bytes_out, user, request_id, key_id,
    request_body, response_body, deployment, attempts, variant, answered_by, internal_caller,
    team_id, key_metadata, cache, saved_nanos, verdicts, tags, route_rule, prompt
FROM traces;

-- The rows whose number is not their id's: found by id here. Retention deletes an entry with its
-- row (by `row_id`, hence the second index).
CREATE TABLE trace_ids (
    id     TEXT PRIMARY KEY,
    row_id INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX trace_ids_row ON trace_ids (row_id);
INSERT INTO trace_ids (id, row_id) SELECT id, rowid FROM traces;

DROP TABLE traces;
ALTER TABLE traces_by_row RENAME TO traces;
CREATE INDEX traces_ts ON traces (ts_ms);
CREATE INDEX traces_model_ts ON traces (requested_model, ts_ms);
CREATE INDEX traces_errors_ts ON traces (ts_ms) WHERE status >= 400;
CREATE INDEX traces_cache_ts ON traces (cache, ts_ms) WHERE cache IS NOT NULL AND cache <> 'miss';
CREATE INDEX traces_key_ts ON traces (key_id, ts_ms) WHERE key_id IS NOT NULL;
CREATE INDEX traces_team_ts ON traces (team_id, ts_ms) WHERE team_id IS NOT NULL;
