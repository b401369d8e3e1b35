-- The common OCDS-shaped model that rules, reports and exports read.
-- Every row carries raw_key (source:kind:id of the raw record it came from): re-normalizing a
-- record replaces exactly the rows it produced. Money is DOUBLE with its currency beside it.
-- Masked values of restricted ProZorro tenders are NULL here (is_masked says why).

CREATE TABLE processes (
    ocid                    VARCHAR NOT NULL,
    source                  VARCHAR NOT NULL,
    raw_key                 VARCHAR NOT NULL,
    tender_id               VARCHAR,       -- ProZorro object id (uuid) / OCDS tender.id
    tender_public_id        VARCHAR,       -- ProZorro tenderID, e.g. UA-2023-02-16-009364-a
    title                   VARCHAR,
    description             VARCHAR,
    status                  VARCHAR,       -- as published (ProZorro or OCDS codes)
    procurement_method      VARCHAR,       -- open | selective | limited | direct
    procurement_method_type VARCHAR,       -- ProZorro procurementMethodType / OCDS procurementMethodDetails
    main_category           VARCHAR,       -- goods | services | works
    value_amount            DOUBLE,
    value_currency          VARCHAR,
    value_vat_included      BOOLEAN,
    date_created            TIMESTAMPTZ,
    date_published          TIMESTAMPTZ,
    date_modified           TIMESTAMPTZ,
    tender_start            TIMESTAMPTZ,
    tender_end              TIMESTAMPTZ,
    enquiry_end             TIMESTAMPTZ,
    award_start             TIMESTAMPTZ,
    buyer_id                VARCHAR,       -- <scheme>-<id>, e.g. UA-EDR-44496574
    buyer_name              VARCHAR,
    buyer_kind              VARCHAR,       -- authority | central | defense | general | other | social | special
    procuring_entity_id     VARCHAR,
    procuring_entity_name   VARCHAR,
    region                  VARCHAR,       -- canonical ProZorro region name (ua_regions) when recognised
    region_raw              VARCHAR,       -- as written in the record
    locality                VARCHAR,
    number_of_tenderers     INTEGER,       -- as published (OCDS numberOfTenderers / ProZorro numberOfBids)
    bids_count              INTEGER,
    lots_count              INTEGER,
    items_count             INTEGER,
    awards_count            INTEGER,
    contracts_count         INTEGER,
    complaints_count        INTEGER,       -- tender, award, qualification and cancellation complaints
    cancellations_count     INTEGER,
    cancellation_reason_type VARCHAR,      -- of the active tender-level cancellation
    cause                   VARCHAR,       -- ground of a limited procedure (causeDetails.code or cause)
    plan_ids                VARCHAR[],
    funders                 VARCHAR[],     -- donor funders (identifier scheme-id)
    is_test                 BOOLEAN NOT NULL DEFAULT false,
    is_masked               BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE lots (
    ocid           VARCHAR NOT NULL,
    raw_key        VARCHAR NOT NULL,
    lot_id         VARCHAR NOT NULL,
    title          VARCHAR,
    status         VARCHAR,
    value_amount   DOUBLE,
    value_currency VARCHAR
);

CREATE TABLE items (
    ocid                  VARCHAR NOT NULL,
    raw_key               VARCHAR NOT NULL,
    item_id               VARCHAR,
    lot_id                VARCHAR,
    description           VARCHAR,
    classification_scheme VARCHAR,       -- ДК021 | CPV | ...
    cpv                   VARCHAR,       -- e.g. 85311000-2
    additional_classifications STRUCT(scheme VARCHAR, id VARCHAR, description VARCHAR)[],
    inn                   VARCHAR,       -- medicine INN from additionalClassifications
    atc                   VARCHAR,
    quantity              DOUBLE,
    unit_code             VARCHAR,
    unit_name             VARCHAR,
    unit_value_amount     DOUBLE,
    unit_value_currency   VARCHAR,
    delivery_region       VARCHAR
);

CREATE TABLE bids (
    ocid          VARCHAR NOT NULL,
    raw_key       VARCHAR NOT NULL,
    bid_id        VARCHAR,
    lot_id        VARCHAR,               -- one row per lot a bid covers (lotValues)
    status        VARCHAR,
    date          TIMESTAMPTZ,
    tenderer_id   VARCHAR,               -- first tenderer; all in tenderer_ids
    tenderer_ids  VARCHAR[],
    value_amount  DOUBLE,
    value_currency VARCHAR
);

CREATE TABLE awards (
    ocid           VARCHAR NOT NULL,
    raw_key        VARCHAR NOT NULL,
    award_id       VARCHAR,
    bid_id         VARCHAR,
    lot_id         VARCHAR,
    status         VARCHAR,
    date           TIMESTAMPTZ,
    value_amount   DOUBLE,
    value_currency VARCHAR,
    supplier_id    VARCHAR,
    supplier_name  VARCHAR,
    supplier_ids   VARCHAR[],
    complaints_count INTEGER
);

CREATE TABLE contracts (
    ocid               VARCHAR NOT NULL,
    raw_key            VARCHAR NOT NULL,
    origin             VARCHAR NOT NULL,  -- tender (slim in-tender copy) | contract (ProZorro contract object) | ocds
    contract_id        VARCHAR,
    contract_public_id VARCHAR,           -- ProZorro contractID, e.g. UA-2018-01-09-000706-a-a1
    award_id           VARCHAR,
    status             VARCHAR,
    title              VARCHAR,
    date_signed        TIMESTAMPTZ,
    period_start       TIMESTAMPTZ,
    period_end         TIMESTAMPTZ,
    value_amount       DOUBLE,
    value_currency     VARCHAR,
    amount_paid        DOUBLE,
    amount_paid_currency VARCHAR,
    buyer_id           VARCHAR,
    supplier_id        VARCHAR,
    supplier_name      VARCHAR,
    changes_count      INTEGER,
    date_modified      TIMESTAMPTZ
);

CREATE TABLE contract_items (
    ocid                VARCHAR NOT NULL,
    raw_key             VARCHAR NOT NULL,
    contract_id         VARCHAR,
    item_id             VARCHAR,
    description         VARCHAR,
    cpv                 VARCHAR,
    quantity            DOUBLE,
    unit_code           VARCHAR,
    unit_name           VARCHAR,
    unit_value_amount   DOUBLE,
    unit_value_currency VARCHAR
);

CREATE TABLE contract_changes (
    ocid            VARCHAR NOT NULL,
    raw_key         VARCHAR NOT NULL,
    contract_id     VARCHAR,
    change_id       VARCHAR,
    status          VARCHAR,
    date            TIMESTAMPTZ,
    date_signed     TIMESTAMPTZ,
    rationale       VARCHAR,
    rationale_types VARCHAR[]
);

CREATE TABLE plans (
    plan_id             VARCHAR NOT NULL,  -- ProZorro plan id (uuid) / OCDS ocid
    source              VARCHAR NOT NULL,
    raw_key             VARCHAR NOT NULL,
    plan_public_id      VARCHAR,           -- ProZorro planID, e.g. UA-P-2024-01-10-000001-a
    status              VARCHAR,
    title               VARCHAR,
    buyer_id            VARCHAR,
    buyer_name          VARCHAR,
    buyer_kind          VARCHAR,
    region              VARCHAR,
    region_raw          VARCHAR,
    budget_amount       DOUBLE,
    budget_currency     VARCHAR,
    budget_description  VARCHAR,
    budget_year         INTEGER,
    budget_period_start TIMESTAMPTZ,
    budget_period_end   TIMESTAMPTZ,
    budget_sources      VARCHAR[],         -- breakdown titles: state | local | own | fund | loan | crimea | other
    budget_breakdown    STRUCT(source VARCHAR, amount DOUBLE, currency VARCHAR, scheme VARCHAR, code VARCHAR, description VARCHAR)[],
    cpv                 VARCHAR,
    cpv_description     VARCHAR,
    kekv                VARCHAR[],         -- economic classification codes (КЕКВ)
    planned_method      VARCHAR,
    planned_method_type VARCHAR,
    planned_start       TIMESTAMPTZ,
    tender_id           VARCHAR,           -- ProZorro id of the tender made from this plan
    items_count         INTEGER,
    date_published      TIMESTAMPTZ,
    date_modified       TIMESTAMPTZ,
    is_test             BOOLEAN NOT NULL DEFAULT false
);

-- One row per organization id (<scheme>-<id>), latest name and address seen.
CREATE TABLE organizations (
    org_id      VARCHAR NOT NULL,
    scheme      VARCHAR,
    identifier  VARCHAR,
    name        VARCHAR,
    legal_name  VARCHAR,
    kind        VARCHAR,
    region      VARCHAR,
    region_raw  VARCHAR,
    locality    VARCHAR,
    seen_at     TIMESTAMPTZ               -- date of the newest record that named it
);
