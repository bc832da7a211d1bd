-- 0021: the trace list's key and team indexes hold only the rows that have a key or a team. A
-- request without a virtual key (a static key, local mode) or from a key without a team added a
-- NULL entry to each, two of the six B-tree inserts a trace row costs, for rows no filter reaches:
-- `key_id = ?` implies `key_id IS NOT NULL`, so the list's filters use these as before.
DROP INDEX traces_key_ts;
CREATE INDEX traces_key_ts ON traces (key_id, ts_ms) WHERE key_id IS NOT NULL;
DROP INDEX traces_team_ts;
CREATE INDEX traces_team_ts ON traces (team_id, ts_ms) WHERE team_id IS NOT NULL;
