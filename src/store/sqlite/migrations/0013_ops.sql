-- 0013: operations. Alerts fired by the `alerts` module, and each rule's last firing so a
-- restart inside a cool-down does not fire again; an index for retention on stored responses.
-- (0011 and 0012 belong to other changes; versions are explicit, so the gap is harmless.)

CREATE TABLE alerts (
    id        INTEGER PRIMARY KEY,
    ts_ms     INTEGER NOT NULL,
    rule      TEXT NOT NULL,                      -- the rule's name in config
    kind      TEXT NOT NULL,                      -- error_rate, latency_p95_ms, spend_usd, ...
    value     REAL NOT NULL,                      -- what was measured
    threshold REAL NOT NULL,
    message   TEXT NOT NULL,
    delivered INTEGER NOT NULL                    -- 1 when the webhook answered 2xx
) STRICT;
CREATE INDEX alerts_ts ON alerts (ts_ms);

CREATE TABLE alert_state (
    rule          TEXT PRIMARY KEY,
    last_fired_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX responses_created ON responses (created_ms);
