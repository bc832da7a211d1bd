-- 0011: response caches (exact and semantic) and the embeddings cache, kept in the file so they
-- survive a restart; the modules load them into memory at start-up and never read this table on
-- the request path. The trace says what the cache did and what it saved.

CREATE TABLE cache_entries (
    kind        TEXT NOT NULL,                   -- exact | semantic | embedding
    namespace   TEXT NOT NULL,                   -- global | team:<id> | key:<id> (+ /<client namespace>)
    key         TEXT NOT NULL,                   -- hex SHA-256 of the normalised request
    model       TEXT NOT NULL,                   -- the model after alias resolution
    partition   TEXT NOT NULL DEFAULT '',        -- semantic: what must match besides similarity
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    saved_nanos INTEGER NOT NULL,                -- what the upstream call cost when it was made
    answer      TEXT NOT NULL,                   -- the canonical answer (chat.completion), JSON
    embedding   BLOB,                            -- semantic: little-endian f32s, unit length
    PRIMARY KEY (kind, namespace, key)
) STRICT;

CREATE INDEX cache_entries_expiry ON cache_entries (expires_ms);

ALTER TABLE traces ADD COLUMN cache TEXT;                 -- hit | semantic-hit | miss | skip
ALTER TABLE traces ADD COLUMN saved_nanos INTEGER NOT NULL DEFAULT 0;

-- What cache hits saved, rolled up beside what was spent, so spend reports show both.
ALTER TABLE spend_daily ADD COLUMN saved_nanos INTEGER NOT NULL DEFAULT 0;
