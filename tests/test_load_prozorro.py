"""Loading ProZorro native JSON: the values that reach the common tables.

Expected values are read off the fixture files (see fixtures/prozorro*/SOURCES.md).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import duckdb
import pytest

from monitor.store import connect
from monitor.store.db import migrate
from conftest import (
    HEAT_CONTRACT,
    LIFT_REPAIR,
    MICROSCOPES,
    PROZORRO,
    PROZORRO_REAL,
    body,
    mutated,
    read_json,
    summary,
    write_json,
    write_lines,
    write_rule,
)

UTC = timezone.utc


# --- a real aboveThresholdEU tender (Lviv hospital, microscopes) ---------------------------------


def test_real_tender_microscopes_process_row(load_once, query_one):
    code, out, _ = load_once(MICROSCOPES)
    assert code == 0
    assert summary(out)["new"] == 1
    row = query_one(
        "SELECT ocid, source, tender_id, tender_public_id, status, procurement_method, procurement_method_type, "
        "main_category, value_amount, value_currency, value_vat_included, buyer_id, buyer_kind, "
        "procuring_entity_id, region, region_raw, locality, date_modified, date_created, tender_end, "
        "lots_count, items_count, plan_ids, is_masked, is_test FROM processes"
    )
    assert row == (
        "ocds-be6bcu-UA-2022-07-23-000100-a",
        "prozorro",
        "520d3c3a9a9f47b9bec63eb6d86610eb",
        "UA-2022-07-23-000100-a",
        "active.tendering",
        "open",
        "aboveThresholdEU",
        "goods",
        7225305.0,
        "UAH",
        False,
        "UA-EDR-44496574",
        "general",
        "UA-EDR-44496574",
        "Львівська область",
        "Львівська область",
        "Львів",
        # "2022-07-23T15:03:24.832657+03:00", "2022-07-23T14:57:54.128761+03:00", "2022-08-24T12:00:00+03:00"
        datetime(2022, 7, 23, 12, 3, 24, 832657, tzinfo=UTC),
        datetime(2022, 7, 23, 11, 57, 54, 128761, tzinfo=UTC),
        datetime(2022, 8, 24, 9, 0, tzinfo=UTC),
        1,
        1,
        ["dff929160c104056bfd54abb8fe840dd"],
        False,
        False,
    )


def test_real_tender_microscopes_items_lots_and_buyer(load_once, query, query_one):
    load_once(MICROSCOPES)
    assert query(
        "SELECT item_id, lot_id, classification_scheme, cpv, quantity, unit_code, unit_name, delivery_region, "
        "additional_classifications FROM items WHERE ocid = 'ocds-be6bcu-UA-2022-07-23-000100-a'"
    ) == [
        (
            "3294e2e8748a8095e148e5af28aa3f71",
            "268c0b11caf3a45ecb178e92ea36b9c4",
            "ДК021",
            "38510000-3",
            2.0,
            "H87",
            "штуки",
            "Львівська область",
            [{"scheme": "GMDN", "id": "17440", "description": "Інвертований світловий мікроскоп"}],
        )
    ]
    assert query("SELECT lot_id, status, value_amount, value_currency FROM lots") == [
        ("268c0b11caf3a45ecb178e92ea36b9c4", "unsuccessful", 201.0, "UAH")
    ]
    org = query_one("SELECT scheme, identifier, kind, region, locality FROM organizations WHERE org_id = 'UA-EDR-44496574'")
    assert org == ("UA-EDR", "44496574", "general", "Львівська область", "Львів")
    raw = query_one("SELECT source, kind, id, ocid, origin FROM raw_records")
    assert raw == ("prozorro", "tender", "520d3c3a9a9f47b9bec63eb6d86610eb",
                   "ocds-be6bcu-UA-2022-07-23-000100-a", str(MICROSCOPES))


# --- a real belowThreshold tender with a bid and an award (Kyiv lift repair) -------------------


def test_real_tender_lift_repair_bids_and_awards(load_once, query, query_one):
    assert load_once(LIFT_REPAIR)[0] == 0
    ocid = "ocds-be6bcu-UA-2023-02-16-009364-a"
    process = query_one(
        "SELECT ocid, status, procurement_method_type, main_category, value_amount, buyer_id, region, "
        "number_of_tenderers, bids_count, awards_count FROM processes"
    )
    assert process == (ocid, "active.qualification", "belowThreshold", "services", 4177.0, "UA-EDR-39604270",
                       "Київська область", 1, 1, 1)
    assert query("SELECT ocid, bid_id, lot_id, status, date, tenderer_id, tenderer_ids, value_amount, value_currency "
                 "FROM bids") == [
        (ocid, "f6e09f31d3024049b3bf227742e31bd6", None, "active",
         datetime(2023, 2, 22, 8, 29, 6, 237445, tzinfo=UTC),  # "2023-02-22T10:29:06.237445+02:00"
         "UA-EDR-38526925", ["UA-EDR-38526925"], 4176.66, "UAH")
    ]
    assert query("SELECT award_id, bid_id, status, value_amount, supplier_id, supplier_name, complaints_count "
                 "FROM awards") == [
        ("f2588db5ac4b4fe0a3628fcb1b5fda73", "f6e09f31d3024049b3bf227742e31bd6", "pending", 4176.66,
         "UA-EDR-38526925", 'Товариство з обмеженою відповідальністю "ЕЛЕВЕЙТОР СЕРВІС"', 0)
    ]
    assert query("SELECT cpv, quantity, unit_code FROM items") == [("45310000-3", 1.0, "E48")]
    assert query("SELECT org_id FROM organizations ORDER BY org_id") == [("UA-EDR-38526925",), ("UA-EDR-39604270",)]


def test_envelope_bare_object_and_json_lines_give_the_same_rows(tmp_path, run_cli, query):
    """The same tender as a bare object, inside {"data", "config"}, and as a JSON Lines line."""
    tender = body(read_json(LIFT_REPAIR))
    inputs = {
        "bare": LIFT_REPAIR,
        "envelope": write_json(tmp_path / "envelope.json", {"data": tender, "config": {"restricted": False}}),
        "lines": write_lines(tmp_path / "tenders.jsonl", [{"data": tender, "config": {"restricted": False}}]),
    }
    results = {}
    for name, path in inputs.items():
        db = tmp_path / f"{name}.duckdb"
        assert run_cli("--db", db, "load", path)[0] == 0
        con = duckdb.connect(str(db), read_only=True)
        results[name] = {
            table: sorted(con.execute(f"SELECT * EXCLUDE (raw_key) FROM {table}").fetchall(), key=repr)
            for table in ("processes", "items", "bids", "awards")
        }
        con.close()
    assert results["bare"]["processes"], "nothing loaded"
    assert results["envelope"] == results["bare"]
    assert results["lines"] == results["bare"]


# --- a tender with two lots: one bid row per lotValue -------------------------------------------


def test_two_lot_tender_bids_per_lot_awards_contracts(load_once, query, query_one):
    path = PROZORRO / "tender-aboveThreshold-complete-2lots.json"
    tender = body(read_json(path))
    assert load_once(path)[0] == 0
    lot1, lot2 = "d7afc0eb4f6d42549557d7b3226417e6", "ffb255f57e054aaa9f45701dbce47420"
    assert query_one("SELECT ocid, status, procurement_method_type, value_amount, lots_count, bids_count, "
                     "number_of_tenderers, awards_count, contracts_count, region FROM processes") == (
        "ocds-be6bcu-UA-2027-01-01-000001-a", "complete", "aboveThreshold", 1000.0, 2, 2, 2, 2, 2,
        "Вінницька область")
    assert query("SELECT lot_id, status, value_amount FROM lots ORDER BY lot_id") == [
        (lot1, "complete", 500.0), (lot2, "complete", 500.0)]
    expected_bids = sorted(
        (b["id"], lv["relatedLot"], lv["status"], "UA-EDR-" + b["tenderers"][0]["identifier"]["id"],
         lv["value"]["amount"])
        for b in tender["bids"] for lv in b["lotValues"]
    )
    assert len(expected_bids) == 4
    assert query("SELECT bid_id, lot_id, status, tenderer_id, value_amount FROM bids ORDER BY ALL") == expected_bids
    assert query("SELECT award_id, bid_id, lot_id, status, value_amount, supplier_id FROM awards ORDER BY lot_id") == [
        ("45661e84097445e784c31e2d96566832", "4b2f22ec008b4f4e88f2f69ea174242c", lot1, "active", 500.0,
         "UA-EDR-00137256"),
        ("866d796c99b14e0991b5504bad98f827", "4b2f22ec008b4f4e88f2f69ea174242c", lot2, "active", 500.0,
         "UA-EDR-00137256"),
    ]
    assert query("SELECT origin, contract_id, contract_public_id, award_id, status, value_amount, buyer_id, "
                 "supplier_id FROM contracts ORDER BY contract_public_id") == [
        ("tender", "004df6a5c1684d67b044fafc238a2962", "UA-2027-01-01-000001-a-a1",
         "45661e84097445e784c31e2d96566832", "active", 500.0, "UA-EDR-21725150", "UA-EDR-00137256"),
        ("tender", "2bd25ecac7274f6e9f062904741ca519", "UA-2027-01-01-000001-a-a2",
         "866d796c99b14e0991b5504bad98f827", "active", 500.0, "UA-EDR-21725150", "UA-EDR-00137256"),
    ]
    assert query("SELECT lot_id, cpv FROM items ORDER BY lot_id") == [(lot1, "55523100-3"), (lot2, "55523100-3")]


# --- contracts ---------------------------------------------------------------------------------


def test_contract_object_with_changes(load_once, query, query_one):
    assert load_once(PROZORRO / "contract-active-with-changes.json")[0] == 0
    # contractID UA-2027-01-01-000001-a-a1 -> ocid of tender UA-2027-01-01-000001-a
    assert query_one("SELECT ocid, origin, contract_id, contract_public_id, award_id, status, value_amount, "
                     "value_currency, amount_paid, buyer_id, supplier_id, changes_count FROM contracts") == (
        "ocds-be6bcu-UA-2027-01-01-000001-a", "contract", "78fd8d7877d74b0dbc9c605462545e1c",
        "UA-2027-01-01-000001-a-a1", "765d1e83c038413ab7717ec5e820fdfd", "active", 280.0, "UAH", None,
        "UA-IPN-00037257", "UA-IPN-00037256", 1)
    assert query("SELECT ocid, contract_id, change_id, status, rationale_types, date FROM contract_changes") == [
        ("ocds-be6bcu-UA-2027-01-01-000001-a", "78fd8d7877d74b0dbc9c605462545e1c",
         "eb794cf51a174e5ab8caa0dd717624a5", "active", ["volumeCuts", "priceReductionWithoutQuantity"],
         datetime(2026, 12, 31, 22, 0, tzinfo=UTC))]
    assert query("SELECT item_id, cpv, quantity, unit_value_amount FROM contract_items ORDER BY item_id") == [
        ("1e91cae17daa4a4b90191ce5e0635ab5", "44617100-9", 20.0, 4.5),
        ("5b122642e8964f00a1535be1d2b2270a", "44617100-9", 10.0, 9.0),
        ("ce44a97bd43a49069c1cb60ef789199e", "44617100-9", 5.0, 20.0),
    ]
    # a contract object is not a contracting process: no processes row, but its raw record keeps the ocid
    assert query("SELECT count(*) FROM processes") == [(0,)]
    assert query("SELECT kind, ocid FROM raw_records") == [("contract", "ocds-be6bcu-UA-2027-01-01-000001-a")]


def test_real_contract_2018_three_item_price_variations(load_once, query, query_one):
    contract = read_json(HEAT_CONTRACT)
    assert load_once(HEAT_CONTRACT)[0] == 0
    assert query_one("SELECT ocid, origin, contract_public_id, status, value_amount, amount_paid, "
                     "amount_paid_currency, buyer_id, supplier_id, changes_count, date_signed FROM contracts") == (
        "ocds-be6bcu-UA-2018-01-09-000706-a", "contract", "UA-2018-01-09-000706-a-a1", "active",
        641112.06, 637182.66, "UAH", "UA-EDR-37643758", "UA-EDR-39652298", 3,
        datetime(2018, 1, 30, 8, 4, tzinfo=UTC))
    changes = query("SELECT change_id, status, rationale_types FROM contract_changes ORDER BY date")
    assert changes == [(c["id"], "active", ["itemPriceVariation"]) for c in contract["changes"]]
    assert len(changes) == 3
    assert query("SELECT cpv, quantity FROM contract_items") == [("09320000-8", 1.0)]


def test_terminated_contract_amount_paid(load_once, query_one):
    assert load_once(PROZORRO / "contract-terminated-amountPaid.json")[0] == 0
    assert query_one("SELECT ocid, status, value_amount, amount_paid, amount_paid_currency FROM contracts") == (
        "ocds-be6bcu-UA-2027-01-01-000001-a", "terminated", 280.0, 240.0, "UAH")


def test_contract_change_date_without_offset_is_the_same_instant_in_both_documents(tmp_path, run_cli):
    """The same change eb794cf5... is dated "2027-01-01T00:00:00+02:00" in GET /contracts/{id} and
    "2026-12-31T22:00:00" (no offset) in the PATCH response that terminated the contract: the naive
    value is UTC. Both must give one instant, 2026-12-31 22:00 UTC."""
    dates = {}
    for name in ("contract-active-with-changes.json", "contract-terminated-amountPaid.json"):
        db = tmp_path / f"{name}.duckdb"
        assert run_cli("--db", db, "load", PROZORRO / name)[0] == 0
        con = duckdb.connect(str(db), read_only=True)
        dates[name] = con.execute("SELECT date FROM contract_changes "
                                  "WHERE change_id = 'eb794cf51a174e5ab8caa0dd717624a5'").fetchone()[0]
        con.close()
    assert dates["contract-active-with-changes.json"] == datetime(2026, 12, 31, 22, 0, tzinfo=UTC)
    assert dates["contract-terminated-amountPaid.json"] == dates["contract-active-with-changes.json"]


def test_contract_object_replaces_the_slim_in_tender_copy_in_any_order(tmp_path, run_cli):
    """priceQuotation tender f2a34012... has in-tender contract 78fd8d78...; the contract object wins."""
    tender, contract = PROZORRO / "tender-priceQuotation-complete.json", PROZORRO / "contract-active-with-changes.json"
    seen = []
    for order in ((tender, contract), (contract, tender)):
        db = tmp_path / f"{order[0].stem}.duckdb"
        for path in order:
            assert run_cli("--db", db, "load", path)[0] == 0
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute("SELECT origin, contract_id, status, value_amount, changes_count FROM contracts "
                           "WHERE contract_id = '78fd8d7877d74b0dbc9c605462545e1c'").fetchall()
        con.close()
        assert rows == [("contract", "78fd8d7877d74b0dbc9c605462545e1c", "active", 280.0, 1)]
        seen.append(rows)
    assert seen[0] == seen[1]


@pytest.mark.parametrize("server", ["a", "b", "c"])
def test_contract_object_joins_its_tender_whatever_the_server_letter_of_its_contract_id(tmp_path, run_cli, server):
    """contractID = tenderID + '-' + server letter + number; real contracts end in -b1 or -c1 too
    (UA-2018-06-22-000522-c-b1 in prozorro-real/ocds-records-10-2017-2018.json)."""
    tender_id = f"UA-2027-01-01-000001-{server}"

    def renumber(record):
        if "tenderID" in record:
            record["tenderID"] = tender_id
            for contract in record["contracts"]:
                contract["contractID"] = f"{tender_id}-{server}1"
        else:
            record["contractID"] = f"{tender_id}-{server}1"

    tender = write_json(tmp_path / "tender.json", mutated(PROZORRO / "tender-priceQuotation-complete.json", renumber))
    contract = write_json(tmp_path / "contract.json", mutated(PROZORRO / "contract-active-with-changes.json", renumber))
    db = tmp_path / "m.duckdb"
    assert run_cli("--db", db, "load", tender, contract)[0] == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT ocid FROM process_keys").fetchall() == [(f"ocds-be6bcu-{tender_id}",)]
        assert con.execute("SELECT c.origin, c.ocid, p.tender_public_id FROM contracts c "
                           "JOIN processes p USING (process_key)").fetchall() == \
            [("contract", f"ocds-be6bcu-{tender_id}", tender_id)]
    finally:
        con.close()


# --- plans -------------------------------------------------------------------------------------


def test_plan_budget_classification_and_breakdown(load_once, query, query_one):
    assert load_once(PROZORRO / "plan-complete.json")[0] == 0
    row = query_one(
        "SELECT plan_id, source, plan_public_id, status, buyer_id, buyer_name, buyer_kind, region, budget_amount, "
        "budget_currency, budget_description, budget_sources, budget_breakdown, cpv, cpv_description, kekv, "
        "planned_method, planned_method_type, planned_start, tender_id, items_count, is_test FROM plans"
    )
    assert row == (
        "cccb8928810c4bda97b1eabb9c4c4f9b", "prozorro", "UA-P-2027-01-01-000001-a", "complete",
        "UA-EDR-111983", "ДУС", "general", "м. Київ", 10000.0, "UAH", "budget_description", ["local"],
        [{"source": "local", "amount": 1500.0, "currency": "UAH", "scheme": "ТПКВКМБ", "code": "2170",
          "description": "Будівництво закладів охорони здоров’я"}],
        "03111000-2", "Seeds", ["2000"], "open", "belowThreshold",
        datetime(2027, 1, 7, 22, 0, tzinfo=UTC),  # "2027-01-08T00:00:00+02:00"
        "e7db462b6c17406f8ddda353f082a92a", 1, False,
    )
    # a plan is not a contracting process
    assert query("SELECT kind, ocid FROM raw_records") == [("plan", None)]
    assert query("SELECT count(*) FROM processes") == [(0,)]


def test_plan_budget_year_is_the_year_of_the_budget_period_in_ukraine(load_once, query_one):
    """budget.period.startDate is "2027-01-01T00:00:00+02:00": the budget year is 2027 (not 2026,
    the year of the same instant in UTC)."""
    load_once(PROZORRO / "plan-complete.json")
    assert query_one("SELECT budget_year FROM plans") == (2027,)


# --- restricted (masked) tenders ---------------------------------------------------------------


MASKED = PROZORRO / "tender-belowThreshold-complete-restricted-masked.json"


def test_masked_tender_alone_is_stored_and_marked(load_once, query_one):
    code, out, _ = load_once(MASKED)
    assert code == 0
    assert summary(out)["new"] == 1 and summary(out)["quarantined"] == 0
    assert query_one("SELECT kind, id, ocid FROM raw_records") == (
        "tender", "069e04c3c5fb4c6fbf7b6dbb3b19c7d0", "ocds-be6bcu-UA-2021-11-08-000045-a")
    assert query_one("SELECT ocid, is_masked, status, value_amount, buyer_id FROM processes") == (
        "ocds-be6bcu-UA-2021-11-08-000045-a", True, "complete", 39696226.76, "UA-EDR-00000000")


def test_masked_values_are_null_so_aggregates_do_not_count_them(load_once, query, query_one):
    load_once(MASKED)
    # item: "quantity": 0.0, "description": "Приховано", deliveryAddress.region "Приховано"
    assert query_one("SELECT quantity, description, delivery_region, inn, atc FROM items") == (
        None, None, None, "Ibuprofen", "M01AE01")
    assert query_one("SELECT sum(quantity), count(quantity) FROM items") == (None, 0)
    # tenderers and suppliers: identifier.id "Приховано"
    assert query("SELECT tenderer_id, tenderer_ids FROM bids") == [(None, []), (None, [])]
    assert query("SELECT supplier_id, supplier_name FROM awards") == [(None, None), (None, None)]
    assert query("SELECT supplier_id FROM contracts") == [(None,), (None,)]
    assert query_one("SELECT count(tenderer_id) FROM bids") == (0,)
    # no organization is made of "Приховано"
    assert query("SELECT org_id FROM organizations") == [("UA-EDR-00000000",)]
    assert query("SELECT count(*) FROM organizations WHERE identifier = 'Приховано' OR name = 'Приховано'") == [(0,)]


def test_masked_tender_tenderer_count_is_not_zero(load_once, query_one):
    """Two bids whose tenderers are hidden: the number of tenderers is unknown (NULL) or 2, never 0
    (0 would read as "nobody bid" to a single-bidder rule)."""
    load_once(MASKED)
    bids_count, tenderers = query_one("SELECT bids_count, number_of_tenderers FROM processes")
    assert bids_count == 2
    assert tenderers in (None, 2)


def test_restricted_config_masks_zero_amounts(tmp_path, load_once, query_one):
    """config.restricted with the masker's 0.0 numbers: amounts become NULL, is_masked is set."""

    def mask(t):
        t["items"][0]["quantity"] = 0.0
        t["value"]["amount"] = 0.0

    tender = mutated(LIFT_REPAIR, mask)
    path = write_json(tmp_path / "restricted.json", {"data": tender, "config": {"restricted": True}})
    assert load_once(path)[0] == 0
    assert query_one("SELECT is_masked, value_amount FROM processes") == (True, None)
    assert query_one("SELECT quantity FROM items") == (None,)


