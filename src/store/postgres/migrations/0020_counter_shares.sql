-- Limits shared between nodes (store/counters/shares.rs): each node's share of a counter in one
-- bucket, `used` (reported usage) and `leased` (capacity it hands out from memory, counted for
-- the others until `lease_until_ms`). A counter's total is the sum over its nodes of `used` and
-- their live leases. The node '' holds a starting count seeded from the spend rollups.
CREATE TABLE counter_shares (
    counter         TEXT NOT NULL,
    bucket_start_ms BIGINT NOT NULL,
    node            TEXT NOT NULL,
    bucket_end_ms   BIGINT NOT NULL,
    used            BIGINT NOT NULL DEFAULT 0,
    leased          BIGINT NOT NULL DEFAULT 0,
    lease_until_ms  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (counter, bucket_start_ms, node)
);
CREATE INDEX counter_shares_end ON counter_shares (bucket_end_ms);

-- One node's step on one counter bucket, atomic: report usage, keep or give back the lease, and
-- grant `need` plus 1/`slice_of` of the room left after it only if the total stays within
-- `lim`. The transaction-scoped advisory lock (class 0x53590003, the counter's bucket hashed)
-- serialises the steps of one bucket across nodes; other buckets never wait on it. The
-- arithmetic is `LocalShares::sync`'s, which the store suite holds both to.
CREATE FUNCTION stockyard_counter_sync(
    p_counter TEXT, p_node TEXT, p_start BIGINT, p_end BIGINT, p_sliding BIGINT,
    p_used_delta BIGINT, p_keep BIGINT, p_need BIGINT, p_slice_of BIGINT, p_limit BIGINT,
    p_now BIGINT, p_until BIGINT, OUT granted BIGINT, OUT total BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    prev NUMERIC := 0;
    part BIGINT := 0;
    others BIGINT;
    own_used BIGINT;
    room NUMERIC;
BEGIN
    PERFORM pg_advisory_xact_lock(1398341635,
        hashtext(current_schema() || ':' || p_counter || ':' || p_start::text));
    IF p_sliding IS NOT NULL THEN
        -- The previous bucket counts its leases whole: rounded up, an estimate errs on refusing.
        SELECT COALESCE(SUM(used + leased), 0) INTO prev FROM counter_shares
            WHERE counter = p_counter AND bucket_start_ms = p_start - p_sliding;
        prev := prev * (p_sliding - (p_now - p_start));
        IF prev > 0 THEN
            part := ceil(prev / p_sliding);
        ELSE
            part := trunc(prev / p_sliding);
        END IF;
    END IF;
    SELECT COALESCE(SUM(used + CASE WHEN lease_until_ms > p_now THEN leased ELSE 0 END), 0)
        INTO others FROM counter_shares
        WHERE counter = p_counter AND bucket_start_ms = p_start AND node <> p_node;
    INSERT INTO counter_shares AS s
        (counter, bucket_start_ms, node, bucket_end_ms, used, leased, lease_until_ms)
        VALUES (p_counter, p_start, p_node, p_end, p_used_delta, p_keep, p_until)
        ON CONFLICT (counter, bucket_start_ms, node) DO UPDATE
        SET used = s.used + p_used_delta, leased = p_keep, lease_until_ms = p_until
        RETURNING s.used INTO own_used;
    room := p_limit::numeric - (part + others + own_used + p_keep);
    granted := 0;
    IF (p_need > 0 OR p_slice_of > 0) AND room >= GREATEST(p_need, 0) THEN
        granted := GREATEST(p_need, 0);
        IF p_slice_of > 0 THEN
            granted := granted + floor((room - GREATEST(p_need, 0)) / p_slice_of)::BIGINT;
        END IF;
    END IF;
    IF granted > 0 THEN
        UPDATE counter_shares SET leased = leased + granted
            WHERE counter = p_counter AND bucket_start_ms = p_start AND node = p_node;
    END IF;
    total := part + others + own_used + p_keep + granted;
END;
$$;
