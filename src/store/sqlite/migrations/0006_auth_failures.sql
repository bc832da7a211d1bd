-- 0006: refused authentications, counted per minute, source address and reason (one row per
-- bucket, however many requests it counts), instead of one trace row per refused request.

CREATE TABLE auth_failures (
    minute_ms INTEGER NOT NULL,                  -- start of the minute, ms since the epoch
    source    TEXT NOT NULL,                     -- client IP address, or 'unknown'
    reason    TEXT NOT NULL,                     -- missing_api_key, invalid_api_key
    count     INTEGER NOT NULL,
    PRIMARY KEY (minute_ms, source, reason)
) STRICT;
