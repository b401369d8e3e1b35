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
    bad.write_text('id: wrong\nname: X\ndescription: d\ncodes: ["85311000-3"]\nkeywords:\n  uk: ["(?<=x)y", "притул"]\n'
                   'colour: red\nnegative: ["тварин", "ab(c"]\n', encoding="utf-8")
    with pytest.raises(CategoryError) as raised:
        load_categories(tmp_path)
    problems = raised.value.problems
    assert f"{bad}:7: (top level): unknown key 'colour'" in problems[0]
    assert any(p.startswith(f"{bad}:1: id:") for p in problems)
    assert any(p.startswith(f"{bad}:4: codes: unknown ДК021/CPV code '85311000-3'") for p in problems)
    # a file's patterns are compiled together; each bad one is still named, and only the bad ones
    invalid = [p for p in problems if "invalid pattern" in p]
    assert len(invalid) == 2, invalid
    assert invalid[0].startswith(f"{bad}:6: keywords.uk.0: invalid pattern") and "look-around" in invalid[0]
    assert invalid[1].startswith(f"{bad}:8: negative.1: invalid pattern") and "unclosed group" in invalid[1]


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
    assert {"signal": "code", "field": "item", "value": "85312000-9",
            "name": "Послуги з надання соціальної допомоги без забезпечення проживання"} in found[(pwid, "social.services")]
    assert main(["--db", str(db), "classify"]) == 0  # nothing changed: nothing to do
    assert "classified 0 process(es) and 0 plan(s)" in capsys.readouterr().out
    assert main(["--db", str(db), "classify", "--full"]) == 0
    assert "and 2 plan(s)" in capsys.readouterr().out


# --- audit fixes: negatives per process, institution names, buyer names, cues, parents, look-alikes ---

def test_a_negative_in_any_text_voids_the_keyword_evidence_of_the_whole_process(categories):
    # the item text alone reads like a shelter service / OST; the title says what it is
    assert assigned(categories, title="Послуги з утримання безпритульних тварин у притулку",
                    item="Послуги з утримання у притулку", cpv="98380000-0") == set()
    assert assigned(categories, title="Бупренорфін трансдермальний пластир", item="Бупренорфін",
                    cpv="33661200-3") == {"health", "health.medicines"}
    # buprenorphine as an opioid analgesic (ATC N02AE) voids the OST text cue; N07BC is OST
    assert "programme.ost" not in assigned(categories, title="Бупренорфін 35 мкг/год", item="Бупренорфін",
                                           cpv="33661200-3", inn="buprenorphine", atc="N02AE01")
    assert "programme.ost" in assigned(categories, title="Бупренорфін сублінгвальний 8 мг", item="Бупренорфін",
                                       cpv="33661000-1", inn="buprenorphine", atc="N07BC01")


@pytest.mark.parametrize("title, cpv", [
    ("Послуги з відлову та стерилізації безпритульних собак і котів", "85200000-1"),
    ("Утримання бездомних собак у притулку", "98380000-0"),
    ("Отлов и содержание бездомных собак и кошек в приюте", "98380000-0"),
    ("Shelter for homeless dogs and cats", "98380000-0"),
    ("Кризовий центр для бездомних кішок", "98380000-0"),
])
def test_dogs_and_cats_are_animals_too(categories, title, cpv):
    assert assigned(categories, title=title, cpv=cpv) == set()


def test_a_boiler_is_no_cat(categories):
    got = assigned(categories, title="Послуги нічного притулку для бездомних осіб, у т.ч. ремонт котла",
                   cpv="99999999-9")
    assert {"programme.homelessness", "social.accommodation"} <= got


@pytest.mark.parametrize("title, item, cpv", [
    ("Паливні брикети для будинку-інтернату", "Брикетоване вугілля", "09111220-8"),
    ("Послуги з прання білизни для геріатричного пансіонату", "Послуги з прання", "98310000-9"),
    ("Послуги з охорони притулку для дітей", "Охоронні послуги", "79710000-4"),
])
def test_an_institution_named_alone_is_not_social_work(categories, title, item, cpv):
    assert assigned(categories, title=title, item=item, cpv=cpv) == set()


def test_the_institution_with_a_service_cue_is_social_work(categories):
    assert assigned(categories, title="Стаціонарний догляд у геріатричному пансіонаті", cpv="85311000-2") >= {
        "programme.elderly", "social.accommodation"}
    assert "social.accommodation" in assigned(categories, title="Послуги нічного притулку для бездомних осіб",
                                              cpv="99999999-9")


