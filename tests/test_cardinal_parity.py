"""The Cardinal rules in rules/flags/ against Cardinal's own test vectors.

For each vector (tests/fixtures/cardinal/indicators/NAME.jsonl, with Cardinal's output in NAME.expected
and the settings upstream derives from the name in tests/fixtures/cardinal/settings/NAME.ini), the input
is loaded into a fresh database, the INI settings are translated into parameter overrides for the rules
of that indicator (the files whose references are exactly ["Cardinal RNNN"]), only those rules are
evaluated, and the flags must equal Cardinal's results exactly: the same (group, id, indicator) set,
and the same values within a tolerance. Groups: a rule's subject process -> OCID, buyer -> Buyer,
procuring-entity -> ProcuringEntity, tenderer -> Tenderer.
"""

from __future__ import annotations

import configparser
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest

from monitor.cli import main
from monitor.flags.engine import evaluate
from monitor.flags.rules import Rule, load_rules

CARDINAL = Path(__file__).resolve().parent / "fixtures" / "cardinal"
RULE_DIR = Path(__file__).resolve().parent.parent / "rules" / "flags"
VECTORS = sorted(p.stem for p in (CARDINAL / "indicators").glob("*.expected"))
GROUPS = {"process": "OCID", "buyer": "Buyer", "procuring-entity": "ProcuringEntity", "tenderer": "Tenderer"}
# Only the Cardinal rule files: other rule files are not this test's business.
RULES = [rule for path in sorted(RULE_DIR.glob("cardinal-*.yaml")) for rule in load_rules(path)]

# Cardinal's setting names -> the rules' parameter names, where they differ.
TOP_LEVEL = {
    "currency": "currency",
    "no_price_comparison_procurement_methods": "no_price_comparison_methods",
    "price_comparison_procurement_methods": "price_comparison_methods",
}
LISTS = {"no_price_comparison_methods", "price_comparison_methods", "excluded_method_details", "procurement_methods"}


def cardinal_rules(indicator: str) -> list[Rule]:
    rules = [r for r in RULES if r.id.startswith("cardinal-") and r.references == (f"Cardinal {indicator}",)]
    assert rules, f"no rule file references Cardinal {indicator}"
    return rules


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_settings(path: Path, indicator: str) -> dict[str, Any]:
    """Cardinal's INI settings for ``indicator`` as parameter values (lists for pipe-separated values)."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    parser.optionxform = str  # keys of [R003.procurement_method_details] are method details, case matters
    parser.read_string("[top]\n" + path.read_text(encoding="utf-8"))
    assert parser.has_section(indicator), f"{path.name}: an indicator runs only when its section [{indicator}] exists"
    settings: dict[str, Any] = {}
    for key, value in parser["top"].items():
        assert key in TOP_LEVEL, f"{path.name}: no translation for the top-level setting {key!r}"
        settings[TOP_LEVEL[key]] = value
    if parser.has_section("exclusions"):
        for key, value in parser["exclusions"].items():
            assert key == "procurement_method_details", f"{path.name}: no translation for [exclusions] {key}"
            settings["excluded_method_details"] = value
    for key, value in parser[indicator].items():
        settings[key] = value
    if parser.has_section(f"{indicator}.procurement_method_details"):
        settings["threshold_by_method_details"] = {
            k: _number(v) for k, v in parser[f"{indicator}.procurement_method_details"].items()}
    for other in parser.sections():
        assert other in {"top", "exclusions", indicator, f"{indicator}.procurement_method_details"}, \
            f"{path.name}: unexpected section [{other}]"
    for key, value in settings.items():
        if key in LISTS:
            settings[key] = [v for v in value.split("|") if v]  # Cardinal: split_terminator('|')
        elif isinstance(value, str) and key != "currency":
            settings[key] = _number(value)
    return settings


def first_currency(path: Path, excluded: list[str]) -> str | None:
    """Cardinal's main currency when none is set: the first bid currency it observes (in line order)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        release = json.loads(line) if line.strip() else None
        if not isinstance(release, dict) or not isinstance(release.get("ocid"), str):
            continue
        tender = release.get("tender") or {}
        if tender.get("status") == "cancelled" or tender.get("procurementMethodDetails") in excluded:
            continue
        for bid in (release.get("bids") or {}).get("details") or []:
            value = bid.get("value") or {}
            if isinstance(value.get("amount"), (int, float)) and isinstance(value.get("currency"), str):
                return value["currency"]
    return None


