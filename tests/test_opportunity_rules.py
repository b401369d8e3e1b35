"""The budget-advocacy opportunity rules: the set the issue asks for, and evidence an advocate can use.

`test_rule_examples.py` already checks that each rule fires on its firing fixture and not on the
other. Here: every opportunity rule's flags carry the fields a letter to a buyer needs (buyer name
and EDRPOU, region, amount with currency, the ProZorro tenderID or plan id to link, dates, the
comparison figure), read from the flags table after a real load of the fixture.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from monitor.flags.engine import evaluate
from monitor.flags.examples import load_into
from monitor.flags.rules import load_rules

OPPORTUNITIES = [rule for rule in load_rules() if rule.kind == "opportunity"]
BY_ID = {rule.id: rule for rule in OPPORTUNITIES}
TENDER_ID = re.compile(r"^UA-\d{4}-\d{2}-\d{2}-\d{6}-[a-z]$")
PLAN_ID = re.compile(r"^UA-P-\d{4}-\d{2}-\d{2}-\d{6}-[a-z]$")


def _flags(rule, tmp_path: Path) -> list[dict]:
    example = next(e for e in rule.examples if "flagged" in e)
    db = tmp_path / "opportunity.duckdb"
    load_into(db, [rule.path.parent / example["flagged"]])
    result = evaluate(db, [rule], overrides={rule.id: example.get("params", {})})
    assert not result.failed, result.failed
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT subject_type, subject_id, ocid, value, evidence FROM flags "
                           "WHERE rule_id = ? AND kind = 'opportunity'", [rule.id]).fetchall()
    return [{"subject_type": s, "subject_id": i, "ocid": o, "value": v, "evidence": json.loads(e)}
            for s, i, o, v, e in rows]


def test_the_rules_the_issue_asks_for_exist():
    wanted = {"opportunity-open-social-tender", "opportunity-planned-not-procured", "opportunity-no-market-repeated",
              "opportunity-non-competitive-social-award", "opportunity-incumbent-lock-in", "opportunity-coverage-gap",
              "opportunity-service-discontinuity", "opportunity-unit-price-outlier",
              "opportunity-donor-to-budget-transition"}
    assert wanted <= set(BY_ID)
    assert BY_ID["opportunity-planned-not-procured"].subject == "plan"
    assert BY_ID["opportunity-coverage-gap"].subject == "region"
    for rule in OPPORTUNITIES:
        assert rule.references, f"{rule.id} names no law or programme it rests on"
        assert rule.falsepositives, f"{rule.id} says nothing about when it fires innocently"


@pytest.mark.parametrize("rule_id", sorted(r.id for r in OPPORTUNITIES if r.subject not in ("region",)))
def test_evidence_names_the_buyer_the_money_and_the_link(rule_id, tmp_path):
    flags = _flags(BY_ID[rule_id], tmp_path)
    assert flags
    for flag in flags:
        evidence = flag["evidence"]
        assert evidence["buyer_name"] and re.fullmatch(r"\d{8}", evidence["buyer_edrpou"]), evidence
        assert evidence["buyer_id"] == f"UA-EDR-{evidence['buyer_edrpou']}"
        assert evidence["region"].endswith(("область", "Київ")), evidence["region"]
        assert evidence["currency"] == "UAH" and evidence["amount"] > 0, evidence
        link = evidence.get("tender_public_id") or evidence.get("plan_public_id")
        assert link and (TENDER_ID.match(link) or PLAN_ID.match(link)), evidence
        assert evidence["categories"], "which social or programme category made it an opportunity"


@pytest.mark.parametrize("rule_id", sorted(r.id for r in OPPORTUNITIES if r.subject == "region"))
def test_region_evidence_names_the_region_and_the_comparison(rule_id, tmp_path):
    flags = _flags(BY_ID[rule_id], tmp_path)
    assert flags
    for flag in flags:
        assert flag["subject_id"].endswith("область") or flag["subject_id"] == "м. Київ"
        assert flag["evidence"]["region"] == flag["subject_id"]
        assert flag["value"] > 0


def test_open_tender_evidence_has_the_deadline_for_a_bid(tmp_path):
    for flag in _flags(BY_ID["opportunity-open-social-tender"], tmp_path):
        evidence = flag["evidence"]
        assert evidence["deadline"].endswith("Kyiv time") and evidence["days_left"] >= 0
        assert flag["ocid"] == f"ocds-be6bcu-{evidence['tender_public_id']}"


def test_coverage_gap_compares_with_the_regions_that_buy(tmp_path):
    flags = {f["subject_id"]: f for f in _flags(BY_ID["opportunity-coverage-gap"], tmp_path)}
    assert "Сумська область" in flags
    missing = {m["category"]: m for m in flags["Сумська область"]["evidence"]["missing"]}
    assert "programme.ost" in missing
    assert missing["programme.ost"]["peer_regions"] >= 2 and missing["programme.ost"]["peer_median_amount"] > 0


def test_unit_price_outlier_gives_the_peer_median_and_the_tariff(tmp_path):
    (flag,) = _flags(BY_ID["opportunity-unit-price-outlier"], tmp_path)
    evidence = flag["evidence"]
    assert evidence["unit_price"] > 1.5 * evidence["peer_median"]
    assert flag["value"] == pytest.approx(evidence["unit_price"] / evidence["peer_median"], rel=1e-2)
    assert evidence["unit"] == "особа" and evidence["peers"] >= 5
    assert evidence["reference_tariff"] == pytest.approx(636.78)  # MoH order 1556, PWID package per client


def insert_social_services_process(con, ocid: str, key: int, value: float) -> None:
    """A complete services process of one buyer (Sumy oblast), published 2026-06-01, worth ``value`` UAH and
    classified social.services: a peer for the unit price outlier (its items are the test's)."""
    con.execute("INSERT INTO process_keys VALUES (?, ?)", [ocid, key])
    con.execute("INSERT INTO processes (ocid, process_key, source, raw_key, tender_public_id, status, main_category, "
                "date_published, value_amount, value_currency, buyer_id, buyer_name, region, is_test, is_masked) "
                "VALUES (?, ?, 'test', ?, ?, 'complete', 'services', TIMESTAMPTZ '2026-06-01 09:00:00+00', ?, 'UAH', "
                "'UA-EDR-00000001', 'Центр', 'Сумська область', false, false)",
                [ocid, key, f"test:{key}", ocid[12:], value])
    con.execute("INSERT INTO classifications VALUES (?, 'social.services', 2, 'high', [], now(), ?)", [ocid, key])


def test_unit_price_outlier_compares_each_price_with_the_others_of_its_group(tmp_path):
    """Leave-one-out statistics: each process against the other processes of its group only."""
    from monitor.store import connect

    prices = [90.0, 100.0, 110.0, 120.0, 125.0, 130.0, 140.0, 150.0, 500.0, 20.0]
    db = tmp_path / "prices.duckdb"
    con = connect(db)
    for n, price in enumerate(prices, start=1):
        ocid = f"ocds-be6bcu-UA-2026-01-{n:02d}-000001-a"
        insert_social_services_process(con, ocid, n, value=price * 10)
        con.execute("INSERT INTO items (ocid, process_key, raw_key, item_id, cpv, quantity, unit_code, unit_name, "
                    "unit_value_amount, unit_value_currency) VALUES (?, ?, ?, 'i1', '85312000-9', 10, 'IE', 'особа', ?, 'UAH')",
                    [ocid, n, f"test:{n}", price])
    con.close()
    rule = BY_ID["opportunity-unit-price-outlier"]
    evaluate(db, [rule], as_of=datetime.fromisoformat("2026-11-20T10:00:00+00:00"))
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT evidence FROM flags WHERE rule_id = ?", [rule.id]).fetchall()
    flagged = {e["unit_price"]: e for e in (json.loads(r[0]) for r in rows)}
    assert set(flagged) == {500.0}  # 20 is low, but flag_below is off; 150 is within 1.5 x its peers' median
    evidence = flagged[500.0]
    others = sorted(p for p in prices if p != 500.0)

    def quantile(xs, q):  # linear interpolation between order statistics, as quantile_cont
        h = (len(xs) - 1) * q
        lo = int(h)
        return xs[lo] + (h - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])

    assert evidence["peers"] == 9
    assert (evidence["peer_min"], evidence["peer_max"]) == (20.0, 150.0)
    assert evidence["peer_median"] == pytest.approx(quantile(others, 0.5))  # 120, not the 122.5 of all ten
    assert evidence["peer_lower_quartile"] == pytest.approx(quantile(others, 0.25))
    assert evidence["peer_upper_quartile"] == pytest.approx(quantile(others, 0.75))
    assert flagged[500.0]["ratio"] == pytest.approx(round(500 / 120, 2))
    # the five peers closest to that median, nearest first, never the outlier itself
    assert [e["unit_price"] for e in evidence["peer_examples"]] == [120.0, 125.0, 110.0, 130.0, 100.0]


