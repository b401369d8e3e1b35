-- Plans are classified like processes, so opportunity rules can find planned social and health
-- purchases (and those never procured). Their item texts and codes are kept for that.
ALTER TABLE plans ADD COLUMN item_descriptions VARCHAR[];
ALTER TABLE plans ADD COLUMN item_cpvs VARCHAR[];

CREATE TABLE plan_classifications (
    plan_id    VARCHAR NOT NULL,
    category   VARCHAR NOT NULL,
    score      INTEGER NOT NULL,
    confidence VARCHAR NOT NULL,
    evidence   STRUCT(signal VARCHAR, field VARCHAR, value VARCHAR)[] NOT NULL,
    classified_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE classified_plans (
    plan_id       VARCHAR NOT NULL,
    raw_key       VARCHAR NOT NULL,
    date_modified TIMESTAMPTZ,
    rules_hash    VARCHAR NOT NULL
);
