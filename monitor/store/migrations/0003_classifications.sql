-- Categories of each process (health, social, programme tags) with the evidence behind them.
CREATE TABLE classifications (
    ocid       VARCHAR NOT NULL,
    category   VARCHAR NOT NULL,       -- id of a category file in rules/classify/
    score      INTEGER NOT NULL,       -- strong evidence 2, each weak signal 1
    confidence VARCHAR NOT NULL,       -- high (a defining code or a medicine) | medium (weak signals only)
    evidence   STRUCT(signal VARCHAR, field VARCHAR, value VARCHAR)[] NOT NULL,
    classified_at TIMESTAMPTZ NOT NULL
);

-- Which version of each process was classified, with which rule files: the next run does only
-- the processes that changed since, or everything when the rule files changed.
CREATE TABLE classified_processes (
    ocid          VARCHAR NOT NULL,
    raw_key       VARCHAR NOT NULL,
    date_modified TIMESTAMPTZ,
    rules_hash    VARCHAR NOT NULL
);
