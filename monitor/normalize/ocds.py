"""Map OCDS compiled releases to the common model, in bulk SQL.

Reads ``norm_in`` rows of kind compiled_release / record / release_set whose ``body`` is a
compiled release. Organization references (buyer, tenderers, suppliers) are resolved through
``parties``: an organization id is ``<identifier.scheme>-<identifier.id>`` when the party has an
identifier (``UA-EDR-12345678``), else the party id as published.
"""

from __future__ import annotations

import duckdb

from monitor.normalize.structures import OCDS_COMPILED_RELEASE, as_sql_literal

_OCDS = f"""
CREATE OR REPLACE TEMP MACRO oc_party(pmap, ref_id) AS list_filter(pmap, lambda e: e.k = ref_id)[1];
CREATE OR REPLACE TEMP MACRO oc_org(pmap, ref_id) AS coalesce(oc_party(pmap, ref_id).v, ref_id);

CREATE OR REPLACE TEMP TABLE oc_release AS
SELECT raw_key, source, ocid, process_key, date_modified AS record_date, t,
       list_transform(t.parties, lambda p: {{
           'k': p.id,
           'v': coalesce(pm_org_id(p.identifier.scheme, p.identifier.id), p.id),
           'name': p.name, 'region': p.address.region, 'locality': p.address.locality, 'kind': coalesce(p.details.kind, p.kind)
       }}) AS pmap,
       oc_party(pmap, coalesce(t.buyer.id, t.tender.procuringEntity.id)) AS buyer_party
FROM (
    SELECT *, json_transform(body, {as_sql_literal(OCDS_COMPILED_RELEASE)}) AS t
    FROM norm_in LEFT JOIN norm_keys USING (ocid) WHERE kind IN ('compiled_release', 'record', 'release_set')
);

INSERT INTO processes BY NAME
SELECT x.ocid, x.process_key, x.source, x.raw_key,
       t.tender.id AS tender_id,
       coalesce(t.tender.tenderID,
                CASE WHEN starts_with(x.ocid, 'ocds-be6bcu-') THEN substr(x.ocid, 13) END) AS tender_public_id,
       pm_str(t.tender.title) AS title, pm_str(t.tender.description) AS description,
       t.tender.status, t.tender.procurementMethod AS procurement_method,
       coalesce(t.tender.procurementMethodType, t.tender.procurementMethodDetails) AS procurement_method_type,
       t.tender.mainProcurementCategory AS main_category,
       t.tender.value.amount AS value_amount, t.tender.value.currency AS value_currency,
       t.tender.value.valueAddedTaxIncluded AS value_vat_included,
       NULL AS date_created,
       coalesce(pm_ts(t.tender.datePublished), pm_ts(t.tender.tenderPeriod.startDate)) AS date_published,
       pm_ts(t.date) AS date_modified,
       pm_ts(t.tender.tenderPeriod.startDate) AS tender_start, pm_ts(t.tender.tenderPeriod.endDate) AS tender_end,
       pm_ts(t.tender.enquiryPeriod.endDate) AS enquiry_end, pm_ts(t.tender.awardPeriod.startDate) AS award_start,
       coalesce(buyer_party.v, t.buyer.id, t.tender.procuringEntity.id) AS buyer_id,
       pm_str(coalesce(t.buyer.name, t.tender.procuringEntity.name, buyer_party.name)) AS buyer_name,
       buyer_party.kind AS buyer_kind,
       oc_org(pmap, t.tender.procuringEntity.id) AS procuring_entity_id,
       pm_str(t.tender.procuringEntity.name) AS procuring_entity_name,
       ra.region,
       pm_str(buyer_party.region) AS region_raw,
       pm_str(buyer_party.locality) AS locality,
       coalesce(t.tender.numberOfTenderers,
                CASE WHEN len(t.bids.details) > 0 THEN len(list_distinct(flatten(list_transform(t.bids.details,
                     lambda b: list_transform(b.tenderers, lambda o: oc_org(pmap, o.id)))))) END) AS number_of_tenderers,
       len(t.bids.details) AS bids_count, len(t.tender.lots) AS lots_count, len(t.tender.items) AS items_count,
       len(t.awards) AS awards_count, len(t.contracts) AS contracts_count,
       coalesce(len(t.tender.complaints), 0)
         + coalesce(list_sum(list_transform(t.awards, lambda a: coalesce(len(a.complaints), 0))), 0) AS complaints_count,
       coalesce(len(t.tender.cancellations), 0) AS cancellations_count,
       list_filter(t.tender.cancellations, lambda c: c.status = 'active')[1].reasonType AS cancellation_reason_type,
       NULL AS cause, NULL AS plan_ids, NULL AS funders,
       false AS is_test, false AS is_masked
FROM oc_release x
LEFT JOIN pm_region_alias ra ON ra.alias_key = pm_region_key(x.buyer_party.region);

INSERT INTO lots BY NAME
SELECT ocid, process_key, raw_key, l.id AS lot_id, pm_str(l.title) AS title, l.status,
       l.value.amount AS value_amount, l.value.currency AS value_currency
FROM (SELECT ocid, process_key, raw_key, unnest(t.tender.lots) AS l FROM oc_release)
WHERE l.id IS NOT NULL;

INSERT INTO items BY NAME
SELECT ocid, process_key, raw_key, i.id AS item_id, i.relatedLot AS lot_id, pm_str(i.description) AS description,
       i.classification.scheme AS classification_scheme, i.classification.id AS cpv,
       i.additionalClassifications AS additional_classifications,
       list_filter(i.additionalClassifications, lambda c: c.scheme = 'INN')[1].description AS inn,
       list_filter(i.additionalClassifications, lambda c: c.scheme = 'ATC')[1].id AS atc,
       i.quantity, coalesce(i.unit.code, i.unit.id) AS unit_code, i.unit.name AS unit_name,
       i.unit.value.amount AS unit_value_amount, i.unit.value.currency AS unit_value_currency,
       -- the canonical name where the spelling is known ("Сумська обл." is Сумська область), else as published
       coalesce(ra.region, pm_str(i.deliveryAddress.region)) AS delivery_region
FROM (SELECT ocid, process_key, raw_key, unnest(t.tender.items) AS i FROM oc_release)
LEFT JOIN pm_region_alias ra ON ra.alias_key = pm_region_key(i.deliveryAddress.region);

INSERT INTO bids BY NAME
SELECT ocid, process_key, raw_key, b.id AS bid_id, lot AS lot_id, b.status,
       b.status AS status_ocds,   -- already an OCDS code (bidStatus); prozorro.py maps native ones
       pm_ts(b.date) AS date,
       list_filter(list_transform(b.tenderers, lambda o: oc_org(pmap, o.id)), lambda v: v IS NOT NULL) AS tenderer_ids,
       tenderer_ids[1] AS tenderer_id,
       b.value.amount AS value_amount, b.value.currency AS value_currency
FROM (
    SELECT ocid, process_key, raw_key, pmap, b,
           unnest(CASE WHEN len(b.relatedLots) > 0 THEN b.relatedLots ELSE [NULL] END) AS lot
    FROM (SELECT ocid, process_key, raw_key, pmap, unnest(t.bids.details) AS b FROM oc_release)
);

INSERT INTO awards BY NAME
SELECT ocid, process_key, raw_key, a.id AS award_id, a.relatedBid AS bid_id, a.relatedLots[1] AS lot_id, a.status,
       pm_ts(a.date) AS date, a.value.amount AS value_amount, a.value.currency AS value_currency,
       list_filter(list_transform(a.suppliers, lambda o: oc_org(pmap, o.id)), lambda v: v IS NOT NULL) AS supplier_ids,
       supplier_ids[1] AS supplier_id,
       pm_str(coalesce(a.suppliers[1].name, oc_party(pmap, a.suppliers[1].id).name)) AS supplier_name,
       coalesce(len(a.complaints), 0) AS complaints_count,
       list_transform(a.items, lambda i: i.classification.id) AS item_cpvs
FROM (SELECT ocid, process_key, raw_key, pmap, unnest(t.awards) AS a FROM oc_release);

INSERT INTO contracts BY NAME
SELECT x.ocid, x.process_key, x.raw_key, 'ocds' AS origin, c.id AS contract_id, c.contractID AS contract_public_id,
       c.awardID AS award_id, c.status, pm_str(c.title) AS title, pm_ts(c.dateSigned) AS date_signed,
       pm_ts(c.period.startDate) AS period_start, pm_ts(c.period.endDate) AS period_end,
       c.value.amount AS value_amount, c.value.currency AS value_currency,
       list_sum(list_transform(c.implementation.transactions, lambda tr: coalesce(tr.value.amount, tr.amount.amount)))
           AS amount_paid,
       coalesce(c.implementation.transactions[1].value.currency, c.implementation.transactions[1].amount.currency)
           AS amount_paid_currency,
       pr.buyer_id,
       coalesce(oc_org(x.pmap, c.suppliers[1].id), aw.supplier_id) AS supplier_id,
       coalesce(pm_str(c.suppliers[1].name), aw.supplier_name) AS supplier_name,
       coalesce(len(c.amendments), 0) AS changes_count, x.record_date AS date_modified
FROM (SELECT ocid, process_key, raw_key, record_date, pmap, unnest(t.contracts) AS c FROM oc_release) x
JOIN processes pr ON pr.raw_key = x.raw_key
LEFT JOIN awards aw ON aw.raw_key = x.raw_key AND aw.award_id = x.c.awardID
WHERE NOT pm_has_contract_object(x.c.id);

INSERT INTO contract_items BY NAME
SELECT ocid, process_key, raw_key, contract_id, i.id AS item_id, pm_str(i.description) AS description, i.classification.id AS cpv,
       i.quantity, coalesce(i.unit.code, i.unit.id) AS unit_code, i.unit.name AS unit_name,
       i.unit.value.amount AS unit_value_amount, i.unit.value.currency AS unit_value_currency
FROM (SELECT ocid, process_key, raw_key, c.id AS contract_id, unnest(c.items) AS i
      FROM (SELECT ocid, process_key, raw_key, unnest(t.contracts) AS c FROM oc_release))
WHERE NOT pm_has_contract_object(contract_id);

INSERT INTO contract_changes BY NAME
-- an OCDS amendment records a change made to the contract: it is in force (ProZorro's 'active')
SELECT ocid, process_key, raw_key, contract_id, am.id AS change_id, 'active' AS status, pm_ts(am.date) AS date,
       NULL AS date_signed,
       pm_str(coalesce(am.rationale, am.description)) AS rationale, NULL AS rationale_types
FROM (SELECT ocid, process_key, raw_key, c.id AS contract_id, unnest(c.amendments) AS am
      FROM (SELECT ocid, process_key, raw_key, unnest(t.contracts) AS c FROM oc_release))
WHERE NOT pm_has_contract_object(contract_id);
"""

_OCDS_ORGANIZATIONS = """
SELECT CASE WHEN p.identifier.id IS NOT NULL THEN p.identifier.scheme END AS scheme,
       coalesce(p.identifier.id, p.id) AS identifier, p.name, p.identifier.legalName AS legal_name,
       coalesce(p.details.kind, p.kind) AS kind, p.address.region AS region_raw, p.address.locality AS locality, record_date AS seen_at
FROM (SELECT record_date, unnest(t.parties) AS p FROM oc_release)
"""


def normalize_ocds(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Insert the common-model rows of the compiled releases in ``norm_in``; return the org SELECT."""
    con.execute(_OCDS)
    return [_OCDS_ORGANIZATIONS]
