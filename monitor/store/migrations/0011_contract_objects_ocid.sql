-- Two faults of earlier versions in the contracts of a database, mended in place (re-loading the same
-- files cannot: identical raw text is "unchanged" and not normalized again).
--
-- 1. A ProZorro contract object whose contractID ends in another server letter than a
--    (UA-2018-06-22-000522-c-b1) got the ocid ocds-be6bcu-UA-2018-06-22-000522-c-b1, a process of its
--    own with no process row, instead of its tender's. Its raw record, contract, items and changes move
--    to the tender's ocid (and process key).
-- 2. A contract known from an OCDS release of its process and from ProZorro's contracts feed was
--    stored twice (origins ocds and contract). The OCDS copy and its items and changes go; the
--    contract object stays, as loading now keeps it.
-- One step, one transaction. Flags of the old ocids are resolved by the next evaluation.
CREATE OR REPLACE TEMP TABLE m11_moved AS
SELECT source || ':contract:' || id AS raw_key, ocid AS old_ocid,
       'ocds-be6bcu-' || regexp_replace(coalesce(json_extract_string(json, '$.data.contractID'),
                                                 json_extract_string(json, '$.contractID')), '-[a-z]\d+$', '') AS ocid
FROM raw_records
WHERE kind = 'contract';
DELETE FROM m11_moved WHERE ocid IS NULL OR ocid = old_ocid;

INSERT INTO process_keys
SELECT ocid, (SELECT coalesce(max(process_key), 0) FROM process_keys) + row_number() OVER (ORDER BY ocid)
FROM (SELECT DISTINCT ocid FROM m11_moved) m
WHERE NOT EXISTS (SELECT 1 FROM process_keys k WHERE k.ocid = m.ocid);

UPDATE raw_records r SET ocid = m.ocid FROM m11_moved m
WHERE r.kind = 'contract' AND r.source || ':contract:' || r.id = m.raw_key;
UPDATE contracts t SET ocid = m.ocid, process_key = m.process_key
FROM (SELECT m.raw_key, m.ocid, k.process_key FROM m11_moved m JOIN process_keys k USING (ocid)) m
WHERE t.raw_key = m.raw_key;
UPDATE contract_items t SET ocid = m.ocid, process_key = m.process_key
FROM (SELECT m.raw_key, m.ocid, k.process_key FROM m11_moved m JOIN process_keys k USING (ocid)) m
WHERE t.raw_key = m.raw_key;
UPDATE contract_changes t SET ocid = m.ocid, process_key = m.process_key
FROM (SELECT m.raw_key, m.ocid, k.process_key FROM m11_moved m JOIN process_keys k USING (ocid)) m
WHERE t.raw_key = m.raw_key;

CREATE OR REPLACE TEMP TABLE m11_objects AS SELECT DISTINCT contract_id FROM contracts WHERE origin = 'contract';
DELETE FROM contracts WHERE origin IN ('tender', 'ocds') AND contract_id IN (SELECT contract_id FROM m11_objects);
DELETE FROM contract_items
WHERE raw_key NOT LIKE '%:contract:%' AND contract_id IN (SELECT contract_id FROM m11_objects);
DELETE FROM contract_changes
WHERE raw_key NOT LIKE '%:contract:%' AND contract_id IN (SELECT contract_id FROM m11_objects);

DROP TABLE m11_moved;
DROP TABLE m11_objects;
