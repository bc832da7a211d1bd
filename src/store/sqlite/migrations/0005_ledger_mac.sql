-- 0005: each ledger entry's HMAC under the ledger key (kept outside this file), so a chain
-- recomputed by someone who can write the database no longer verifies. Entries written before
-- this migration keep a NULL mac and verify as "unanchored".
-- (0004 belongs to another change; versions are explicit, so the gap is harmless.)

ALTER TABLE ledger ADD COLUMN mac TEXT;
