-- 0014: the module catalogue. Trace columns for what `tags`, `route_rules` and
-- `prompt_templates` did to a request; spend rollups per tag (a request counts once under each
-- of its tags); and named, versioned prompt templates.

ALTER TABLE traces ADD COLUMN tags TEXT;          -- JSON array of strings
ALTER TABLE traces ADD COLUMN route_rule TEXT;    -- the route_rules rule that chose the model
ALTER TABLE traces ADD COLUMN prompt TEXT;        -- name@version, plus #variant under a split

CREATE TABLE spend_tag_daily (
    day_ms            INTEGER NOT NULL,
    tag               TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_nanos        INTEGER NOT NULL,
    saved_nanos       INTEGER NOT NULL,
    PRIMARY KEY (day_ms, tag)
) STRICT;

-- One row per template: which version is in force (`latest` unless rolled back).
CREATE TABLE prompt_templates (
    name       TEXT PRIMARY KEY,
    active     INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

-- Every version ever put, never edited: a rollback moves `active`, it deletes nothing.
CREATE TABLE prompt_versions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,                   -- JSON: {"variants": [{name, weight, template}]}
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;
