-- 0022: nothing changes here. On SQLite this version drops the unique index on a trace's id and
-- stores each row under a number read from its id; PostgreSQL keeps `id` as the primary key (its
-- `row_id` is a sequence shared by every node, which no one node can derive from an id). Both
-- backends are at the same version for one build, so the number is taken here too.
SELECT 1;
