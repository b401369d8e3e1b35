-- The reason a lot was cancelled: the reasonType of the active cancellation of that lot alone
-- (cancellationOf "lot", relatedLot = the lot). A multi-lot ProZorro tender is often cancelled lot by
-- lot, and processes.cancellation_reason_type keeps only a cancellation of the whole tender (its
-- meaning is unchanged: other rules and the exports read it), so a lot cancelled because fewer than
-- two bids were submitted (noOffer) carried no reason anywhere and the "no market" rule missed it.
-- New rows get it from the normalizer (monitor/normalize/prozorro.py); the cancelled lots stored
-- before get it here, from the raw records that own their rows. OCDS sources leave it empty.
ALTER TABLE lots ADD COLUMN IF NOT EXISTS cancellation_reason_type VARCHAR;

-- Only the native tenders with a cancelled lot are read; bare or in the API envelope {"data": ...}.
UPDATE lots SET cancellation_reason_type = list_filter(
        x.cancellations,
        lambda c: c.status = 'active' AND c.cancellationOf = 'lot' AND c.relatedLot = lots.lot_id)[1].reasonType
FROM (
    SELECT r.source || ':' || r.kind || ':' || r.id AS raw_key,
           json_transform(coalesce(r.json -> '$.data', r.json), '{
               "cancellations": [{"status": "VARCHAR", "reasonType": "VARCHAR",
                                  "cancellationOf": "VARCHAR", "relatedLot": "VARCHAR"}]
           }').cancellations AS cancellations
    FROM raw_records r
    WHERE r.kind = 'tender'
      AND r.source || ':' || r.kind || ':' || r.id IN (SELECT raw_key FROM lots WHERE status = 'cancelled')
) x
WHERE lots.raw_key = x.raw_key AND lots.status = 'cancelled' AND lots.cancellation_reason_type IS NULL;
