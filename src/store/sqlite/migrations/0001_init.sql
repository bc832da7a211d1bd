-- 0001: traces, module state, the audit ledger, stored prices.
-- Shipped migrations are never edited; a change is a new numbered file.

CREATE TABLE traces (
    id                TEXT PRIMARY KEY,          -- UUIDv7, time-ordered
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
    response_body     TEXT
) STRICT;
CREATE INDEX traces_ts ON traces (ts_ms);
CREATE INDEX traces_model_ts ON traces (requested_model, ts_ms);

CREATE TABLE module_state (
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL DEFAULT 'global',
    enabled    INTEGER NOT NULL,
    config     TEXT NOT NULL,                    -- JSON
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (name, scope)
) STRICT;

CREATE TABLE ledger (
    seq       INTEGER PRIMARY KEY,
    ts_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL,                     -- canonical JSON
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
) STRICT;

CREATE TABLE price_files (
    id        INTEGER PRIMARY KEY,
    loaded_ms INTEGER NOT NULL,
    body      TEXT NOT NULL
) STRICT;
