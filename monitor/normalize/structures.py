"""DuckDB ``json_transform`` structures: the parts of each record shape that the model reads.

One parse per record turns the JSON text into typed STRUCTs; fields not listed are ignored and
fields of the wrong type become NULL (string amounts and dates without a timezone are caught
before this, by the validation in ``monitor.store.raw``, and quarantined).
"""

from __future__ import annotations

import json

_S = "VARCHAR"
_VALUE = {"amount": "DOUBLE", "currency": _S, "valueAddedTaxIncluded": "BOOLEAN"}
_PERIOD = {"startDate": _S, "endDate": _S}
_CLASSIFICATION = {"scheme": _S, "id": _S, "description": _S}
_ADDRESS = {"region": _S, "locality": _S, "postalCode": _S, "countryName": _S}
_ORGANIZATION = {
    "id": _S,
    "name": _S,
    "kind": _S,
    "identifier": {"scheme": _S, "id": _S, "legalName": _S},
    "address": _ADDRESS,
}
# Complaints (to the review body, type "complaint") and claims (to the buyer, type "claim") of a tender,
# an award, a qualification or a cancellation (the complaints table). OCDS releases read only their
# number: ProZorro's OCDS complaint extension uses the same names, but no OCDS source here carries one.
_COMPLAINTS = [
    {
        "id": _S,
        "complaintID": _S,
        "type": _S,
        "status": _S,
        "relatedLot": _S,
        "dateSubmitted": _S,
        "dateDecision": _S,
    }
]
# A bid's documents (one entry per version: a new version repeats the id with its own dates).
_DOCUMENTS = [{"id": _S, "title": _S, "datePublished": _S, "dateModified": _S}]
_ITEM = {
    "id": _S,
    "description": _S,
    "classification": _CLASSIFICATION,
    "additionalClassifications": [_CLASSIFICATION],
    "quantity": "DOUBLE",
    "unit": {"code": _S, "name": _S, "id": _S, "value": _VALUE},
    "relatedLot": _S,
    "deliveryAddress": {"region": _S},
}

PROZORRO_TENDER = {
    "id": _S,
    "_id": _S,
    "tenderID": _S,
    "title": _S,
    "description": _S,
    "status": _S,
    "mode": _S,
    "procurementMethod": _S,
    "procurementMethodType": _S,
    "mainProcurementCategory": _S,
    "value": _VALUE,
    "date": _S,
    "dateCreated": _S,
    "dateModified": _S,
    "noticePublicationDate": _S,
    "tenderPeriod": _PERIOD,
    "enquiryPeriod": _PERIOD,
    "awardPeriod": _PERIOD,
    "procuringEntity": _ORGANIZATION,
    "buyers": [_ORGANIZATION],
    "numberOfBids": "INTEGER",
    "cause": _S,
    "causeDetails": {"code": _S},
    "plans": [{"id": _S}],
    "funders": [{"identifier": {"scheme": _S, "id": _S}}],
    "lots": [{"id": _S, "title": _S, "status": _S, "value": _VALUE}],
    "items": [_ITEM],
    "bids": [
        {
            "id": _S,
            "status": _S,
            "date": _S,
            "tenderers": [_ORGANIZATION],
            "value": _VALUE,
            "lotValues": [{"relatedLot": _S, "status": _S, "value": _VALUE}],
            "documents": _DOCUMENTS,
            "financialDocuments": _DOCUMENTS,
            "eligibilityDocuments": _DOCUMENTS,
            "qualificationDocuments": _DOCUMENTS,
        }
    ],
    "awards": [
        {
            "id": _S,
            "bid_id": _S,
            "lotID": _S,
            "status": _S,
            "date": _S,
            "value": _VALUE,
            "suppliers": [_ORGANIZATION],
            "complaintPeriod": _PERIOD,
            "complaints": _COMPLAINTS,
        }
    ],
    "contracts": [
        {
            "id": _S,
            "awardID": _S,
            "contractID": _S,
            "status": _S,
            "title": _S,
            "date": _S,
            "dateSigned": _S,
            "period": _PERIOD,
            "value": _VALUE,
            "suppliers": [_ORGANIZATION],
        }
    ],
    "cancellations": [
        {"id": _S, "status": _S, "reasonType": _S, "cancellationOf": _S, "relatedLot": _S, "complaints": _COMPLAINTS}
    ],
    "complaints": _COMPLAINTS,
    # pre-qualification decisions (openEU, competitive dialogue, framework agreements): an unsuccessful
    # one is how a bid (or one lot of it) is disqualified before the auction; read for bids.status_ocds
    "qualifications": [{"id": _S, "bidID": _S, "lotID": _S, "status": _S, "complaints": _COMPLAINTS}],
}