def test_the_buyers_name_is_not_a_children_cue(categories):
    assert assigned(categories, title="Поточний ремонт приміщення служби у справах дітей", cpv="45453000-7") == set()


def test_drug_dependence_treatment_is_ost_not_pwid_social_support(categories):
    got = assigned(categories, title="Медичні послуги з лікування наркозалежних осіб", cpv="85110000-3")
    assert got == {"health", "health.services", "programme.ost"}


def test_programme_tags_have_no_parent(categories):
    assert {c.id: c.parent for c in categories if c.id.startswith("programme.") and c.parent} == {}


def test_one_disability_phrase_is_one_social_cue(categories):
    got = assigned(categories, title="Облаштування пандусів та паркувальних місць для осіб з інвалідністю",
                   cpv="45223300-9")
    assert got == {"programme.disability"}


def test_a_fluorograph_alone_is_not_tb(categories):
    assert "programme.tb" not in assigned(categories, title="Флюорограф цифровий для поліклініки", cpv="33111000-1")
    assert "programme.tb" in assigned(categories, title="Флюорографічне обстеження контактних осіб з туберкульозом",
                                      cpv="85121000-3")


def test_hearing_aids_are_no_aids(categories):
    assert assigned(categories, title="HEARING AIDS", cpv="33185000-0") == {"health", "health.equipment"}


@pytest.mark.parametrize("title", ["Тестування на BIЛ", "ТЕСТУВАННЯ НА BIЛ-IНФЕКЦIЮ", "Тестирование на BИЧ"])
def test_latin_lookalikes_inside_cyrillic_words_are_read_as_cyrillic(categories, title):
    assert "programme.hiv" in assigned(categories, title=title, cpv="85323000-9")


def test_normalisation_leaves_latin_words_alone():
    from monitor.classify.engine import normalise_texts
    texts = pl.DataFrame({"text": ["Тестування на BIЛ", "HIV testing, BIOS update", "Ремонт ПК (BIOS) і ТОВ «ABC»",
                                   "Cтeрилізація"]})
    norm = dict(normalise_texts(texts).iter_rows())
    assert norm["Тестування на BIЛ"] == "Тестування на ВІЛ"
    assert norm["HIV testing, BIOS update"] == "HIV testing, BIOS update"
    assert norm["Ремонт ПК (BIOS) і ТОВ «ABC»"] == "Ремонт ПК (BIOS) і ТОВ «ABC»"
    assert norm["Cтeрилізація"] == "Стерилізація"


# --- budget codes (plans), code names in evidence, rules check by content, status names ---

def test_budget_codes_support_a_category_on_plans(categories):
    processes, items = frames(title="Закупівля експрес-тестів", cpv="33141625-7")
    assert "programme.hiv" not in set(classify(processes, items, categories)["category"])  # a context code alone
    budget = pl.DataFrame({"ocid": ["x"], "scheme": ["ТПКВКМБ"], "code": ["2143"]})
    result = classify(processes, items, categories, budget)
    hiv = result.filter(pl.col("category") == "programme.hiv").row(0, named=True)
    assert {"signal": "budget_code", "field": "budget", "value": "ТПКВКМБ 2143",
            "name": "Програми і централізовані заходи профілактики ВІЛ-інфекції/СНІДу"} in hiv["evidence"]
    assert hiv["confidence"] == "medium"  # a budget code is supporting evidence, like a context code
    state = pl.DataFrame({"ocid": ["x"], "scheme": ["КПК-2021"], "code": ["2511240"]})
    dv = classify(*frames(title="Послуги притулку для постраждалих від домашнього насильства"), categories, state)
    evidence = dv.filter(pl.col("category") == "programme.domestic-violence")["evidence"][0]
    assert ("budget_code", "КПК-2021 2511240") in {(e["signal"], e["value"]) for e in evidence}


def test_budget_codes_are_validated_against_the_reference_lists(tmp_path):
    bad = tmp_path / "programme.x.yaml"
    bad.write_text("id: programme.x\nname: X\ndescription: d\nbudget_codes:\n  tpkvkmb: [\"3241\", \"9999\"]\n"
                   "  kpk: [\"2301400\", \"1234567\"]\n  kpkv: [\"1\"]\n", encoding="utf-8")
    with pytest.raises(CategoryError) as raised:
        load_categories(tmp_path)
    problems = raised.value.problems
    assert any(p.startswith(f"{bad}:5: budget_codes.tpkvkmb: unknown ТПКВКМБ code '9999'") for p in problems)
    assert any(p.startswith(f"{bad}:6: budget_codes.kpk: unknown КПК code '1234567'") for p in problems)
    assert any(f"{bad}:7: budget_codes: unknown key 'kpkv'" in p for p in problems)


