"""Two anomaly rules on data shapes their first examples did not cover.

anomaly-winner-not-lowest-bid on OCDS: OCDS publishes a bid's status from the bid extension's
codelist (valid, disqualified, ...), ProZorro's API its own (active, invalid, ...). The rule reads
bids.status_ocds, so the same tender gives the same flag whichever form it was loaded in.

anomaly-contract-value-increase on awards with several contracts (ProZorro's aggregate contracts,
one per buyer of a centralized purchase; an OCDS award split into contracts): each contract holds a
part of the award, so the award is compared with its contracts together, not with each one.

Each fixture is loaded alone into a scratch database and one rule is evaluated (as in
conftest.rule_flags, as tests/test_prozorro_risk_rules.py does).
"""

from __future__ import annotations

import copy
import json

import pytest

from conftest import RULE_FIXTURES as FIXTURES
from conftest import read_lines, write_lines
from conftest import rule_flags as flags
from conftest import only


WINNER = "anomaly-winner-not-lowest-bid"
INCREASE = "anomaly-contract-value-increase"






# --- anomaly-winner-not-lowest-bid on OCDS ---------------------------------------------------------------

OCDS_SKIPPED = FIXTURES / "anomaly-winner-not-lowest-bid-ocds-skipped.jsonl"
OCDS_LOWER_DISQUALIFIED = FIXTURES / "anomaly-winner-not-lowest-bid-ocds-lower-disqualified.jsonl"


def lot_figures(lot: dict) -> dict:
    """What an analyst compares, without the ids of the lot and the award."""
    return {key: lot[key] for key in ("winner_id", "winner_name", "winning_value", "currency", "lowest_valid_value",
                                      "overpaid", "premium_pct", "cheaper_valid_bids")}


def test_winner_not_lowest_reads_the_bid_statuses_of_an_ocds_release(tmp_path):
    """OCDS bids are "valid", not "active": lot 1 went to the dearest of three valid bids, lot 2 to the cheapest."""
    flag = only(flags(tmp_path, WINNER, OCDS_SKIPPED))
    assert flag["ocid"] == "ocds-be6bcu-UA-2025-09-08-006241-a"
    (lot,) = flag["evidence"]["lots"]
    assert lot["lot_id"] == "3f6c1a9e8b2d4c7fa5e0b9d2c4f6a8e1" and lot["award_id"] == "a6241-1"
    assert (lot["winner_id"], lot["winning_value"]) == ("UA-EDR-38246190", 336_000)
    assert lot["lowest_valid_value"] == 312_000 and lot["overpaid"] == 24_000
    assert lot["premium_pct"] == pytest.approx(7.69) and flag["value"] == pytest.approx(7.69)
    assert [(b["bid_id"], b["tenderer_id"], b["value_amount"]) for b in lot["cheaper_valid_bids"]] == [
        ("b6241-1", "UA-EDR-43718265", 312_000), ("b6241-2", "UA-EDR-40917352", 318_600)]


