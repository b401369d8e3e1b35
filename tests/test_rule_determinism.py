"""A re-run of a rule on unchanged data gives the same flags, evidence included.

The flag engine stores each rule's returned columns as the flag's evidence, and a re-run whose
evidence differs marks the flag "changed" in the weekly report. A database does not keep rows in
one order (another load, another thread count, ``preserve_insertion_order`` off), so wherever a rule
picks one name among several (``any_value``, ``arg_max`` with ties) or lists rows without a total
order, the flag must not depend on the order the rows were stored in. Each test here builds the same
small world twice, its rows inserted in opposite orders, and checks that the flags are the same and
show the defined pick.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pytest

from monitor.flags.engine import evaluate
from monitor.flags.rules import Rule, load_rules
from monitor.store import connect

RULES = Path(__file__).resolve().parent.parent / "rules" / "flags"
AS_OF = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)

Statement = tuple[str, list[Any]]


@lru_cache(maxsize=None)
def rule(rule_id: str) -> Rule:
    return load_rules(RULES / f"{rule_id}.yaml")[0]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def row(table: str, **columns: Any) -> Statement:
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            list(columns.values()))


def ocid(tender_public_id: str) -> str:
    return f"ocds-be6bcu-{tender_public_id}"


def process(key: int, tender_public_id: str, **columns: Any) -> list[Statement]:
    return [row("process_keys", ocid=ocid(tender_public_id), process_key=key),
            row("processes", ocid=ocid(tender_public_id), process_key=key, source="prozorro",
                raw_key=f"prozorro:tender:{key:032x}", tender_public_id=tender_public_id, **columns)]


def child(table: str, key: int, tender_public_id: str, **columns: Any) -> Statement:
    return row(table, ocid=ocid(tender_public_id), process_key=key, raw_key=f"prozorro:tender:{key:032x}", **columns)


def category(key: int, tender_public_id: str, name: str) -> Statement:
    return row("classifications", ocid=ocid(tender_public_id), process_key=key, category=name, score=2,
               confidence="high", evidence=[], classified_at=AS_OF)


def flags_in_both_orders(tmp_path: Path, rule_id: str, groups: list[list[Statement]]) -> list[dict[str, dict]]:
    """The open flags of ``rule_id`` (subject -> value and evidence) on two databases holding the same
    rows: ``groups`` inserted in their order, then in the reverse order."""
    found = []
    for n, order in enumerate((groups, groups[::-1])):
        db = tmp_path / f"{rule_id}-{n}.duckdb"
        con = connect(db)
        try:
            for group in order:
                for sql, params in group:
                    con.execute(sql, params)
        finally:
            con.close()
        outcome = evaluate(db, [rule(rule_id)], as_of=AS_OF)
        assert not outcome.failed, outcome.failed[0].error
        with duckdb.connect(str(db), read_only=True) as con:
            rows = con.execute("SELECT subject_id, value, evidence FROM flags WHERE rule_id = ? AND resolved_at IS NULL",
                               [rule_id]).fetchall()
        found.append({subject: {"value": value, "evidence": json.loads(evidence)} for subject, value, evidence in rows})
    return found


def test_supplier_dominance_shows_the_latest_names_of_the_buyer_and_the_supplier(tmp_path):
    """A hospital renamed in the year, and a supplier whose name is written two ways on its latest
    contracts (signed the same day): the flag shows the buyer's name on the latest contract and, of the
    two spellings on that date, the alphabetically first, whatever the order of the rows."""
    buyer = "UA-EDR-01994411"
    supplier = "UA-EDR-36452331"
    contracts = [  # tenderID, date signed, value, buyer name on the process, supplier name on the contract
        ("UA-2025-02-03-004512-a", "2025-02-10T11:00:00+02:00", 150000.0,
         "КНП «Полтавська обласна клінічна лікарня» ПОР", "ТОВ «Фармацевтична компанія «Медсервіс»"),
        ("UA-2025-05-06-007730-a", "2025-05-14T10:30:00+03:00", 120000.0,
         "КНП «Полтавська обласна клінічна лікарня» ПОР", "ТОВ «Фармацевтична компанія «Медсервіс»"),
        ("UA-2025-08-26-001204-a", "2025-09-03T09:00:00+03:00", 100000.0,
         "КНП «Полтавська обласна клінічна лікарня ім. М. В. Скліфосовського» ПОР", "ТОВ «Медсервіс Плюс»"),
        ("UA-2025-08-27-003318-a", "2025-09-03T09:00:00+03:00", 90000.0,
         "КНП «Полтавська обласна клінічна лікарня ім. М. В. Скліфосовського» ПОР", 'ТОВ "МЕДСЕРВІС ПЛЮС"'),
    ]
    groups = []
    for key, (tender, signed, value, buyer_name, supplier_name) in enumerate(contracts, start=1):
        groups.append([
            *process(key, tender, status="complete", main_category="goods", date_published=at(signed),
                     buyer_id=buyer, buyer_name=buyer_name, region="Полтавська область"),
            child("contracts", key, tender, origin="contract", contract_id=f"{key:032x}",
                  contract_public_id=f"{tender}-c1", status="active", date_signed=at(signed), value_amount=value,
                  value_currency="UAH", supplier_id=supplier, supplier_name=supplier_name),
            category(key, tender, "health.medicines"),
        ])
    first, second = flags_in_both_orders(tmp_path, "anomaly-supplier-dominates-buyer-spend", groups)
    assert first == second
    flag = first[f"{buyer}/{supplier}"]
    assert flag["value"] == 100.0
    assert flag["evidence"]["buyer_name"] == "КНП «Полтавська обласна клінічна лікарня ім. М. В. Скліфосовського» ПОР"
    assert flag["evidence"]["supplier_name"] == 'ТОВ "МЕДСЕРВІС ПЛЮС"'  # '"' sorts before '«'


@pytest.mark.parametrize("rule_id, main_category", [
    ("prozorro-sas24-3-2-rejected-bidders-goods-services", "goods"),
    ("prozorro-sas24-3-2-1-rejected-bidders-works", "works"),
    ("prozorro-sas24-3-5-rejected-bidders-without-24h", "goods"),
])
def test_rejected_bidders_rules_list_the_winners_sorted(tmp_path, rule_id, main_category):
    """Two bidders rejected, then two active awards on the tender (a re-awarded lot published with both):
    the winners come out in alphabetical order, whichever award row was stored first."""
    tender = "UA-2026-09-15-008841-a"
    decided = at("2026-10-20T15:00:00+03:00")
    tender_rows = process(1, tender, status="complete", procurement_method_type="aboveThresholdUA",
                          main_category=main_category, buyer_kind="general", value_amount=2400000.0,
                          value_currency="UAH", lots_count=0, buyer_id="UA-EDR-04014143",
                          buyer_name="Виконавчий комітет Кременчуцької міської ради", region="Полтавська область")
    rejected = [child("awards", 1, tender, award_id=f"a{n}", bid_id=f"b{n}", status="unsuccessful", date=decided,
                      supplier_id=supplier, supplier_name=name, supplier_ids=[supplier])
                for n, (supplier, name) in enumerate([("UA-EDR-41208533", "ТОВ «Будівельна компанія «Граніт»"),
                                                      ("UA-EDR-39915877", "ТОВ «Техбуд-Сервіс»")], start=1)]
    winners = [child("awards", 1, tender, award_id=f"a{n}", bid_id=f"b{n}", status="active", date=decided,
                     supplier_id=supplier, supplier_name=name, supplier_ids=[supplier])
               for n, (supplier, name) in enumerate([("UA-EDR-43877015", "ТОВ «Ятрань-Буд»"),
                                                     ("UA-EDR-40231876", "ТОВ «Альтаїр-Буд»")], start=3)]
    # the stored tender, where sas24-3-5 reads whether a 24-hour request preceded each rejection (none did)
    stored = row("raw_records", source="prozorro", kind="tender", id=f"{1:032x}", ocid=ocid(tender), date_modified=decided,
                 fetched_at=decided, sha256="0" * 64, origin="test", json=json.dumps(
                     {"data": {"id": f"{1:032x}", "awards": [{"id": "a1", "status": "unsuccessful"},
                                                             {"id": "a2", "status": "unsuccessful"}]}}))
    first, second = flags_in_both_orders(tmp_path, rule_id, [[*tender_rows, stored], rejected, [winners[0]],
                                                             [winners[1]]])
    assert first == second
    (lot,) = first[ocid(tender)]["evidence"]["lots"]
    assert lot["winners"] == ["ТОВ «Альтаїр-Буд»", "ТОВ «Ятрань-Буд»"]


def test_winner_not_lowest_lists_equal_cheaper_bids_by_tenderer(tmp_path):
    """Two cheaper valid bids with the same amount: listed by tenderer id, in both storage orders."""
    tender = "UA-2026-06-02-011475-a"
    tender_rows = [
        *process(1, tender, status="complete", procurement_method_type="aboveThresholdUA", main_category="goods",
                 value_amount=1200000.0, value_currency="UAH", buyer_id="UA-EDR-02010936",
                 buyer_name="КНП «Вінницька обласна клінічна лікарня ім. М. І. Пирогова ВОР»", region="Вінницька область"),
        child("bids", 1, tender, bid_id="b-win", status="active", status_ocds="valid", tenderer_id="UA-EDR-37184528",
              tenderer_ids=["UA-EDR-37184528"], value_amount=1150000.0, value_currency="UAH"),
        child("awards", 1, tender, award_id="a1", bid_id="b-win", status="active", date=at("2026-07-01T12:00:00+03:00"),
              value_amount=1150000.0, value_currency="UAH", supplier_id="UA-EDR-37184528",
              supplier_name="ТОВ «Медичні системи Поділля»", supplier_ids=["UA-EDR-37184528"]),
    ]
    cheaper = [[child("bids", 1, tender, bid_id=bid, status="active", status_ocds="valid", tenderer_id=tenderer,
                      tenderer_ids=[tenderer], value_amount=990000.0, value_currency="UAH")]
               for bid, tenderer in [("b-2", "UA-EDR-42861190"), ("b-3", "UA-EDR-38004417")]]
    first, second = flags_in_both_orders(tmp_path, "anomaly-winner-not-lowest-bid", [tender_rows, *cheaper])
    assert first == second
    (lot,) = first[ocid(tender)]["evidence"]["lots"]
    assert [b["tenderer_id"] for b in lot["cheaper_valid_bids"]] == ["UA-EDR-38004417", "UA-EDR-42861190"]


def test_non_competitive_social_award_names_one_supplier_of_the_largest_deal(tmp_path):
    """A direct contract for a social service split into two equal contracts with two providers: the
    supplier shown is one of them, id and name together (the smallest id), the same on every run."""
    tender = "UA-2026-03-11-002207-a"
    process_rows = [
        *process(1, tender, status="complete", procurement_method_type="reporting", main_category="services",
                 title="Надання соціальної послуги догляду вдома", value_amount=480000.0, value_currency="UAH",
                 buyer_id="UA-EDR-03192457", buyer_name="Управління соціального захисту населення Лубенської міської ради",
                 region="Полтавська область", date_published=at("2026-03-11T10:00:00+02:00")),
        category(1, tender, "social.services"),
    ]
    contracts = [[child("contracts", 1, tender, origin="contract", contract_id=f"c{n}", contract_public_id=f"{tender}-c{n}",
                        status="active", date_signed=at("2026-03-11T12:00:00+02:00"), value_amount=240000.0,
                        value_currency="UAH", supplier_id=supplier, supplier_name=name)]
                 for n, (supplier, name) in enumerate([("UA-EDR-43512960", "ГО «Турбота поруч»"),
                                                       ("UA-EDR-26291174", "БО «Благодійний фонд «Відродження громади»")],
                                                      start=1)]
    first, second = flags_in_both_orders(tmp_path, "opportunity-non-competitive-social-award",
                                         [process_rows, *contracts])
    assert first == second
    evidence = first[ocid(tender)]["evidence"]
    assert (evidence["supplier_id"], evidence["supplier_name"]) == (
        "UA-EDR-26291174", "БО «Благодійний фонд «Відродження громади»")
    assert evidence["suppliers"] == 2 and evidence["amount"] == 480000.0


def test_contract_value_increase_names_one_most_raised_item_on_equal_rises(tmp_path):
    """Two items of a contract raised by the same 25 %: the item shown is the one with the smallest id."""
    tender = "UA-2025-11-04-006612-a"
    signed = at("2025-11-10T10:00:00+02:00")
    process_rows = [
        *process(1, tender, status="complete", procurement_method_type="negotiation", main_category="goods",
                 value_amount=96000.0, value_currency="UAH", buyer_id="UA-EDR-01993830",
                 buyer_name="КНП «Чернігівська обласна дитяча лікарня» ЧОР", region="Чернігівська область"),
        child("contracts", 1, tender, origin="contract", contract_id="c1", contract_public_id=f"{tender}-a1",
              status="active", date_signed=signed, value_amount=96000.0, value_currency="UAH",
              supplier_id="UA-EDR-30412187", supplier_name="ТОВ «Паливна компанія «Сіверія»"),
        child("contract_changes", 1, tender, contract_id="c1", change_id="ch1", status="active",
              date=at("2026-02-02T09:00:00+02:00"), rationale="Зміна ціни за одиницю товару у зв’язку з коливанням ціни на ринку",
              rationale_types=["itemPriceVariation"]),
    ]
    items = [[child("items", 1, tender, item_id=item, description=description, quantity=1000.0, unit_name="літр",
                    unit_value_amount=48.0, unit_value_currency="UAH"),
              child("contract_items", 1, tender, contract_id="c1", item_id=item, description=description,
                    quantity=1000.0, unit_name="літр", unit_value_amount=60.0, unit_value_currency="UAH")]
             for item, description in [("i-2", "Бензин А-95"), ("i-1", "Дизельне паливо")]]
    first, second = flags_in_both_orders(tmp_path, "anomaly-contract-value-increase", [process_rows, *items])
    assert first == second
    (contract,) = first[ocid(tender)]["evidence"]["contracts"]
    assert contract["unit_increase_pct"] == 25.0
    assert contract["most_raised_item"]["item_id"] == "i-1"


def test_winner_again_after_complaint_lists_the_challenged_awards_in_a_fixed_order(tmp_path):
    """The same bid awarded three times, the first two awards challenged and cancelled: both pairs end
    at the same new award (same date), and are listed by the challenged award's id on every run."""
    tender = "UA-2026-04-07-009163-a"
    tender_rows = process(1, tender, status="complete", procurement_method_type="aboveThresholdUA",
                          main_category="works", buyer_kind="general", value_amount=3800000.0, value_currency="UAH",
                          lots_count=0, buyer_id="UA-EDR-04055026", buyer_name="Житомирська міська рада",
                          region="Житомирська область")
    supplier = dict(supplier_id="UA-EDR-42173390", supplier_name="ТОВ «Житомирбудресурс»",
                    supplier_ids=["UA-EDR-42173390"])
    awards = [[child("awards", 1, tender, award_id=award_id, bid_id="b1", status=status, date=at(date),
                     complaints_count=complaints, **supplier),
               *(child("complaints", 1, tender, complaint_id=f"{award_id}c{n}", complaint_public_id=f"{tender}.{award_id}{n}",
                       parent_type="award", parent_id=award_id, type="complaint", status="satisfied")
                 for n in range(complaints))]
              for award_id, status, date, complaints in [
                  ("a1", "cancelled", "2026-05-12T10:00:00+03:00", 1),
                  ("a2", "cancelled", "2026-06-16T10:00:00+03:00", 2),
                  ("a3", "active", "2026-07-21T10:00:00+03:00", 0)]]
    first, second = flags_in_both_orders(tmp_path, "prozorro-sas24-3-9-winner-again-after-complaint",
                                         [tender_rows, *awards])
    assert first == second
    listed = first[ocid(tender)]["evidence"]["awards"]
    assert [(a["challenged_award_id"], a["new_award_id"]) for a in listed] == [("a1", "a3"), ("a2", "a3")]


