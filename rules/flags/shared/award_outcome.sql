-- One row per process with awards: whether every award is final (active, cancelled or unsuccessful:
-- nothing pending), how many are active, the supplier ids of an active award as published
-- (meaningful when exactly one is active) and the distinct suppliers of all active awards, sorted.
-- Most processes have one active award: their suppliers come from it; only processes with several
-- gather the lists of all (a list per group over every award cost most of this set).
WITH per_process AS (
    SELECT process_key, any_value(ocid) AS ocid,
           count(*) FILTER (WHERE status NOT IN ('active', 'cancelled', 'unsuccessful')) = 0 AS all_final,
           count(*) FILTER (WHERE status = 'active') AS active_awards,
           any_value(supplier_ids) FILTER (WHERE status = 'active') AS active_supplier_ids
    FROM awards
    GROUP BY process_key
),
several AS (
    SELECT process_key, list_sort(list_distinct(flatten(list(supplier_ids)))) AS suppliers
    FROM awards
    WHERE status = 'active' AND process_key IN (SELECT process_key FROM per_process WHERE active_awards > 1)
    GROUP BY process_key
)
SELECT p.process_key, p.ocid, p.all_final, p.active_awards, p.active_supplier_ids,
       -- an active award published without supplier ids: [], as the gathered lists of all would give
       CASE WHEN p.active_awards = 1 THEN coalesce(list_sort(list_distinct(p.active_supplier_ids)), [])
            ELSE s.suppliers END AS suppliers
FROM per_process p LEFT JOIN several s USING (process_key)