# --- complaints and cancellations --------------------------------------------------------------


def _complaints_in(tender: dict) -> int:
    return (len(tender.get("complaints", []))
            + sum(len(a.get("complaints", [])) for a in tender.get("awards", []))
            + sum(len(q.get("complaints", [])) for q in tender.get("qualifications", []))
            + sum(len(c.get("complaints", [])) for c in tender.get("cancellations", [])))


@pytest.mark.parametrize(
    ("name", "complaints", "cancellations", "reason_type"),
    [
        ("tender-esco-cancelled.json", 0, 1, "expensesCut"),
        ("tender-cfaua-unsuccessful.json", 0, 0, None),
    ],
)
def test_complaints_and_cancellations_counts(load_once, query_one, name, complaints, cancellations, reason_type):
    tender = body(read_json(PROZORRO / name))
    assert _complaints_in(tender) == complaints
    assert len(tender.get("cancellations", [])) == cancellations
    assert load_once(PROZORRO / name)[0] == 0
    assert query_one("SELECT complaints_count, cancellations_count, cancellation_reason_type FROM processes") == (
        complaints, cancellations, reason_type)


def test_complaints_count_adds_tender_award_qualification_and_cancellation_complaints(tmp_path, load_once, query,
                                                                                       query_one):
    """A copy of the esco tender with complaints added at every level the model counts."""
    complaint = body(read_json(PROZORRO / "tender-complaint-resolved.json"))

    def add(t):
        t["complaints"] = [dict(complaint, id="c1"), dict(complaint, id="c2")]
        t["awards"][0]["complaints"] = [dict(complaint, id="c3")]
        t["qualifications"][1]["complaints"] = [dict(complaint, id="c4"), dict(complaint, id="c5")]
        t["cancellations"][0]["complaints"] = [dict(complaint, id="c6")]

    tender = mutated(PROZORRO / "tender-esco-cancelled.json", add)
    assert _complaints_in(tender) == 6
    assert load_once(write_json(tmp_path / "esco-with-complaints.json", {"data": tender}))[0] == 0
    assert query_one("SELECT complaints_count, cancellations_count FROM processes") == (6, 1)
    assert query("SELECT complaints_count FROM awards") == [(1,)]