PROZORRO_CONTRACT = {
    "id": _S,
    "_id": _S,
    "contractID": _S,
    "tender_id": _S,
    "awardID": _S,
    "status": _S,
    "title": _S,
    "mode": _S,
    "dateSigned": _S,
    "dateModified": _S,
    "period": _PERIOD,
    "value": _VALUE,
    "amountPaid": _VALUE,
    "buyer": _ORGANIZATION,
    "procuringEntity": _ORGANIZATION,
    "suppliers": [_ORGANIZATION],
    "items": [_ITEM],
    "changes": [
        {"id": _S, "status": _S, "rationale": _S, "rationaleTypes": [_S], "date": _S, "dateSigned": _S}
    ],
}

PROZORRO_PLAN = {
    "id": _S,
    "_id": _S,
    "planID": _S,
    "status": _S,
    "mode": _S,
    "datePublished": _S,
    "dateModified": _S,
    "procuringEntity": _ORGANIZATION,
    "buyers": [_ORGANIZATION],
    "budget": {
        "description": _S,
        "amount": "DOUBLE",
        "currency": _S,
        "year": "INTEGER",
        "period": _PERIOD,
        "breakdown": [
            {"title": _S, "description": _S, "value": _VALUE, "classification": _CLASSIFICATION}
        ],
    },
    "classification": _CLASSIFICATION,
    "additionalClassifications": [_CLASSIFICATION],
    "tender": {"procurementMethod": _S, "procurementMethodType": _S, "tenderPeriod": _PERIOD},
    "tender_id": _S,
    "items": [{"id": _S, "description": _S, "classification": _CLASSIFICATION}],
}

_OCDS_REFERENCE = {"id": _S, "name": _S}
OCDS_COMPILED_RELEASE = {
    "ocid": _S,
    "id": _S,
    "date": _S,
    "tag": [_S],
    "buyer": _OCDS_REFERENCE,
    "parties": [
        {
            "id": _S,
            "name": _S,
            "roles": [_S],
            "kind": _S,  # ProZorro's OCDS extension puts procuringEntity.kind here
            "identifier": {"scheme": _S, "id": _S, "legalName": _S},
            "address": _ADDRESS,
            "details": {"kind": _S},
        }
    ],
    "planning": {"budget": {"amount": _VALUE, "description": _S}},
    "tender": {
        "id": _S,
        "tenderID": _S,
        "title": _S,
        "description": _S,
        "status": _S,
        "procurementMethod": _S,
        "procurementMethodDetails": _S,
        "procurementMethodType": _S,
        "mainProcurementCategory": _S,
        "value": _VALUE,
        "datePublished": _S,
        "tenderPeriod": _PERIOD,
        "enquiryPeriod": _PERIOD,
        "awardPeriod": _PERIOD,
        "procuringEntity": _OCDS_REFERENCE,
        "numberOfTenderers": "INTEGER",
        "items": [_ITEM],
        "lots": [{"id": _S, "title": _S, "status": _S, "value": _VALUE}],
        "complaints": _COMPLAINTS,
        "cancellations": [{"status": _S, "reasonType": _S}],
    },
    "bids": {
        "details": [
            {
                "id": _S,
                "date": _S,
                "status": _S,
                "tenderers": [_OCDS_REFERENCE],
                "value": _VALUE,
                "relatedLots": [_S],
            }
        ]
    },
    "awards": [
        {
            "id": _S,
            "status": _S,
            "date": _S,
            "value": _VALUE,
            "suppliers": [_OCDS_REFERENCE],
            "relatedLots": [_S],
            "relatedBid": _S,
            "complaints": _COMPLAINTS,
            "items": [{"classification": {"id": _S}}],
        }
    ],
    "contracts": [
        {
            "id": _S,
            "awardID": _S,
            "contractID": _S,
            "status": _S,
            "title": _S,
            "dateSigned": _S,
            "period": _PERIOD,
            "value": _VALUE,
            "suppliers": [_OCDS_REFERENCE],  # OCDS 1.2 and some 1.1 publishers
            "items": [_ITEM],
            "amendments": [{"id": _S, "date": _S, "rationale": _S, "description": _S}],
            "implementation": {"transactions": [{"value": _VALUE, "amount": _VALUE}]},
        }
    ],
}


def as_sql_literal(structure: dict) -> str:
    """The structure as a SQL string literal for ``json_transform``."""
    return "'" + json.dumps(structure, ensure_ascii=False).replace("'", "''") + "'"