def test_unit_price_outlier_prices_a_lone_item_at_its_tender_or_lot_value(tmp_path):
    """Without a unit price, an item is priced at its tender's value / quantity when it is the tender's only
    item, or at its lot's value / quantity when it is the lot's only item; two unpriced items of one tender
    or lot have no price, whatever the value."""
    from monitor.store import connect

    db = tmp_path / "lone.duckdb"
    con = connect(db)

    def process(n: int, value: float, items: list[tuple[str | None, float | None, str]],
                lots: dict[str, float] | None = None) -> str:
        ocid = f"ocds-be6bcu-UA-2026-03-{n:02d}-000001-a"
        insert_social_services_process(con, ocid, n, value)
        for lot_id, lot_value in (lots or {}).items():
            con.execute("INSERT INTO lots (ocid, process_key, raw_key, lot_id, value_amount, value_currency) "
                        "VALUES (?, ?, ?, ?, ?, 'UAH')", [ocid, n, f"test:{n}", lot_id, lot_value])
        for k, (lot_id, unit_price, unit_name) in enumerate(items):
            con.execute("INSERT INTO items (ocid, process_key, raw_key, item_id, lot_id, cpv, quantity, unit_name, "
                        "unit_value_amount, unit_value_currency) VALUES (?, ?, ?, ?, ?, '85312000-9', 10, ?, ?, ?)",
                        [ocid, n, f"test:{n}", f"i{k}", lot_id, unit_name, unit_price, "UAH" if unit_price else None])
        return ocid

    for n, price in enumerate([90.0, 100.0, 110.0, 120.0, 130.0, 140.0], start=1):
        process(n, price * 10, [(None, None, "особа")])  # the tender's only item: 10 clients at value / 10
    # the only item of lot L1 (5,000 for 10 clients), beside a priced item in another unit
    lone_in_lot = process(7, 99_999.0, [("L1", None, "особа"), ("L2", 3_000.0, "місяць")], lots={"L1": 5_000.0})
    process(8, 90_000.0, [(None, None, "особа"), (None, None, "особа")])  # two unpriced items: no price
    process(9, 90_000.0, [("L1", None, "особа"), ("L1", None, "особа")], lots={"L1": 90_000.0})  # two in one lot
    con.close()
    rule = BY_ID["opportunity-unit-price-outlier"]
    evaluate(db, [rule], as_of=datetime.fromisoformat("2026-11-20T10:00:00+00:00"))
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT ocid, evidence FROM flags WHERE rule_id = ?", [rule.id]).fetchall()
    assert [ocid for ocid, _ in rows] == [lone_in_lot]
    evidence = json.loads(rows[0][1])
    assert evidence["unit_price"] == 500.0 and evidence["price_basis"] == "expected value / quantity"
    assert evidence["unit"] == "особа" and evidence["quantity"] == 10
    assert evidence["peers"] == 6  # the six lone items of their tenders, not the unpriced items of 8 and 9
    assert evidence["peer_median"] == pytest.approx(115.0)