def as_ocds_release(native: dict) -> dict:
    """A ProZorro-native tender as an OCDS compiled release: bid statuses mapped as ProZorro's own OCDS
    publication maps them (openprocurement.api convert_bid: active -> valid, invalid* -> disqualified,
    deleted -> withdrawn, else pending), an award's bid_id as relatedBid, parties by UA-EDR id."""
    tender = native["data"]

    def party(org: dict, role: str) -> dict:
        ident = org["identifier"]
        return {"id": f"{ident['scheme']}-{ident['id']}", "name": org["name"], "identifier": ident, "roles": [role]}

    def ref(org: dict) -> dict:
        return {"id": f"{org['identifier']['scheme']}-{org['identifier']['id']}", "name": org["name"]}

    def bid_status(status: str) -> str:
        if "invalid" in status:
            return "disqualified"
        return {"active": "valid", "deleted": "withdrawn"}.get(status, "pending")

    buyer = tender["procuringEntity"]
    parties = [party(buyer, "buyer")] + [party(b["tenderers"][0], "tenderer") for b in tender["bids"]]
    ocid = f"ocds-be6bcu-{tender['tenderID']}"
    return {
        "ocid": ocid, "id": f"{ocid}-compiled", "date": tender["dateModified"], "tag": ["compiled"],
        "initiationType": "tender", "parties": parties, "buyer": ref(buyer),
        "tender": {"id": tender["id"], "tenderID": tender["tenderID"], "title": tender["title"],
                   "status": tender["status"], "procurementMethod": tender["procurementMethod"],
                   "procurementMethodType": tender["procurementMethodType"],
                   "mainProcurementCategory": tender["mainProcurementCategory"],
                   "value": {k: tender["value"][k] for k in ("amount", "currency")}, "procuringEntity": ref(buyer),
                   "tenderPeriod": tender["tenderPeriod"],
                   "items": [{"id": i["id"], "description": i["description"], "classification": i["classification"],
                              "quantity": i["quantity"], "unit": {"name": i["unit"]["name"]}} for i in tender["items"]]},
        "bids": {"details": [{"id": b["id"], "date": b["date"], "status": bid_status(b["status"]),
                              "tenderers": [ref(t) for t in b["tenderers"]],
                              "value": {k: b["value"][k] for k in ("amount", "currency")}} for b in tender["bids"]]},
        "awards": [{"id": a["id"], "status": a["status"], "date": a["date"], "relatedBid": a["bid_id"],
                    "value": {k: a["value"][k] for k in ("amount", "currency")},
                    "suppliers": [ref(s) for s in a["suppliers"]]} for a in tender["awards"]],
    }


@pytest.mark.parametrize("name", ["anomaly-winner-not-lowest-skipped.json",
                                  "anomaly-winner-not-lowest-lower-disqualified.json"])
def test_winner_not_lowest_judges_a_native_tender_and_its_ocds_publication_alike(tmp_path, name):
    native = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    ocds = write_lines(tmp_path / "ocds.jsonl", [as_ocds_release(native)])
    from_native = flags(tmp_path, WINNER, FIXTURES / name)
    from_ocds = flags(tmp_path, WINNER, ocds)
    assert sorted(from_native) == sorted(from_ocds)
    assert [[lot_figures(lot) for lot in f["evidence"]["lots"]] for f in from_native.values()] == \
           [[lot_figures(lot) for lot in f["evidence"]["lots"]] for f in from_ocds.values()]
    if name.endswith("-skipped.json"):
        assert from_ocds, "the skipped cheaper bids must be flagged in OCDS form too"


def test_an_ocds_bid_disqualified_before_the_awards_is_not_compared(tmp_path):
    """A cheaper bid the publisher marks disqualified, with no award (rejected at pre-qualification, as
    ProZorro's OCDS publishes a native invalid.pre-qualification bid): left out, as the native rule
    leaves out such a bid; the valid cheaper bids were still skipped."""
    (release,) = read_lines(OCDS_SKIPPED)
    release = copy.deepcopy(release)
    release["bids"]["details"].insert(0, {
        "id": "b6241-0", "date": "2025-09-22T15:48:00+03:00", "status": "disqualified",
        "tenderers": [{"id": "UA-EDR-40917352", "name": "ТОВ «Медичний дім Поділля»"}],
        "value": {"amount": 289_000.0, "currency": "UAH"}, "relatedLots": ["3f6c1a9e8b2d4c7fa5e0b9d2c4f6a8e1"]})
    (lot,) = only(flags(tmp_path, WINNER, write_lines(tmp_path / "prequalified.jsonl", [release])))["evidence"]["lots"]
    assert [b["bid_id"] for b in lot["cheaper_valid_bids"]] == ["b6241-1", "b6241-2"]
    assert lot["lowest_valid_value"] == 312_000


