-- 0010: governance. Traces name the key's team and carry its metadata; spend rolls up per UTC
-- day, key, team, user, model and provider (kept by the writer in the trace batch's transaction,
-- so reports and budget checks never scan the traces); budget alerts, once per crossing; and the
-- rate-limit counts of open windows, so a restart inside a window does not reset them.
-- (0008 and 0009 belong to other changes; versions are explicit, so the gap is harmless.)

ALTER TABLE traces ADD COLUMN team_id TEXT;
ALTER TABLE traces ADD COLUMN key_metadata TEXT;          -- JSON object

CREATE TABLE spend_daily (
    day_ms            INTEGER NOT NULL,                    -- midnight UTC, ms since the epoch
    key_id            TEXT NOT NULL,                       -- '' when none (local mode)
    team_id           TEXT NOT NULL,                       -- '' when none
    user              TEXT NOT NULL,                       -- '' when none
    model             TEXT NOT NULL,                       -- the model the client asked for
    provider          TEXT NOT NULL,                       -- '' when none answered
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_nanos        INTEGER NOT NULL,
    PRIMARY KEY (day_ms, key_id, team_id, user, model, provider)
) STRICT;
CREATE INDEX spend_daily_key ON spend_daily (key_id, day_ms);
CREATE INDEX spend_daily_team ON spend_daily (team_id, day_ms);

-- What the traces already hold, so reports moved onto the rollups lose no history.
INSERT INTO spend_daily (day_ms, key_id, team_id, user, model, provider, requests, prompt_tokens,
                         completion_tokens, cost_nanos)
SELECT ts_ms - (ts_ms % 86400000), COALESCE(key_id, ''), '', COALESCE(user, ''), requested_model,
       COALESCE(provider, ''), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos)
FROM traces
GROUP BY 1, 2, 3, 4, 5, 6;

CREATE TABLE budget_alerts (
    scope           TEXT NOT NULL,                         -- 'key' or 'team'
    subject         TEXT NOT NULL,
    period          TEXT NOT NULL,                         -- day, week, month, total
    period_start_ms INTEGER NOT NULL,
    percent         INTEGER NOT NULL,
    ts_ms           INTEGER NOT NULL,
    spend_nanos     INTEGER NOT NULL,
    limit_nanos     INTEGER NOT NULL,
    PRIMARY KEY (scope, subject, period, period_start_ms, percent)
) STRICT;

CREATE TABLE rate_counts (
    counter         TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_ms       INTEGER NOT NULL,
    value           INTEGER NOT NULL,
    PRIMARY KEY (counter, window_start_ms)
) STRICT;
