-- An item's delivery region is now stored under its canonical name where the spelling is known (the
-- normalizer's alias table, data/reference/regions.csv: "Сумська обл." is Сумська область), as a
-- process's region always was. Earlier versions kept the text as published, and the rules that count a
-- purchase for the region it is delivered to (coverage gap, donor-to-budget transition) credited such
-- purchases to the buyer's region instead. The items stored before get the canonical name here; the
-- alias table and key macro are the normalizer's (installed on the connection before this runs).
UPDATE items i SET delivery_region = ra.region
FROM pm_region_alias ra
WHERE ra.alias_key = pm_region_key(i.delivery_region) AND i.delivery_region IS DISTINCT FROM ra.region;