def home_care(key: int, tender_public_id: str, buyer_id: str, buyer_name: str, published: str) -> list[Statement]:
    """A home-care services process of a Cherkasy buyer, classified as social services."""
    return [*process(key, tender_public_id, status="complete", procurement_method_type="aboveThreshold",
                     main_category="services", title="Надання соціальної послуги догляду вдома",
                     value_amount=1200000.0, value_currency="UAH", buyer_id=buyer_id, buyer_name=buyer_name,
                     region="Черкаська область", date_published=at(published)),
            category(key, tender_public_id, "social.services")]


def test_service_discontinuity_shows_the_first_next_contract_of_two_equal_restarts(tmp_path):
    """A joint purchase of home care for two territorial centres (each contract names its centre as the
    buyer): in 2025 both centres had contracts that show the same (no contractID, same provider, period and
    amount), and in 2026 both restarted on 2 March, after the same 60 uncovered days. The two breaks of
    the 2026 process tie on gap, service, situation and previous contract as shown, so the flag shows the
    next contract first in the rule's total order (its tie text starts with the contractID: ...-c1 before
    ...-c2) and that contract's centre as the buyer."""
    organiser = dict(buyer_id="UA-EDR-40401258", buyer_name="Департамент соціальної політики Черкаської міської ради")
    centres = ["UA-EDR-34420755", "UA-EDR-03190631"]  # c1 goes to the larger id: not the smallest buyer by luck
    old, new = "UA-2024-11-28-004417-a", "UA-2026-01-27-011902-a"
    earlier = [[child("contracts", 1, old, origin="contract", contract_id=f"{n:032x}", contract_public_id=None,
                      status="complete", date_signed=at("2024-12-27T12:00:00+02:00"),
                      period_start=at("2025-01-01T00:00:00+02:00"), period_end=at("2025-12-31T23:59:59+02:00"),
                      value_amount=580000.0, value_currency="UAH", buyer_id=centre,
                      supplier_id="UA-EDR-26553170", supplier_name="ГО «Милосердя Черкащини»")]
               for n, centre in enumerate(centres, start=1)]
    later = [[child("contracts", 2, new, origin="contract", contract_id=f"{n + 10:032x}",
                    contract_public_id=f"{new}-c{n}", status="active", date_signed=at("2026-02-27T15:00:00+02:00"),
                    period_start=at("2026-03-02T00:00:00+02:00"), period_end=at("2026-12-31T23:59:59+02:00"),
                    value_amount=amount, value_currency="UAH", buyer_id=centre,
                    supplier_id="UA-EDR-26553170", supplier_name="ГО «Милосердя Черкащини»")]
             for n, (centre, amount) in enumerate(zip(centres, [540000.0, 610000.0]), start=1)]
    first, second = flags_in_both_orders(
        tmp_path, "opportunity-service-discontinuity",
        [home_care(1, old, **organiser, published="2024-11-28T10:00:00+02:00"), *earlier,
         home_care(2, new, **organiser, published="2026-01-27T10:00:00+02:00"), *later])
    assert first == second
    assert set(first) == {ocid(new)}
    evidence = first[ocid(new)]["evidence"]
    assert (evidence["situation"], evidence["gap_days"], evidence["service"]) == ("gap", 60, "social.services")
    assert evidence["previous_contract"]["tender_public_id"] == old
    assert evidence["next_contract"]["contract_public_id"] == f"{new}-c1"
    assert evidence["next_contract"]["amount"] == 540000.0
    assert evidence["buyer_id"] == "UA-EDR-34420755"