TWO_LOTS = PROZORRO / "tender-aboveThreshold-complete-2lots.json"


def _second_lot_cancelled(t: dict) -> None:
    """The two-lot tender with its second lot cancelled on its own (cancellationOf "lot"), as ProZorro
    publishes a tender cancelled lot by lot: the lot's status is cancelled, its award and contract are
    gone, the tender's status still follows its other lot (complete). An earlier cancellation of the
    same lot that the review body did not let through (unsuccessful) and a tender-level one still in
    draft carry other reasons."""
    second = t["lots"][1]["id"]
    t["lots"][1]["status"] = "cancelled"
    dropped = [a["id"] for a in t["awards"] if a["lotID"] == second]
    t["awards"] = [a for a in t["awards"] if a["lotID"] != second]
    t["contracts"] = [c for c in t["contracts"] if c["awardID"] not in dropped]
    t["cancellations"] = [
        {"id": "8e1c0a3f2b7d4c59a1e6f0b2c3d4e5f6", "status": "unsuccessful", "reasonType": "noDemand",
         "reason": "Відсутність подальшої потреби", "cancellationOf": "lot", "relatedLot": second,
         "date": "2027-01-24T00:00:00+02:00"},
        {"id": "9f2d1b4a3c8e4d6ab2f7a1c3d4e5f607", "status": "active", "reasonType": "expensesCut",
         "reason": "Скорочення видатків на закупівлю", "cancellationOf": "lot", "relatedLot": second,
         "date": "2027-01-28T00:00:00+02:00"},
        {"id": "a03e2c5b4d9f4e7bc3a8b2d4e5f60718", "status": "draft", "reasonType": "noOffer",
         "reason": "Подано менше двох тендерних пропозицій", "cancellationOf": "tender",
         "date": "2027-01-29T00:00:00+02:00"},
    ]


