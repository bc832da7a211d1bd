-- 0021: the trace list's key and team indexes hold only the rows that have a key or a team (as on
-- SQLite): rows without one were index entries no filter reaches, written for every such trace.
DROP INDEX traces_key_ts;
CREATE INDEX traces_key_ts ON traces (key_id, ts_ms, row_id) WHERE key_id IS NOT NULL;
DROP INDEX traces_team_ts;
CREATE INDEX traces_team_ts ON traces (team_id, ts_ms, row_id) WHERE team_id IS NOT NULL;
