-- Complaints, the end of each award's complaint period, and the documents of each bid: what ProZorro's
-- risk indicators sas24-3-1 (a review-body decision not carried out within 30 days) and sas24-3-10 (a
-- winner that published no documents within 4 days of its award) read, and what the model only
-- counted until now (processes.complaints_count, awards.complaints_count).
-- New rows come from the normalizer (monitor/normalize/prozorro.py); tenders stored before this
-- migration get the same rows here, from the raw records that own their process rows. Only
-- ProZorro-native tenders have them: OCDS sources leave the tables empty.

-- One row per complaint (to the review body, the AMCU: type "complaint") or claim (to the buyer: type
-- "claim"), as published in tender.complaints, awards[].complaints, qualifications[].complaints and
-- cancellations[].complaints.
CREATE TABLE complaints (
    ocid                VARCHAR NOT NULL,
    raw_key             VARCHAR NOT NULL,
    complaint_id        VARCHAR,          -- the complaint object's id (uuid)
    complaint_public_id VARCHAR,          -- complaintID, e.g. UA-2025-05-14-002291-a.a1
    parent_type         VARCHAR,          -- tender | award | qualification | cancellation
    parent_id           VARCHAR,          -- id of the award, qualification or cancellation; NULL for the tender
    lot_id              VARCHAR,          -- relatedLot, else the lot of the award, qualification or cancellation
    type                VARCHAR,          -- complaint | claim
    status              VARCHAR,          -- as published: draft, claim, answered, pending, accepted, satisfied,
                                          -- resolved, declined, invalid, stopped, mistaken, cancelled...
    date_submitted      TIMESTAMPTZ,
    date_decision       TIMESTAMPTZ       -- the review body's decision (dateDecision); claims have none
);

-- The end of the period in which an award can be challenged (complaintPeriod.endDate).
ALTER TABLE awards ADD COLUMN complaint_period_end TIMESTAMPTZ;

-- One row per document of a bid, per version (a new version of a document repeats its id), from the
-- bid's four containers. The public API shows a tender's bids, with their documents, once bidding has
-- closed; confidential documents are listed with title and dates (the file is restricted).
CREATE TABLE bid_documents (
    ocid           VARCHAR NOT NULL,
    raw_key        VARCHAR NOT NULL,
    bid_id         VARCHAR,
    container      VARCHAR,               -- documents | financialDocuments | eligibilityDocuments | qualificationDocuments
    document_id    VARCHAR,
    title          VARCHAR,
    date_published TIMESTAMPTZ,
    date_modified  TIMESTAMPTZ
);

-- Backfill. The same value rules as the normalizer's macros pm_ts and pm_str (monitor/normalize/
-- common.py): the masker's placeholders and 1970 dates of restricted tenders are NULL, and so is a
-- text field that held a JSON array or object.
CREATE OR REPLACE TEMP MACRO m0007_ts(x) AS
    CASE WHEN x IS NULL OR starts_with(x, '1970-01-01') THEN NULL ELSE TRY_CAST(x AS TIMESTAMPTZ) END;
CREATE OR REPLACE TEMP MACRO m0007_str(x) AS
    CASE WHEN x IN ('Приховано', 'Hidden') THEN NULL
         WHEN (starts_with(x, '[') OR starts_with(x, '{')) AND json_valid(x) AND json(x) = x THEN NULL
         ELSE nullif(trim(x), '') END;

