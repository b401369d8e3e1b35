"""The ProZorro risk-indicator rules (rules/flags/prozorro-*.yaml) and the analysts' anomaly rules
(rules/flags/anomaly-*.yaml): every example of every rule, then the evidence an analyst reads.

Examples run exactly as ``monitor rules test`` runs them (``run_examples``: each fixture loaded alone
into a scratch database, classified, evaluated). The evidence tests load one fixture, evaluate one
rule and check the figures the flag carries (percentages, sums, dates, the ids to open on
prozorro.gov.ua), plus a few variations of a fixture that must change the outcome.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import RULE_FIXTURES as FIXTURES
from conftest import RULES_DIR as RULES
from conftest import rule_flags as flags
from conftest import only

from monitor.flags.rules import load_rules

RULE_FILES = sorted([*RULES.glob("prozorro-*.yaml"), *RULES.glob("anomaly-*.yaml")])




def envelope(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_variant(tmp_path: Path, name: str, document: dict) -> Path:
    target = tmp_path / name
    target.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return target


def kyiv_iso(moment: datetime) -> str:
    return moment.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="seconds")


# --- every example of every rule ------------------------------------------------------------------

def test_the_rule_files_are_all_here():
    ids = {path.stem for path in RULE_FILES}
    for indicator in ("sas24-3-1-", "sas24-3-2-", "sas24-3-2-1-", "sas24-3-4-", "sas24-3-5-", "sas24-3-7-",
                      "sas24-3-9-", "sas24-3-10-", "sas24-3-11-1-", "sas24-3-11-2-", "sas24-3-13-", "sas24-3-14-1-",
                      "sas24-3-14-2-", "sas24-3-15-", "ari-1-1-", "ari-1-2-"):
        assert any(i.startswith(f"prozorro-{indicator}") for i in ids), indicator
    for anomaly in ("contract-value-increase", "award-above-expected-value", "split-purchases-below-threshold",
                    "winner-not-lowest-bid", "supplier-dominates-buyer-spend", "contract-signed-before-standstill-end"):
        assert f"anomaly-{anomaly}" in ids


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_rule_is_valid_and_documents_its_indicator(path: Path):
    loaded = load_rules(path)[0]
    assert loaded.kind == "anomaly" and loaded.description and loaded.falsepositives
    kinds = {"flagged" if "flagged" in e else "not_flagged" for e in loaded.examples}
    assert kinds == {"flagged", "not_flagged"}, "each rule needs a fixture that fires and one that does not"
    if loaded.id.startswith("prozorro-"):
        indicator = loaded.id.removeprefix("prozorro-")
        # the indicator first, exactly once; then, optionally, the legal texts it cites
        assert indicator.startswith(loaded.references[0].removeprefix("prozorro-risks "))
        assert sum(r.startswith("prozorro-risks ") for r in loaded.references) == 1
    for name, value in loaded.params.items():  # money thresholds are plain numbers, in UAH
        if name.endswith("_uah"):
            assert isinstance(value, int) and value > 0, name


# Every example of these rules runs in tests/test_rule_examples.py (all rules), not again here.


def test_contract_value_increase_reports_the_total_rise_over_the_award(tmp_path):
    flag = only(flags(tmp_path, "anomaly-contract-value-increase", FIXTURES / "anomaly-contract-value-increase-total.jsonl"))
    contract = flag["evidence"]["contracts"][0]
    assert contract["award_value"] == 1_172_000 and contract["contract_value"] == 1_359_520
    assert contract["total_increase_pct"] == pytest.approx(16.0)
    assert flag["value"] == pytest.approx(16.0)
    assert contract["amendments"] == 2 and contract["price_amendments"] == 2
    assert contract["contract_public_id"] == "UA-2025-03-17-002884-a-a1"


def test_contract_value_increase_reports_the_unit_price_rise_when_the_total_did_not_grow(tmp_path):
    flag = only(flags(tmp_path, "anomaly-contract-value-increase",
                      FIXTURES / "anomaly-contract-value-increase-unit-price.jsonl"))
    evidence = flag["evidence"]
    assert evidence["total_increase_pct"] == pytest.approx(-0.07)
    assert evidence["unit_increase_pct"] == pytest.approx(13.56)  # 5.90 -> 6.70 UAH a pair
    item = evidence["contracts"][0]["most_raised_item"]
    assert (item["tender_unit_price"], item["contract_unit_price"]) == (5.9, 6.7)
    assert (item["tender_quantity"], item["contract_quantity"]) == (60000, 52800)


def test_contract_value_increase_counts_the_amendments_of_an_ocds_contract(tmp_path):
    """An OCDS amendment records a change made: it is in force (stored with no status, no OCDS
    contract was ever "amended" for the rule)."""
    ocid = "ocds-r9p1qf-0f3c9a71-2025-1187"
    release = {
        "ocid": ocid, "id": f"{ocid}-compiled", "date": "2025-09-30T12:00:00+06:00", "tag": ["compiled"],
        "initiationType": "tender",
        "parties": [{"id": "KG-INN-01512200910117", "name": "Бишкек шаарынын социалдык өнүктүрүү башкармалыгы",
                     "roles": ["buyer", "procuringEntity"]},
                    {"id": "KG-INN-02406201510239", "name": "ОсОО «Мээрим-Сервис»", "roles": ["supplier"]}],
        "buyer": {"id": "KG-INN-01512200910117", "name": "Бишкек шаарынын социалдык өнүктүрүү башкармалыгы"},
        "tender": {"id": "1187", "title": "Кызмат көрсөтүү: карыларды үйдө багуу", "status": "complete",
                   "procurementMethod": "open", "mainProcurementCategory": "services",
                   "value": {"amount": 110000, "currency": "KGS"},
                   "items": [{"id": "1", "description": "Карыларды үйдө багуу кызматы",
                              "classification": {"scheme": "CPV", "id": "85311000-2"}}]},
        "awards": [{"id": "a1", "status": "active", "date": "2025-03-03T10:00:00+06:00",
                    "value": {"amount": 100000, "currency": "KGS"},
                    "suppliers": [{"id": "KG-INN-02406201510239", "name": "ОсОО «Мээрим-Сервис»"}]}],
        "contracts": [{"id": "c1", "awardID": "a1", "status": "active", "dateSigned": "2025-03-10T10:00:00+06:00",
                       "value": {"amount": 150000, "currency": "KGS"},
                       "amendments": [{"id": "am1", "date": "2025-09-01T10:00:00+06:00",
                                       "rationale": "Кызмат алуучулардын санынын көбөйүшү"}]}],
    }
    path = tmp_path / "kg.json"
    path.write_text(json.dumps({"uri": "https://example.org/kg.json", "publishedDate": "2025-09-30T12:00:00+06:00",
                                "version": "1.1", "releases": [release]}, ensure_ascii=False), encoding="utf-8")
    flag = only(flags(tmp_path, "anomaly-contract-value-increase", path))
    assert flag["ocid"] == ocid and flag["value"] == 50.0
    assert flag["evidence"]["contracts"][0]["amendments"] == 1


def test_contract_value_increase_threshold_is_a_parameter(tmp_path):
    fixture = FIXTURES / "anomaly-contract-value-increase-total.jsonl"
    assert flags(tmp_path, "anomaly-contract-value-increase", fixture, params={"max_increase_pct": 20}) == {}


def test_split_purchases_flags_every_contract_of_the_window(tmp_path):
    found = flags(tmp_path, "anomaly-split-purchases-below-threshold",
                  FIXTURES / "anomaly-split-purchases-within-30-days.jsonl")
    assert sorted(found) == ["ocds-be6bcu-UA-2025-09-02-012100-a", "ocds-be6bcu-UA-2025-09-15-012101-a",
                             "ocds-be6bcu-UA-2025-09-29-012102-a"]
    evidence = found["ocds-be6bcu-UA-2025-09-15-012101-a"]["evidence"]
    assert evidence["cpv_class"] == "3319" and evidence["threshold"] == 400_000
    assert evidence["contracts_in_window"] == 3 and evidence["window_total"] == 450_000
    assert [c["value_amount"] for c in evidence["window_contracts"]] == [180_000, 150_000, 120_000]


def test_split_purchases_threshold_is_a_parameter(tmp_path):
    fixture = FIXTURES / "anomaly-split-purchases-within-30-days.jsonl"
    assert flags(tmp_path, "anomaly-split-purchases-below-threshold", fixture,
                 params={"threshold_goods_services_uah": 500_000}) == {}


def test_split_purchases_takes_the_works_threshold_for_construction_when_the_category_is_not_published(tmp_path):
    """Older reports have no mainProcurementCategory: the three contracts (450 000 UAH together) as
    repair works (ДК021 45...) stay below the works threshold; as goods without a category they cross
    the goods threshold."""
    source = FIXTURES / "anomaly-split-purchases-within-30-days.jsonl"
    for name, cpv, fires in (("works", "45453000-7", False), ("goods", "33196200-2", True)):
        documents = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
        for document in documents:
            document["data"].pop("mainProcurementCategory")
            for item in document["data"]["items"]:
                item["classification"]["id"] = cpv
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents), encoding="utf-8")
        found = flags(fresh(tmp_path, name), "anomaly-split-purchases-below-threshold", path)
        assert len(found) == (3 if fires else 0), name


def split_variant(tmp_path: Path, values: list[float], dates: list[str]) -> Path:
    """The three direct contracts of the split-purchase fixture, without a contractID, with these values and
    creation dates (the contract date when dateSigned is absent)."""
    source = FIXTURES / "anomaly-split-purchases-within-30-days.jsonl"
    lines = []
    for line, value, date in zip(source.read_text(encoding="utf-8").splitlines(), values, dates, strict=True):
        document = json.loads(line)
        tender = document["data"]
        tender["value"]["amount"] = value
        tender["dateCreated"] = tender["date"] = tender["dateModified"] = date
        for contract in tender["contracts"]:
            contract.pop("contractID", None)
            contract["value"]["amount"] = value
        lines.append(json.dumps(document, ensure_ascii=False))
    target = tmp_path / "split-variant.jsonl"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_split_purchases_counts_each_contract_once_when_contracts_share_a_date_and_have_no_id(tmp_path):
    """Two contracts without a contractID signed the same day are two contracts, not one window counted twice:
    180,000 + 150,000 + 60,000 stays below 400,000."""
    same_day = ["2025-09-02T10:00:00+03:00", "2025-09-02T10:00:00+03:00", "2025-09-20T10:00:00+03:00"]
    fixture = split_variant(tmp_path, [180_000, 150_000, 60_000], same_day)
    assert flags(tmp_path, "anomaly-split-purchases-below-threshold", fixture) == {}
    found = flags(tmp_path, "anomaly-split-purchases-below-threshold", fixture,
                  params={"threshold_goods_services_uah": 380_000})
    assert len(found) == 3
    for flag in found.values():
        assert flag["evidence"]["contracts_in_window"] == 3 and flag["evidence"]["window_total"] == 390_000
        listed = [c["value_amount"] for c in flag["evidence"]["window_contracts"]]
        assert listed == [180_000, 150_000, 60_000]  # by date, then (the same day) by tender id


def test_split_purchases_lists_the_first_contracts_of_a_window_and_counts_them_all(tmp_path):
    fixture = FIXTURES / "anomaly-split-purchases-within-30-days.jsonl"
    found = flags(tmp_path, "anomaly-split-purchases-below-threshold", fixture, params={"max_listed_contracts": 2})
    evidence = found["ocds-be6bcu-UA-2025-09-29-012102-a"]["evidence"]
    assert evidence["contracts_in_window"] == 3 and evidence["window_total"] == 450_000
    assert [c["value_amount"] for c in evidence["window_contracts"]] == [180_000, 150_000]
    unlisted = flags(tmp_path, "anomaly-split-purchases-below-threshold", fixture, params={"max_listed_contracts": 0})
    assert sorted(unlisted) == sorted(found)  # still flagged, only without the list
    assert all(f["evidence"]["window_contracts"] == [] and f["evidence"]["contracts_in_window"] == 3
               for f in unlisted.values())


def test_winner_not_lowest_reports_the_skipped_bids_and_the_premium(tmp_path):
    lot = only(flags(tmp_path, "anomaly-winner-not-lowest-bid",
                     FIXTURES / "anomaly-winner-not-lowest-skipped.json"))["evidence"]["lots"][0]
    assert lot["winning_value"] == 529_200 and lot["lowest_valid_value"] == 486_000
    assert lot["overpaid"] == 43_200 and lot["premium_pct"] == pytest.approx(8.89)
    assert [b["value_amount"] for b in lot["cheaper_valid_bids"]] == [486_000, 502_200]


def test_supplier_dominance_is_per_buyer_and_supplier(tmp_path):
    found = flags(tmp_path, "anomaly-supplier-dominates-buyer-spend", FIXTURES / "anomaly-supplier-dominates-medicines.jsonl")
    flag = found["UA-EDR-41823906/UA-EDR-35571209"]
    assert flag["ocid"] is None
    medicines = next(d for d in flag["evidence"]["dominated"] if d["category"] == "health.medicines")
    assert medicines["year"] == 2025 and medicines["supplier_total"] == 970_000
    assert medicines["category_total"] == 1_060_000 and medicines["share_pct"] == pytest.approx(91.51)
    assert len(medicines["tenders"]) == medicines["supplier_tenders"] > 1
    # a captive supplier may win hundreds of tenders a year: the list is capped, the count is not
    capped = flags(tmp_path / "capped", "anomaly-supplier-dominates-buyer-spend",
                   FIXTURES / "anomaly-supplier-dominates-medicines.jsonl", params={"max_listed_tenders": 1})
    capped_medicines = next(d for d in capped["UA-EDR-41823906/UA-EDR-35571209"]["evidence"]["dominated"]
                            if d["category"] == "health.medicines")
    assert capped_medicines["tenders"] == sorted(medicines["tenders"])[:1]
    assert capped_medicines["supplier_tenders"] == medicines["supplier_tenders"]


STANDSTILL = "anomaly-contract-signed-before-standstill-end"


def standstill_variant(tmp_path: Path, name: str, method: str | None = None, period_end: str | None = None,
                       drop_period: bool = False) -> Path:
    """The fixture's tender (award 2025-04-10 15:45, complaint period to 04-20 15:45) and its contract
    (signed 04-14 11:00), with another procedure type or complaint period."""
    tender, contract = [json.loads(line) for line in
                        (FIXTURES / "anomaly-contract-signed-during-standstill.jsonl").read_text(encoding="utf-8").splitlines()]
    award = tender["data"]["awards"][0]
    if method:
        tender["data"]["procurementMethodType"] = method
    if period_end:
        award["complaintPeriod"]["endDate"] = period_end
    if drop_period:
        del award["complaintPeriod"]
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in (tender, contract)), encoding="utf-8")
    return path


def test_standstill_uses_the_published_complaint_period_and_days_after_award(tmp_path):
    contract = only(flags(tmp_path, STANDSTILL, FIXTURES / "anomaly-contract-signed-during-standstill.jsonl")
                    )["evidence"]["contracts"][0]
    assert (contract["period_end_source"], contract["complaint_period_end"]) == ("published", "2025-04-20 12:45:00+00")
    assert contract["standstill_days"] is None and contract["days_after_award"] == 4


def test_standstill_published_period_beats_the_estimate_both_ways(tmp_path):
    """A period that ended before the signature (here shortened to 3 days) is no breach, though the
    10-day estimate says so; a defence procedure, which the estimate does not know, is checked on its own period."""
    assert flags(fresh(tmp_path, "short"), STANDSTILL,
                 standstill_variant(tmp_path, "short", period_end="2025-04-13T23:59:59+03:00")) == {}
    defence = only(flags(fresh(tmp_path, "defence"), STANDSTILL,
                         standstill_variant(tmp_path, "defence", method="simple.defense")))
    assert defence["evidence"]["contracts"][0]["period_end_source"] == "published"
    assert flags(fresh(tmp_path, "defence-none"), STANDSTILL,
                 standstill_variant(tmp_path, "defence-none", method="simple.defense", drop_period=True)) == {}


def test_standstill_estimate_when_the_award_publishes_no_period(tmp_path):
    contract = only(flags(tmp_path, STANDSTILL, standstill_variant(tmp_path, "none", drop_period=True))
                    )["evidence"]["contracts"][0]
    assert (contract["period_end_source"], contract["standstill_days"], contract["estimated_period_end"]) == (
        "estimated", 10, "2025-04-20")
    assert contract["days_after_award"] == 4


def test_award_above_expected_value_reports_the_excess(tmp_path):
    award = only(flags(tmp_path, "anomaly-award-above-expected-value",
                       FIXTURES / "anomaly-award-above-expected-value.json"))["evidence"]["awards"][0]
    assert award["expected_value"] == 836_000 and award["award_value"] == 912_000
    assert award["excess"] == 76_000 and award["excess_pct"] == pytest.approx(9.09)


def test_sas24_3_2_counts_disqualifications_per_lot(tmp_path):
    flag = only(flags(tmp_path, "prozorro-sas24-3-2-rejected-bidders-goods-services",
                      FIXTURES / "prozorro-sas24-3-2-two-rejected-on-a-lot.json"))
    lots = flag["evidence"]["lots"]
    assert len(lots) == 1 and lots[0]["lot_title"] == "Лот 1. Інсулін людський"
    assert lots[0]["disqualified_suppliers"] == ["UA-EDR-42039561", "UA-EDR-43512874"]
    assert flag["evidence"]["tender_public_id"] == "UA-2025-03-20-004118-a"


def test_sas24_3_2_ignores_a_cancelled_lot_and_a_winner_named_less_than_5_days_ago(tmp_path):
    source = FIXTURES / "prozorro-sas24-3-2-two-rejected-on-a-lot.json"
    cancelled = envelope(source)
    cancelled["data"]["lots"][0]["status"] = "cancelled"
    assert flags(tmp_path, "prozorro-sas24-3-2-rejected-bidders-goods-services",
                 write_variant(tmp_path, "cancelled-lot.json", cancelled)) == {}
    recent = envelope(source)
    lot_id = recent["data"]["lots"][0]["id"]
    for award in recent["data"]["awards"]:
        if award["status"] == "active" and award["lotID"] == lot_id:
            award["date"] = kyiv_iso(datetime.now(timezone.utc) - timedelta(days=2))
    assert flags(tmp_path, "prozorro-sas24-3-2-rejected-bidders-goods-services",
                 write_variant(tmp_path, "recent-winner.json", recent)) == {}


def test_sas24_3_4_counts_decree_1178_price_changes_only_when_asked(tmp_path):
    document = [json.loads(line) for line in
                (FIXTURES / "prozorro-sas24-3-4-price-rise-and-extension.jsonl").read_text(encoding="utf-8").splitlines()]
    contract = document[1]["data"]
    for change in contract["changes"]:
        change["rationaleTypes"] = ["itemPriceChange" if t == "itemPriceVariation" else t for t in change["rationaleTypes"]]
    variant = tmp_path / "decree-1178.jsonl"
    variant.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in document) + "\n", encoding="utf-8")
    rule_id = "prozorro-sas24-3-4-price-rise-and-term-change"
    assert flags(tmp_path, rule_id, variant) == {}
    flag = only(flags(tmp_path, rule_id, variant, params={"price_rationale_types": ["itemPriceVariation", "itemPriceChange"]}))
    assert flag["evidence"]["contracts"][0]["rationale_types"] == ["fiscalYearExtension", "itemPriceChange"]


def test_sas24_3_7_duration_in_kyiv_calendar_days(tmp_path):
    flag = only(flags(tmp_path, "prozorro-sas24-3-7-short-works-contract",
                      FIXTURES / "prozorro-sas24-3-7-works-contract-50-days.jsonl"))
    assert flag["value"] == 50 and flag["evidence"]["contracts"][0]["duration_days"] == 50


def test_sas24_3_7_counts_from_the_tenders_copy_of_the_contract_not_from_signing(tmp_path):
    """The official code counts from the date of the contract's copy in its tender (contracts[].date, when it
    was activated and published), not from dateSigned: signed 30 June, published 4 July, due 30 August is
    57 days (flagged), though 61 days from signing."""
    rule_id = "prozorro-sas24-3-7-short-works-contract"
    fixture = FIXTURES / "prozorro-sas24-3-7-contract-published-days-after-signing.jsonl"
    flag = only(flags(fresh(tmp_path, "published-late"), rule_id, fixture))
    contract = flag["evidence"]["contracts"][0]
    assert flag["value"] == 57 and contract["duration_days"] == 57
    assert contract["tender_contract_date"].startswith("2025-07-04") and contract["date_signed"].startswith("2025-06-30")
    tender, contract_object = [json.loads(line) for line in fixture.read_text(encoding="utf-8").splitlines()]
    # published the day it was signed: 61 days, not flagged
    same_day = copy.deepcopy(tender)
    same_day["data"]["contracts"][0]["date"] = "2025-06-30T17:05:00+03:00"
    variant = tmp_path / "published-same-day.jsonl"
    variant.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in (same_day, contract_object)),
                       encoding="utf-8")
    assert flags(fresh(tmp_path, "same-day"), rule_id, variant) == {}
    # a contract its tender does not list: the official loop finds no copy and no risk
    unlisted = copy.deepcopy(tender)
    unlisted["data"]["contracts"] = []
    variant = tmp_path / "unlisted.jsonl"
    variant.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in (unlisted, contract_object)),
                       encoding="utf-8")
    assert flags(fresh(tmp_path, "unlisted"), rule_id, variant) == {}


def test_sas24_3_11_1_lists_the_same_title_tender_that_does_not_justify_the_report(tmp_path):
    evidence = only(flags(tmp_path, "prozorro-sas24-3-11-1-direct-contract-without-failed-tender",
                          FIXTURES / "prozorro-sas24-3-11-1-no-matching-failed-tender.jsonl"))["evidence"]
    assert evidence["subject_of_procurement"] == "8531" and evidence["cause"] == "openUnsuccessful"
    assert [(t["tender_public_id"], t["value_amount"]) for t in evidence["same_title_open_tenders"]] == [
        ("UA-2025-03-24-004101-a", 450_000)]


SAS_3_11_1 = "prozorro-sas24-3-11-1-direct-contract-without-failed-tender"


def sas_3_11_1_variant(tmp_path: Path, name: str, **open_tender: Any) -> Path:
    """The justified example with the open tender's status or tenderPeriod.startDate changed."""
    fixture = FIXTURES / "prozorro-sas24-3-11-1-failed-tender-matches.jsonl"
    earlier, report = [json.loads(line) for line in fixture.read_text(encoding="utf-8").splitlines()]
    if "status" in open_tender:
        earlier["data"]["status"] = open_tender["status"]
    if "start" in open_tender:
        earlier["data"]["tenderPeriod"]["startDate"] = open_tender["start"]
    target = tmp_path / f"{name}.jsonl"
    target.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in (earlier, report)), encoding="utf-8")
    return target


