-- Files and batches passed to a provider (modules/batches), as SQLite's migration 0019: which
-- provider and credential holds each upstream object, who created it, and whether a batch's
-- output was priced (so fetching it twice does not charge twice).
CREATE TABLE batch_objects (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    provider   TEXT NOT NULL,
    credential TEXT,
    key_id     TEXT,
    team_id    TEXT,
    created_ms BIGINT NOT NULL,
    batch_id   TEXT,
    costed_ms  BIGINT,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX batch_objects_owner ON batch_objects (key_id, kind);