def test_code_evidence_carries_the_dk021_name(categories):
    result = classify(*frames(item="Послуги притулку", cpv="85311000-2"), categories)
    evidence = result.filter(pl.col("category") == "social.accommodation")["evidence"][0]
    assert {"signal": "code", "field": "item", "value": "85311000-2",
            "name": "Послуги з надання соціальної допомоги із забезпеченням проживання"} in evidence
    assert all(e["name"] is None for e in evidence if e["signal"] not in ("code", "context_code", "budget_code"))


def test_plans_get_budget_code_evidence_and_the_store_keeps_code_names_once_it_has_the_column(tmp_path):
    plans = Path(__file__).resolve().parent.parent / "rules" / "flags" / "fixtures" / \
        "opportunity-planned-not-procured-overdue.jsonl"
    db = tmp_path / "plans.duckdb"
    assert main(["--db", str(db), "load", str(plans)]) == 0
    query = ("SELECT p.plan_public_id, c.category, e FROM (SELECT plan_id, category, unnest(evidence) AS e "
             "FROM plan_classifications) c JOIN plans p USING (plan_id) WHERE e.signal = 'budget_code'")
    with duckdb.connect(str(db), read_only=True) as con:
        found = {(plan, category, e["value"]) for plan, category, e in con.execute(query).fetchall()}
    assert ("UA-P-2026-02-24-010112-a", "programme.domestic-violence", "ТПКВКМБ 3124") in found
    assert ("UA-P-2026-02-10-010111-a", "social", "ТПКВКМБ 3241") in found
    # the stored evidence struct has no name field (monitor/store); with one, the names are kept
    with duckdb.connect(str(db)) as con:
        for table in ("classifications", "plan_classifications"):
            con.execute(f"ALTER TABLE {table} ALTER evidence TYPE "
                        "STRUCT(signal VARCHAR, field VARCHAR, value VARCHAR, name VARCHAR)[]")
    assert main(["--db", str(db), "classify", "--full"]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        named = {(e["value"], e["name"]) for _, _, e in con.execute(query).fetchall()}
    name = ("Розвиток та надання послуг спеціалізованими службами  підтримки осіб, які постраждали "  # sic: two spaces
            "від домашнього насильства та/або насильства за ознакою статі")
    assert ("ТПКВКМБ 3124", name) in named


def test_rules_check_tells_category_files_from_flag_rules_by_content(tmp_path, capsys):
    anywhere = tmp_path / "my-rules"
    anywhere.mkdir()
    shutil.copy(RULES / "programme.hiv.yaml", anywhere)
    shutil.copy(RULES / "social.services.yaml", anywhere)  # parent: social, a shipped category
    assert main(["rules", "check", str(anywhere)]) == 0
    assert "2 category file(s) OK: programme.hiv, social.services" in capsys.readouterr().out
    assert main(["rules", "check", str(anywhere / "social.services.yaml")]) == 0
    assert "1 category file(s) OK: social.services" in capsys.readouterr().out
    # a flag rule in a folder named "classify" is still a flag rule
    flags = Path(__file__).resolve().parent.parent / "rules" / "flags"
    misplaced = tmp_path / "classify"
    shutil.copytree(flags / "fixtures", misplaced / "fixtures")
    shutil.copy(flags / "cardinal-r018-single-bid.yaml", misplaced)
    assert main(["rules", "check", str(misplaced)]) == 0
    assert capsys.readouterr().out.strip() == "1 flag rule(s) OK"
    # a mixed folder: each file by its content; a broken category file is reported as one
    shutil.copy(RULES / "programme.tb.yaml", misplaced)
    (misplaced / "programme.bad.yaml").write_text("id: programme.bad\nname: B\ndescription: d\ncodes: [\"8514199\"]\n",
                                                  encoding="utf-8")
    assert main(["rules", "check", str(misplaced)]) == 2
    assert f"{misplaced / 'programme.bad.yaml'}:4: codes: unknown ДК021/CPV code '8514199'" in capsys.readouterr().err


def test_status_names_the_categories(tmp_path, capsys):
    fixture = Path(__file__).resolve().parent.parent / "rules" / "flags" / "fixtures" / \
        "opportunity-open-social-tender-bidding.jsonl"
    db = tmp_path / "s.duckdb"
    assert main(["--db", str(db), "load", str(fixture)]) == 0
    capsys.readouterr()
    assert main(["--db", str(db), "status"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  social.services ")]
    assert lines and lines[0].endswith("Social services without accommodation")
