"""Map ProZorro native objects (tenders, contracts, plans) to the common model, in bulk SQL.

Reads the temp table ``norm_in`` (one row per changed raw record: raw_key, source, kind, ocid,
body = the object without its API envelope, restricted, date_modified) and inserts rows into the
common tables. ocid = ``ocds-be6bcu-`` + tenderID, as ProZorro's own OCDS publication does.
"""

from __future__ import annotations

import duckdb

from monitor.normalize.structures import (
    PROZORRO_CONTRACT,
    PROZORRO_PLAN,
    PROZORRO_TENDER,
    as_sql_literal,
)

# Bid statuses as OCDS codes (bids.status_ocds), so rules written for OCDS (Cardinal's) read native
# tenders too. The base mapping is ProZorro's own OCDS publication (the API's ?opt_schema=ocds view):
# ProzorroUKR/openprocurement.api, src/openprocurement/tender/core/procedure/schema/ocds.py,
# convert_bid(): a status containing "invalid" (invalid, invalid.pre-qualification) -> disqualified,
# active -> valid, deleted -> withdrawn, anything else (draft, pending, unsuccessful) -> pending;
# target codelist: the OCDS bids extension's bidStatus (invited, pending, valid, disqualified, withdrawn).
# Two additions, because ProZorro records a rejection on the award or the qualification, not on the bid:
# * a bid whose award for that lot (bid_id + lotID) is unsuccessful, with no active or pending award
#   for the same bid and lot, was rejected at qualification -> disqualified, though its bid status
#   stays "active" in the native data (and "valid" in ProZorro's OCDS);
# * an "unsuccessful" bid (or lotValue) with an unsuccessful pre-qualification decision
#   (qualifications[], bidID + lotID) was rejected at pre-qualification -> disqualified; an
#   "unsuccessful" bid without one was never judged (the lot or tender failed for too few bids, or a
#   rating cut-off) and stays pending, as in ProZorro's OCDS.
# The row's status is the lotValue's where the bid is active/pending/unsuccessful (one row per lot),
# the bid's otherwise (invalid, deleted, draft win over any lotValue); a bid without a status counts as
# active, as openprocurement.api reads it (bid.get("status", "active")).
# Migration 0006 applies the same mapping to rows stored before the column existed.
_BID_STATUS_OCDS = """
CREATE OR REPLACE TEMP MACRO pz_bid_row_status(bid_status, lot_status) AS
    CASE WHEN bid_status IS NULL OR bid_status IN ('active', 'pending', 'unsuccessful')
         THEN coalesce(lot_status, bid_status) ELSE bid_status END;
CREATE OR REPLACE TEMP MACRO pz_bid_status_ocds(status, award_rejected, prequalification_rejected) AS
    CASE WHEN contains(status, 'invalid') THEN 'disqualified'
         WHEN status = 'deleted' THEN 'withdrawn'
         WHEN award_rejected THEN 'disqualified'
         WHEN status = 'unsuccessful' AND prequalification_rejected THEN 'disqualified'
         WHEN status IS NULL OR status = 'active' THEN 'valid'
         ELSE 'pending' END;
"""