def only_flag_evidence(db, rule) -> dict:
    """Evaluate ``rule`` on ``db`` (clock 2026-11-20) and return the evidence of the one flag it raises."""
    evaluate(db, [rule], as_of=datetime.fromisoformat("2026-11-20T10:00:00+00:00"))
    with duckdb.connect(str(db), read_only=True) as con:
        (row,) = con.execute("SELECT evidence FROM flags WHERE rule_id = ?", [rule.id]).fetchall()
    return json.loads(row[0])


def test_planned_not_procured_names_the_same_tender_whatever_the_order_of_the_rows(tmp_path):
    """Two failed tenders of a plan published at the same instant: the one named and the list's order
    follow the ocids, not the order the rows happen to be stored in (which differs between databases)."""
    from monitor.store import connect

    rule = BY_ID["opportunity-planned-not-procured"]
    tenders = [("ocds-be6bcu-UA-2026-02-02-000002-a", 2), ("ocds-be6bcu-UA-2026-02-02-000001-a", 1)]
    evidence = []
    for order in (tenders, tenders[::-1]):
        db = tmp_path / f"plan-{len(evidence)}.duckdb"
        con = connect(db)
        con.execute("INSERT INTO plans (plan_id, source, raw_key, status, budget_year, planned_start, buyer_id) "
                    "VALUES ('plan-1', 'test', 'test:plan-1', 'scheduled', 2026, TIMESTAMPTZ '2026-02-01 09:00:00+00', "
                    "'UA-EDR-00000001')")
        con.execute("INSERT INTO plan_classifications VALUES ('plan-1', 'social.services', 2, 'high', [], now())")
        for ocid, key in order:
            con.execute("INSERT INTO process_keys VALUES (?, ?)", [ocid, key])
            con.execute("INSERT INTO processes (ocid, process_key, source, raw_key, tender_public_id, status, "
                        "date_published, buyer_id, plan_ids) VALUES (?, ?, 'test', ?, ?, 'unsuccessful', "
                        "TIMESTAMPTZ '2026-02-02 09:00:00+00', 'UA-EDR-00000001', ['plan-1'])",
                        [ocid, key, f"test:{key}", ocid[12:]])
        con.close()
        evidence.append(only_flag_evidence(db, rule))
    assert evidence[0] == evidence[1]
    assert evidence[0]["tender_public_id"] == "UA-2026-02-02-000002-a"  # the last of the list
    assert [t["tender_public_id"] for t in evidence[0]["linked_tenders"]] == [
        "UA-2026-02-02-000001-a", "UA-2026-02-02-000002-a"]