def test_sas24_3_11_1_only_an_unsuccessful_open_tender_justifies_the_report(tmp_path):
    """The official code looks for open tenders in status unsuccessful only: a cancelled one (the buyer
    called it off) does not make a direct contract on the openUnsuccessful ground legitimate."""
    found = flags(fresh(tmp_path, "cancelled"), SAS_3_11_1,
                  FIXTURES / "prozorro-sas24-3-11-1-only-a-cancelled-tender.jsonl")
    assert ocids(found) == ["ocds-be6bcu-UA-2025-04-14-006942-a"]
    assert only(found)["evidence"]["same_title_open_tenders"] == []
    for status, fires in (("unsuccessful", False), ("cancelled", True), ("complete", True), ("active.tendering", True)):
        variant = sas_3_11_1_variant(tmp_path, status, status=status)
        assert bool(flags(fresh(tmp_path, f"status-{status}"), SAS_3_11_1, variant)) == fires, status


def test_sas24_3_11_1_window_opens_at_the_kyiv_midnight_365_days_before_the_report(tmp_path):
    """Report created 2025-04-14 11:30 Kyiv: the official window is [2024-04-14 00:00 Kyiv, 2025-04-14 11:30),
    the end excluded."""
    for start, fires in (("2024-04-14T00:00:00+03:00", False),   # the window's first instant
                         ("2024-04-14T09:00:00+03:00", False),   # less than 365 x 24 h before, same Kyiv day
                         ("2024-04-13T23:59:00+03:00", True),    # the day before
                         ("2025-04-14T11:29:00+03:00", False),
                         ("2025-04-14T11:30:00+03:00", True)):   # at the report's dateCreated: not before it
        variant = sas_3_11_1_variant(tmp_path, start[:16].replace(":", ""), start=start)
        assert bool(flags(fresh(tmp_path, start[:16].replace(":", "")), SAS_3_11_1, variant)) == fires, start


