"""The Cardinal rules on ProZorro-native tenders: bids.status_ocds and awards.item_cpvs.

The rules read bid statuses as OCDS codes. OCDS sources carry them; a native tender's bids are mapped
as ProZorro's own OCDS publication does (openprocurement.api schema/ocds.py convert_bid, see
monitor/normalize/prozorro.py), plus the rejections ProZorro records on awards and pre-qualification
decisions. Here: the mapping, status by status, on real records (tests/fixtures/prozorro*, some with
one field changed); native twins of the Cardinal R035/R036 examples flagged exactly as their OCDS
originals; the award items of native tenders; and migration 0006 filling stored rows the same way.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import duckdb
import pytest

from conftest import LIFT_REPAIR, PROZORRO, PROZORRO_REAL, body, mutated, read_json, write_json
from monitor.cli import main
from monitor.flags.engine import evaluate
from monitor.flags.rules import load_rules
from monitor.store.db import connect

RULE_DIR = Path(__file__).resolve().parent.parent / "rules" / "flags"
FIXTURES = RULE_DIR / "fixtures"
RULES = {rule.id: rule for rule in load_rules(RULE_DIR)}
UNSUCCESSFUL_AWARD = PROZORRO_REAL / "tender-award-unsuccessful-fragment-2023.json"


def _load(db: Path, *paths: Path) -> None:
    assert main(["--db", str(db), "load", *map(str, paths)]) == 0


def _rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _bid_statuses(db: Path) -> dict[tuple[str, str | None], tuple[str | None, str | None]]:
    """(bid id, lot id) -> (status as published, status_ocds)."""
    return {(bid, lot): (status, ocds)
            for bid, lot, status, ocds in _rows(db, "SELECT bid_id, lot_id, status, status_ocds FROM bids")}


# --- the mapping, native status by native status ------------------------------------------------

def _lift_repair_with(change: Callable[[dict], Any]) -> Callable[[Path], Path]:
    """The real 2023 lift-repair tender (one active bid, one pending award) after ``change``."""
    def make(tmp: Path) -> Path:
        return write_json(tmp / "tender.json", mutated(LIFT_REPAIR, change))
    return make


def _set_bid_status(status: str | None) -> Callable[[dict], None]:
    def change(tender: dict) -> None:
        if status is None:
            del tender["bids"][0]["status"]
        else:
            tender["bids"][0]["status"] = status
        tender["awards"] = []  # a bid in these states has no award
    return change


def _award_unsuccessful(tender: dict) -> None:
    """The real unsuccessful award fragment (same tender family) in place of the pending award."""
    award = copy.deepcopy(read_json(UNSUCCESSFUL_AWARD))
    award["bid_id"] = tender["bids"][0]["id"]
    tender["awards"] = [award]


def _award_unsuccessful_then_active(tender: dict) -> None:
    _award_unsuccessful(tender)
    again = copy.deepcopy(tender["awards"][0])
    again.update(id="a" * 32, status="active", date="2023-03-10T10:00:00+02:00")
    tender["awards"].append(again)


LIFT_BID = "f6e09f31d3024049b3bf227742e31bd6"

# (case, fixture maker, bid id, lot id, published status, expected status_ocds)
MAPPING = [
    ("active bid, pending award", lambda tmp: LIFT_REPAIR, LIFT_BID, None, "active", "valid"),
    ("active bid, unsuccessful award", _lift_repair_with(_award_unsuccessful), LIFT_BID, None, "active",
     "disqualified"),
    ("unsuccessful award, then an active one", _lift_repair_with(_award_unsuccessful_then_active), LIFT_BID, None,
     "active", "valid"),
    ("invalid", _lift_repair_with(_set_bid_status("invalid")), LIFT_BID, None, "invalid", "disqualified"),
    ("invalid.pre-qualification", _lift_repair_with(_set_bid_status("invalid.pre-qualification")), LIFT_BID, None,
     "invalid.pre-qualification", "disqualified"),
    ("deleted", _lift_repair_with(_set_bid_status("deleted")), LIFT_BID, None, "deleted", "withdrawn"),
    ("draft", _lift_repair_with(_set_bid_status("draft")), LIFT_BID, None, "draft", "pending"),
    ("pending", _lift_repair_with(_set_bid_status("pending")), LIFT_BID, None, "pending", "pending"),
    ("no status (read as active)", _lift_repair_with(_set_bid_status(None)), LIFT_BID, None, None, "valid"),
    # esco: the third bid's lotValue was rejected at pre-qualification (qualification unsuccessful)
    ("unsuccessful at pre-qualification", lambda tmp: PROZORRO / "tender-esco-cancelled.json",
     "1bbdb7ef4f8547fe8d0d9e3a06c4a1c8", "16dcfa9cc3c8433ebcb9b3e6fa7bbc09", "unsuccessful", "disqualified"),
    ("admitted at pre-qualification", lambda tmp: PROZORRO / "tender-esco-cancelled.json",
     "df6178e7f4c54b01b8a9e3ebc6ec4c1a", "16dcfa9cc3c8433ebcb9b3e6fa7bbc09", "active", "valid"),
    # requestForProposal: the tender failed; the bid was never judged
    ("unsuccessful without a qualification", lambda tmp: PROZORRO / "tender-requestForProposal-unsuccessful.json",
     None, None, "unsuccessful", "pending"),
]


def _real_ids(fixture: Path, bid_prefix: str | None, lot_prefix: str | None) -> tuple[str | None, str | None]:
    """Full ids in a fixture from the prefixes written above (the first bid, its first lot when None)."""
    tender = body(read_json(fixture))
    bids = tender.get("bids", [])
    bid = next(b for b in bids if bid_prefix is None or b["id"][:6] == bid_prefix[:6])
    lots = [lv["relatedLot"] for lv in bid.get("lotValues", [])]
    lot = next((lot for lot in lots if lot_prefix is None or lot[:6] == lot_prefix[:6]), None)
    return bid["id"], lot


@pytest.mark.parametrize(("maker", "bid", "lot", "published", "expected"),
                         [case[1:] for case in MAPPING], ids=[case[0] for case in MAPPING])
def test_native_bid_status_maps_to_ocds(tmp_path, maker, bid, lot, published, expected):
    fixture = maker(tmp_path)
    db = tmp_path / "m.duckdb"
    _load(db, fixture)
    bid, lot = _real_ids(fixture, bid, lot)
    statuses = _bid_statuses(db)
    assert statuses[(bid, lot)] == (published, expected)  # bids.status stays as published


def test_mapping_covers_every_native_bid_status():
    """Every bid status of the ProZorro API docs is in the table above."""
    covered = {case[4] for case in MAPPING}
    assert {"draft", "pending", "active", "invalid", "invalid.pre-qualification", "unsuccessful", "deleted"} <= covered


def test_a_bid_rejected_on_one_lot_stays_valid_on_the_other(tmp_path):
    db = tmp_path / "m.duckdb"
    fixture = FIXTURES / "prozorro-sas24-3-2-one-rejected-per-lot.json"
    _load(db, fixture)
    tender = body(read_json(fixture))
    rejected = {(a["bid_id"], a["lotID"]) for a in tender["awards"] if a["status"] == "unsuccessful"}
    statuses = _bid_statuses(db)
    assert len(statuses) == sum(len(b["lotValues"]) for b in tender["bids"])
    for (bid, lot), (published, ocds) in statuses.items():
        assert published == "active"
        assert ocds == ("disqualified" if (bid, lot) in rejected else "valid"), (bid, lot)


def test_ocds_sources_keep_their_codes(tmp_path):
    db = tmp_path / "m.duckdb"
    _load(db, PROZORRO_REAL / "ocds-records-10-2017-2018.json", FIXTURES / "cardinal-r036-lowest-disqualified.jsonl")
    rows = _rows(db, "SELECT status, status_ocds FROM bids")
    assert rows and all(status == ocds for status, ocds in rows)
    assert {status for status, _ in rows} == {"valid", "disqualified"}


# --- native twins of the Cardinal examples --------------------------------------------------------

def _flags(db: Path, rule_id: str) -> list[dict[str, Any]]:
    outcome = evaluate(db, [RULES[rule_id]])
    assert not outcome.failed, [(o.rule_id, o.error) for o in outcome.failed]
    rows = _rows(db, "SELECT value, evidence FROM flags WHERE rule_id = ? AND resolved_at IS NULL", [rule_id])
    return [{"value": value, **json.loads(evidence)} for value, evidence in rows]


# rule -> (OCDS example, its native twin, evidence that must agree)
TWINS = {
    "cardinal-r036-lowest-bid-disqualified": (
        "cardinal-r036-lowest-disqualified.jsonl", "cardinal-r036-native-lowest-disqualified.jsonl",
        ("value", "lowest_bid", "disqualified_tenderers", "lowest_valid_bid", "lowest_valid_tenderers", "price_gap")),
    "cardinal-r035-all-except-winning-bid-disqualified": (
        "cardinal-r035-competitors-disqualified.jsonl", "cardinal-r035-native-competitors-disqualified.jsonl",
        ("value", "winner", "others_disqualified")),
    "cardinal-r035-all-except-winning-bid-disqualified-tenderer": (
        "cardinal-r035-competitors-disqualified.jsonl", "cardinal-r035-native-competitors-disqualified.jsonl",
        ("value",)),
}


@pytest.mark.parametrize("rule_id", TWINS)
def test_native_twin_is_flagged_like_the_ocds_example(tmp_path, rule_id):
    ocds, native, keys = TWINS[rule_id]
    found = {}
    for name in (ocds, native):
        db = tmp_path / f"{name}.duckdb"
        _load(db, FIXTURES / name)
        flags = _flags(db, rule_id)
        assert len(flags) == 1, f"{rule_id} on {name}: {flags}"
        found[name] = {k: flags[0].get(k) for k in keys}
    assert found[native] == found[ocds]


def test_native_lowest_bid_that_won_is_not_flagged(tmp_path):
    db = tmp_path / "m.duckdb"
    _load(db, FIXTURES / "cardinal-r036-native-lowest-won.jsonl")
    assert _flags(db, "cardinal-r036-lowest-bid-disqualified") == []


def test_native_twin_was_silent_before_the_mapping(tmp_path):
    """The same rule on the published statuses (active) would find nothing: the gap this closes."""
    db = tmp_path / "m.duckdb"
    _load(db, FIXTURES / "cardinal-r036-native-lowest-disqualified.jsonl")
    assert {s for (s,) in _rows(db, "SELECT DISTINCT status FROM bids")} == {"active"}
    assert {s for (s,) in _rows(db, "SELECT DISTINCT status_ocds FROM bids")} == {"valid", "disqualified"}


# --- award items of native tenders ----------------------------------------------------------------

def test_native_awards_carry_the_items_of_their_lot(tmp_path):
    db = tmp_path / "m.duckdb"
    fixture = PROZORRO / "tender-aboveThreshold-complete-2lots.json"
    _load(db, fixture)
    tender = body(read_json(fixture))
    expected = {a["id"]: [i["classification"]["id"] for i in tender["items"] if i.get("relatedLot") == a["lotID"]]
                for a in tender["awards"]}
    got = dict(_rows(db, "SELECT award_id, item_cpvs FROM awards"))
    assert got == expected and all(len(v) == 1 for v in got.values())


def test_native_awards_of_a_tender_without_lots_carry_every_item(tmp_path):
    db = tmp_path / "m.duckdb"
    _load(db, LIFT_REPAIR)
    tender = body(read_json(LIFT_REPAIR))
    assert _rows(db, "SELECT item_cpvs FROM awards") == [([i["classification"]["id"] for i in tender["items"]],)]


# --- migration 0006 -------------------------------------------------------------------------------

def test_migration_fills_rows_stored_before_it_like_the_normalizer(tmp_path):
    db = tmp_path / "m.duckdb"
    esco = PROZORRO / "tender-esco-cancelled.json"
    _load(db, LIFT_REPAIR, esco, FIXTURES / "prozorro-sas24-3-2-one-rejected-per-lot.json",
          FIXTURES / "cardinal-r035-native-competitors-disqualified.jsonl",
          FIXTURES / "cardinal-r036-lowest-disqualified.jsonl")
    query_bids = "SELECT raw_key, bid_id, lot_id, status_ocds FROM bids ORDER BY ALL"
    query_awards = "SELECT raw_key, award_id, item_cpvs FROM awards ORDER BY ALL"
    normalized_bids, normalized_awards = _rows(db, query_bids), _rows(db, query_awards)
    assert {row[3] for row in normalized_bids} == {"valid", "disqualified"}

    # back to schema 5: no status_ocds, no item_cpvs on native awards
    with duckdb.connect(str(db)) as con:
        _undo_migration_7(con)
        con.execute("ALTER TABLE bids DROP COLUMN status_ocds")
        con.execute("UPDATE awards SET item_cpvs = NULL WHERE split_part(raw_key, ':', 2) = 'tender'")
        con.execute("DELETE FROM schema_migrations WHERE version >= 6")  # the later ones run again too
    connect(db).close()

    assert _rows(db, query_bids) == normalized_bids
    assert _rows(db, query_awards) == normalized_awards


# --- migration 0007 -------------------------------------------------------------------------------

def _undo_migration_7(con: duckdb.DuckDBPyConnection) -> None:
    """Back to schema 6: no complaints, no bid_documents, no awards.complaint_period_end.

    The migrations after 0007 are marked unapplied as well (they run again on the next connect).
    """
    con.execute("DROP TABLE complaints")
    con.execute("DROP TABLE bid_documents")
    con.execute("ALTER TABLE awards DROP COLUMN complaint_period_end")
    con.execute("DELETE FROM schema_migrations WHERE version >= 7")


def test_migration_0007_backfills_complaints_documents_and_complaint_periods_of_stored_tenders(tmp_path):
    db = tmp_path / "m.duckdb"
    older = read_json(FIXTURES / "prozorro-sas24-3-9-same-bid-wins-again.json")
    older["data"]["dateModified"] = "2025-07-01T10:00:00+03:00"
    older["data"]["awards"][0]["complaints"][0]["status"] = "accepted"
    # a stored copy that lost to a newer one of its tender owns no rows: the backfill must not revive it
    _load(db, write_json(tmp_path / "older.json", older))
    _load(db, LIFT_REPAIR, PROZORRO / "tender-esco-cancelled.json",
          PROZORRO / "tender-belowThreshold-complete-restricted-masked.json",
          FIXTURES / "prozorro-sas24-3-9-same-bid-wins-again.json",
          FIXTURES / "prozorro-sas24-3-1-decision-not-implemented.jsonl",
          FIXTURES / "prozorro-sas24-3-1-no-overdue-decision.jsonl",
          FIXTURES / "prozorro-sas24-3-10-winner-documents-late.jsonl",
          PROZORRO_REAL / "ocds-records-10-2017-2018.json")
    queries = ("SELECT * FROM complaints ORDER BY ALL", "SELECT * FROM bid_documents ORDER BY ALL",
               "SELECT raw_key, award_id, complaint_period_end FROM awards ORDER BY ALL")
    normalized = [_rows(db, sql) for sql in queries]
    complaints, documents, awards = normalized
    assert len(complaints) == 8 and {row[8] for row in complaints} == {"satisfied", "resolved", "answered"}
    assert len(documents) > 40 and sum(1 for row in awards if row[2] is not None) == 12

    with duckdb.connect(str(db)) as con:  # the same database as schema 6 left it
        _undo_migration_7(con)
    connect(db).close()

    assert [_rows(db, sql) for sql in queries] == normalized
