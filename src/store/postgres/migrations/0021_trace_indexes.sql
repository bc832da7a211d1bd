-- 0021: the trace list's key and team indexes hold only the rows that have a key or a team (as on
-- SQLite): rows without one were index entries no filter reaches, written for every such trace.
-- Like every migration it runs in the start-up transaction, so the rebuild holds `traces` locked
-- while it runs: on a large shared table, upgrade in a quiet moment (meanwhile other nodes' trace
-- writes wait in their queues and hold, bounded and counted as when the database is out of reach).
DROP INDEX traces_key_ts;
CREATE INDEX traces_key_ts ON traces (key_id, ts_ms, row_id) WHERE key_id IS NOT NULL;
DROP INDEX traces_team_ts;
CREATE INDEX traces_team_ts ON traces (team_id, ts_ms, row_id) WHERE team_id IS NOT NULL;