def test_sas24_3_14_1_sums_the_years_earlier_reports_and_this_contract(tmp_path):
    flag = only(flags(tmp_path, "prozorro-sas24-3-14-1-direct-contracts-over-threshold-goods-services",
                      FIXTURES / "prozorro-sas24-3-14-1-three-direct-contracts.jsonl"))
    evidence = flag["evidence"]
    assert evidence["subject_of_procurement"] == "3314" and evidence["budget_year"] == 2025
    assert evidence["earlier_reports"] == ["UA-2025-02-12-008100-a", "UA-2025-05-20-008101-a"]
    assert evidence["earlier_reports_value"] == 305_000 and evidence["contracts_value"] == 118_000
    assert flag["value"] == evidence["year_total"] == 423_000


def test_sas24_3_13_reads_the_24h_milestone_from_the_stored_tender(tmp_path):
    awards = only(flags(tmp_path, "prozorro-sas24-3-13-24h-in-simplified-procurement",
                        FIXTURES / "prozorro-sas24-3-13-24h-in-simplified.json"))["evidence"]["awards"]
    assert awards == [{"award_id": awards[0]["award_id"], "lot_id": None, "award_status": "active",
                       "supplier_name": "ПП «Аптечний склад «Ворскла»»", "milestone_date": "2025-06-25T10:12:00+03:00"}]


