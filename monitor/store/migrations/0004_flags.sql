-- Flags raised by the rule files in rules/flags/, with their history.
CREATE TABLE flags (
    rule_id      VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,      -- anomaly | opportunity
    severity     VARCHAR NOT NULL,      -- info | low | medium | high
    subject_type VARCHAR NOT NULL,      -- process | plan | buyer | procuring-entity | tenderer | buyer-tenderer | region
    subject_id   VARCHAR NOT NULL,      -- ocid, plan id, <scheme>-<id> of an organization, region name, ...
    ocid         VARCHAR,               -- when the subject is a process (or the rule names one)
    value        DOUBLE,
    evidence     JSON,                  -- the other columns the rule returned
    first_seen   TIMESTAMPTZ NOT NULL,  -- the run that raised it
    last_seen    TIMESTAMPTZ NOT NULL,  -- the last run that raised it or changed its value/evidence
    resolved_at  TIMESTAMPTZ            -- the run in which it stopped firing (NULL while open)
);

-- One row per rule per evaluation: how long it took, how many rows, or why it failed.
CREATE TABLE rule_runs (
    rule_id      VARCHAR NOT NULL,
    evaluated_at TIMESTAMPTZ NOT NULL,
    status       VARCHAR NOT NULL,      -- ok | failed
    rows         INTEGER,
    seconds      DOUBLE,
    error        VARCHAR
);

-- Item classifications of an award (OCDS awards[].items[]): Cardinal's R048 counts them.
ALTER TABLE awards ADD COLUMN item_cpvs VARCHAR[];
