-- Raw store and bookkeeping: everything a connector or a file load writes before normalization.

-- Every record verbatim, one row per (source, kind, id); replaced only by a newer date_modified.
CREATE TABLE raw_records (
    source        VARCHAR NOT NULL,     -- 'prozorro', 'ocds' or a configured OCDS publisher name
    kind          VARCHAR NOT NULL,     -- tender | contract | plan | compiled_release | record | release
    id            VARCHAR NOT NULL,     -- ProZorro object id (uuid), OCDS ocid, or ocid/release-id
    ocid          VARCHAR,              -- contracting process the record belongs to (NULL for plans)
    date_modified TIMESTAMPTZ,          -- ProZorro dateModified, OCDS release date
    fetched_at    TIMESTAMPTZ NOT NULL, -- when this copy was read
    sha256        VARCHAR NOT NULL,     -- of the JSON text below
    origin        VARCHAR NOT NULL,     -- file:line or URL the copy came from
    json          JSON NOT NULL USING COMPRESSION zstd  -- the record as received (zstd: 4x smaller and
                                        -- 10x cheaper to checkpoint than the default FSST)
);

-- Where each connector stopped, saved in the same transaction as the page it follows.
CREATE TABLE cursors (
    source     VARCHAR PRIMARY KEY,
    cursor     VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per command run: load, ingest, classify, flag, nightly.
CREATE SEQUENCE runs_id_seq;
CREATE TABLE runs (
    run_id      BIGINT PRIMARY KEY DEFAULT nextval('runs_id_seq'),
    command     VARCHAR NOT NULL,
    arguments   VARCHAR,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status      VARCHAR NOT NULL,       -- running | complete | incomplete | failed
    counts      JSON,
    last_cursor VARCHAR,
    error       VARCHAR
);

-- Records that could not be parsed or mapped: never dropped silently, never fatal.
CREATE TABLE quarantine (
    quarantined_at TIMESTAMPTZ NOT NULL,
    source         VARCHAR,
    origin         VARCHAR NOT NULL,    -- file path or URL
    line           BIGINT,              -- line in the file (JSON Lines) or NULL
    locator        VARCHAR,             -- position inside a document, e.g. /releases/3
    record_id      VARCHAR,             -- id or ocid when it could be read
    reason         VARCHAR NOT NULL,
    raw            VARCHAR USING COMPRESSION zstd  -- the raw text (first MiB when larger)
);
