-- Bid statuses as OCDS codes (bidStatus: invited, pending, valid, disqualified, withdrawn), beside the
-- status as published, so the Cardinal rules read ProZorro-native tenders as well as OCDS ones.
-- New rows get it from the normalizers (monitor/normalize/prozorro.py explains the mapping and its
-- source, ProZorro's own OCDS publication); rows stored before this migration get the same mapping
-- here, from what the tables and the raw records hold.
ALTER TABLE bids ADD COLUMN status_ocds VARCHAR;

-- OCDS sources publish OCDS codes already.
UPDATE bids SET status_ocds = status
WHERE split_part(raw_key, ':', 2) <> 'tender';

-- ProZorro-native bids. bids.status is the lotValue's status, else the bid's. An unsuccessful award for
-- the bid and lot (and no active or pending one) is a disqualification.
UPDATE bids SET status_ocds = CASE
    WHEN contains(bids.status, 'invalid') THEN 'disqualified'
    WHEN bids.status = 'deleted' THEN 'withdrawn'
    WHEN EXISTS (SELECT 1 FROM awards a
                 WHERE a.raw_key = bids.raw_key AND a.bid_id = bids.bid_id AND a.status = 'unsuccessful'
                   AND (a.lot_id IS NULL OR bids.lot_id IS NULL OR a.lot_id = bids.lot_id))
         AND NOT EXISTS (SELECT 1 FROM awards a
                 WHERE a.raw_key = bids.raw_key AND a.bid_id = bids.bid_id AND a.status IN ('active', 'pending')
                   AND (a.lot_id IS NULL OR bids.lot_id IS NULL OR a.lot_id = bids.lot_id))
        THEN 'disqualified'
    WHEN bids.status IS NULL OR bids.status = 'active' THEN 'valid'
    ELSE 'pending' END
WHERE split_part(raw_key, ':', 2) = 'tender';

-- An "unsuccessful" native bid is a disqualification only with an unsuccessful pre-qualification
-- decision; those are not in the tables, so they are read from the stored raw tenders (only the few
-- that have such bids).
UPDATE bids SET status_ocds = 'disqualified'
FROM (
    SELECT raw_key, q.bidID AS bid_id, q.lotID AS lot_id
    FROM (SELECT r.source || ':' || r.kind || ':' || r.id AS raw_key,
                 unnest(from_json(coalesce(json_extract(r.json, '$.data.qualifications'),
                                           json_extract(r.json, '$.qualifications')),
                                  '[{"bidID": "VARCHAR", "lotID": "VARCHAR", "status": "VARCHAR"}]')) AS q
          FROM raw_records r
          WHERE r.kind = 'tender'
            AND r.source || ':' || r.kind || ':' || r.id IN (
                SELECT raw_key FROM bids WHERE status = 'unsuccessful' AND split_part(raw_key, ':', 2) = 'tender'))
    WHERE q.status = 'unsuccessful'
) rejected
WHERE bids.raw_key = rejected.raw_key AND bids.bid_id = rejected.bid_id AND bids.status = 'unsuccessful'
  AND status_ocds = 'pending'
  AND (rejected.lot_id IS NULL OR bids.lot_id IS NULL OR rejected.lot_id = bids.lot_id);

-- Awards of ProZorro-native tenders get their items' classification codes too (Cardinal R048 reads
-- them): the items of the award's lot, or every item when the tender has no lots.
UPDATE awards SET item_cpvs = (
    SELECT list(i.cpv ORDER BY i.rowid) FROM items i
    WHERE i.raw_key = awards.raw_key
      AND (awards.lot_id IS NULL OR i.lot_id = awards.lot_id
           OR NOT EXISTS (SELECT 1 FROM lots l WHERE l.raw_key = awards.raw_key)))
WHERE split_part(raw_key, ':', 2) = 'tender' AND item_cpvs IS NULL;