# "masked": config.restricted, or the masker's placeholder seen in the text (older dumps lack config).
_TENDERS = _BID_STATUS_OCDS + f"""
CREATE OR REPLACE TEMP TABLE pz_tender AS
SELECT raw_key, source, ocid, process_key, date_modified AS record_date,
       (coalesce(restricted, false) OR contains(body, '"Приховано"')) AS masked,
       json_transform(body, {as_sql_literal(PROZORRO_TENDER)}) AS t
FROM norm_in LEFT JOIN norm_keys USING (ocid) WHERE kind = 'tender';

CREATE OR REPLACE TEMP TABLE pz_tender_buyer AS
SELECT raw_key, coalesce(t.buyers[1], t.procuringEntity) AS b FROM pz_tender;

INSERT INTO processes BY NAME
SELECT x.ocid, x.process_key, x.source, x.raw_key,
       coalesce(t.id, t._id) AS tender_id,
       t.tenderID AS tender_public_id,
       pm_str(t.title) AS title,
       pm_str(t.description) AS description,
       t.status, t.procurementMethod AS procurement_method,
       t.procurementMethodType AS procurement_method_type,
       t.mainProcurementCategory AS main_category,
       pm_money(t.value.amount, masked) AS value_amount,
       t.value.currency AS value_currency,
       t.value.valueAddedTaxIncluded AS value_vat_included,
       pm_ts(t.dateCreated) AS date_created,
       coalesce(pm_ts(t.noticePublicationDate), pm_ts(t.tenderPeriod.startDate), pm_ts(t.dateCreated)) AS date_published,
       pm_ts(t.dateModified) AS date_modified,
       pm_ts(t.tenderPeriod.startDate) AS tender_start,
       pm_ts(t.tenderPeriod.endDate) AS tender_end,
       pm_ts(t.enquiryPeriod.endDate) AS enquiry_end,
       pm_ts(t.awardPeriod.startDate) AS award_start,
       pm_org_id(pb.b.identifier.scheme, pb.b.identifier.id) AS buyer_id,
       pm_str(pb.b.name) AS buyer_name,
       coalesce(pb.b.kind, t.procuringEntity.kind) AS buyer_kind,
       pm_org_id(t.procuringEntity.identifier.scheme, t.procuringEntity.identifier.id) AS procuring_entity_id,
       pm_str(t.procuringEntity.name) AS procuring_entity_name,
       ra.region,
       pm_str(pb.b.address.region) AS region_raw,
       pm_str(pb.b.address.locality) AS locality,
       coalesce(pm_money(t.numberOfBids, masked),
                CASE WHEN len(t.bids) > 0 AND NOT masked THEN len(list_distinct(flatten(list_transform(t.bids,
                     lambda bid: list_transform(bid.tenderers, lambda o: pm_org_id(o.identifier.scheme, o.identifier.id)))))) END
       ) AS number_of_tenderers,
       len(t.bids) AS bids_count,
       len(t.lots) AS lots_count,
       len(t.items) AS items_count,
       len(t.awards) AS awards_count,
       len(t.contracts) AS contracts_count,
       coalesce(len(t.complaints), 0)
         + coalesce(list_sum(list_transform(t.awards, lambda a: coalesce(len(a.complaints), 0))), 0)
         + coalesce(list_sum(list_transform(t.qualifications, lambda q: coalesce(len(q.complaints), 0))), 0)
         + coalesce(list_sum(list_transform(t.cancellations, lambda c: coalesce(len(c.complaints), 0))), 0)
         AS complaints_count,
       coalesce(len(t.cancellations), 0) AS cancellations_count,
       list_filter(t.cancellations, lambda c: c.status = 'active' AND coalesce(c.cancellationOf, 'tender') = 'tender')[1].reasonType
         AS cancellation_reason_type,
       coalesce(t.causeDetails.code, t.cause) AS cause,
       list_transform(t.plans, lambda p: p.id) AS plan_ids,
       list_transform(t.funders, lambda f: pm_org_id(f.identifier.scheme, f.identifier.id)) AS funders,
       (coalesce(t.mode, '') = 'test' OR starts_with(coalesce(t.title, ''), '[ТЕСТУВАННЯ]')) AS is_test,
       masked AS is_masked
FROM pz_tender x
JOIN pz_tender_buyer pb USING (raw_key)
LEFT JOIN pm_region_alias ra ON ra.alias_key = pm_region_key(pb.b.address.region);

-- A lot's cancellation_reason_type is the reasonType of the active cancellation of that lot alone
-- (cancellationOf "lot", relatedLot = the lot): a multi-lot tender is often cancelled lot by lot, and
-- then processes.cancellation_reason_type (tender-level cancellations only) stays empty. Migration 0015
-- fills it for tenders stored before.
INSERT INTO lots BY NAME
SELECT ocid, process_key, raw_key, l.id AS lot_id, pm_str(l.title) AS title, l.status,
       pm_money(l.value.amount, masked) AS value_amount, l.value.currency AS value_currency,
       list_filter(cancellations, lambda c: c.status = 'active' AND c.cancellationOf = 'lot'
                                            AND c.relatedLot = l.id)[1].reasonType AS cancellation_reason_type
FROM (SELECT ocid, process_key, raw_key, masked, t.cancellations AS cancellations, unnest(t.lots) AS l FROM pz_tender)
WHERE l.id IS NOT NULL;

INSERT INTO items BY NAME
SELECT ocid, process_key, raw_key, i.id AS item_id, i.relatedLot AS lot_id, pm_str(i.description) AS description,
       i.classification.scheme AS classification_scheme, i.classification.id AS cpv,
       i.additionalClassifications AS additional_classifications,
       list_filter(i.additionalClassifications, lambda c: c.scheme = 'INN')[1].description AS inn,
       list_filter(i.additionalClassifications, lambda c: c.scheme = 'ATC')[1].id AS atc,
       pm_money(i.quantity, masked) AS quantity, i.unit.code AS unit_code, i.unit.name AS unit_name,
       pm_money(i.unit.value.amount, masked) AS unit_value_amount, i.unit.value.currency AS unit_value_currency,
       -- the canonical name where the spelling is known ("Сумська обл." is Сумська область), else as published
       coalesce(ra.region, pm_str(i.deliveryAddress.region)) AS delivery_region
FROM (SELECT ocid, process_key, raw_key, masked, unnest(t.items) AS i FROM pz_tender)
LEFT JOIN pm_region_alias ra ON ra.alias_key = pm_region_key(i.deliveryAddress.region);

INSERT INTO bids BY NAME
SELECT ocid, process_key, raw_key, b.id AS bid_id, lv.relatedLot AS lot_id, coalesce(lv.status, b.status) AS status,
       pz_bid_status_ocds(
           pz_bid_row_status(b.status, lv.status),
           coalesce(len(list_filter(awards, lambda a: a.bid_id = b.id AND a.status = 'unsuccessful'
                        AND (a.lotID IS NULL OR lv.relatedLot IS NULL OR a.lotID = lv.relatedLot))) > 0, false)
             AND coalesce(len(list_filter(awards, lambda a: a.bid_id = b.id AND a.status IN ('active', 'pending')
                        AND (a.lotID IS NULL OR lv.relatedLot IS NULL OR a.lotID = lv.relatedLot))) = 0, true),
           coalesce(len(list_filter(qualifications, lambda q: q.bidID = b.id AND q.status = 'unsuccessful'
                        AND (q.lotID IS NULL OR lv.relatedLot IS NULL OR q.lotID = lv.relatedLot))) > 0, false)
       ) AS status_ocds,
       pm_ts(b.date) AS date,
       list_filter(list_transform(b.tenderers, lambda o: pm_org_id(o.identifier.scheme, o.identifier.id)), lambda x: x IS NOT NULL) AS tenderer_ids,
       tenderer_ids[1] AS tenderer_id,
       pm_money(coalesce(lv.value.amount, b.value.amount), masked) AS value_amount,
       coalesce(lv.value.currency, b.value.currency) AS value_currency
FROM (
    SELECT ocid, process_key, raw_key, masked, awards, qualifications, b,
           unnest(CASE WHEN len(b.lotValues) > 0 THEN b.lotValues ELSE [NULL] END) AS lv
    FROM (SELECT ocid, process_key, raw_key, masked, t.awards AS awards, t.qualifications AS qualifications,
                 unnest(t.bids) AS b FROM pz_tender)
);

INSERT INTO awards BY NAME
SELECT ocid, process_key, raw_key, a.id AS award_id, a.bid_id, a.lotID AS lot_id, a.status, pm_ts(a.date) AS date,
       pm_money(a.value.amount, masked) AS value_amount, a.value.currency AS value_currency,
       list_filter(list_transform(a.suppliers, lambda o: pm_org_id(o.identifier.scheme, o.identifier.id)), lambda x: x IS NOT NULL) AS supplier_ids,
       supplier_ids[1] AS supplier_id,
       pm_str(a.suppliers[1].name) AS supplier_name,
       coalesce(len(a.complaints), 0) AS complaints_count,
       pm_ts(a.complaintPeriod.endDate) AS complaint_period_end,
       -- the award's items, as ProZorro's OCDS publication gives them (schema/ocds.py convert_awards):
       -- the items of the award's lot, or every item when the tender has no lots
       list_transform(list_filter(items, lambda i: lots_count = 0 OR a.lotID IS NULL OR i.relatedLot = a.lotID),
                      lambda i: i.classification.id) AS item_cpvs
FROM (SELECT ocid, process_key, raw_key, masked, t.items AS items, coalesce(len(t.lots), 0) AS lots_count,
             unnest(t.awards) AS a FROM pz_tender);

-- Complaints (to the review body, type "complaint") and claims (to the buyer, type "claim"), one row
-- each, with what they are about: the tender (parent_id NULL), an award, a pre-qualification decision
-- or a cancellation. lot_id is the complaint's relatedLot, else the lot of the award, qualification
-- or cancellation it was lodged against. Migration 0007 fills the same rows for tenders stored before it.
INSERT INTO complaints BY NAME
SELECT ocid, process_key, raw_key, c.id AS complaint_id, c.complaintID AS complaint_public_id, parent_type, parent_id,
       coalesce(c.relatedLot, parent_lot_id) AS lot_id, c.type, c.status,
       pm_ts(c.dateSubmitted) AS date_submitted, pm_ts(c.dateDecision) AS date_decision
FROM (
    SELECT ocid, process_key, raw_key, 'tender' AS parent_type, NULL::VARCHAR AS parent_id, NULL::VARCHAR AS parent_lot_id,
           unnest(t.complaints) AS c
    FROM pz_tender
    UNION ALL
    SELECT ocid, process_key, raw_key, 'award', a.id, a.lotID, unnest(a.complaints)
    FROM (SELECT ocid, process_key, raw_key, unnest(t.awards) AS a FROM pz_tender)
    UNION ALL
    SELECT ocid, process_key, raw_key, 'qualification', q.id, q.lotID, unnest(q.complaints)
    FROM (SELECT ocid, process_key, raw_key, unnest(t.qualifications) AS q FROM pz_tender)
    UNION ALL
    SELECT ocid, process_key, raw_key, 'cancellation', k.id, k.relatedLot, unnest(k.complaints)
    FROM (SELECT ocid, process_key, raw_key, unnest(t.cancellations) AS k FROM pz_tender)
);

-- The documents of each bid, one row per document version (a new version repeats the id), from its
-- four containers. The public API lists bids, and so their documents, once bidding has closed;
-- confidential documents are listed too (title and dates, the file itself is restricted).
INSERT INTO bid_documents BY NAME
SELECT ocid, process_key, raw_key, bid_id, container, d.id AS document_id, pm_str(d.title) AS title,
       pm_ts(d.datePublished) AS date_published, pm_ts(d.dateModified) AS date_modified
FROM (
    SELECT ocid, process_key, raw_key, bid_id, x.container, unnest(x.docs) AS d
    FROM (
        SELECT ocid, process_key, raw_key, b.id AS bid_id,
               unnest([{{'container': 'documents', 'docs': b.documents}},
                       {{'container': 'financialDocuments', 'docs': b.financialDocuments}},
                       {{'container': 'eligibilityDocuments', 'docs': b.eligibilityDocuments}},
                       {{'container': 'qualificationDocuments', 'docs': b.qualificationDocuments}}]) AS x
        FROM (SELECT ocid, process_key, raw_key, unnest(t.bids) AS b FROM pz_tender)
    )
);

-- In-tender contracts are slim copies; a contract object from the contracts feed wins over them.
INSERT INTO contracts BY NAME
SELECT x.ocid, x.process_key, x.raw_key, 'tender' AS origin, c.id AS contract_id, c.contractID AS contract_public_id,
       c.awardID AS award_id, c.status, pm_str(c.title) AS title, pm_ts(c.dateSigned) AS date_signed,
       pm_ts(c.period.startDate) AS period_start, pm_ts(c.period.endDate) AS period_end,
       pm_money(c.value.amount, masked) AS value_amount, c.value.currency AS value_currency,
       pr.buyer_id,
       coalesce(pm_org_id(c.suppliers[1].identifier.scheme, c.suppliers[1].identifier.id), aw.supplier_id) AS supplier_id,
       coalesce(pm_str(c.suppliers[1].name), aw.supplier_name) AS supplier_name,
       NULL AS changes_count, x.record_date AS date_modified
FROM (SELECT ocid, process_key, raw_key, masked, record_date, unnest(t.contracts) AS c FROM pz_tender) x
JOIN processes pr ON pr.raw_key = x.raw_key
LEFT JOIN awards aw ON aw.raw_key = x.raw_key AND aw.award_id = x.c.awardID
WHERE NOT pm_has_contract_object(x.c.id);
"""