def test_a_lot_cancelled_on_its_own_keeps_its_reason_and_the_tender_none(tmp_path, load_once, query, query_one):
    """A lot cancellation's reasonType goes on that lot; processes.cancellation_reason_type keeps meaning
    the active cancellation of the whole tender, so it stays empty here."""
    tender = mutated(TWO_LOTS, _second_lot_cancelled)
    first, second = (lot["id"] for lot in tender["lots"])
    assert load_once(write_json(tmp_path / "lot-cancelled.json", {"data": tender}))[0] == 0
    assert query_one("SELECT status, cancellations_count, cancellation_reason_type FROM processes") == (
        "complete", 3, None)
    assert query("SELECT lot_id, status, cancellation_reason_type FROM lots ORDER BY lot_id") == sorted([
        (first, "complete", None), (second, "cancelled", "expensesCut")])


def test_a_tender_cancelled_as_a_whole_gives_its_reason_to_the_tender_not_its_lots(load_once, query, query_one):
    assert load_once(PROZORRO / "tender-esco-cancelled.json")[0] == 0
    assert query_one("SELECT status, cancellation_reason_type FROM processes") == ("cancelled", "expensesCut")
    assert query("SELECT status, cancellation_reason_type FROM lots") == [("active", None)]


def test_upgrade_gives_the_stored_cancelled_lots_their_reason(db_path):
    """0015: lots stored before had no reason; the cancelled ones get it from their raw record (in the
    API envelope or bare), the others keep none."""
    enveloped = mutated(TWO_LOTS, _second_lot_cancelled)
    bare = mutated(TWO_LOTS, _second_lot_cancelled)
    bare["id"] = "0b1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e"
    bare["cancellations"][1]["reasonType"] = "noOffer"
    first, second = (lot["id"] for lot in enveloped["lots"])
    raw = duckdb.connect(str(db_path))
    assert migrate(raw, target=14) == 14
    for key, (record, text) in enumerate(((enveloped, json.dumps({"data": enveloped}, ensure_ascii=False)),
                                          (bare, json.dumps(bare, ensure_ascii=False))), start=1):
        ocid = f"ocds-be6bcu-{record['tenderID']}-{key}"
        raw.execute("INSERT INTO raw_records VALUES ('prozorro', 'tender', ?, ?, now(), now(), 'sha', 'old.json', ?)",
                    [record["id"], ocid, text])
        for lot in record["lots"]:
            raw.execute("INSERT INTO lots (ocid, process_key, raw_key, lot_id, status) VALUES (?, ?, ?, ?, ?)",
                        [ocid, key, f"prozorro:tender:{record['id']}", lot["id"], lot["status"]])
    raw.close()
    con = connect(db_path)
    try:
        assert con.execute("SELECT process_key, lot_id, status, cancellation_reason_type FROM lots "
                           "ORDER BY process_key, lot_id").fetchall() == sorted([
            (1, first, "complete", None), (1, second, "cancelled", "expensesCut"),
            (2, first, "complete", None), (2, second, "cancelled", "noOffer")])
    finally:
        con.close()