def test_service_discontinuity_orders_contracts_without_ids_by_what_is_shown(tmp_path):
    """A 2026 home-care tender in two lots restarts the service 60 days after the 2025 contract ended, with
    two providers from the same day to the year end; neither contract has a contractID nor an id, so both
    have the same tie text (ocid and record). The contract ordered first is the one that restarts the
    service (the other starts while it runs): after the equal tie text, start and (missing) end, the
    cheaper one, in both storage orders."""
    buyer = dict(buyer_id="UA-EDR-03190631",
                 buyer_name="Територіальний центр соціального обслуговування Соснівського району м. Черкаси")
    old, new = "UA-2024-12-03-007215-a", "UA-2026-01-29-003318-a"
    earlier = [child("contracts", 1, old, origin="contract", contract_id="5b1f0c2e9d7a4e3f8a6b1c0d2e3f4a5b",
                     contract_public_id=f"{old}-a1", status="complete", date_signed=at("2024-12-30T11:00:00+02:00"),
                     period_start=at("2025-01-01T00:00:00+02:00"), period_end=at("2025-12-31T23:59:59+02:00"),
                     value_amount=590000.0, value_currency="UAH",
                     supplier_id="UA-EDR-26553170", supplier_name="ГО «Милосердя Черкащини»")]
    later = [[child("contracts", 2, new, origin="ocds", contract_id=None, contract_public_id=None, status="active",
                    date_signed=at("2026-02-27T15:00:00+02:00"), period_start=at("2026-03-02T00:00:00+02:00"),
                    value_amount=amount, value_currency="UAH", supplier_id=supplier, supplier_name=name)]
             for amount, supplier, name in [(310000.0, "UA-EDR-26553170", "ГО «Милосердя Черкащини»"),
                                            (290000.0, "UA-EDR-42930118", "БО «Благодійний фонд «Турбота»»")]]
    first, second = flags_in_both_orders(
        tmp_path, "opportunity-service-discontinuity",
        [home_care(1, old, **buyer, published="2024-12-03T10:00:00+02:00"), earlier,
         home_care(2, new, **buyer, published="2026-01-29T10:00:00+02:00"), *later])
    assert first == second
    evidence = first[ocid(new)]["evidence"]
    assert (evidence["situation"], evidence["gap_days"]) == ("gap", 60)
    assert evidence["previous_contract"]["contract_public_id"] == f"{old}-a1"
    shown = evidence["next_contract"]
    assert (shown["amount"], shown["supplier_id"]) == (290000.0, "UA-EDR-42930118")