_TENDER_ORGANIZATIONS = """
SELECT o.identifier.scheme AS scheme, o.identifier.id AS identifier, o.name, o.identifier.legalName AS legal_name,
       o.kind, o.address.region AS region_raw, o.address.locality AS locality, record_date AS seen_at
FROM (
    SELECT record_date, unnest(list_concat([t.procuringEntity], t.buyers)) AS o FROM pz_tender
    UNION ALL
    SELECT record_date, unnest(flatten(list_transform(t.bids, lambda b: b.tenderers))) FROM pz_tender
    UNION ALL
    SELECT record_date, unnest(flatten(list_transform(t.awards, lambda a: a.suppliers))) FROM pz_tender
    UNION ALL
    SELECT record_date, unnest(flatten(list_transform(t.contracts, lambda c: c.suppliers))) FROM pz_tender
)
"""

_CONTRACTS = f"""
CREATE OR REPLACE TEMP TABLE pz_contract AS
SELECT raw_key, source, ocid, process_key, date_modified AS record_date,
       (coalesce(restricted, false) OR contains(body, '"Приховано"')) AS masked,
       json_transform(body, {as_sql_literal(PROZORRO_CONTRACT)}) AS t
FROM norm_in LEFT JOIN norm_keys USING (ocid) WHERE kind = 'contract';

-- The copies of these contracts in their tender (slim) or in an OCDS release of their process.
DELETE FROM contracts
WHERE origin IN ('tender', 'ocds') AND contract_id IN (SELECT coalesce(t.id, t._id) FROM pz_contract);
DELETE FROM contract_items
WHERE raw_key NOT LIKE '%:contract:%' AND contract_id IN (SELECT coalesce(t.id, t._id) FROM pz_contract);
DELETE FROM contract_changes
WHERE raw_key NOT LIKE '%:contract:%' AND contract_id IN (SELECT coalesce(t.id, t._id) FROM pz_contract);

INSERT INTO contracts BY NAME
SELECT ocid, process_key, raw_key, 'contract' AS origin, coalesce(t.id, t._id) AS contract_id,
       t.contractID AS contract_public_id, t.awardID AS award_id, t.status, pm_str(t.title) AS title,
       pm_ts(t.dateSigned) AS date_signed, pm_ts(t.period.startDate) AS period_start,
       pm_ts(t.period.endDate) AS period_end,
       pm_money(t.value.amount, masked) AS value_amount, t.value.currency AS value_currency,
       pm_money(t.amountPaid.amount, masked) AS amount_paid, t.amountPaid.currency AS amount_paid_currency,
       pm_org_id(coalesce(t.buyer, t.procuringEntity).identifier.scheme,
                 coalesce(t.buyer, t.procuringEntity).identifier.id) AS buyer_id,
       pm_org_id(t.suppliers[1].identifier.scheme, t.suppliers[1].identifier.id) AS supplier_id,
       pm_str(t.suppliers[1].name) AS supplier_name,
       coalesce(len(t.changes), 0) AS changes_count,
       pm_ts(t.dateModified) AS date_modified
FROM pz_contract;

INSERT INTO contract_items BY NAME
SELECT ocid, process_key, raw_key, contract_id, i.id AS item_id, pm_str(i.description) AS description, i.classification.id AS cpv,
       pm_money(i.quantity, masked) AS quantity, i.unit.code AS unit_code, i.unit.name AS unit_name,
       pm_money(i.unit.value.amount, masked) AS unit_value_amount, i.unit.value.currency AS unit_value_currency
FROM (SELECT ocid, process_key, raw_key, masked, coalesce(t.id, t._id) AS contract_id, unnest(t.items) AS i FROM pz_contract);

INSERT INTO contract_changes BY NAME
SELECT ocid, process_key, raw_key, contract_id, ch.id AS change_id, ch.status, pm_ts(ch.date) AS date,
       pm_ts(ch.dateSigned) AS date_signed, pm_str(ch.rationale) AS rationale, ch.rationaleTypes AS rationale_types
FROM (SELECT ocid, process_key, raw_key, coalesce(t.id, t._id) AS contract_id, unnest(t.changes) AS ch FROM pz_contract);
"""