-- The stored native tenders that own process rows (a record superseded by a newer copy of its ocid
-- produced none), each read once; bare or in the API envelope {"data": ...}.
CREATE OR REPLACE TEMP TABLE m0007_tender AS
SELECT r.source || ':' || r.kind || ':' || r.id AS raw_key, p.ocid,
       json_transform(coalesce(r.json -> '$.data', r.json), '{
           "complaints": [{"id": "VARCHAR", "complaintID": "VARCHAR", "type": "VARCHAR", "status": "VARCHAR",
                           "relatedLot": "VARCHAR", "dateSubmitted": "VARCHAR", "dateDecision": "VARCHAR"}],
           "awards": [{"id": "VARCHAR", "lotID": "VARCHAR", "complaintPeriod": {"endDate": "VARCHAR"},
                       "complaints": [{"id": "VARCHAR", "complaintID": "VARCHAR", "type": "VARCHAR", "status": "VARCHAR",
                                       "relatedLot": "VARCHAR", "dateSubmitted": "VARCHAR", "dateDecision": "VARCHAR"}]}],
           "qualifications": [{"id": "VARCHAR", "lotID": "VARCHAR",
                               "complaints": [{"id": "VARCHAR", "complaintID": "VARCHAR", "type": "VARCHAR", "status": "VARCHAR",
                                               "relatedLot": "VARCHAR", "dateSubmitted": "VARCHAR", "dateDecision": "VARCHAR"}]}],
           "cancellations": [{"id": "VARCHAR", "relatedLot": "VARCHAR",
                              "complaints": [{"id": "VARCHAR", "complaintID": "VARCHAR", "type": "VARCHAR", "status": "VARCHAR",
                                              "relatedLot": "VARCHAR", "dateSubmitted": "VARCHAR", "dateDecision": "VARCHAR"}]}],
           "bids": [{"id": "VARCHAR",
                     "documents": [{"id": "VARCHAR", "title": "VARCHAR", "datePublished": "VARCHAR", "dateModified": "VARCHAR"}],
                     "financialDocuments": [{"id": "VARCHAR", "title": "VARCHAR", "datePublished": "VARCHAR", "dateModified": "VARCHAR"}],
                     "eligibilityDocuments": [{"id": "VARCHAR", "title": "VARCHAR", "datePublished": "VARCHAR", "dateModified": "VARCHAR"}],
                     "qualificationDocuments": [{"id": "VARCHAR", "title": "VARCHAR", "datePublished": "VARCHAR", "dateModified": "VARCHAR"}]}]
       }') AS t
FROM raw_records r
JOIN processes p ON p.raw_key = r.source || ':' || r.kind || ':' || r.id
WHERE r.kind = 'tender';

INSERT INTO complaints BY NAME
SELECT ocid, raw_key, c.id AS complaint_id, c.complaintID AS complaint_public_id, parent_type, parent_id,
       coalesce(c.relatedLot, parent_lot_id) AS lot_id, c.type, c.status,
       m0007_ts(c.dateSubmitted) AS date_submitted, m0007_ts(c.dateDecision) AS date_decision
FROM (
    SELECT ocid, raw_key, 'tender' AS parent_type, NULL::VARCHAR AS parent_id, NULL::VARCHAR AS parent_lot_id,
           unnest(t.complaints) AS c
    FROM m0007_tender
    UNION ALL
    SELECT ocid, raw_key, 'award', a.id, a.lotID, unnest(a.complaints)
    FROM (SELECT ocid, raw_key, unnest(t.awards) AS a FROM m0007_tender)
    UNION ALL
    SELECT ocid, raw_key, 'qualification', q.id, q.lotID, unnest(q.complaints)
    FROM (SELECT ocid, raw_key, unnest(t.qualifications) AS q FROM m0007_tender)
    UNION ALL
    SELECT ocid, raw_key, 'cancellation', k.id, k.relatedLot, unnest(k.complaints)
    FROM (SELECT ocid, raw_key, unnest(t.cancellations) AS k FROM m0007_tender)
);

UPDATE awards SET complaint_period_end = x.period_end
FROM (
    SELECT raw_key, a.id AS award_id, m0007_ts(a.complaintPeriod.endDate) AS period_end
    FROM (SELECT raw_key, unnest(t.awards) AS a FROM m0007_tender)
) x
WHERE awards.raw_key = x.raw_key AND awards.award_id = x.award_id AND x.period_end IS NOT NULL;

INSERT INTO bid_documents BY NAME
SELECT ocid, raw_key, bid_id, container, d.id AS document_id, m0007_str(d.title) AS title,
       m0007_ts(d.datePublished) AS date_published, m0007_ts(d.dateModified) AS date_modified
FROM (
    SELECT ocid, raw_key, bid_id, x.container, unnest(x.docs) AS d
    FROM (
        SELECT ocid, raw_key, b.id AS bid_id,
               unnest([{'container': 'documents', 'docs': b.documents},
                       {'container': 'financialDocuments', 'docs': b.financialDocuments},
                       {'container': 'eligibilityDocuments', 'docs': b.eligibilityDocuments},
                       {'container': 'qualificationDocuments', 'docs': b.qualificationDocuments}]) AS x
        FROM (SELECT ocid, raw_key, unnest(t.bids) AS b FROM m0007_tender)
    )
);

DROP TABLE m0007_tender;
DROP MACRO m0007_ts;
DROP MACRO m0007_str;