# --- things that are not records ---------------------------------------------------------------


NOT_RECORDS = [
    PROZORRO / "feed-tenders-page.json",
    PROZORRO / "feed-tenders-page-empty-initial.json",
    PROZORRO / "feed-tenders-page-opt_fields-procuringEntity.json",
    PROZORRO / "feed-contracts-page.json",
    PROZORRO / "feed-contracts-page-opt_fields-status.json",
    PROZORRO / "feed-plans-page.json",
    PROZORRO / "feed-plans-page-legacy-float-offset.json",
    PROZORRO / "feed-plans-page-legacy-isodate-offset.json",
    PROZORRO / "feed-agreements-page.json",
    PROZORRO / "feed-violation-reports-empty-with-prev_page.json",
    PROZORRO / "feed-monitorings-page-first.json",
    PROZORRO / "feed-monitorings-page-next.json",
    PROZORRO / "feed-monitorings-page-last-empty.json",
    PROZORRO / "monitorings-by-tender-paged.json",
    PROZORRO / "monitoring-completed.json",
    PROZORRO / "tender-complaints-list.json",
    PROZORRO / "award-complaints-list.json",
    PROZORRO / "contract-changes-list.json",
    PROZORRO / "tender-complaint-resolved.json",
    PROZORRO / "tender-cancellation-active.json",
    PROZORRO / "tender-reporting-contract-signed.json",
    PROZORRO / "tender-negotiation-contract-signed.json",
    PROZORRO_REAL / "tender-bid-fragment-2023-lift-repair.json",
    PROZORRO_REAL / "tender-award-unsuccessful-fragment-2023.json",
]


