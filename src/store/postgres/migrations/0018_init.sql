-- 0018: the whole schema as SQLite has it at version 18, in PostgreSQL's types. PostgreSQL
-- starts at the version the SQLite backend had reached when it was built, so both backends
-- number their schemas alike; a later change is a new numbered file here and in sqlite/.
-- Shipped migrations are never edited. Times are epoch milliseconds (BIGINT) and money integer
-- nano-dollars (BIGINT), as in SQLite; JSON is kept as TEXT, written and read as SQLite does.

CREATE TABLE traces (
    row_id            BIGSERIAL UNIQUE,          -- SQLite's rowid: the console's keyset cursor
    id                TEXT PRIMARY KEY,          -- UUIDv7, time-ordered
    ts_ms             BIGINT NOT NULL,
    endpoint          TEXT NOT NULL,
    requested_model   TEXT NOT NULL,
    provider          TEXT,
    upstream_model    TEXT,
    status            BIGINT NOT NULL,
    error_class       TEXT,
    stream            BOOLEAN NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    reasoning_tokens  BIGINT NOT NULL,
    usage_estimated   BOOLEAN NOT NULL,
    cost_nanos        BIGINT NOT NULL,
    price_known       BOOLEAN NOT NULL,
    latency_us        BIGINT NOT NULL,
    ttft_us           BIGINT,
    upstream_us       BIGINT,
    overhead_us       BIGINT NOT NULL,
    bytes_in          BIGINT NOT NULL,
    bytes_out         BIGINT NOT NULL,
    "user"            TEXT,
    request_id        TEXT NOT NULL,
    key_id            TEXT,
    request_body      TEXT,
    response_body     TEXT,
    deployment        TEXT,
    attempts          BIGINT NOT NULL DEFAULT 1,
    variant           TEXT,
    answered_by       TEXT,
    internal_caller   TEXT,
    team_id           TEXT,
    key_metadata      TEXT,
    cache             TEXT,
    saved_nanos       BIGINT NOT NULL DEFAULT 0,
    verdicts          TEXT,
    tags              TEXT,
    route_rule        TEXT,
    prompt            TEXT
);
CREATE INDEX traces_ts ON traces (ts_ms, row_id);
CREATE INDEX traces_model_ts ON traces (requested_model, ts_ms, row_id);
CREATE INDEX traces_key_ts ON traces (key_id, ts_ms, row_id);
CREATE INDEX traces_team_ts ON traces (team_id, ts_ms, row_id);
CREATE INDEX traces_errors_ts ON traces (ts_ms, row_id) WHERE status >= 400;
CREATE INDEX traces_cache_ts ON traces (cache, ts_ms, row_id) WHERE cache IS NOT NULL AND cache <> 'miss';

CREATE TABLE module_state (
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL DEFAULT 'global',
    enabled    BOOLEAN NOT NULL,
    config     TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (name, scope)
);

-- One chain for every node: appends take a transaction-scoped advisory lock first (write.rs).
CREATE TABLE ledger (
    seq       BIGINT PRIMARY KEY,
    ts_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    mac       TEXT
);

CREATE TABLE price_files (
    id        BIGSERIAL PRIMARY KEY,
    loaded_ms BIGINT NOT NULL,
    body      TEXT NOT NULL
);

CREATE TABLE breakers (
    deployment TEXT PRIMARY KEY,
    phase      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE responses (
    id         TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    response   TEXT NOT NULL,
    history    TEXT NOT NULL,
    owner      TEXT
);
CREATE INDEX responses_created ON responses (created_ms);

CREATE TABLE auth_failures (
    minute_ms BIGINT NOT NULL,
    source    TEXT NOT NULL,
    reason    TEXT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (minute_ms, source, reason)
);

CREATE TABLE teams (
    name       TEXT PRIMARY KEY,
    limits     TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE virtual_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    team         TEXT,
    limits       TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    expires_ms   BIGINT,
    revoked_ms   BIGINT,
    created_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    rotated_from TEXT
);
CREATE INDEX virtual_keys_team ON virtual_keys (team);

CREATE TABLE admin_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'read-only')),
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);

