-- 0003: stored Responses API answers, for `previous_response_id` and `GET /v1/responses/{id}`
-- with every provider.

CREATE TABLE responses (
    id         TEXT PRIMARY KEY,                 -- resp_...
    created_ms INTEGER NOT NULL,
    response   TEXT NOT NULL,                    -- the Responses object, JSON
    history    TEXT NOT NULL                     -- the conversation so far, canonical messages (JSON array)
) STRICT;
