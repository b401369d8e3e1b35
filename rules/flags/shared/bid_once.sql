-- One row per bid. The bids table has one row per lot a bid covers (a ProZorro bid on three lots
-- is three rows); this keeps the first row of each bid in published order. bid_key is the bid's id
-- (or the row's own number for a bid published without one), position its place in the process's
-- published order (for ties); the other columns are those of bids, without lot_id.
-- Join it to other tables on process_key (a number) rather than ocid (text): several times cheaper.
SELECT b.ocid, b.process_key, coalesce(b.bid_id, '#' || b.rowid) AS bid_key, b.rowid AS position, b.bid_id, b.status, b.status_ocds,
       b.date, b.tenderer_id, b.tenderer_ids, b.value_amount, b.value_currency
FROM bids b
WHERE b.rowid IN (SELECT min(rowid) FROM bids GROUP BY process_key, coalesce(bid_id, '#' || rowid))
