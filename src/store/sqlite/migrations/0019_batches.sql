-- Files and batches passed to a provider (modules/batches): which provider and credential holds
-- each upstream object, who created it (only that key, or its team, may see it), and whether a
-- batch's output was priced (so fetching it twice does not charge twice).
CREATE TABLE batch_objects (
    id TEXT PRIMARY KEY,             -- the provider's id: file-..., batch_..., msgbatch_...
    kind TEXT NOT NULL,              -- file | batch | message_batch
    provider TEXT NOT NULL,
    credential TEXT,                 -- stored credential id, or "config" for the configured key
    key_id TEXT,
    team_id TEXT,
    created_ms INTEGER NOT NULL,
    batch_id TEXT,                   -- for a batch's output or error file: that batch
    costed_ms INTEGER,               -- when the batch's output was priced
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX batch_objects_owner ON batch_objects (key_id, kind);
