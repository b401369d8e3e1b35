-- Flag evidence compressed with zstd, as the raw JSON is: a million flags carry ~400 MB of evidence, and
-- DuckDB's default string compression (FSST, dictionary) spent more time on it at each checkpoint than
-- the merge itself (bench/flags.py). DuckDB sets a column's compression only when the table is created,
-- so the table is rebuilt with its rows.
CREATE TABLE flags_rebuilt (
    rule_id      VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,      -- anomaly | opportunity
    severity     VARCHAR NOT NULL,      -- info | low | medium | high
    subject_type VARCHAR NOT NULL,      -- process | plan | buyer | procuring-entity | tenderer | buyer-tenderer | region
    subject_id   VARCHAR NOT NULL,      -- ocid, plan id, <scheme>-<id> of an organization, region name, ...
    ocid         VARCHAR,               -- when the subject is a process (or the rule names one)
    value        DOUBLE,
    evidence     JSON USING COMPRESSION zstd,  -- the other columns the rule returned
    first_seen   TIMESTAMPTZ NOT NULL,  -- the run that raised it
    last_seen    TIMESTAMPTZ NOT NULL,  -- the last run that raised it or changed its value/evidence
    resolved_at  TIMESTAMPTZ            -- the run in which it stopped firing (NULL while open)
);
INSERT INTO flags_rebuilt SELECT * FROM flags ORDER BY first_seen, rule_id, subject_id;
DROP TABLE flags;
ALTER TABLE flags_rebuilt RENAME TO flags;