def test_non_records_are_skipped_not_stored_not_quarantined(run_cli, db_path, query):
    """Feed pages, sub-resource lists and objects, monitorings: each file is one skipped item."""
    code, out, err = run_cli("--log-format", "json", "--db", db_path, "load", *NOT_RECORDS)
    assert code == 0
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    per_file = {e["path"]: (e["skipped"], e["new"], e["quarantined"]) for e in events if e.get("event") == "file loaded"}
    assert per_file == {str(path): (1, 0, 0) for path in NOT_RECORDS}
    counts = summary(out)
    assert (counts["files"], counts["skipped"], counts["new"], counts["quarantined"]) == (len(NOT_RECORDS),
                                                                                         len(NOT_RECORDS), 0, 0)
    assert query("SELECT count(*) FROM raw_records") == [(0,)]
    assert query("SELECT count(*) FROM quarantine") == [(0,)]
    assert query("SELECT count(*) FROM processes") == [(0,)]


def test_skipped_files_do_not_hide_records_loaded_with_them(load_once, query):
    code, out, _ = load_once(PROZORRO / "feed-tenders-page.json", LIFT_REPAIR, PROZORRO / "monitoring-completed.json")
    assert code == 0
    counts = summary(out)
    assert (counts["files"], counts["new"], counts["skipped"], counts["quarantined"]) == (3, 1, 2, 0)
    assert query("SELECT ocid FROM processes") == [("ocds-be6bcu-UA-2023-02-16-009364-a",)]