def test_donor_to_budget_transition_names_the_same_tender_whatever_the_order_of_the_rows(tmp_path):
    """Two Global Fund-paid HIV tenders of a region published at the same instant: the tender named and
    the order of the listed ones follow the ocids, not the order the rows happen to be stored in."""
    from monitor.store import connect

    rule = BY_ID["opportunity-donor-to-budget-transition"]
    tenders = [("ocds-be6bcu-UA-2025-03-04-000002-a", 2, "UA-EDR-05483140",
                "КНП «Полтавський обласний центр громадського здоров'я» ПОР"),
               ("ocds-be6bcu-UA-2025-03-04-000001-a", 1, "UA-EDR-02010876",
                "КНП «Полтавська обласна клінічна лікарня ім. М. В. Скліфосовського» ПОР")]
    evidence = []
    for order in (tenders, tenders[::-1]):
        db = tmp_path / f"donor-{len(evidence)}.duckdb"
        con = connect(db)
        for ocid, key, buyer_id, buyer_name in order:
            con.execute("INSERT INTO process_keys VALUES (?, ?)", [ocid, key])
            con.execute("INSERT INTO processes (ocid, process_key, source, raw_key, tender_public_id, title, status, "
                        "date_published, value_amount, value_currency, buyer_id, buyer_name, region, funders) "
                        "VALUES (?, ?, 'test', ?, ?, 'Послуги з профілактики ВІЛ серед ключових груп', 'complete', "
                        "TIMESTAMPTZ '2025-03-04 09:00:00+00', 850000, 'UAH', ?, ?, 'Полтавська область', "
                        "['XM-DAC-47045'])",
                        [ocid, key, f"test:{key}", ocid[12:], buyer_id, buyer_name])
            con.execute("INSERT INTO classifications VALUES (?, 'programme.hiv', 2, 'high', [], now(), ?)", [ocid, key])
        con.close()
        evidence.append(only_flag_evidence(db, rule))
    assert evidence[0] == evidence[1]
    assert evidence[0]["tender_public_id"] == "UA-2025-03-04-000001-a"  # the head of the list
    assert evidence[0]["buyer_id"] == "UA-EDR-02010876"
    (stopped,) = evidence[0]["stopped"]
    assert [t["tender_public_id"] for t in stopped["last_donor_tenders"]] == [
        "UA-2025-03-04-000001-a", "UA-2025-03-04-000002-a"]


