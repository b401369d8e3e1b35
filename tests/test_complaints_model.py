"""Complaints, bid documents and award complaint periods in the common model (migration 0007).

What ProZorro's risk indicators sas24-3-1 and sas24-3-10 read: every complaint and claim of a native
tender (tender, award, pre-qualification and cancellation level) with its type, status and decision
date; every document of every bid with its publication date; the end of each award's complaint
period. Checked on the API documentation's own complaint objects attached to a real tender, on real
bids with documents (versions included) and on a restricted tender; a newer copy of a tender replaces
these rows like the others, an older one changes nothing; OCDS sources leave them empty.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from conftest import OCDS_RECORDS, PROZORRO, read_json, write_json
from monitor.cli import main

RULE_FIXTURES = Path(__file__).resolve().parent.parent / "rules" / "flags" / "fixtures"
ESCO = PROZORRO / "tender-esco-cancelled.json"  # 3 bids with documents in all four containers, qualifications
MASKED = PROZORRO / "tender-belowThreshold-complete-restricted-masked.json"
TENDER_COMPLAINTS = PROZORRO / "tender-complaints-list.json"  # GET /tenders/{id}/complaints: 9, every status
AWARD_COMPLAINTS = PROZORRO / "award-complaints-list.json"  # GET /tenders/{id}/awards/{id}/complaints: 9
SAS_3_1 = RULE_FIXTURES / "prozorro-sas24-3-1-decision-not-implemented.jsonl"


def _load(db: Path, *paths: Path) -> None:
    assert main(["--db", str(db), "load", *map(str, paths)]) == 0


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _esco_with_complaints() -> dict:
    """The esco tender with the documented complaint objects on each level that can have them."""
    document = read_json(ESCO)
    tender = document["data"]
    tender_complaints = read_json(TENDER_COMPLAINTS)["data"]
    award_complaints = read_json(AWARD_COMPLAINTS)["data"]
    tender["complaints"] = tender_complaints
    tender["awards"][0]["complaints"] = award_complaints
    declined = copy.deepcopy(next(c for c in tender_complaints if c["status"] == "declined"))
    declined["id"] = "9d3c1f0e5a8b4c2d9e7f6a5b4c3d2e1f"
    tender["qualifications"][2]["complaints"] = [declined]  # the unsuccessful pre-qualification decision
    stopped = copy.deepcopy(next(c for c in tender_complaints if c["status"] == "stopped"))
    stopped["id"] = "1f2e3d4c5b6a49788796a5b4c3d2e1f0"
    tender["cancellations"][0]["complaints"] = [stopped]
    return document


def test_complaints_of_every_level_with_type_status_and_decision(tmp_path):
    db = tmp_path / "m.duckdb"
    document = _esco_with_complaints()
    tender = document["data"]
    _load(db, write_json(tmp_path / "esco.json", document))

    ocid = f"ocds-be6bcu-{tender['tenderID']}"
    rows = _rows(db, "SELECT parent_type, parent_id, count(*), count(date_decision) FROM complaints "
                     "WHERE ocid = ? GROUP BY ALL ORDER BY ALL", [ocid])
    award, qualification, cancellation = tender["awards"][0], tender["qualifications"][2], tender["cancellations"][0]
    assert rows == [("award", award["id"], 9, 4), ("cancellation", cancellation["id"], 1, 1),
                    ("qualification", qualification["id"], 1, 1), ("tender", None, 9, 4)]
    # the model's complaint count and the rows agree
    assert _rows(db, "SELECT complaints_count FROM processes") == [(20,)]
    assert _rows(db, "SELECT complaints_count FROM awards WHERE award_id = ?", [award["id"]]) == [(9,)]

    by_id = {row[0]: row[1:] for row in _rows(
        db, "SELECT complaint_id, complaint_public_id, type, status, lot_id, date_submitted, date_decision "
            "FROM complaints")}
    satisfied = next(c for c in read_json(AWARD_COMPLAINTS)["data"] if c["status"] == "satisfied")
    assert by_id[satisfied["id"]] == ("UA-2027-01-01-000001-a.a2", "complaint", "satisfied", satisfied["relatedLot"],
                                      _at(satisfied["dateSubmitted"]), _at(satisfied["dateDecision"]))
    claim = next(c for c in read_json(TENDER_COMPLAINTS)["data"] if c["type"] == "claim" and c["status"] == "answered")
    assert by_id[claim["id"]][1:5] == ("claim", "answered", None, _at(claim["dateSubmitted"]))
    assert by_id[claim["id"]][5] is None  # claims are answered by the buyer, not decided by the AMCU
    # no relatedLot: the lot of the pre-qualification decision; a tender cancellation has none
    assert by_id["9d3c1f0e5a8b4c2d9e7f6a5b4c3d2e1f"][3] == qualification["lotID"]
    assert by_id["1f2e3d4c5b6a49788796a5b4c3d2e1f0"][2:4] == ("stopped", None)
    statuses = {s for (s,) in _rows(db, "SELECT DISTINCT status FROM complaints WHERE parent_type = 'tender'")}
    assert statuses == {"resolved", "declined", "answered", "stopped", "accepted", "invalid", "mistaken", "pending"}


def test_bid_documents_one_row_per_version_from_the_four_containers(tmp_path):
    db = tmp_path / "m.duckdb"
    _load(db, ESCO)
    bids = read_json(ESCO)["data"]["bids"]
    expected = sorted(
        (bid["id"], container, doc["id"], doc["title"], _at(doc["datePublished"]), _at(doc["dateModified"]))
        for bid in bids
        for container in ("documents", "financialDocuments", "eligibilityDocuments", "qualificationDocuments")
        for doc in bid.get(container, []))
    got = _rows(db, "SELECT bid_id, container, document_id, title, date_published, date_modified FROM bid_documents "
                    "ORDER BY ALL")
    assert got == expected and len(got) == 13
    assert _rows(db, "SELECT container, count(*) FROM bid_documents GROUP BY ALL ORDER BY ALL") == [
        ("documents", 8), ("eligibilityDocuments", 2), ("financialDocuments", 2), ("qualificationDocuments", 1)]
    # a new version repeats the document id, each with its own publication date
    assert _rows(db, "SELECT count(*), count(DISTINCT date_published) FROM bid_documents "
                     "WHERE document_id = '740fd0e0458a4bff98acf57d7ff39014'") == [(3, 3)]
    # the award's complaint period
    award = read_json(ESCO)["data"]["awards"][0]
    assert _rows(db, "SELECT award_id, complaint_period_end FROM awards") == [
        (award["id"], _at(award["complaintPeriod"]["endDate"]))]


def test_a_restricted_tender_keeps_document_dates_but_not_their_masked_titles(tmp_path):
    db = tmp_path / "m.duckdb"
    _load(db, MASKED)
    rows = _rows(db, "SELECT title, date_published FROM bid_documents ORDER BY date_published")
    assert len(rows) == 4 and {title for title, _ in rows} == {None}
    assert rows[0][1] == _at("2021-11-08T16:50:04.350010+02:00")


def test_a_newer_copy_replaces_complaints_and_documents_an_older_one_changes_nothing(tmp_path):
    db = tmp_path / "m.duckdb"
    first = json.loads(SAS_3_1.read_text(encoding="utf-8").splitlines()[0])
    _load(db, write_json(tmp_path / "v1.json", first))
    tender = first["data"]
    complaint_id = tender["awards"][0]["complaints"][0]["id"]
    assert _rows(db, "SELECT complaint_id, status FROM complaints") == [(complaint_id, "satisfied")]
    assert _rows(db, "SELECT count(*) FROM bid_documents") == [(5,)]

    # the buyer complies: the complaint is resolved, the award cancelled, the next bidder named and its
    # documents published; one of the first bidder's documents is replaced by a new version
    second = copy.deepcopy(first)
    newer = second["data"]
    newer["dateModified"] = newer["date"] = "2026-10-20T10:00:00+03:00"
    complaint = newer["awards"][0]["complaints"][0]
    complaint.update(status="resolved", tendererAction="Рішення про визначення переможця скасовано",
                     tendererActionDate="2026-10-15T12:00:00+03:00")
    newer["awards"][0]["status"] = "cancelled"
    runner_up = newer["bids"][1]
    newer["awards"].append({
        "id": "5d0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b", "bid_id": runner_up["id"], "status": "active",
        "date": "2026-10-16T09:00:00+03:00", "value": runner_up["value"], "suppliers": runner_up["tenderers"],
        "complaintPeriod": {"startDate": "2026-10-16T09:00:00+03:00", "endDate": "2026-10-26T00:00:00+02:00"}})
    runner_up["documents"].append({"id": "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5", "title": "Довідки переможця.pdf",
                                   "datePublished": "2026-10-17T11:00:00+03:00",
                                   "dateModified": "2026-10-17T11:00:00+03:00"})
    newer["bids"][0]["documents"] = newer["bids"][0]["documents"][:1]
    _load(db, write_json(tmp_path / "v2.json", second))

    assert _rows(db, "SELECT complaint_id, status, date_decision FROM complaints") == [
        (complaint_id, "resolved", _at(complaint["dateDecision"]))]
    assert _rows(db, "SELECT bid_id, count(*) FROM bid_documents GROUP BY ALL ORDER BY ALL") == sorted(
        [(tender["bids"][0]["id"], 1), (runner_up["id"], 3)])
    assert _rows(db, "SELECT status, complaint_period_end FROM awards ORDER BY date") == [
        ("cancelled", _at("2026-09-04T00:00:00+03:00")), ("active", _at("2026-10-26T00:00:00+02:00"))]

    # the first copy again is older than the stored one: nothing moves
    _load(db, tmp_path / "v1.json")
    assert _rows(db, "SELECT count(*), min(status) FROM complaints") == [(1, "resolved")]
    assert _rows(db, "SELECT count(*) FROM bid_documents") == [(4,)]


def test_ocds_records_leave_the_new_tables_empty(tmp_path):
    db = tmp_path / "m.duckdb"
    _load(db, OCDS_RECORDS)
    assert _rows(db, "SELECT count(*) FROM processes")[0][0] == 10
    assert _rows(db, "SELECT count(*) FROM complaints") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM bid_documents") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM awards WHERE complaint_period_end IS NOT NULL") == [(0,)]