def test_unit_price_outlier_shows_one_item_of_two_that_differ_in_the_unit_code_only(tmp_path):
    """Home care per person at more than twice what five other communities pay; the tender has two lots
    with the same item (same description, ДК021 code, quantity and unit name, no contract yet) but one lot
    coded the unit "E48" (a service) and the other "IE" (a person). The item shown is the first by unit
    code, in both storage orders."""
    cpv = "85312000-9"
    description = "Надання соціальної послуги догляду вдома особам похилого віку"

    def tender(key: int, tender_public_id: str, buyer_id: str, buyer_name: str, region: str,
               value: float) -> list[Statement]:
        return [*process(key, tender_public_id, status="complete", procurement_method_type="aboveThreshold",
                         main_category="services", title=description, buyer_id=buyer_id, buyer_name=buyer_name,
                         region=region, value_amount=value, value_currency="UAH",
                         date_published=at("2026-02-10T10:00:00+02:00")),
                category(key, tender_public_id, "social.services")]

    def item(key: int, tender_public_id: str, n: int, lot_id: str | None, unit_code: str, price: float) -> Statement:
        return child("items", key, tender_public_id, item_id=f"i{n}", lot_id=lot_id, description=description, cpv=cpv,
                     quantity=40.0, unit_code=unit_code, unit_name="особа", unit_value_amount=price,
                     unit_value_currency="UAH")

    peers = [[*tender(n, tender_public_id, buyer_id, buyer_name, region, 40 * price),
              item(n, tender_public_id, 1, None, "IE", price)]
             for n, (tender_public_id, buyer_id, buyer_name, region, price) in enumerate([
                 ("UA-2026-01-14-003207-a", "UA-EDR-04061985", "Лубенська міська рада", "Полтавська область", 600.0),
                 ("UA-2026-01-20-008812-a", "UA-EDR-04057287", "Уманська міська рада", "Черкаська область", 620.0),
                 ("UA-2026-02-02-005531-a", "UA-EDR-04061792", "Ніжинська міська рада", "Чернігівська область", 640.0),
                 ("UA-2026-02-05-001946-a", "UA-EDR-04057569", "Смілянська міська рада", "Черкаська область", 660.0),
                 ("UA-2026-02-16-010274-a", "UA-EDR-04057813", "Коростенська міська рада", "Житомирська область", 680.0),
             ], start=1)]
    outlier = "UA-2026-03-11-002207-a"
    process_rows = tender(9, outlier, "UA-EDR-04061821", "Золотоніська міська рада", "Черкаська область", 120000.0)
    lots = [[child("lots", 9, outlier, lot_id=lot_id, title=f"Лот {n}", status="complete", value_amount=40 * price,
                   value_currency="UAH"),
             item(9, outlier, n, lot_id, unit_code, price)]
            for n, (lot_id, unit_code, price) in enumerate([("l1", "IE", 1550.0), ("l2", "E48", 1450.0)], start=1)]
    first, second = flags_in_both_orders(tmp_path, "opportunity-unit-price-outlier", [*peers, process_rows, *lots])
    assert first == second
    assert set(first) == {ocid(outlier)}
    evidence = first[ocid(outlier)]["evidence"]
    assert (evidence["peers"], evidence["peer_median"], evidence["unit_price"]) == (5, 640.0, 1500.0)
    assert (evidence["unit"], evidence["item_description"], evidence["item_cpv"]) == ("особа", description, cpv)
    assert evidence["unit_code"] == "E48"  # "E48" < "IE"