def test_run_is_recorded_with_counts(load_once, query):
    load_once(LIFT_REPAIR, PROZORRO / "plan-complete.json", PROZORRO / "feed-plans-page.json")
    [(command, status, counts, error)] = query("SELECT command, status, counts, error FROM runs")
    assert (command, status, error) == ("load", "complete", None)
    counts = json.loads(counts)
    assert (counts["new"], counts["skipped"], counts["quarantined"], counts["files"]) == (2, 1, 0, 3)


# --- the after-store step ([pipeline] after_store): classification, then the flag rules -------------

EVERY_PROCESS = "SELECT ocid AS subject_id, ocid FROM processes"
BROKEN_CAST = "SELECT ocid AS subject_id, ocid, ocid::INTEGER AS value FROM processes"  # fails on the data


def log_events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.fixture
def flag_rules(tmp_path, monkeypatch):
    """rules/flags/ replaced by a folder of the test's rules."""
    folder = tmp_path / "flag-rules"
    folder.mkdir()
    monkeypatch.setattr("monitor.flags.rules.DEFAULT_DIR", folder)
    return folder


@pytest.mark.flags_after_store
def test_a_flag_rule_failing_at_run_time_exits_1_after_the_records_and_the_other_flags_are_stored(
        load, flag_rules, query):
    write_rule(flag_rules, "every-process", EVERY_PROCESS)
    write_rule(flag_rules, "broken-cast", BROKEN_CAST)
    code, out, err = load(MICROSCOPES, LIFT_REPAIR)
    assert code == 1, err[-3000:]
    assert summary(out)["new"] == 2
    assert "the data is stored, but rule broken-cast failed" in out
    [line] = [e for e in log_events(err) if e["event"].startswith("flag rules failed")]
    assert line["level"] == "error" and line["failed_rules"] == ["broken-cast"]
    assert line["errors"]["broken-cast"].startswith("Conversion Error")
    assert query("SELECT count(*) FROM processes") == [(2,)]
    assert query("SELECT rule_id, count(*) FROM flags GROUP BY ALL") == [("every-process", 2)]
    assert query("SELECT rule_id, status FROM rule_runs ORDER BY rule_id") == [("broken-cast", "failed"),
                                                                               ("every-process", "ok")]
    assert query("SELECT command, status FROM runs") == [("load", "complete")]  # the data is complete

    write_rule(flag_rules, "broken-cast", EVERY_PROCESS.replace("AS subject_id", "|| '-again' AS subject_id"))
    code, out, err = load(MICROSCOPES, LIFT_REPAIR)  # the rule repaired: quiet again
    assert code == 0, err[-3000:]
    assert "the data is stored, but" not in out
    assert query("SELECT rule_id, count(*) FROM flags GROUP BY ALL ORDER BY 1") == [("broken-cast", 2),
                                                                                    ("every-process", 2)]


