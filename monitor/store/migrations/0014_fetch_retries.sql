-- The retry queue: objects a feed listed that the server failed to give after every attempt (429,
-- 5xx, the network). Such a failure says nothing about the object, so it is neither quarantined nor
-- allowed to block its feed for ever: an object that fails again in a later run (or whose page had
-- other objects fetched fine) is deferred here, the cursor moves on, and every later run fetches the
-- deferred objects again first. A row is removed when its object is stored (or turns out to be bad
-- input, then quarantined).
CREATE TABLE IF NOT EXISTS fetch_retries (
    feed            VARCHAR NOT NULL,     -- the connector's name, as in cursors (prozorro-tenders)
    source          VARCHAR NOT NULL,     -- as in raw_records (prozorro)
    kind            VARCHAR NOT NULL,     -- as in raw_records (tender, contract, plan)
    id              VARCHAR NOT NULL,     -- the object's id
    url             VARCHAR NOT NULL,     -- what was asked
    failures        INTEGER NOT NULL,     -- runs in which every attempt failed
    first_failed_at TIMESTAMPTZ NOT NULL,
    last_failed_at  TIMESTAMPTZ NOT NULL,
    last_error      VARCHAR NOT NULL,
    deferred        BOOLEAN NOT NULL      -- the cursor has moved past it: only the retry pass fetches it
);
