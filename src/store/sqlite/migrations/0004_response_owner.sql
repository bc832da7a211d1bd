-- 0004: a stored Responses answer belongs to the client key that created it, so another key can
-- neither read it nor continue from it. NULL: created in local mode (no client keys), or before
-- this migration; such answers are visible only in local mode, never to a key.

ALTER TABLE responses ADD COLUMN owner TEXT;   -- the creating key's id (a hash prefix, never the key)