def test_sas24_3_13_reads_the_milestones_of_the_tender_that_gave_the_process(tmp_path):
    """Another stored ProZorro tender object with the same tenderID (an older copy, here with the 24h
    request) does not speak for the process: the newer one, which gave it, has no milestone."""
    older = envelope(FIXTURES / "prozorro-sas24-3-13-24h-in-simplified.json")
    newer = copy.deepcopy(older)
    newer["data"].update(id="71e7a219e185fc085cbf380ba5ac8f56", dateModified="2025-07-04T10:00:00+03:00")
    for award in newer["data"]["awards"]:
        award.pop("milestones", None)
    found = flags(tmp_path, "prozorro-sas24-3-13-24h-in-simplified-procurement",
                  write_variant(tmp_path, "older.json", older), write_variant(tmp_path, "newer.json", newer))
    assert found == {}


def test_sas24_3_9_needs_a_complaint_on_the_earlier_award(tmp_path):
    document = envelope(FIXTURES / "prozorro-sas24-3-9-same-bid-wins-again.json")
    for award in document["data"]["awards"]:
        award.pop("complaints", None)
    assert flags(tmp_path, "prozorro-sas24-3-9-winner-again-after-complaint",
                 write_variant(tmp_path, "no-complaint.json", document)) == {}