def test_no_market_evidence_lists_the_twenty_latest_failures_and_counts_them_all(tmp_path):
    """A buyer with many failed tenders: the evidence must still fit a spreadsheet cell."""
    rule = BY_ID["opportunity-no-market-repeated"]
    fixture = rule.path.parent / next(e["flagged"] for e in rule.examples if "flagged" in e)
    lines = fixture.read_text(encoding="utf-8").splitlines()
    first = lines[0]
    for copy in range(1, 23):  # the first failed tender again, a week later each time
        def shifted(match: re.Match, weeks: int = copy) -> str:
            moment = datetime.fromisoformat(match.group(0)) + timedelta(weeks=weeks)
            return moment.isoformat()
        text = re.sub(r"2026-02-\d\dT\d\d:\d\d:\d\d\+02:00", shifted, first)
        text = text.replace("UA-2026-02-09-010131-a", f"UA-2026-02-09-0{20000 + copy}-a")
        text = text.replace('"id": "a1f31e135b09f4f2c8a6a43467b0f36d"', f'"id": "{copy:032x}"')
        lines.append(text)
    many = tmp_path / "many-failures.jsonl"
    many.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "many.duckdb"
    load_into(db, [many])
    assert not evaluate(db, [rule]).failed
    with duckdb.connect(str(db), read_only=True) as con:
        (evidence,) = con.execute("SELECT evidence FROM flags WHERE rule_id = ?", [rule.id]).fetchone()
        failed_on = [d for (d,) in con.execute("SELECT CAST(timezone('Europe/Kyiv', date_modified) AS DATE)::VARCHAR "
                                               "FROM processes ORDER BY 1").fetchall()]
    evidence = json.loads(evidence)
    assert evidence["failures"] == len(lines) == 25
    listed = evidence["failed_tenders"]
    assert len(listed) == 20
    assert [t["date"] for t in listed] == sorted(t["date"] for t in listed)  # oldest first
    assert listed[-1]["tender_public_id"] == evidence["tender_public_id"]  # ends with the most recent
    assert listed[0]["date"] > failed_on[0]  # the oldest failures are counted, not listed
    assert len(json.dumps(evidence, ensure_ascii=False)) < 32_767