@pytest.mark.parametrize("published_status", ["disqualified", "valid"])
def test_an_ocds_cheaper_bid_rejected_at_an_award_is_a_disqualification(tmp_path, published_status):
    """The cheapest bid on lot 1 rejected at an unsuccessful award: a lower bid was disqualified, so the
    lot is not flagged, whether the publisher marks the bid disqualified or keeps it valid (ProZorro's
    OCDS), like a native bid rejected at its award (still "active" in the API)."""
    (release,) = read_lines(OCDS_SKIPPED)
    release = copy.deepcopy(release)
    release["bids"]["details"][0]["status"] = published_status
    release["awards"].insert(0, {"id": "a6241-0", "status": "unsuccessful", "date": "2025-09-29T12:00:00+03:00",
                                 "relatedBid": "b6241-1", "relatedLots": ["3f6c1a9e8b2d4c7fa5e0b9d2c4f6a8e1"],
                                 "value": {"amount": 312_000.0, "currency": "UAH"},
                                 "suppliers": [{"id": "UA-EDR-43718265", "name": "ТОВ «Буковина-Медтех»"}]})
    assert flags(tmp_path, WINNER, write_lines(tmp_path / "rejected.jsonl", [release])) == {}


def test_a_native_bid_rejected_at_prequalification_is_still_not_compared(tmp_path):
    """ProZorro-native: a cheaper bid invalid.pre-qualification (status_ocds disqualified, no award) is left
    out as before; the two valid cheaper bids were skipped."""
    native = json.loads((FIXTURES / "anomaly-winner-not-lowest-skipped.json").read_text(encoding="utf-8"))
    rejected = copy.deepcopy(native["data"]["bids"][1])
    rejected.update(id="0c5d2e9a7b6f4183a2d4c6e8f0b1a3c5", status="invalid.pre-qualification",
                    value={"amount": 455_000.0, "currency": "UAH", "valueAddedTaxIncluded": True})
    native["data"]["bids"].append(rejected)
    path = write_lines(tmp_path / "native.jsonl", [native])
    (lot,) = only(flags(tmp_path, WINNER, path))["evidence"]["lots"]
    assert [b["value_amount"] for b in lot["cheaper_valid_bids"]] == [486_000, 502_200]


# --- anomaly-contract-value-increase: several contracts under one award ---------------------------------

TWO_CONTRACTS = FIXTURES / "anomaly-contract-value-increase-two-contracts-one-award.jsonl"


def test_contract_value_increase_adds_up_the_contracts_of_one_award(tmp_path):
    """A centralized purchase for two buyers: one award of 1 000 000, a contract per buyer (600 000 and
    400 000). The first was raised to 726 000 by two amendments: against the whole award it looked like
    a 27 % fall; with its sibling, 1 126 000 are contracted under the award, 12.6 % above it."""
    flag = only(flags(tmp_path, INCREASE, TWO_CONTRACTS))
    assert flag["ocid"] == "ocds-be6bcu-UA-2025-04-07-004518-a"
    assert flag["value"] == pytest.approx(12.6) and flag["evidence"]["total_increase_pct"] == pytest.approx(12.6)
    (contract,) = flag["evidence"]["contracts"]  # the other contract has no amendment
    assert contract["contract_public_id"] == "UA-2025-04-07-004518-a-a1"
    assert contract["award_value"] == 1_000_000 and contract["contract_value"] == 726_000
    assert contract["award_contracts"] == 2 and contract["award_contracts_value"] == 1_126_000
    assert contract["amendments"] == 2 and contract["price_amendments"] == 2


