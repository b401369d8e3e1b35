"""Classification: category-file validation, evidence, hierarchy, incremental runs, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from monitor.classify.categories import CategoryError, load_categories
from monitor.classify.engine import classify
from monitor.cli import main

RULES = Path(__file__).resolve().parent.parent / "rules" / "classify"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def categories():
    return load_categories()


def frames(title: str = "", item: str = "", cpv: str | None = None, inn: str | None = None,
           atc: str | None = None, buyer_kind: str = "general") -> tuple[pl.DataFrame, pl.DataFrame]:
    processes = pl.DataFrame({"ocid": ["x"], "title": [title], "description": [None], "buyer_kind": [buyer_kind]},
                             schema_overrides={"description": pl.String})
    items = pl.DataFrame({"ocid": ["x"], "cpv": [cpv], "description": [item], "inn": [inn], "atc": [atc]},
                         schema_overrides={"cpv": pl.String, "inn": pl.String, "atc": pl.String})
    return processes, items


def assigned(categories, **kwargs) -> set[str]:
    return set(classify(*frames(**kwargs), categories)["category"])


def test_shipped_category_files_are_valid(categories):
    ids = {c.id for c in categories}
    assert {"health", "health.medicines", "social", "social.accommodation", "programme.pwid-support",
            "programme.ost", "programme.hiv"} <= ids


def test_pwid_support_needs_a_social_service_and_a_pwid_cue(categories):
    title = "Соціальний супровід осіб, які вживають ін'єкційні наркотики, та пацієнтів ЗПТ"
    assert assigned(categories, title=title, cpv="85312000-9") >= {
        "social", "social.services", "programme.pwid-support", "programme.ost"}
    # the social-service code alone is no programme tag
    assert assigned(categories, item="Послуги з надання соціальної допомоги", cpv="85312000-9") == {
        "social", "social.services"}


@pytest.mark.parametrize("text", [
    "Будівельні роботи цивільного будівництва",   # "віл" inside a word
    "Організація дозвілля",
    "Закупівля сніданків для учнів",
    "ЗАКУПІВЛЯ СНІДАНКІВ ДЛЯ ШКІЛ",
    "Спидометры для автомобилей",
    "Послуги Петрович О.В.",
])
def test_hiv_traps_are_not_hiv(categories, text):
    assert "programme.hiv" not in assigned(categories, title=text, item=text, cpv="15800000-6")


def test_hiv_cue_with_latin_homoglyph_is_normalised(categories):
    title = "Послуги з тестування на ВIЛ та консультування груп підвищеного ризику"  # Latin I
    assert "programme.hiv" in assigned(categories, title=title, cpv="85323000-9")


def test_reagents_under_336_are_health_but_not_medicines(categories):
    got = assigned(categories, item="Реактиви для лабораторної діагностики", cpv="33696500-0")
    assert "health" in got and "health.medicines" not in got


def test_veterinary_and_animal_shelters_are_not_social(categories):
    assert assigned(categories, item="Ветеринарні послуги", cpv="85200000-1") == set()
    assert "social.accommodation" not in assigned(categories, title="Утримання притулку для тварин",
                                                  cpv="98380000-0")


def test_software_support_is_not_social_support(categories):
    assert assigned(categories, title="Супроводження програмного забезпечення реєстру", cpv="72260000-5") == set()


def test_medicines_by_inn_and_atc_and_the_hepatitis_trap(categories):
    assert "programme.ost" in assigned(categories, item="Метадону гідрохлорид", cpv="33600000-6",
                                       inn="methadone", atc="N07BC02")
    entecavir = assigned(categories, item="Ентекавір", cpv="33651400-2", inn="entecavir", atc="J05AF10")
    assert "health.medicines" in entecavir and "programme.hiv" not in entecavir


def test_evidence_names_the_code_and_keyword(categories):
    result = classify(*frames(title="Профілактика туберкульозу", item="Ізоніазид", cpv="33651300-1",
                              inn="isoniazid", atc="J04AC01"), categories)
    tb = result.filter(pl.col("category") == "programme.tb").row(0, named=True)
    signals = {(e["signal"], e["value"]) for e in tb["evidence"]}
    assert ("medicine", "isoniazid") in signals and ("keyword", "туберкул") in signals
    assert tb["confidence"] == "high"


def test_child_implies_parent_with_evidence(categories):
    result = classify(*frames(item="Послуги притулку", cpv="85311000-2"), categories)
    social = result.filter(pl.col("category") == "social").row(0, named=True)
    assert social["score"] >= 2


def test_invalid_category_files_list_every_problem_with_file_and_line(tmp_path):
    bad = tmp_path / "social.bad.yaml"
    bad.write_text('id: wrong\nname: X\ndescription: d\ncodes: ["85311000-3"]\nkeywords:\n  uk: ["(?<=x)y"]\n'
                   'colour: red\n', encoding="utf-8")
    with pytest.raises(CategoryError) as raised:
        load_categories(tmp_path)
    problems = raised.value.problems
    assert f"{bad}:7: (top level): unknown key 'colour'" in problems[0]
    assert any(p.startswith(f"{bad}:1: id:") for p in problems)
    assert any(p.startswith(f"{bad}:4: codes: unknown ДК021/CPV code '85311000-3'") for p in problems)
    assert any(p.startswith(f"{bad}:6: keywords.uk.0: invalid pattern") and "look-around" in p for p in problems)


def test_rules_check_cli(tmp_path, capsys):
    assert main(["rules", "check"]) == 0
    assert "category file(s) OK" in capsys.readouterr().out
    (tmp_path / "x.yaml").write_text("id: x\nname: X\n", encoding="utf-8")
    assert main(["rules", "check", str(tmp_path)]) == 2
    assert "x.yaml:1:" in capsys.readouterr().err


def test_load_classifies_incrementally_and_a_rule_change_reclassifies_all(tmp_path, monkeypatch):
    db = tmp_path / "m.duckdb"
    assert main(["--db", str(db), "load", str(FIXTURES / "prozorro-real")]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        first = con.execute("SELECT ocid, category, classified_at FROM classifications ORDER BY 1, 2").fetchall()
        processes = con.execute("SELECT count(*) FROM classified_processes").fetchone()[0]
    assert processes == 12  # none of these real records is a health or social purchase by the shipped rules
    assert main(["--db", str(db), "classify"]) == 0  # nothing changed: nothing re-classified
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT ocid, category, classified_at FROM classifications ORDER BY 1, 2"
                           ).fetchall() == first
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "health.yaml").write_text((rules / "health.yaml").read_text(encoding="utf-8").replace(
        'codes: ["851"', 'codes: ["38510000-3", "851"'), encoding="utf-8")
    monkeypatch.setattr("monitor.classify.categories.DEFAULT_DIR", rules)
    assert main(["--db", str(db), "classify"]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        microscopes = con.execute("SELECT category FROM classifications WHERE ocid = "
                                  "'ocds-be6bcu-UA-2022-07-23-000100-a'").fetchall()
        reclassified = con.execute("SELECT count(DISTINCT rules_hash), count(*) FROM classified_processes").fetchone()
    assert ("health",) in microscopes
    assert reclassified == (1, 12)


def test_plans_are_classified_from_their_codes_and_texts_and_only_when_they_change(tmp_path, capsys):
    plans = Path(__file__).resolve().parent.parent / "rules" / "flags" / "fixtures" / \
        "opportunity-planned-not-procured-overdue.jsonl"
    db = tmp_path / "plans.duckdb"
    assert main(["--db", str(db), "load", str(plans)]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        found = {(plan, category): evidence for plan, category, evidence in con.execute(
            "SELECT p.plan_public_id, c.category, c.evidence FROM plan_classifications c JOIN plans p USING (plan_id)"
        ).fetchall()}
    pwid = "UA-P-2026-02-10-010111-a"
    assert {(pwid, "social.services"), (pwid, "programme.pwid-support"), (pwid, "programme.ost")} <= set(found)
    assert ("UA-P-2026-02-24-010112-a", "programme.domestic-violence") in found
    assert {"signal": "code", "field": "item", "value": "85312000-9"} in found[(pwid, "social.services")]
    assert main(["--db", str(db), "classify"]) == 0  # nothing changed: nothing to do
    assert "classified 0 process(es) and 0 plan(s)" in capsys.readouterr().out
    assert main(["--db", str(db), "classify", "--full"]) == 0
    assert "and 2 plan(s)" in capsys.readouterr().out
