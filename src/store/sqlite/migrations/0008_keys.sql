-- 0008: virtual keys, teams and admin keys. Only a keyed hash (HMAC-SHA256 under a secret kept
-- outside the database) and a short visible prefix of each key are stored, never the key.
-- Limits are JSON (`request::grant::Limits`: budget in integer nano-dollars, rpm, tpm, model
-- globs). Rows are never deleted, except a team with no key: a revoked key stays for the record.

CREATE TABLE teams (
    name       TEXT PRIMARY KEY,                 -- the team's id
    limits     TEXT NOT NULL,                    -- JSON
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE virtual_keys (
    id           TEXT PRIMARY KEY,               -- vk_...
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,                  -- the first characters, to recognise a key
    hash         TEXT NOT NULL UNIQUE,           -- HMAC-SHA256 hex of the key
    team         TEXT,                           -- teams.name (kept after the key is revoked)
    limits       TEXT NOT NULL,                  -- JSON
    metadata     TEXT NOT NULL,                  -- JSON object of strings
    expires_ms   INTEGER,
    revoked_ms   INTEGER,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    rotated_from TEXT                            -- the id of the key this one replaced
) STRICT;

CREATE INDEX virtual_keys_team ON virtual_keys (team);

CREATE TABLE admin_keys (
    id         TEXT PRIMARY KEY,                 -- ak_...
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'read-only')),
    prefix     TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
) STRICT;
