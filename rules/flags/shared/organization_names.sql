-- One row per organization id (org_id, as buyers, procuring entities and tenderers are named in the
-- flags): the name it was last seen under (the newest seen_at; on the same date, the alphabetically
-- first name), so a renamed organization shows its newest name, the same on every run.
SELECT org_id, first(name ORDER BY seen_at DESC NULLS LAST, name) AS name
FROM organizations
GROUP BY org_id
