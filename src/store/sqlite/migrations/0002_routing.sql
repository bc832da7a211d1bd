-- 0002: routing. Which deployment answered and after how many attempts; breaker phases that
-- survive a restart.

ALTER TABLE traces ADD COLUMN deployment TEXT;
ALTER TABLE traces ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE traces ADD COLUMN variant TEXT;

CREATE TABLE breakers (
    deployment TEXT PRIMARY KEY,
    phase      TEXT NOT NULL,                    -- JSON: {"phase":"open","until_ms":...}
    reason     TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
