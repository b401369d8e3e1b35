"""Purchase splitting: which threshold a buyer is judged against, and how a report with items in several
ДК021 classes is counted (rules/flags/anomaly-split-purchases-below-threshold.yaml, and the official
indicator's reproduction in prozorro-sas24-3-14-1/-2).

- A buyer of kind ``special`` (особливий замовник: utilities, energy, transport) has its own, higher
  open-tender thresholds under Law 922 art. 3: 1 000 000 UAH for goods and services, 5 000 000 UAH for
  works (the DASU method's RISK2-5 / RISK2-6 use the same figures, shared/docs/prozorro-risk-indicators.md).
  The anomaly rule judges special buyers against those, every other kind against 400 000 / 1 500 000.
  The official indicator sas24-3-14 does not distinguish special buyers, so its reproduction does not either.
- A report whose items fall in two classes counts in each class only its part of the contract (by the
  items' value, else by their number), not its whole value in each.

Each fixture is loaded into a scratch database and one rule evaluated (conftest.rule_flags).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from conftest import RULE_FIXTURES as FIXTURES
from conftest import read_lines, write_lines
from conftest import rule_flags as flags


SPLIT = "anomaly-split-purchases-below-threshold"
SAS_3_14_1 = "prozorro-sas24-3-14-1-direct-contracts-over-threshold-goods-services"
SPECIAL_BUYER = FIXTURES / f"{SPLIT}-special-buyer.jsonl"
TWO_CLASSES = FIXTURES / f"{SPLIT}-items-in-two-classes.jsonl"



def fresh(tmp_path: Path, name: str) -> Path:
    """A directory of its own for each database a test builds."""
    directory = tmp_path / name
    directory.mkdir()
    return directory


def write(directory: Path, name: str, docs: list[dict]) -> Path:
    return write_lines(directory / name, docs)


def ocid(tender_id: str) -> str:
    return f"ocds-be6bcu-{tender_id}"


def set_amount(tender: dict, amount: float) -> None:
    """One-item report: the item priced so that it adds up to ``amount``, and the report, award and contract at it."""
    (item,) = tender["items"]
    item["unit"]["value"]["amount"] = amount / item["quantity"]
    tender["value"]["amount"] = amount
    for award in tender["awards"]:
        award["value"]["amount"] = amount
    for contract in tender["contracts"]:
        contract["value"]["amount"] = amount
        contract["value"]["amountNet"] = round(amount / 1.2, 2)


def special_variant(tmp_path: Path, name: str, kind: str | None = "special", amounts: list[float] | None = None,
                    works: bool = False) -> Path:
    """The water utility's three pipe reports, with another buyer kind (None: no kind published), other amounts,
    or as works (laying water mains, ДК021 45232150-8)."""
    docs = read_lines(SPECIAL_BUYER)
    for document, amount in zip(docs, amounts or [None] * len(docs), strict=True):
        tender = document["data"]
        if kind is None:
            tender["procuringEntity"].pop("kind")
        else:
            tender["procuringEntity"]["kind"] = kind
        if works:
            tender["mainProcurementCategory"] = "works"
            for item in tender["items"]:
                item["classification"] = {"scheme": "ДК021", "id": "45232150-8",
                                          "description": "Роботи, пов’язані з прокладанням водорозподільних трубопроводів"}
                item["unit"]["code"], item["unit"]["name"] = "E48", "послуга"
                item["quantity"] = 1.0
        if amount is not None:
            set_amount(tender, amount)
    directory = fresh(tmp_path, name)
    return write(directory, "special-variant.jsonl", docs)


# --- which threshold: special buyers -------------------------------------------------------------------

def test_a_special_buyer_is_judged_against_its_own_goods_threshold(tmp_path):
    """910 000 UAH of pipes in 21 days: over 400 000, but a water utility (kind special) buys goods directly
    up to 1 000 000. With one report raised by 100 000 the window reaches 1 010 000 and is flagged."""
    assert flags(fresh(tmp_path, "as-published"), SPLIT, SPECIAL_BUYER) == {}
    raised = special_variant(tmp_path, "raised", amounts=[480_000, 290_000, 240_000])
    found = flags(raised.parent, SPLIT, raised)
    assert sorted(found) == [ocid("UA-2025-10-06-014200-a"), ocid("UA-2025-10-14-014201-a"),
                             ocid("UA-2025-10-27-014202-a")]
    evidence = found[ocid("UA-2025-10-14-014201-a")]["evidence"]
    assert evidence["threshold"] == 1_000_000 and evidence["cpv_class"] == "4416"
    assert evidence["window_total"] == 1_010_000 and evidence["contracts_in_window"] == 3


@pytest.mark.parametrize("kind", ["authority", "central", "general", "social", "defense", None])
def test_every_other_buyer_kind_takes_the_ordinary_thresholds(tmp_path, kind):
    """The same three reports from a buyer of any other kind (or none published) cross 400 000."""
    fixture = special_variant(tmp_path, f"kind-{kind}", kind=kind)
    found = flags(fixture.parent, SPLIT, fixture)
    assert len(found) == 3
    assert {(f["evidence"]["threshold"], f["evidence"]["window_total"]) for f in found.values()} == {(400_000, 910_000)}


def test_a_buyer_not_obliged_to_tender_is_not_judged(tmp_path):
    """Kind other (a buyer outside Law 922's procedures) may buy directly at any value: the same three reports
    raise nothing, unless the exemption is lifted."""
    fixture = special_variant(tmp_path, "kind-other", kind="other")
    assert flags(fixture.parent, SPLIT, fixture) == {}
    assert len(flags(fresh(tmp_path, "not-exempt"), SPLIT, fixture, params={"exempt_buyer_kinds": []})) == 3


def test_a_special_buyer_is_judged_against_its_own_works_threshold(tmp_path):
    """Laying water mains, 1.4 + 1.3 + 1.2 million UAH in 21 days: over the ordinary 1 500 000 for works,
    below a special buyer's 5 000 000; at 1.9 + 1.8 + 1.7 million the window crosses that too."""
    amounts = [1_400_000, 1_300_000, 1_200_000]
    special = special_variant(tmp_path, "special-works", amounts=amounts, works=True)
    assert flags(special.parent, SPLIT, special) == {}
    general = special_variant(tmp_path, "general-works", kind="general", amounts=amounts, works=True)
    found = flags(general.parent, SPLIT, general)
    assert len(found) == 3
    assert {(f["evidence"]["threshold"], f["evidence"]["cpv_class"]) for f in found.values()} == {(1_500_000, "4523")}
    larger = special_variant(tmp_path, "special-works-larger", amounts=[1_900_000, 1_800_000, 1_700_000], works=True)
    found = flags(larger.parent, SPLIT, larger)
    assert len(found) == 3
    assert {(f["evidence"]["threshold"], f["evidence"]["window_total"]) for f in found.values()} == {(5_000_000, 5_400_000)}


def test_the_special_kinds_and_thresholds_are_parameters(tmp_path):
    assert len(flags(fresh(tmp_path, "no-special-kinds"), SPLIT, SPECIAL_BUYER,
                     params={"special_buyer_kinds": []})) == 3
    found = flags(fresh(tmp_path, "lower-special-threshold"), SPLIT, SPECIAL_BUYER,
                  params={"threshold_goods_services_special_uah": 900_000})
    assert {f["evidence"]["threshold"] for f in found.values()} == {900_000} and len(found) == 3


@pytest.mark.parametrize(("kind", "fires"), [("special", True), ("general", True), ("defense", False)])
def test_the_official_indicator_does_not_distinguish_special_buyers(tmp_path, kind, fires):
    """sas24-3-14-1 reproduces prozorro-risks: 400 000 for every one of its five kinds, special included
    (kind defense is not among them). The year's 910 000 of pipes (subject 4416) is flagged at the second
    and third report."""
    fixture = special_variant(tmp_path, f"sas-{kind}", kind=kind)
    found = flags(fixture.parent, SAS_3_14_1, fixture)
    if not fires:
        assert found == {}
        return
    assert sorted(found) == [ocid("UA-2025-10-14-014201-a"), ocid("UA-2025-10-27-014202-a")]
    assert found[ocid("UA-2025-10-27-014202-a")]["evidence"]["year_total"] == 910_000


# --- how a report with items in two classes counts ----------------------------------------------------

def test_a_report_with_items_in_two_classes_counts_in_each_class_its_items_value(tmp_path):
    """The hospital's first report: dressings (3314) 60 000 and antiseptics (3363) 240 000, one contract of
    300 000. Counted whole in each class it made 480 000 of dressings and 450 000 of antiseptics with the
    later reports; by its items it is 240 000 and 390 000, both below 400 000. At a threshold of 380 000
    only the antiseptics window is flagged, with the report's 240 000 in it."""
    assert flags(fresh(tmp_path, "default"), SPLIT, TWO_CLASSES) == {}
    found = flags(fresh(tmp_path, "at-380k"), SPLIT, TWO_CLASSES, params={"threshold_goods_services_uah": 380_000})
    assert sorted(found) == [ocid("UA-2025-09-02-015300-a"), ocid("UA-2025-09-25-015302-a")]
    evidence = found[ocid("UA-2025-09-02-015300-a")]["evidence"]
    assert evidence["cpv_class"] == "3363" and evidence["window_total"] == 390_000
    assert found[ocid("UA-2025-09-02-015300-a")]["value"] == 390_000
    assert [(c["tender_public_id"], c["value_amount"], c["amount_in_class"]) for c in evidence["window_contracts"]] == [
        ("UA-2025-09-02-015300-a", 300_000, 240_000), ("UA-2025-09-25-015302-a", 150_000, 150_000)]


def test_without_unit_prices_a_report_is_shared_out_by_its_number_of_items(tmp_path):
    """The first report with a second dressing item and no unit prices: two items of three are dressings, so
    200 000 of its 300 000 count for 3314 (with the later 180 000: 380 000) and 100 000 for 3363 (250 000).
    One item without a price is enough to fall back on the number of items."""
    docs = read_lines(TWO_CLASSES)
    first = docs[0]["data"]
    extra = copy.deepcopy(first["items"][0])
    extra["id"] = "7c1e0f3a9b2d4c5e8f6a1b2c3d4e5f60"
    extra["description"] = "Бинт еластичний медичний 10 см × 5 м"
    first["items"].append(extra)
    for item in first["items"]:
        item["unit"].pop("value")
    unpriced = write(fresh(tmp_path, "unpriced"), "unpriced.jsonl", docs)
    found = flags(unpriced.parent, SPLIT, unpriced, params={"threshold_goods_services_uah": 350_000})
    assert sorted(found) == [ocid("UA-2025-09-02-015300-a"), ocid("UA-2025-09-16-015301-a")]
    evidence = found[ocid("UA-2025-09-16-015301-a")]["evidence"]
    assert evidence["cpv_class"] == "3314" and evidence["window_total"] == 380_000
    assert [c["amount_in_class"] for c in evidence["window_contracts"]] == [200_000, 180_000]

    docs = read_lines(TWO_CLASSES)
    docs[0]["data"]["items"][1]["unit"].pop("value")  # the antiseptic without a price: half each, 150 000
    partly = write(fresh(tmp_path, "partly-priced"), "partly.jsonl", docs)
    found = flags(partly.parent, SPLIT, partly, params={"threshold_goods_services_uah": 320_000})
    assert sorted(found) == [ocid("UA-2025-09-02-015300-a"), ocid("UA-2025-09-16-015301-a")]
    evidence = found[ocid("UA-2025-09-02-015300-a")]["evidence"]
    assert evidence["cpv_class"] == "3314" and evidence["window_total"] == 330_000


def test_a_report_in_one_class_still_counts_whole(tmp_path):
    """The classes' parts only matter with two classes: a one-class report counts its whole contract, priced
    items or not."""
    docs = read_lines(FIXTURES / "anomaly-split-purchases-within-30-days.jsonl")
    for document in docs:
        for item in document["data"]["items"]:
            item["unit"].pop("value")
    fixture = write(fresh(tmp_path, "one-class"), "one-class.jsonl", docs)
    found = flags(fixture.parent, SPLIT, fixture)
    assert len(found) == 3
    evidence = next(iter(found.values()))["evidence"]
    assert evidence["window_total"] == 450_000
    assert [(c["value_amount"], c["amount_in_class"]) for c in evidence["window_contracts"]] == [
        (180_000, 180_000), (150_000, 150_000), (120_000, 120_000)]