# A complaint counts only when it went to the review body (type "complaint", not a claim to the buyer)
# and the review body upheld it: declined, invalid or pending complaints and answered claims are common
# on ProZorro and are no sign of a buyer defying the AMCU. Each variant changes the fixture's one complaint.
NOT_UPHELD = (("claim", {"type": "claim", "status": "answered"}), ("declined", {"status": "declined"}),
              ("invalid", {"status": "invalid"}), ("pending", {"status": "pending"}))


@pytest.mark.parametrize(("rule_id", "fixture", "upheld"), [
    ("prozorro-sas24-3-9-winner-again-after-complaint", "prozorro-sas24-3-9-same-bid-wins-again.json",
     ("satisfied", "resolved")),
    ("prozorro-sas24-3-15-rejected-bidders-with-complaint", "prozorro-sas24-3-15-rejected-with-complaint.json",
     ("resolved",)),
])
def test_award_complaint_rules_need_a_complaint_the_review_body_upheld(tmp_path, rule_id, fixture, upheld):
    source = envelope(FIXTURES / fixture)
    [(award_index, complaint_index)] = [(i, j) for i, award in enumerate(source["data"]["awards"])
                                        for j, _ in enumerate(award.get("complaints", []))]
    variants = [*NOT_UPHELD, *((status, {"status": status}) for status in upheld)]
    for name, change in variants:
        variant = copy.deepcopy(source)
        variant["data"]["awards"][award_index]["complaints"][complaint_index].update(change)
        found = flags(fresh(tmp_path, name), rule_id, write_variant(tmp_path, f"{name}.json", variant))
        assert bool(found) == (name in upheld), name
    evidence = only(found)["evidence"]
    complaint_id = source["data"]["awards"][award_index]["complaints"][complaint_index]["complaintID"]
    listed = (evidence["awards"][0]["challenged_award_complaints"] if "awards" in evidence
              else evidence["lots"][0]["complaints"])
    assert listed == [complaint_id]


