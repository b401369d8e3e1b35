-- Cardinal R024 and R058 (and their tenderer variants): one row per awarded process and bid currency
-- with the winning bid and the next-lowest bid of another tenderer. Awarded: every award final and
-- exactly one active award, to exactly one supplier (the winner). Bids (one row per bid, bid_once):
-- valid, by exactly one tenderer, with an amount. winning_bid is the winner's lowest bid,
-- second_lowest_bid the lowest bid of any other tenderer and second_lowest_tenderer the first of
-- those in published order; ratio = (second_lowest_bid - winning_bid) / winning_bid. Only processes
-- where both exist and the winner's bid is not the higher one.
WITH awarded AS (
    SELECT process_key, active_supplier_ids[1] AS winner
    FROM award_outcome
    WHERE all_final AND active_awards = 1 AND len(active_supplier_ids) = 1
),
valid AS (
    SELECT b.process_key, b.ocid, b.value_currency AS currency, b.tenderer_ids[1] AS tenderer, b.value_amount AS amount,
           b.position, a.winner
    FROM bid_once b JOIN awarded a USING (process_key)
    WHERE b.status_ocds = 'valid' AND len(b.tenderer_ids) = 1 AND b.value_amount IS NOT NULL
      AND b.value_currency IS NOT NULL
),
lows AS (
    SELECT process_key, any_value(ocid) AS ocid, currency, any_value(winner) AS winner,
           min(amount) FILTER (WHERE tenderer = winner) AS winning_bid,
           min(amount) FILTER (WHERE tenderer <> winner) AS second_lowest_bid
    FROM valid
    GROUP BY process_key, currency
    HAVING min(amount) FILTER (WHERE tenderer = winner) <= min(amount) FILTER (WHERE tenderer <> winner)
)
SELECT l.process_key, l.ocid, l.currency, l.winner, l.winning_bid, arg_min(v.tenderer, v.position) AS second_lowest_tenderer,
       l.second_lowest_bid, (l.second_lowest_bid - l.winning_bid) / l.winning_bid AS ratio
FROM lows l
JOIN valid v ON v.process_key = l.process_key AND v.currency = l.currency AND v.amount = l.second_lowest_bid AND v.tenderer <> l.winner
GROUP BY l.process_key, l.ocid, l.currency, l.winner, l.winning_bid, l.second_lowest_bid