@pytest.mark.flags_after_store
def test_invalid_rule_files_after_a_load_exit_2_with_the_summary_and_the_records_stored(load, flag_rules, query):
    write_rule(flag_rules, "writes", "DELETE FROM processes")  # rejected when the rules are read
    code, out, err = load(LIFT_REPAIR)
    assert code == 2, err[-3000:]
    assert summary(out)["new"] == 1
    assert "the data is stored, but the flag rules were not evaluated (rule files are invalid)" in out
    [line] = [e for e in log_events(err) if e["event"].startswith("flag rules not evaluated")]
    assert line["level"] == "error" and "writes.yaml:7: query:" in line["error"]
    assert query("SELECT count(*) FROM processes") == [(1,)]


@pytest.mark.flags_after_store
def test_a_classification_failing_exits_1_and_the_flags_still_run(load, flag_rules, query, monkeypatch):
    write_rule(flag_rules, "every-process", EVERY_PROCESS)

    def broken(con, **kwargs):
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 1.0 GiB")

    monkeypatch.setattr("monitor.pipeline.classify_changed", broken)
    code, out, err = load(LIFT_REPAIR)
    assert code == 1, err[-3000:]
    assert summary(out)["new"] == 1
    assert "the data is stored, but the classification failed" in out
    [line] = [e for e in log_events(err) if e["event"].startswith("classification failed")]
    assert line["level"] == "error" and "Out of Memory" in line["error"]
    assert query("SELECT count(*) FROM processes") == [(1,)]
    assert query("SELECT rule_id, count(*) FROM flags GROUP BY ALL") == [("every-process", 1)]


def test_a_newer_mention_without_address_or_kind_keeps_what_an_older_one_said(tmp_path, run_cli):
    """A reporting tender naming the same procuring entity without its address or kind: the entity keeps
    its region, locality and kind (rules group buyers by them); its name follows the newer record."""
    first = mutated(PROZORRO / "tender-priceQuotation-complete.json",
                    lambda t: t.update(dateModified="2027-01-01T00:00:00+02:00"))
    entity = first["procuringEntity"]

    def sparse(record):
        record.update(dateModified="2027-02-01T00:00:00+02:00", procuringEntity={
            "name": entity["name"] + " (renamed)", "identifier": entity["identifier"]})
        record.pop("buyers", None)

    later = mutated(PROZORRO / "tender-reporting-active.json", sparse)
    org_id = f"{entity['identifier']['scheme']}-{entity['identifier']['id']}"
    db = tmp_path / "m.duckdb"
    for name, record in (("first.json", first), ("later.json", later)):
        assert run_cli("--db", db, "load", write_json(tmp_path / name, record))[0] == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT name, kind, region, region_raw, locality FROM organizations WHERE org_id = ?",
                          [org_id]).fetchone()
    finally:
        con.close()
    address = entity["address"]
    assert row == (entity["name"] + " (renamed)", entity["kind"], "м. Київ", address["region"], address["locality"])