def test_sas24_3_11_2_needs_an_upheld_complaint_on_the_open_tender(tmp_path):
    rule_id = "prozorro-sas24-3-11-2-direct-contract-during-complaint"
    documents = [json.loads(line) for line in (FIXTURES / "prozorro-sas24-3-11-2-open-tender-under-complaint.jsonl")
                 .read_text(encoding="utf-8").splitlines() if line.strip()]
    for name, change in (*NOT_UPHELD, ("satisfied", {"status": "satisfied"})):
        variant = copy.deepcopy(documents)
        variant[0]["data"]["complaints"][0].update(change)
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in variant), encoding="utf-8")
        found = flags(fresh(tmp_path, name), rule_id, path)
        assert bool(found) == (name == "satisfied"), name
    assert [t["upheld_complaints"] for t in only(found)["evidence"]["open_tenders_under_complaint"]] == [1]


def test_sas24_3_5_skips_rejections_after_a_24_hour_request_as_the_official_code_does(tmp_path):
    """The 24-hour check is made once for the tender: with one rejection lacking the request, every
    unsuccessful award of the lot counts; with both requested, nothing fires."""
    rule_id = "prozorro-sas24-3-5-rejected-bidders-without-24h"
    requested = envelope(FIXTURES / "prozorro-sas24-3-5-two-rejected-after-24h.json")
    assert flags(fresh(tmp_path, "both"), rule_id, FIXTURES / "prozorro-sas24-3-5-two-rejected-after-24h.json") == {}
    one = copy.deepcopy(requested)
    del one["data"]["awards"][1]["milestones"]
    lots = only(flags(fresh(tmp_path, "one"), rule_id, write_variant(tmp_path, "one.json", one)))["evidence"]["lots"]
    assert [(lot["rejected_awards"], lot["rejected_awards_without_24h"]) for lot in lots] == [(2, 1)]
    # aboveThresholdEU: bids turned down at pre-qualification with a 24-hour request do not count
    eu = envelope(FIXTURES / "prozorro-sas24-3-5-eu-two-rejected-at-prequalification.json")
    for qualification in eu["data"]["qualifications"]:
        if qualification["status"] == "unsuccessful":
            qualification["milestones"] = [{"id": "0" * 32, "code": "24h", "date": "2025-03-20T10:00:00+02:00",
                                            "dueDate": "2025-03-21T10:00:00+02:00"}]
    assert flags(fresh(tmp_path, "eu"), rule_id, write_variant(tmp_path, "eu.json", eu)) == {}


@pytest.mark.parametrize("rule_id", ["prozorro-sas24-3-5-rejected-bidders-without-24h",
                                     "prozorro-sas24-3-2-1-rejected-bidders-works"])
def test_an_open_tenders_winner_counts_after_5_kyiv_calendar_days_as_the_official_code_counts(tmp_path, rule_id):
    """The winner's award of 2025-06-04 11:00 (Kyiv) counts from 2025-06-10 00:00 Kyiv, not from 06-09 11:00."""
    fixture = FIXTURES / "prozorro-sas24-3-5-two-rejected-awards.json"
    for as_of, fires in (("2025-06-09T23:30:00+03:00", False), ("2025-06-09T21:30:00+00:00", True),
                         ("2025-06-10T00:30:00+03:00", True)):
        found = flags(fresh(tmp_path, as_of[:19].replace(":", "")), rule_id, fixture, params={"as_of": as_of})
        assert bool(found) == fires, as_of


