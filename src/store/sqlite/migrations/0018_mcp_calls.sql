-- MCP tool calls through the gateway (modules/mcp): one row per tools/call, written in batches
-- by the writer with the call's ledger entry (ledger_seq) in the same transaction.
CREATE TABLE mcp_calls (
    id TEXT PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    key_id TEXT,
    team_id TEXT,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    decision TEXT NOT NULL,          -- allow | deny
    rule TEXT NOT NULL,              -- the rule that decided (or "default")
    rule_revision INTEGER NOT NULL,  -- the rules' revision in force
    outcome TEXT NOT NULL,           -- ok | tool_error | denied | rate_limited | timeout | unavailable | error
    duration_us INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    args_sha256 TEXT NOT NULL,
    arguments TEXT,                  -- captured only when configured, redacted
    result TEXT,                     -- captured only when configured, redacted
    redactions INTEGER NOT NULL DEFAULT 0,
    ledger_seq INTEGER
);
CREATE INDEX mcp_calls_ts ON mcp_calls (ts_ms);
CREATE INDEX mcp_calls_key ON mcp_calls (key_id, ts_ms);