def test_contract_value_increase_leaves_cancelled_contracts_of_the_award_out(tmp_path):
    """A third buyer's contract under the same award, cancelled before signing: not part of what is contracted."""
    tender, *contracts = read_lines(TWO_CONTRACTS)
    tender = copy.deepcopy(tender)
    award_id = tender["data"]["awards"][0]["id"]
    tender["data"]["contracts"].append({
        "id": "f0a2c4e6b8d04f2a9c1e3b5d7f9a1c3e", "awardID": award_id, "contractID": "UA-2025-04-07-004518-a-a3",
        "status": "cancelled", "date": "2025-04-24T10:00:00+03:00",
        "value": {"amount": 400_000.0, "currency": "UAH", "valueAddedTaxIncluded": True, "amountNet": 333_333.33}})
    flag = only(flags(tmp_path, INCREASE, write_lines(tmp_path / "cancelled.jsonl", [tender, *contracts])))
    (contract,) = flag["evidence"]["contracts"]
    assert contract["award_contracts"] == 2 and contract["award_contracts_value"] == 1_126_000
    assert flag["value"] == pytest.approx(12.6)


def test_contract_value_increase_on_an_award_with_one_contract_is_unchanged(tmp_path):
    flag = only(flags(tmp_path, INCREASE, FIXTURES / "anomaly-contract-value-increase-total.jsonl"))
    (contract,) = flag["evidence"]["contracts"]
    assert contract["award_contracts"] == 1 and contract["award_contracts_value"] == contract["contract_value"]
    assert contract["total_increase_pct"] == pytest.approx(16.0)


def test_contract_value_increase_adds_up_the_contracts_of_an_ocds_award(tmp_path):
    """OCDS: one award of 100 000 KGS split into two contracts (60 000 and 40 000); an amendment raised the
    first to 75 000: 115 000 contracted under the award, +15 %."""
    ocid = "ocds-r9p1qf-0f3c9a71-2025-1204"
    supplier = {"id": "KG-INN-02406201510239", "name": "ОсОО «Мээрим-Сервис»"}
    release = {
        "ocid": ocid, "id": f"{ocid}-compiled", "date": "2025-10-15T12:00:00+06:00", "tag": ["compiled"],
        "initiationType": "tender",
        "parties": [{"id": "KG-INN-01512200910117", "name": "Бишкек шаарынын социалдык өнүктүрүү башкармалыгы",
                     "roles": ["buyer", "procuringEntity"]}, {**supplier, "roles": ["supplier"]}],
        "buyer": {"id": "KG-INN-01512200910117", "name": "Бишкек шаарынын социалдык өнүктүрүү башкармалыгы"},
        "tender": {"id": "1204", "title": "Кызмат көрсөтүү: карыларды үйдө багуу (эки район)", "status": "complete",
                   "procurementMethod": "open", "mainProcurementCategory": "services",
                   "value": {"amount": 110000, "currency": "KGS"},
                   "items": [{"id": "1", "description": "Карыларды үйдө багуу кызматы",
                              "classification": {"scheme": "CPV", "id": "85311000-2"}}]},
        "awards": [{"id": "a1", "status": "active", "date": "2025-03-03T10:00:00+06:00",
                    "value": {"amount": 100000, "currency": "KGS"}, "suppliers": [supplier]}],
        "contracts": [
            {"id": "c1", "awardID": "a1", "status": "active", "dateSigned": "2025-03-10T10:00:00+06:00",
             "value": {"amount": 75000, "currency": "KGS"},
             "amendments": [{"id": "am1", "date": "2025-09-01T10:00:00+06:00",
                             "rationale": "Кызмат алуучулардын санынын көбөйүшү"}]},
            {"id": "c2", "awardID": "a1", "status": "active", "dateSigned": "2025-03-10T11:00:00+06:00",
             "value": {"amount": 40000, "currency": "KGS"}},
        ],
    }
    path = tmp_path / "kg.json"
    path.write_text(json.dumps({"uri": "https://example.org/kg.json", "publishedDate": "2025-10-15T12:00:00+06:00",
                                "version": "1.1", "releases": [release]}, ensure_ascii=False), encoding="utf-8")
    flag = only(flags(tmp_path, INCREASE, path))
    assert flag["ocid"] == ocid and flag["value"] == pytest.approx(15.0)
    (contract,) = flag["evidence"]["contracts"]
    assert contract["contract_id"] == "c1" and contract["award_contracts"] == 2
    assert contract["award_contracts_value"] == 115_000