def test_contract_rules_skip_contracts_whose_tender_is_not_loaded(tmp_path):
    lines = (FIXTURES / "prozorro-ari-1-1-three-amendments.jsonl").read_text(encoding="utf-8").splitlines()
    contract_only = tmp_path / "contract-only.jsonl"
    contract_only.write_text(lines[1] + "\n", encoding="utf-8")
    assert flags(tmp_path, "prozorro-ari-1-1-three-or-more-amendments", contract_only) == {}


# --- sas24-3-1 and sas24-3-10: complaints and bid documents ------------------------------------------

AS_OF = "2026-11-20T12:00:00+02:00"  # the clock of their examples and of the demo
SAS_3_1 = "prozorro-sas24-3-1-review-decision-not-implemented"
SAS_3_10 = "prozorro-sas24-3-10-winner-documents-not-published"
SAS_3_1_FIRES = FIXTURES / "prozorro-sas24-3-1-decision-not-implemented.jsonl"
SAS_3_1_QUIET = FIXTURES / "prozorro-sas24-3-1-no-overdue-decision.jsonl"
SAS_3_10_FIRES = FIXTURES / "prozorro-sas24-3-10-winner-documents-late.jsonl"
SAS_3_10_QUIET = FIXTURES / "prozorro-sas24-3-10-winner-documents-in-time.jsonl"
ALL_3_1_3_10 = (SAS_3_1_FIRES, SAS_3_1_QUIET, SAS_3_10_FIRES, SAS_3_10_QUIET)


def tenders(path: Path) -> dict[str, dict]:
    """tenderID -> envelope, of a JSON Lines fixture."""
    documents = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {d["data"]["tenderID"]: d for d in documents}


def fresh(tmp_path: Path, name: str) -> Path:
    """A directory of its own for each database a test builds."""
    directory = tmp_path / name
    directory.mkdir()
    return directory


def ocids(found: dict[str, dict]) -> list[str]:
    return sorted(found)


def test_sas24_3_1_fires_on_upheld_complaints_left_30_days(tmp_path):
    found = flags(tmp_path, SAS_3_1, *ALL_3_1_3_10, params={"as_of": AS_OF})
    assert ocids(found) == ["ocds-be6bcu-UA-2026-07-21-004512-a", "ocds-be6bcu-UA-2026-08-03-007318-a"]
    award = found["ocds-be6bcu-UA-2026-07-21-004512-a"]
    assert award["value"] == 1 and award["evidence"]["buyer_id"] == "UA-EDR-43219087"
    assert award["evidence"]["tender_public_id"] == "UA-2026-07-21-004512-a"
    (complaint,) = award["evidence"]["complaints"]
    # decided 2026-10-06 14:20 Kyiv: 30 days from the next midnight end on 2026-11-06 00:00 Kyiv (+02:00)
    assert complaint == {"complaint_id": "UA-2026-07-21-004512-a.a1", "about": "award",
                         "about_id": complaint["about_id"], "lot_id": None, "status": "satisfied",
                         "date_submitted": "2026-09-02 13:48:00+00", "date_decision": "2026-10-06 11:20:00+00",
                         "deadline": "2026-11-05 22:00:00+00"}
    (prequalification,) = found["ocds-be6bcu-UA-2026-08-03-007318-a"]["evidence"]["complaints"]
    assert prequalification["about"] == "qualification" and prequalification["deadline"] == "2026-10-28 22:00:00+00"


def test_sas24_3_1_clock_counts_from_the_midnight_after_the_decision(tmp_path):
    before = flags(fresh(tmp_path, "before"), SAS_3_1, SAS_3_1_FIRES, params={"as_of": "2026-11-05T23:59:00+02:00"})
    assert ocids(before) == ["ocds-be6bcu-UA-2026-08-03-007318-a"]
    after = flags(fresh(tmp_path, "after"), SAS_3_1, SAS_3_1_FIRES, params={"as_of": "2026-11-06T00:01:00+02:00"})
    assert len(after) == 2
    # decided 20 days before the examples' clock: fires once its 30 days are over, on 2026-12-01
    later = flags(fresh(tmp_path, "later"), SAS_3_1, SAS_3_1_QUIET, params={"as_of": "2026-12-01T00:01:00+02:00"})
    assert ocids(later) == ["ocds-be6bcu-UA-2026-07-28-002207-a"]


def test_sas24_3_1_needs_a_complaint_to_the_review_body_still_satisfied(tmp_path):
    source = tenders(SAS_3_1_FIRES)["UA-2026-07-21-004512-a"]
    for name, change in (("claim", {"type": "claim"}), ("resolved", {"status": "resolved"}),
                         ("declined", {"status": "declined"})):
        variant = copy.deepcopy(source)
        variant["data"]["awards"][0]["complaints"][0].update(change)
        assert flags(fresh(tmp_path, name), SAS_3_1, write_variant(tmp_path, f"{name}.json", variant),
                     params={"as_of": AS_OF}) == {}, name