def _no_market_flags(tmp_path: Path, documents: list[dict], name: str) -> list[tuple[float, dict]]:
    rule = BY_ID["opportunity-no-market-repeated"]
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents), encoding="utf-8")
    db = tmp_path / f"{name}.duckdb"
    load_into(db, [path])
    assert not evaluate(db, [rule], overrides={rule.id: {"as_of": "2026-11-20T12:00:00+02:00"}}).failed
    with duckdb.connect(str(db), read_only=True) as con:
        return [(v, json.loads(e)) for v, e in con.execute("SELECT value, evidence FROM flags WHERE rule_id = ?",
                                                           [rule.id]).fetchall()]


def test_no_market_counts_lots_that_failed_for_lack_of_bids_not_those_cancelled_for_other_reasons(tmp_path):
    """Konotop's home-care lot: cancelled on its own for noOffer in April, unsuccessful without a bid in
    September, while the other lot of each tender was bought (both tenders are "complete"). Each tender
    counts for that lot alone, at the lot's value. The same lot cancelled in April for no further need
    (noDemand) or a budget cut (expensesCut) says nothing about the market: one failure is left."""
    fixtures = BY_ID["opportunity-no-market-repeated"].path.parent / "fixtures"
    source = fixtures / "opportunity-no-market-repeated-lot-failures.jsonl"
    documents = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    april, september = (d["data"] for d in documents)
    assert [april["status"], september["status"]] == ["complete", "complete"]
    assert [c["cancellationOf"] for c in april["cancellations"]] == ["lot"]

    ((value, evidence),) = _no_market_flags(tmp_path, documents, "lots")
    assert (value, evidence["amount"], evidence["failures"], evidence["lots_failed"]) == (840000.0, 840000.0, 2, 2)
    assert evidence["buyer_id"] == "UA-EDR-03196512"
    first, second = evidence["failed_tenders"]
    assert (first["tender_public_id"], first["amount"], first["bids"], first["cpv_codes"]) == (
        april["tenderID"], 420000.0, 1, ["85312000-9"])
    assert first["reason"] == "1 of 2 lot(s) cancelled: noOffer (fewer than two bids submitted)"
    (lot,) = first["failed_lots"]
    assert (lot["lot_id"], lot["status"], lot["bids"], lot["amount"]) == (
        april["cancellations"][0]["relatedLot"], "cancelled", 1, 420000.0)
    assert (second["tender_public_id"], second["amount"], second["bids"]) == (september["tenderID"], 420000.0, 0)
    assert second["reason"] == "1 of 2 lot(s) unsuccessful: no bids submitted"
    assert [lot["title"] for lot in second["failed_lots"]] == [september["lots"][0]["title"]]

    for reason_type in ("noDemand", "expensesCut"):
        changed = copy.deepcopy(documents)
        changed[0]["data"]["cancellations"][0]["reasonType"] = reason_type
        assert _no_market_flags(tmp_path, changed, reason_type) == []


def test_non_competitive_award_never_sums_across_currencies(tmp_path):
    """A direct contract of 348 000 UAH and a second one of 60 000 EUR: the flag's amount is the
    hryvnia contract alone, and the euro one is counted (the sum was 408 000 'UAH')."""
    rule = BY_ID["opportunity-non-competitive-social-award"]
    source = rule.path.parent / "fixtures" / "opportunity-non-competitive-reporting-and-negotiation.jsonl"
    report = json.loads(source.read_text(encoding="utf-8").splitlines()[0])
    euro = copy.deepcopy(report["data"]["contracts"][0])
    euro.update(id="9c1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f", contractID=f"{report['data']['tenderID']}-c2")
    euro["value"] = {"amount": 60000.0, "currency": "EUR", "valueAddedTaxIncluded": True, "amountNet": 60000.0}
    report["data"]["contracts"].append(euro)
    path = tmp_path / "two-currencies.jsonl"
    path.write_text(json.dumps(report, ensure_ascii=False) + "\n", encoding="utf-8")
    db = tmp_path / "currencies.duckdb"
    load_into(db, [path])
    assert not evaluate(db, [rule]).failed
    with duckdb.connect(str(db), read_only=True) as con:
        (value, evidence), = con.execute("SELECT value, evidence FROM flags WHERE rule_id = ?", [rule.id]).fetchall()
    evidence = json.loads(evidence)
    assert (value, evidence["amount"], evidence["currency"], evidence["deals_in_other_currencies"]) == (
        348000.0, 348000.0, "UAH", 1)