def overrides_for(rules: list[Rule], settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each setting goes to every rule of the indicator that declares a parameter of that name."""
    overrides = {r.id: {k: v for k, v in settings.items() if k in r.params} for r in rules}
    for key in settings:
        # The top-level settings serve only the indicators that use them (price comparison, currency).
        if key not in TOP_LEVEL.values():
            assert any(key in r.params for r in rules), f"setting {key!r} matches no parameter of {[r.id for r in rules]}"
    return overrides


def expected_results(path: Path) -> dict[tuple[str, str, str], float]:
    text = path.read_text(encoding="utf-8").strip()
    results = json.loads(text) if text else {}
    return {(group, subject, indicator): value
            for group, subjects in results.items()
            for subject, indicators in subjects.items()
            for indicator, value in indicators.items()}


@pytest.mark.parametrize("name", VECTORS)
def test_cardinal_vector(tmp_path: Path, name: str) -> None:
    indicator = name.split("-")[0]
    source = CARDINAL / "indicators" / f"{name}.jsonl"
    db = tmp_path / "cardinal.duckdb"
    main(["--db", str(db), "load", str(source)])  # the load also evaluates every rule with its defaults
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM processes").fetchone()[0]
    assert loaded == len([line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()])

    rules = cardinal_rules(indicator)
    settings = read_settings(CARDINAL / "settings" / f"{name}.ini", indicator)
    if "currency" not in settings and any("currency" in r.params for r in rules):
        currency = first_currency(source, settings.get("excluded_method_details", []))
        if currency:
            settings["currency"] = currency
    outcome = evaluate(db, rules, overrides=overrides_for(rules, settings))
    assert not outcome.failed, [(o.rule_id, o.error) for o in outcome.failed]

    ids = [r.id for r in rules]
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT subject_type, subject_id, value FROM flags WHERE resolved_at IS NULL AND list_contains(?, rule_id)",
            [ids]).fetchall()
    got: dict[tuple[str, str, str], float] = {}
    for subject_type, subject_id, value in rows:
        key = (GROUPS[subject_type], subject_id, indicator)
        assert key not in got, f"{key} flagged twice"
        got[key] = value
    expected = expected_results(CARDINAL / "indicators" / f"{name}.expected")

    assert set(got) == set(expected), (f"missing {sorted(set(expected) - set(got))}, "
                                       f"extra {sorted(set(got) - set(expected))}")
    for key, value in expected.items():
        assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), f"{key}: {got[key]} != Cardinal's {value}"


@pytest.mark.parametrize("vector, rule_id", [
    ("R024", "cardinal-r028-identical-bid-prices-tenderer"),   # a tenderer in 11 processes of Cardinal's R024 vector
    ("R035", "cardinal-r035-all-except-winning-bid-disqualified-tenderer"),  # one in 4 processes
])
def test_a_tenderer_flag_counts_every_process_and_lists_the_first_by_ocid(tmp_path: Path, vector: str,
                                                                          rule_id: str) -> None:
    db = tmp_path / "m.duckdb"
    assert main(["--db", str(db), "load", str(CARDINAL / "indicators" / f"{vector}.jsonl")]) == 0
    (rule,) = [r for r in RULES if r.id == rule_id]

    def evidence(**params: Any) -> dict[str, dict[str, Any]]:
        assert not evaluate(db, [rule], overrides={rule_id: params}).failed
        with duckdb.connect(str(db), read_only=True) as con:
            return {subject: json.loads(text) for subject, text in con.execute(
                "SELECT subject_id, evidence FROM flags WHERE rule_id = ? AND resolved_at IS NULL", [rule_id]).fetchall()}

    full = evidence()
    capped = evidence(max_listed_processes=2)
    assert full.keys() == capped.keys()
    busiest = max(full, key=lambda s: full[s]["processes"])
    assert full[busiest]["processes"] > 2 and len(full[busiest]["ocids"]) == full[busiest]["processes"]
    assert capped[busiest]["processes"] == full[busiest]["processes"]
    assert capped[busiest]["ocids"] == sorted(full[busiest]["ocids"])[:2]