def test_sas24_3_1_reads_the_first_group_only_and_the_first_180_days(tmp_path):
    # the official code reads only the first group with upheld complaints: qualifications, tender,
    # awards, cancellations; a tender-level complaint upheld 5 days ago hides the overdue award one
    variant = copy.deepcopy(tenders(SAS_3_1_FIRES)["UA-2026-07-21-004512-a"])
    recent = copy.deepcopy(variant["data"]["awards"][0]["complaints"][0])
    recent.update(id="7b1f0c2d3e4a45b6879a0b1c2d3e4f50", complaintID="UA-2026-07-21-004512-a.a2",
                  dateDecision="2026-11-15T12:00:00+02:00")
    variant["data"]["complaints"] = [recent]
    assert flags(fresh(tmp_path, "groups"), SAS_3_1, write_variant(tmp_path, "groups.json", variant),
                 params={"as_of": AS_OF}) == {}
    # created 2026-03-02: the 30 days after the AMCU decision of 2026-08-25 ran out past its 180th day
    assert flags(fresh(tmp_path, "old"), SAS_3_1, SAS_3_1_QUIET, params={"as_of": AS_OF}) == {}
    older = flags(fresh(tmp_path, "older"), SAS_3_1, SAS_3_1_QUIET,
                  params={"as_of": AS_OF, "max_tender_age_days": 365})
    assert ocids(older) == ["ocds-be6bcu-UA-2026-03-02-001774-a"]


def test_sas24_3_10_fires_per_active_award_without_documents_in_4_days(tmp_path):
    found = flags(tmp_path, SAS_3_10, *ALL_3_1_3_10, params={"as_of": AS_OF})
    assert ocids(found) == ["ocds-be6bcu-UA-2026-07-14-005520-b", "ocds-be6bcu-UA-2026-08-10-011406-a"]
    # two lots: the lot 1 winner published its documents two days after the award, the lot 2 winner never
    (lot_2,) = found["ocds-be6bcu-UA-2026-07-14-005520-b"]["evidence"]["awards"]
    assert (lot_2["lot_title"], lot_2["supplier_id"], lot_2["supplier_name"]) == (
        "Лот 2. Термомодернізація фасаду", "UA-EDR-35812047", "ПП «Захід-Буд Інвест»")
    assert lot_2["bid_documents"] == 2 and lot_2["late_documents"] == []
    assert lot_2["complaint_period_end"] == "2026-09-13 21:00:00+00"
    # named winner 2026-09-10 10:30 Kyiv: documents were due before 2026-09-15 00:00 Kyiv; one came on 09-18
    flag = found["ocds-be6bcu-UA-2026-08-10-011406-a"]
    (award,) = flag["evidence"]["awards"]
    assert flag["value"] == 1 and flag["evidence"]["buyer_name"] == "Черкаський обласний геріатричний пансіонат"
    assert (award["award_date"], award["documents_deadline"]) == ("2026-09-10 07:30:00+00", "2026-09-14 21:00:00+00")
    assert award["bid_documents"] == 4 and award["last_document_published"] == "2026-09-18 08:04:37+00"
    assert award["late_documents"] == [{
        "container": "documents", "date_published": "2026-09-18 08:04:37+00",
        "title": "Довідка про відсутність підстав, визначених пунктом 47 Особливостей.pdf"}]


def test_sas24_3_10_window_ends_at_the_midnight_4_days_after_the_award_day(tmp_path):
    source = tenders(SAS_3_10_FIRES)["UA-2026-08-10-011406-a"]
    for name, published, fires in (("in-time", "2026-09-14T23:59:00+03:00", False),
                                   ("at-deadline", "2026-09-15T00:00:00+03:00", True),
                                   ("before-award", "2026-09-10T10:29:00+03:00", True)):
        variant = copy.deepcopy(source)
        late = variant["data"]["bids"][0]["documents"][-1]
        late["datePublished"] = late["dateModified"] = published
        found = flags(fresh(tmp_path, name), SAS_3_10, write_variant(tmp_path, f"{name}.json", variant),
                      params={"as_of": AS_OF})
        assert bool(found) == fires, name


def test_sas24_3_10_gates(tmp_path):
    quiet = tenders(SAS_3_10_QUIET)
    # the EU winner's qualificationDocuments count like the others
    eu = copy.deepcopy(quiet["UA-2026-08-18-003391-a"])
    eu["data"]["bids"][0]["qualificationDocuments"] = []
    assert ocids(flags(fresh(tmp_path, "eu"), SAS_3_10, write_variant(tmp_path, "eu.json", eu),
                       params={"as_of": AS_OF})) == ["ocds-be6bcu-UA-2026-08-18-003391-a"]
    # a complaint period still open (ends 2026-11-23), and a tender under the value gate
    later = flags(fresh(tmp_path, "later"), SAS_3_10, SAS_3_10_QUIET, params={"as_of": "2026-11-24T12:00:00+02:00"})
    assert ocids(later) == ["ocds-be6bcu-UA-2026-09-29-006114-a"]
    cheaper = flags(fresh(tmp_path, "cheaper"), SAS_3_10, SAS_3_10_QUIET,
                    params={"as_of": AS_OF, "min_value_goods_services_uah": 300_000})
    assert ocids(cheaper) == ["ocds-be6bcu-UA-2026-08-05-008842-a"]
    # the lot without documents cancelled: nothing left to flag
    lots = copy.deepcopy(tenders(SAS_3_10_FIRES)["UA-2026-07-14-005520-b"])
    lots["data"]["lots"][1]["status"] = "cancelled"
    assert flags(fresh(tmp_path, "cancelled"), SAS_3_10, write_variant(tmp_path, "cancelled.json", lots),
                 params={"as_of": AS_OF}) == {}
