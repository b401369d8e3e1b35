-- One row per process with awards: whether every award is final (active, cancelled or unsuccessful:
-- nothing pending), how many are active, the supplier ids of an active award as published
-- (meaningful when exactly one is active) and the distinct suppliers of all active awards, sorted.
SELECT process_key, any_value(ocid) AS ocid,
       count(*) FILTER (WHERE status NOT IN ('active', 'cancelled', 'unsuccessful')) = 0 AS all_final,
       count(*) FILTER (WHERE status = 'active') AS active_awards,
       any_value(supplier_ids) FILTER (WHERE status = 'active') AS active_supplier_ids,
       list_sort(list_distinct(flatten(list(supplier_ids) FILTER (WHERE status = 'active')))) AS suppliers
FROM awards
GROUP BY process_key