def test_incumbent_lock_in_totals_one_currency(tmp_path):
    """Three years of the same supplier, the 2025 contract in euros: the total is the two hryvnia
    contracts, the euro one counted apart (the total was 3 710 000 'UAH' with 1 240 000 euros in it)."""
    rule = BY_ID["opportunity-incumbent-lock-in"]
    source = rule.path.parent / "fixtures" / "opportunity-incumbent-three-years.jsonl"
    documents = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    documents[1]["data"]["contracts"][0]["value"]["currency"] = "EUR"
    path = tmp_path / "euro-year.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents), encoding="utf-8")
    db = tmp_path / "lock-in.duckdb"
    load_into(db, [path])
    assert not evaluate(db, [rule], overrides={rule.id: {"as_of": "2026-11-20T12:00:00+02:00"}}).failed
    with duckdb.connect(str(db), read_only=True) as con:
        (value, evidence), = con.execute("SELECT value, evidence FROM flags WHERE rule_id = ?", [rule.id]).fetchall()
    evidence = json.loads(evidence)
    assert (value, evidence["amount"], evidence["currency"], evidence["wins_in_other_currencies"]) == (
        2_470_000.0, 2_470_000.0, "UAH", 1)
    assert [(w["amount"], w["currency"]) for w in evidence["wins"]] == [
        (1_150_000.0, "UAH"), (1_240_000.0, "EUR"), (1_320_000.0, "UAH")]


def test_coverage_gap_counts_a_purchase_for_its_delivery_region_however_spelled(tmp_path):
    """Sumy's OST support bought by a national body in Kyiv and delivered to "Сумська обл.": Sumy is
    served. The spelling did not match the canonical name, so the purchase counted for Kyiv and Sumy
    showed a gap (and Kyiv none)."""
    rule = BY_ID["opportunity-coverage-gap"]
    source = rule.path.parent / "fixtures" / "opportunity-coverage-gap-all-regions-buy.jsonl"
    documents = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    sumy_ost = next(d["data"] for d in documents if d["data"]["tenderID"] == "UA-2026-06-09-030308-a")
    sumy_ost["procuringEntity"].update(
        name="Центр громадського здоров'я МОЗ України",
        identifier={"scheme": "UA-EDR", "id": "40524109", "legalName": "ДУ «Центр громадського здоров'я МОЗ України»"},
        address={"streetAddress": "вул. Ярославська, 41", "locality": "м. Київ", "region": "м. Київ",
                 "postalCode": "04071", "countryName": "Україна"})
    for item in sumy_ost["items"]:
        item["deliveryAddress"]["region"] = "Сумська обл."
    path = tmp_path / "national-buyer.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in documents), encoding="utf-8")
    db = tmp_path / "coverage.duckdb"
    load_into(db, [path])
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT delivery_region FROM items WHERE ocid = ?",
                           ["ocds-be6bcu-UA-2026-06-09-030308-a"]).fetchall() == [("Сумська область",)]
    assert not evaluate(db, [rule], overrides={rule.id: {"as_of": "2026-11-20T12:00:00+02:00"}}).failed
    with duckdb.connect(str(db), read_only=True) as con:
        # Kyiv, where the body sits, buys OST support for no one of its own: that gap is real
        assert con.execute("SELECT DISTINCT subject_id FROM flags WHERE rule_id = ?", [rule.id]).fetchall() == [
            ("м. Київ",)]