CREATE TABLE provider_credentials (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    base_url    TEXT,
    sealed      BYTEA NOT NULL,
    fingerprint TEXT NOT NULL,
    label       TEXT,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX provider_credentials_by_provider ON provider_credentials (provider, created_ms);

CREATE TABLE secrets_meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE spend_daily (
    day_ms            BIGINT NOT NULL,
    key_id            TEXT NOT NULL,
    team_id           TEXT NOT NULL,
    "user"            TEXT NOT NULL,
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost_nanos        BIGINT NOT NULL,
    saved_nanos       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day_ms, key_id, team_id, "user", model, provider)
);
CREATE INDEX spend_daily_key ON spend_daily (key_id, day_ms);
CREATE INDEX spend_daily_team ON spend_daily (team_id, day_ms);

CREATE TABLE budget_alerts (
    id              BIGSERIAL UNIQUE,            -- insertion order, as SQLite's rowid
    scope           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    period          TEXT NOT NULL,
    period_start_ms BIGINT NOT NULL,
    percent         BIGINT NOT NULL,
    ts_ms           BIGINT NOT NULL,
    spend_nanos     BIGINT NOT NULL,
    limit_nanos     BIGINT NOT NULL,
    PRIMARY KEY (scope, subject, period, period_start_ms, percent)
);

CREATE TABLE rate_counts (
    counter         TEXT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    window_ms       BIGINT NOT NULL,
    value           BIGINT NOT NULL,
    PRIMARY KEY (counter, window_start_ms)
);

CREATE TABLE cache_entries (
    kind        TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    model       TEXT NOT NULL,
    partition   TEXT NOT NULL DEFAULT '',
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    saved_nanos BIGINT NOT NULL,
    answer      TEXT NOT NULL,
    embedding   BYTEA,
    PRIMARY KEY (kind, namespace, key)
);
CREATE INDEX cache_entries_expiry ON cache_entries (expires_ms);

CREATE TABLE alerts (
    id        BIGSERIAL PRIMARY KEY,
    ts_ms     BIGINT NOT NULL,
    rule      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    message   TEXT NOT NULL,
    delivered BOOLEAN NOT NULL
);
CREATE INDEX alerts_ts ON alerts (ts_ms);

CREATE TABLE alert_state (
    rule          TEXT PRIMARY KEY,
    last_fired_ms BIGINT NOT NULL
);

CREATE TABLE spend_tag_daily (
    day_ms            BIGINT NOT NULL,
    tag               TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost_nanos        BIGINT NOT NULL,
    saved_nanos       BIGINT NOT NULL,
    PRIMARY KEY (day_ms, tag)
);

CREATE TABLE prompt_templates (
    name       TEXT PRIMARY KEY,
    active     BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE prompt_versions (
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Kept in the trace batch's own transaction on PostgreSQL (not summed in memory as on SQLite):
-- several nodes append traces, so a per-node cursor over trace rows could not say which rows
-- the roll-ups hold.
CREATE TABLE trace_rollup (
    grain_ms          BIGINT NOT NULL,
    start_ms          BIGINT NOT NULL,
    key_id            TEXT NOT NULL,
    team_id           TEXT NOT NULL,
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    errors            BIGINT NOT NULL,
    cache_hits        BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost_nanos        BIGINT NOT NULL,
    saved_nanos       BIGINT NOT NULL,
    latency_us_sum    BIGINT NOT NULL,
    ttft_us_sum       BIGINT NOT NULL,
    ttft_count        BIGINT NOT NULL,
    latency_hist      BYTEA NOT NULL,
    ttft_hist         BYTEA NOT NULL,
    PRIMARY KEY (grain_ms, start_ms, key_id, team_id, model, provider)
);

CREATE TABLE mcp_calls (
    row_id        BIGSERIAL UNIQUE,
    id            TEXT PRIMARY KEY,
    ts_ms         BIGINT NOT NULL,
    key_id        TEXT,
    team_id       TEXT,
    server        TEXT NOT NULL,
    tool          TEXT NOT NULL,
    decision      TEXT NOT NULL,
    rule          TEXT NOT NULL,
    rule_revision BIGINT NOT NULL,
    outcome       TEXT NOT NULL,
    duration_us   BIGINT NOT NULL,
    bytes_in      BIGINT NOT NULL,
    bytes_out     BIGINT NOT NULL,
    args_sha256   TEXT NOT NULL,
    arguments     TEXT,
    result        TEXT,
    redactions    BIGINT NOT NULL DEFAULT 0,
    ledger_seq    BIGINT
);
CREATE INDEX mcp_calls_ts ON mcp_calls (ts_ms);
CREATE INDEX mcp_calls_key ON mcp_calls (key_id, ts_ms);