_CONTRACT_ORGANIZATIONS = """
SELECT o.identifier.scheme AS scheme, o.identifier.id AS identifier, o.name, o.identifier.legalName AS legal_name,
       o.kind, o.address.region AS region_raw, o.address.locality AS locality, record_date AS seen_at
FROM (
    SELECT record_date, unnest(list_concat([coalesce(t.buyer, t.procuringEntity)], t.suppliers)) AS o FROM pz_contract
)
"""

_PLANS = f"""
CREATE OR REPLACE TEMP TABLE pz_plan AS
SELECT raw_key, source, id AS plan_id, date_modified AS record_date,
       json_transform(body, {as_sql_literal(PROZORRO_PLAN)}) AS t
FROM norm_in WHERE kind = 'plan';

INSERT INTO plans BY NAME
SELECT x.plan_id, x.source, x.raw_key, t.planID AS plan_public_id, t.status,
       pm_str(t.budget.description) AS title,
       pm_org_id(b.identifier.scheme, b.identifier.id) AS buyer_id, pm_str(b.name) AS buyer_name, b.kind AS buyer_kind,
       ra.region, pm_str(b.address.region) AS region_raw,
       t.budget.amount AS budget_amount, t.budget.currency AS budget_currency,
       pm_str(t.budget.description) AS budget_description,
       -- the budget year as written (Kyiv local date), not the UTC instant's year
       coalesce(t.budget.year, TRY_CAST(left(t.budget.period.startDate, 4) AS INTEGER)) AS budget_year,
       pm_ts(t.budget.period.startDate) AS budget_period_start, pm_ts(t.budget.period.endDate) AS budget_period_end,
       list_distinct(list_transform(t.budget.breakdown, lambda d: d.title)) AS budget_sources,
       list_transform(t.budget.breakdown, lambda d: {{'source': d.title, 'amount': d.value.amount, 'currency': d.value.currency,
           'scheme': d.classification.scheme, 'code': d.classification.id, 'description': d.classification.description}})
           AS budget_breakdown,
       t.classification.id AS cpv, t.classification.description AS cpv_description,
       list_transform(list_filter(t.additionalClassifications, lambda c: c.scheme IN ('КЕКВ', 'KEKV')), lambda c: c.id) AS kekv,
       t.tender.procurementMethod AS planned_method, t.tender.procurementMethodType AS planned_method_type,
       pm_ts(t.tender.tenderPeriod.startDate) AS planned_start,
       t.tender_id, len(t.items) AS items_count,
       list_transform(t.items, lambda i: pm_str(i.description)) AS item_descriptions,
       list_transform(t.items, lambda i: i.classification.id) AS item_cpvs,
       pm_ts(t.datePublished) AS date_published, pm_ts(t.dateModified) AS date_modified,
       coalesce(t.mode, '') = 'test' AS is_test
FROM (SELECT *, coalesce(t.buyers[1], t.procuringEntity) AS b FROM pz_plan) x
LEFT JOIN pm_region_alias ra ON ra.alias_key = pm_region_key(b.address.region);
"""

_PLAN_ORGANIZATIONS = """
SELECT o.identifier.scheme AS scheme, o.identifier.id AS identifier, o.name, o.identifier.legalName AS legal_name,
       o.kind, o.address.region AS region_raw, o.address.locality AS locality, record_date AS seen_at
FROM (SELECT record_date, unnest(list_concat([t.procuringEntity], t.buyers)) AS o FROM pz_plan)
"""


def normalize_prozorro(con: duckdb.DuckDBPyConnection, kinds: set[str]) -> list[str]:
    """Insert the common-model rows of the ProZorro records in ``norm_in``.

    Returns SELECTs of the organizations those records name, for the caller to upsert.
    """
    organization_queries = []
    if "tender" in kinds:
        con.execute(_TENDERS)
        organization_queries.append(_TENDER_ORGANIZATIONS)
    if "contract" in kinds:
        con.execute(_CONTRACTS)
        organization_queries.append(_CONTRACT_ORGANIZATIONS)
    if "plan" in kinds:
        con.execute(_PLANS)
        organization_queries.append(_PLAN_ORGANIZATIONS)
    return organization_queries
