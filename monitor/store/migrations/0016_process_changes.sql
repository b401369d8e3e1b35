-- The change log of contracting processes: which processes the normalizer wrote (new, replaced or
-- taken over by another record) and the classifier re-classified, in batches numbered in order. The
-- flag engine evaluates an incremental rule (one whose flags on a process depend on that process's
-- rows alone) only on the processes logged since it last ran, so a night's evaluation grows with
-- what changed, not with the database. Rows every such rule has seen are pruned by the engine.
CREATE TABLE IF NOT EXISTS process_changes (
    change_seq BIGINT NOT NULL,   -- the batch: larger is later (one writer at a time holds the store)
    ocid       VARCHAR NOT NULL
);

-- Where each incremental rule last left off: the last batch of process_changes it has seen, and a
-- hash of its definition then (query, params, scope, shared sets). A rule whose definition changed,
-- or that has no row here, is evaluated on every process.
CREATE TABLE IF NOT EXISTS flag_watermarks (
    rule_id         VARCHAR PRIMARY KEY,
    definition_hash VARCHAR NOT NULL,
    change_seq      BIGINT NOT NULL,
    evaluated_at    TIMESTAMPTZ NOT NULL
);
