-- An integer key for every contracting process, beside its ocid, in every table of a process.
-- Rules join and group processes' rows on it: a join on a 30-odd-character text ocid costs several
-- times a join on a number (bench/flags.py). process_keys gives each ocid its number once, when a
-- record of it is first normalized, and never changes or reuses it, so a key stays the same when
-- another source's record of the process replaces the rows. ocid stays the readable identifier.
-- Two steps: DuckDB refuses NOT NULL on a column updated in the same transaction. Both steps can
-- run again after a failure between them.
CREATE TABLE IF NOT EXISTS process_keys (
    ocid        VARCHAR NOT NULL,
    process_key BIGINT NOT NULL
);

INSERT INTO process_keys
SELECT ocid, (SELECT coalesce(max(process_key), 0) FROM process_keys) + row_number() OVER (ORDER BY ocid)
FROM (SELECT ocid FROM processes UNION SELECT ocid FROM lots UNION SELECT ocid FROM items
      UNION SELECT ocid FROM bids UNION SELECT ocid FROM awards UNION SELECT ocid FROM complaints
      UNION SELECT ocid FROM bid_documents UNION SELECT ocid FROM contracts
      UNION SELECT ocid FROM contract_items UNION SELECT ocid FROM contract_changes
      UNION SELECT ocid FROM classifications) o
WHERE NOT EXISTS (SELECT 1 FROM process_keys k WHERE k.ocid = o.ocid);

ALTER TABLE processes ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE processes t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE lots ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE lots t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE items ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE items t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE bids ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE bids t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE awards ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE awards t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE complaints ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE complaints t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE bid_documents ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE bid_documents t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE contracts ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE contracts t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE contract_items ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE contract_items t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE contract_changes ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE contract_changes t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;
ALTER TABLE classifications ADD COLUMN IF NOT EXISTS process_key BIGINT;
UPDATE classifications t SET process_key = k.process_key FROM process_keys k WHERE k.ocid = t.ocid AND t.process_key IS NULL;

-- next step
ALTER TABLE processes ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE lots ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE items ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE bids ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE awards ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE complaints ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE bid_documents ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE contracts ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE contract_items ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE contract_changes ALTER COLUMN process_key SET NOT NULL;
ALTER TABLE classifications ALTER COLUMN process_key SET NOT NULL;
